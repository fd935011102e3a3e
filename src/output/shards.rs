//! The per-shard table of a merged distributed run (`results.merged`): rate asked against
//! achieved, late start, generator CPU and errors for each shard, and the shards missing or
//! failed, in text (the terminal) and Markdown (the CI summary).

use std::fmt::Write as _;

use crate::record::results::{MergeInfo, Results};

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{v:.1}{unit}"))
        .unwrap_or_else(|| "-".into())
}

fn incomplete_line(m: &MergeInfo, part: bool) -> Option<String> {
    if m.missing.is_empty() && m.failed.is_empty() {
        return None;
    }
    let list = |v: &[u32]| {
        v.iter()
            .map(|i| format!("{i}/{}", m.count))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !m.missing.is_empty() {
        parts.push(format!("missing shard(s) {}", list(&m.missing)));
    }
    if !m.failed.is_empty() {
        parts.push(format!("failed shard(s) {}", list(&m.failed)));
    }
    // A part is an intermediate product: the final merge judges the run.
    let verdict = if part {
        "the final merge of the parts will be incomplete"
    } else {
        "this result is not the planned test"
    };
    Some(format!("INCOMPLETE: {}; {verdict}", parts.join("; ")))
}

/// The table as text, or nothing for a result that is not a merge.
pub fn text(r: &Results) -> String {
    let Some(m) = &r.merged else {
        return String::new();
    };
    let mut s = String::new();
    match &r.part {
        Some(p) => {
            let _ = writeln!(
                s,
                "\n  part: shards {}-{} of {} ({} found):",
                p.first,
                p.last,
                m.count,
                m.shards.len()
            );
        }
        None => {
            let _ = writeln!(s, "\n  shards ({} of {}):", m.shards.len(), m.count);
        }
    }
    let _ = writeln!(
        s,
        "    {:>5}  {:>10}  {:>10}  {:>10}  {:>9}  {:>8}  {:>8}  {:>7}  status",
        "shard", "asked/s", "achieved/s", "late (ms)", "requests", "errors", "dropped", "cpu %"
    );
    for x in &m.shards {
        let _ = writeln!(
            s,
            "    {:>5}  {:>10}  {:>10.1}  {:>10}  {:>9}  {:>8}  {:>8}  {:>7.0}  {}{}",
            format!("{}/{}", x.index, m.count),
            opt(x.asked_rps, ""),
            x.achieved_rps,
            opt(x.late_start_ms, ""),
            x.requests,
            x.errors,
            x.dropped_iterations,
            x.generator_cpu_pct,
            x.status,
            if x.generator_kept_up {
                ""
            } else {
                " (generator did not keep up)"
            }
        );
    }
    if let Some(line) = incomplete_line(m, r.part.is_some()) {
        let _ = writeln!(s, "  {line}");
    }
    s
}

/// The table as Markdown, or nothing for a result that is not a merge.
pub fn markdown(r: &Results) -> String {
    let Some(m) = &r.merged else {
        return String::new();
    };
    let mut s = String::new();
    if let Some(line) = incomplete_line(m, r.part.is_some()) {
        let _ = writeln!(s, "**{line}**\n");
    }
    let _ = writeln!(s, "| shard | asked/s | achieved/s | late start ms | requests | errors | dropped | generator CPU % | status |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for x in &m.shards {
        let _ = writeln!(
            s,
            "| {}/{} | {} | {:.1} | {} | {} | {} | {} | {:.0} | {} |",
            x.index,
            m.count,
            opt(x.asked_rps, ""),
            x.achieved_rps,
            opt(x.late_start_ms, ""),
            x.requests,
            x.errors,
            x.dropped_iterations,
            x.generator_cpu_pct,
            x.status
        );
    }
    for i in &m.missing {
        let _ = writeln!(s, "| {i}/{} | | | | | | | | **missing** |", m.count);
    }
    s.push('\n');
    s
}
