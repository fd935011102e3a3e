//! The live dashboard shown by `peakload run` when stdout is a terminal.
//!
//! It owns nothing of the run: a thread of its own reads the recorder's [`LiveView`] snapshot
//! (a brief lock, a clone only when a new second was published), redraws about four times a
//! second and turns keys into requests. A stop key does not stop anything itself: it is sent to
//! the run loop, which treats it exactly like SIGINT (first: drain and write results; second:
//! exit at once), so there is one shutdown path.
//!
//! - [`state`]: what is shown, derived from the scenario and the snapshot (live thresholds too);
//! - [`draw`]: one frame from a state, nothing else;
//! - [`input`]: keys → actions;
//! - [`terminal`]: raw mode / alternate screen in, and restored on every way out.

pub mod draw;
pub mod input;
pub mod state;
pub mod terminal;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::record::aggregate::LiveView;
pub use state::{DashboardSpec, SignalSeries};
pub use terminal::restore as restore_terminal;

/// Time between frames.
const FRAME: Duration = Duration::from_millis(250);

/// What the dashboard reads while the run goes on.
pub struct DashboardFeed {
    pub spec: DashboardSpec,
    /// The recorder's snapshot, refreshed once per second.
    pub live: Arc<Mutex<LiveView>>,
    pub run_start: Instant,
    /// The run's stop token, read only: shows "stopping" once a stop was requested.
    pub stop: CancellationToken,
    /// Infrastructure signals, when a source is configured; `None` hides their panel.
    pub signals: Option<crate::observe::scrape::LiveSignals>,
}

/// A running dashboard. Dropping it (or [`Dashboard::close`]) stops drawing and restores the
/// terminal before returning.
pub struct Dashboard {
    thread: Option<JoinHandle<()>>,
    close: Arc<AtomicBool>,
    stop_keys: mpsc::UnboundedReceiver<()>,
}

impl Dashboard {
    /// Takes over the terminal and starts drawing on a thread of its own.
    pub fn start(feed: DashboardFeed) -> io::Result<Dashboard> {
        let (terminal, guard) = terminal::enter()?;
        let close = Arc::new(AtomicBool::new(false));
        let (keys_tx, stop_keys) = mpsc::unbounded_channel();
        let closing = close.clone();
        let thread = std::thread::Builder::new()
            .name("peakload-dashboard".into())
            .spawn(move || {
                let _guard = guard;
                ui_loop(terminal, feed, &closing, &keys_tx);
            })?;
        Ok(Dashboard {
            thread: Some(thread),
            close,
            stop_keys,
        })
    }

    /// Resolves each time a stop key (`q`, Ctrl-C) is pressed; never, once the dashboard is
    /// gone.
    pub async fn stop_requested(&mut self) {
        if self.stop_keys.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether it still draws (it ends early if the terminal was given back, e.g. by a panic).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops drawing and restores the terminal.
    pub fn close(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.close.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        terminal::restore();
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Units of the observe model as a suffix after a number.
fn short_unit(unit: &str) -> &str {
    match unit {
        "per_second" => "/s",
        "seconds" => "s",
        "seconds_per_second" => " cpu",
        "bytes" => "B",
        "percent" => "%",
        "count" | "ratio" => "",
        other => other,
    }
}

fn ui_loop(
    mut terminal: terminal::DashboardTerminal,
    feed: DashboardFeed,
    close: &AtomicBool,
    stop_keys: &mpsc::UnboundedSender<()>,
) {
    let mut state = state::DashboardState::new(feed.spec);
    while !close.load(Ordering::SeqCst) && terminal::is_active() {
        refresh(&mut state, &feed.live);
        state.tick(feed.run_start.elapsed());
        state.stopping = feed.stop.is_cancelled();
        if let Some(signals) = &feed.signals {
            let shown = signals.lock().unwrap_or_else(|e| e.into_inner()).clone();
            state.signals = Some(
                shown
                    .into_iter()
                    .map(|(name, unit, values)| SignalSeries {
                        name,
                        unit: short_unit(&unit).into(),
                        values,
                    })
                    .collect(),
            );
        }
        if terminal::draw(&mut terminal, |f| draw::draw(f, &state)).is_err() {
            break;
        }
        let next_frame = Instant::now() + FRAME;
        loop {
            let left = next_frame.saturating_duration_since(Instant::now());
            if left.is_zero() || close.load(Ordering::SeqCst) {
                break;
            }
            // Short polls, so closing never waits for a whole frame.
            let wait = left.min(Duration::from_millis(50));
            match crossterm::event::poll(wait) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => {
                    std::thread::sleep(wait);
                    continue;
                }
            }
            let Ok(event) = crossterm::event::read() else {
                continue;
            };
            match input::action(&event) {
                Some(input::Action::Stop) => {
                    let _ = stop_keys.send(());
                }
                Some(input::Action::ToggleView) => {
                    state.view = state.view.toggled();
                    break;
                }
                Some(input::Action::Redraw) => break,
                None => {}
            }
        }
    }
}

/// Copies the snapshot only when the recorder published a new second since the last copy.
fn refresh(state: &mut state::DashboardState, live: &Mutex<LiveView>) {
    let snapshot = {
        let live = live.lock().unwrap_or_else(|e| e.into_inner());
        if live.seconds == state.live.seconds {
            return;
        }
        live.clone()
    };
    state.update(snapshot);
}
