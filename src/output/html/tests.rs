//! Tests of the whole page, on synthetic results (the browser test is `tests/report.rs`).

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::record::results::{
    encode_histogram, GeneratorHealth, IntervalLatency, JourneyResult, LagStats, LatencyStats,
    ScenarioInfo, StageInfo, Summary, ThresholdResult, TimelinePoint, Tool,
};
use crate::record::{new_histogram, record_micros, ErrorKind, ErrorSample};

/// A plausible latency (µs): a body around `base_ms` with a long tail.
fn latency_us(rng: &mut fastrand::Rng, base_ms: f64) -> u64 {
    let u = rng.f64().max(1e-9);
    let tail = if rng.f64() < 0.01 { 8.0 } else { 1.0 };
    (base_ms * 1000.0 * (0.6 + (-u.ln()) * 0.5) * tail) as u64
}

/// Results of a synthetic run: `seconds` long, `steps` steps in two journeys, four stages,
/// errors of two kinds, thresholds as given. Histograms hold real recorded values.
pub(crate) fn synthetic(seconds: u32, steps: usize, thresholds: Vec<ThresholdResult>) -> Results {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut overall = new_histogram();
    let mut step_results = Vec::new();
    for i in 0..steps {
        let mut h = new_histogram();
        let base = 5.0 + i as f64 * 7.0;
        for _ in 0..20_000 {
            let v = latency_us(&mut rng, base);
            record_micros(&mut h, v);
            record_micros(&mut overall, v);
        }
        let journey = if i < steps / 2 { "shopper" } else { "browser" };
        step_results.push(StepResult {
            journey: journey.into(),
            name: format!("step-{i}"),
            method: "GET".into(),
            path: format!("/api/thing/{i}"),
            requests: h.len(),
            errors: (i as u64) * 3,
            error_rate: (i as u64 * 3) as f64 / h.len() as f64,
            rps: h.len() as f64 / seconds as f64,
            checks: h.len(),
            checks_failed: i as u64,
            errors_by_kind: BTreeMap::from([("http_5xx".to_string(), i as u64 * 3)]),
            latency_ms: LatencyStats::from_histogram(&h),
            histogram: encode_histogram(&h),
        });
    }
    let stage_len = seconds as f64 / 4.0;
    let names = ["warm-up", "steady", "doorbuster spike", "cool-down"];
    let targets = [50.0, 50.0, 150.0, 50.0];
    let stages: Vec<StageInfo> = (0..4)
        .map(|i| StageInfo {
            name: names[i].into(),
            start_s: stage_len * i as f64,
            end_s: stage_len * (i + 1) as f64,
            target: targets[i],
        })
        .collect();
    let timeline: Vec<TimelinePoint> = (0..seconds)
        .map(|t| {
            let stage = ((t as f64 / stage_len) as usize).min(3);
            let target = targets[stage];
            let rps = target * 4.0 * (0.95 + rng.f64() * 0.1);
            let p50 = 20.0 + rng.f64() * 5.0 + if stage == 2 { 80.0 } else { 0.0 };
            let e5 = if stage == 2 { rng.u64(0..20) } else { 0 };
            let timeouts = if stage == 2 && t % 7 == 0 { 3 } else { 0 };
            TimelinePoint {
                t,
                requests: rps as u64,
                errors: e5 + timeouts,
                rps,
                latency_ms: IntervalLatency {
                    p50,
                    p95: p50 * 2.5,
                    p99: p50 * 4.0,
                    max: p50 * 4.0 + rng.f64() * 300.0,
                },
                active_vus: (rps / 10.0) as u32,
                target_rps: target,
                iterations_started: (rps / 4.0) as u64,
                dropped_iterations: 0,
                errors_by_kind: BTreeMap::from([
                    ("http_5xx".to_string(), e5),
                    ("timeout".to_string(), timeouts),
                ]),
                generator_cpu_pct: 35.0,
            }
        })
        .collect();
    let requests = overall.len();
    let errors: u64 = step_results.iter().map(|s| s.errors).sum();
    Results {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "peakload".into(),
            version: "0.1.0".into(),
        },
        scenario: ScenarioInfo {
            name: "black-friday".into(),
            file: "scenarios/black-friday.toml".into(),
            target: "http://127.0.0.1:8080".into(),
            model: "open".into(),
        },
        started_at: "2026-11-27T08:00:00.000Z".into(),
        ended_at: "2026-11-27T09:00:00.000Z".into(),
        duration_s: seconds as f64,
        status: "completed".into(),
        summary: Summary {
            requests,
            errors,
            error_rate: errors as f64 / requests as f64,
            rps: requests as f64 / seconds as f64,
            iterations: requests / 4,
            failed_iterations: errors,
            checks: requests,
            checks_failed: 3,
            data_received_bytes: requests * 900,
            data_sent_bytes: requests * 200,
            latency_ms: LatencyStats::from_histogram(&overall),
            histogram: encode_histogram(&overall),
        },
        journeys: ["shopper", "browser"]
            .iter()
            .map(|name| JourneyResult {
                name: (*name).into(),
                weight: 1,
                iterations: requests / 8,
                failed_iterations: 2,
                latency_ms: LatencyStats::from_histogram(&overall),
                histogram: encode_histogram(&overall),
            })
            .collect(),
        steps: step_results,
        timeline,
        stages,
        dropped_iterations: 0,
        late_iterations: 4,
        arrivals_queued: 0,
        feeder_exhausted: 0,
        schedule_lag_ms: LagStats {
            p50: 0.1,
            p99: 0.8,
            max: 3.2,
        },
        thresholds,
        errors: BTreeMap::from([
            ("http_5xx".to_string(), errors),
            ("timeout".to_string(), 12),
            ("dns".to_string(), 0),
        ]),
        error_samples: vec![ErrorSample {
            kind: ErrorKind::Http5xx,
            step: "shopper/step-1".into(),
            message: "HTTP 503 <Service Unavailable>".into(),
        }],
        generator: GeneratorHealth {
            threads: 2,
            cpu_s: 900.0,
            cpu_pct: 25.0,
            kept_up: true,
            notes: vec![],
        },
        infra: None,
        capacity: None,
        findings: Vec::new(),
    }
}

pub(crate) fn tiny() -> Results {
    synthetic(20, 2, vec![])
}

fn page(r: &Results, extras: &Extras, baseline: Option<&Results>) -> String {
    render(&Report {
        results: r,
        extras,
        baseline,
    })
}

fn threshold(expr: &str, value: f64, ok: bool) -> ThresholdResult {
    ThresholdResult {
        expr: expr.into(),
        value: Some(value),
        ok,
    }
}

#[test]
fn one_hour_report_stays_under_two_megabytes() {
    let started = std::time::Instant::now();
    let run = synthetic(3600, 10, vec![threshold("http.p99 < 500ms", 212.0, true)]);
    let mut base = synthetic(3600, 10, vec![]);
    base.started_at = "2026-11-20T08:00:00.000Z".into();
    let built = started.elapsed();
    let started = std::time::Instant::now();
    let html = page(&run, &Extras::default(), None);
    let with_baseline = page(&run, &Extras::default(), Some(&base));
    let rendered = started.elapsed();
    eprintln!(
        "one-hour report: {} bytes, {} with a baseline (fixtures {built:?}, both renders {rendered:?})",
        html.len(),
        with_baseline.len()
    );
    if let Some(dir) = std::env::var_os("PEAKLOAD_REPORT_SAMPLES") {
        // For looking at: PEAKLOAD_REPORT_SAMPLES=/tmp/x cargo test one_hour
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("one-hour.html"), &html).unwrap();
        std::fs::write(dir.join("one-hour-baseline.html"), &with_baseline).unwrap();
    }
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
    assert!(
        with_baseline.len() < 2_000_000,
        "{} bytes",
        with_baseline.len()
    );
    // Every time chart was thinned: no polyline carries all 3600 seconds.
    for poly in html.split("<polyline").skip(1) {
        let points = poly
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(points.split(' ').count() <= 2 * series::MAX_POINTS);
    }
}

#[test]
fn verdict_comes_first_and_names_the_failure() {
    let r = synthetic(
        30,
        2,
        vec![
            threshold("http.p99 < 50ms", 212.4, false),
            threshold("http.error_rate < 1%", 0.001, true),
        ],
    );
    let html = page(&r, &Extras::default(), None);
    let failed = html.find(">FAILED<").expect("FAILED badge");
    assert!(failed < html.find("<svg").unwrap());
    assert!(html.contains("<title>black-friday — FAILED — peakload report</title>"));
    assert!(html.contains("1 of 2 threshold(s) crossed"));
    assert!(html.contains("✗ FAIL"));
    assert!(html.contains(">212ms<"), "measured value shown");
    assert!(html.contains("&lt; 50ms"), "limit shown");

    let ok = synthetic(30, 2, vec![threshold("http.p99 < 500ms", 212.4, true)]);
    let html = page(&ok, &Extras::default(), None);
    assert!(html.contains(">PASSED<") && !html.contains("FAILED"));
    let none = page(&tiny(), &Extras::default(), None);
    assert!(none.contains(">NO THRESHOLDS<"));
}

#[test]
fn page_is_self_contained_and_escaped() {
    let mut r = tiny();
    r.scenario.name = "<script>alert(1)</script>".into();
    let html = page(&r, &Extras::default(), None);
    assert!(
        !html.contains("<script"),
        "no script at all, and names escaped"
    );
    for fetch in ["src=", "<link", "url(", "@import", "<iframe", "<img"] {
        assert!(!html.contains(fetch), "{fetch} would fetch something");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("HTTP 503 &lt;Service Unavailable&gt;"));
}

#[test]
fn page_has_every_chart_with_data() {
    let html = page(&tiny(), &Extras::default(), None);
    assert_eq!(html.matches("<svg").count(), 6, "4 time charts + 2 spectra");
    for caption in [
        "Throughput",
        "Latency per second",
        "Errors per second, by kind",
        "Active virtual users",
        "All requests",
        "Per step",
    ] {
        assert!(
            html.contains(&format!("<figcaption>{caption}</figcaption>")),
            "{caption}"
        );
    }
    assert!(html.contains("doorbuster spike"), "stages named on charts");
    assert!(html.contains("target arrivals/s"));
    assert!(html.contains("timeout") && html.contains("http_5xx"));
    assert!(html.contains(">\n99.99%\n<"), "spectrum axis");
    assert!(html.contains("shopper/step-0") && html.contains("browser/step-1"));
    assert!(!html.contains("id=\"deltas\""));
    for absent in ["id=\"infra\"", "id=\"findings\"", "id=\"capacity\""] {
        assert!(!html.contains(absent), "{absent} without data");
    }
}

#[test]
fn baseline_is_overlaid_and_compared() {
    let r = tiny();
    let mut b = tiny();
    for s in &mut b.steps {
        s.latency_ms.p99 *= 2.0; // the baseline was slower: this run is better
        s.latency_ms.p50 *= 0.5; // and faster at the median: this run is worse
    }
    b.steps[1].name = "renamed".into();
    let html = page(&r, &Extras::default(), Some(&b));
    assert!(html.contains("id=\"deltas\""));
    assert!(html.contains("requests/s (baseline)"));
    assert!(html.contains("all requests (baseline)"));
    assert!(
        html.contains("<span class=\"better\">-50.0%</span>"),
        "p99 better"
    );
    assert!(
        html.contains("<span class=\"worse\">+100.0%</span>"),
        "p50 worse"
    );
    assert!(html.contains("not in the baseline"));
    assert!(html.contains("only in the baseline"));
    // Baseline polylines are drawn lighter.
    assert!(html.contains("opacity=\"0.55\""));
}

#[test]
fn diagnosis_sections_appear_when_present() {
    let r = tiny();
    let doc = json!({
        "infra": {
            "series": [{"source": "scrape", "name": "db_pool_in_use", "unit": "conns",
                        "points": (0..20).map(|t| json!([t, t % 5])).collect::<Vec<_>>()}],
            "events": [{"source": "ecs", "name": "scale out 2→4", "start": 12, "end": 18,
                        "status": "Successful"}]
        },
        "findings": [{"kind": "db_pool_saturation", "signal": "db_pool_in_use", "score": 0.9,
                      "summary": "pool exhausted"}],
        "capacity": {"max_sustained_rps": 180.5, "at_s": 11}
    });
    let extras = Extras::from_document(&doc);
    let html = page(&r, &extras, None);
    for id in ["infra", "findings", "capacity"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("scrape: db_pool_in_use"));
    assert!(html.contains("scale out 2→4"));
    assert!(html.contains("max_sustained_rps"));
    assert_eq!(html.matches("<svg").count(), 7);
}

#[test]
fn load_rejects_missing_bad_and_newer_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let e = load(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with("cannot read") && e.contains("nope.json"),
        "{e}"
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"summary\": 3}").unwrap();
    let e = load(&bad).unwrap_err().to_string();
    assert!(e.contains("is not a peakload results file"), "{e}");
    let mut doc = serde_json::to_value(tiny()).unwrap();
    doc["schema_version"] = json!(SCHEMA_VERSION + 1);
    let newer = dir.path().join("newer.json");
    std::fs::write(&newer, doc.to_string()).unwrap();
    let e = load(&newer).unwrap_err().to_string();
    assert!(e.contains("schema version"), "{e}");
    doc["schema_version"] = json!(SCHEMA_VERSION);
    doc["findings"] = json!([]);
    let ok = dir.path().join("ok.json");
    std::fs::write(&ok, doc.to_string()).unwrap();
    let loaded = load(&ok).unwrap();
    assert_eq!(loaded.results.steps.len(), 2);
    assert_eq!(loaded.results.timeline.len(), 20);
    assert_eq!(loaded.extras.findings, Some(json!([])));
}
