//! JUnit XML for CI test reports: one `testsuite` named `thresholds`, one `testcase` per
//! threshold; a crossed threshold carries a `<failure>` with the measured value and the limit.
//! A run judged against its history adds a `testsuite` named `regression`, one `testcase` per
//! gated metric: a regression is a `<failure type="regression">`, a metric without enough
//! history is `<skipped>`.

use std::fmt::Write as _;

use super::verdict::threshold_view;
use crate::record::regression::RegressionGate;
use crate::record::results::Results;

/// Escapes text for XML content and attributes, dropping characters XML 1.0 forbids.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

pub fn junit(r: &Results) -> String {
    let gated = r.regression.as_ref().map_or(&[][..], |g| &g.metrics[..]);
    let regressions = gated.iter().filter(|m| m.verdict == "regressed").count();
    let tests = r.thresholds.len() + gated.len();
    let failures = r.thresholds.iter().filter(|t| !t.ok).count() + regressions;
    let classname = format!("peakload.{}", r.scenario.name);
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"peakload\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">",
        r.duration_s
    );
    let _ = writeln!(
        s,
        "  <testsuite name=\"thresholds\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
        r.thresholds.len(),
        failures - regressions,
        r.duration_s,
        xml(r.started_at.trim_end_matches('Z'))
    );
    s.push_str("    <properties>\n");
    for (name, value) in [
        ("scenario", r.scenario.name.as_str()),
        ("target", r.scenario.target.as_str()),
        ("model", r.scenario.model.as_str()),
        ("status", r.status.as_str()),
        ("started_at", r.started_at.as_str()),
    ] {
        let _ = writeln!(
            s,
            "      <property name=\"{name}\" value=\"{}\"/>",
            xml(value)
        );
    }
    s.push_str("    </properties>\n");
    for t in &r.thresholds {
        let v = threshold_view(t);
        let name = xml(&v.expr);
        if v.ok {
            let _ = writeln!(
                s,
                "    <testcase name=\"{name}\" classname=\"{}\" time=\"0\"/>",
                xml(&classname)
            );
        } else {
            let message = format!("{}: measured {}, limit {}", v.metric, v.measured, v.limit);
            let _ = writeln!(
                s,
                "    <testcase name=\"{name}\" classname=\"{}\" time=\"0\">\n      \
                 <failure message=\"{}\" type=\"threshold\">{}\nthreshold: {}\nrun: {} ({}) against {}</failure>\n    \
                 </testcase>",
                xml(&classname),
                xml(&message),
                xml(&message),
                xml(&v.expr),
                xml(&r.scenario.name),
                xml(&r.status),
                xml(&r.scenario.target),
            );
        }
    }
    s.push_str("  </testsuite>\n");
    if let Some(g) = &r.regression {
        regression_suite(&mut s, r, g, regressions);
    }
    s.push_str("</testsuites>\n");
    s
}

fn regression_suite(s: &mut String, r: &Results, g: &RegressionGate, regressions: usize) {
    let skipped = g
        .metrics
        .iter()
        .filter(|m| m.verdict == "insufficient_history")
        .count();
    let _ = writeln!(
        s,
        "  <testsuite name=\"regression\" tests=\"{}\" failures=\"{regressions}\" errors=\"0\" skipped=\"{skipped}\" time=\"0\" timestamp=\"{}\">",
        g.metrics.len(),
        xml(r.started_at.trim_end_matches('Z'))
    );
    let classname = xml(&format!("peakload.{}.regression", r.scenario.name));
    for m in &g.metrics {
        let name = xml(&format!("{} {}", m.scope, m.metric));
        let _ = write!(
            s,
            "    <testcase name=\"{name}\" classname=\"{classname}\" time=\"0\""
        );
        match m.verdict.as_str() {
            "regressed" => {
                let _ = writeln!(
                    s,
                    ">\n      <failure message=\"{}\" type=\"regression\">{}\nhistory: {} (run #{}, {})</failure>\n    </testcase>",
                    xml(&m.description),
                    xml(&m.description),
                    xml(&g.database),
                    g.run_id,
                    xml(&g.environment),
                );
            }
            "insufficient_history" => {
                let _ = writeln!(
                    s,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml(&m.description)
                );
            }
            _ => {
                let _ = writeln!(s, "/>");
            }
        }
    }
    s.push_str("  </testsuite>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::html::tests::synthetic;
    use crate::record::results::ThresholdResult;

    #[test]
    fn failed_thresholds_carry_value_and_limit() {
        let mut r = synthetic(
            10,
            1,
            vec![
                ThresholdResult {
                    expr: "http.p99 < 50ms".into(),
                    value: Some(212.4),
                    ok: false,
                },
                ThresholdResult {
                    expr: "http.error_rate < 1%".into(),
                    value: Some(0.0),
                    ok: true,
                },
            ],
        );
        r.scenario.name = "a&b<\u{1}".into();
        let x = junit(&r);
        assert!(x.contains("<testsuite name=\"thresholds\" tests=\"2\" failures=\"1\""));
        assert!(x.contains("<testcase name=\"http.error_rate &lt; 1%\""));
        assert!(x.contains(
            "<failure message=\"http.p99: measured 212ms, limit &lt; 50ms\" type=\"threshold\">"
        ));
        assert!(x.contains("classname=\"peakload.a&amp;b&lt;\""), "{x}");
        assert_eq!(x.matches("<testcase").count(), 2);
    }

    #[test]
    fn regressions_are_their_own_suite_with_one_case_per_metric() {
        use crate::record::regression::{GatedMetric, RegressionGate};
        let mut r = synthetic(
            10,
            1,
            vec![ThresholdResult {
                expr: "http.p99 < 50ms".into(),
                value: Some(12.0),
                ok: true,
            }],
        );
        let metric = |scope: &str, verdict: &str, description: &str| GatedMetric {
            scope: scope.into(),
            metric: "p95".into(),
            verdict: verdict.into(),
            value: 140.0,
            baseline_median: Some(100.0),
            baseline_runs: 12,
            relative_change: Some(0.4),
            p_value: Some(0.0001),
            description: description.into(),
            trend: Vec::new(),
            baseline_from_run: Some(1),
            changed_from_run: None,
        };
        r.regression = Some(RegressionGate {
            database: "h.db".into(),
            run_id: 13,
            environment: "ci".into(),
            metrics: vec![
                metric(
                    "buy/checkout",
                    "regressed",
                    "buy/checkout p95: REGRESSED: now 140 ms",
                ),
                metric("buy/home", "unchanged", "buy/home p95: unchanged"),
                metric(
                    "http",
                    "insufficient_history",
                    "http p95: insufficient history",
                ),
            ],
        });
        let x = junit(&r);
        assert!(
            x.contains("<testsuites name=\"peakload\" tests=\"4\" failures=\"1\""),
            "{x}"
        );
        assert!(
            x.contains("<testsuite name=\"thresholds\" tests=\"1\" failures=\"0\""),
            "{x}"
        );
        assert!(x.contains(
            "<testsuite name=\"regression\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""
        ), "{x}");
        assert!(
            x.contains(
                "<failure message=\"buy/checkout p95: REGRESSED: now 140 ms\" type=\"regression\">"
            ),
            "{x}"
        );
        assert!(x.contains("<testcase name=\"buy/home p95\""), "{x}");
        assert_eq!(x.matches("<testcase").count(), 4);
        assert!(
            x.contains("<skipped message=\"http p95: insufficient history\"/>"),
            "{x}"
        );
    }

    #[test]
    fn no_thresholds_is_an_empty_suite() {
        let x = junit(&synthetic(10, 1, vec![]));
        assert!(x.contains("tests=\"0\" failures=\"0\""));
        assert!(!x.contains("<testcase"));
    }
}
