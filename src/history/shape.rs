//! A results file as a history entry: what shapes the load (hashed, so that runs of a changed
//! scenario start a series of their own) and the gated figures per scope.

use crate::record::results::{LatencyStats, Results};

use super::{time, HistoryError, MetricValue, NewRun, ScopeHistogram, HTTP_SCOPE};

/// Where a run was made and from which commit; `None` fields fall back to the defaults.
#[derive(Debug, Clone, Default)]
pub struct RunLabels {
    pub environment: Option<String>,
    pub commit: Option<String>,
}

/// The environment label when none is given.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// The commit from the CI's variables: GitHub Actions, then GitLab CI.
pub fn commit_from_ci(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["GITHUB_SHA", "CI_COMMIT_SHA"]
        .iter()
        .find_map(|name| var(name).filter(|v| !v.trim().is_empty()))
}

/// A 64-bit FNV-1a hash, as 16 hex digits, of what shapes the load: the model, the stages
/// (durations and targets), the journeys and their weights, and each step's method and path.
/// The target URL is left out (that is the environment's business) and so are the figures.
pub fn load_hash(results: &Results) -> String {
    let mut text = format!("model={}\n", results.scenario.model);
    for s in &results.stages {
        text.push_str(&format!(
            "stage={}|{}|{}|{}\n",
            s.name, s.start_s, s.end_s, s.target
        ));
    }
    for j in &results.journeys {
        text.push_str(&format!("journey={}|{}\n", j.name, j.weight));
    }
    for s in &results.steps {
        text.push_str(&format!(
            "step={}|{}|{}|{}\n",
            s.journey, s.name, s.method, s.path
        ));
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The scope name of a step: `journey/step`.
pub fn step_scope(journey: &str, step: &str) -> String {
    format!("{journey}/{step}")
}

fn scope_values(
    scope: &str,
    latency: &LatencyStats,
    requests: u64,
    error_rate: f64,
    rps: f64,
    checks: (u64, u64),
) -> Vec<MetricValue> {
    let mut figures = Vec::new();
    if requests > 0 {
        figures.extend([
            ("p50", latency.p50),
            ("p90", latency.p90),
            ("p95", latency.p95),
            ("p99", latency.p99),
            ("mean", latency.mean),
            ("error_rate", error_rate),
        ]);
    }
    figures.push(("rps", rps));
    let (total, failed) = checks;
    if total > 0 {
        figures.push(("checks", (total - failed.min(total)) as f64 / total as f64));
    }
    figures
        .into_iter()
        .map(|(metric, value)| MetricValue {
            scope: scope.to_string(),
            metric: metric.to_string(),
            value,
        })
        .collect()
}

/// The history entry for a results file.
pub fn from_results(results: &Results, labels: &RunLabels) -> Result<NewRun, HistoryError> {
    let started_ms = time::parse_rfc3339_ms(&results.started_at).map_err(|e| {
        HistoryError::Invalid(format!(
            "the results' started_at {:?} is not an RFC 3339 time: {e}",
            results.started_at
        ))
    })?;
    let s = &results.summary;
    let mut values = scope_values(
        HTTP_SCOPE,
        &s.latency_ms,
        s.requests,
        s.error_rate,
        s.rps,
        (s.checks, s.checks_failed),
    );
    let mut histograms = vec![ScopeHistogram {
        scope: HTTP_SCOPE.to_string(),
        requests: s.requests as i64,
        errors: s.errors as i64,
        histogram: s.histogram.clone(),
    }];
    for step in &results.steps {
        let scope = step_scope(&step.journey, &step.name);
        values.extend(scope_values(
            &scope,
            &step.latency_ms,
            step.requests,
            step.error_rate,
            step.rps,
            (step.checks, step.checks_failed),
        ));
        histograms.push(ScopeHistogram {
            scope,
            requests: step.requests as i64,
            errors: step.errors as i64,
            histogram: step.histogram.clone(),
        });
    }
    Ok(NewRun {
        scenario: results.scenario.name.clone(),
        load_hash: Some(load_hash(results)),
        environment: labels
            .environment
            .clone()
            .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string()),
        commit: labels.commit.clone(),
        started_at: results.started_at.clone(),
        started_ms,
        status: results.status.clone(),
        source: "results".to_string(),
        external_id: None,
        values,
        histograms,
    })
}
