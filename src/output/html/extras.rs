//! Sections that exist only when the results carry them: infrastructure signals and events
//! (`infra`) and `capacity`, which the diagnosis adds.
//!
//! The findings and the leading signals are drawn by [`super::diagnosis`]; here the signals
//! and events are prepared for showing, and everything observed is listed compactly (a table
//! with a sparkline per signal, most moved first) rather than charted one by one.

use plotters::style::RGBColor;

use super::chart::{self, Marker};
use super::{escape, series};
use crate::record::findings::Capacity;
use crate::record::infra::{Event, Infra, Series};

/// One infrastructure time series: points in seconds since the run's start.
pub struct Signal {
    /// `source: name (k=v, …)`, for people.
    pub title: String,
    /// `name{k="v",…}`: how findings name the signal.
    pub key: String,
    pub unit: String,
    /// Thinned for a chart.
    pub points: Vec<(f64, f64)>,
    /// From every point, before thinning.
    pub spread: Spread,
}

/// What a signal did over the run, in its own unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// The largest shift of its 3-point rolling median from the median of its first quarter,
    /// in robust standard deviations (1.4826 × MAD, floored at 5% of that median): how much
    /// it moved, comparable across units. 0 for fewer than 4 points.
    pub moved: f64,
}

impl Spread {
    fn of(points: &[(f64, f64)]) -> Spread {
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        if values.is_empty() {
            return Spread {
                min: f64::NAN,
                median: f64::NAN,
                max: f64::NAN,
                moved: 0.0,
            };
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mid = median(&values);
        let mut moved = 0.0;
        if values.len() >= 4 {
            let rolled: Vec<f64> = (0..values.len())
                .map(|i| median(&values[i.saturating_sub(1)..(i + 2).min(values.len())]))
                .collect();
            let (t0, t1) = (points[0].0, points[points.len() - 1].0);
            let quarter = t0 + (t1 - t0) / 4.0;
            let base_n = points.iter().filter(|p| p.0 <= quarter).count().max(3);
            let base = &rolled[..base_n.min(rolled.len())];
            let center = median(base);
            let deviations: Vec<f64> = base.iter().map(|v| (v - center).abs()).collect();
            let scale: f64 = (1.4826 * median(&deviations))
                .max(0.05 * center.abs())
                .max(1e-12);
            moved = rolled
                .iter()
                .map(|v| (v - center).abs() / scale)
                .fold(0.0, f64::max)
                .min(1e6);
        }
        Spread {
            min,
            median: mid,
            max,
            moved,
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// An event as the report shows it: the recorded one, with its words worked out.
pub struct Shown<'a> {
    pub event: &'a Event,
    /// When it ended, if it did (and the time is a number).
    pub end: Option<f64>,
    /// `source: name`.
    pub title: String,
    /// `cause — status`.
    pub detail: String,
    /// A scaling activity (its source or name says so).
    pub scaling: bool,
    /// A log line: listed, but not marked on charts (there can be hundreds).
    pub log: bool,
    /// Short enough to write on a chart: `desired 6 · Successful`.
    pub label: String,
}

impl Shown<'_> {
    pub fn start(&self) -> f64 {
        self.event.start
    }

    /// Whether any of it falls within the run's first `x_max` seconds.
    pub fn within(&self, x_max: f64) -> bool {
        let end = self.end.unwrap_or(f64::INFINITY);
        self.start().is_finite() && self.start() <= x_max && end >= 0.0
    }
}

/// The capacity a scaling activity moves to: its `desired_capacity` dimension, or the first
/// number after "desired" in its text ("Setting desired count to 6.").
fn desired_capacity(e: &Event) -> Option<String> {
    if let Some(d) = e.dimensions.get("desired_capacity") {
        return Some(d.clone());
    }
    [&e.name, &e.cause].iter().find_map(|t| {
        let lower = t.to_ascii_lowercase();
        let at = lower.find("desired")?;
        let digits: String = t[at..]
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty() && digits.len() < 7).then_some(digits)
    })
}

fn clip_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

pub(super) fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// A figure as shown in a table: empty when it is not a number (JSON has no form for it).
pub(super) fn cell_number(x: f64) -> String {
    if x.is_finite() {
        number(x)
    } else {
        String::new()
    }
}

/// One series as the report shows it: its finite points in time order.
fn signal(s: &Series) -> Signal {
    let mut points: Vec<(f64, f64)> = s
        .points
        .iter()
        .copied()
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let dims = if s.dimensions.is_empty() {
        String::new()
    } else {
        let dims: Vec<String> = s
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(" ({})", dims.join(", "))
    };
    let title = if s.source.is_empty() {
        format!("{}{dims}", s.name)
    } else {
        format!("{}: {}{dims}", s.source, s.name)
    };
    Signal {
        title,
        key: s.key(),
        unit: s.unit.clone(),
        spread: Spread::of(&points),
        points: series::min_max_decimate(&points, series::MAX_POINTS),
    }
}

/// The series of `infra`, in their recorded order.
pub fn signals(infra: &Infra) -> Vec<Signal> {
    infra.series.iter().map(signal).collect()
}

/// The events of `infra` that have a start, in time order.
pub fn events(infra: &Infra) -> Vec<Shown<'_>> {
    let mut out: Vec<Shown> = infra
        .events
        .iter()
        .filter(|e| e.start.is_finite())
        .map(|e| {
            let title = [e.source.as_str(), e.name.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            let detail = [e.cause.as_str(), e.status.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" — ");
            let scaling = [&e.source, &e.name]
                .iter()
                .any(|s| s.to_ascii_lowercase().contains("scal"));
            // "Successful", "Failed: not enough capacity" → the status word only.
            let status_word = e.status.split(':').next().unwrap_or("").trim();
            let label = match desired_capacity(e) {
                Some(n) if status_word.is_empty() => format!("desired {n}"),
                Some(n) => format!("desired {n} · {status_word}"),
                None if status_word.is_empty() => clip_chars(&e.name, 24),
                None => format!("{} · {status_word}", clip_chars(&e.name, 18)),
            };
            Shown {
                event: e,
                end: e.end.filter(|t| t.is_finite()),
                log: e.name.eq_ignore_ascii_case("log"),
                title,
                detail,
                scaling,
                label,
            }
        })
        .collect();
    out.sort_by(|a, b| a.start().total_cmp(&b.start()));
    out
}

/// Event starts as chart markers, so every time chart shows them; log lines are left out
/// (they are listed, and there can be hundreds).
pub fn markers(events: &[Shown]) -> Vec<Marker> {
    events
        .iter()
        .filter(|e| !e.log)
        .map(|e| Marker {
            t: e.start(),
            label: e.title.clone(),
        })
        .collect()
}

/// How a value in `unit` is shown: multiplied by `factor`, followed by `suffix`. Chosen once
/// per signal from its largest value, so its axis and its row read in one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub factor: f64,
    pub suffix: &'static str,
}

impl Scale {
    pub fn for_unit(unit: &str, max_abs: f64) -> Scale {
        let s = |factor, suffix| Scale { factor, suffix };
        let max_abs = if max_abs.is_finite() { max_abs } else { 0.0 };
        match unit {
            "seconds" if max_abs < 1.0 => s(1000.0, "ms"),
            "seconds" => s(1.0, "s"),
            "bytes" if max_abs >= 1024.0 * 1024.0 * 1024.0 => s(1.0 / 1024f64.powi(3), "GiB"),
            "bytes" if max_abs >= 1024.0 * 1024.0 => s(1.0 / 1024f64.powi(2), "MiB"),
            "bytes" if max_abs >= 1024.0 => s(1.0 / 1024.0, "KiB"),
            "bytes" => s(1.0, "B"),
            "ratio" => s(100.0, "%"),
            "percent" => s(1.0, "%"),
            "per_second" => s(1.0, "/s"),
            // CPU seconds per second: the share of one core.
            "seconds_per_second" => s(100.0, "% of a core"),
            "count" => s(1.0, "count"),
            _ => s(1.0, ""),
        }
    }

    /// A value with its unit: `350 ms`, `12.5 MiB`.
    pub fn show(&self, v: f64) -> String {
        if !v.is_finite() {
            return "–".into();
        }
        let n = chart::short(v * self.factor);
        match self.suffix {
            "" => n,
            s if s.starts_with('%') || s.starts_with('/') => format!("{n}{s}"),
            s => format!("{n} {s}"),
        }
    }

    /// The unit as an axis title: `ms`, `% of a core`, `value` when unknown.
    pub fn axis(&self, unit: &str) -> String {
        match (self.suffix, unit) {
            ("", "") => "value".into(),
            ("", u) => u.to_string(),
            (s, _) => s.to_string(),
        }
    }
}

/// Seconds per second that are a share of time spent waiting, not CPU used: pressure stall
/// (PSI: the share of time some task stalled) and CPU throttling. `None` for other signals.
fn waiting_share(key: &str, unit: &str) -> Option<&'static str> {
    let metric = key.split('{').next().unwrap_or(key).to_ascii_lowercase();
    match unit {
        "seconds_per_second" if metric.contains("pressure") => Some("% of time stalled"),
        "seconds_per_second" if metric.contains("throttled") => Some("% of time throttled"),
        _ => None,
    }
}

/// A signal's points scaled for showing, and the scale.
pub fn scaled(sig: &Signal) -> (Vec<(f64, f64)>, Scale) {
    let max_abs = sig.spread.max.abs().max(sig.spread.min.abs());
    let scale = match waiting_share(&sig.key, &sig.unit) {
        Some(suffix) => Scale {
            factor: 100.0,
            suffix,
        },
        None => Scale::for_unit(&sig.unit, max_abs),
    };
    let points = sig
        .points
        .iter()
        .map(|&(t, v)| (t, v * scale.factor))
        .collect();
    (points, scale)
}

/// A signal over the run as a tiny inline SVG (no axes): enough to see that it moved, and
/// when. `shade` is a window to tint (the degraded one), in seconds.
pub fn sparkline(
    points: &[(f64, f64)],
    x_max: f64,
    color: RGBColor,
    shade: Option<(f64, f64)>,
) -> String {
    const W: f64 = 160.0;
    const H: f64 = 26.0;
    let x_max = x_max.max(1.0);
    let inside: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, v)| *t >= 0.0 && *t <= x_max && v.is_finite())
        .collect();
    let thin = series::min_max_decimate(&inside, 80);
    let (lo, hi) = thin
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut s = format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\">"
    );
    if let Some((a, b)) = shade {
        let (a, b) = (a.clamp(0.0, x_max), b.clamp(0.0, x_max));
        if b > a {
            s.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"{H}\" fill=\"#fbe3e3\"/>",
                a / x_max * W,
                (b - a) / x_max * W
            ));
        }
    }
    let pts: Vec<String> = thin
        .iter()
        .map(|(t, v)| {
            let y = if hi > lo {
                H - 2.0 - (v - lo) / span * (H - 4.0)
            } else {
                H / 2.0
            };
            format!("{:.1},{:.1}", t / x_max * W, y)
        })
        .collect();
    let RGBColor(r, g, b) = color;
    s.push_str(&format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"rgb({r},{g},{b})\" stroke-width=\"1.5\" vector-effect=\"non-scaling-stroke\"/></svg>",
        pts.join(" ")
    ));
    s
}

/// Signals listed in the open; the rest fold away under a `<details>`.
const SIGNALS_SHOWN: usize = 12;
/// Events listed at most (log lines can run to thousands).
const EVENTS_SHOWN: usize = 100;

/// Every signal and event observed, compactly: the leading signals are charted under
/// Diagnosis; here each signal is one row (unit, min, median, max, how much it moved, a
/// sparkline), most moved first. `degraded` is shaded in the sparklines.
pub fn infra_section(out: &mut String, infra: &Infra, x_max: f64, degraded: Option<(f64, f64)>) {
    let mut sigs = signals(infra);
    let evs = events(infra);
    out.push_str("<section id=\"infra\"><h2>Infrastructure signals</h2>");
    if sigs.is_empty() && evs.is_empty() {
        out.push_str("<p class=\"note\">The run carries infrastructure data in a form this report does not chart:</p>");
        raw(out, infra);
    }
    if !sigs.is_empty() {
        sigs.sort_by(|a, b| {
            b.spread
                .moved
                .total_cmp(&a.spread.moved)
                .then_with(|| a.title.cmp(&b.title))
        });
        out.push_str(&format!(
            "<p class=\"note\">{} signal(s), the most moved first. <i>Moved</i>: the largest \
             shift from the signal's level in its first quarter, in robust standard \
             deviations; the shaded part of each line is the degraded window.</p>",
            sigs.len()
        ));
        signal_table(out, &sigs[..sigs.len().min(SIGNALS_SHOWN)], x_max, degraded);
        if sigs.len() > SIGNALS_SHOWN {
            out.push_str(&format!(
                "<details><summary>{} more signal(s)</summary>",
                sigs.len() - SIGNALS_SHOWN
            ));
            signal_table(out, &sigs[SIGNALS_SHOWN..], x_max, degraded);
            out.push_str("</details>");
        }
    }
    if !infra.notes.is_empty() {
        out.push_str("<p class=\"note\">Reading the sources:</p><ul class=\"note\">");
        for n in &infra.notes {
            out.push_str(&format!("<li>{}</li>", escape(n)));
        }
        out.push_str("</ul>");
    }
    if !evs.is_empty() {
        out.push_str("<h3>Scaling and other events</h3><table><thead><tr><th>at</th><th>until</th><th>event</th><th>detail</th></tr></thead><tbody>");
        for e in evs.iter().take(EVENTS_SHOWN) {
            let at = |t: f64| {
                if t < 0.0 {
                    format!("−{} (before the run)", chart::clock(-t))
                } else {
                    chart::clock(t)
                }
            };
            // A log line is an instant: it has no "until".
            let until = match e.end {
                _ if e.log => "–".to_string(),
                Some(t) if t == e.start() => "–".to_string(),
                Some(t) => at(t),
                None => "not finished when read".to_string(),
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                at(e.start()),
                until,
                escape(&e.title),
                escape(&e.detail)
            ));
        }
        out.push_str("</tbody></table>");
        if evs.len() > EVENTS_SHOWN {
            out.push_str(&format!(
                "<p class=\"note\">{} more event(s) not listed.</p>",
                evs.len() - EVENTS_SHOWN
            ));
        }
    }
    out.push_str("</section>");
}

fn signal_table(out: &mut String, sigs: &[Signal], x_max: f64, degraded: Option<(f64, f64)>) {
    out.push_str(
        "<table class=\"signals\"><thead><tr><th>signal</th><th>min</th><th>median</th>\
         <th>max</th><th>moved</th><th>over the run</th></tr></thead><tbody>",
    );
    for s in sigs {
        let (points, scale) = scaled(s);
        let show = |v: f64| escape(&scale.show(v));
        out.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:.1}σ</td><td>{}</td></tr>",
            escape(&s.title),
            show(s.spread.min),
            show(s.spread.median),
            show(s.spread.max),
            s.spread.moved.min(999.0),
            sparkline(&points, x_max, chart::color(0), degraded)
        ));
    }
    out.push_str("</tbody></table>");
}

pub fn capacity_section(out: &mut String, capacity: &Capacity) {
    out.push_str("<section id=\"capacity\"><h2>Capacity</h2>");
    if let Some(line) = capacity_sentence(capacity) {
        out.push_str(&format!("<p class=\"capacity\">{}</p>", escape(&line)));
    }
    capacity_table(out, capacity);
    out.push_str("</section>");
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// "Sustained 82.4 requests/s (from 0:41) before latency turned at 0:52: p99 4.1 ms → 310 ms."
fn capacity_sentence(c: &Capacity) -> Option<String> {
    let rps = finite(c.max_sustained_rps)?;
    let from = chart::clock(finite(c.at_s).unwrap_or(0.0));
    let mut line = if c.reached {
        let by = c.limited_by.as_deref().unwrap_or("latency");
        let at = c
            .degraded_at_s
            .and_then(finite)
            .map(|t| format!(" at {}", chart::clock(t)))
            .unwrap_or_default();
        format!("Sustained {rps:.1} requests/s (from {from}) before {by} turned{at}")
    } else {
        format!(
            "Sustained at least {rps:.1} requests/s (from {from}); the system did not reach its limit in this run"
        )
    };
    let before = finite(c.latency_ms_before);
    if let (Some(before), Some(during)) = (before, c.latency_ms_during.and_then(finite)) {
        line.push_str(&format!(": latency {before:.1} ms → {during:.1} ms"));
    }
    if let Some(k) = c.knee_rps.and_then(finite) {
        line.push_str(&format!("; latency bends at about {k:.0} requests/s"));
    }
    line.push('.');
    Some(line)
}

/// Every field of the capacity by its name in `results.json`, those that are set.
fn capacity_table(out: &mut String, c: &Capacity) {
    // Taken apart field by field, so that a new field cannot be left out of the table.
    let Capacity {
        max_sustained_rps,
        at_s,
        reached,
        limited_by,
        degraded_at_s,
        knee_rps,
        latency_ms_before,
        latency_ms_during,
    } = c;
    let rows = [
        ("at_s", Some(cell_number(*at_s))),
        ("degraded_at_s", degraded_at_s.map(cell_number)),
        ("knee_rps", knee_rps.map(cell_number)),
        ("latency_ms_before", Some(cell_number(*latency_ms_before))),
        ("latency_ms_during", latency_ms_during.map(cell_number)),
        ("limited_by", limited_by.clone()),
        ("max_sustained_rps", Some(cell_number(*max_sustained_rps))),
        ("reached", Some(reached.to_string())),
    ];
    out.push_str("<table class=\"kv\"><tbody>");
    for (k, v) in rows {
        if let Some(v) = v {
            out.push_str(&format!("<tr><th>{k}</th><td>{}</td></tr>", escape(&v)));
        }
    }
    out.push_str("</tbody></table>");
}

/// Infrastructure data as JSON (keys in order), for when there is nothing to chart or list.
fn raw(out: &mut String, infra: &Infra) {
    let mut s = serde_json::to_value(infra)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_default();
    if s.len() > 20_000 {
        let mut cut = 20_000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n…");
    }
    out.push_str(&format!("<pre>{}</pre>", escape(&s)));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn event(source: &str, name: &str, start: f64, end: Option<f64>, status: &str) -> Event {
        Event {
            source: source.into(),
            name: name.into(),
            start,
            end,
            cause: String::new(),
            status: status.into(),
            dimensions: BTreeMap::new(),
        }
    }

    #[test]
    fn absent_infra_means_no_sections() {
        let r = super::super::tests::tiny();
        assert!(r.infra.is_none() && r.capacity.is_none() && r.findings.is_empty());
        assert!(!super::super::diagnosis::present(&r));
        let mut observed = r.clone();
        observed.infra = Some(Infra::default());
        assert!(super::super::diagnosis::present(&observed));
    }

    #[test]
    fn signals_read_points_in_time_order_and_events_their_times() {
        let infra = Infra {
            series: vec![
                Series {
                    source: "cloudwatch".into(),
                    name: "CPUUtilization".into(),
                    unit: "percent".into(),
                    dimensions: BTreeMap::from([
                        ("ServiceName".to_string(), "shop".to_string()),
                        ("ClusterName".to_string(), "prod".to_string()),
                    ]),
                    span_s: None,
                    points: vec![(2.0, 95.5), (0.0, 10.0), (1.0, 20.0)],
                },
                Series {
                    source: String::new(),
                    name: "db_pool_in_use".into(),
                    unit: String::new(),
                    dimensions: BTreeMap::new(),
                    span_s: None,
                    points: vec![(5.0, 3.0), (f64::NAN, 4.0), (6.0, 9.0), (7.0, f64::NAN)],
                },
            ],
            events: vec![event(
                "autoscaling",
                "scale out 2→4",
                30.0,
                Some(42.0),
                "Successful",
            )],
            notes: Vec::new(),
        };
        let s = signals(&infra);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].title,
            "cloudwatch: CPUUtilization (ClusterName=prod, ServiceName=shop)"
        );
        assert_eq!(s[0].key, infra.series[0].key());
        assert_eq!(s[0].points, vec![(0.0, 10.0), (1.0, 20.0), (2.0, 95.5)]);
        assert_eq!(s[1].title, "db_pool_in_use");
        assert_eq!(s[1].key, "db_pool_in_use");
        assert_eq!(s[1].points, vec![(5.0, 3.0), (6.0, 9.0)]);
        let e = events(&infra);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].start(), e[0].end), (30.0, Some(42.0)));
        assert_eq!(e[0].title, "autoscaling: scale out 2→4");
        assert_eq!(e[0].detail, "Successful");
    }

    #[test]
    fn events_get_short_labels_and_logs_are_not_marked() {
        let mut failed = event("autoscaling", "scaling", 40.0, None, "Failed: no capacity");
        failed.dimensions = BTreeMap::from([("desired_capacity".to_string(), "9".to_string())]);
        let mut log = event("logs", "log", 7.0, None, "");
        log.cause = "ERROR boom".into();
        let infra = Infra {
            events: vec![
                event(
                    "application-autoscaling",
                    "Setting desired count to 6.",
                    12.0,
                    Some(30.0),
                    "Successful",
                ),
                failed,
                event(
                    "deploy",
                    "rollout of a very long release name indeed",
                    5.0,
                    None,
                    "",
                ),
                log,
                event("odd", "no start", f64::NAN, None, ""),
            ],
            ..Infra::default()
        };
        let e = events(&infra);
        let labels: Vec<&str> = e.iter().map(|e| e.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "rollout of a very long …",
                "log",
                "desired 6 · Successful",
                "desired 9 · Failed"
            ]
        );
        assert!(e[2].scaling && e[3].scaling && !e[0].scaling);
        assert_eq!(e[3].end, None);
        assert_eq!(markers(&e).len(), 3, "the log line is not a marker");
    }

    #[test]
    fn a_log_line_has_no_until_and_an_unfinished_activity_says_so() {
        let mut old_log = event("cloudwatch_logs:/ecs/api", "log", 25.15, None, "errors");
        old_log.cause = "ERROR pool exhausted".into();
        let mut log = old_log.clone();
        log.end = Some(25.15);
        let infra = Infra {
            events: vec![
                old_log,
                log,
                event("autoscaling", "scaling", 30.0, None, "InProgress"),
            ],
            ..Infra::default()
        };
        let mut html = String::new();
        infra_section(&mut html, &infra, 60.0, None);
        assert!(!html.contains("still going"), "{html}");
        assert_eq!(html.matches("<td>25s</td><td>–</td>").count(), 2, "{html}");
        assert!(
            html.contains("<td>30s</td><td>not finished when read</td>"),
            "{html}"
        );
    }

    #[test]
    fn spread_says_how_much_a_signal_moved() {
        let flat: Vec<(f64, f64)> = (0..100)
            .map(|t| (t as f64, 5.0 + (t % 3) as f64 * 0.01))
            .collect();
        let mut step = flat.clone();
        for p in step.iter_mut().skip(60) {
            p.1 = 50.0;
        }
        let (f, s) = (Spread::of(&flat), Spread::of(&step));
        assert!(f.moved < 1.0, "{f:?}");
        assert!(s.moved > 100.0, "{s:?}");
        assert_eq!((s.min, s.max), (5.0, 50.0));
        let empty = Spread::of(&[]);
        assert_eq!(empty.moved, 0.0);
        assert!(empty.min.is_nan());
        // A lone spike is not a move (the rolling median takes it out).
        let mut spike = flat.clone();
        spike[50].1 = 500.0;
        assert!(Spread::of(&spike).moved < 1.0);
    }

    #[test]
    fn scales_read_in_the_signals_unit() {
        let ms = Scale::for_unit("seconds", 0.35);
        assert_eq!(
            (ms.show(0.35), ms.axis("seconds")),
            ("350 ms".into(), "ms".into())
        );
        assert_eq!(Scale::for_unit("bytes", 3e8).show(3e8), "286 MiB");
        assert_eq!(Scale::for_unit("ratio", 0.5).show(0.25), "25%");
        assert_eq!(
            Scale::for_unit("seconds_per_second", 0.8).show(0.8),
            "80% of a core"
        );
        assert_eq!(Scale::for_unit("", 1.0).axis(""), "value");
        assert_eq!(Scale::for_unit("widgets", 1.0).axis("widgets"), "widgets");
        assert_eq!(Scale::for_unit("seconds", f64::NAN).show(f64::NAN), "–");
    }

    #[test]
    fn sparklines_survive_odd_input() {
        for pts in [
            vec![],
            vec![(3.0, 1.0)],
            vec![(-5.0, 1.0), (500.0, 2.0)],
            vec![(1.0, 2.0), (2.0, 2.0)],
        ] {
            let s = sparkline(&pts, 10.0, chart::color(0), Some((f64::NAN, 4.0)));
            assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{s}");
            assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
        }
    }
}
