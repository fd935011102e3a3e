//! Measurement: what a worker thread records, and how it reaches the one aggregator.
//!
//! Each worker thread owns a [`Shard`]: HDR histograms and counters for the current one-second
//! interval. Once a second the shard sends its [`IntervalReport`] to the [`aggregate::Aggregator`],
//! which owns the run totals, the timeline and the HDR interval log. Workers never share a lock
//! on the hot path; views (progress line, dashboard) read the aggregator's snapshots.

pub mod adder;
pub mod aggregate;
pub mod assemble;
pub mod findings;
pub mod hlog;
pub mod infra;
pub mod merge;
pub mod regression;
pub mod results;
pub mod traces;

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Why a request or an iteration failed. The names are part of `results.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    ConnectRefused,
    ConnectFailed,
    Dns,
    Timeout,
    ConnectionReset,
    Tls,
    Protocol,
    Io,
    #[serde(rename = "http_4xx")]
    Http4xx,
    #[serde(rename = "http_5xx")]
    Http5xx,
    CheckFailed,
    ExtractFailed,
    /// The request could not be built safely and was not sent: a header value with CR, LF or
    /// NUL, or a URL from variables that is not a valid http(s) URL.
    InvalidRequest,
    /// The run stopped (signal, key, end of drain) before the response came; the latency
    /// recorded is how long it had waited, a lower bound.
    Cancelled,
    /// A step was still redirected after its `max_redirects` hops (a loop, most likely).
    TooManyRedirects,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectFailed,
        ErrorKind::Dns,
        ErrorKind::Timeout,
        ErrorKind::ConnectionReset,
        ErrorKind::Tls,
        ErrorKind::Protocol,
        ErrorKind::Io,
        ErrorKind::Http4xx,
        ErrorKind::Http5xx,
        ErrorKind::CheckFailed,
        ErrorKind::ExtractFailed,
        ErrorKind::InvalidRequest,
        ErrorKind::Cancelled,
        ErrorKind::TooManyRedirects,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::Dns => "dns",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ConnectionReset => "connection_reset",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Io => "io",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::CheckFailed => "check_failed",
            ErrorKind::ExtractFailed => "extract_failed",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::TooManyRedirects => "too_many_redirects",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A latency histogram in microseconds that grows as needed (bounded by the largest value).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid precision")
}

/// Longest latency kept as is (one hour); longer ones are recorded as one hour.
const MAX_MICROS: u64 = 3_600_000_000;

/// Records into an auto-resizing histogram (`saturating_record` would clamp to its current
/// range instead of growing it).
#[inline]
pub fn record_micros(h: &mut Histogram<u64>, micros: u64) {
    let _ = h.record(micros.clamp(1, MAX_MICROS));
}

/// Counts for one step (or one journey's iterations) over some span of time.
#[derive(Debug, Clone)]
pub struct Counts {
    pub latency: Histogram<u64>,
    pub requests: u64,
    pub errors: u64,
    pub by_kind: [u64; ErrorKind::COUNT],
    pub checks: u64,
    pub checks_failed: u64,
    /// Where the requests' time went (steps only).
    pub phases: Phases,
}

/// Time spent per phase of the requests, summed (µs). A phase of connecting (`dns`,
/// `connect`, `tls`) is only spent by a request that opened a connection: `connections` of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Requests whose time is in the sums below (those that got a response).
    pub timed: u64,
    pub connections: u64,
    pub dns_us: u64,
    pub connect_us: u64,
    pub tls_us: u64,
    /// From the request's first byte written to the response's first byte read.
    pub ttfb_us: u64,
    /// From the response's first byte to its last.
    pub transfer_us: u64,
    /// Responses that came over HTTP/2.
    pub http2: u64,
}

impl Phases {
    /// What was added since `before` (an earlier copy of the same running sums).
    pub fn since(&self, before: &Phases) -> Phases {
        Phases {
            timed: self.timed - before.timed,
            connections: self.connections - before.connections,
            dns_us: self.dns_us - before.dns_us,
            connect_us: self.connect_us - before.connect_us,
            tls_us: self.tls_us - before.tls_us,
            ttfb_us: self.ttfb_us - before.ttfb_us,
            transfer_us: self.transfer_us - before.transfer_us,
            http2: self.http2 - before.http2,
        }
    }

    pub fn add(&mut self, other: &Phases) {
        let Phases {
            timed,
            connections,
            dns_us,
            connect_us,
            tls_us,
            ttfb_us,
            transfer_us,
            http2,
        } = *other;
        self.timed += timed;
        self.connections += connections;
        self.dns_us += dns_us;
        self.connect_us += connect_us;
        self.tls_us += tls_us;
        self.ttfb_us += ttfb_us;
        self.transfer_us += transfer_us;
        self.http2 += http2;
    }
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            latency: new_histogram(),
            requests: 0,
            errors: 0,
            by_kind: [0; ErrorKind::COUNT],
            checks: 0,
            checks_failed: 0,
            phases: Phases::default(),
        }
    }
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.latency
            .add(&other.latency)
            .expect("auto-resizing histograms accept any value");
        self.requests += other.requests;
        self.errors += other.errors;
        for (a, b) in self.by_kind.iter_mut().zip(other.by_kind.iter()) {
            *a += b;
        }
        self.checks += other.checks;
        self.checks_failed += other.checks_failed;
        self.phases.add(&other.phases);
    }

    /// A request that failed before it was sent: counted, with no latency to record.
    fn record_unsent(&mut self, error: ErrorKind) {
        self.requests += 1;
        self.errors += 1;
        self.by_kind[error.index()] += 1;
    }

    fn record(&mut self, micros: u64, error: Option<ErrorKind>) {
        record_micros(&mut self.latency, micros);
        self.requests += 1;
        if let Some(kind) = error {
            self.errors += 1;
            self.by_kind[kind.index()] += 1;
        }
    }
}

/// A few messages per error kind, so a user sees what "connect_failed" actually was.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorSample {
    pub kind: ErrorKind,
    pub step: String,
    pub message: String,
}

/// Counts of the run's iterations and traffic that add up across threads and seconds. Every
/// counter is listed here once; reports, their merge and the run totals carry this type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub iterations_started: u64,
    pub dropped_iterations: u64,
    pub late_iterations: u64,
    /// Open-model arrivals that found every VU busy at `max_vus` and waited for one.
    pub arrivals_queued: u64,
    /// Iterations skipped because a `unique` feeder ran out.
    pub feeder_exhausted: u64,
    /// Iterations the end of the run (or a stop) cut part-way.
    pub interrupted_iterations: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `bytes_in` with each encoded body counted at its decoded size.
    pub bytes_in_decoded: u64,
    /// Requests written a second time on a fresh connection after a reused one ended with no
    /// response; each is counted once in the requests.
    pub retried_requests: u64,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        // Destructured without `..`: a new counter cannot be left out of the sum.
        let Counters {
            iterations_started,
            dropped_iterations,
            late_iterations,
            arrivals_queued,
            feeder_exhausted,
            interrupted_iterations,
            bytes_in,
            bytes_out,
            bytes_in_decoded,
            retried_requests,
        } = *other;
        self.iterations_started += iterations_started;
        self.dropped_iterations += dropped_iterations;
        self.late_iterations += late_iterations;
        self.arrivals_queued += arrivals_queued;
        self.feeder_exhausted += feeder_exhausted;
        self.interrupted_iterations += interrupted_iterations;
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
        self.bytes_in_decoded += bytes_in_decoded;
        self.retried_requests += retried_requests;
    }
}

/// What one worker thread measured in one second of the run.
#[derive(Debug)]
pub struct IntervalReport {
    pub thread: usize,
    /// Seconds since the run's start: the interval is `[second, second + 1)`.
    pub second: u32,
    /// The thread has stopped; it sends nothing after this.
    pub last: bool,
    /// Indexed by flattened step index (see `StepIndex`).
    pub steps: Vec<Counts>,
    /// Whole iterations, per journey: from start (intended, in the open model) to the end of
    /// the last step.
    pub journeys: Vec<Counts>,
    pub counters: Counters,
    /// Schedule lag of open-model arrivals (µs): actual start minus intended start.
    pub schedule_lag: Histogram<u64>,
    /// The most VUs busy at once during the interval.
    pub active_vus: u32,
    pub samples: Vec<ErrorSample>,
    /// Per step, the thread's kept trace ids (`trace = true`): sent with its last report only.
    pub traces: Vec<traces::StepTraces>,
}

impl IntervalReport {
    fn new(thread: usize, second: u32, steps: usize, journeys: usize) -> Self {
        IntervalReport {
            thread,
            second,
            last: false,
            steps: (0..steps).map(|_| Counts::default()).collect(),
            journeys: (0..journeys).map(|_| Counts::default()).collect(),
            counters: Counters::default(),
            schedule_lag: new_histogram(),
            active_vus: 0,
            samples: Vec::new(),
            traces: Vec::new(),
        }
    }
}

/// Error samples kept per thread for the whole run, per kind.
const SAMPLES_PER_KIND: usize = 3;

/// A worker thread's recorder. Not shared across threads.
pub struct Shard {
    thread: usize,
    run_start: Instant,
    current: IntervalReport,
    steps: usize,
    journeys: usize,
    sink: std::sync::mpsc::Sender<IntervalReport>,
    samples_taken: [usize; ErrorKind::COUNT],
    /// VUs busy right now.
    busy: u32,
    /// Per step; empty until a traced request is recorded.
    traces: Vec<traces::StepTraces>,
}

impl Shard {
    pub fn new(
        thread: usize,
        run_start: Instant,
        steps: usize,
        journeys: usize,
        sink: std::sync::mpsc::Sender<IntervalReport>,
    ) -> Self {
        Shard {
            thread,
            run_start,
            current: IntervalReport::new(thread, 0, steps, journeys),
            steps,
            journeys,
            sink,
            samples_taken: [0; ErrorKind::COUNT],
            busy: 0,
            traces: Vec::new(),
        }
    }

    /// Moves to the interval containing `at`, sending every interval before it.
    #[inline]
    fn roll_to(&mut self, at: Instant) {
        let second = at.saturating_duration_since(self.run_start).as_secs() as u32;
        if second > self.current.second {
            self.flush_until(second);
        }
    }

    /// Sends the current interval and any empty ones up to (not including) `second`.
    pub fn flush_until(&mut self, second: u32) {
        while self.current.second < second {
            let mut next = IntervalReport::new(
                self.thread,
                self.current.second + 1,
                self.steps,
                self.journeys,
            );
            next.active_vus = self.busy;
            let done = std::mem::replace(&mut self.current, next);
            // The aggregator going away means the run is over; nothing left to tell it.
            let _ = self.sink.send(done);
        }
    }

    /// Sends the interval in progress as the thread's last.
    pub fn finish(mut self, at: Instant) {
        self.roll_to(at);
        self.current.last = true;
        self.current.traces = std::mem::take(&mut self.traces);
        let last = std::mem::replace(&mut self.current, IntervalReport::new(self.thread, 0, 0, 0));
        let _ = self.sink.send(last);
    }

    #[inline]
    pub fn record_request(
        &mut self,
        step: usize,
        end: Instant,
        latency: Duration,
        error: Option<ErrorKind>,
    ) {
        self.roll_to(end);
        self.current.steps[step].record(latency.as_micros() as u64, error);
    }

    /// A request refused before it was sent (see [`ErrorKind::InvalidRequest`]): counted as a
    /// failed request, but with no latency, which would only pull the percentiles down.
    pub fn record_unsent(&mut self, step: usize, at: Instant, error: ErrorKind) {
        self.roll_to(at);
        self.current.steps[step].record_unsent(error);
    }

    /// Where a step's request spent its time (see [`Phases`]).
    pub fn record_phases(&mut self, step: usize, phases: &Phases) {
        self.current.steps[step].phases.add(phases);
    }

    pub fn record_checks(&mut self, step: usize, checks: u64, failed: u64) {
        let c = &mut self.current.steps[step];
        c.checks += checks;
        c.checks_failed += failed;
    }

    pub fn record_iteration(
        &mut self,
        journey: usize,
        end: Instant,
        duration: Duration,
        error: Option<ErrorKind>,
    ) {
        self.roll_to(end);
        self.current.journeys[journey].record(duration.as_micros() as u64, error);
    }

    pub fn iteration_started(&mut self, now: Instant, lag: Option<Duration>) {
        self.roll_to(now);
        self.current.counters.iterations_started += 1;
        if let Some(lag) = lag {
            record_micros(&mut self.current.schedule_lag, lag.as_micros() as u64);
        }
    }

    pub fn iteration_late(&mut self) {
        self.current.counters.late_iterations += 1;
    }

    /// The number of busy VUs changed; the interval keeps its peak (a gauge sampled once a
    /// second would read 0 for sub-millisecond iterations).
    pub fn set_busy(&mut self, busy: u32) {
        self.busy = busy;
        self.current.active_vus = self.current.active_vus.max(busy);
    }

    pub fn arrival_queued(&mut self) {
        self.current.counters.arrivals_queued += 1;
    }

    pub fn iteration_dropped(&mut self, now: Instant) {
        self.roll_to(now);
        self.current.counters.dropped_iterations += 1;
    }

    pub fn feeder_exhausted(&mut self, now: Instant) {
        self.roll_to(now);
        self.current.counters.feeder_exhausted += 1;
    }

    pub fn iteration_interrupted(&mut self, now: Instant) {
        self.roll_to(now);
        self.current.counters.interrupted_iterations += 1;
    }

    pub fn add_bytes(&mut self, bytes_in: u64, bytes_out: u64, bytes_in_decoded: u64) {
        self.current.counters.bytes_in += bytes_in;
        self.current.counters.bytes_in_decoded += bytes_in_decoded;
        self.current.counters.bytes_out += bytes_out;
    }

    /// A request sent with W3C trace id `trace_id`: kept if it is among the step's slowest
    /// or first failed.
    pub fn record_trace(
        &mut self,
        step: usize,
        trace_id: u128,
        end: Instant,
        latency: Duration,
        error: Option<ErrorKind>,
    ) {
        if self.traces.len() < self.steps {
            self.traces.resize_with(self.steps, Default::default);
        }
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let kept = &mut self.traces[step];
        if kept.wants(latency_ms, error.is_some()) {
            kept.offer(traces::TracedRequest {
                trace_id: format!("{trace_id:032x}"),
                latency_ms: (latency_ms * 1000.0).round() / 1000.0,
                at_s: (end.saturating_duration_since(self.run_start).as_secs_f64() * 1000.0)
                    .round()
                    / 1000.0,
                error,
            });
        }
    }

    pub fn add_retries(&mut self, retries: u64) {
        self.current.counters.retried_requests += retries;
    }

    /// Whether a sample of this kind is still wanted (so the caller formats the message only then).
    pub fn wants_sample(&self, kind: ErrorKind) -> bool {
        self.samples_taken[kind.index()] < SAMPLES_PER_KIND
    }

    pub fn sample(&mut self, kind: ErrorKind, step: &str, message: String) {
        if self.wants_sample(kind) {
            self.samples_taken[kind.index()] += 1;
            self.current.samples.push(ErrorSample {
                kind,
                step: step.to_string(),
                message,
            });
        }
    }

    /// Called by the thread's ticker so that idle threads still close their intervals.
    pub fn tick(&mut self, now: Instant) {
        self.roll_to(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema's error kinds, the `errors` object's required keys and the README's list
    /// name every kind, so a new kind cannot forget the contract.
    #[test]
    fn schema_and_readme_list_every_error_kind() {
        let root = env!("CARGO_MANIFEST_DIR");
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{root}/reports/schema/results.schema.json")).unwrap(),
        )
        .unwrap();
        let names = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .expect("a list of kinds")
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect()
        };
        let ours: Vec<String> = ErrorKind::ALL
            .iter()
            .map(|k| k.as_str().to_string())
            .collect();
        assert_eq!(names(&schema["$defs"]["error_kind"]["enum"]), ours);
        assert_eq!(
            names(&schema["properties"]["errors"]["allOf"][1]["required"]),
            ours
        );
        let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
        let section = readme
            .split("### Errors, classified")
            .nth(1)
            .expect("README has an error section");
        for k in ErrorKind::ALL {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                k.as_str(),
                "serde name and as_str agree"
            );
            assert!(
                section.contains(&format!("`{}`", k.as_str())),
                "README's \"Errors, classified\" does not name {}",
                k.as_str()
            );
        }
    }
}
