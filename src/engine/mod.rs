//! The executor: worker threads, each with a single-threaded runtime, driving VUs through the
//! plan and recording into their own shard.
//!
//! Open model: a dispatcher per thread takes every `threads`-th arrival of the shared
//! [`Arrivals`], queues it at its due time and hands it to an idle VU (starting a new one
//! up to the thread's share of `max_vus`). An arrival that waits for a VU keeps its intended start,
//! so the wait shows in the latency; one that waited longer than `max_lag` is dropped and counted.
//! Closed model: a manager per thread keeps the thread's share of the wanted VUs looping.
//!
//! Both models end the same way. At the plan's end no iteration starts; one under way goes on
//! (its remaining steps and pauses, but not the pause after its last step) for up to `drain`.
//! A stop (signal, key) starts no new step and cuts pauses; requests in flight get `drain` too.
//! What is still in flight when the drain runs out is recorded as `cancelled` with the time it
//! had waited, and its iteration as interrupted.

mod json;
mod redirect;
pub mod render;
pub mod vu;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::http::{Client, ClientOptions};
use crate::plan::shard::thread_arrivals;
use crate::plan::{Arrivals, JourneyOrder, VuSchedule};
use crate::record::{IntervalReport, Shard};
use crate::scenario::{ClosedLoad, Load, OpenLoad, Scenario};
use vu::{IterationEnd, Prepared, Stopping, Vu};

/// Arrivals dispatched up to this much before they are due: tokio's timer fires up to a
/// millisecond after a deadline, and a late dispatch would add the timer's own lag to latency.
const DISPATCH_EARLY: Duration = Duration::from_millis(1);
/// An arrival that started this much after its due time counts as late.
const LATE_AFTER: Duration = Duration::from_millis(5);

pub struct EngineConfig {
    pub scenario: Arc<Scenario>,
    pub prepared: Arc<Prepared>,
    pub threads: usize,
    pub run_start: Instant,
    /// Fires when the load must stop (signal, key, end of plan for closed VUs).
    pub stop: CancellationToken,
    /// How long in-flight requests get to finish once stopping.
    pub drain: Duration,
    pub client: ClientOptions,
}

/// Starts the worker threads. Each sends its interval reports to `sink` and its last report
/// when it stops.
pub fn spawn_workers(
    config: Arc<EngineConfig>,
    sink: Sender<IntervalReport>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..config.threads)
        .map(|thread| {
            let config = config.clone();
            let sink = sink.clone();
            std::thread::Builder::new()
                .name(format!("peakload-worker-{thread}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a single-threaded runtime can be built");
                    let shard = Rc::new(RefCell::new(Shard::new(
                        thread,
                        config.run_start,
                        config.prepared.step_count,
                        config.prepared.journeys.len(),
                        sink,
                    )));
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&rt, worker(thread, config.clone(), shard.clone()));
                    drop(local);
                    drop(rt);
                    if let Ok(shard) = Rc::try_unwrap(shard) {
                        shard.into_inner().finish(Instant::now());
                    }
                })
                .expect("worker thread can be spawned")
        })
        .collect()
}

async fn worker(thread: usize, config: Arc<EngineConfig>, shard: Rc<RefCell<Shard>>) {
    // Fires at the plan's end.
    let ended = CancellationToken::new();
    let end_timer = {
        let ended = ended.clone();
        let end = config.run_start + config.scenario.load.duration();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(end.into()).await;
            ended.cancel();
        })
    };
    let ticker = {
        let shard = shard.clone();
        let start = config.run_start;
        tokio::task::spawn_local(async move {
            let mut s = 1u32;
            loop {
                tokio::time::sleep_until((start + Duration::from_secs(s as u64)).into()).await;
                shard.borrow_mut().tick(Instant::now());
                s += 1;
            }
        })
    };
    match &config.scenario.load {
        Load::Open(open) => run_open(thread, &config, open, &shard, &ended).await,
        Load::Closed(closed) => run_closed(thread, &config, closed, &shard, &ended).await,
    }
    end_timer.abort();
    ticker.abort();
}

/// Which journey each arrival (open) or VU (closed) runs, by index modulo its length.
fn journey_order(scenario: &Scenario) -> Rc<JourneyOrder> {
    let weights: Vec<u32> = scenario.journeys.iter().map(|j| j.weight).collect();
    Rc::new(JourneyOrder::new(&weights))
}

/// This thread's share of `total` when split over `threads` as evenly as possible.
fn share(total: u32, threads: usize, thread: usize) -> u32 {
    let t = threads as u32;
    total / t + u32::from((thread as u32) < total % t)
}

struct OpenState {
    queue: RefCell<VecDeque<(u64, Instant)>>,
    wake: Notify,
    idle: Cell<u32>,
    busy: Cell<u32>,
    spawned: Cell<u32>,
    done: Cell<bool>,
}

async fn run_open(
    thread: usize,
    config: &Arc<EngineConfig>,
    open: &OpenLoad,
    shard: &Rc<RefCell<Shard>>,
    ended: &CancellationToken,
) {
    let schedule = Arrivals::new(open);
    let order = journey_order(&config.scenario);
    let slice = config.prepared.shard;
    // A shard's share of the VUs, then this thread's share of the shard's.
    let shard_vus = |total: u32| slice.share(total as u64) as u32;
    let cap = share(shard_vus(open.max_vus), config.threads, thread).max(1);
    let state = Rc::new(OpenState {
        queue: RefCell::new(VecDeque::new()),
        wake: Notify::new(),
        idle: Cell::new(0),
        busy: Cell::new(0),
        spawned: Cell::new(0),
        done: Cell::new(false),
    });
    let mut vus = tokio::task::JoinSet::new();
    let spawn_vu = |vus: &mut tokio::task::JoinSet<()>| {
        let n = state.spawned.get();
        state.spawned.set(n + 1);
        let id = slice.global(n as u64 * config.threads as u64 + thread as u64);
        vus.spawn_local(open_vu(
            id,
            config.clone(),
            state.clone(),
            order.clone(),
            open.max_lag,
            shard.clone(),
            ended.clone(),
        ));
    };
    for _ in 0..share(shard_vus(open.pre_allocated_vus), config.threads, thread).min(cap) {
        spawn_vu(&mut vus);
    }
    let stop = &config.stop;
    for (k, due) in thread_arrivals(schedule, slice, config.threads, thread) {
        let at = config.run_start + due;
        let wake_at = at.checked_sub(DISPATCH_EARLY).unwrap_or(at);
        if wake_at > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(wake_at.into()) => {}
                _ = stop.cancelled() => break,
            }
        }
        if stop.is_cancelled() {
            break;
        }
        state.queue.borrow_mut().push_back((k, at));
        if state.idle.get() > 0 {
            // Reserve the idle VU now: counting it as idle until it runs would let a burst of
            // arrivals (catching up after a late wake) all wait for that one VU.
            state.idle.set(state.idle.get() - 1);
            // The VU idle the shortest time takes it: its connection, buffers and task state
            // are the ones still in cache (and warm on the server). Waking the longest-idle
            // one (FIFO) cycled every arrival through all `max_vus` connections.
            state.wake.notify_last();
        } else if state.spawned.get() < cap {
            spawn_vu(&mut vus);
        } else {
            shard.borrow_mut().arrival_queued();
        }
    }
    // The run lasts its planned duration even when the last arrival comes before its end.
    if !stop.is_cancelled() {
        tokio::select! {
            _ = ended.cancelled() => {}
            _ = stop.cancelled() => {}
        }
    }
    state.done.set(true);
    state.wake.notify_waiters();
    drain(&mut vus, config).await;
}

async fn open_vu(
    id: u64,
    config: Arc<EngineConfig>,
    state: Rc<OpenState>,
    order: Rc<JourneyOrder>,
    max_lag: Duration,
    shard: Rc<RefCell<Shard>>,
    ended: CancellationToken,
) {
    let mut vu = Vu::new(id, Client::new(config.client.clone()));
    let stopping = Stopping {
        stop: &config.stop,
        ended: &ended,
    };
    loop {
        if config.stop.is_cancelled() {
            return;
        }
        let next = state.queue.borrow_mut().pop_front();
        let Some((k, at)) = next else {
            if state.done.get() {
                return;
            }
            state.idle.set(state.idle.get() + 1);
            tokio::select! {
                // The dispatcher took us off the idle count when it woke us.
                _ = state.wake.notified() => {}
                _ = config.stop.cancelled() => return,
            }
            continue;
        };
        let now = Instant::now();
        let lag = now.saturating_duration_since(at);
        if lag > max_lag {
            shard.borrow_mut().iteration_dropped(now);
            continue;
        }
        {
            let mut sh = shard.borrow_mut();
            sh.iteration_started(now, Some(lag));
            if lag > LATE_AFTER {
                sh.iteration_late();
            }
        }
        state.busy.set(state.busy.get() + 1);
        shard.borrow_mut().set_busy(state.busy.get());
        let journey = &config.prepared.journeys[order.pick(k)];
        vu.iterate(&config.prepared, journey, k, Some(at), &shard, stopping)
            .await;
        state.busy.set(state.busy.get() - 1);
        shard.borrow_mut().set_busy(state.busy.get());
    }
}

async fn run_closed(
    thread: usize,
    config: &Arc<EngineConfig>,
    closed: &ClosedLoad,
    shard: &Rc<RefCell<Shard>>,
    ended: &CancellationToken,
) {
    let schedule = VuSchedule::new(closed);
    let order = journey_order(&config.scenario);
    let end = config.run_start + config.scenario.load.duration();
    let allowed = Rc::new(Cell::new(0u32));
    let running = Rc::new(Cell::new(0u32));
    let iterations = Rc::new(Cell::new(0u64));
    // alive[j]: the VU with local index j is looping.
    let alive: Rc<RefCell<Vec<bool>>> = Rc::new(RefCell::new(Vec::new()));
    let mut vus = tokio::task::JoinSet::new();
    let threads = config.threads as u32;
    loop {
        let now = Instant::now();
        if now >= end || config.stop.is_cancelled() {
            break;
        }
        let t = now.duration_since(config.run_start).as_secs_f64();
        // This shard's VUs (the plan's VU i belongs to shard i mod count), numbered locally.
        let want_total = config.prepared.shard.share(schedule.vus_at(t) as u64) as u32;
        // Local VU ids i < want_total with i % threads == thread.
        let want = if want_total > thread as u32 {
            (want_total - thread as u32 - 1) / threads + 1
        } else {
            0
        };
        allowed.set(want);
        for local in 0..want {
            let mut a = alive.borrow_mut();
            if a.len() <= local as usize {
                a.resize(local as usize + 1, false);
            }
            if !a[local as usize] {
                a[local as usize] = true;
                vus.spawn_local(closed_vu(
                    local,
                    config
                        .prepared
                        .shard
                        .global(local as u64 * threads as u64 + thread as u64),
                    thread,
                    config.clone(),
                    ClosedShared {
                        allowed: allowed.clone(),
                        running: running.clone(),
                        iterations: iterations.clone(),
                        alive: alive.clone(),
                        order: order.clone(),
                    },
                    shard.clone(),
                    ended.clone(),
                ));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = ended.cancelled() => break,
            _ = config.stop.cancelled() => break,
        }
    }
    allowed.set(0);
    drain(&mut vus, config).await;
}

struct ClosedShared {
    allowed: Rc<Cell<u32>>,
    running: Rc<Cell<u32>>,
    iterations: Rc<Cell<u64>>,
    alive: Rc<RefCell<Vec<bool>>>,
    order: Rc<JourneyOrder>,
}

async fn closed_vu(
    local: u32,
    id: u64,
    thread: usize,
    config: Arc<EngineConfig>,
    shared: ClosedShared,
    shard: Rc<RefCell<Shard>>,
    ended: CancellationToken,
) {
    let ClosedShared {
        allowed,
        running,
        iterations,
        alive,
        order,
    } = shared;
    running.set(running.get() + 1);
    shard.borrow_mut().set_busy(running.get());
    let mut vu = Vu::new(id, Client::new(config.client.clone()));
    let journey = &config.prepared.journeys[order.pick(id)];
    let stopping = Stopping {
        stop: &config.stop,
        ended: &ended,
    };
    while local < allowed.get() && !ended.is_cancelled() && !config.stop.is_cancelled() {
        let n = iterations.get();
        iterations.set(n + 1);
        let iteration = config
            .prepared
            .shard
            .global(n * config.threads as u64 + thread as u64);
        shard.borrow_mut().iteration_started(Instant::now(), None);
        let result = vu
            .iterate(&config.prepared, journey, iteration, None, &shard, stopping)
            .await;
        if result == IterationEnd::FeederExhausted {
            // Nothing left to send for this journey; don't spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    alive.borrow_mut()[local as usize] = false;
    running.set(running.get() - 1);
    shard.borrow_mut().set_busy(running.get());
}

/// Called at the plan's end or a stop: gives the VUs `drain` to finish what they were doing,
/// then drops them (what was in flight is recorded as cancelled).
async fn drain(vus: &mut tokio::task::JoinSet<()>, config: &EngineConfig) {
    let _ = tokio::time::timeout(config.drain, async {
        while vus.join_next().await.is_some() {}
    })
    .await;
    vus.abort_all();
    // Dropping a VU records its request in flight and its iteration; let that happen here.
    while vus.join_next().await.is_some() {}
}
