//! The report's trend section: for a run judged against its history (`run --history`), each
//! gated metric over the latest runs, small multiples, regressions first. Marked on each: the
//! current run (the last point), where an accepted level starts, where a detected change
//! starts, and the baseline's median.

use std::fmt::Write as _;

use super::escape;
use crate::record::regression::{GatedMetric, RegressionGate};

const W: f64 = 300.0;
const H: f64 = 110.0;
const PAD_L: f64 = 8.0;
const PAD_R: f64 = 8.0;
const PAD_T: f64 = 10.0;
const PAD_B: f64 = 16.0;

fn figure_value(metric: &str, v: f64) -> String {
    match metric {
        "error_rate" | "checks" => format!("{:.2} %", v * 100.0),
        "rps" => format!("{v:.1}/s"),
        _ if v >= 100.0 => format!("{v:.0} ms"),
        _ => format!("{v:.1} ms"),
    }
}

/// One metric's chart, as inline SVG.
fn chart(m: &GatedMetric) -> String {
    let n = m.trend.len();
    let mut lo = m
        .trend
        .iter()
        .map(|p| p.value)
        .fold(f64::INFINITY, f64::min);
    let mut hi = m
        .trend
        .iter()
        .map(|p| p.value)
        .fold(f64::NEG_INFINITY, f64::max);
    if let Some(b) = m.baseline_median {
        lo = lo.min(b);
        hi = hi.max(b);
    }
    if hi <= lo || !hi.is_finite() || !lo.is_finite() {
        hi = lo + lo.abs().max(1.0) * 0.1;
        lo -= lo.abs().max(1.0) * 0.1;
    }
    let span = hi - lo;
    let (lo, hi) = (lo - span * 0.08, hi + span * 0.08);
    let x = |i: usize| {
        if n <= 1 {
            W / 2.0
        } else {
            PAD_L + (W - PAD_L - PAD_R) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| PAD_T + (H - PAD_T - PAD_B) * (1.0 - (v - lo) / (hi - lo));
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"trend\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"{} {} over the last {n} runs\">",
        escape(&m.scope),
        escape(&m.metric)
    );
    if let Some(b) = m.baseline_median {
        let _ = write!(
            s,
            "<line class=\"baseline\" x1=\"{PAD_L}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" \
             stroke=\"#98a2b3\" stroke-dasharray=\"4 3\"><title>baseline median {}</title></line>",
            W - PAD_R,
            escape(&figure_value(&m.metric, b)),
            y = y(b)
        );
    }
    for (i, p) in m.trend.iter().enumerate() {
        let accepted = p.accepted;
        let changed = m.changed_from_run == Some(p.run_id);
        if accepted || changed {
            let (class, color, label) = if changed {
                ("change", "#d92d20", "change starts")
            } else {
                ("accepted", "#1570ef", "accepted level starts")
            };
            let _ = write!(
                s,
                "<line class=\"{class}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{PAD_T}\" y2=\"{}\" \
                 stroke=\"{color}\" stroke-dasharray=\"3 2\"><title>{label} at run #{}</title></line>",
                H - PAD_B,
                p.run_id,
                x = x(i)
            );
        }
    }
    let points: Vec<String> = m
        .trend
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
        .collect();
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#344054\" stroke-width=\"1.5\" points=\"{}\"/>",
        points.join(" ")
    );
    for (i, p) in m.trend.iter().enumerate() {
        let current = i + 1 == n;
        let (r, fill, class) = match (current, m.verdict.as_str()) {
            (true, "regressed") => (4.5, "#d92d20", "current regressed"),
            (true, "improved") => (4.5, "#12b76a", "current"),
            (true, _) => (4.5, "#1570ef", "current"),
            _ => (2.2, "#344054", "run"),
        };
        let _ = write!(
            s,
            "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\" fill=\"{fill}\">\
             <title>run #{} · {} · {}</title></circle>",
            x(i),
            y(p.value),
            p.run_id,
            escape(&p.started_at),
            escape(&figure_value(&m.metric, p.value))
        );
    }
    if let (Some(first), Some(last)) = (m.trend.first(), m.trend.last()) {
        let _ = write!(
            s,
            "<text x=\"{PAD_L}\" y=\"{}\" font-size=\"10\" fill=\"#667085\">#{}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#667085\" text-anchor=\"end\">#{} (this run)</text>",
            H - 3.0,
            first.run_id,
            W - PAD_R,
            H - 3.0,
            last.run_id
        );
    }
    s.push_str("</svg>");
    s
}

/// The section; nothing when the run was not judged against a history.
pub fn section(out: &mut String, gate: Option<&RegressionGate>) {
    let Some(g) = gate else {
        return;
    };
    let regressed = g.regressed().count();
    let _ = write!(
        out,
        "<section id=\"trend\"><h2>Trend against the run history</h2>\
         <p class=\"note\">Run #{} in {} (environment <b>{}</b>), judged against the comparable \
         runs recorded before it: {}. Grey dashes: the baseline's median; blue: an accepted \
         level starts; red: a detected change starts; the large dot is this run.</p>\
         <div class=\"trends\">",
        g.run_id,
        escape(&g.database),
        escape(&g.environment),
        if regressed == 0 {
            "no regression".to_string()
        } else {
            format!("<b>{regressed} metric(s) regressed</b>")
        }
    );
    let order = |m: &GatedMetric| match m.verdict.as_str() {
        "regressed" => 0,
        "improved" => 1,
        _ => 2,
    };
    let mut metrics: Vec<&GatedMetric> = g.metrics.iter().collect();
    metrics.sort_by_key(|m| order(m));
    for m in metrics {
        let word = match m.verdict.as_str() {
            "insufficient_history" => "insufficient history",
            v => v,
        };
        let _ = write!(
            out,
            "<figure class=\"trend {}\"><figcaption><b>{} {}</b> <span class=\"verdict-word\">{}</span></figcaption>{}\
             <p class=\"note\">{}</p></figure>",
            escape(&m.verdict),
            escape(&m.scope),
            escape(&m.metric),
            escape(word),
            chart(m),
            escape(&m.description)
        );
    }
    out.push_str("</div></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::regression::TrendPoint;

    fn metric(verdict: &str, values: &[f64], changed: Option<i64>) -> GatedMetric {
        GatedMetric {
            scope: "buy/checkout".into(),
            metric: "p95".into(),
            verdict: verdict.into(),
            value: *values.last().unwrap(),
            baseline_median: Some(100.0),
            baseline_runs: values.len() - 1,
            relative_change: Some(0.4),
            p_value: Some(0.0001),
            description: "buy/checkout p95: REGRESSED: <now> 140 ms".into(),
            trend: values
                .iter()
                .enumerate()
                .map(|(i, v)| TrendPoint {
                    run_id: i as i64 + 1,
                    started_at: format!("2026-11-{:02}T10:00:00Z", i + 1),
                    value: *v,
                    accepted: i == 2,
                })
                .collect(),
            baseline_from_run: Some(3),
            changed_from_run: changed,
        }
    }

    #[test]
    fn marks_the_current_run_the_change_and_the_accepted_level() {
        let gate = RegressionGate {
            database: "h.db".into(),
            run_id: 6,
            environment: "ci".into(),
            metrics: vec![
                metric(
                    "unchanged",
                    &[100.0, 100.0, 100.0, 100.0, 100.0, 100.0],
                    None,
                ),
                metric(
                    "regressed",
                    &[100.0, 101.0, 99.0, 100.0, 140.0, 141.0],
                    Some(5),
                ),
            ],
        };
        let mut out = String::new();
        section(&mut out, Some(&gate));
        assert!(out.contains("<b>1 metric(s) regressed</b>"), "{out}");
        // Regressions first.
        let regressed_at = out.find("figure class=\"trend regressed\"").unwrap();
        let unchanged_at = out.find("figure class=\"trend unchanged\"").unwrap();
        assert!(regressed_at < unchanged_at);
        assert_eq!(out.matches("class=\"current regressed\"").count(), 1);
        assert!(out.contains("change starts at run #5"));
        assert_eq!(out.matches("accepted level starts at run #3").count(), 2);
        assert!(out.contains("&lt;now&gt;") && !out.contains("<now>"));
        // A flat series still draws (no division by a zero range).
        assert!(!out.contains("NaN") && !out.contains("inf"));

        let mut none = String::new();
        section(&mut none, None);
        assert!(none.is_empty());
    }
}
