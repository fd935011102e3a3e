//! The verdict of a run and how each threshold reads, shared by the HTML report, JUnit and
//! Markdown so they all say the same thing.
//!
//! Input is `results.json` alone: a [`ThresholdResult`] carries the expression and the measured
//! value in the threshold's unit, so the limit and the unit are read back from the expression.

use crate::record::results::{Results, ThresholdResult};

/// What a run amounts to, in the order a reader needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every threshold held.
    Passed,
    /// At least one threshold was crossed (or could not be measured).
    Failed,
    /// The thresholds held (or there were none) but a gated metric regressed against the
    /// run history.
    Regressed,
    /// No thresholds were set: nothing to pass or fail.
    NoThresholds,
}

impl Verdict {
    pub fn of(r: &Results) -> Self {
        let failed = r.thresholds.iter().any(|t| !t.ok);
        let regressed = r
            .regression
            .as_ref()
            .is_some_and(|g| g.regressed().next().is_some());
        if !failed && regressed {
            Verdict::Regressed
        } else if r.thresholds.is_empty() {
            Verdict::NoThresholds
        } else if r.thresholds.iter().all(|t| t.ok) {
            Verdict::Passed
        } else {
            Verdict::Failed
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "PASSED",
            Verdict::Failed => "FAILED",
            Verdict::Regressed => "REGRESSED",
            Verdict::NoThresholds => "NO THRESHOLDS",
        }
    }
}

/// The unit a threshold's measured value is in, from the metric's last word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Millis,
    /// A fraction in 0..1, shown as a percentage.
    Fraction,
    PerSecond,
    Count,
}

/// One threshold, split for display.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdView {
    pub expr: String,
    pub metric: String,
    /// The comparison and limit as written, e.g. `< 300ms`.
    pub limit: String,
    /// The measured value with its unit, or `no data` when it could not be computed.
    pub measured: String,
    pub ok: bool,
}

pub fn threshold_view(t: &ThresholdResult) -> ThresholdView {
    let (metric, limit) = split_expr(&t.expr);
    let unit = unit_of(metric);
    ThresholdView {
        expr: t.expr.clone(),
        metric: metric.to_string(),
        limit: limit.to_string(),
        measured: format_value(t.value.unwrap_or(f64::NAN), unit),
        ok: t.ok,
    }
}

/// `"http.p95 < 300ms"` → (`http.p95`, `< 300ms`). An expression without an operator (not
/// produced by the parser) is all metric.
fn split_expr(expr: &str) -> (&str, &str) {
    match expr.find(['<', '>', '=', '!']) {
        Some(at) => (expr[..at].trim(), expr[at..].trim()),
        None => (expr.trim(), ""),
    }
}

pub fn unit_of(metric: &str) -> Unit {
    if metric == "checks.rate" {
        return Unit::Fraction;
    }
    let stat = metric.rsplit('.').next().unwrap_or(metric);
    match stat {
        "mean" | "min" | "max" => Unit::Millis,
        "error_rate" => Unit::Fraction,
        "rps" => Unit::PerSecond,
        s if s.starts_with('p') && s[1..].chars().all(|c| c.is_ascii_digit() || c == '.') => {
            Unit::Millis
        }
        _ => Unit::Count,
    }
}

pub fn format_value(v: f64, unit: Unit) -> String {
    if !v.is_finite() {
        return "no data".into();
    }
    match unit {
        Unit::Millis => super::ms(v),
        Unit::Fraction => percent(v),
        Unit::PerSecond => format!("{v:.1}/s"),
        Unit::Count => {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            }
        }
    }
}

/// A fraction as a percentage with enough digits to tell 0.01% from 0.
pub fn percent(f: f64) -> String {
    let p = f * 100.0;
    if p == 0.0 {
        "0%".into()
    } else if p < 0.01 {
        format!("{p:.4}%")
    } else if p < 1.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A count with thin thousands separators, for headline figures.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(expr: &str, value: f64, ok: bool) -> ThresholdResult {
        ThresholdResult {
            expr: expr.into(),
            value: Some(value),
            ok,
        }
    }

    #[test]
    fn threshold_views_carry_unit_and_limit() {
        let v = threshold_view(&t("checkout.p99 < 500ms", 612.4, false));
        assert_eq!(v.metric, "checkout.p99");
        assert_eq!(v.limit, "< 500ms");
        assert_eq!(v.measured, "612ms");
        let v = threshold_view(&t("http.error_rate < 1%", 0.0234, false));
        assert_eq!(v.measured, "2.3%");
        let v = threshold_view(&t("dropped_iterations == 0", 3.0, false));
        assert_eq!((v.limit.as_str(), v.measured.as_str()), ("== 0", "3"));
        let v = threshold_view(&t("http.rps >= 100", 98.25, false));
        assert_eq!(v.measured, "98.2/s");
        let v = threshold_view(&t("checks.rate > 99%", 1.0, true));
        assert_eq!(v.measured, "100.0%");
        let v = threshold_view(&t("http.p99.9 < 1s", f64::NAN, false));
        assert_eq!(v.measured, "no data");
    }

    #[test]
    fn counts_get_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }
}
