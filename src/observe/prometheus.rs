//! The Prometheus HTTP API: after the run, `GET /api/v1/query_range` for each configured
//! PromQL query over the run's window; every returned series becomes a [`Series`] named after
//! the query, its labels as dimensions.

use std::collections::BTreeMap;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;

use super::scrape::http_get;
use super::RunWindow;
use crate::http::{Client, ClientOptions};
use crate::record::infra::{Infra, Series};
use crate::scenario::PrometheusSource;
use crate::url::split_url;

#[derive(Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<MatrixSeries>,
}

#[derive(Deserialize)]
struct MatrixSeries {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// Parses a `query_range` response body into series named `name`, times relative to `window`.
pub fn parse_query_range(
    name: &str,
    body: &[u8],
    window: &RunWindow,
) -> Result<Vec<Series>, String> {
    let r: Response =
        serde_json::from_slice(body).map_err(|e| format!("not a Prometheus API answer: {e}"))?;
    if r.status != "success" {
        return Err(r.error.unwrap_or(r.status));
    }
    let data = r.data.ok_or("answer without data")?;
    if data.result_type != "matrix" {
        return Err(format!("expected a matrix, got {}", data.result_type));
    }
    Ok(data
        .result
        .into_iter()
        .map(|m| {
            let mut dimensions = m.metric;
            dimensions.remove("__name__");
            Series {
                source: "prometheus".into(),
                name: name.to_string(),
                unit: String::new(),
                dimensions,
                span_s: None,
                points: m
                    .values
                    .into_iter()
                    .filter_map(|(t, v)| {
                        let v: f64 = v.parse().ok()?;
                        v.is_finite().then(|| (window.relative(t), v))
                    })
                    .collect(),
            }
        })
        .collect())
}

/// The window a query's values each cover, in seconds: the longest range selector in it
/// (`rate(x[5s])`, `avg_over_time(x[1m])`, a subquery's `[5m:30s]`). `None` for an instant
/// vector, and for `irate`/`idelta` alone, which read only the last two samples of their range.
pub fn query_window(query: &str) -> Option<f64> {
    static RANGE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static PART: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let range = RANGE.get_or_init(|| {
        regex::Regex::new(r"\[\s*((?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+)\s*(?::[^\]]*)?\]")
            .expect("valid range pattern")
    });
    let part = PART.get_or_init(|| {
        regex::Regex::new(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)").expect("valid duration pattern")
    });
    static FUNCTION: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let function = FUNCTION.get_or_init(|| {
        regex::Regex::new(
            r"\b(rate|increase|delta|deriv|changes|resets|predict_linear|holt_winters|double_exponential_smoothing|[a-z]+_over_time)\s*\(",
        )
        .expect("valid function pattern")
    });
    let windowed_fn = function.is_match(query);
    let subquery = range.captures_iter(query).any(|c| c[0].contains(':'));
    if !windowed_fn && !subquery {
        return None;
    }
    range
        .captures_iter(query)
        .map(|c| {
            part.captures_iter(&c[1])
                .map(|p| {
                    let v: f64 = p[1].parse().unwrap_or(0.0);
                    v * match &p[2] {
                        "ms" => 0.001,
                        "s" => 1.0,
                        "m" => 60.0,
                        "h" => 3600.0,
                        "d" => 86_400.0,
                        "w" => 604_800.0,
                        _ => 31_536_000.0,
                    }
                })
                .sum::<f64>()
        })
        .filter(|w| *w > 0.0)
        .max_by(f64::total_cmp)
}

/// Marks `series` from `query` as aggregates over its window (see [`query_window`]): a value
/// Prometheus stamps at `t` summarises `(t - w, t]`, so it is moved to the window's start and
/// covers `w` seconds (`Series::span_s`). Left at `t`, a 5 s rate that follows a step only as
/// its window fills is dated seconds after the step, and ranked as a consequence of what it
/// caused.
pub fn apply_window(series: &mut Series, query: &str) {
    if let Some(w) = query_window(query) {
        for p in &mut series.points {
            p.0 -= w;
        }
        series.span_s = Some(w);
    }
}

/// Runs every query over the window; failures become notes, never errors of the run.
pub async fn fetch(source: &PrometheusSource, window: &RunWindow, insecure: bool) -> Infra {
    let mut infra = Infra::default();
    let base = source.url.trim_end_matches('/');
    let (origin, prefix) = match split_url(base) {
        Ok((o, p)) => (o, p.trim_end_matches('/').to_string()),
        Err(e) => {
            infra.notes.push(format!("prometheus url: {e}"));
            return infra;
        }
    };
    let mut client = Client::new(ClientOptions::new(insecure));
    let start = window.start_unix;
    let end = window.start_unix + window.duration_s;
    for (name, query) in &source.queries {
        let target = format!(
            "{prefix}/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={}",
            utf8_percent_encode(query, NON_ALPHANUMERIC),
            source.step.as_secs_f64().max(0.001)
        );
        let got = http_get(
            &mut client,
            &origin,
            &target,
            "application/json",
            Duration::from_secs(30),
        )
        .await;
        let outcome = match got {
            Ok((_, body)) => parse_query_range(name, &body, window).map(|mut series| {
                for s in &mut series {
                    apply_window(s, query);
                }
                series
            }),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(series) => infra.series.extend(series),
            Err(e) => infra
                .notes
                .push(format!("prometheus query {name:?} failed: {e}")),
        }
    }
    infra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_matrix_relative_to_the_run() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","job":"api","instance":"a:9100"},
             "values":[[1000,"1"],[1001.5,"0.5"],[1002,"NaN"]]},
            {"metric":{},"values":[]}]}}"#;
        let w = RunWindow {
            start_unix: 1000.0,
            duration_s: 5.0,
        };
        let s = parse_query_range("up", body, &w).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "up");
        assert_eq!(s[0].points, vec![(0.0, 1.0), (1.5, 0.5)]);
        assert_eq!(s[0].key(), "up{instance=\"a:9100\",job=\"api\"}");
        assert_eq!(s[0].source, "prometheus");
    }

    #[test]
    fn a_query_covers_its_longest_range() {
        assert_eq!(query_window("rate(node_cpu_seconds_total[5s])"), Some(5.0));
        assert_eq!(
            query_window(
                "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[1m30s]))"
            ),
            Some(90.0)
        );
        assert_eq!(
            query_window("sum(increase(x[500ms])) / sum(rate(y[2m]))"),
            Some(120.0)
        );
        assert_eq!(query_window("max_over_time(queue_depth[30s])"), Some(30.0));
        assert_eq!(query_window("max(rate(x[1m])[5m:30s])"), Some(300.0));
        assert_eq!(query_window("queue_depth{queue=\"a[1]\"}"), None);
        assert_eq!(query_window("up"), None);
        assert_eq!(query_window("irate(x[5m])"), None, "the last two samples");
        let w = RunWindow {
            start_unix: 1000.0,
            duration_s: 30.0,
        };
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"cpu":"1"},"values":[[1010,"0.5"],[1011,"0.6"]]}]}}"#;
        let mut s = parse_query_range("cpu_busy", body, &w).unwrap().remove(0);
        apply_window(&mut s, "rate(node_cpu_seconds_total{cpu=\"1\"}[5s])");
        assert_eq!(s.points, vec![(5.0, 0.5), (6.0, 0.6)]);
        assert_eq!(s.span_s, Some(5.0));
    }

    #[test]
    fn reports_api_errors() {
        let w = RunWindow {
            start_unix: 0.0,
            duration_s: 1.0,
        };
        let e = parse_query_range(
            "x",
            br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#,
            &w,
        )
        .unwrap_err();
        assert!(e.contains("parse error"), "{e}");
        assert!(parse_query_range("x", b"<html>", &w).is_err());
    }
}
