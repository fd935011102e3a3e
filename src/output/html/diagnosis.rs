//! The Diagnosis section, near the top of the report: what the diagnosis found (findings,
//! best first, in plain words) and one stacked chart of the users' latency with the leading
//! signals on the run's clock — the signals the findings name, then those that moved most —
//! each in its own panel and unit, the degraded window and the findings' windows shaded,
//! scaling activities and stages marked across all panels.
//!
//! It reads the results' findings, capacity, infrastructure signals and timeline; it never
//! re-runs the analysis, so the report shows what `results.json` holds.

use std::fmt::Write as _;

use plotters::style::RGBColor;

use super::chart::{self, Band, Line, Panel, Span, TimeAxis};
use super::extras::{self, number, Shown, Signal};
use super::{escape, series};
use crate::record::findings::{Capacity, Finding, Kind};
use crate::record::results::Results;

/// Signal panels under the latency panel, at most.
pub const MAX_LEADING: usize = 4;
/// With findings, signals that only moved fill the chart up to this many panels; without,
/// this many of the most moved are shown.
const MOVERS: usize = 3;
/// Robust standard deviations a signal must move by to be charted beside the findings'.
const CLEARLY_MOVED: f64 = 4.0;
/// Scaling and other events marked on the chart, at most.
const MAX_SPANS: usize = 24;

const LATENCY: RGBColor = RGBColor(29, 41, 81);
const DEGRADED: RGBColor = RGBColor(214, 39, 40);

/// The findings, best first: stored so, sorted again in case a hand-edited file is not (a
/// score that is not a number goes last).
pub fn findings(list: &[Finding]) -> Vec<&Finding> {
    let mut out: Vec<&Finding> = list.iter().collect();
    let rank = |f: &Finding| score(f).unwrap_or(f64::NEG_INFINITY);
    out.sort_by(|a, b| rank(b).total_cmp(&rank(a)));
    out
}

fn score(f: &Finding) -> Option<f64> {
    Some(f.score).filter(|s| s.is_finite())
}

/// A finding's window in time order, when both ends are numbers.
fn window(f: &Finding) -> Option<(f64, f64)> {
    let (a, b) = (f.window.start_s, f.window.end_s);
    if !(a.is_finite() && b.is_finite()) {
        return None;
    }
    Some(if b >= a { (a, b) } else { (b, a) })
}

/// Whether a kind of finding describes what the users saw (its window is part of the
/// degradation), rather than how the run itself was made.
fn describes_users(kind: Kind) -> bool {
    match kind {
        Kind::CpuSaturation
        | Kind::IoSaturation
        | Kind::MemoryPressure
        | Kind::DbPoolSaturation
        | Kind::DbLatency
        | Kind::QueueBacklog
        | Kind::Throttling
        | Kind::ScalingLag
        | Kind::ErrorBurst
        | Kind::TargetUnresponsive => true,
        Kind::GeneratorLimited => false,
    }
}

/// Where the users' experience was degraded: from `capacity.degraded_at_s` (or the earliest
/// finding) to the latest end of the findings that describe the degradation.
pub fn degraded_window(capacity: Option<&Capacity>, found: &[&Finding]) -> Option<(f64, f64)> {
    let about_users = || {
        found
            .iter()
            .filter(|f| describes_users(f.kind))
            .filter_map(|f| window(f))
    };
    let end = about_users().map(|w| w.1).reduce(f64::max)?;
    let start = capacity
        .and_then(|c| c.degraded_at_s)
        .filter(|t| t.is_finite())
        .or_else(|| about_users().map(|w| w.0).reduce(f64::min))?;
    (end > start).then_some((start, end))
}

/// Whether the diagnosis has anything to show.
pub fn present(r: &Results) -> bool {
    r.infra.is_some() || !r.findings.is_empty() || !r.diagnosis_notes.is_empty()
}

/// What a panel of the chart shows.
enum Source<'a> {
    Signal(&'a Signal),
    ErrorRate,
    GeneratorCpu,
}

struct Leading<'a> {
    source: Source<'a>,
    /// The finding (index, best first) that names it; `None` for a signal that only moved.
    finding: Option<usize>,
}

/// The signals worth a panel: those the findings name (in the findings' order), then the
/// most moved of the rest — up to [`MOVERS`] panels in all — and never more than
/// [`MAX_LEADING`].
fn leading<'a>(found: &[&Finding], sigs: &'a [Signal]) -> Vec<Leading<'a>> {
    let mut out: Vec<Leading> = Vec::new();
    let mut used: Vec<usize> = Vec::new();
    for (i, f) in found.iter().enumerate() {
        if out.len() >= MAX_LEADING {
            break;
        }
        let source = match f.signal.as_str() {
            "errors" => Some(Source::ErrorRate),
            "generator" => Some(Source::GeneratorCpu),
            name => sigs
                .iter()
                .position(|s| s.key == name)
                .filter(|at| !used.contains(at))
                .map(|at| {
                    used.push(at);
                    Source::Signal(&sigs[at])
                }),
        };
        let duplicate = |s: &Source| {
            out.iter().any(|l| {
                matches!(
                    (&l.source, s),
                    (Source::ErrorRate, Source::ErrorRate)
                        | (Source::GeneratorCpu, Source::GeneratorCpu)
                )
            })
        };
        if let Some(source) = source.filter(|s| !duplicate(s)) {
            out.push(Leading {
                source,
                finding: Some(i),
            });
        }
    }
    // Beside findings, only a signal that clearly moved earns a panel; in a healthy run the
    // most moved are shown whatever they did, to show that nothing stood out.
    let min_moved = if found.is_empty() { 0.0 } else { CLEARLY_MOVED };
    let mut movers: Vec<usize> = (0..sigs.len())
        .filter(|i| !used.contains(i) && sigs[*i].points.len() >= 2)
        .filter(|i| sigs[*i].spread.moved >= min_moved)
        .collect();
    movers.sort_by(|&a, &b| {
        sigs[b]
            .spread
            .moved
            .total_cmp(&sigs[a].spread.moved)
            .then_with(|| sigs[a].title.cmp(&sigs[b].title))
    });
    for i in movers {
        if out.len() >= MOVERS {
            break;
        }
        out.push(Leading {
            source: Source::Signal(&sigs[i]),
            finding: None,
        });
    }
    out
}

/// The section; nothing when there is neither `infra` nor `findings`.
pub fn section(out: &mut String, r: &Results, axis: &TimeAxis) {
    if !present(r) {
        return;
    }
    let sigs = r.infra.as_ref().map(extras::signals).unwrap_or_default();
    let events = r.infra.as_ref().map(extras::events).unwrap_or_default();
    out.push_str("<section id=\"diagnosis\"><h2>Diagnosis</h2>");
    let found = findings(&r.findings);
    let degraded = degraded_window(r.capacity.as_ref(), &found);
    let noted = r.infra.as_ref().is_some_and(|i| !i.notes.is_empty());
    verdict_line(out, r.capacity.as_ref(), &found, noted);
    // What moved without reaching the users, or what the diagnosis could not see.
    if !r.diagnosis_notes.is_empty() {
        out.push_str("<ul class=\"diagnosis-notes\">");
        for n in &r.diagnosis_notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>");
    }
    findings_list(out, &found, &sigs);

    let lead = leading(&found, &sigs);
    let (panels, legend_lines) = panels(r, &found, &lead, degraded);
    let spans = spans(&events, axis.x_max);
    let caption = if lead.is_empty() {
        "Users' latency (no infrastructure signal to compare)".to_string()
    } else {
        "Users' latency and the leading signals, on the run's clock".to_string()
    };
    let _ = write!(
        out,
        "<figure class=\"diagnosis\"><figcaption>{}</figcaption>",
        escape(&caption)
    );
    match chart::stacked_time_chart(axis, &panels, &spans) {
        Ok(svg) => out.push_str(&svg),
        Err(e) => {
            let _ = write!(out, "<p class=\"note\">{}</p>", escape(&e.to_string()));
        }
    }
    out.push_str(&chart::legend(
        &legend_lines,
        &legend_extras(r, degraded, &found, &spans),
    ));
    let off_chart = events
        .iter()
        .filter(|e| !e.log && !e.within(axis.x_max))
        .count();
    if off_chart > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">{off_chart} event(s) fell outside the run and are not marked; \
             they are listed under <a href=\"#infra\">Infrastructure signals</a>.</p>"
        );
    }
    out.push_str("</figure></section>\n");
}

/// One sentence: what was found, or plainly that nothing was (and, when reading the sources
/// left notes, that a signal may be missing or too coarse).
fn verdict_line(out: &mut String, capacity: Option<&Capacity>, found: &[&Finding], noted: bool) {
    let turned = capacity
        .and_then(|c| c.degraded_at_s)
        .filter(|t| t.is_finite());
    let reached = capacity.is_some_and(|c| c.reached);
    let by = capacity
        .and_then(|c| c.limited_by.as_deref())
        .unwrap_or("latency or errors");
    let when = turned
        .map(|t| format!(" at {}", chart::clock(t)))
        .unwrap_or_default();
    let line = match (found.len(), reached) {
        (0, false) => "<b>No cause found</b>: the users' latency and errors stayed near their \
             baseline, so the run looks healthy. The chart shows latency against the signals \
             that moved most."
            .to_string(),
        (0, true) if noted => format!(
            "<b>No cause found</b>: the users' {} degraded{when}, but no observed signal \
             explains it, and reading the sources left notes: a signal may be missing, or its \
             period too long to show the change — see <a href=\"#infra\">Infrastructure \
             signals</a>.",
            escape(by)
        ),
        (0, true) => format!(
            "<b>No cause found</b>: the users' {} degraded{when}, but no observed signal \
             explains it; add the service's metrics or logs as sources in <code>[observe]</code>.",
            escape(by)
        ),
        (n, true) => format!(
            "The users' {} degraded{when}; {n} likely cause(s), best first:",
            escape(by)
        ),
        (n, false) => format!("{n} finding(s), best first:"),
    };
    let class = if found.is_empty() && !reached {
        "healthy"
    } else {
        "degraded"
    };
    let _ = write!(out, "<p class=\"diag {class}\">{line}</p>");
}

fn findings_list(out: &mut String, found: &[&Finding], sigs: &[Signal]) {
    if found.is_empty() {
        return;
    }
    out.push_str("<ol class=\"findings\" id=\"findings\">");
    for f in found {
        let _ = write!(
            out,
            "<li><b>{}</b> <code class=\"kind\">{}</code>",
            escape(f.kind.words()),
            escape(f.kind.as_str())
        );
        if let Some(s) = score(f) {
            let _ = write!(out, " <span class=\"muted\">score {s:.2}</span>");
        }
        if let Some((a, b)) = window(f) {
            let _ = write!(
                out,
                " <span class=\"muted\">{} – {}</span>",
                chart::clock(a),
                chart::clock(b)
            );
        }
        if !f.summary.is_empty() {
            let _ = write!(out, "<p>{}</p>", escape(&f.summary));
        }
        if !f.signal.is_empty() {
            let _ = write!(
                out,
                "<div class=\"muted\">signal <code>{}</code></div>",
                escape(&f.signal)
            );
        }
        let unit = sigs
            .iter()
            .find(|s| s.key == f.signal)
            .map_or("", |s| s.unit.as_str());
        if f.evidence.is_empty() {
            out.push_str("<table class=\"kv\"><tbody></tbody></table>");
        } else {
            out.push_str("<div class=\"evidence\">");
            for (k, &v) in &f.evidence {
                // A figure that is not a number (JSON has none) shows empty.
                let (label, shown) = if v.is_finite() {
                    evidence_item(k, v, unit)
                } else {
                    (k.replace('_', " "), String::new())
                };
                let _ = write!(
                    out,
                    "<span title=\"{}\"><i>{}</i> {}</span>",
                    escape(k),
                    escape(&label),
                    escape(&shown)
                );
            }
            out.push_str("</div>");
        }
        if !f.lines.is_empty() {
            let shown: Vec<String> = f.lines.iter().take(5).map(|l| escape(l)).collect();
            let _ = write!(out, "<pre class=\"lines\">{}</pre>", shown.join("\n"));
        }
        if let Some(cause) = &f.explained_by {
            let _ = write!(
                out,
                "<div class=\"muted explained\">a consequence of <code>{}</code></div>",
                escape(cause)
            );
        }
        if let Some(r) = &f.runner_up {
            let _ = write!(
                out,
                "<div class=\"muted runner-up\">runner-up <code>{}</code>{} (score {:.2}), not chosen: {}</div>",
                escape(&r.signal),
                r.kind
                    .map(|k| format!(" <code class=\"kind\">{}</code>", escape(k.as_str())))
                    .unwrap_or_default(),
                r.score,
                escape(&r.why_not)
            );
        }
        out.push_str("</li>");
    }
    out.push_str("</ol>");
}

/// An evidence figure in words: `lead_s = 3` → ("led the users by", "3 s"); `baseline` and
/// `during` in the signal's `unit`. Unknown keys keep their name; the raw key stays in the
/// tooltip.
fn evidence_item(key: &str, v: f64, unit: &str) -> (String, String) {
    let in_unit = |v: f64| {
        if unit.is_empty() {
            number(v)
        } else {
            crate::diagnose::rules::format_value(v, unit)
        }
    };
    let secs = |v: f64| format!("{v:.0} s");
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    let (label, shown) = match key {
        "lead_s" if v < 0.0 => ("followed the users by", secs(-v)),
        "lead_s" => ("led the users by", secs(v)),
        "span_s" => ("each value covers", secs(v)),
        "changed_at_s" => ("changed at", chart::clock(v)),
        "started_s" => ("activity started at", chart::clock(v)),
        "degraded_at_s" => ("users degraded at", chart::clock(v)),
        "in_service_after_breach_s" => ("in service after the breach", secs(v)),
        "not_in_service_after_breach_s" => ("no new capacity in service for", secs(v)),
        "failed_at_s" => ("activity failed at", chart::clock(v)),
        "z" => ("size of the change (robust z)", number(v)),
        "correlation" => ("correlation with the users' experience", number(v)),
        "load_correlation" => ("correlation with the load", number(v)),
        "baseline" => ("before", in_unit(v)),
        "during" => ("during", in_unit(v)),
        "growth" => ("kept growing (rank correlation with time)", number(v)),
        "pool_in_use" => ("connections in use", number(v)),
        "pool_size" => ("pool size", number(v)),
        "busy_seconds" => ("generator CPU-bound", secs(v)),
        "busy_share_while_degraded" => ("of the degraded seconds CPU-bound", pct(v)),
        "baseline_error_rate" => ("errors before", pct(v)),
        "during_error_rate" => ("errors during", pct(v)),
        _ => return (key.replace('_', " "), number(v)),
    };
    (label.to_string(), shown)
}

/// The chart's panels (latency first) and, for the legend, one line per panel with its unit.
fn panels(
    r: &Results,
    found: &[&Finding],
    lead: &[Leading],
    degraded: Option<(f64, f64)>,
) -> (Vec<Panel>, Vec<Line>) {
    let mut panels = Vec::new();
    let mut legend = Vec::new();
    let p99 = series::timeline_series(&r.timeline, |p| {
        if p.requests > 0 {
            p.latency_ms.p99
        } else {
            f64::NAN
        }
    });
    let label = "users' p99 latency per second";
    legend.push(Line::new(format!("{label} (ms)"), LATENCY, Vec::new()));
    panels.push(Panel {
        title: label.into(),
        color: LATENCY,
        unit: "ms".into(),
        lines: vec![Line::new(label, LATENCY, p99)],
        bands: degraded
            .map(|(a, b)| Band {
                from: a,
                to: b,
                color: DEGRADED,
                opacity: 0.12,
            })
            .into_iter()
            .collect(),
    });
    for (i, l) in lead.iter().enumerate() {
        let color = chart::color(i + 1);
        let (name, full, points, unit) = match &l.source {
            Source::Signal(s) => {
                let (points, scale) = extras::scaled(s);
                (s.key.clone(), s.title.clone(), points, scale.axis(&s.unit))
            }
            Source::ErrorRate => (
                "users' error rate".to_string(),
                "users' error rate (failed requests / requests)".to_string(),
                series::timeline_series(&r.timeline, |p| {
                    if p.requests > 0 {
                        p.errors as f64 / p.requests as f64 * 100.0
                    } else {
                        f64::NAN
                    }
                }),
                "%".to_string(),
            ),
            Source::GeneratorCpu => (
                "load generator CPU".to_string(),
                "the load generator's own CPU use".to_string(),
                series::timeline_series(&r.timeline, |p| p.generator_cpu_pct),
                "% of a core".to_string(),
            ),
        };
        let (title, band) = match l.finding {
            Some(at) => {
                let f = &found[at];
                (
                    format!("#{} {} · {name}", at + 1, f.kind.as_str()),
                    window(f).map(|(a, b)| Band {
                        from: a,
                        to: b,
                        color,
                        opacity: 0.13,
                    }),
                )
            }
            None => (format!("moved most · {name}"), None),
        };
        legend.push(Line::new(format!("{full} ({unit})"), color, Vec::new()));
        panels.push(Panel {
            title,
            color,
            unit,
            lines: vec![Line::new(name, color, points)],
            bands: band.into_iter().collect(),
        });
    }
    (panels, legend)
}

/// Events marked on the chart: scaling activities and the like, not log lines; those that
/// touch the run, at most [`MAX_SPANS`].
fn spans(events: &[Shown], x_max: f64) -> Vec<Span> {
    let mut chosen: Vec<&Shown> = events
        .iter()
        .filter(|e| !e.log && e.within(x_max))
        .collect();
    // Scaling first: it is what the chart is asked to show.
    chosen.sort_by(|a, b| {
        b.scaling
            .cmp(&a.scaling)
            .then(a.start().total_cmp(&b.start()))
    });
    chosen.truncate(MAX_SPANS);
    chosen.sort_by(|a, b| a.start().total_cmp(&b.start()));
    chosen
        .into_iter()
        .map(|e| Span {
            start: e.start(),
            end: e.end,
            label: e.label.clone(),
        })
        .collect()
}

/// A colour as it looks at `opacity` over white, for legend swatches of shaded areas.
fn over_white(c: RGBColor, opacity: f64) -> RGBColor {
    let mix = |v: u8| (f64::from(v) * opacity + 255.0 * (1.0 - opacity)).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

fn legend_extras(
    r: &Results,
    degraded: Option<(f64, f64)>,
    found: &[&Finding],
    spans: &[Span],
) -> Vec<(&'static str, RGBColor)> {
    let mut out = Vec::new();
    if degraded.is_some() {
        out.push((
            "degraded window (latency panel)",
            over_white(DEGRADED, 0.12),
        ));
    }
    if found.iter().any(|f| window(f).is_some()) {
        out.push((
            "a finding's window (its signal's panel, in its colour)",
            over_white(chart::color(1), 0.13),
        ));
    }
    if !spans.is_empty() {
        out.push((
            "scaling or other event: a line at its start, shaded until it ended",
            over_white(chart::SPAN, 0.25),
        ));
    }
    if r.stages.len() > 1 {
        out.push((
            "stages (shaded alternately, named at the top)",
            RGBColor(225, 232, 244),
        ));
    }
    out
}
