//! The stack's own signals, exposed at `GET /metrics` in the Prometheus text format.
//!
//! Hot paths only bump atomics: requests through [`RouteMetrics`] (found by the HTTP
//! middleware from the matched route), workers through [`WorkerMetrics`], the database gate
//! through its [`Histogram`]. Gauges that live elsewhere (queue depth, pool usage, process CPU
//! and memory) are read at scrape time and handed to [`render`] in a [`Scrape`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::faults::FaultSet;
use crate::host::HostPressure;
use crate::store::{PoolSnapshot, Queue, QueueStats};

/// Upper bounds (seconds) of the latency buckets.
pub const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// A fixed-bucket latency histogram made of atomics.
#[derive(Debug)]
pub struct Histogram {
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(value.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Per-bucket (not cumulative) counts, in the order of [`BUCKETS`], then `+Inf`.
    pub fn bucket_counts(&self) -> [u64; BUCKETS.len() + 1] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }

    /// Sum of the observed values, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braced} {sum}");
        let _ = writeln!(out, "{name}_count{braced} {cumulative}");
    }
}

/// Counters of one (method, route) pair.
#[derive(Debug)]
pub struct RouteMetrics {
    pub method: &'static str,
    pub route: &'static str,
    /// Whether request-side faults (CPU work, error rate) apply to this route.
    pub faultable: bool,
    /// Responses by status class: 1xx..5xx.
    by_class: [AtomicU64; 5],
    latency: Histogram,
}

impl RouteMetrics {
    fn new(method: &'static str, route: &'static str, faultable: bool) -> Self {
        RouteMetrics {
            method,
            route,
            faultable,
            by_class: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: Histogram::new(),
        }
    }

    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(elapsed);
    }

    pub fn requests(&self, class: usize) -> u64 {
        self.by_class[class - 1].load(Ordering::Relaxed)
    }

    pub fn latency(&self) -> &Histogram {
        &self.latency
    }
}

/// Counters of one worker kind, shared by all its instances in the process.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    pub processed: AtomicU64,
    pub failed: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub in_flight: AtomicI64,
}

/// Counters of the catalogue cache (in process or Redis).
#[derive(Debug, Default)]
pub struct CacheMetrics {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    /// Lookups that could not ask the cache (Redis failed or was in its back-off).
    pub errors: AtomicU64,
    /// Writes and invalidations that did not reach Redis.
    pub write_errors: AtomicU64,
}

impl CacheMetrics {
    pub fn count(&self, lookup: crate::cache::Lookup) {
        use crate::cache::Lookup;
        let counter = match lookup {
            Lookup::Hit => &self.hits,
            Lookup::Miss => &self.misses,
            Lookup::Error => &self.errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The registry: fixed after start, so lookups need no lock.
#[derive(Debug)]
pub struct Metrics {
    routes: HashMap<&'static str, Vec<Arc<RouteMetrics>>>,
    unmatched: Arc<RouteMetrics>,
    pub email_worker: WorkerMetrics,
    pub multivac_worker: WorkerMetrics,
    pub cache: CacheMetrics,
}

impl Metrics {
    /// `routes` lists (method, route pattern, faultable) for every route served.
    pub fn new(routes: &[(&'static str, &'static str, bool)]) -> Self {
        let mut map: HashMap<&'static str, Vec<Arc<RouteMetrics>>> = HashMap::new();
        for (method, route, faultable) in routes {
            map.entry(route)
                .or_default()
                .push(Arc::new(RouteMetrics::new(method, route, *faultable)));
        }
        Metrics {
            routes: map,
            unmatched: Arc::new(RouteMetrics::new("ANY", "unmatched", false)),
            email_worker: WorkerMetrics::default(),
            multivac_worker: WorkerMetrics::default(),
            cache: CacheMetrics::default(),
        }
    }

    pub fn route(&self, method: &str, route: &str) -> &RouteMetrics {
        self.routes
            .get(route)
            .and_then(|list| list.iter().find(|m| m.method == method))
            .unwrap_or(&self.unmatched)
    }

    pub fn unmatched(&self) -> &RouteMetrics {
        &self.unmatched
    }

    /// Every route's counters (the unmatched one last), for exporters other than `render`.
    pub fn routes(&self) -> impl Iterator<Item = &RouteMetrics> {
        self.routes
            .values()
            .flatten()
            .map(|r| &**r)
            .chain(std::iter::once(&*self.unmatched))
    }
}

/// Gauges read at scrape time.
pub struct Scrape<'a> {
    pub role: &'static str,
    pub backend: &'static str,
    pub pools: Vec<PoolSnapshot>,
    pub db_gate_in_use: usize,
    pub db_gate_limit: Option<usize>,
    pub db_acquire_wait: &'a Histogram,
    pub db_operation: &'a Histogram,
    pub queues: Vec<(Queue, Option<QueueStats>)>,
    /// Whether `queues` was read for this scrape rather than kept from an earlier one.
    pub queue_stats_fresh: bool,
    pub faults: FaultSet,
    pub process: ProcessStats,
    /// The pressure the process and its host are under (see [`crate::host`]).
    pub host: HostPressure,
}

/// CPU time and resident memory of this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: Option<u64>,
    pub start_time_seconds: f64,
}

impl ProcessStats {
    pub fn read(start_time_seconds: f64) -> Self {
        ProcessStats {
            cpu_seconds: cpu_seconds(),
            resident_bytes: resident_bytes(),
            start_time_seconds,
        }
    }
}

fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full rusage into the pointer it is given, which is valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0.0;
    }
    // SAFETY: the call succeeded, so the struct is initialised (and it was zeroed anyway).
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page_size).ok()?)
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The exposition text.
pub fn render(metrics: &Metrics, scrape: &Scrape<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let mut routes: Vec<&Arc<RouteMetrics>> = metrics.routes.values().flatten().collect();
    routes.push(&metrics.unmatched);
    routes.sort_by_key(|r| (r.route, r.method));

    header(
        &mut out,
        "peakload_stack_info",
        "gauge",
        "The stack's role and backend.",
    );
    let _ = writeln!(
        out,
        "peakload_stack_info{{role=\"{}\",backend=\"{}\"}} 1",
        scrape.role, scrape.backend
    );

    header(
        &mut out,
        "http_requests_total",
        "counter",
        "HTTP requests by route and status class.",
    );
    for r in &routes {
        for (i, class) in CLASSES.iter().enumerate() {
            let n = r.by_class[i].load(Ordering::Relaxed);
            if n > 0 || i == 1 {
                let _ = writeln!(
                    out,
                    "http_requests_total{{method=\"{}\",route=\"{}\",status_class=\"{class}\"}} {n}",
                    r.method, r.route
                );
            }
        }
    }
    header(
        &mut out,
        "http_request_duration_seconds",
        "histogram",
        "Time from request received to response headers ready.",
    );
    for r in &routes {
        let labels = format!("method=\"{}\",route=\"{}\"", r.method, r.route);
        r.latency
            .write(&mut out, "http_request_duration_seconds", &labels);
    }

    header(
        &mut out,
        "cache_requests_total",
        "counter",
        "Catalogue cache lookups by result; error: the cache (Redis) failed and the answer came from the database.",
    );
    for (result, counter) in [
        ("hit", &metrics.cache.hits),
        ("miss", &metrics.cache.misses),
        ("error", &metrics.cache.errors),
    ] {
        let _ = writeln!(
            out,
            "cache_requests_total{{result=\"{result}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    header(
        &mut out,
        "cache_write_errors_total",
        "counter",
        "Catalogue cache writes and invalidations that did not reach Redis.",
    );
    let _ = writeln!(
        out,
        "cache_write_errors_total {}",
        metrics.cache.write_errors.load(Ordering::Relaxed)
    );

    header(
        &mut out,
        "db_pool_connections",
        "gauge",
        "Database pool connections by state.",
    );
    for p in &scrape.pools {
        let in_use = p.open.saturating_sub(p.idle);
        let _ = writeln!(
            out,
            "db_pool_connections{{pool=\"{}\",state=\"in_use\"}} {in_use}",
            p.name
        );
        let _ = writeln!(
            out,
            "db_pool_connections{{pool=\"{}\",state=\"idle\"}} {}",
            p.name, p.idle
        );
    }
    header(
        &mut out,
        "db_pool_max_connections",
        "gauge",
        "Configured pool size.",
    );
    for p in &scrape.pools {
        let _ = writeln!(
            out,
            "db_pool_max_connections{{pool=\"{}\"}} {}",
            p.name, p.max
        );
    }
    header(
        &mut out,
        "db_operations_in_flight",
        "gauge",
        "Database operations holding the concurrency gate.",
    );
    let _ = writeln!(out, "db_operations_in_flight {}", scrape.db_gate_in_use);
    header(
        &mut out,
        "db_operations_limit",
        "gauge",
        "Concurrency limit of database operations (the db_pool_size fault); -1 = none.",
    );
    let limit = scrape.db_gate_limit.map_or(-1, |n| n as i64);
    let _ = writeln!(out, "db_operations_limit {limit}");
    header(
        &mut out,
        "db_pool_acquire_wait_seconds",
        "histogram",
        "Time waiting for the database gate and a pooled connection (injected latency excluded).",
    );
    scrape
        .db_acquire_wait
        .write(&mut out, "db_pool_acquire_wait_seconds", "");
    header(
        &mut out,
        "db_operation_duration_seconds",
        "histogram",
        "Time a database operation held its connection, injected latency included (the wait for the gate not).",
    );
    scrape
        .db_operation
        .write(&mut out, "db_operation_duration_seconds", "");

    header(
        &mut out,
        "queue_depth",
        "gauge",
        "Messages queued or leased, not yet done.",
    );
    for (q, stats) in &scrape.queues {
        if let Some(s) = stats {
            let _ = writeln!(out, "queue_depth{{queue=\"{}\"}} {}", q.as_str(), s.depth);
        }
    }
    header(
        &mut out,
        "queue_oldest_message_age_seconds",
        "gauge",
        "Age of the oldest message not yet done (0 when empty).",
    );
    for (q, stats) in &scrape.queues {
        if let Some(s) = stats {
            let age = s.oldest_age.map_or(0.0, |d| d.as_secs_f64());
            let _ = writeln!(
                out,
                "queue_oldest_message_age_seconds{{queue=\"{}\"}} {age}",
                q.as_str()
            );
        }
    }
    header(
        &mut out,
        "queue_dead_letters",
        "gauge",
        "Messages dead-lettered after too many attempts.",
    );
    for (q, stats) in &scrape.queues {
        if let Some(s) = stats {
            let _ = writeln!(
                out,
                "queue_dead_letters{{queue=\"{}\"}} {}",
                q.as_str(),
                s.dead_lettered
            );
        }
    }
    header(
        &mut out,
        "queue_up",
        "gauge",
        "1 if the queue's stats could be read.",
    );
    for (q, stats) in &scrape.queues {
        let _ = writeln!(
            out,
            "queue_up{{queue=\"{}\"}} {}",
            q.as_str(),
            u8::from(stats.is_some())
        );
    }

    header(
        &mut out,
        "queue_stats_fresh",
        "gauge",
        "1 if the queue gauges were read for this scrape, 0 if the database was slow and they are the last values read.",
    );
    let _ = writeln!(
        out,
        "queue_stats_fresh {}",
        u8::from(scrape.queue_stats_fresh)
    );

    let workers = [
        ("email", &metrics.email_worker),
        ("multivac", &metrics.multivac_worker),
    ];
    for (name, kind, help, read) in [
        (
            "worker_messages_processed_total",
            "counter",
            "Messages handled successfully.",
            (|w: &WorkerMetrics| w.processed.load(Ordering::Relaxed) as i64)
                as fn(&WorkerMetrics) -> i64,
        ),
        (
            "worker_messages_failed_total",
            "counter",
            "Message attempts that failed.",
            |w| w.failed.load(Ordering::Relaxed) as i64,
        ),
        (
            "worker_messages_dead_lettered_total",
            "counter",
            "Messages given up on.",
            |w| w.dead_lettered.load(Ordering::Relaxed) as i64,
        ),
        (
            "worker_messages_in_flight",
            "gauge",
            "Messages being handled now.",
            |w| w.in_flight.load(Ordering::Relaxed),
        ),
    ] {
        header(&mut out, name, kind, help);
        for (worker, m) in workers {
            let _ = writeln!(out, "{name}{{worker=\"{worker}\"}} {}", read(m));
        }
    }

    header(
        &mut out,
        "peakload_stack_fault",
        "gauge",
        "Injected faults (0 when off).",
    );
    let f = &scrape.faults;
    for (name, value) in [
        ("db_latency_ms", f.db_latency_ms as f64),
        ("db_pool_size", f.db_pool_size.map_or(0.0, f64::from)),
        ("cpu_work_us", f.cpu_work_us as f64),
        ("error_rate", f.error_rate),
        ("worker_paused", f64::from(u8::from(f.worker_paused))),
        ("worker_delay_ms", f.worker_delay_ms as f64),
    ] {
        let _ = writeln!(out, "peakload_stack_fault{{fault=\"{name}\"}} {value}");
    }

    let p = &scrape.process;
    header(
        &mut out,
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent.",
    );
    let _ = writeln!(out, "process_cpu_seconds_total {}", p.cpu_seconds);
    if let Some(rss) = p.resident_bytes {
        header(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size.",
        );
        let _ = writeln!(out, "process_resident_memory_bytes {rss}");
    }
    write_host(&mut out, &scrape.host);
    write_structure(&mut out, scrape.role);
    header(
        &mut out,
        "process_start_time_seconds",
        "gauge",
        "Start time since the Unix epoch.",
    );
    let _ = writeln!(out, "process_start_time_seconds {}", p.start_time_seconds);
    out
}

/// The host's pressure, the process's scheduling delay and its cgroup's limits, under names
/// that say what they measure: `host_pressure_<resource>_waiting_seconds_total` (PSI `some`),
/// `…_stalled_seconds_total` (`full`), `process_schedstat_*_seconds_total`,
/// `cgroup_cpu_throttled_*`, `cgroup_memory_events_total{event}`.
fn write_host(out: &mut String, h: &HostPressure) {
    for (resource, stall) in [("cpu", h.cpu), ("io", h.io), ("memory", h.memory)] {
        let Some(stall) = stall else { continue };
        let name = format!("host_pressure_{resource}_waiting_seconds_total");
        header(
            out,
            &name,
            "counter",
            &format!("Time some task on the host was stalled waiting for {resource} (PSI some)."),
        );
        let _ = writeln!(out, "{name} {}", stall.some_seconds);
        // The CPU's `full` line is zero by definition at the host level.
        if let Some(full) = stall.full_seconds.filter(|_| resource != "cpu") {
            let name = format!("host_pressure_{resource}_stalled_seconds_total");
            header(
                out,
                &name,
                "counter",
                &format!(
                    "Time every non-idle task on the host was stalled on {resource} (PSI full)."
                ),
            );
            let _ = writeln!(out, "{name} {full}");
        }
    }
    if let (Some(run), Some(wait)) = (h.run_seconds, h.wait_seconds) {
        header(
            out,
            "process_schedstat_running_seconds_total",
            "counter",
            "Time this process's threads ran on a CPU (schedstat).",
        );
        let _ = writeln!(out, "process_schedstat_running_seconds_total {run}");
        header(
            out,
            "process_schedstat_waiting_seconds_total",
            "counter",
            "Time this process's threads were runnable but waiting for a CPU (schedstat).",
        );
        let _ = writeln!(out, "process_schedstat_waiting_seconds_total {wait}");
    }
    if let (Some(periods), Some(seconds)) = (h.throttled_periods, h.throttled_seconds) {
        header(
            out,
            "cgroup_cpu_throttled_periods_total",
            "counter",
            "Scheduler periods in which this process's cgroup was held at its CPU limit.",
        );
        let _ = writeln!(out, "cgroup_cpu_throttled_periods_total {periods}");
        header(
            out,
            "cgroup_cpu_throttled_seconds_total",
            "counter",
            "Time this process's cgroup was held at its CPU limit.",
        );
        let _ = writeln!(out, "cgroup_cpu_throttled_seconds_total {seconds}");
    }
    if !h.memory_events.is_empty() {
        header(
            out,
            "cgroup_memory_events_total",
            "counter",
            "Times this process's cgroup reached a memory boundary (high, max) or killed for memory.",
        );
        for (event, n) in &h.memory_events {
            let _ = writeln!(out, "cgroup_memory_events_total{{event=\"{event}\"}} {n}");
        }
    }
}

/// The workers and the queue each drains.
const WORKERS: [(&str, &str); 2] = [("email", "notifications"), ("multivac", "multivac")];

/// What depends on what in this process, for a diagnosis to tell effects from causes: a change
/// in `on` shows up in `component` (a caller slows with the database it calls; a queue backs up
/// when its consumer stops; a worker stops with the process it runs in).
fn write_structure(out: &mut String, role: &str) {
    header(
        out,
        "peakload_stack_dependency",
        "gauge",
        "Declared structure: a change in `on` shows up in `component`.",
    );
    let mut edge = |component: &str, on: &str| {
        let _ = writeln!(
            out,
            "peakload_stack_dependency{{component=\"{component}\",on=\"{on}\"}} 1"
        );
    };
    if role == "api" || role == "all" {
        edge(role, "database");
    }
    if role == "worker" || role == "all" {
        for (worker, queue) in WORKERS {
            let w = format!("worker:{worker}");
            edge(&w, "database");
            edge(&w, role);
            edge(&format!("queue:{queue}"), &w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.write(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn a_worker_declares_what_its_workers_and_queues_depend_on() {
        let mut out = String::new();
        write_structure(&mut out, "worker");
        for line in [
            r#"peakload_stack_dependency{component="worker:email",on="database"} 1"#,
            r#"peakload_stack_dependency{component="worker:email",on="worker"} 1"#,
            r#"peakload_stack_dependency{component="queue:notifications",on="worker:email"} 1"#,
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in:\n{out}");
        }
        let mut api = String::new();
        write_structure(&mut api, "api");
        assert!(api.contains(r#"{component="api",on="database"}"#), "{api}");
        assert!(!api.contains("worker:"), "{api}");
    }

    #[test]
    fn host_pressure_is_exported_under_names_that_say_what_it_measures() {
        let mut out = String::new();
        write_host(
            &mut out,
            &HostPressure {
                cpu: Some(crate::host::Stall {
                    some_seconds: 1.5,
                    full_seconds: Some(0.0),
                }),
                io: Some(crate::host::Stall {
                    some_seconds: 2.0,
                    full_seconds: Some(1.0),
                }),
                memory: None,
                run_seconds: Some(3.0),
                wait_seconds: Some(0.25),
                throttled_periods: Some(4),
                throttled_seconds: Some(0.5),
                memory_events: vec![("max".into(), 2)],
            },
        );
        for line in [
            "host_pressure_cpu_waiting_seconds_total 1.5",
            "host_pressure_io_waiting_seconds_total 2",
            "host_pressure_io_stalled_seconds_total 1",
            "process_schedstat_waiting_seconds_total 0.25",
            "cgroup_cpu_throttled_seconds_total 0.5",
            r#"cgroup_memory_events_total{event="max"} 2"#,
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in:\n{out}");
        }
        assert!(!out.contains("host_pressure_cpu_stalled"), "{out}");
        assert!(!out.contains("host_pressure_memory"), "{out}");
        // What this machine offers is read without error.
        let _ = HostPressure::read();
    }

    #[test]
    fn process_stats_are_readable() {
        let p = ProcessStats::read(0.0);
        assert!(p.cpu_seconds >= 0.0);
        assert!(p.resident_bytes.unwrap_or(1) > 0);
    }
}
