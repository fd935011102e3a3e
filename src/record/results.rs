//! `results.json`: the contract between a run and everything after it (report, gate, diagnose,
//! merge). Versioned by [`SCHEMA_VERSION`]; the JSON Schema lives in `reports/schema/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::findings::{Capacity, Finding};
use super::infra::Infra;
pub use super::traces::{StepTraces, TracedRequest};
use super::{ErrorKind, ErrorSample};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub schema_version: u32,
    pub tool: Tool,
    pub scenario: ScenarioInfo,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    /// `completed`, `interrupted` (stopped by a signal or a key), `aborted`, or (merged shards
    /// with one missing or failed) `incomplete`.
    pub status: String,
    pub summary: Summary,
    pub steps: Vec<StepResult>,
    pub journeys: Vec<JourneyResult>,
    pub timeline: Vec<TimelinePoint>,
    pub stages: Vec<StageInfo>,
    pub dropped_iterations: u64,
    pub late_iterations: u64,
    /// Arrivals that found every VU busy at `max_vus` and waited (their wait counts in latency).
    pub arrivals_queued: u64,
    pub feeder_exhausted: u64,
    /// Iterations cut part-way by the end of the run or a stop: in neither the journeys'
    /// iterations nor their failures (their request on the wire, if any, is a `cancelled`
    /// error).
    #[serde(default)]
    pub interrupted_iterations: u64,
    /// Requests written a second time on a fresh connection because a reused keep-alive
    /// connection ended with no response (GET, HEAD, OPTIONS and TRACE only). Each is one
    /// request in the counts; on the wire there were `requests + retried_requests`.
    #[serde(default)]
    pub retried_requests: u64,
    /// Open model: how late iterations started relative to their schedule.
    pub schedule_lag_ms: LagStats,
    pub thresholds: Vec<ThresholdResult>,
    /// Failed requests by kind (every kind present, zero or not).
    pub errors: BTreeMap<String, u64>,
    pub error_samples: Vec<ErrorSample>,
    pub generator: GeneratorHealth,
    /// Infrastructure signals observed during the run (`[observe]`), aligned to its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infra: Option<Infra>,
    /// How much load the system took (set by the diagnosis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// Causes found by the diagnosis, best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// What the diagnosis said beyond its findings: in a healthy run, what moved without
    /// reaching the users; when nothing explains a degradation, what was not observed and what
    /// to observe next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis_notes: Vec<String>,
    /// This run judged against the comparable runs in its history (`run --history`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<super::regression::RegressionGate>,
    /// Which slice of a distributed run this is (`peakload run --shard I/N`); absent for a run
    /// of the whole plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// Set by `peakload merge`: the shards this result adds up, and which are missing or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeInfo>,
    /// Set by `peakload merge --shards A-B`: this result is a part of a two-level merge, the
    /// shards `first..=last` added up, for a final merge to add to the other parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<PartInfo>,
}

/// One shard's identity and what it was asked to run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
    pub asked: ShardAsked,
    /// `--start-at` as given (RFC 3339), when the shards were told to start together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// How long after `--start-at` this shard's load actually started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_start_ms: Option<f64>,
}

/// A shard's slice of the plan, next to the whole plan's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardAsked {
    /// Open model: the arrivals of the plan that are this shard's (`k mod count == index`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrivals: Option<u64>,
    /// Open model: the whole plan's arrivals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_arrivals: Option<u64>,
    /// Open model: this shard's arrivals over the planned duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// The most VUs this shard runs at once (open: its share of `max_vus`).
    pub max_vus: u32,
    pub plan_max_vus: u32,
}

/// What `peakload merge` added up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergeInfo {
    /// The shard count the inputs name.
    pub count: u32,
    /// One row per shard found, by index.
    pub shards: Vec<MergedShard>,
    /// Indices in `0..count` with no results: the merged result is `incomplete`.
    pub missing: Vec<u32>,
    /// Indices whose run did not complete (interrupted, aborted): `incomplete` too.
    pub failed: Vec<u32>,
}

/// Which shards a part of a two-level merge covers, and what the final merge needs from them
/// that a merged result does not otherwise keep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartInfo {
    pub first: u32,
    /// Inclusive, at most `count - 1`.
    pub last: u32,
    /// The run's shard count.
    pub count: u32,
    /// The thresholds the shards were given: a part does not evaluate them (its figures are
    /// a slice of the load), the final merge does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<String>,
    /// Shards of the part that had no `latency.hlog`: the part's log lacks their seconds, so
    /// the final merge cannot recompute per-second percentiles exactly either.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_latency_log: Vec<String>,
}

/// One row of the per-shard table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergedShard {
    pub index: u32,
    /// Where it was read from.
    pub source: String,
    pub status: String,
    pub started_at: String,
    pub duration_s: f64,
    /// Open model: the arrivals per second this shard was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_rps: Option<f64>,
    /// Iterations started per second of the run.
    pub achieved_rps: f64,
    pub requests: u64,
    pub errors: u64,
    pub dropped_iterations: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_start_ms: Option<f64>,
    pub generator_cpu_pct: f64,
    pub generator_kept_up: bool,
}

/// The fields of a results file that say what it is: a shard, a part, or a merge's output.
#[derive(Debug, Clone, Deserialize)]
pub struct ResultsKind {
    #[serde(default)]
    pub shard: Option<ShardInfo>,
    #[serde(default)]
    pub part: Option<PartInfo>,
    /// Whether a merge wrote it.
    #[serde(default, rename = "merged")]
    pub merge: Option<serde::de::IgnoredAny>,
}

impl From<&Results> for ResultsKind {
    fn from(r: &Results) -> Self {
        ResultsKind {
            shard: r.shard.clone(),
            part: r.part.clone(),
            merge: r.merged.as_ref().map(|_| serde::de::IgnoredAny),
        }
    }
}

/// Why a results file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a peakload results file: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} has schema version {found}; this peakload reads up to {SCHEMA_VERSION}: use a newer peakload")]
    Schema { path: PathBuf, found: u64 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Results {
    /// Reads a `results.json`; a file from a newer schema is refused by name rather than
    /// misread.
    pub fn load(path: &Path) -> Result<Results, ResultsError> {
        let bytes = std::fs::read(path).map_err(|source| ResultsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Results::from_slice(&bytes, path)
    }

    /// Reads results from bytes; `path` names them in errors.
    pub fn from_slice(bytes: &[u8], path: &Path) -> Result<Results, ResultsError> {
        let parse = |source| ResultsError::Parse {
            path: path.to_owned(),
            source,
        };
        let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(parse)?;
        if let Some(found) = doc.get("schema_version").and_then(|v| v.as_u64()) {
            if found > u64::from(SCHEMA_VERSION) {
                return Err(ResultsError::Schema {
                    path: path.to_owned(),
                    found,
                });
            }
        }
        serde_json::from_value(doc).map_err(parse)
    }

    /// Which shard or part a `results.json` holds, read without the rest of it (a part's merge
    /// looks at every shard of the run to keep its range: their timelines and histograms are
    /// skipped, not built).
    pub fn kind(path: &Path) -> Result<ResultsKind, ResultsError> {
        let bytes = std::fs::read(path).map_err(|source| ResultsError::Read {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| ResultsError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the results as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), ResultsError> {
        let json = serde_json::to_vec_pretty(self).expect("results serialize");
        write_atomic(path, &json).map_err(|source| ResultsError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes `bytes` to `path` so that the file is complete or absent (or its old version): a
/// temporary file beside it, synced, then renamed over it. A full disk leaves no truncated
/// file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    /// Scheme, host, port and path prefix: credentials and query strings are left out.
    pub target: String,
    /// `open` or `closed`.
    pub model: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rps: f64,
    pub iterations: u64,
    pub failed_iterations: u64,
    pub checks: u64,
    pub checks_failed: u64,
    /// Bytes read from the wire (compressed bodies as they came).
    pub data_received_bytes: u64,
    /// The same with every body in a `Content-Encoding` counted at its decoded size: the
    /// ratio to `data_received_bytes` is what compression saved.
    #[serde(default)]
    pub data_received_decoded_bytes: u64,
    pub data_sent_bytes: u64,
    pub latency_ms: LatencyStats,
    /// Every request's latency (µs), HdrHistogram V2 deflate-compressed, base64.
    pub histogram: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct LatencyStats {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl LatencyStats {
    /// From a histogram in microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencyStats::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        LatencyStats {
            min: ms(h.min()),
            mean: round3(h.mean() / 1000.0),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct LagStats {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepResult {
    pub journey: String,
    pub name: String,
    pub method: String,
    /// The step's path as written, with `{{...}}` expressions shown by name.
    pub path: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rps: f64,
    pub checks: u64,
    pub checks_failed: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub latency_ms: LatencyStats,
    /// Lossless latency histogram (µs): HdrHistogram V2 deflate-compressed, base64.
    pub histogram: String,
    /// With `trace = true`: the W3C trace ids of the step's slowest and first failed requests.
    #[serde(default, skip_serializing_if = "StepTraces::is_empty")]
    pub traces: StepTraces,
    /// Where the step's requests spent their time, on average; absent when no response came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<StepTiming>,
}

/// Mean time per phase of a step's requests (ms), as curl's `-w` and k6's `http_req_*` split
/// it. Connecting (`dns`, `connect`, `tls`) is averaged over the requests that opened a
/// connection, `ttfb` and `transfer` over the responses (each hop of a redirect is one).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct StepTiming {
    /// Responses timed.
    pub responses: u64,
    /// Connections the step opened (the rest reused one).
    pub connections: u64,
    pub dns_ms: f64,
    pub connect_ms: f64,
    pub tls_ms: f64,
    /// Request written to the response's first byte: the server's time plus one round trip.
    pub ttfb_ms: f64,
    /// The response's first byte to its last.
    pub transfer_ms: f64,
    /// Responses that came over HTTP/2 (the others over HTTP/1.x).
    #[serde(default)]
    pub http2_responses: u64,
}

impl StepTiming {
    pub fn from_phases(p: &super::Phases) -> Option<StepTiming> {
        if p.timed == 0 {
            return None;
        }
        let mean = |sum: u64, n: u64| {
            if n == 0 {
                0.0
            } else {
                (sum as f64 / n as f64).round() / 1000.0
            }
        };
        Some(StepTiming {
            responses: p.timed,
            connections: p.connections,
            dns_ms: mean(p.dns_us, p.connections),
            connect_ms: mean(p.connect_us, p.connections),
            tls_ms: mean(p.tls_us, p.connections),
            ttfb_ms: mean(p.ttfb_us, p.timed),
            transfer_ms: mean(p.transfer_us, p.timed),
            http2_responses: p.http2,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JourneyResult {
    pub name: String,
    pub weight: u32,
    pub iterations: u64,
    pub failed_iterations: u64,
    pub latency_ms: LatencyStats,
    pub histogram: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    /// Seconds since the start: this point covers `[t, t + 1)`.
    pub t: u32,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub latency_ms: IntervalLatency,
    /// The most VUs busy at once during this second.
    pub active_vus: u32,
    /// Open model: planned arrivals per second; closed model: planned VUs.
    pub target_rps: f64,
    pub iterations_started: u64,
    pub dropped_iterations: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The generator's own CPU use over this second, in percent of one core.
    pub generator_cpu_pct: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct IntervalLatency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageInfo {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
    /// Target at the end of the stage: arrivals/s (open) or VUs (closed).
    pub target: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    pub expr: String,
    /// The measured value, in the threshold's unit (ms, fraction, rps, count); `None` (JSON
    /// `null`) when the metric had nothing to measure, e.g. a step that never ran.
    pub value: Option<f64>,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GeneratorHealth {
    pub threads: usize,
    /// User + system CPU seconds of the generator process over the run.
    pub cpu_s: f64,
    /// Average CPU use in percent of one core.
    pub cpu_pct: f64,
    /// False when the generator itself may have limited the load (CPU-bound, or arrivals
    /// dispatched late for reasons other than the target being slow).
    pub kept_up: bool,
    pub notes: Vec<String>,
}

/// A histogram in HdrHistogram's compressed V2 form (cookie, length, zlib stream of the V2
/// encoding), base64: what `latency.hlog` lines and results.json carry. Compressed at zlib's
/// fastest level, not the default level `V2DeflateSerializer` is fixed at: deflating took a
/// seventh of a whole merge's CPU (one line a merged second and step), for files 4 % larger;
/// any reader of the format inflates either.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    use std::io::Write;
    let mut plain = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut plain)
        .expect("serializing into memory cannot fail");
    let mut buf = Vec::with_capacity(8 + plain.len() / 2);
    buf.extend_from_slice(&super::adder::V2_COMPRESSED_COOKIE.to_be_bytes());
    buf.extend_from_slice(&[0; 4]);
    let mut z = flate2::write::ZlibEncoder::new(buf, flate2::Compression::fast());
    z.write_all(&plain)
        .expect("compressing into memory cannot fail");
    let mut buf = z.finish().expect("compressing into memory cannot fail");
    let len = (buf.len() - 8) as u32;
    buf[4..8].copy_from_slice(&len.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("histogram is not valid base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram could not be decoded: {e:?}"))
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn kinds_map(counts: &[u64; ErrorKind::COUNT], all: bool) -> BTreeMap<String, u64> {
    ErrorKind::ALL
        .iter()
        .zip(counts.iter())
        .filter(|(_, &n)| all || n > 0)
        .map(|(k, &n)| (k.as_str().to_string(), n))
        .collect()
}
