//! Views of a run for people: the live dashboard ([`tui`]) or the progress line during it,
//! the text summary after it, and, from `results.json` alone, the HTML report (`html`), JUnit
//! XML (`junit`) and a Markdown summary (`markdown`).

pub mod artifacts;
pub mod console;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod shards;
pub mod tui;
pub mod verdict;

use std::fmt::Write as _;
use std::time::Duration;

use crate::record::aggregate::LiveView;
use crate::record::results::{LatencyStats, Results};

/// One concise line, for terminals without the dashboard, pipes and CI logs.
pub fn progress_line(live: &LiveView, planned: Duration, open_model: bool) -> String {
    let mut s = String::new();
    let _ = write!(s, "[{:>4}s/{:>4}s]", live.seconds, planned.as_secs());
    if let Some(p) = &live.last {
        let _ = write!(s, " rps {:>8.1}", p.rps);
        if open_model {
            let _ = write!(
                s,
                "  arrivals/s {:.0} (target {:.0})  vus {}",
                p.iterations_started as f64, p.target_rps, p.active_vus
            );
        } else {
            let _ = write!(s, "  vus {} (target {:.0})", p.active_vus, p.target_rps);
        }
        let _ = write!(
            s,
            "  p50 {} p95 {} p99 {}",
            ms(p.latency_ms.p50),
            ms(p.latency_ms.p95),
            ms(p.latency_ms.p99)
        );
    }
    // Errors over the last second, like the rate and latencies beside them.
    let (errors, requests) = live
        .last
        .as_ref()
        .map_or((0, 0), |p| (p.errors, p.requests));
    let rate = if requests > 0 {
        errors as f64 / requests as f64 * 100.0
    } else {
        0.0
    };
    let _ = write!(
        s,
        "  errors {:.2}%  requests {}  dropped {}",
        rate, live.requests, live.counters.dropped_iterations
    );
    s
}

/// A latency in milliseconds, shown with a sensible precision.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}ms")
    } else if v >= 10.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.2}ms")
    }
}

/// The end-of-run summary: headline, per-step table, thresholds, generator health.
pub fn summary(r: &Results) -> String {
    let mut s = String::new();
    let status = match r.status.as_str() {
        "completed" => String::new(),
        other => format!(" ({other})"),
    };
    let _ = writeln!(
        s,
        "\n{} — {} for {:.1}s against {}{}",
        r.scenario.name, r.scenario.model, r.duration_s, r.scenario.target, status
    );
    let sm = &r.summary;
    let _ = writeln!(
        s,
        "  requests {}  rps {:.1}  errors {} ({:.2}%)  iterations {} ({} failed)  checks failed {}/{}",
        sm.requests,
        sm.rps,
        sm.errors,
        sm.error_rate * 100.0,
        sm.iterations,
        sm.failed_iterations,
        sm.checks_failed,
        sm.checks
    );
    let _ = writeln!(s, "  latency  {}", latency_line(&sm.latency_ms));
    if r.scenario.model == "open" {
        let _ = writeln!(
            s,
            "  schedule dropped {}  late {}  waited for a VU {}  lag p99 {} max {}",
            r.dropped_iterations,
            r.late_iterations,
            r.arrivals_queued,
            ms(r.schedule_lag_ms.p99),
            ms(r.schedule_lag_ms.max)
        );
    }
    if r.feeder_exhausted > 0 {
        let _ = writeln!(
            s,
            "  {} iterations skipped: a unique feeder ran out of rows",
            r.feeder_exhausted
        );
    }
    if r.interrupted_iterations > 0 {
        let _ = writeln!(
            s,
            "  {} iterations cut part-way by the end of the run (counted as neither done nor failed)",
            r.interrupted_iterations
        );
    }
    if r.retried_requests > 0 {
        let _ = writeln!(
            s,
            "  {} requests sent twice: a reused connection closed before answering, so they went again on a fresh one (counted once)",
            r.retried_requests
        );
    }
    let _ = writeln!(s);
    let width = r
        .steps
        .iter()
        .map(|st| st.journey.len() + st.name.len() + 1)
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        s,
        "  {:<width$} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}",
        "step", "requests", "rps", "p50", "p95", "p99", "max", "errors", "checks✗"
    );
    for st in &r.steps {
        let label = format!("{}/{}", st.journey, st.name);
        let _ = writeln!(
            s,
            "  {:<width$} {:>9} {:>8.1} {:>9} {:>9} {:>9} {:>9} {:>7.2}% {:>7}",
            label,
            st.requests,
            st.rps,
            ms(st.latency_ms.p50),
            ms(st.latency_ms.p95),
            ms(st.latency_ms.p99),
            ms(st.latency_ms.max),
            st.error_rate * 100.0,
            st.checks_failed
        );
    }
    let errors: Vec<_> = r.errors.iter().filter(|(_, &n)| n > 0).collect();
    if !errors.is_empty() {
        let _ = writeln!(s, "\n  errors by kind:");
        for (k, n) in errors {
            let sample = r
                .error_samples
                .iter()
                .find(|e| e.kind.as_str() == k)
                .map(|e| format!("  e.g. {}: {}", e.step, e.message))
                .unwrap_or_default();
            let _ = writeln!(s, "    {k:<18} {n:>8}{sample}");
        }
    }
    if !r.thresholds.is_empty() {
        let _ = writeln!(s, "\n  thresholds:");
        for t in &r.thresholds {
            let mark = if t.ok { "✓ pass" } else { "✗ FAIL" };
            let measured = match t.value {
                Some(_) => format!("measured {}", verdict::threshold_view(t).measured),
                None => "not measured (nothing recorded)".to_string(),
            };
            let _ = writeln!(s, "    {mark}  {:<40} {measured}", t.expr);
        }
    }
    let g = &r.generator;
    let _ = writeln!(
        s,
        "\n  generator: {} thread(s), {:.2} CPU-s ({:.0}% of one core){}",
        g.threads,
        g.cpu_s,
        g.cpu_pct,
        if g.kept_up {
            ", kept up with the plan"
        } else {
            ""
        }
    );
    for note in &g.notes {
        let _ = writeln!(s, "    ! {note}");
    }
    s
}

fn latency_line(l: &LatencyStats) -> String {
    format!(
        "mean {}  p50 {}  p90 {}  p95 {}  p99 {}  p99.9 {}  max {}",
        ms(l.mean),
        ms(l.p50),
        ms(l.p90),
        ms(l.p95),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    )
}
