//! A Markdown summary of a run for `$GITHUB_STEP_SUMMARY` (or a merge-request note): the
//! verdict, headline figures, thresholds, per-step table and the generator's health.

use std::fmt::Write as _;

use super::ms;
use super::verdict::{count, percent, threshold_view, Verdict};
use crate::record::results::Results;

/// Makes text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text for a code span in a table cell: code spans show entities literally, so only the
/// pipe (which would end the cell) is escaped.
fn code(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '`'], " ")
}

pub fn summary_md(r: &Results) -> String {
    let v = Verdict::of(r);
    let icon = match v {
        Verdict::Passed => "✅",
        Verdict::Failed | Verdict::Regressed => "❌",
        Verdict::NoThresholds => "ℹ️",
    };
    let failed = r.thresholds.iter().filter(|t| !t.ok).count();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## {icon} peakload: {} — {}\n",
        cell(&r.scenario.name),
        v.word()
    );
    let status = if r.status == "completed" {
        String::new()
    } else {
        format!(" · **{}**", r.status.to_uppercase())
    };
    let _ = writeln!(
        s,
        "{} model against `{}` for {:.1}s, started {}{status}. {}\n",
        cell(&r.scenario.model),
        code(&r.scenario.target),
        r.duration_s,
        cell(&r.started_at),
        match v {
            Verdict::Passed => format!("All {} threshold(s) held.", r.thresholds.len()),
            Verdict::Failed => format!(
                "**{failed} of {} threshold(s) crossed.**",
                r.thresholds.len()
            ),
            Verdict::NoThresholds => "No thresholds were set.".into(),
            Verdict::Regressed if r.thresholds.is_empty() => "No thresholds were set.".into(),
            Verdict::Regressed => format!("All {} threshold(s) held.", r.thresholds.len()),
        }
    );
    if let Some(g) = &r.regression {
        let regressed: Vec<_> = g.regressed().collect();
        if regressed.is_empty() {
            let _ = writeln!(
                s,
                "History (run #{}, {}): no regression against the comparable runs.\n",
                g.run_id,
                cell(&g.environment)
            );
        } else {
            let _ = writeln!(
                s,
                "**Regressed against the history** (run #{}, {}; not a threshold):\n",
                g.run_id,
                cell(&g.environment)
            );
            for m in regressed {
                let _ = writeln!(s, "- ❌ {}", cell(&m.description));
            }
            s.push('\n');
        }
    }
    s.push_str(&super::shards::markdown(r));
    let sm = &r.summary;
    let l = &sm.latency_ms;
    s.push_str(
        "| requests | req/s | error rate | p50 | p95 | p99 | max | iterations | dropped |\n",
    );
    s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let _ = writeln!(
        s,
        "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |\n",
        count(sm.requests),
        sm.rps,
        percent(sm.error_rate),
        ms(l.p50),
        ms(l.p95),
        ms(l.p99),
        ms(l.max),
        count(sm.iterations),
        count(r.dropped_iterations)
    );
    if !r.thresholds.is_empty() {
        s.push_str("### Thresholds\n\n| | threshold | measured | limit |\n|---|---|---:|---|\n");
        for t in &r.thresholds {
            let t = threshold_view(t);
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | `{}` |",
                if t.ok { "✅ pass" } else { "❌ **FAIL**" },
                code(&t.metric),
                cell(&t.measured),
                code(&t.limit)
            );
        }
        s.push('\n');
    }
    if !r.steps.is_empty() {
        s.push_str("### Steps\n\n| step | requests | req/s | p50 | p95 | p99 | max | errors |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for st in &r.steps {
            let l = &st.latency_ms;
            let _ = writeln!(
                s,
                "| {}/{} | {} | {:.1} | {} | {} | {} | {} | {} |",
                cell(&st.journey),
                cell(&st.name),
                count(st.requests),
                st.rps,
                ms(l.p50),
                ms(l.p95),
                ms(l.p99),
                ms(l.max),
                percent(st.error_rate)
            );
        }
        s.push('\n');
    }
    let g = &r.generator;
    let _ = writeln!(
        s,
        "Load generator: {} ({} thread(s), {:.0}% of one core).",
        if g.kept_up {
            "kept up with the plan"
        } else {
            "**may have limited the load**"
        },
        g.threads,
        g.cpu_pct
    );
    for n in &g.notes {
        let _ = writeln!(s, "- {}", cell(n));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::html::tests::synthetic;
    use crate::record::results::ThresholdResult;

    #[test]
    fn summary_has_verdict_headline_steps_and_thresholds() {
        let mut r = synthetic(
            10,
            2,
            vec![ThresholdResult {
                expr: "http.p99 < 50ms".into(),
                value: Some(212.4),
                ok: false,
            }],
        );
        r.steps[0].name = "a|b".into();
        let md = summary_md(&r);
        assert!(
            md.starts_with("## ❌ peakload: black-friday — FAILED\n"),
            "{md}"
        );
        assert!(md.contains("**1 of 1 threshold(s) crossed.**"));
        assert!(
            md.contains("| ❌ **FAIL** | `http.p99` | 212ms | `< 50ms` |"),
            "{md}"
        );
        assert!(md.contains("| shopper/a\\|b |"), "pipes escaped");
        assert!(md.contains("| requests | req/s |"));
        let passed = summary_md(&synthetic(10, 1, vec![]));
        assert!(passed.contains("No thresholds were set."));
    }
}
