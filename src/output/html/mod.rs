//! The HTML report: one self-contained file (inline CSS and SVG, no script, no fetch) made
//! from `results.json` alone, optionally compared with a baseline run.
//!
//! Data enters as [`Results`] (with the infrastructure signals, findings and capacity the
//! diagnosis adds, when it ran) and leaves as a `String` of HTML. Charts come from [`chart`], the numbers behind them from [`series`]
//! (thinned to a few hundred points each, so an hour-long run stays well under 2 MB).
//! The report shows only what the results hold: no headers, bodies or credentials.

pub mod chart;
pub mod diagnosis;
pub mod extras;
pub mod series;
mod shards;
mod trend;

use std::fmt::Write as _;

use chart::{color, legend, Line, TimeAxis, TARGET};

use super::ms;
use super::verdict::{count, percent, threshold_view, Verdict};
use crate::record::results::{decode_histogram, Results, StepResult};

/// What one report is made of.
pub struct Report<'a> {
    pub results: &'a Results,
    pub baseline: Option<&'a Results>,
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = include_str!("report.css");

/// The whole page.
pub fn render(report: &Report) -> String {
    let r = report.results;
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — {} — peakload report</title><style>{CSS}</style></head><body>\n",
        escape(&r.scenario.name),
        Verdict::of(r).word()
    );
    verdict_header(&mut out, r);
    headline(&mut out, r, report.baseline);
    generator(&mut out, r);
    shards::section(&mut out, r);
    nav(&mut out, report);

    let events = r.infra.as_ref().map(extras::events).unwrap_or_default();
    let markers = extras::markers(&events);
    let x_max = [
        Some(r.duration_s),
        r.timeline.last().map(|p| p.t as f64 + 1.0),
        report.baseline.map(|b| b.duration_s),
    ]
    .into_iter()
    .flatten()
    .fold(1.0_f64, f64::max);
    let axis = TimeAxis {
        x_max,
        stages: &r.stages,
        markers: &markers,
    };
    diagnosis::section(&mut out, r, &axis);
    trend::section(&mut out, r.regression.as_ref());
    time_charts(&mut out, r, report.baseline, &axis);
    distribution(&mut out, r, report.baseline);
    steps_table(&mut out, r);
    phases_section(&mut out, r);
    traces_section(&mut out, r);
    if let Some(b) = report.baseline {
        deltas_table(&mut out, r, b);
    }
    journeys_table(&mut out, r);
    errors_section(&mut out, r);
    if let Some(c) = &r.capacity {
        extras::capacity_section(&mut out, c);
    }
    if let Some(i) = &r.infra {
        let found = diagnosis::findings(&r.findings);
        let degraded = diagnosis::degraded_window(r.capacity.as_ref(), &found);
        extras::infra_section(&mut out, i, axis.x_max, degraded);
    }
    let _ = write!(
        out,
        "<footer>{} {} · results schema {} · {} → {}</footer>\n</body></html>\n",
        escape(&r.tool.name),
        escape(&r.tool.version),
        r.schema_version,
        escape(&r.started_at),
        escape(&r.ended_at)
    );
    out
}

fn verdict_header(out: &mut String, r: &Results) {
    let v = Verdict::of(r);
    let class = match v {
        Verdict::Passed => "passed",
        Verdict::Failed | Verdict::Regressed => "failed",
        Verdict::NoThresholds => "none",
    };
    let failed = r.thresholds.iter().filter(|t| !t.ok).count();
    let line = match v {
        Verdict::Passed => format!("all {} threshold(s) held", r.thresholds.len()),
        Verdict::Failed => format!("{failed} of {} threshold(s) crossed", r.thresholds.len()),
        Verdict::NoThresholds => "no thresholds were set".into(),
        Verdict::Regressed => format!(
            "{} metric(s) regressed against the run history; thresholds: {}",
            r.regression.as_ref().map_or(0, |g| g.regressed().count()),
            if r.thresholds.is_empty() {
                "none set".to_string()
            } else {
                format!("all {} held", r.thresholds.len())
            }
        ),
    };
    let status = if r.status == "completed" {
        String::new()
    } else {
        format!(
            " <span class=\"status\">{}</span>",
            escape(&r.status.to_uppercase())
        )
    };
    let _ = writeln!(
        out,
        "<header class=\"verdict {class}\" id=\"verdict\"><div class=\"badge\">{}</div>{status}\
         <div><h1>{}</h1><p>{line} · {} model against <code>{}</code> · {} · {}</p></div></header>",
        v.word(),
        escape(&r.scenario.name),
        escape(&r.scenario.model),
        escape(&r.scenario.target),
        escape(&r.started_at),
        chart::clock(r.duration_s),
    );
    if !r.thresholds.is_empty() {
        out.push_str(
            "<section id=\"thresholds\"><table class=\"thresholds\"><thead><tr><th></th>\
             <th>threshold</th><th>measured</th><th>limit</th></tr></thead><tbody>",
        );
        for t in &r.thresholds {
            let v = threshold_view(t);
            let (class, mark) = if v.ok {
                ("better", "✓ pass")
            } else {
                ("worse", "✗ FAIL")
            };
            let _ = write!(
                out,
                "<tr class=\"{class}\"><td class=\"mark\">{mark}</td><td><code>{}</code></td>\
                 <td class=\"num\">{}</td><td><code>{}</code></td></tr>",
                escape(&v.metric),
                escape(&v.measured),
                escape(&v.limit)
            );
        }
        out.push_str("</tbody></table></section>\n");
    }
}

fn headline(out: &mut String, r: &Results, baseline: Option<&Results>) {
    let s = &r.summary;
    let l = &s.latency_ms;
    let mut cards: Vec<(&str, String, Option<String>)> = vec![
        ("requests", count(s.requests), None),
        ("requests/s", format!("{:.1}", s.rps), None),
        ("error rate", percent(s.error_rate), None),
        ("p50", ms(l.p50), None),
        ("p95", ms(l.p95), None),
        ("p99", ms(l.p99), None),
        ("max", ms(l.max), None),
        (
            "iterations",
            count(s.iterations),
            Some(format!("{} failed", count(s.failed_iterations))),
        ),
    ];
    if r.scenario.model == "open" {
        cards.push((
            "dropped",
            count(r.dropped_iterations),
            Some(format!("{} late", count(r.late_iterations))),
        ));
    }
    if s.checks > 0 {
        cards.push((
            "checks failed",
            count(s.checks_failed),
            Some(format!("of {}", count(s.checks))),
        ));
    }
    if let Some(b) = baseline {
        let bs = &b.summary;
        let bl = &bs.latency_ms;
        let notes = [
            None,
            Some(delta_note(s.rps, bs.rps, Better::Higher)),
            Some(rate_note(s.error_rate, bs.error_rate)),
            Some(delta_note(l.p50, bl.p50, Better::Lower)),
            Some(delta_note(l.p95, bl.p95, Better::Lower)),
            Some(delta_note(l.p99, bl.p99, Better::Lower)),
            Some(delta_note(l.max, bl.max, Better::Lower)),
        ];
        for (card, note) in cards.iter_mut().zip(notes) {
            if note.is_some() {
                card.2 = note;
            }
        }
    }
    out.push_str("<section class=\"cards\" id=\"headline\">");
    for (label, value, note) in cards {
        let _ = write!(
            out,
            "<div class=\"card\"><div class=\"label\">{label}</div><div class=\"value\">{}</div>{}</div>",
            escape(&value),
            note.map(|n| format!("<div class=\"note\">{n}</div>"))
                .unwrap_or_default()
        );
    }
    out.push_str("</section>\n");
}

fn generator(out: &mut String, r: &Results) {
    let g = &r.generator;
    let (class, word) = if g.kept_up {
        ("better", "kept up with the plan")
    } else {
        ("worse", "may have limited the load")
    };
    let _ = write!(
        out,
        "<section id=\"generator\" class=\"generator\"><b>Load generator</b>: \
         <span class=\"{class}\">{word}</span> · {} thread(s) · {:.1} CPU-s ({:.0}% of one core)",
        g.threads, g.cpu_s, g.cpu_pct
    );
    if r.scenario.model == "open" {
        let _ = write!(
            out,
            " · schedule lag p99 {} max {}",
            ms(r.schedule_lag_ms.p99),
            ms(r.schedule_lag_ms.max)
        );
    }
    if r.feeder_exhausted > 0 {
        let _ = write!(
            out,
            " · {} iterations skipped (a unique feeder ran out of rows)",
            count(r.feeder_exhausted)
        );
    }
    if r.interrupted_iterations > 0 {
        let _ = write!(
            out,
            " · {} iterations cut part-way by the end of the run",
            count(r.interrupted_iterations)
        );
    }
    if !g.notes.is_empty() {
        out.push_str("<ul>");
        for n in &g.notes {
            let _ = write!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>\n");
}

fn nav(out: &mut String, report: &Report) {
    let mut links = Vec::new();
    if diagnosis::present(report.results) {
        links.push(("diagnosis", "Diagnosis"));
    }
    if report.results.regression.is_some() {
        links.push(("trend", "Trend"));
    }
    links.extend([
        ("time", "Over time"),
        ("distribution", "Latency distribution"),
        ("steps", "Steps"),
    ]);
    if report.baseline.is_some() {
        links.push(("deltas", "Compared with baseline"));
    }
    links.push(("journeys", "Journeys"));
    links.push(("errors", "Errors"));
    if report.results.capacity.is_some() {
        links.push(("capacity", "Capacity"));
    }
    if report.results.infra.is_some() {
        links.push(("infra", "Infrastructure"));
    }
    out.push_str("<nav>");
    for (id, label) in links {
        let _ = write!(out, "<a href=\"#{id}\">{label}</a>");
    }
    out.push_str("</nav>\n");
    if let Some(b) = report.baseline {
        let _ = writeln!(
            out,
            "<p class=\"baseline\">Compared with the baseline run of <b>{}</b> started {} \
             ({}): the baseline is drawn lighter on every chart.</p>",
            escape(&b.scenario.name),
            escape(&b.started_at),
            chart::clock(b.duration_s)
        );
    }
}

fn figure(out: &mut String, title: &str, svg: Result<String, chart::ChartError>, legend: &str) {
    let _ = write!(out, "<figure><figcaption>{}</figcaption>", escape(title));
    match svg {
        Ok(svg) => out.push_str(&svg),
        Err(e) => {
            let _ = write!(out, "<p class=\"note\">{}</p>", escape(&e.to_string()));
        }
    }
    out.push_str(legend);
    out.push_str("</figure>\n");
}

fn stage_legend(r: &Results) -> Vec<(&'static str, plotters::style::RGBColor)> {
    if r.stages.len() > 1 {
        vec![(
            "stages (shaded alternately, named at the top)",
            plotters::style::RGBColor(225, 232, 244),
        )]
    } else {
        Vec::new()
    }
}

/// The plan's target as a wide light band the achieved line runs along.
fn target_line(label: &str, r: &Results) -> Line {
    let mut l = Line::new(
        label,
        TARGET,
        series::timeline_series(&r.timeline, |p| p.target_rps),
    )
    .faint();
    l.width = 7;
    l
}

fn time_charts(out: &mut String, r: &Results, baseline: Option<&Results>, axis: &TimeAxis) {
    use series::timeline_series as ts;
    out.push_str("<section id=\"time\"><h2>Over time</h2>\n");
    let stages = stage_legend(r);
    let open = r.scenario.model == "open";
    let base_label = |what: &str| format!("{what} (baseline)");

    let mut lines = Vec::new();
    if let Some(b) = baseline {
        lines.push(
            Line::new(
                base_label("requests/s"),
                color(0),
                ts(&b.timeline, |p| p.rps),
            )
            .faint(),
        );
    }
    lines.push(Line::new(
        "requests/s",
        color(0),
        ts(&r.timeline, |p| p.rps),
    ));
    lines.push(Line::new(
        "iterations started/s",
        color(2),
        ts(&r.timeline, |p| p.iterations_started as f64),
    ));
    if open {
        lines.insert(0, target_line("target arrivals/s", r));
    }
    let drops: u64 = r.timeline.iter().map(|p| p.dropped_iterations).sum();
    if drops > 0 {
        lines.push(Line::new(
            "dropped iterations/s",
            color(1),
            ts(&r.timeline, |p| p.dropped_iterations as f64),
        ));
    }
    figure(
        out,
        "Throughput",
        chart::time_chart(axis, "per second", &|v| chart::plain(*v), &lines),
        &legend(&lines, &stages),
    );

    type Pick = fn(&crate::record::results::IntervalLatency) -> f64;
    let pct: [(&str, Pick); 4] = [
        ("p50", |l| l.p50),
        ("p95", |l| l.p95),
        ("p99", |l| l.p99),
        ("max", |l| l.max),
    ];
    let mut lines = Vec::new();
    if let Some(b) = baseline {
        for (i, (name, f)) in pct.iter().take(3).enumerate() {
            lines.push(
                Line::new(
                    base_label(name),
                    color(i),
                    ts(&b.timeline, |p| {
                        if p.requests > 0 {
                            f(&p.latency_ms)
                        } else {
                            f64::NAN
                        }
                    }),
                )
                .faint(),
            );
        }
    }
    for (i, (name, f)) in pct.iter().enumerate() {
        let mut l = Line::new(
            *name,
            if i == 3 { color(9) } else { color(i) },
            ts(&r.timeline, |p| {
                if p.requests > 0 {
                    f(&p.latency_ms)
                } else {
                    f64::NAN
                }
            }),
        );
        if i == 3 {
            l.width = 1;
        }
        lines.push(l);
    }
    figure(
        out,
        "Latency per second",
        chart::time_chart(axis, "latency", &|v| ms(*v), &lines),
        &legend(&lines, &stages),
    );

    let kinds = series::error_kinds(&r.timeline);
    let mut lines = Vec::new();
    if let Some(b) = baseline {
        lines.push(
            Line::new(
                base_label("errors/s"),
                color(1),
                ts(&b.timeline, |p| p.errors as f64),
            )
            .faint(),
        );
    }
    if kinds.is_empty() {
        lines.push(Line::new(
            "errors/s (no failed requests)",
            color(1),
            ts(&r.timeline, |p| p.errors as f64),
        ));
    }
    for (i, k) in kinds.iter().enumerate() {
        lines.push(Line::new(
            k.clone(),
            color(i + 1),
            ts(&r.timeline, |p| {
                p.errors_by_kind.get(k).copied().unwrap_or(0) as f64
            }),
        ));
    }
    figure(
        out,
        "Errors per second, by kind",
        chart::time_chart(axis, "errors/s", &|v| chart::plain(*v), &lines),
        &legend(&lines, &stages),
    );

    let mut lines = Vec::new();
    if let Some(b) = baseline {
        lines.push(
            Line::new(
                base_label("active VUs"),
                color(4),
                ts(&b.timeline, |p| p.active_vus as f64),
            )
            .faint(),
        );
    }
    lines.push(Line::new(
        "active VUs",
        color(4),
        ts(&r.timeline, |p| p.active_vus as f64),
    ));
    if !open {
        lines.insert(0, target_line("target VUs", r));
    }
    figure(
        out,
        "Active virtual users",
        chart::time_chart(axis, "VUs", &|v| chart::plain(*v), &lines),
        &legend(&lines, &stages),
    );
    out.push_str("</section>\n");
}

/// Decodes a stored histogram into its spectrum; `None` when it cannot be read.
fn spectrum_of(encoded: &str) -> Option<Vec<(f64, f64)>> {
    decode_histogram(encoded).ok().map(|h| series::spectrum(&h))
}

fn distribution(out: &mut String, r: &Results, baseline: Option<&Results>) {
    out.push_str(
        "<section id=\"distribution\"><h2>Latency distribution</h2>\
         <p class=\"note\">Percentile spectrum from the recorded HDR histograms: x is the \
         percentile on a log scale of 1/(1−p), so the tail gets the room it deserves.</p>\n",
    );
    let mut overall = Vec::new();
    let mut undecodable = Vec::new();
    if let Some(b) = baseline {
        match spectrum_of(&b.summary.histogram) {
            Some(s) => overall.push(Line::new("all requests (baseline)", color(0), s).faint()),
            None => undecodable.push("baseline overall".to_string()),
        }
    }
    match spectrum_of(&r.summary.histogram) {
        Some(s) => overall.push(Line::new("all requests", color(0), s)),
        None => undecodable.push("overall".to_string()),
    }
    let mut per_step = Vec::new();
    for (i, st) in r.steps.iter().enumerate() {
        match spectrum_of(&st.histogram) {
            Some(s) if !s.is_empty() => per_step.push(Line::new(step_label(st), color(i), s)),
            Some(_) => {}
            None => undecodable.push(step_label(st)),
        }
    }
    let x_max = series::spectrum_x_max(
        overall
            .iter()
            .chain(per_step.iter())
            .map(|l| l.points.as_slice()),
    );
    figure(
        out,
        "All requests",
        chart::spectrum_chart(x_max, &overall),
        &legend(&overall, &[]),
    );
    if r.steps.len() > 1 {
        figure(
            out,
            "Per step",
            chart::spectrum_chart(x_max, &per_step),
            &legend(&per_step, &[]),
        );
    }
    if !undecodable.is_empty() {
        let _ = write!(
            out,
            "<p class=\"note\">Histograms that could not be decoded: {}</p>",
            escape(&undecodable.join(", "))
        );
    }
    out.push_str("</section>\n");
}

fn step_label(s: &StepResult) -> String {
    format!("{}/{}", s.journey, s.name)
}

fn steps_table(out: &mut String, r: &Results) {
    out.push_str(
        "<section id=\"steps\"><h2>Steps</h2><table><thead><tr><th>step</th><th>request</th>\
         <th>requests</th><th>req/s</th><th>p50</th><th>p95</th><th>p99</th><th>max</th>\
         <th>errors</th><th>checks failed</th></tr></thead><tbody>",
    );
    for s in &r.steps {
        let l = &s.latency_ms;
        let err_class = if s.errors > 0 { " class=\"worse\"" } else { "" };
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{} {}</code></td><td class=\"num\">{}</td>\
             <td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\"><span{err_class}>{} ({})</span></td>\
             <td class=\"num\">{}</td></tr>",
            escape(&step_label(s)),
            escape(&s.method),
            escape(&s.path),
            count(s.requests),
            s.rps,
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.max),
            count(s.errors),
            percent(s.error_rate),
            count(s.checks_failed)
        );
    }
    out.push_str("</tbody></table></section>\n");
}

/// Per step, where a request's time went on average (connecting only for the requests that
/// opened a connection).
fn phases_section(out: &mut String, r: &Results) {
    if r.steps.iter().all(|s| s.timing.is_none()) {
        return;
    }
    out.push_str(
        "<section id=\"phases\"><h2>Where the time went</h2><p>Mean per phase. DNS, connect \
         and TLS over the requests that opened a connection; time to first byte (the server's \
         time and one round trip) and transfer over the responses.</p><table><thead><tr>\
         <th>step</th><th>connections</th><th>dns</th><th>connect</th><th>tls</th>\
         <th>first byte</th><th>transfer</th></tr></thead><tbody>",
    );
    for s in &r.steps {
        let Some(t) = &s.timing else { continue };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{} of {}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td></tr>",
            escape(&step_label(s)),
            count(t.connections),
            count(t.responses),
            ms(t.dns_ms),
            ms(t.connect_ms),
            ms(t.tls_ms),
            ms(t.ttfb_ms),
            ms(t.transfer_ms),
        );
    }
    out.push_str("</tbody></table></section>\n");
}

/// With `trace = true`: per step, the trace ids of its slowest and first failed requests, to
/// look up in the target's tracing system.
fn traces_section(out: &mut String, r: &Results) {
    if r.steps.iter().all(|s| s.traces.is_empty()) {
        return;
    }
    out.push_str(
        "<section id=\"traces\"><h2>Traces</h2><p>W3C trace ids (<code>traceparent</code>) of \
         each step's slowest requests and first failures: search them in X-Ray, Jaeger or \
         Tempo.</p><table><thead><tr><th>step</th><th>which</th><th>trace id</th>\
         <th>latency</th><th>at</th><th>error</th></tr></thead><tbody>",
    );
    for s in &r.steps {
        let rows = s
            .traces
            .slowest
            .iter()
            .map(|t| ("slowest", t))
            .chain(s.traces.failed.iter().map(|t| ("failed", t)));
        for (which, t) in rows {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{which}</td><td><code>{}</code></td><td class=\"num\">{}</td>\
                 <td class=\"num\">{:.1} s</td><td>{}</td></tr>",
                escape(&step_label(s)),
                escape(&t.trace_id),
                ms(t.latency_ms),
                t.at_s,
                t.error.map_or("", |k| k.as_str()),
            );
        }
    }
    out.push_str("</tbody></table></section>\n");
}

#[derive(Clone, Copy)]
enum Better {
    Lower,
    Higher,
}

/// Relative change of `now` against `base` as `+12.3%`, with a class saying whether it is
/// better, worse, or within ±5% (the same).
fn delta(now: f64, base: f64, better: Better) -> (String, &'static str) {
    if base == 0.0 {
        return if now == 0.0 {
            ("±0%".into(), "same")
        } else {
            ("new".into(), "same")
        };
    }
    let change = (now - base) / base;
    let class = if change.abs() < 0.05 {
        "same"
    } else if (change < 0.0) == matches!(better, Better::Lower) {
        "better"
    } else {
        "worse"
    };
    (format!("{:+.1}%", change * 100.0), class)
}

fn delta_note(now: f64, base: f64, better: Better) -> String {
    let (text, class) = delta(now, base, better);
    format!("<span class=\"{class}\">{text}</span> vs baseline")
}

/// Error rates compared in percentage points (a relative change of a tiny rate says little).
fn rate_delta(now: f64, base: f64) -> (String, &'static str) {
    let pp = (now - base) * 100.0;
    let class = if pp.abs() < 0.1 {
        "same"
    } else if pp < 0.0 {
        "better"
    } else {
        "worse"
    };
    (format!("{pp:+.2} pp"), class)
}

fn rate_note(now: f64, base: f64) -> String {
    let (text, class) = rate_delta(now, base);
    format!("<span class=\"{class}\">{text}</span> vs baseline")
}

/// Why a baseline may not be comparable: another scenario, or another load model.
pub fn baseline_mismatch(r: &Results, b: &Results) -> Option<String> {
    if r.scenario.name != b.scenario.name {
        Some(format!(
            "The baseline ran scenario \"{}\", this run \"{}\": the deltas compare different workloads.",
            b.scenario.name, r.scenario.name
        ))
    } else if r.scenario.model != b.scenario.model {
        Some(format!(
            "The baseline used the {} model, this run the {} model: their latencies measure different things.",
            b.scenario.model, r.scenario.model
        ))
    } else {
        None
    }
}

fn deltas_table(out: &mut String, r: &Results, b: &Results) {
    out.push_str(
        "<section id=\"deltas\"><h2>Compared with baseline</h2>\
         <p class=\"note\">Baseline → this run; green is better, red is worse, grey within ±5% \
         (error rate: ±0.1 percentage points).</p><table><thead><tr><th>step</th><th>p50</th>\
         <th>p95</th><th>p99</th><th>req/s</th><th>error rate</th></tr></thead><tbody>",
    );
    if let Some(w) = baseline_mismatch(r, b) {
        // Before the table: the deltas compare different workloads.
        let at = out.rfind("<table>").unwrap_or(out.len());
        out.insert_str(at, &format!("<p class=\"note warn\">{}</p>", escape(&w)));
    }
    let cell = |base: String, now: String, (d, class): (String, &str)| {
        format!(
            "<td class=\"num\">{} → {} <span class=\"{class}\">{d}</span></td>",
            escape(&base),
            escape(&now)
        )
    };
    for s in &r.steps {
        let Some(o) = b
            .steps
            .iter()
            .find(|o| o.journey == s.journey && o.name == s.name)
        else {
            let _ = write!(
                out,
                "<tr><td>{}</td><td colspan=\"5\" class=\"muted\">not in the baseline</td></tr>",
                escape(&step_label(s))
            );
            continue;
        };
        let (l, ol) = (&s.latency_ms, &o.latency_ms);
        let _ = write!(
            out,
            "<tr><td>{}</td>{}{}{}{}{}</tr>",
            escape(&step_label(s)),
            cell(ms(ol.p50), ms(l.p50), delta(l.p50, ol.p50, Better::Lower)),
            cell(ms(ol.p95), ms(l.p95), delta(l.p95, ol.p95, Better::Lower)),
            cell(ms(ol.p99), ms(l.p99), delta(l.p99, ol.p99, Better::Lower)),
            cell(
                format!("{:.1}", o.rps),
                format!("{:.1}", s.rps),
                delta(s.rps, o.rps, Better::Higher)
            ),
            cell(
                percent(o.error_rate),
                percent(s.error_rate),
                rate_delta(s.error_rate, o.error_rate)
            ),
        );
    }
    for o in &b.steps {
        if !r
            .steps
            .iter()
            .any(|s| s.journey == o.journey && s.name == o.name)
        {
            let _ = write!(
                out,
                "<tr><td>{}</td><td colspan=\"5\" class=\"muted\">only in the baseline</td></tr>",
                escape(&step_label(o))
            );
        }
    }
    out.push_str("</tbody></table></section>\n");
}

fn journeys_table(out: &mut String, r: &Results) {
    out.push_str(
        "<section id=\"journeys\"><h2>Journeys</h2><table><thead><tr><th>journey</th>\
         <th>weight</th><th>iterations</th><th>failed</th><th>p50</th><th>p95</th><th>p99</th>\
         <th>max</th></tr></thead><tbody>",
    );
    for j in &r.journeys {
        let l = &j.latency_ms;
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&j.name),
            j.weight,
            count(j.iterations),
            count(j.failed_iterations),
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.max)
        );
    }
    out.push_str(
        "</tbody></table><p class=\"note\">Iteration latency: from the (intended) start of an \
         iteration to the end of its last step, think time included.</p></section>\n",
    );
}

fn errors_section(out: &mut String, r: &Results) {
    out.push_str("<section id=\"errors\"><h2>Errors</h2>");
    let kinds: Vec<_> = r.errors.iter().filter(|(_, &n)| n > 0).collect();
    if kinds.is_empty() {
        out.push_str("<p>No failed requests.</p></section>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>kind</th><th>count</th><th>examples</th></tr></thead><tbody>",
    );
    for (k, n) in kinds {
        let examples: Vec<String> = r
            .error_samples
            .iter()
            .filter(|e| e.kind.as_str() == k)
            .map(|e| {
                format!(
                    "<div><code>{}</code>: {}</div>",
                    escape(&e.step),
                    escape(&e.message)
                )
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(k),
            count(*n),
            examples.join("")
        );
    }
    out.push_str("</tbody></table></section>\n");
}

#[cfg(test)]
pub(crate) mod tests;
