//! Tests of the whole page, on synthetic results (the browser test is `tests/report.rs`).

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::record::findings::{Capacity, Finding, Kind, Window};
use crate::record::infra::{Event, Infra, Series};
use crate::record::results::{
    encode_histogram, GeneratorHealth, IntervalLatency, JourneyResult, LagStats, LatencyStats,
    ScenarioInfo, StageInfo, Summary, ThresholdResult, TimelinePoint, Tool, SCHEMA_VERSION,
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
            traces: Default::default(),
            timing: None,
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
            data_received_decoded_bytes: requests * 900,
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
        interrupted_iterations: 0,
        retried_requests: 0,
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
        diagnosis_notes: Vec::new(),
        regression: None,
        shard: None,
        merged: None,
        part: None,
    }
}

pub(crate) fn tiny() -> Results {
    synthetic(20, 2, vec![])
}

/// `r` as a diagnosed run's results hold it: `signals` scraped series over its duration (one of
/// them, the pool wait, rising at a third of the run, the CPU following a little later), two
/// scaling activities (one starting before the run, one still in progress at its end), a log
/// line, and — when `degraded` — findings naming the pool and the late scaling, with the
/// capacity reached.
pub(crate) fn diagnosed(mut r: Results, signals: usize, degraded: bool) -> Results {
    let seconds = r.duration_s as u32;
    let mut rng = fastrand::Rng::with_seed(11);
    let turn = seconds as f64 / 3.0;
    let names = [
        ("http_requests_total:rate", "per_second"),
        ("process_cpu_seconds_total:rate", "seconds_per_second"),
        ("process_resident_memory_bytes", "bytes"),
        ("cache_requests_total:rate", "per_second"),
        ("http_request_duration_seconds:p95", "seconds"),
        ("worker_messages_processed_total:rate", "per_second"),
        ("queue_oldest_message_age_seconds", "seconds"),
        ("cache_hit_ratio", "ratio"),
    ];
    let scraped = |name: &str, unit: &str, dim: (&str, String), points| Series {
        source: "scrape:stack".into(),
        name: name.into(),
        unit: unit.into(),
        dimensions: BTreeMap::from([(dim.0.to_string(), dim.1)]),
        span_s: None,
        points,
    };
    let pool_wait = (0..seconds)
        .map(|t| {
            let up = degraded && t as f64 >= turn;
            (t as f64, if up { 0.35 } else { 0.002 } + rng.f64() * 0.001)
        })
        .collect();
    let mut series = vec![scraped(
        "db_pool_acquire_wait_seconds:mean",
        "seconds",
        ("pool", "main".into()),
        pool_wait,
    )];
    for i in 1..signals {
        let (name, unit) = names[i % names.len()];
        let level = 1.0 + (i * 37 % 100) as f64;
        let follows = i == 1 && degraded;
        let points = (0..seconds)
            .map(|t| {
                let lift = if follows && t as f64 >= turn + 2.0 {
                    3.0
                } else {
                    1.0
                };
                (t as f64, level * lift * (0.9 + rng.f64() * 0.2))
            })
            .collect();
        series.push(scraped(
            name,
            unit,
            ("instance", format!("app-{i}")),
            points,
        ));
    }
    let event =
        |source: &str, name: &str, start: f64, end: Option<f64>, cause: &str, status: &str| Event {
            source: source.into(),
            name: name.into(),
            start,
            end,
            cause: cause.into(),
            status: status.into(),
            dimensions: BTreeMap::new(),
        };
    let scaling = "application-autoscaling";
    r.infra = Some(Infra {
        series,
        events: vec![
            event(
                scaling,
                "Setting desired count to 3.",
                -40.0,
                Some(5.0),
                "scheduled",
                "Successful",
            ),
            event(
                scaling,
                "Setting desired count to 6.",
                turn + 4.0,
                Some(turn + seconds as f64 / 6.0),
                "monitor alarm CPU high in state ALARM triggered policy scale-out",
                "Successful",
            ),
            event(
                scaling,
                "Setting desired count to 8.",
                seconds as f64 - 3.0,
                None,
                "alarm",
                "InProgress",
            ),
            event(
                "logs",
                "log",
                turn + 1.0,
                None,
                "ERROR pool timeout",
                "error",
            ),
        ],
        notes: Vec::new(),
    });
    r.capacity = Some(Capacity {
        max_sustained_rps: 198.0,
        at_s: turn - 5.0,
        reached: false,
        limited_by: None,
        degraded_at_s: None,
        knee_rps: None,
        latency_ms_before: 80.0,
        latency_ms_during: None,
    });
    if degraded {
        let end = seconds as f64 * 0.75;
        r.capacity = Some(Capacity {
            max_sustained_rps: 198.0,
            at_s: turn - 5.0,
            reached: true,
            limited_by: Some("latency".into()),
            degraded_at_s: Some(turn + 1.0),
            knee_rps: None,
            latency_ms_before: 80.0,
            latency_ms_during: Some(400.0),
        });
        let evidence =
            |figures: &[(&str, f64)]| figures.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        r.findings = vec![
            Finding {
                kind: Kind::DbPoolSaturation,
                signal: "db_pool_acquire_wait_seconds:mean{pool=\"main\"}".into(),
                score: 0.87,
                window: Window { start_s: turn, end_s: end },
                evidence: evidence(&[
                    ("baseline", 0.002),
                    ("during", 0.35),
                    ("z", 41.2),
                    ("lead_s", 1.0),
                    ("correlation", 0.93),
                    ("load_correlation", 0.2),
                    ("changed_at_s", turn),
                ]),
                lines: Vec::new(),
                summary: "db_pool_acquire_wait_seconds:mean{pool=\"main\"} rose from 2.0 ms to 350.0 ms: requests are waiting for a database connection.".into(),
                explained_by: None,
                runner_up: None,
            },
            Finding {
                kind: Kind::ScalingLag,
                signal: "application-autoscaling:Setting desired count to 6.".into(),
                score: 0.41,
                window: Window {
                    start_s: turn + 1.0,
                    end_s: turn + seconds as f64 / 6.0,
                },
                evidence: evidence(&[
                    ("started_s", turn + 4.0),
                    ("in_service_after_breach_s", seconds as f64 / 6.0 - 1.0),
                ]),
                lines: vec![
                    "monitor alarm CPU high in state ALARM triggered policy scale-out".into(),
                ],
                summary: "New capacity came into service late: scale earlier.".into(),
                explained_by: None,
                runner_up: None,
            },
        ];
    }
    r
}

/// A finding with no figures or lines.
fn finding(kind: Kind, signal: &str, score: f64, window: (f64, f64), summary: &str) -> Finding {
    Finding {
        kind,
        signal: signal.into(),
        score,
        window: Window {
            start_s: window.0,
            end_s: window.1,
        },
        evidence: BTreeMap::new(),
        lines: Vec::new(),
        summary: summary.into(),
        explained_by: None,
        runner_up: None,
    }
}

/// A series with no source or dimensions.
fn bare_series(name: &str, unit: &str, points: Vec<(f64, f64)>) -> Series {
    Series {
        source: String::new(),
        name: name.into(),
        unit: unit.into(),
        dimensions: BTreeMap::new(),
        span_s: None,
        points,
    }
}

fn page(r: &Results, baseline: Option<&Results>) -> String {
    render(&Report {
        results: r,
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
    let html = page(&run, None);
    let with_baseline = page(&run, Some(&base));
    let diagnosed = page(&diagnosed(run.clone(), 48, true), None);
    let rendered = started.elapsed();
    eprintln!(
        "one-hour report: {} bytes, {} with a baseline, {} diagnosed with 48 signals \
         (fixtures {built:?}, renders {rendered:?})",
        html.len(),
        with_baseline.len(),
        diagnosed.len()
    );
    if let Some(dir) = std::env::var_os("PEAKLOAD_REPORT_SAMPLES") {
        // For looking at: PEAKLOAD_REPORT_SAMPLES=/tmp/x cargo test one_hour
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("one-hour.html"), &html).unwrap();
        std::fs::write(dir.join("one-hour-baseline.html"), &with_baseline).unwrap();
        std::fs::write(dir.join("one-hour-diagnosed.html"), &diagnosed).unwrap();
    }
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
    // 48 signals as a chart each came to ~455 KB; as table rows with sparklines, ~225 KB.
    assert!(diagnosed.len() < 300_000, "{} bytes", diagnosed.len());
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
    let html = page(&r, None);
    let failed = html.find(">FAILED<").expect("FAILED badge");
    assert!(failed < html.find("<svg").unwrap());
    assert!(html.contains("<title>black-friday — FAILED — peakload report</title>"));
    assert!(html.contains("1 of 2 threshold(s) crossed"));
    assert!(html.contains("✗ FAIL"));
    assert!(html.contains(">212ms<"), "measured value shown");
    assert!(html.contains("&lt; 50ms"), "limit shown");

    let ok = synthetic(30, 2, vec![threshold("http.p99 < 500ms", 212.4, true)]);
    let html = page(&ok, None);
    assert!(html.contains(">PASSED<") && !html.contains("FAILED"));
    let none = page(&tiny(), None);
    assert!(none.contains(">NO THRESHOLDS<"));
}

#[test]
fn page_is_self_contained_and_escaped() {
    let mut r = tiny();
    r.scenario.name = "<script>alert(1)</script>".into();
    let html = page(&r, None);
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
    let html = page(&tiny(), None);
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
    let html = page(&r, Some(&b));
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

/// The diagnosis figure of a page: from its `<figure>` to its end.
fn diagnosis_figure(html: &str) -> &str {
    let at = html
        .find("<figure class=\"diagnosis\">")
        .expect("a diagnosis figure");
    let len = html[at..].find("</figure>").expect("figure closed");
    &html[at..at + len]
}

/// Point counts of the polylines with more than two points (the data series).
fn data_polylines(svg: &str) -> Vec<usize> {
    svg.split("<polyline")
        .skip(1)
        .filter_map(|p| {
            let points = p.split("points=\"").nth(1)?.split('"').next()?;
            let n = points.split(' ').filter(|p| !p.is_empty()).count();
            (n > 2).then_some(n)
        })
        .collect()
}

#[test]
fn diagnosis_charts_latency_against_the_findings_signal_with_scaling_marked() {
    let r = diagnosed(synthetic(120, 2, vec![]), 48, true);
    let html = page(&r, None);
    let diagnosis = html.find("id=\"diagnosis\"").expect("diagnosis section");
    assert!(
        diagnosis < html.find("id=\"time\"").unwrap(),
        "near the top"
    );
    assert!(html.contains("<a href=\"#diagnosis\">Diagnosis</a>"));
    assert!(html.contains("The users' latency degraded at 41s; 2 likely cause(s)"));
    let pool = html
        .find("<b>Database connection pool saturated</b>")
        .unwrap();
    let scaling = html.find("<b>Scaling came late</b>").unwrap();
    assert!(pool < scaling, "best first");
    assert!(html.contains("score 0.87") && html.contains("40s – 1:30"));
    assert!(
        html.contains("<i>led the users by</i> 1 s"),
        "evidence in words"
    );
    assert!(
        html.contains("Sustained 198.0 requests/s (from 35s) before latency turned at 41s: latency 80.0 ms → 400.0 ms."),
        "capacity in a sentence"
    );

    let fig = diagnosis_figure(&html);
    assert_eq!(fig.matches("<svg").count(), 1, "one stacked chart");
    // Latency, the pool wait the finding names, and the CPU that moved most after it.
    let lines = data_polylines(fig);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|&n| n >= 100), "{lines:?}");
    for text in [
        "users&#39; p99 latency per second (ms)",
        "scrape:stack: db_pool_acquire_wait_seconds:mean (pool=main) (ms)",
        "#1 db_pool_saturation · db_pool_acquire_wait_seconds:mean{pool=",
        "moved most · process_cpu_seconds_total:rate{instance=",
        "% of a core",
        "desired 6 · Successful",
        "desired 3 · Successful",
        "desired 8 · InProgress",
        "degraded window",
    ] {
        assert!(
            fig.contains(text),
            "{text} missing from the diagnosis figure"
        );
    }
    // Scaling activities are drawn as spans: the one still in progress runs to the edge.
    assert!(fig.contains("fill=\"#C83CA0\""), "span shading");
    assert!(
        !fig.contains("ERROR pool timeout"),
        "log lines are not marked"
    );

    // The 48 signals are a table with sparklines, not 48 charts.
    let charts = html.matches("<svg").count() - html.matches("<svg class=\"spark\"").count();
    assert_eq!(charts, 7, "6 time charts and spectra + the diagnosis");
    assert_eq!(html.matches("<svg class=\"spark\"").count(), 48);
    assert!(html.contains("36 more signal(s)"));
    let infra = html.find("id=\"infra\"").unwrap();
    let first_row = &html[infra..];
    let pool_row = first_row.find("db_pool_acquire_wait_seconds").unwrap();
    assert!(
        pool_row < first_row.find("cache_requests_total").unwrap(),
        "most moved first"
    );
    assert!(html.contains("350 ms"), "in the signal's unit");
}

#[test]
fn a_healthy_run_says_no_cause_and_still_charts_what_moved() {
    let r = diagnosed(synthetic(120, 2, vec![]), 10, false);
    let html = page(&r, None);
    assert!(
        html.contains("<b>No cause found</b>: the users&#39; latency and errors stayed")
            || html.contains("<b>No cause found</b>: the users' latency and errors stayed")
    );
    assert!(!html.contains("id=\"findings\""));
    let fig = diagnosis_figure(&html);
    assert_eq!(
        data_polylines(fig).len(),
        4,
        "latency and the 3 that moved most"
    );
    assert!(fig.contains("moved most"));
    assert!(!fig.contains("degraded window"));

    // Degraded with nothing to blame: said as plainly.
    let mut r = r;
    let c = r.capacity.as_mut().unwrap();
    c.reached = true;
    c.limited_by = Some("errors".into());
    c.degraded_at_s = Some(50.0);
    let html = page(&r, None);
    assert!(html.contains("<b>No cause found</b>: the users' errors degraded at 50s, but no observed signal explains it"));
    // With notes from reading the sources (a metric too coarse to show the change), it points
    // at them instead of asking for sources that are there.
    r.infra.get_or_insert_with(Default::default).notes.push(
        "cloudwatch: AWS/ECS/CPUUtilization:Average (2 at 60 s) had fewer than 3 values".into(),
    );
    let html = page(&r, None);
    assert!(
        html.contains("reading the sources left notes") && html.contains("href=\"#infra\""),
        "{}",
        &html[html.find("No cause found").unwrap_or(0)..][..400]
    );
}

#[test]
fn odd_diagnosis_input_is_drawn_or_shown_not_fatal() {
    let mut r = synthetic(30, 2, vec![]);
    let scaling = |start: f64, end: Option<f64>| Event {
        source: "asg".into(),
        name: "scaling".into(),
        start,
        end,
        cause: String::new(),
        status: String::new(),
        dimensions: BTreeMap::new(),
    };
    r.infra = Some(Infra {
        series: vec![
            bare_series("empty", "", vec![]),
            bare_series("one", "", vec![(3.0, 1.0)]),
            bare_series("flat", "bytes", vec![(0.0, 5.0), (10.0, 5.0), (20.0, 5.0)]),
            bare_series(
                "outside",
                "",
                vec![(-100.0, 1.0), (-50.0, 2.0), (500.0, 3.0)],
            ),
            // Figures a run can hold in memory but JSON cannot.
            bare_series(
                "not numbers",
                "",
                vec![(f64::NAN, 1.0), (1.0, f64::INFINITY), (2.0, f64::NAN)],
            ),
        ],
        events: vec![
            scaling(-500.0, Some(-400.0)),
            scaling(900.0, None),
            scaling(10.0, Some(5.0)),
            scaling(f64::NAN, None),
        ],
        notes: Vec::new(),
    });
    r.findings = vec![
        finding(Kind::CpuSaturation, "not observed", 0.5, (25.0, 10.0), ""),
        finding(Kind::ErrorBurst, "errors", f64::NAN, (f64::NAN, 4.0), ""),
        finding(
            Kind::GeneratorLimited,
            "generator",
            f64::NAN,
            (0.0, 30.0),
            "",
        ),
        finding(Kind::MemoryPressure, "one", 0.1, (0.0, 1e300), ""),
    ];
    let html = page(&r, None);
    let fig = diagnosis_figure(&html);
    assert!(fig.contains("<svg"), "{fig}");
    assert!(!fig.contains("NaN") && !fig.contains("inf\""));
    assert!(
        !html.contains("NaN"),
        "a score that is not a number is not shown"
    );
    assert!(fig.contains("users' error rate") || fig.contains("users&#39; error rate"));
    assert!(fig.contains("load generator CPU"));
    assert!(html.contains("2 event(s) fell outside the run"));

    // Findings with no infrastructure signal: latency is still charted.
    let mut r = synthetic(30, 2, vec![]);
    r.findings = vec![finding(
        Kind::Throttling,
        "<not observed>",
        0.4,
        (2.0, 6.0),
        "",
    )];
    let html = page(&r, None);
    assert!(html.contains("&lt;not observed&gt;"));
    assert!(html.contains("users' p99 latency") || html.contains("users&#39; p99 latency"));

    // A run with no timeline at all.
    let mut empty = synthetic(30, 2, vec![]);
    empty.timeline.clear();
    let html = page(&diagnosed(empty, 3, true), None);
    assert!(html.contains("id=\"diagnosis\""));
}

#[test]
fn every_kind_of_finding_is_named_in_words() {
    let mut r = tiny();
    r.findings = Kind::ALL
        .iter()
        .map(|&k| finding(k, "errors", 0.5, (1.0, 2.0), ""))
        .collect();
    let html = page(&r, None);
    for k in Kind::ALL {
        assert!(
            html.contains(&format!("<b>{}</b>", escape(k.words()))),
            "{k:?}"
        );
        assert!(html.contains(&format!("<code class=\"kind\">{}</code>", k.as_str())));
    }
}

#[test]
fn diagnosis_sections_appear_when_present() {
    let mut r = tiny();
    r.infra = Some(Infra {
        series: vec![Series {
            source: "scrape".into(),
            ..bare_series(
                "db_pool_in_use",
                "conns",
                (0..20).map(|t| (t as f64, (t % 5) as f64)).collect(),
            )
        }],
        events: vec![Event {
            source: "ecs".into(),
            name: "scale out 2→4".into(),
            start: 12.0,
            end: Some(18.0),
            cause: String::new(),
            status: "Successful".into(),
            dimensions: BTreeMap::new(),
        }],
        notes: Vec::new(),
    });
    r.findings = vec![finding(
        Kind::DbPoolSaturation,
        "db_pool_in_use",
        0.9,
        (3.0, 8.0),
        "pool exhausted",
    )];
    r.capacity = Some(Capacity {
        max_sustained_rps: 180.5,
        at_s: 11.0,
        reached: false,
        limited_by: None,
        degraded_at_s: None,
        knee_rps: None,
        latency_ms_before: 0.0,
        latency_ms_during: None,
    });
    let html = page(&r, None);
    for id in ["diagnosis", "infra", "findings", "capacity"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("scrape: db_pool_in_use"));
    assert!(html.contains("scale out 2→4"));
    assert!(html.contains("max_sustained_rps"));
    assert!(html.contains("<b>Database connection pool saturated</b>"));
    assert!(html.contains("pool exhausted"));
    // 6 charts, the diagnosis, one sparkline.
    assert_eq!(html.matches("<svg").count(), 8);
}

#[test]
fn load_rejects_missing_bad_and_newer_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let e = Results::load(&missing).unwrap_err().to_string();
    assert!(
        e.starts_with("cannot read") && e.contains("nope.json"),
        "{e}"
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"summary\": 3}").unwrap();
    let e = Results::load(&bad).unwrap_err().to_string();
    assert!(e.contains("is not a peakload results file"), "{e}");
    let mut doc = serde_json::to_value(tiny()).unwrap();
    doc["schema_version"] = json!(SCHEMA_VERSION + 1);
    let newer = dir.path().join("newer.json");
    std::fs::write(&newer, doc.to_string()).unwrap();
    let e = Results::load(&newer).unwrap_err().to_string();
    assert!(e.contains("schema version"), "{e}");
    doc["schema_version"] = json!(SCHEMA_VERSION);
    doc["findings"] = json!([]);
    let ok = dir.path().join("ok.json");
    std::fs::write(&ok, doc.to_string()).unwrap();
    let loaded = Results::load(&ok).unwrap();
    assert_eq!(loaded.steps.len(), 2);
    assert_eq!(loaded.timeline.len(), 20);
    assert!(loaded.findings.is_empty());
}

#[test]
fn a_baseline_of_another_scenario_is_called_out() {
    let r = tiny();
    let mut b = tiny();
    assert_eq!(baseline_mismatch(&r, &b), None);
    assert!(!page(&r, Some(&b)).contains("note warn"));
    b.scenario.name = "smoke".into();
    let w = baseline_mismatch(&r, &b).unwrap();
    assert!(
        w.contains("\"smoke\"") && w.contains("different workloads"),
        "{w}"
    );
    let html = page(&r, Some(&b));
    let warn = html.find("note warn").expect("warning shown");
    assert!(warn > html.find("id=\"deltas\"").unwrap());
}

#[test]
fn phases_and_trace_ids_are_listed() {
    let mut r = tiny();
    assert!(
        !page(&r, None).contains("id=\"traces\""),
        "no section without traces"
    );
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    r.steps[0]
        .traces
        .slowest
        .push(crate::record::results::TracedRequest {
            trace_id: id.into(),
            latency_ms: 812.5,
            at_s: 42.0,
            error: None,
        });
    r.steps[0]
        .traces
        .failed
        .push(crate::record::results::TracedRequest {
            trace_id: "00f067aa0ba902b700f067aa0ba902b7".into(),
            latency_ms: 3.0,
            at_s: 7.5,
            error: Some(ErrorKind::Http5xx),
        });
    r.steps[0].timing = Some(crate::record::results::StepTiming {
        responses: 10,
        connections: 2,
        dns_ms: 1.5,
        connect_ms: 0.25,
        tls_ms: 4.0,
        ttfb_ms: 120.0,
        transfer_ms: 3.0,
        http2_responses: 0,
    });
    let html = page(&r, None);
    let phases = html
        .split("id=\"phases\"")
        .nth(1)
        .expect("a phases section");
    assert!(phases.contains("2 of 10"), "{phases}");
    let section = html
        .split("id=\"traces\"")
        .nth(1)
        .expect("a traces section");
    assert!(section.contains(&format!("<code>{id}</code>")));
    assert!(section.contains("slowest") && section.contains("failed"));
    assert!(section.contains("http_5xx"));
}

/// Issue 13: the report shows what the findings weighed — the runner-up and why it lost, a
/// finding that is a consequence of another — and what the diagnosis said beyond its findings.
#[test]
fn the_report_shows_runners_up_consequences_and_diagnosis_notes() {
    let mut r = diagnosed(synthetic(120, 2, vec![]), 8, true);
    r.findings[0].runner_up = Some(crate::record::findings::RunnerUp {
        signal: "worker_messages_processed_total:rate{worker=\"email\"}".into(),
        kind: Some(Kind::QueueBacklog),
        score: 0.21,
        why_not: "it is a consequence of db_operations_in_flight <declared>".into(),
    });
    r.findings[1].explained_by = Some("db_operations_in_flight".into());
    r.diagnosis_notes = vec!["not known: no host signals were collected <yet>".into()];
    let html = page(&r, None);
    assert!(
        html.contains(
            "runner-up <code>worker_messages_processed_total:rate{worker=&quot;email&quot;}</code>"
        ),
        "{html}"
    );
    assert!(html
        .contains("not chosen: it is a consequence of db_operations_in_flight &lt;declared&gt;"));
    assert!(html.contains("a consequence of <code>db_operations_in_flight</code>"));
    assert!(html.contains("<li>not known: no host signals were collected &lt;yet&gt;</li>"));
}
