//! The per-shard section of a merged distributed run: what each shard was asked and did, and
//! the shards missing or failed, right under the generator line.

use std::fmt::Write as _;

use super::escape;
use crate::record::results::Results;

pub(super) fn section(out: &mut String, r: &Results) {
    let Some(m) = &r.merged else {
        return;
    };
    let _ = write!(
        out,
        "<section id=\"shards\"><h2>Shards ({} of {})</h2>",
        m.shards.len(),
        m.count
    );
    if !m.missing.is_empty() || !m.failed.is_empty() {
        let list = |v: &[u32]| {
            v.iter()
                .map(|i| format!("{i}/{}", m.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = write!(
            out,
            "<p class=\"worse\"><b>Incomplete</b>: this is not the planned test."
        );
        if !m.missing.is_empty() {
            let _ = write!(out, " Missing: {}.", list(&m.missing));
        }
        if !m.failed.is_empty() {
            let _ = write!(out, " Failed: {}.", list(&m.failed));
        }
        out.push_str("</p>");
    }
    out.push_str(
        "<table><thead><tr><th>shard</th><th>asked/s</th><th>achieved/s</th>\
         <th>late start (ms)</th><th>requests</th><th>errors</th><th>dropped</th>\
         <th>generator CPU %</th><th>status</th><th>source</th></tr></thead><tbody>",
    );
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into());
    for x in &m.shards {
        let _ = write!(
            out,
            "<tr><td>{}/{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{:.0}{}</td><td>{}</td><td>{}</td></tr>",
            x.index,
            m.count,
            opt(x.asked_rps),
            x.achieved_rps,
            opt(x.late_start_ms),
            x.requests,
            x.errors,
            x.dropped_iterations,
            x.generator_cpu_pct,
            if x.generator_kept_up {
                ""
            } else {
                " (did not keep up)"
            },
            escape(&x.status),
            escape(&x.source)
        );
    }
    for i in &m.missing {
        let _ = write!(
            out,
            "<tr><td>{i}/{}</td><td colspan=\"7\"></td><td class=\"worse\">missing</td><td></td></tr>",
            m.count
        );
    }
    out.push_str("</tbody></table></section>\n");
}
