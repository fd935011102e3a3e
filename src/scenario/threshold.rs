//! Threshold expressions (`"checkout.p99 < 300ms"`), resolved against a compiled scenario.
//!
//! Used for the file's `thresholds` and for `--threshold` on the command line, so the errors
//! here are plain strings the caller locates.

use super::diag::suggest;
use super::duration::parse_duration;
use super::model::{CmpOp, MetricRef, Scenario, Scope, Stat, Threshold};

const RUN_METRICS: &[(&str, Stat)] = &[
    ("dropped_iterations", Stat::DroppedIterations),
    ("iterations", Stat::Iterations),
    ("feeder_exhausted", Stat::FeederExhausted),
    ("checks.failed", Stat::ChecksFailed),
    ("checks.rate", Stat::ChecksPassRate),
];

const STATS_HELP: &str = "p50, p90, p95, p99, p999, p<N> (e.g. p75, p99.9), mean, min, max, \
                          error_rate, rps, requests, errors";

const FORM_HELP: &str = "a threshold reads <metric> <op> <value>, e.g. \"checkout.p99 < 300ms\" \
                         or \"http.error_rate < 1%\"; <op> is one of <, <=, >, >=, ==, !=";

/// Parses and resolves `<metric> <op> <value>` against `scenario`'s journeys and steps.
///
/// Metrics: `http.<stat>`, `<journey>.<stat>`, `<step>.<stat>` (a step name unique across
/// journeys), `<journey>.<step>.<stat>`, and the run-wide `dropped_iterations`, `iterations`,
/// `feeder_exhausted`, `checks.failed`, `checks.rate`. Latency limits take a duration unit (a bare number is
/// milliseconds); rates take `1%` or a fraction `0.01`; everything else is a plain number.
pub fn parse_threshold(expr: &str, scenario: &Scenario) -> Result<Threshold, String> {
    let (metric_text, op, value_text) = split_expr(expr)?;
    let metric = resolve_metric(metric_text, scenario)?;
    let limit = parse_limit(value_text, &metric.stat, metric_text)?;
    Ok(Threshold {
        expr: expr.trim().to_string(),
        metric,
        op,
        limit,
    })
}

fn split_expr(expr: &str) -> Result<(&str, CmpOp, &str), String> {
    let Some(at) = expr.find(['<', '>', '=', '!']) else {
        return Err(format!(
            "threshold \"{expr}\" has no comparison operator; {FORM_HELP}"
        ));
    };
    let rest = &expr[at..];
    let (op, len) = if rest.starts_with("<=") {
        (CmpOp::Le, 2)
    } else if rest.starts_with(">=") {
        (CmpOp::Ge, 2)
    } else if rest.starts_with("==") {
        (CmpOp::Eq, 2)
    } else if rest.starts_with("!=") {
        (CmpOp::Ne, 2)
    } else if rest.starts_with('<') {
        (CmpOp::Lt, 1)
    } else if rest.starts_with('>') {
        (CmpOp::Gt, 1)
    } else {
        return Err(format!(
            "threshold \"{expr}\" has an invalid operator; {FORM_HELP}"
        ));
    };
    let metric = expr[..at].trim();
    let value = expr[at + len..].trim();
    if metric.is_empty() || value.is_empty() || value.starts_with(['<', '>', '=', '!']) {
        return Err(format!("threshold \"{expr}\" is incomplete; {FORM_HELP}"));
    }
    Ok((metric, op, value))
}

fn parse_stat(s: &str) -> Option<Stat> {
    Some(match s {
        "mean" => Stat::Mean,
        "min" => Stat::Min,
        "max" => Stat::Max,
        "error_rate" => Stat::ErrorRate,
        "rps" => Stat::Rps,
        "requests" => Stat::Requests,
        "errors" => Stat::Errors,
        _ => Stat::Percentile(parse_percentile(s)?),
    })
}

/// `p50` → 50, `p999` → 99.9, `p9999` → 99.99, `p995` → 99.5, `p99.9` → 99.9, `p100` → 100.
fn parse_percentile(s: &str) -> Option<f64> {
    let digits = s.strip_prefix('p')?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let value: f64 = if digits.contains('.') || digits.len() <= 2 || digits == "100" {
        digits.parse().ok()?
    } else if let Some(fraction) = digits.strip_prefix("99") {
        format!("99.{fraction}").parse().ok()?
    } else {
        return None;
    };
    (0.0..=100.0).contains(&value).then_some(value)
}

/// One way to read a metric: the scope and the stat, and how to write it unambiguously.
struct Reading {
    scope: Scope,
    stat: Stat,
    spelled: String,
}

fn resolve_metric(metric: &str, scenario: &Scenario) -> Result<MetricRef, String> {
    if let Some((_, stat)) = RUN_METRICS.iter().find(|(name, _)| *name == metric) {
        return Ok(MetricRef {
            scope: Scope::Run,
            stat: stat.clone(),
        });
    }
    let mut readings: Vec<Reading> = Vec::new();
    let mut known_prefix_bad_stat: Option<&str> = None;
    let mut unknown_prefix: Option<&str> = None;
    for (dot, _) in metric.match_indices('.') {
        let (prefix, stat_text) = (&metric[..dot], &metric[dot + 1..]);
        let scopes = scopes_named(prefix, scenario);
        match parse_stat(stat_text) {
            Some(stat) => {
                if scopes.is_empty() && unknown_prefix.is_none() {
                    unknown_prefix = Some(prefix);
                }
                for (scope, spelled) in scopes {
                    if !readings.iter().any(|r| r.scope == scope) {
                        readings.push(Reading {
                            scope,
                            stat: stat.clone(),
                            spelled: format!("{spelled}.{stat_text}"),
                        });
                    }
                }
            }
            None if !scopes.is_empty() && known_prefix_bad_stat.is_none() => {
                known_prefix_bad_stat = Some(stat_text);
            }
            None => {}
        }
    }
    match readings.len() {
        1 => {
            let r = readings.pop().expect("one reading");
            Ok(MetricRef {
                scope: r.scope,
                stat: r.stat,
            })
        }
        0 => {
            if let Some(stat) = known_prefix_bad_stat {
                return Err(format!(
                    "unknown statistic \"{stat}\" in metric \"{metric}\"; expected one of: {STATS_HELP}"
                ));
            }
            Err(unknown_metric(metric, unknown_prefix, scenario))
        }
        _ => {
            let choices: Vec<String> = readings.into_iter().map(|r| r.spelled).collect();
            Err(format!(
                "metric \"{metric}\" is ambiguous; write one of: {}",
                choices.join(", ")
            ))
        }
    }
}

/// The scopes a metric prefix can name, each with its unambiguous spelling.
fn scopes_named(prefix: &str, scenario: &Scenario) -> Vec<(Scope, String)> {
    if prefix == "http" {
        return vec![(Scope::Http, "http".to_string())];
    }
    let mut found = Vec::new();
    for (j, journey) in scenario.journeys.iter().enumerate() {
        if journey.name == prefix {
            found.push((Scope::Journey(j), journey.name.clone()));
        }
        for (s, step) in journey.steps.iter().enumerate() {
            let qualified = prefix
                .strip_prefix(journey.name.as_str())
                .and_then(|r| r.strip_prefix('.'))
                == Some(step.name.as_str());
            if step.name == prefix || qualified {
                found.push((
                    Scope::Step {
                        journey: j,
                        step: s,
                    },
                    format!("{}.{}", journey.name, step.name),
                ));
            }
        }
    }
    found
}

fn unknown_metric(metric: &str, prefix: Option<&str>, scenario: &Scenario) -> String {
    let journeys: Vec<&str> = scenario.journeys.iter().map(|j| j.name.as_str()).collect();
    let mut steps: Vec<&str> = Vec::new();
    for j in &scenario.journeys {
        for s in &j.steps {
            if !steps.contains(&s.name.as_str()) {
                steps.push(&s.name);
            }
        }
    }
    let mut msg = format!(
        "unknown metric \"{metric}\"; expected http.<stat>, <journey>.<stat>, <step>.<stat>, \
         <journey>.<step>.<stat>, dropped_iterations, iterations, feeder_exhausted, checks.failed or checks.rate"
    );
    if !journeys.is_empty() {
        msg.push_str(&format!("; journeys: {}", journeys.join(", ")));
    }
    if !steps.is_empty() {
        msg.push_str(&format!("; steps: {}", steps.join(", ")));
    }
    let hint = match prefix {
        Some(prefix) => {
            let names = std::iter::once("http")
                .chain(journeys.iter().copied())
                .chain(steps.iter().copied());
            suggest(prefix, names).map(|s| format!("{s}{}", &metric[prefix.len()..]))
        }
        None => suggest(metric, RUN_METRICS.iter().map(|(n, _)| *n)).map(str::to_string),
    };
    if let Some(hint) = hint {
        msg.push_str(&format!(" (did you mean \"{hint}\"?)"));
    }
    msg
}

fn parse_limit(value: &str, stat: &Stat, metric: &str) -> Result<f64, String> {
    match stat {
        Stat::Percentile(_) | Stat::Mean | Stat::Min | Stat::Max => {
            if let Some(n) = plain_number(value) {
                return Ok(n);
            }
            parse_duration(value)
                .map(|d| d.as_nanos() as f64 / 1e6)
                .map_err(|e| {
                    format!("invalid latency \"{value}\" for {metric} (e.g. 300ms or 1.5s): {e}")
                })
        }
        Stat::ErrorRate | Stat::ChecksPassRate => {
            let rate = if let Some(pct) = value.strip_suffix('%') {
                plain_number(pct.trim())
                    .filter(|p| *p <= 100.0)
                    .map(|p| p / 100.0)
            } else {
                plain_number(value).filter(|f| *f <= 1.0)
            };
            rate.ok_or_else(|| {
                format!(
                    "invalid rate \"{value}\" for {metric}; write a percentage such as 1% \
                     or a fraction between 0 and 1 such as 0.01"
                )
            })
        }
        _ => plain_number(value).ok_or_else(|| {
            format!("invalid value \"{value}\" for {metric}; expected a plain number such as 200")
        }),
    }
}

/// A finite, non-negative decimal number without a unit.
fn plain_number(s: &str) -> Option<f64> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '_')
    {
        return None;
    }
    s.replace('_', "")
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
}
