//! The stack's signals in CloudWatch: its `/metrics` gauges and counters as CloudWatch
//! metrics ([`MetricsPublisher`], `PutMetricData` every interval), and its log lines in
//! CloudWatch Logs ([`CloudWatchLogsLayer`] → [`LogShipper`], `PutLogEvents` batches).
//!
//! Metrics (namespace configurable, default `PeakloadStack`; every metric has the dimension
//! `Service`, and the ones below also the dimension named after them):
//!
//! | metric | unit | dimensions | what |
//! |---|---|---|---|
//! | `RequestCount`, `HTTPCode_4XX_Count`, `HTTPCode_5XX_Count` | Count | Service (API routes together); Service, Method, Route | requests answered in the interval |
//! | `Latency` | Seconds | as above | request latency as a distribution (`Values`/`Counts` of the `/metrics` histogram buckets' midpoints), so CloudWatch computes percentiles |
//! | `DbPoolInUse` | Count | Service, Pool | pooled connections in use |
//! | `DbOperationsInFlight` | Count | Service | operations holding the database gate |
//! | `DbPoolWaitTime` | Seconds | Service | waits for the gate and a connection (distribution) |
//! | `QueueDepth`, `QueueDeadLetters` | Count | Service, Queue | |
//! | `QueueOldestMessageAge` | Seconds | Service, Queue | |
//! | `WorkerMessagesProcessed`, `WorkerMessagesFailed` | Count | Service, Worker | in the interval (roles with workers) |
//! | `ProcessCPUUtilization` | Percent | Service | of one core, over the interval |
//! | `ProcessResidentMemory` | Bytes | Service | |
//!
//! Per-route metrics are sent only for routes that answered in the interval; the
//! service-wide ones every interval (zeros included). Intervals under a minute are sent as
//! high-resolution metrics (`StorageResolution = 1`).
//!
//! Logs: a `tracing` layer copies the stack's own events (targets `peakload_stack*`, not the
//! SDK's, so shipping never logs about itself) as `LEVEL message key=value…` lines into a
//! bounded channel (full → dropped and counted, never blocking a request); the shipper sends
//! them every second, in batches within `PutLogEvents`' limits.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use peakload_stack::metrics::{Histogram, BUCKETS};
use peakload_stack::Stack;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use crate::error::{service_error, AwsError};

pub const DEFAULT_NAMESPACE: &str = "PeakloadStack";

/// `PutMetricData` payloads stay well under 1 MB with this many data points.
const DATUMS_PER_CALL: usize = 150;
/// `PutLogEvents` limits: events and bytes (each event counts 26 bytes more).
const EVENTS_PER_BATCH: usize = 10_000;
const BYTES_PER_BATCH: usize = 1_048_576;
const EVENT_OVERHEAD: usize = 26;
/// A log line is cut to this many bytes (CloudWatch's limit is 256 KiB).
const MAX_LINE_BYTES: usize = 32 * 1024;

/// The CloudWatch and CloudWatch Logs clients, at `endpoint` when given.
pub async fn clients(
    endpoint: Option<&str>,
) -> (aws_sdk_cloudwatch::Client, aws_sdk_cloudwatchlogs::Client) {
    let shared = crate::sdk_config(endpoint).await;
    (
        aws_sdk_cloudwatch::Client::new(&shared),
        aws_sdk_cloudwatchlogs::Client::new(&shared),
    )
}

/// Counters seen at the previous sample, to send deltas.
#[derive(Default)]
struct Previous {
    at: Option<Instant>,
    cpu_seconds: f64,
    routes: HashMap<(&'static str, &'static str), RouteCounts>,
    acquire_wait: Buckets,
    workers: HashMap<&'static str, (u64, u64)>,
}

type Buckets = [u64; BUCKETS.len() + 1];

#[derive(Default, Clone, Copy)]
struct RouteCounts {
    by_class: [u64; 5],
    buckets: Buckets,
}

impl RouteCounts {
    fn minus(&self, earlier: &RouteCounts) -> RouteCounts {
        RouteCounts {
            by_class: std::array::from_fn(|i| self.by_class[i].saturating_sub(earlier.by_class[i])),
            buckets: minus(&self.buckets, &earlier.buckets),
        }
    }

    fn add(&mut self, other: &RouteCounts) {
        for i in 0..5 {
            self.by_class[i] += other.by_class[i];
        }
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
    }

    fn total(&self) -> u64 {
        self.by_class.iter().sum()
    }
}

fn minus(now: &Buckets, earlier: &Buckets) -> Buckets {
    std::array::from_fn(|i| now[i].saturating_sub(earlier[i]))
}

/// Publishes the stack's metrics to CloudWatch every interval.
pub struct MetricsPublisher {
    client: aws_sdk_cloudwatch::Client,
    stack: Stack,
    namespace: String,
    service: String,
    interval: Duration,
    previous: Previous,
}

impl MetricsPublisher {
    /// `service` is the `Service` dimension of every metric (the ECS service name, say).
    pub fn new(
        client: aws_sdk_cloudwatch::Client,
        stack: Stack,
        namespace: impl Into<String>,
        service: impl Into<String>,
        interval: Duration,
    ) -> MetricsPublisher {
        MetricsPublisher {
            client,
            stack,
            namespace: namespace.into(),
            service: service.into(),
            interval: interval.max(Duration::from_secs(1)),
            previous: Previous::default(),
        }
    }

    /// Publishes every interval until `stop` is cancelled, then once more (the last
    /// interval's counts).
    pub async fn run(mut self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.cancelled() => true,
            };
            if let Err(e) = self.publish().await {
                tracing::warn!(error = %e, "publishing metrics to CloudWatch failed");
            }
            if last {
                return;
            }
        }
    }

    /// Samples the stack and sends one `PutMetricData` per batch; returns the data points
    /// sent.
    pub async fn publish(&mut self) -> Result<usize, AwsError> {
        let data = self.sample().await;
        let sent = data.len();
        for batch in data.chunks(DATUMS_PER_CALL) {
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| service_error("cloudwatch", "PutMetricData", e))?;
        }
        Ok(sent)
    }

    async fn sample(&mut self) -> Vec<MetricDatum> {
        let now = Instant::now();
        let timestamp = DateTime::from(SystemTime::now());
        let high_resolution = self.interval < Duration::from_secs(60);
        let mut out = Vec::new();
        let service = self.service.clone();
        let mut push = |name: &str, unit: StandardUnit, dims: &[(&str, &str)], value: Value| {
            let mut dimensions = vec![Dimension::builder().name("Service").value(&service).build()];
            for (k, v) in dims {
                dimensions.push(Dimension::builder().name(*k).value(*v).build());
            }
            let mut datum = MetricDatum::builder()
                .metric_name(name)
                .set_dimensions(Some(dimensions))
                .timestamp(timestamp)
                .unit(unit);
            if high_resolution {
                datum = datum.storage_resolution(1);
            }
            datum = match value {
                Value::Single(v) => datum.value(v),
                Value::Distribution(values, counts) => {
                    datum.set_values(Some(values)).set_counts(Some(counts))
                }
            };
            out.push(datum.build());
        };

        // Requests, per route and for the API routes together.
        let mut api_total = RouteCounts::default();
        let metrics = self.stack.metrics().clone();
        for r in metrics.routes() {
            let current = RouteCounts {
                by_class: std::array::from_fn(|i| r.requests(i + 1)),
                buckets: r.latency().bucket_counts(),
            };
            let earlier = self
                .previous
                .routes
                .insert((r.method, r.route), current)
                .unwrap_or_default();
            let delta = current.minus(&earlier);
            if r.faultable {
                api_total.add(&delta);
            }
            if delta.total() > 0 {
                let dims = [("Method", r.method), ("Route", r.route)];
                push_requests(&mut push, &dims, &delta, false);
            }
        }
        push_requests(&mut push, &[], &api_total, true);

        // Database, queues, workers, process.
        let scrape = self.stack.scrape().await;
        for p in &scrape.pools {
            let in_use = p.open.saturating_sub(p.idle);
            push(
                "DbPoolInUse",
                StandardUnit::Count,
                &[("Pool", p.name)],
                Value::Single(f64::from(in_use)),
            );
        }
        push(
            "DbOperationsInFlight",
            StandardUnit::Count,
            &[],
            Value::Single(scrape.db_gate_in_use as f64),
        );
        let waits = scrape.db_acquire_wait.bucket_counts();
        let wait_delta = minus(&waits, &self.previous.acquire_wait);
        self.previous.acquire_wait = waits;
        if let Some(d) = distribution(&wait_delta) {
            push("DbPoolWaitTime", StandardUnit::Seconds, &[], d);
        }
        for (q, stats) in &scrape.queues {
            let Some(s) = stats else { continue };
            let dims = [("Queue", q.as_str())];
            push(
                "QueueDepth",
                StandardUnit::Count,
                &dims,
                Value::Single(s.depth as f64),
            );
            push(
                "QueueOldestMessageAge",
                StandardUnit::Seconds,
                &dims,
                Value::Single(s.oldest_age.map_or(0.0, |d| d.as_secs_f64())),
            );
            push(
                "QueueDeadLetters",
                StandardUnit::Count,
                &dims,
                Value::Single(s.dead_lettered as f64),
            );
        }
        if self.stack.config().role.runs_workers() {
            for (name, w) in [
                ("email", &metrics.email_worker),
                ("multivac", &metrics.multivac_worker),
            ] {
                let current = (
                    w.processed.load(Ordering::Relaxed),
                    w.failed.load(Ordering::Relaxed),
                );
                let earlier = self
                    .previous
                    .workers
                    .insert(name, current)
                    .unwrap_or_default();
                let dims = [("Worker", name)];
                push(
                    "WorkerMessagesProcessed",
                    StandardUnit::Count,
                    &dims,
                    Value::Single(current.0.saturating_sub(earlier.0) as f64),
                );
                push(
                    "WorkerMessagesFailed",
                    StandardUnit::Count,
                    &dims,
                    Value::Single(current.1.saturating_sub(earlier.1) as f64),
                );
            }
        }
        let process = scrape.process;
        if let Some(at) = self.previous.at {
            let wall = now.duration_since(at).as_secs_f64();
            if wall > 0.0 {
                let busy = (process.cpu_seconds - self.previous.cpu_seconds).max(0.0);
                push(
                    "ProcessCPUUtilization",
                    StandardUnit::Percent,
                    &[],
                    Value::Single(100.0 * busy / wall),
                );
            }
        }
        self.previous.at = Some(now);
        self.previous.cpu_seconds = process.cpu_seconds;
        if let Some(rss) = process.resident_bytes {
            push(
                "ProcessResidentMemory",
                StandardUnit::Bytes,
                &[],
                Value::Single(rss as f64),
            );
        }
        out
    }
}

enum Value {
    Single(f64),
    /// Values and how often each was seen.
    Distribution(Vec<f64>, Vec<f64>),
}

fn push_requests(
    push: &mut impl FnMut(&str, StandardUnit, &[(&str, &str)], Value),
    dims: &[(&str, &str)],
    delta: &RouteCounts,
    always: bool,
) {
    if !always && delta.total() == 0 {
        return;
    }
    push(
        "RequestCount",
        StandardUnit::Count,
        dims,
        Value::Single(delta.total() as f64),
    );
    push(
        "HTTPCode_4XX_Count",
        StandardUnit::Count,
        dims,
        Value::Single(delta.by_class[3] as f64),
    );
    push(
        "HTTPCode_5XX_Count",
        StandardUnit::Count,
        dims,
        Value::Single(delta.by_class[4] as f64),
    );
    if let Some(d) = distribution(&delta.buckets) {
        push("Latency", StandardUnit::Seconds, dims, d);
    }
}

/// The buckets' midpoints (the `+Inf` bucket at the last bound) with their counts; `None`
/// when empty.
fn distribution(buckets: &Buckets) -> Option<Value> {
    let mut values = Vec::new();
    let mut counts = Vec::new();
    for (i, n) in buckets.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let value = match i {
            0 => BUCKETS[0] / 2.0,
            i if i < BUCKETS.len() => (BUCKETS[i - 1] + BUCKETS[i]) / 2.0,
            _ => BUCKETS[BUCKETS.len() - 1],
        };
        values.push(value);
        counts.push(*n as f64);
    }
    (!values.is_empty()).then_some(Value::Distribution(values, counts))
}

// The histogram type is part of the public surface this module reads.
const _: fn(&Histogram) -> Buckets = Histogram::bucket_counts;

/// One log line for CloudWatch Logs.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub timestamp_ms: i64,
    pub message: String,
}

/// A `tracing` layer that copies the stack's events to a [`LogShipper`].
#[derive(Clone)]
pub struct CloudWatchLogsLayer {
    lines: mpsc::Sender<LogLine>,
    dropped: Arc<AtomicU64>,
}

/// The other end of a [`CloudWatchLogsLayer`].
pub struct LogLines {
    lines: mpsc::Receiver<LogLine>,
    dropped: Arc<AtomicU64>,
}

/// A layer and the receiver a [`LogShipper`] drains; at most `capacity` lines wait.
pub fn log_channel(capacity: usize) -> (CloudWatchLogsLayer, LogLines) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        CloudWatchLogsLayer {
            lines: tx,
            dropped: dropped.clone(),
        },
        LogLines { lines: rx, dropped },
    )
}

impl<S: Subscriber> Layer<S> for CloudWatchLogsLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("peakload_stack") {
            return;
        }
        let mut visitor = LineWriter::default();
        event.record(&mut visitor);
        let mut message = format!("{} {}", meta.level(), visitor.message);
        message.push_str(&visitor.fields);
        if message.len() > MAX_LINE_BYTES {
            let mut end = MAX_LINE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let line = LogLine {
            timestamp_ms: now_ms(),
            message,
        };
        if self.lines.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct LineWriter {
    message: String,
    fields: String,
}

impl Visit for LineWriter {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sends log lines to a CloudWatch Logs stream.
pub struct LogShipper {
    client: aws_sdk_cloudwatchlogs::Client,
    group: String,
    stream: String,
    lines: LogLines,
    flush_every: Duration,
}

impl LogShipper {
    /// Creates the stream (and, with `create_group`, the group) when missing.
    pub async fn start(
        client: aws_sdk_cloudwatchlogs::Client,
        group: &str,
        stream: &str,
        create_group: bool,
        lines: LogLines,
    ) -> Result<LogShipper, AwsError> {
        let create_stream = || {
            client
                .create_log_stream()
                .log_group_name(group)
                .log_stream_name(stream)
                .send()
        };
        match create_stream().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
            Err(e)
                if create_group
                    && e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                match client.create_log_group().log_group_name(group).send().await {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
                    Err(e) => return Err(service_error("logs", "CreateLogGroup", e)),
                }
                create_stream()
                    .await
                    .map_err(|e| service_error("logs", "CreateLogStream", e))?;
            }
            Err(e) => return Err(service_error("logs", "CreateLogStream", e)),
        }
        Ok(LogShipper {
            client,
            group: group.to_owned(),
            stream: stream.to_owned(),
            lines,
            flush_every: Duration::from_secs(1),
        })
    }

    /// Sends what arrives every second until `stop` is cancelled, then what is left.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut pending: Vec<LogLine> = Vec::new();
        let mut bytes = 0;
        let mut tick = tokio::time::interval(self.flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported_drops = 0;
        loop {
            let mut last = false;
            tokio::select! {
                line = self.lines.lines.recv() => match line {
                    Some(line) => {
                        bytes += line.message.len() + EVENT_OVERHEAD;
                        pending.push(line);
                        if pending.len() < EVENTS_PER_BATCH && bytes < BYTES_PER_BATCH - MAX_LINE_BYTES {
                            continue;
                        }
                    }
                    None => last = true,
                },
                _ = tick.tick() => {}
                _ = stop.cancelled() => {
                    last = true;
                    while let Ok(line) = self.lines.lines.try_recv() {
                        pending.push(line);
                    }
                }
            }
            let dropped = self.lines.dropped.load(Ordering::Relaxed);
            if dropped > reported_drops {
                pending.push(LogLine {
                    timestamp_ms: now_ms(),
                    message: format!(
                        "WARN {} log lines dropped (the shipper fell behind)",
                        dropped - reported_drops
                    ),
                });
                reported_drops = dropped;
            }
            self.send(std::mem::take(&mut pending)).await;
            bytes = 0;
            if last {
                return;
            }
        }
    }

    async fn send(&self, mut lines: Vec<LogLine>) {
        lines.sort_by_key(|l| l.timestamp_ms);
        let mut batch: Vec<InputLogEvent> = Vec::new();
        let mut bytes = 0;
        for line in lines {
            let size = line.message.len() + EVENT_OVERHEAD;
            if batch.len() == EVENTS_PER_BATCH || bytes + size > BYTES_PER_BATCH {
                self.put(std::mem::take(&mut batch)).await;
                bytes = 0;
            }
            if let Ok(event) = InputLogEvent::builder()
                .timestamp(line.timestamp_ms)
                .message(line.message)
                .build()
            {
                bytes += size;
                batch.push(event);
            }
        }
        self.put(batch).await;
    }

    async fn put(&self, batch: Vec<InputLogEvent>) {
        if batch.is_empty() {
            return;
        }
        let result = self
            .client
            .put_log_events()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .set_log_events(Some(batch))
            .send()
            .await;
        if let Err(e) = result {
            // Written to stderr only: a tracing event here would be shipped again.
            eprintln!(
                "peakload-stack: shipping logs to CloudWatch Logs failed: {}",
                service_error("logs", "PutLogEvents", e)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_use_bucket_midpoints() {
        let mut b: Buckets = [0; BUCKETS.len() + 1];
        b[0] = 3;
        b[2] = 1;
        b[BUCKETS.len()] = 2;
        let Some(Value::Distribution(values, counts)) = distribution(&b) else {
            panic!("a distribution");
        };
        assert_eq!(values, vec![0.00025, (0.001 + 0.0025) / 2.0, 10.0]);
        assert_eq!(counts, vec![3.0, 1.0, 2.0]);
        assert!(distribution(&[0; BUCKETS.len() + 1]).is_none());
    }
}
