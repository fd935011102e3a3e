//! The one owner of a run's measurements.
//!
//! Worker shards send an [`IntervalReport`] per thread per second. Once every thread has
//! reported a second, it is final: merged into the run totals, appended to the timeline and
//! written to the HDR interval log. A [`LiveView`] snapshot is refreshed for the views.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::hlog::HlogWriter;
use super::results::{kinds_map, IntervalLatency, TimelinePoint};
use super::{new_histogram, Counters, Counts, ErrorSample, IntervalReport};
use crate::plan::Plan;

/// Everything measured over the whole run.
#[derive(Debug, Clone)]
pub struct RunTotals {
    pub steps: Vec<Counts>,
    pub journeys: Vec<Counts>,
    pub overall: Counts,
    pub counters: Counters,
    pub schedule_lag: Histogram<u64>,
    pub samples: Vec<ErrorSample>,
    pub timeline: Vec<TimelinePoint>,
    /// Why the HDR interval log stopped being written (a full disk, ...), if it did.
    pub hlog_error: Option<String>,
    /// Per step (`trace = true`), or empty.
    pub traces: Vec<super::traces::StepTraces>,
}

impl RunTotals {
    fn new(steps: usize, journeys: usize) -> Self {
        RunTotals {
            steps: (0..steps).map(|_| Counts::default()).collect(),
            journeys: (0..journeys).map(|_| Counts::default()).collect(),
            overall: Counts::default(),
            counters: Counters::default(),
            schedule_lag: new_histogram(),
            samples: Vec::new(),
            timeline: Vec::new(),
            hlog_error: None,
            traces: Vec::new(),
        }
    }
}

/// What the views read while the run goes on.
#[derive(Debug, Clone, Default)]
pub struct LiveView {
    /// Seconds finalized so far.
    pub seconds: u32,
    pub last: Option<TimelinePoint>,
    pub requests: u64,
    pub errors: u64,
    /// The run's counters so far.
    pub counters: Counters,
    /// Per step: requests, errors, p50/p95/p99/max over the whole run so far (ms).
    pub steps: Vec<StepLive>,
    pub overall_p99_ms: f64,
    /// The last [`LIVE_WINDOW`] finalized seconds, oldest first: the dashboard's charts.
    pub recent: VecDeque<TimelinePoint>,
    /// Per journey: iterations and failed iterations so far.
    pub journeys: Vec<JourneyLive>,
    pub iterations: u64,
    pub checks: u64,
    pub checks_failed: u64,
    /// p99 of how late arrivals started during the last finalized second (ms).
    pub schedule_lag_p99_ms: f64,
    /// Whole-run latency histograms as of `seconds`, behind an `Arc` so that cloning a
    /// snapshot stays cheap; live thresholds read any statistic from them.
    pub histograms: Arc<LiveHistograms>,
}

/// Seconds of timeline a [`LiveView`] keeps for the charts.
pub const LIVE_WINDOW: usize = 600;

#[derive(Debug, Clone, Default)]
pub struct JourneyLive {
    pub iterations: u64,
    pub failed_iterations: u64,
}

/// Whole-run latency (µs) so far, in the same scopes as `results.json`.
#[derive(Debug, Clone)]
pub struct LiveHistograms {
    pub overall: Histogram<u64>,
    pub steps: Vec<Histogram<u64>>,
    pub journeys: Vec<Histogram<u64>>,
}

impl Default for LiveHistograms {
    fn default() -> Self {
        LiveHistograms {
            overall: new_histogram(),
            steps: Vec::new(),
            journeys: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StepLive {
    pub requests: u64,
    pub errors: u64,
    pub checks_failed: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

pub struct Aggregator {
    threads: usize,
    plan: Plan,
    step_tags: Vec<String>,
    totals: RunTotals,
    /// Second → (threads that reported it, merged report).
    pending: BTreeMap<u32, (usize, IntervalReport)>,
    finished: Vec<Option<u32>>,
    next_second: u32,
    hlog: Option<HlogWriter<Box<dyn Write + Send>>>,
    live: Arc<Mutex<LiveView>>,
    cpu_last: (Instant, f64),
    /// When the run's load ended; the last (partial) second's rate uses its true length.
    run_start: Instant,
}

impl Aggregator {
    pub fn new(
        threads: usize,
        plan: Plan,
        step_tags: Vec<String>,
        journeys: usize,
        hlog: Option<HlogWriter<Box<dyn Write + Send>>>,
        run_start: Instant,
    ) -> Self {
        let steps = step_tags.len();
        Aggregator {
            threads,
            plan,
            step_tags,
            totals: RunTotals::new(steps, journeys),
            pending: BTreeMap::new(),
            finished: vec![None; threads],
            next_second: 0,
            hlog,
            live: Arc::new(Mutex::new(LiveView {
                steps: vec![StepLive::default(); steps],
                journeys: vec![JourneyLive::default(); journeys],
                ..LiveView::default()
            })),
            cpu_last: (Instant::now(), process_cpu_seconds()),
            run_start,
        }
    }

    pub fn live(&self) -> Arc<Mutex<LiveView>> {
        self.live.clone()
    }

    /// Receives reports until every thread has sent its last one, or the channel closes.
    pub fn run(mut self, rx: Receiver<IntervalReport>) -> RunTotals {
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(report) => {
                    self.ingest(report);
                    if self.finished.iter().all(Option::is_some) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.finalize_all();
        if let Some(h) = self.hlog.as_mut() {
            let flushed = h.flush();
            self.hlog_failed(flushed);
        }
        self.totals
    }

    /// The first error writing the HDR log is kept for the run's end, and the log is given
    /// up: a partial log is said to be partial, never passed off as complete.
    fn hlog_failed(&mut self, written: std::io::Result<()>) {
        if let Err(e) = written {
            self.totals
                .hlog_error
                .get_or_insert_with(|| format!("cannot write the HDR interval log: {e}"));
            self.hlog = None;
        }
    }

    fn ingest(&mut self, report: IntervalReport) {
        let thread = report.thread;
        let second = report.second;
        if report.last {
            self.finished[thread] = Some(second);
        }
        match self.pending.get_mut(&second) {
            Some((n, merged)) => {
                *n += 1;
                merge_report(merged, &report);
            }
            None => {
                self.pending.insert(second, (1, report));
            }
        }
        self.finalize_ready();
    }

    /// Finalizes seconds, in order, that every thread has reported (or stopped before).
    fn finalize_ready(&mut self) {
        loop {
            let s = self.next_second;
            let done_threads = self
                .finished
                .iter()
                .filter(|f| matches!(f, Some(last) if *last < s))
                .count();
            let reported = self.pending.get(&s).map(|(n, _)| *n).unwrap_or(0);
            if reported + done_threads < self.threads || self.pending.is_empty() {
                return;
            }
            if reported == 0 {
                // Every thread stopped before this second.
                return;
            }
            let (_, report) = self.pending.remove(&s).expect("checked above");
            self.finalize(report, false);
            self.next_second += 1;
        }
    }

    fn finalize_all(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let last = pending.keys().next_back().copied();
        for (s, (_, report)) in pending {
            self.finalize(report, Some(s) == last);
        }
    }

    fn finalize(&mut self, report: IntervalReport, last_second: bool) {
        let s = report.second;
        let mut interval = Counts::default();
        for c in &report.steps {
            interval.add(c);
        }
        let length = if last_second {
            let elapsed = self.run_start.elapsed().as_secs_f64() - s as f64;
            elapsed.clamp(0.001, 1.0)
        } else {
            1.0
        };
        if let Some(h) = self.hlog.as_mut() {
            let mut written = h.interval(None, s as f64, length, &interval.latency);
            for (tag, c) in self.step_tags.iter().zip(&report.steps) {
                if c.requests > 0 && written.is_ok() {
                    written = h.interval(Some(tag), s as f64, length, &c.latency);
                }
            }
            // Once a second: an immediate exit (second Ctrl-C) still leaves every finished
            // second in the log.
            let written = written.and_then(|()| h.flush());
            self.hlog_failed(written);
        }
        let now = Instant::now();
        let cpu = process_cpu_seconds();
        let wall = now.duration_since(self.cpu_last.0).as_secs_f64();
        let cpu_pct = if wall > 0.0 {
            ((cpu - self.cpu_last.1) / wall * 100.0).max(0.0)
        } else {
            0.0
        };
        self.cpu_last = (now, cpu);
        let lat = &interval.latency;
        let ms = |us: u64| super::results::round3(us as f64 / 1000.0);
        let point = TimelinePoint {
            t: s,
            requests: interval.requests,
            errors: interval.errors,
            rps: super::results::round3(interval.requests as f64 / length),
            latency_ms: if lat.is_empty() {
                IntervalLatency::default()
            } else {
                IntervalLatency {
                    p50: ms(lat.value_at_quantile(0.5)),
                    p95: ms(lat.value_at_quantile(0.95)),
                    p99: ms(lat.value_at_quantile(0.99)),
                    max: ms(lat.max()),
                }
            },
            active_vus: report.active_vus,
            target_rps: super::results::round3(self.plan.target_in_second(s)),
            iterations_started: report.counters.iterations_started,
            dropped_iterations: report.counters.dropped_iterations,
            errors_by_kind: kinds_map(&interval.by_kind, false),
            generator_cpu_pct: (cpu_pct * 10.0).round() / 10.0,
        };
        let t = &mut self.totals;
        t.overall.add(&interval);
        for (a, b) in t.steps.iter_mut().zip(&report.steps) {
            a.add(b);
        }
        for (a, b) in t.journeys.iter_mut().zip(&report.journeys) {
            a.add(b);
        }
        t.counters.add(&report.counters);
        t.schedule_lag
            .add(&report.schedule_lag)
            .expect("auto-resizing histogram");
        t.samples.extend(report.samples);
        super::traces::merge_steps(&mut t.traces, &report.traces);
        t.timeline.push(point.clone());
        let lag_p99 = ms(report.schedule_lag.value_at_quantile(0.99));
        let histograms = Arc::new(LiveHistograms {
            overall: t.overall.latency.clone(),
            steps: t.steps.iter().map(|c| c.latency.clone()).collect(),
            journeys: t.journeys.iter().map(|c| c.latency.clone()).collect(),
        });

        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.seconds = s + 1;
        live.requests = t.overall.requests;
        live.errors = t.overall.errors;
        live.counters = t.counters;
        live.overall_p99_ms = ms(t.overall.latency.value_at_quantile(0.99));
        live.recent.push_back(point.clone());
        if live.recent.len() > LIVE_WINDOW {
            live.recent.pop_front();
        }
        live.last = Some(point);
        live.iterations = t.journeys.iter().map(|c| c.requests).sum();
        live.checks = t.steps.iter().map(|c| c.checks).sum();
        live.checks_failed = t.steps.iter().map(|c| c.checks_failed).sum();
        live.schedule_lag_p99_ms = lag_p99;
        live.histograms = histograms;
        for (l, c) in live.journeys.iter_mut().zip(&t.journeys) {
            *l = JourneyLive {
                iterations: c.requests,
                failed_iterations: c.errors,
            };
        }
        for (l, c) in live.steps.iter_mut().zip(&t.steps) {
            *l = StepLive {
                requests: c.requests,
                errors: c.errors,
                checks_failed: c.checks_failed,
                p50: ms(c.latency.value_at_quantile(0.5)),
                p95: ms(c.latency.value_at_quantile(0.95)),
                p99: ms(c.latency.value_at_quantile(0.99)),
                max: ms(c.latency.max()),
            };
        }
    }
}

fn merge_report(into: &mut IntervalReport, from: &IntervalReport) {
    for (a, b) in into.steps.iter_mut().zip(&from.steps) {
        a.add(b);
    }
    for (a, b) in into.journeys.iter_mut().zip(&from.journeys) {
        a.add(b);
    }
    into.counters.add(&from.counters);
    into.schedule_lag
        .add(&from.schedule_lag)
        .expect("auto-resizing histogram");
    into.active_vus += from.active_vus;
    into.samples.extend(from.samples.iter().cloned());
    super::traces::merge_steps(&mut into.traces, &from.traces);
}

/// User + system CPU seconds used by this process so far.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

pub fn kind_totals(c: &Counts) -> BTreeMap<String, u64> {
    kinds_map(&c.by_kind, true)
}
