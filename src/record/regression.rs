//! The run judged against its history (`run --history`), as results.json carries it: each
//! gated metric's verdict in words and numbers, and the metric's recent series for the
//! report's trend charts. Written by `cmd` from `history`'s verdicts; read by `output`.

use serde::{Deserialize, Serialize};

/// Verdicts of one run against the comparable runs recorded before it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegressionGate {
    /// The history database (a file, or a URL without its password).
    pub database: String,
    /// The run's id in the history.
    pub run_id: i64,
    pub environment: String,
    pub metrics: Vec<GatedMetric>,
}

impl RegressionGate {
    pub fn regressed(&self) -> impl Iterator<Item = &GatedMetric> {
        self.metrics.iter().filter(|m| m.verdict == "regressed")
    }
}

/// One metric of one scope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GatedMetric {
    /// `http` (every request) or `journey/step`.
    pub scope: String,
    /// `p50`, `p90`, `p95`, `p99`, `mean` (ms), `error_rate`, `checks` (fractions), `rps`.
    pub metric: String,
    /// `regressed`, `improved`, `unchanged` or `insufficient_history`.
    pub verdict: String,
    /// This run's value.
    pub value: f64,
    /// Median of the baseline runs; `None` when no run precedes this one.
    #[serde(default)]
    pub baseline_median: Option<f64>,
    #[serde(default)]
    pub baseline_runs: usize,
    /// Signed relative change (0.12 = 12 % higher); `None` when not judged or the baseline
    /// is zero.
    #[serde(default)]
    pub relative_change: Option<f64>,
    #[serde(default)]
    pub p_value: Option<f64>,
    /// The verdict in one sentence.
    pub description: String,
    /// The latest runs of the series, oldest first, this run last.
    pub trend: Vec<TrendPoint>,
    /// The run where the baseline starts (an accepted level, or the window's start).
    #[serde(default)]
    pub baseline_from_run: Option<i64>,
    /// For `regressed`/`improved`: the first run at the new level.
    #[serde(default)]
    pub changed_from_run: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrendPoint {
    pub run_id: i64,
    pub started_at: String,
    pub value: f64,
    /// An accepted level starts at this run.
    #[serde(default)]
    pub accepted: bool,
}
