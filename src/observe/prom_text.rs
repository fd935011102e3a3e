//! The Prometheus text exposition format: [`parse`] reads one scrape, [`ScrapeSeries`] turns
//! successive scrapes into [`Series`]: counters become per-second rates, gauges stay as they
//! are, histograms become a per-interval mean and 95th percentile from the bucket deltas.

use std::collections::{BTreeMap, HashMap};

use super::unit_from_name;
use crate::record::infra::Series;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// One scrape, parsed. Lines that do not parse are skipped and listed in `bad_lines`, so one
/// odd metric does not cost the rest.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: HashMap<String, MetricType>,
    pub samples: Vec<Sample>,
    /// `(line number from 1, message)`.
    pub bad_lines: Vec<(usize, String)>,
}

pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.split_whitespace();
            if parts.next() == Some("TYPE") {
                if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                    let t = match kind {
                        "counter" => MetricType::Counter,
                        "gauge" => MetricType::Gauge,
                        "histogram" => MetricType::Histogram,
                        "summary" => MetricType::Summary,
                        _ => MetricType::Untyped,
                    };
                    out.types.insert(name.to_string(), t);
                }
            }
            continue;
        }
        match parse_sample(line) {
            Ok(s) => out.samples.push(s),
            Err(e) => out.bad_lines.push((i + 1, e)),
        }
    }
    out
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value after the metric name")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let value_text = rest
        .split_whitespace()
        .next()
        .ok_or("no value after the metric name")?;
    let value = parse_value(value_text).ok_or_else(|| format!("bad value {value_text:?}"))?;
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Labels after the opening brace; returns them and the text after the closing brace.
#[allow(clippy::type_complexity)]
fn parse_labels(mut s: &str) -> Result<(Vec<(String, String)>, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or("label without '='")?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start();
        s = s.strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        labels.push((key, value));
        s = s[end + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        }
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Metric families left out of the series: metadata, and the reference stack's record of the
/// faults injected into it — the diagnosis must find a cause from its effects, as it would in
/// production.
const IGNORED: &[&str] = &[
    "peakload_stack_fault",
    "peakload_stack_info",
    "process_start_time_seconds",
];

/// Turns successive scrapes of one endpoint into series.
#[derive(Debug)]
pub struct ScrapeSeries {
    source: String,
    /// The endpoint's `instance` label (`host:port`), added to every series as Prometheus does:
    /// two processes that export the same names stay two signals.
    instance: Option<String>,
    /// Previous cumulative values of counters, by series key.
    prev_counters: HashMap<String, (f64, f64)>,
    /// Previous histogram state (time, buckets, sum, count), by series key.
    prev_histograms: HashMap<String, HistState>,
    /// When the previous scrape was taken.
    last_t: Option<f64>,
    first_t: Option<f64>,
    out: BTreeMap<String, Series>,
}

#[derive(Debug, Clone)]
struct HistState {
    t: f64,
    /// `(upper bound, cumulative count)`, sorted by bound.
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

impl ScrapeSeries {
    pub fn new(source: impl Into<String>) -> Self {
        ScrapeSeries {
            source: source.into(),
            instance: None,
            prev_counters: HashMap::new(),
            prev_histograms: HashMap::new(),
            last_t: None,
            first_t: None,
            out: BTreeMap::new(),
        }
    }

    /// Labels every series with `instance` (a label of that name the target exports itself is
    /// kept as `exported_instance`, as Prometheus keeps it).
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Records a scrape at `t` that got no valid answer: `up` is 0 then (as Prometheus records
    /// it), so a target that stopped answering is a signal of its own, not only a gap in the
    /// others.
    pub fn failed(&mut self, t: f64) {
        self.push("up", "", &BTreeMap::new(), t, 0.0);
    }

    /// Adds one scrape taken at `t` seconds after the run's start.
    pub fn add(&mut self, t: f64, expo: &Exposition) {
        self.push("up", "", &BTreeMap::new(), t, 1.0);
        let mut histograms: BTreeMap<String, (String, BTreeMap<String, String>, HistState)> =
            BTreeMap::new();
        for s in &expo.samples {
            let (family, part) = family_of(&s.name, &expo.types);
            if IGNORED.contains(&family) || !s.value.is_finite() && part != "bucket" {
                continue;
            }
            let kind = expo
                .types
                .get(family)
                .copied()
                .unwrap_or(if s.name.ends_with("_total") {
                    MetricType::Counter
                } else {
                    MetricType::Untyped
                });
            match kind {
                MetricType::Histogram => {
                    let mut dims: BTreeMap<String, String> = s
                        .labels
                        .iter()
                        .filter(|(k, _)| k != "le")
                        .cloned()
                        .collect();
                    let key = series_key(family, &dims);
                    let entry = histograms.entry(key).or_insert_with(|| {
                        (
                            family.to_string(),
                            std::mem::take(&mut dims),
                            HistState {
                                t,
                                buckets: Vec::new(),
                                sum: 0.0,
                                count: 0.0,
                            },
                        )
                    });
                    match part {
                        "bucket" => {
                            let le = s
                                .labels
                                .iter()
                                .find(|(k, _)| k == "le")
                                .and_then(|(_, v)| parse_value(v));
                            if let Some(le) = le {
                                entry.2.buckets.push((le, s.value));
                            }
                        }
                        "sum" => entry.2.sum = s.value,
                        "count" => entry.2.count = s.value,
                        _ => {}
                    }
                }
                MetricType::Summary if !part.is_empty() => {}
                MetricType::Counter => {
                    let dims: BTreeMap<String, String> = s.labels.iter().cloned().collect();
                    let key = series_key(&s.name, &dims);
                    // A counter first seen after the first scrape started from zero since then
                    // (the reference stack prints a 5xx line only once there is one).
                    let mut prev = self.prev_counters.insert(key.clone(), (t, s.value));
                    if prev.is_none() {
                        if let (Some(first), Some(pt)) = (self.first_t, self.last_t) {
                            let name = format!("{}:rate", s.name);
                            let unit = counter_unit(&s.name);
                            if first < pt {
                                self.push(&name, unit, &dims, first, 0.0);
                            }
                            self.push(&name, unit, &dims, pt, 0.0);
                            prev = Some((pt, 0.0));
                        }
                    }
                    if let Some((pt, pv)) = prev {
                        let dt = t - pt;
                        if dt > 1e-3 {
                            // A counter that went down was reset: count from zero.
                            let delta = if s.value >= pv { s.value - pv } else { s.value };
                            let name = format!("{}:rate", s.name);
                            let unit = counter_unit(&s.name);
                            self.push(&name, unit, &dims, (pt + t) / 2.0, delta / dt);
                        }
                    }
                }
                _ => {
                    let dims: BTreeMap<String, String> = s.labels.iter().cloned().collect();
                    self.push(&s.name, unit_from_name(&s.name), &dims, t, s.value);
                }
            }
        }
        for (key, (family, dims, mut now)) in histograms {
            now.buckets
                .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            if let Some(prev) = self.prev_histograms.insert(key, now.clone()) {
                let reset = now.count < prev.count;
                let dcount = if reset {
                    now.count
                } else {
                    now.count - prev.count
                };
                if now.t - prev.t <= 1e-3 || dcount <= 0.0 {
                    continue;
                }
                let dsum = if reset { now.sum } else { now.sum - prev.sum };
                let unit = unit_from_name(&family);
                // Interval figures are stamped at the middle of their interval.
                let mid = (prev.t + now.t) / 2.0;
                self.push(&format!("{family}:mean"), unit, &dims, mid, dsum / dcount);
                let deltas: Vec<(f64, f64)> = now
                    .buckets
                    .iter()
                    .map(|&(le, c)| {
                        let before = if reset {
                            0.0
                        } else {
                            prev.buckets
                                .iter()
                                .find(|(l, _)| *l == le)
                                .map_or(0.0, |(_, c)| *c)
                        };
                        (le, (c - before).max(0.0))
                    })
                    .collect();
                if let Some(p95) = bucket_quantile(0.95, &deltas) {
                    self.push(&format!("{family}:p95"), unit, &dims, mid, p95);
                }
            }
        }
        self.last_t = Some(t);
        self.first_t.get_or_insert(t);
    }

    fn push(&mut self, name: &str, unit: &str, dims: &BTreeMap<String, String>, t: f64, v: f64) {
        let labelled;
        let dims = match &self.instance {
            Some(instance) => {
                let mut d = dims.clone();
                if let Some(theirs) = d.insert("instance".into(), instance.clone()) {
                    d.insert("exported_instance".into(), theirs);
                }
                labelled = d;
                &labelled
            }
            None => dims,
        };
        let key = series_key(name, dims);
        let source = &self.source;
        self.out
            .entry(key)
            .or_insert_with(|| Series {
                source: source.clone(),
                name: name.to_string(),
                unit: unit.to_string(),
                dimensions: dims.clone(),
                span_s: None,
                points: Vec::new(),
            })
            .points
            .push((round_t(t), v));
    }

    /// The `max` series that moved most over their last `window` points (relative to their
    /// level), newest value last: what the dashboard shows while the run goes on.
    pub fn most_active(&self, max: usize, window: usize) -> Vec<(String, String, Vec<f64>)> {
        let mut scored: Vec<(f64, &Series)> = self
            .out
            .values()
            .filter(|s| s.points.len() >= 2 && !is_scrape_traffic(s))
            .map(|s| {
                let tail = &s.points[s.points.len().saturating_sub(window)..];
                let (lo, hi, sum) = tail.iter().fold(
                    (f64::INFINITY, f64::NEG_INFINITY, 0.0),
                    |(lo, hi, sum), &(_, v)| (lo.min(v), hi.max(v), sum + v),
                );
                let mean = sum / tail.len() as f64;
                ((hi - lo) / (mean.abs() + 1e-9), s)
            })
            .filter(|(score, _)| *score > 0.0 && score.is_finite())
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        scored
            .into_iter()
            .take(max)
            .map(|(_, s)| {
                let tail = &s.points[s.points.len().saturating_sub(window)..];
                (
                    s.key(),
                    s.unit.clone(),
                    tail.iter().map(|&(_, v)| v).collect(),
                )
            })
            .collect()
    }

    /// The series, leaving out rates and timings that were zero throughout (routes never
    /// called). A gauge that read 0 throughout is kept: an empty queue or nothing in flight is a
    /// measurement, and the diagnosis needs it to tell a consumer handed fewer messages from
    /// one that fell behind.
    pub fn finish(self) -> Vec<Series> {
        self.out
            .into_values()
            .filter(|s| {
                let derived = [":rate", ":mean", ":p95"]
                    .iter()
                    .any(|d| s.name.ends_with(d));
                (!derived || s.points.iter().any(|(_, v)| *v != 0.0)) && !is_scrape_traffic(s)
            })
            .collect()
    }
}

/// The target's own accounting of our scrapes (`route="/metrics"`): it moves with the scrape
/// interval, not with the load, and would only distract the ranking.
fn is_scrape_traffic(s: &Series) -> bool {
    ["route", "path", "handler", "endpoint"]
        .iter()
        .any(|k| s.dimensions.get(*k).is_some_and(|v| v == "/metrics"))
}

fn counter_unit(name: &str) -> &'static str {
    if name.ends_with("_seconds_total") {
        "seconds_per_second"
    } else {
        "per_second"
    }
}

fn round_t(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

fn series_key(name: &str, dims: &BTreeMap<String, String>) -> String {
    let mut k = name.to_string();
    for (a, b) in dims {
        k.push('\u{1}');
        k.push_str(a);
        k.push('=');
        k.push_str(b);
    }
    k
}

/// The family a sample belongs to and which part it is (`bucket`, `sum`, `count` or "").
fn family_of<'a>(name: &'a str, types: &HashMap<String, MetricType>) -> (&'a str, &'static str) {
    for (suffix, part) in [("_bucket", "bucket"), ("_sum", "sum"), ("_count", "count")] {
        if let Some(base) = name.strip_suffix(suffix) {
            if matches!(
                types.get(base),
                Some(MetricType::Histogram | MetricType::Summary)
            ) {
                return (base, part);
            }
        }
    }
    (name, "")
}

/// `histogram_quantile` over per-bucket counts of one interval: `(upper bound, cumulative
/// count)`, sorted. Linear within a bucket; the `+Inf` bucket answers its lower bound.
pub fn bucket_quantile(q: f64, cumulative: &[(f64, f64)]) -> Option<f64> {
    let total = cumulative.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = 0.0;
    let mut below = 0.0;
    for &(le, count) in cumulative {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let in_bucket = count - below;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(lower + (le - lower) * (rank - below) / in_bucket);
        }
        lower = le;
        below = count;
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE_1: &str = r#"# HELP http_requests_total HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/products",status_class="2xx"} 100
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="/x",le="0.01"} 10
http_request_duration_seconds_bucket{route="/x",le="0.1"} 10
http_request_duration_seconds_bucket{route="/x",le="+Inf"} 10
http_request_duration_seconds_sum{route="/x"} 0.05
http_request_duration_seconds_count{route="/x"} 10
# TYPE queue_depth gauge
queue_depth{queue="notifications"} 3
peakload_stack_fault{fault="db_latency_ms"} 0
weird{a="x\"y\\z"} 1e3
this line is broken
"#;

    const SCRAPE_2: &str = r#"# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/products",status_class="2xx"} 150
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="/x",le="0.01"} 10
http_request_duration_seconds_bucket{route="/x",le="0.1"} 30
http_request_duration_seconds_bucket{route="/x",le="+Inf"} 30
http_request_duration_seconds_sum{route="/x"} 1.05
http_request_duration_seconds_count{route="/x"} 30
# TYPE queue_depth gauge
queue_depth{queue="notifications"} 7
peakload_stack_fault{fault="db_latency_ms"} 50
"#;

    #[test]
    fn parses_labels_values_and_reports_bad_lines() {
        let e = parse(SCRAPE_1);
        assert_eq!(e.types["http_requests_total"], MetricType::Counter);
        let weird = e.samples.iter().find(|s| s.name == "weird").unwrap();
        assert_eq!(weird.labels, vec![("a".into(), "x\"y\\z".into())]);
        assert_eq!(weird.value, 1000.0);
        assert_eq!(e.bad_lines.len(), 1);
        assert_eq!(e.bad_lines[0].0, 14);
        let inf = parse("x_bucket{le=\"+Inf\"} 5 1700000000000\n");
        assert_eq!(inf.samples[0].labels[0].1, "+Inf");
        assert_eq!(inf.samples[0].value, 5.0);
    }

    #[test]
    fn counters_become_rates_histograms_mean_and_p95_gauges_stay() {
        let mut acc = ScrapeSeries::new("scrape:test");
        acc.add(0.0, &parse(SCRAPE_1));
        acc.add(2.0, &parse(SCRAPE_2));
        let series = acc.finish();
        let find = |name: &str| series.iter().find(|s| s.name == name).unwrap();
        assert_eq!(find("http_requests_total:rate").points, vec![(1.0, 25.0)]);
        assert_eq!(find("http_requests_total:rate").unit, "per_second");
        assert_eq!(
            find("queue_depth").points,
            vec![(0.0, 3.0), (2.0, 7.0)],
            "gauges as they are"
        );
        let mean = find("http_request_duration_seconds:mean");
        assert_eq!(mean.points, vec![(1.0, 0.05)]);
        assert_eq!(mean.unit, "seconds");
        assert_eq!(
            mean.key(),
            "http_request_duration_seconds:mean{route=\"/x\"}"
        );
        // 20 new observations, all in (0.01, 0.1]: the 95th is 19 of 20 into that bucket.
        let p95 = find("http_request_duration_seconds:p95").points[0].1;
        assert!((p95 - (0.01 + 0.09 * 19.0 / 20.0)).abs() < 1e-9, "{p95}");
        assert!(
            !series
                .iter()
                .any(|s| s.name.starts_with("peakload_stack_fault")),
            "the injected faults are not evidence"
        );
    }

    #[test]
    fn a_gauge_at_zero_throughout_is_kept_a_route_never_called_is_not() {
        let mut acc = ScrapeSeries::new("s");
        let text = "# TYPE queue_depth gauge\nqueue_depth{queue=\"email\"} 0\n\
                    # TYPE http_requests_total counter\nhttp_requests_total{route=\"/never\"} 0\n";
        for t in 0..3 {
            acc.add(f64::from(t), &parse(text));
        }
        let names: Vec<String> = acc.finish().iter().map(|s| s.name.clone()).collect();
        assert!(names.contains(&"queue_depth".to_string()), "{names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with("http_requests_total")),
            "{names:?}"
        );
    }

    #[test]
    fn counter_reset_counts_from_zero() {
        let mut acc = ScrapeSeries::new("s");
        acc.add(0.0, &parse("# TYPE c_total counter\nc_total 100\n"));
        acc.add(1.0, &parse("# TYPE c_total counter\nc_total 5\n"));
        assert_eq!(acc.finish()[0].points, vec![(0.5, 5.0)]);
    }

    #[test]
    fn a_counter_that_appears_later_started_from_zero() {
        let mut acc = ScrapeSeries::new("s");
        let scrape = |extra: &str| parse(&format!("# TYPE c_total counter\nc_total 1\n{extra}"));
        acc.add(0.0, &scrape(""));
        acc.add(1.0, &scrape(""));
        acc.add(2.0, &scrape("err_total 4\n"));
        let s = acc.finish();
        let err = s.iter().find(|s| s.name == "err_total:rate").unwrap();
        assert_eq!(err.points, vec![(0.0, 0.0), (1.0, 0.0), (1.5, 4.0)]);
    }

    #[test]
    fn every_scrape_attempt_is_an_up_value_labelled_with_its_instance() {
        let mut acc = ScrapeSeries::new("scrape:http://127.0.0.1:8081/metrics")
            .with_instance("127.0.0.1:8081");
        let scrape = parse("# TYPE queue_depth gauge\nqueue_depth{instance=\"w1\"} 3\n");
        acc.add(0.0, &scrape);
        acc.failed(1.0);
        acc.add(2.0, &scrape);
        let s = acc.finish();
        let up = s.iter().find(|s| s.name == "up").unwrap();
        assert_eq!(up.points, vec![(0.0, 1.0), (1.0, 0.0), (2.0, 1.0)]);
        assert_eq!(up.key(), "up{instance=\"127.0.0.1:8081\"}");
        let depth = s.iter().find(|s| s.name == "queue_depth").unwrap();
        assert_eq!(
            depth.key(),
            "queue_depth{exported_instance=\"w1\",instance=\"127.0.0.1:8081\"}"
        );
    }

    #[test]
    fn bucket_quantile_interpolates() {
        let b = [(1.0, 50.0), (2.0, 100.0), (f64::INFINITY, 100.0)];
        assert_eq!(bucket_quantile(0.5, &b), Some(1.0));
        assert_eq!(bucket_quantile(0.75, &b), Some(1.5));
        assert_eq!(bucket_quantile(0.95, &[(f64::INFINITY, 3.0)]), Some(0.0));
        assert_eq!(bucket_quantile(0.95, &[(1.0, 0.0)]), None);
    }

    #[test]
    fn most_active_picks_the_signals_that_move() {
        let mut series = ScrapeSeries::new("scrape:test");
        for (t, depth) in [(1.0, 1.0), (2.0, 5.0), (3.0, 40.0), (4.0, 80.0)] {
            let text = format!(
                "# TYPE queue_depth gauge\nqueue_depth {depth}\n# TYPE pool_size gauge\npool_size 16\n# TYPE rss gauge\nrss {}\n",
                1000.0 + t
            );
            series.add(t, &parse(&text));
        }
        let shown = series.most_active(2, 3);
        let names: Vec<&str> = shown.iter().map(|(n, _, _)| n.as_str()).collect();
        // The queue grew sixteenfold; RSS barely moved; the constant pool size is left out.
        assert_eq!(names, ["queue_depth", "rss"]);
        assert_eq!(shown[0].2, vec![5.0, 40.0, 80.0]);
    }
}
