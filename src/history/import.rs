//! Runs from elsewhere, as CSV: header `run_id,time,scenario,step,metric,value` and optionally
//! `environment` and `commit` (columns in any order), one row per run, step and metric. Every
//! bad row is reported at once as `file:line:col: problem`; nothing is imported then.

use std::collections::BTreeMap;
use std::path::Path;

use crate::gate::change::Policy;

use super::shape::DEFAULT_ENVIRONMENT;
use super::{time, MetricValue, NewRun, HTTP_SCOPE};

const REQUIRED: [&str; 6] = ["run_id", "time", "scenario", "step", "metric", "value"];
const OPTIONAL: [&str; 2] = ["environment", "commit"];

/// Every problem found in a CSV file, each `file:line:col: message`.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ImportErrors(pub Vec<String>);

/// The column (1-based, in characters) where field `index` of a raw CSV line begins.
fn field_column(line: &str, index: usize) -> usize {
    let mut field = 0;
    let mut quoted = false;
    for (col, c) in line.chars().enumerate() {
        if field == index {
            return col + 1;
        }
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => field += 1,
            _ => {}
        }
    }
    line.chars().count() + 1
}

/// Reads a history CSV file into runs (grouped by scenario, environment and `run_id`, in the
/// order of their first row). `environment` is used for rows without one.
pub fn read_csv(path: &Path, environment: Option<&str>) -> Result<Vec<NewRun>, ImportErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ImportErrors(vec![format!("{}: cannot read: {e}", path.display())]))?;
    parse_csv(&text, &path.display().to_string(), environment)
}

/// [`read_csv`] on text already read; `name` prefixes the messages.
pub fn parse_csv(
    text: &str,
    name: &str,
    environment: Option<&str>,
) -> Result<Vec<NewRun>, ImportErrors> {
    let lines: Vec<&str> = text.lines().collect();
    let mut errors = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(ImportErrors(vec![format!("{name}:1:1: {e}")])),
    };
    let column = |wanted: &str| headers.iter().position(|h| h.trim() == wanted);
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|c| column(c).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(ImportErrors(vec![format!(
            "{name}:1:1: the header lacks {}; expected run_id,time,scenario,step,metric,value \
             (and optionally environment,commit)",
            missing.join(", ")
        )]));
    }
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim();
        if !REQUIRED.contains(&h) && !OPTIONAL.contains(&h) {
            errors.push(format!(
                "{name}:1:{}: unknown column {h:?}; the columns are {} and optionally {}",
                field_column(lines.first().copied().unwrap_or(""), i),
                REQUIRED.join(","),
                OPTIONAL.join(",")
            ));
        }
    }
    let idx = |c: &str| column(c).expect("checked");
    let (c_run, c_time, c_scenario, c_step, c_metric, c_value) = (
        idx("run_id"),
        idx("time"),
        idx("scenario"),
        idx("step"),
        idx("metric"),
        idx("value"),
    );
    let (c_env, c_commit) = (column("environment"), column("commit"));

    // (scenario, environment, run_id) → index into `runs`.
    let mut by_key: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut runs: Vec<NewRun> = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let (line, col) = e.position().map_or((0, 1), |p| (p.line(), 1));
                errors.push(format!("{name}:{line}:{col}: {e}"));
                continue;
            }
        };
        let line_no = record.position().map_or(0, |p| p.line()) as usize;
        let raw = lines.get(line_no.saturating_sub(1)).copied().unwrap_or("");
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let at = |i: usize| format!("{name}:{line_no}:{}", field_column(raw, i));
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let mut bad = |i: usize, msg: String| errors.push(format!("{}: {msg}", at(i)));

        if record.len() != headers.len() {
            bad(
                0,
                format!(
                    "{} field(s), the header has {}",
                    record.len(),
                    headers.len()
                ),
            );
            continue;
        }
        let run_id = field(c_run);
        let scenario = field(c_scenario);
        let step = field(c_step);
        let metric = field(c_metric);
        let mut row_ok = true;
        for (i, v, what) in [
            (c_run, run_id, "run_id"),
            (c_scenario, scenario, "scenario"),
        ] {
            if v.is_empty() {
                bad(i, format!("{what} is empty"));
                row_ok = false;
            }
        }
        let started_ms = match time::parse_rfc3339_ms(field(c_time)) {
            Ok(ms) => Some(ms),
            Err(e) => {
                bad(
                    c_time,
                    format!("time {:?} is not RFC 3339: {e}", field(c_time)),
                );
                None
            }
        };
        if step != HTTP_SCOPE
            && !step
                .split_once('/')
                .is_some_and(|(j, s)| !j.is_empty() && !s.is_empty())
        {
            bad(
                c_step,
                format!("step {step:?} must be `journey/step`, or `http` for the whole run"),
            );
            row_ok = false;
        }
        if Policy::for_metric(metric).is_none() || metric == "checks_pass_rate" {
            bad(
                c_metric,
                format!(
                    "metric {metric:?} is not a gated metric: p50, p90, p95, p99, p99.9 (any pNN, \
                     in ms), mean, min, max (ms), error_rate (0..1), rps, checks (pass rate 0..1)"
                ),
            );
            row_ok = false;
        }
        let value = match field(c_value).parse::<f64>() {
            Ok(v) if !v.is_finite() => {
                bad(c_value, format!("value {v} is not a finite number"));
                None
            }
            Ok(v) if v < 0.0 => {
                bad(c_value, format!("value {v} is negative"));
                None
            }
            Ok(v) if matches!(metric, "error_rate" | "checks") && v > 1.0 => {
                bad(
                    c_value,
                    format!("{metric} is a fraction from 0 to 1; {v} is more (0.02 = 2 %)"),
                );
                None
            }
            Ok(v) => Some(v),
            Err(_) => {
                bad(
                    c_value,
                    format!("value {:?} is not a number", field(c_value)),
                );
                None
            }
        };
        let (Some(started_ms), Some(value), true) = (started_ms, value, row_ok) else {
            continue;
        };
        let env = c_env
            .map(field)
            .filter(|e| !e.is_empty())
            .or(environment)
            .unwrap_or(DEFAULT_ENVIRONMENT)
            .to_string();
        let commit = c_commit.map(field).filter(|c| !c.is_empty());
        let key = (scenario.to_string(), env.clone(), run_id.to_string());
        let i = *by_key.entry(key).or_insert_with(|| {
            runs.push(NewRun {
                scenario: scenario.to_string(),
                load_hash: None,
                environment: env.clone(),
                commit: commit.map(str::to_string),
                started_at: field(c_time).to_string(),
                started_ms,
                status: "completed".to_string(),
                source: "import".to_string(),
                external_id: Some(run_id.to_string()),
                values: Vec::new(),
                histograms: Vec::new(),
            });
            runs.len() - 1
        });
        let run = &mut runs[i];
        if run.started_ms != started_ms {
            bad(
                c_time,
                format!(
                    "run {run_id:?} was given the time {} on an earlier row; one run has one time",
                    run.started_at
                ),
            );
            continue;
        }
        if run
            .values
            .iter()
            .any(|v| v.scope == step && v.metric == metric)
        {
            bad(
                c_metric,
                format!("run {run_id:?} already has {step} {metric} on an earlier row"),
            );
            continue;
        }
        run.values.push(MetricValue {
            scope: step.to_string(),
            metric: metric.to_string(),
            value,
        });
    }
    if !errors.is_empty() {
        return Err(ImportErrors(errors));
    }
    if runs.is_empty() {
        return Err(ImportErrors(vec![format!(
            "{name}: no rows after the header"
        )]));
    }
    Ok(runs)
}
