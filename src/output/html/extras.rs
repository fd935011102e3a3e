//! Sections that exist only when `results.json` carries them: infrastructure signals and
//! scaling events (`infra`), root-cause findings (`findings`) and `capacity`, which the
//! diagnosis adds. They are read from the raw JSON, tolerantly: a missing field means no
//! section, an unexpected shape is shown as data rather than failing the report.

use serde_json::Value;

use super::chart::{self, Line, Marker, TimeAxis};
use super::{escape, series};
use crate::record::results::Results;

/// The optional parts of `results.json` the report shows when present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    pub infra: Option<Value>,
    pub findings: Option<Value>,
    pub capacity: Option<Value>,
}

impl Extras {
    /// The optional fields of in-memory results (none until `Results` carries them).
    pub fn of(results: &Results) -> Self {
        serde_json::to_value(results)
            .map(|doc| Self::from_document(&doc))
            .unwrap_or_default()
    }

    /// Picks the optional fields out of a whole `results.json` document.
    pub fn from_document(doc: &Value) -> Self {
        let pick = |k: &str| doc.get(k).filter(|v| !v.is_null()).cloned();
        Extras {
            infra: pick("infra"),
            findings: pick("findings"),
            capacity: pick("capacity"),
        }
    }
}

/// One infrastructure time series: points in seconds since the run's start.
pub struct Signal {
    pub title: String,
    pub unit: String,
    pub points: Vec<(f64, f64)>,
}

/// One dated event (a scaling activity, say), in seconds since the run's start.
pub struct Event {
    pub start: f64,
    pub end: Option<f64>,
    pub title: String,
    pub detail: String,
}

/// Seconds since the run's start from a number (already relative) or an RFC 3339 time.
fn seconds(v: &Value, run_start: Option<std::time::SystemTime>) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let at = humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
                .or_else(|_| humantime::parse_rfc3339(s))
                .ok()?;
            let start = run_start?;
            Some(match at.duration_since(start) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            })
        }
        _ => None,
    }
}

fn first<'a>(o: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| o.get(*k).filter(|v| !v.is_null()))
}

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => number(n.as_f64().unwrap_or(f64::NAN)),
        Some(other) => other.to_string(),
    }
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

pub fn run_start(r: &Results) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339_weak(r.started_at.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(&r.started_at))
        .ok()
}

/// The series of `infra`: `{"series": [...]}` or a bare array, each with a name and points as
/// `[t, v]` pairs or `{t|time|timestamp, v|value}` objects.
pub fn signals(infra: &Value, start: Option<std::time::SystemTime>) -> Vec<Signal> {
    let list = infra
        .get("series")
        .and_then(Value::as_array)
        .or_else(|| infra.as_array());
    let Some(list) = list else { return Vec::new() };
    list.iter()
        .filter_map(|s| {
            let points_v = first(s, &["points", "values", "data"])?.as_array()?;
            let mut points: Vec<(f64, f64)> = points_v
                .iter()
                .filter_map(|p| match p {
                    Value::Array(pair) if pair.len() >= 2 => {
                        Some((seconds(&pair[0], start)?, pair[1].as_f64()?))
                    }
                    Value::Object(_) => Some((
                        seconds(first(p, &["t", "time", "timestamp"])?, start)?,
                        first(p, &["v", "value"])?.as_f64()?,
                    )),
                    _ => None,
                })
                .filter(|(t, v)| t.is_finite() && v.is_finite())
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let name = text(first(s, &["name", "metric", "signal"]));
            let source = text(s.get("source"));
            let dims = match s.get("dimensions") {
                Some(Value::Object(m)) if !m.is_empty() => format!(
                    " ({})",
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", text(Some(v))))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => String::new(),
            };
            let title = if source.is_empty() {
                format!("{name}{dims}")
            } else {
                format!("{source}: {name}{dims}")
            };
            Some(Signal {
                title,
                unit: text(s.get("unit")),
                points: series::min_max_decimate(&points, series::MAX_POINTS),
            })
        })
        .collect()
}

/// The events of `infra` (`{"events": [...]}`), e.g. scaling activities.
pub fn events(infra: &Value, start: Option<std::time::SystemTime>) -> Vec<Event> {
    let Some(list) = infra.get("events").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out: Vec<Event> = list
        .iter()
        .filter_map(|e| {
            let at = seconds(
                first(e, &["start_s", "start", "t", "time", "timestamp"])?,
                start,
            )?;
            let end = first(e, &["end_s", "end"]).and_then(|v| seconds(v, start));
            let title = [text(e.get("source")), text(first(e, &["name", "kind"]))]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            let detail = [
                text(first(e, &["cause", "description", "message"])),
                text(e.get("status")),
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" — ");
            Some(Event {
                start: at,
                end,
                title,
                detail,
            })
        })
        .collect();
    out.sort_by(|a, b| a.start.total_cmp(&b.start));
    out
}

/// Event starts as chart markers, so every time chart shows them.
pub fn markers(events: &[Event]) -> Vec<Marker> {
    events
        .iter()
        .map(|e| Marker {
            t: e.start,
            label: e.title.clone(),
        })
        .collect()
}

/// Most signals drawn as charts; the rest are listed by name.
const MAX_SIGNAL_CHARTS: usize = 24;

pub fn infra_section(out: &mut String, infra: &Value, axis: &TimeAxis, r: &Results) {
    let start = run_start(r);
    let sigs = signals(infra, start);
    let evs = events(infra, start);
    out.push_str("<section id=\"infra\"><h2>Infrastructure signals</h2>");
    if sigs.is_empty() && evs.is_empty() {
        out.push_str("<p class=\"note\">The run carries infrastructure data in a form this report does not chart:</p>");
        raw(out, infra);
    }
    for (i, s) in sigs.iter().take(MAX_SIGNAL_CHARTS).enumerate() {
        let line = Line::new(s.title.clone(), chart::color(i), s.points.clone());
        let unit = s.unit.clone();
        out.push_str(&format!(
            "<figure><figcaption>{}</figcaption>",
            escape(&s.title)
        ));
        match chart::time_chart(axis, &unit, &|v| short(*v), std::slice::from_ref(&line)) {
            Ok(svg) => out.push_str(&svg),
            Err(e) => out.push_str(&format!("<p class=\"note\">{}</p>", escape(&e.to_string()))),
        }
        out.push_str("</figure>");
    }
    if sigs.len() > MAX_SIGNAL_CHARTS {
        out.push_str(&format!(
            "<p class=\"note\">{} more signals not drawn: {}</p>",
            sigs.len() - MAX_SIGNAL_CHARTS,
            escape(
                &sigs[MAX_SIGNAL_CHARTS..]
                    .iter()
                    .map(|s| s.title.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        ));
    }
    if !evs.is_empty() {
        out.push_str("<h3>Scaling and other events</h3><table><thead><tr><th>at</th><th>until</th><th>event</th><th>detail</th></tr></thead><tbody>");
        for e in &evs {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                chart::clock(e.start),
                e.end.map(chart::clock).unwrap_or_default(),
                escape(&e.title),
                escape(&e.detail)
            ));
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
}

fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

pub fn findings_section(out: &mut String, findings: &Value, r: &Results) {
    let start = run_start(r);
    out.push_str("<section id=\"findings\"><h2>Findings</h2>");
    let Some(list) = findings.as_array() else {
        raw(out, findings);
        out.push_str("</section>");
        return;
    };
    if list.is_empty() {
        out.push_str("<p>No cause found: the run looks healthy.</p></section>");
        return;
    }
    out.push_str("<ol class=\"findings\">");
    for f in list {
        let kind = text(f.get("kind"));
        let signal = text(f.get("signal"));
        let score = f.get("score").and_then(Value::as_f64);
        let summary = text(first(f, &["summary", "title", "message", "description"]));
        let window = f.get("window");
        let from = first(f, &["start_s", "start"])
            .or_else(|| window.and_then(|w| first(w, &["start_s", "start"])))
            .and_then(|v| seconds(v, start));
        let to = first(f, &["end_s", "end"])
            .or_else(|| window.and_then(|w| first(w, &["end_s", "end"])))
            .and_then(|v| seconds(v, start));
        out.push_str("<li>");
        out.push_str(&format!("<b>{}</b>", escape(&kind)));
        if !signal.is_empty() {
            out.push_str(&format!(" — <code>{}</code>", escape(&signal)));
        }
        if let Some(s) = score {
            out.push_str(&format!(" <span class=\"muted\">score {s:.2}</span>"));
        }
        if let (Some(a), Some(b)) = (from, to) {
            out.push_str(&format!(
                " <span class=\"muted\">{} – {}</span>",
                chart::clock(a),
                chart::clock(b)
            ));
        }
        if !summary.is_empty() {
            out.push_str(&format!("<p>{}</p>", escape(&summary)));
        }
        if let Some(ev) = f.get("evidence") {
            key_values(out, ev);
        }
        out.push_str("</li>");
    }
    out.push_str("</ol></section>");
}

pub fn capacity_section(out: &mut String, capacity: &Value) {
    out.push_str("<section id=\"capacity\"><h2>Capacity</h2>");
    key_values(out, capacity);
    out.push_str("</section>");
}

/// An object as a two-column table; anything else as JSON.
fn key_values(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) => {
            out.push_str("<table class=\"kv\"><tbody>");
            for (k, v) in m {
                let shown = match v {
                    Value::Object(_) | Value::Array(_) => format!(
                        "<code>{}</code>",
                        escape(&serde_json::to_string(v).unwrap_or_default())
                    ),
                    other => escape(&text(Some(other))),
                };
                out.push_str(&format!("<tr><th>{}</th><td>{shown}</td></tr>", escape(k)));
            }
            out.push_str("</tbody></table>");
        }
        other => raw(out, other),
    }
}

fn raw(out: &mut String, v: &Value) {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
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
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_fields_mean_no_extras() {
        let e = Extras::from_document(&json!({"summary": {}, "findings": null}));
        assert_eq!(e, Extras::default());
        assert_eq!(Extras::of(&super::super::tests::tiny()), Extras::default());
    }

    #[test]
    fn signals_read_pairs_objects_and_times() {
        let start = humantime::parse_rfc3339("2026-01-01T00:00:00Z").ok();
        let infra = json!({
            "series": [
                {"source": "cloudwatch", "name": "CPUUtilization", "unit": "%",
                 "dimensions": {"ServiceName": "shop"},
                 "points": [[0, 10.0], [1, 20.0], [2, 95.5]]},
                {"name": "db_pool_in_use",
                 "points": [{"t": "2026-01-01T00:00:05Z", "v": 3}, {"time": 6, "value": 9}]},
                {"name": "no points here"}
            ],
            "events": [{"source": "autoscaling", "name": "scale out 2→4",
                        "start": "2026-01-01T00:00:30Z", "end": 42, "status": "Successful"}]
        });
        let s = signals(&infra, start);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].title, "cloudwatch: CPUUtilization (ServiceName=shop)");
        assert_eq!(s[0].points, vec![(0.0, 10.0), (1.0, 20.0), (2.0, 95.5)]);
        assert_eq!(s[1].points, vec![(5.0, 3.0), (6.0, 9.0)]);
        let e = events(&infra, start);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].start, e[0].end), (30.0, Some(42.0)));
        assert_eq!(e[0].title, "autoscaling: scale out 2→4");
    }

    #[test]
    fn unknown_shapes_are_shown_not_fatal() {
        let mut out = String::new();
        findings_section(
            &mut out,
            &json!({"unexpected": "<shape>"}),
            &super::super::tests::tiny(),
        );
        assert!(out.contains("&lt;shape&gt;"));
        let mut out = String::new();
        findings_section(
            &mut out,
            &json!([{"kind": "db_pool_saturation", "signal": "db_pool_in_use", "score": 0.91,
                      "summary": "the pool ran out", "window": {"start_s": 20, "end_s": 35},
                      "evidence": {"pool_max": 10, "wait_p99_ms": 840.5}}]),
            &super::super::tests::tiny(),
        );
        assert!(out.contains("<b>db_pool_saturation</b>"));
        assert!(out.contains("score 0.91"));
        assert!(out.contains("20s – 35s"));
        assert!(out.contains("wait_p99_ms"));
    }
}
