//! `[gate]`: the regression gate's policy per gated metric, the file's counterpart of
//! `--gate-policy`. Each key is a metric name (or `"*"` for every metric); its value is
//! `"off"` (not judged), `"on"`, or a table of settings:
//!
//! ```toml
//! [gate]
//! rps = "off"
//! p99 = { min_effect = "15%", confirm_runs = 3 }
//! "*" = { alpha = 0.0005 }
//! ```
//!
//! The ranges checked here are the ones the gate accepts (`gate::change::Policy`), so a bad
//! value is reported at its place in the file, not later when a run is judged.

use toml::de::DeValue;

use super::fields::{entries, float_of};
use super::{Compiler, Value};
use crate::scenario::model::GateRule;

const RULE_KEYS: &[&str] = &[
    "gated",
    "alpha",
    "min_effect",
    "min_absolute",
    "min_history",
    "confirm_runs",
];

const METRICS: &str = "p50, p90, p95, p99 (any pNN from p0 to p100), mean, median, min, max, \
                       error_rate, rps, checks, or \"*\" for every metric";

/// The most runs the gate looks at is 60 and it needs one more than `min_history`.
const MAX_MIN_HISTORY: i64 = 59;

/// Whether the gate judges a metric of this name (see `gate::change::Policy::for_metric`).
pub fn is_gated_metric(name: &str) -> bool {
    match name {
        "mean" | "median" | "min" | "max" | "error_rate" | "rps" | "checks"
        | "checks_pass_rate" => true,
        _ => name
            .strip_prefix('p')
            .and_then(|p| p.parse::<f64>().ok())
            .is_some_and(|p| (0.0..=100.0).contains(&p)),
    }
}

impl Compiler<'_> {
    pub(super) fn gate(&mut self, v: &Value<'_>) -> Vec<GateRule> {
        let DeValue::Table(t) = v.get_ref() else {
            self.type_error(
                v,
                "gate",
                "a table of metrics, e.g. [gate] with p99 = { min_effect = \"15%\" }",
            );
            return Vec::new();
        };
        let mut rules = Vec::new();
        for (k, value) in entries(t) {
            let metric = k.get_ref().as_ref();
            if metric != "*" && !is_gated_metric(metric) {
                self.error(
                    k.span().start,
                    format!("\"{metric}\" in [gate] is not a gated metric; expected {METRICS}"),
                );
                continue;
            }
            let mut rule = GateRule {
                metric: metric.to_string(),
                ..GateRule::default()
            };
            match value.get_ref() {
                DeValue::String(s) if s.as_ref() == "off" => rule.gated = Some(false),
                DeValue::String(s) if s.as_ref() == "on" => rule.gated = Some(true),
                DeValue::Boolean(b) => rule.gated = Some(*b),
                DeValue::Table(_) => self.gate_rule(value, &mut rule),
                _ => {
                    self.type_error(
                        value,
                        metric,
                        "\"off\", \"on\" or a table such as { min_effect = \"15%\", confirm_runs = 2 }",
                    );
                    continue;
                }
            }
            rules.push(rule);
        }
        // Rules for every metric first, so a metric's own rule wins whatever the file order.
        rules.sort_by_key(|r| r.metric != "*");
        rules
    }

    fn gate_rule(&mut self, v: &Value<'_>, rule: &mut GateRule) {
        let what = format!("[gate] {}", rule.metric);
        let Some(f) = self.fields(v, &what, RULE_KEYS, &[]) else {
            return;
        };
        for (k, value) in &f.entries {
            let key = k.get_ref().as_ref();
            match key {
                "gated" => match value.get_ref() {
                    DeValue::Boolean(b) => rule.gated = Some(*b),
                    _ => self.type_error(value, key, "true or false"),
                },
                "alpha" => {
                    rule.alpha = self.fraction(value, key).and_then(|a| {
                        if a > 0.0 && a < 1.0 {
                            Some(a)
                        } else {
                            self.error(
                                value.span().start,
                                format!(
                                    "\"alpha\" must be between 0 and 1 (exclusive), e.g. 0.001, \
                                     found {a}"
                                ),
                            );
                            None
                        }
                    });
                }
                "min_effect" => rule.min_effect = self.fraction(value, key),
                "min_absolute" => rule.min_absolute = self.non_negative(value, key),
                "min_history" => {
                    rule.min_history = self
                        .int_in(value, key, 3, MAX_MIN_HISTORY)
                        .map(|n| n as usize);
                }
                "confirm_runs" => {
                    rule.confirm_runs = self.int_in(value, key, 1, 3).map(|n| n as usize);
                }
                _ => {}
            }
        }
    }

    /// A fraction ≥ 0, as a number (0.15) or a percentage string ("15%").
    fn fraction(&mut self, v: &Value<'_>, key: &str) -> Option<f64> {
        let expected = "a number ≥ 0 or a percentage such as \"15%\"";
        let parsed = match v.get_ref() {
            DeValue::String(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
                .map(|n| n / 100.0),
            other => float_of(other),
        };
        match parsed {
            Some(f) if f >= 0.0 && f.is_finite() => Some(f),
            Some(f) => {
                self.error(
                    v.span().start,
                    format!("\"{key}\" must be {expected}, found {f}"),
                );
                None
            }
            None => {
                self.type_error(v, key, expected);
                None
            }
        }
    }
}
