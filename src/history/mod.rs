//! Run history: every recorded run's figures in a database, so that a run can be judged against
//! the runs before it (`gate::change`) and trends can be drawn.
//!
//! Owns the table layout (versioned, [`LAYOUT_VERSION`], documented in `docs/history.md`), the
//! two backends (a SQLite file by default, PostgreSQL by URL), and turning a [`Results`] or a
//! CSV export ([`import`]) into a [`NewRun`]. Data enters as results, CSV rows or a run id; it
//! leaves as [`StoredRun`]s, per-metric series ([`Series`]) and [`verdicts::MetricVerdict`]s.
//!
//! [`Results`]: crate::record::results::Results

pub mod import;
pub mod policy;
pub mod shape;
mod store;
pub mod time;
pub mod verdicts;

#[cfg(test)]
mod tests;

pub use store::Store;

/// The table layout this peakload writes and reads; stored in `peakload_meta`.
pub const LAYOUT_VERSION: i64 = 1;

/// The gated metrics a recorded run stores per scope (besides the histograms): latency in ms,
/// error rate and checks pass rate as fractions, throughput in requests per second.
pub const RECORDED_METRICS: [&str; 8] = [
    "p50",
    "p90",
    "p95",
    "p99",
    "mean",
    "error_rate",
    "rps",
    "checks",
];

/// The scope of the whole run's requests; steps are `journey/step`.
pub const HTTP_SCOPE: &str = "http";

/// A run about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub scenario: String,
    /// What shapes the load ([`shape::load_hash`]); `None` for imported runs, whose shape is
    /// unknown (they compare with any shape of the same scenario and environment).
    pub load_hash: Option<String>,
    pub environment: String,
    pub commit: Option<String>,
    /// RFC 3339, as given.
    pub started_at: String,
    /// Unix milliseconds of `started_at`: the series' order.
    pub started_ms: i64,
    pub status: String,
    /// `results` (from a results.json or `run --history`) or `import`.
    pub source: String,
    /// The run's id where it came from (CSV `run_id`).
    pub external_id: Option<String>,
    pub values: Vec<MetricValue>,
    pub histograms: Vec<ScopeHistogram>,
}

/// One gated figure of one scope.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    pub scope: String,
    pub metric: String,
    pub value: f64,
}

/// A scope's lossless latency histogram (µs, HdrHistogram V2 deflate, base64: as in
/// results.json) and its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeHistogram {
    pub scope: String,
    pub requests: i64,
    pub errors: i64,
    pub histogram: String,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub id: i64,
    pub scenario: String,
    pub load_hash: Option<String>,
    pub environment: String,
    pub commit: Option<String>,
    pub started_at: String,
    pub started_ms: i64,
    pub status: String,
    pub source: String,
    pub external_id: Option<String>,
    /// A new level begins at this run (an intended change was accepted): runs before it are
    /// no longer the baseline.
    pub accepted: bool,
    pub recorded_at: String,
}

/// One metric of one scope over comparable runs, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub scope: String,
    pub metric: String,
    pub points: Vec<SeriesPoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    pub run_id: i64,
    pub started_at: String,
    pub value: f64,
    pub accepted: bool,
}

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database {target}: {source}")]
    Database { target: String, source: sqlx::Error },
    #[error(
        "history database {target} has table layout version {found}; this peakload reads up to \
         {LAYOUT_VERSION}: use a newer peakload"
    )]
    Layout { target: String, found: i64 },
    #[error("no run {0} in the history")]
    NoSuchRun(i64),
    #[error("{0}")]
    Invalid(String),
}
