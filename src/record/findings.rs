//! What the diagnosis concluded, as `results.json` carries it: [`Finding`]s (a named cause,
//! [`Kind`], with its evidence) and the [`Capacity`]. The diagnosis writes them; the report,
//! the summaries and later runs' comparisons read them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What kind of cause a finding names. Adding one: a variant here (with its name and words),
/// and the rule that names it in `diagnose::rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    CpuSaturation,
    IoSaturation,
    MemoryPressure,
    DbPoolSaturation,
    DbLatency,
    QueueBacklog,
    Throttling,
    ScalingLag,
    ErrorBurst,
    GeneratorLimited,
    TargetUnresponsive,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::CpuSaturation,
        Kind::IoSaturation,
        Kind::MemoryPressure,
        Kind::DbPoolSaturation,
        Kind::DbLatency,
        Kind::QueueBacklog,
        Kind::Throttling,
        Kind::ScalingLag,
        Kind::ErrorBurst,
        Kind::GeneratorLimited,
        Kind::TargetUnresponsive,
    ];

    /// The name `results.json` and the text summary use.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CpuSaturation => "cpu_saturation",
            Kind::IoSaturation => "io_saturation",
            Kind::MemoryPressure => "memory_pressure",
            Kind::DbPoolSaturation => "db_pool_saturation",
            Kind::DbLatency => "db_latency",
            Kind::QueueBacklog => "queue_backlog",
            Kind::Throttling => "throttling",
            Kind::ScalingLag => "scaling_lag",
            Kind::ErrorBurst => "error_burst",
            Kind::GeneratorLimited => "generator_limited",
            Kind::TargetUnresponsive => "target_unresponsive",
        }
    }

    /// The kind in words, for people (the report's headings).
    pub fn words(self) -> &'static str {
        match self {
            Kind::CpuSaturation => "CPU saturation",
            Kind::IoSaturation => "Disk I/O saturation",
            Kind::MemoryPressure => "Memory pressure",
            Kind::DbPoolSaturation => "Database connection pool saturated",
            Kind::DbLatency => "Database got slower",
            Kind::QueueBacklog => "Queue backing up",
            Kind::Throttling => "Throttling",
            Kind::ScalingLag => "Scaling came late",
            Kind::ErrorBurst => "Burst of errors",
            Kind::GeneratorLimited => "The load generator limited the run",
            Kind::TargetUnresponsive => "A process stopped answering",
        }
    }
}

/// A time window in seconds since the run's start.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
}

/// A named cause with its evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub kind: Kind,
    /// The signal that shows it (`name{dims}`), or `generator` / `scaling`.
    pub signal: String,
    /// 0..1: how strongly the evidence points here; findings are sorted by it.
    pub score: f64,
    pub window: Window,
    /// The figures behind the score: `baseline`, `during`, `z`, `lead_s`, `correlation`…
    pub evidence: BTreeMap<String, f64>,
    /// Matching log lines or error samples, when there are any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<String>,
    /// One sentence a user acts on.
    pub summary: String,
    /// The finding whose signal this one follows, when the system's declared structure and the
    /// time order make it a consequence (a consumer blocked by the database it calls): kept,
    /// scored down, and said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<String>,
    /// The next candidate and why it was not chosen before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_up: Option<RunnerUp>,
}

/// The candidate ranked after a finding, and why it lost: a reader misled once by a "likely
/// cause" wants to see the alternative that was weighed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunnerUp {
    /// The signal (`name{dims}`), or `generator` / a scaling activity.
    pub signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    pub score: f64,
    /// Why it was not chosen, in words.
    pub why_not: String,
}

/// How much load the system took.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Capacity {
    /// Highest throughput (rolling median, requests/s) held for several seconds within a
    /// tolerance, with latency and errors fine, before they turned; with no turn, the highest
    /// held during the run (a lower bound). See `diagnose::knee` for what "held" means.
    pub max_sustained_rps: f64,
    /// When the stretch that held it began (s since start).
    pub at_s: f64,
    /// Whether the system reached its limit in this run (`false`: capacity is at least this).
    pub reached: bool,
    /// `latency` or `errors`, when reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_by: Option<String>,
    /// When the users' experience turned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_at_s: Option<f64>,
    /// Throughput at the knee of latency against throughput, when the run covered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knee_rps: Option<f64>,
    /// Latency (ms, the quantile in `sli.latency_stat`) before the turn, and during it.
    #[serde(default)]
    pub latency_ms_before: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms_during: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed JSON Schema lists exactly the kinds this build writes.
    #[test]
    fn schema_lists_every_kind() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/reports/schema/results.schema.json"
        );
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let listed: Vec<&str> = schema["$defs"]["finding_kind"]["enum"]
            .as_array()
            .expect("finding_kind in the schema")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let ours: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(listed, ours);
        for k in Kind::ALL {
            let json = serde_json::to_value(k).unwrap();
            assert_eq!(json, k.as_str(), "serde name and as_str agree");
            assert!(!k.words().is_empty());
        }
    }
}
