//! The terminal while the dashboard owns it: raw mode, the alternate screen and a hidden cursor
//! on the way in, all three undone on every way out: [`TerminalGuard`]'s `Drop` (normal end,
//! errors, unwinding), the panic hook (restores *before* the panic message prints, so it is
//! readable), and [`restore`] for paths that end the process without unwinding (a second
//! interrupt calls `std::process::exit`).
//!
//! The terminal is process-wide state, so whether it is taken is a process-wide flag; restoring
//! is idempotent and may happen on any thread. Drawing holds `DRAWING` so a restore from
//! another thread never lands in the middle of a frame.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static DRAWING: Mutex<()> = Mutex::new(());

pub type DashboardTerminal = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal when dropped.
#[must_use = "the terminal is restored when the guard is dropped"]
pub struct TerminalGuard(());

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Takes over stdout: raw mode, alternate screen, hidden cursor.
pub fn enter() -> io::Result<(DashboardTerminal, TerminalGuard)> {
    install_panic_hook();
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let guard = TerminalGuard(());
    execute!(io::stdout(), EnterAlternateScreen, Hide)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    Ok((terminal, guard))
}

/// Whether the dashboard still owns the terminal (a panic elsewhere may have given it back).
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

/// Leaves the alternate screen, disables raw mode and shows the cursor; a no-op when the
/// terminal is not taken. Safe from any thread, including a panic hook.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    // Wait briefly for a frame in progress; if the panicking thread is the one drawing, the
    // lock never frees, and restoring anyway beats leaving the terminal raw.
    let _frame = lock_briefly(Duration::from_millis(200));
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}

/// Draws one frame unless the terminal was given back meanwhile.
pub fn draw(
    terminal: &mut DashboardTerminal,
    render: impl FnOnce(&mut ratatui::Frame),
) -> io::Result<()> {
    let _frame = DRAWING.lock().unwrap_or_else(|e| e.into_inner());
    if !is_active() {
        return Ok(());
    }
    terminal.draw(render).map(|_| ())
}

fn lock_briefly(limit: Duration) -> Option<MutexGuard<'static, ()>> {
    let deadline = Instant::now() + limit;
    loop {
        match DRAWING.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
