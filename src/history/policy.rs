//! Per-metric changes to the gate's default policy (`Policy::for_metric`), as given on the
//! command line: `--gate-policy "p99:min_effect=15%,confirm_runs=3"`, `--gate-policy
//! "*:alpha=0.0001"` (every metric), `--gate-policy rps:off` (not judged), and in the
//! scenario's `[gate]` ([`from_scenario`]). Later settings win: the file's, then the command
//! line's.

use crate::gate::change::Policy;
use crate::scenario::GateRule;

/// One `--gate-policy` value, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOverride {
    /// A gated metric name, or `*` for all.
    pub metric: String,
    pub settings: Vec<Setting>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    Alpha(f64),
    /// Relative (0.15 = 15 %).
    MinEffect(f64),
    /// In the metric's unit (ms, fraction, per second).
    MinAbsolute(f64),
    MinHistory(usize),
    ConfirmRuns(usize),
    /// `false`: the metric is not judged at all.
    Gated(bool),
}

const KEYS: &str = "alpha, min_effect, min_absolute, min_history, confirm_runs; or off, on";

/// The scenario's `[gate]` rules as overrides, in the order they apply.
pub fn from_scenario(rules: &[GateRule]) -> Vec<PolicyOverride> {
    rules
        .iter()
        .map(|r| {
            let mut settings = Vec::new();
            settings.extend(r.gated.map(Setting::Gated));
            settings.extend(r.alpha.map(Setting::Alpha));
            settings.extend(r.min_effect.map(Setting::MinEffect));
            settings.extend(r.min_absolute.map(Setting::MinAbsolute));
            settings.extend(r.min_history.map(Setting::MinHistory));
            settings.extend(r.confirm_runs.map(Setting::ConfirmRuns));
            PolicyOverride {
                metric: r.metric.clone(),
                settings,
            }
        })
        .collect()
}

/// Parses `METRIC:KEY=VALUE[,KEY=VALUE...]`, `METRIC:off` or `METRIC:on`.
pub fn parse_override(s: &str) -> Result<PolicyOverride, String> {
    let (metric, rest) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected METRIC:KEY=VALUE, e.g. p99:min_effect=15%"))?;
    let metric = metric.trim();
    if metric != "*" && Policy::for_metric(metric).is_none() {
        return Err(format!(
            "{metric:?} is not a gated metric (p50, p90, p95, p99, any pNN, mean, min, max, \
             error_rate, rps, checks; * for all)"
        ));
    }
    let switch = match rest.trim() {
        "off" => Some(false),
        "on" => Some(true),
        _ => None,
    };
    if let Some(on) = switch {
        return Ok(PolicyOverride {
            metric: metric.to_string(),
            settings: vec![Setting::Gated(on)],
        });
    }
    let mut settings = Vec::new();
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected KEY=VALUE ({KEYS})"))?;
        let value = value.trim();
        let number = || -> Result<f64, String> {
            let (text, scale) = match value.strip_suffix('%') {
                Some(t) => (t, 0.01),
                None => (value, 1.0),
            };
            text.trim()
                .parse::<f64>()
                .map(|v| v * scale)
                .map_err(|_| format!("{key}={value}: not a number"))
        };
        let count = || -> Result<usize, String> {
            value
                .parse::<usize>()
                .map_err(|_| format!("{key}={value}: not a whole number of runs"))
        };
        settings.push(match key.trim() {
            "alpha" => Setting::Alpha(number()?),
            "min_effect" => Setting::MinEffect(number()?),
            "min_absolute" => Setting::MinAbsolute(number()?),
            "min_history" => Setting::MinHistory(count()?),
            "confirm_runs" => Setting::ConfirmRuns(count()?),
            other => {
                return Err(format!(
                    "unknown setting {other:?}; the settings are {KEYS}"
                ))
            }
        });
    }
    if settings.is_empty() {
        return Err(format!("{s:?}: no setting given ({KEYS})"));
    }
    Ok(PolicyOverride {
        metric: metric.to_string(),
        settings,
    })
}

/// The policy for `metric`: the default with every matching override applied in order;
/// `None` for a metric that is not gated (unknown, or switched off).
pub fn policy_for(metric: &str, overrides: &[PolicyOverride]) -> Option<Policy> {
    let mut p = Policy::for_metric(metric)?;
    let mut gated = true;
    for o in overrides
        .iter()
        .filter(|o| o.metric == "*" || o.metric == metric)
    {
        for s in &o.settings {
            match *s {
                Setting::Alpha(v) => p.alpha = v,
                Setting::MinEffect(v) => p.min_relative = v,
                Setting::MinAbsolute(v) => p.min_absolute = v,
                Setting::MinHistory(v) => p.min_history = v,
                Setting::ConfirmRuns(v) => p.confirm_runs = v,
                Setting::Gated(on) => gated = on,
            }
        }
    }
    gated.then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_per_metric_and_to_all() {
        let all = parse_override("*:alpha=0.0001").unwrap();
        let p99 = parse_override("p99: min_effect=15%, confirm_runs=3").unwrap();
        let p = policy_for("p99", &[all.clone(), p99.clone()]).unwrap();
        assert_eq!(p.alpha, 0.0001);
        assert!((p.min_relative - 0.15).abs() < 1e-12);
        assert_eq!(p.confirm_runs, 3);
        let p50 = policy_for("p50", &[all, p99]).unwrap();
        assert_eq!(p50.alpha, 0.0001);
        assert_eq!(
            p50.min_relative,
            Policy::for_metric("p50").unwrap().min_relative
        );
        assert_eq!(policy_for("latency", &[]), None);
    }

    #[test]
    fn metrics_switch_off_and_on_again_later_wins() {
        let off = parse_override("rps:off").unwrap();
        assert_eq!(policy_for("rps", std::slice::from_ref(&off)), None);
        assert!(policy_for("p50", std::slice::from_ref(&off)).is_some());
        let all_off = parse_override("*:off").unwrap();
        let p95_on = parse_override("p95: on").unwrap();
        assert!(policy_for("p95", &[all_off.clone(), p95_on.clone()]).is_some());
        assert_eq!(policy_for("p99", &[all_off.clone(), p95_on.clone()]), None);
        assert_eq!(policy_for("p95", &[p95_on, all_off]), None);
    }

    #[test]
    fn scenario_rules_apply_before_the_command_line() {
        let file = from_scenario(&[
            GateRule {
                metric: "*".into(),
                alpha: Some(0.01),
                ..GateRule::default()
            },
            GateRule {
                metric: "p99".into(),
                min_effect: Some(0.2),
                confirm_runs: Some(3),
                ..GateRule::default()
            },
            GateRule {
                metric: "rps".into(),
                gated: Some(false),
                ..GateRule::default()
            },
        ]);
        let cli = parse_override("p99:min_effect=12%").unwrap();
        let all: Vec<PolicyOverride> = file.into_iter().chain([cli]).collect();
        let p99 = policy_for("p99", &all).unwrap();
        assert!((p99.min_relative - 0.12).abs() < 1e-12);
        assert_eq!(p99.confirm_runs, 3);
        assert_eq!(p99.alpha, 0.01);
        assert_eq!(policy_for("rps", &all), None);
    }

    /// The scenario checks `[gate]` metric names itself (it cannot see the gate); both
    /// must agree.
    #[test]
    fn the_scenario_knows_the_gated_metrics() {
        for name in [
            "p50",
            "p99.9",
            "p100",
            "p0",
            "p101",
            "p-1",
            "mean",
            "median",
            "min",
            "max",
            "error_rate",
            "rps",
            "checks",
            "checks_pass_rate",
            "latency",
            "pxx",
            "",
            "P50",
        ] {
            assert_eq!(
                crate::scenario::is_gated_metric(name),
                Policy::for_metric(name).is_some(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn bad_overrides_say_what_is_wrong() {
        for (bad, says) in [
            ("p99", "expected METRIC:KEY=VALUE"),
            ("latency:alpha=0.1", "not a gated metric"),
            ("p99:alpha", "expected KEY=VALUE"),
            ("p99:alpha=low", "not a number"),
            ("p99:confirm_runs=2.5", "not a whole number"),
            ("p99:speed=1", "unknown setting"),
            ("p99:", "no setting given"),
        ] {
            let e = parse_override(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
