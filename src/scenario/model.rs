//! The compiled, validated scenario: what the engine runs.
//!
//! Produced by [`super::load_scenario`] from a TOML file; every reference (variables, feeders,
//! steps named by thresholds) is resolved to an index here, so the engine never looks up a name
//! on the hot path.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use super::parse::observe::{Observe, PrometheusSource, ScrapeTarget};

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// The file it came from; relative feeder paths were resolved against its directory.
    pub source_path: PathBuf,
    pub base_url: BaseUrl,
    /// Headers sent with every request (a step's own headers override same-named ones).
    pub headers: Vec<(String, Template)>,
    /// Per-request timeout unless a step sets its own.
    pub timeout: Duration,
    pub load: Load,
    pub journeys: Vec<Journey>,
    pub feeders: Vec<Arc<Feeder>>,
    pub thresholds: Vec<Threshold>,
    /// Infrastructure sources read during and after the run (`[observe]`).
    pub observe: Observe,
    /// `[stack] args`: flags for the bundled stack when `base_url = "stack"`.
    pub stack_args: Vec<String>,
    /// A response with more header fields than this is a `protocol` error.
    pub max_response_headers: usize,
    /// Redirects, compression, trace headers: how requests go beyond what a step sends.
    pub protocol: ProtocolOptions,
    /// `[gate]`: the regression gate's policy per metric, `*` rules first, then in file order.
    pub gate: Vec<GateRule>,
}

/// One `[gate]` entry: changes to the regression gate's default policy for one gated metric
/// (or `*`, every metric). Only what is set changes; `--gate-policy` on the command line is
/// applied after these and wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateRule {
    /// A gated metric's name (`p50`, `p99`, `error_rate`, `rps`, ...) or `*`.
    pub metric: String,
    /// `Some(false)`: the metric is not judged at all (`rps = "off"`).
    pub gated: Option<bool>,
    pub alpha: Option<f64>,
    /// Relative: 0.15 for 15 %.
    pub min_effect: Option<f64>,
    /// In the metric's unit (ms, a fraction, per second).
    pub min_absolute: Option<f64>,
    pub min_history: Option<usize>,
    pub confirm_runs: Option<usize>,
}

/// Top-level options for how requests go on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolOptions {
    /// Redirects a step follows unless it sets its own `max_redirects`.
    pub max_redirects: u32,
    /// Content codings asked for in `Accept-Encoding`, in the file's order; empty: none asked.
    pub compression: Vec<Compression>,
    /// Send a W3C `traceparent` with every request and keep the trace ids of each step's
    /// slowest and failed requests.
    pub trace: bool,
    pub http_version: HttpVersion,
}

/// `http_version`: which HTTP the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/1.1 only (the default): the hand-written client, measured against wrk.
    #[default]
    Http1,
    /// HTTP/2 only: by ALPN `h2` over TLS, with prior knowledge (h2c) over cleartext.
    Http2,
    /// HTTP/2 where TLS's ALPN agrees to it, else HTTP/1.1; cleartext is HTTP/1.1.
    Auto,
}

impl Default for ProtocolOptions {
    fn default() -> Self {
        ProtocolOptions {
            max_redirects: DEFAULT_MAX_REDIRECTS,
            compression: Vec::new(),
            trace: false,
            http_version: HttpVersion::Http1,
        }
    }
}

/// A content coding a scenario may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Deflate,
    Br,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 4] = [
        Compression::Gzip,
        Compression::Deflate,
        Compression::Br,
        Compression::Zstd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
            Compression::Br => "br",
            Compression::Zstd => "zstd",
        }
    }
}

/// As k6 and browsers: a journey is a user's, and a user's browser follows a login's 303 to
/// the page it names. Not following would measure the tiny 3xx and pass it (it is below 400).
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;
/// The most `max_redirects` may be.
pub const MAX_REDIRECTS_LIMIT: u32 = 100;

/// hyper's default limit; curl counts no fields, it only caps a head's size.
pub const DEFAULT_MAX_RESPONSE_HEADERS: usize = 100;
/// The most `max_response_headers` may be: a head is capped at 256 KiB anyway.
pub const MAX_RESPONSE_HEADERS_LIMIT: usize = 10_000;

/// Where requests with a relative path go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseUrl {
    /// `base_url = "stack"`: start the bundled reference stack and target it.
    Stack,
    /// An absolute `http://` or `https://` URL, without a trailing slash.
    Url(String),
}

#[derive(Debug, Clone)]
pub enum Load {
    Open(OpenLoad),
    Closed(ClosedLoad),
}

impl Load {
    /// The planned duration of the whole run.
    pub fn duration(&self) -> Duration {
        match self {
            // Saturating: the compiler refuses a plan longer than MAX_DURATION, but a sum must
            // not panic on a hand-built one either.
            Load::Open(o) => o
                .stages
                .iter()
                .fold(Duration::ZERO, |a, s| a.saturating_add(s.duration)),
            Load::Closed(c) => c
                .stages
                .iter()
                .fold(Duration::ZERO, |a, s| a.saturating_add(s.duration)),
        }
    }
}

/// Open model: iterations arrive at a rate, whether or not earlier ones finished.
#[derive(Debug, Clone)]
pub struct OpenLoad {
    /// Arrival rate at t = 0; each stage ramps linearly from the previous stage's target.
    pub start_rps: f64,
    pub stages: Vec<RateStage>,
    /// Virtual users started up front (default: enough for one second at the first target).
    pub pre_allocated_vus: u32,
    /// Hard cap on concurrent iterations; arrivals beyond it wait for a free VU.
    pub max_vus: u32,
    /// An arrival that waited longer than this for a free VU is dropped and counted.
    pub max_lag: Duration,
    /// How arrivals are spread over time at the planned rate.
    pub arrivals: ArrivalProcess,
}

/// `arrivals` in `[load]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalProcess {
    /// Evenly spaced at the planned rate (the default): the steadiest load for a given rate.
    Even,
    /// A Poisson process at the planned rate, as independent users arrive: bursts and gaps,
    /// the same total. Drawn from `seed`, so a run is reproducible.
    Poisson { seed: u64 },
}

/// The seed of `arrivals = "poisson"` when `seed` is not given: fixed, so two runs of one
/// scenario (a run and its baseline) send the same arrival pattern.
pub const DEFAULT_ARRIVAL_SEED: u64 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct RateStage {
    pub duration: Duration,
    pub target_rps: f64,
    /// Optional label shown in reports ("ramp", "spike").
    pub name: Option<String>,
}

/// Closed model: a number of VUs each looping over iterations.
#[derive(Debug, Clone)]
pub struct ClosedLoad {
    pub start_vus: u32,
    pub stages: Vec<VuStage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VuStage {
    pub duration: Duration,
    pub target_vus: u32,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Journey {
    pub name: String,
    /// Relative share of iterations (open model) or of VUs (closed model).
    pub weight: u32,
    /// `false`: every iteration opens its own connections and closes them at its end, as a
    /// new visitor does (a TCP and TLS handshake each time); steps within it still share them.
    pub keep_alive: bool,
    pub steps: Vec<Step>,
    /// Names of this journey's variables; `Expr::Var(i)` and `Extraction::var` index into it.
    pub vars: Vec<String>,
    /// Feeders whose row is taken at the start of each iteration (indices into
    /// `Scenario::feeders`), in the order first referenced.
    pub feeders: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// Upper-case method, e.g. "GET".
    pub method: String,
    /// A path ("/api/cart", appended to the base URL) or an absolute URL.
    pub url: Template,
    /// `url` rather than `path`: the template renders a whole URL, even when it starts with an
    /// expression (`url = "{{next}}"`).
    pub absolute: bool,
    /// Query parameters, appended URL-encoded after any query already in `url`.
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, Template)>,
    pub body: Body,
    /// Overrides `Scenario::timeout`.
    pub timeout: Option<Duration>,
    /// Pause after this step, before the next one.
    pub think: Option<Think>,
    /// Overrides `ProtocolOptions::max_redirects`.
    pub max_redirects: Option<u32>,
    pub extract: Vec<Extraction>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone)]
pub enum Body {
    None,
    /// Rendered JSON text; sent with `content-type: application/json`.
    Json(Template),
    /// Sent as `application/x-www-form-urlencoded`; values URL-encoded when rendered.
    Form(Vec<(String, Template)>),
    /// Raw text, with an optional content type.
    Raw {
        content_type: Option<String>,
        text: Template,
    },
}

/// A string with `{{ ... }}` expressions, split at compile time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

impl Template {
    pub fn literal(s: impl Into<String>) -> Self {
        Template {
            parts: vec![Part::Lit(s.into())],
        }
    }

    /// The text when the template has no expressions.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(String),
    Expr { expr: Expr, escape: Escape },
}

/// How an expression's value is written where it appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As is (headers, raw bodies, the host of a `url`). Header values are checked for CR, LF
    /// and NUL when the request is built.
    None,
    /// Percent-encoded (query and form values).
    Url,
    /// One path segment's text: percent-encoded like a query value, so a `/`, `?` or `#` in
    /// the value stays inside the segment.
    PathSegment,
    /// A whole path or URL taken from a variable (`path = "{{next}}"`): only the characters a
    /// request target cannot carry are encoded, and a `#fragment` is dropped.
    Target,
    /// Inside a JSON string literal: JSON string escaping, no quotes added.
    JsonString,
    /// A whole JSON value (`qty = "{{n}}"` in a JSON body): numbers and booleans as they are,
    /// anything else as a quoted JSON string.
    JsonValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A journey variable set by an earlier step's extraction (index into `Journey::vars`).
    Var(usize),
    /// A column of the current iteration's feeder row.
    Feed { feeder: usize, column: usize },
    /// A random v4 UUID.
    Uuid,
    /// A random integer in `[lo, hi]`, both included.
    RandomInt { lo: i64, hi: i64 },
    /// Milliseconds since the Unix epoch.
    NowMs,
    /// The VU number (0-based).
    Vu,
    /// The iteration number within the run (0-based).
    Iteration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Think {
    pub min: Duration,
    /// Equal to `min` for a fixed pause; otherwise uniform in `[min, max]`.
    pub max: Duration,
}

#[derive(Debug, Clone)]
pub struct Extraction {
    /// Index into `Journey::vars`.
    pub var: usize,
    pub source: ExtractSource,
    /// `optional = true`: a response without the value (a sold-out answer the check accepts)
    /// leaves the variable unset instead of failing the step as `extract_failed`.
    pub optional: bool,
}

#[derive(Debug, Clone)]
pub enum ExtractSource {
    /// An RFC 6901 JSON pointer (`$.a.b[0]` is accepted in the file and converted).
    Json(String),
    /// A response header, lower-cased.
    Header(String),
    /// The first match; capture group 1 when the regex has groups, else the whole match.
    Regex(regex::Regex),
}

#[derive(Debug, Clone)]
pub enum Check {
    Status(StatusMatch),
    BodyContains(String),
    /// The value at an RFC 6901 pointer equals this JSON value.
    JsonEquals {
        pointer: String,
        expected: serde_json::Value,
    },
    MaxDuration(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusMatch {
    Exact(u16),
    /// Inclusive range; "2xx" is `Range(200, 299)`.
    Range(u16, u16),
    List(Vec<u16>),
}

impl StatusMatch {
    pub fn matches(&self, status: u16) -> bool {
        match self {
            StatusMatch::Exact(s) => *s == status,
            StatusMatch::Range(lo, hi) => (*lo..=*hi).contains(&status),
            StatusMatch::List(l) => l.contains(&status),
        }
    }
}

/// Rows of a CSV file next to the scenario.
#[derive(Debug)]
pub struct Feeder {
    pub name: String,
    pub path: PathBuf,
    pub mode: FeedMode,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedMode {
    /// Rows in order, wrapping around at the end.
    Sequential,
    /// A uniformly random row each time.
    Random,
    /// Each row at most once; once all are used, iterations that need a row are skipped and
    /// counted as `feeder_exhausted`.
    Unique,
}

/// `"checkout.p99 < 300ms"`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written.
    pub expr: String,
    pub metric: MetricRef,
    pub op: CmpOp,
    /// In the metric's canonical unit: milliseconds for latencies, a fraction (0..1) for rates
    /// written as percentages, requests per second for `rps`, a count otherwise.
    pub limit: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricRef {
    pub scope: Scope,
    pub stat: Stat,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// `http.*`: every request of the run.
    Http,
    /// `<step>.*` or `<journey>.<step>.*`.
    Step { journey: usize, step: usize },
    /// `<journey>.*`: whole iterations, from intended start to the end of the last step.
    Journey(usize),
    /// Run-wide counters: `dropped_iterations`, `iterations`, `checks`.
    Run,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stat {
    /// Percentile in 0..100 (`p99` → 99.0, `p999` → 99.9, `p50` → 50.0).
    Percentile(f64),
    Mean,
    Min,
    Max,
    /// Failed requests / requests.
    ErrorRate,
    Rps,
    Requests,
    Errors,
    /// `dropped_iterations` (scope Run).
    DroppedIterations,
    /// `iterations` (scope Run): completed iterations.
    Iterations,
    /// `feeder_exhausted` (scope Run): iterations skipped because a `unique` feeder ran out.
    FeederExhausted,
    /// `checks.failed` (scope Run) — count of failed checks.
    ChecksFailed,
    /// `checks.rate` (scope Run) — passed checks / checks.
    ChecksPassRate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            CmpOp::Lt => value < limit,
            CmpOp::Le => value <= limit,
            CmpOp::Gt => value > limit,
            CmpOp::Ge => value >= limit,
            CmpOp::Eq => (value - limit).abs() < 1e-9,
            CmpOp::Ne => (value - limit).abs() >= 1e-9,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}
