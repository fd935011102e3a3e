//! The report end to end: real runs of the binary against a small axum server on loopback,
//! then the HTML opened in real headless Chromium (screenshot and rendered DOM), the JUnit XML
//! read by Python's `junitparser`, and `peakload report` rebuilding from results alone.
//!
//! Needs `/usr/bin/chromium` (Debian's `chromium`) and `junitparser` (PyPI); a missing one
//! fails the test with the command that installs it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::chromium::{render, require_chromium, screenshot};
use crate::util::python::{junit_cases, require};
use crate::util::{
    peakload, run_within, screenshots_dir, shared_cpu, spawn, Case, Journey, Outcome, Scenario,
    Step, TestServer,
};

/// Two steps against the harness server: `home` instant, `item` waiting up to 9 ms and
/// failing for one id in fifty (the server's planted failure).
fn browse() -> Journey {
    Journey::new("browse")
        .step(Step::get("home", "/work").check("{ status = 200 }"))
        .step(Step::get("item", "/item/{{random_int 1 50}}"))
}

fn report_scenario(server: &TestServer) -> Scenario {
    Scenario::new("report-e2e")
        .base_url(server.url())
        .timeout("2s")
        .thresholds(&["http.error_rate < 10%", "http.p99 < 2s"])
        .stages(20, 50, &[("1500ms", 60, "ramp"), ("1500ms", 60, "steady")])
        .journey(browse())
}

/// A run of several short stages (their names must not collide on the charts), long enough
/// for a diagnosis chart to have a shape.
fn staged_scenario(server: &TestServer) -> Scenario {
    Scenario::new("report-diagnosis")
        .base_url(server.url())
        .timeout("2s")
        .stages(
            10,
            50,
            &[
                ("1s", 20, "warm-up"),
                ("1s", 40, "ramp to the peak"),
                ("1s", 40, "doorbuster spike"),
                ("5s", 40, "steady"),
            ],
        )
        .journey(
            Journey::new("browse")
                .step(Step::get("home", "/work"))
                .step(Step::get("item", "/item/{{random_int 1 50}}")),
        )
}

/// `peakload run` of `case` into `out` on one thread with a short drain; fails unless it wrote
/// results.
fn peakload_run(case: &Case, out: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = case.run_command(out);
    cmd.args(["--no-tui", "--threads", "1", "--drain", "1s"])
        .args(extra);
    let o = spawn(cmd).writing_to(out.to_owned()).finish();
    assert!(
        o.results_path().exists(),
        "no results: {}\n{}",
        o.stdout,
        o.stderr
    );
    o
}

/// `peakload report <args>`, within 30 s.
fn peakload_report(args: &[&std::ffi::OsStr]) -> Outcome {
    let mut cmd = peakload();
    cmd.arg("report").args(args);
    run_within(cmd, Duration::from_secs(30))
}

/// Point counts of the polylines in a DOM that carry data (more than two points).
fn data_polylines(dom: &str) -> Vec<usize> {
    dom.split("<polyline")
        .skip(1)
        .filter_map(|p| {
            let points = p.split("points=\"").nth(1)?.split('"').next()?;
            let n = points.split_whitespace().count();
            (n > 2).then_some(n)
        })
        .collect()
}

fn check_rendered_report(report: &Path, shot: &Path, verdict: &str) {
    let r = render(report);
    assert!(
        r.console_errors.is_empty(),
        "console errors in {}: {:#?}",
        report.display(),
        r.console_errors
    );
    assert!(
        r.dom.contains("<svg"),
        "DOM: {}",
        &r.dom[..r.dom.len().min(500)]
    );
    // 4 time charts and 2 spectra (two steps), each drawn by the browser.
    assert!(r.dom.matches("<svg").count() >= 6, "svg count");
    let polylines = data_polylines(&r.dom);
    assert!(
        polylines.len() >= 8,
        "data series drawn: {polylines:?} in {}",
        report.display()
    );
    assert!(
        polylines.iter().any(|&n| n >= 20),
        "a series with many points: {polylines:?}"
    );
    let badge = r.dom.find("class=\"badge\"").expect("verdict badge");
    let first_chart = r.dom.find("<svg").unwrap();
    assert!(badge < first_chart, "the verdict comes before the charts");
    assert!(
        r.dom[badge..first_chart].contains(&format!(">{verdict}<")),
        "verdict {verdict} at the top of {}",
        report.display()
    );
    for caption in [
        "Throughput",
        "Latency per second",
        "Errors per second, by kind",
        "Active virtual users",
        "All requests",
        "Per step",
    ] {
        assert!(r.dom.contains(caption), "{caption}");
    }
    let (variance, colours) = screenshot(report, shot);
    assert!(
        variance > 100.0 && colours > 50,
        "screenshot looks blank: variance {variance:.1}, {colours} colours ({})",
        shot.display()
    );
}

#[test]
fn console_errors_are_caught() {
    // The detector itself, on a page that throws: a check that never fires proves nothing.
    require_chromium();
    let _cpu = shared_cpu();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p><script>throw new Error('boom')</script></body></html>",
    )
    .unwrap();
    let r = render(&page);
    assert!(
        r.console_errors.iter().any(|l| l.contains("boom")),
        "{:?}",
        r.console_errors
    );
}

#[test]
fn reports_from_real_runs_render_in_chromium() {
    require_chromium();
    require(&["junitparser"]);
    let _cpu = shared_cpu();
    let started = Instant::now();
    let server = TestServer::start();
    let case = Case::new(report_scenario(&server));
    let work = case.dir();

    // A run whose thresholds hold.
    let junit_ok = work.join("ci/junit-ok.xml");
    let summary = work.join("ci/summary.md");
    let ok = peakload_run(
        &case,
        &work.join("ok"),
        &[
            "--junit",
            junit_ok.to_str().unwrap(),
            "--summary-md",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert!(ok.stdout.contains("report: "), "{}", ok.stdout);
    let report_ok = ok.out.join("report.html");
    let html = std::fs::read_to_string(&report_ok).unwrap();
    assert!(html.len() < 2_000_000);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("## ✅ peakload: report-e2e — PASSED"),
        "{md}"
    );
    assert!(
        md.contains("| browse/home |") && md.contains("| browse/item |"),
        "{md}"
    );

    // A run with one threshold it cannot meet.
    let junit_failed = work.join("ci/junit-failed.xml");
    let failed = peakload_run(
        &case,
        &work.join("failed"),
        &[
            "--threshold",
            "http.rps > 1000000",
            "--junit",
            junit_failed.to_str().unwrap(),
        ],
    );
    assert_eq!(failed.code, 1, "thresholds crossed: {}", failed.stdout);
    let report_failed = failed.out.join("report.html");

    let shots = screenshots_dir(work);
    check_rendered_report(&report_ok, &shots.join("report-passed.png"), "PASSED");
    check_rendered_report(&report_failed, &shots.join("report-failed.png"), "FAILED");
    let failed_html = std::fs::read_to_string(&report_failed).unwrap();
    assert!(
        failed_html.contains("http.rps"),
        "the crossed threshold is named"
    );

    // JUnit, as CI tools read it.
    let cases = junit_cases(&junit_ok);
    assert_eq!(cases[0], "suite|thresholds|2|0", "{cases:?}");
    assert!(
        cases.iter().skip(1).all(|c| c.contains("|True|")),
        "{cases:?}"
    );
    let cases = junit_cases(&junit_failed);
    assert_eq!(cases[0], "suite|thresholds|3|1", "{cases:?}");
    let failing: Vec<_> = cases.iter().filter(|c| c.contains("|False|")).collect();
    assert_eq!(failing.len(), 1, "{cases:?}");
    assert!(failing[0].starts_with("case|http.rps > 1000000|False|http.rps: measured "));
    assert!(
        failing[0].ends_with("/s, limit > 1000000"),
        "{}",
        failing[0]
    );

    // `peakload report` rebuilds from results alone, here compared with the passing run.
    let rebuilt = work.join("compare/report.html");
    let o = peakload_report(&[
        failed.results_path().as_os_str(),
        "-o".as_ref(),
        rebuilt.as_os_str(),
        "--baseline".as_ref(),
        ok.results_path().as_os_str(),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let html = std::fs::read_to_string(&rebuilt).unwrap();
    assert!(html.contains(">FAILED<") && html.contains("id=\"deltas\""));
    assert!(html.contains("requests/s (baseline)"));
    check_rendered_report(&rebuilt, &shots.join("report-baseline.png"), "FAILED");

    // Bad inputs: exit 2 with a clear message.
    let o = peakload_report(&[work.join("missing.json").as_os_str()]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("cannot read"), "{}", o.stderr);
    let junk = work.join("junk.json");
    std::fs::write(&junk, "{\"not\": \"results\"}").unwrap();
    let o = peakload_report(&[junk.as_os_str()]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("is not a peakload results file"),
        "{}",
        o.stderr
    );
    eprintln!("end to end in {:?}", started.elapsed());
}

/// Adds what a diagnosis of `results` would hold: a database pool wait that rose at `turn`, a
/// dozen quiet signals, two scaling activities (one still going at the end), a log line, the
/// findings naming the pool and the late scaling, and the capacity reached.
fn add_diagnosis(results: &mut serde_json::Value, turn: f64) {
    use serde_json::json;
    let seconds = results["timeline"].as_array().unwrap().len().max(2) as f64;
    let points = |f: &dyn Fn(f64) -> f64| -> Vec<serde_json::Value> {
        (0..(seconds * 4.0) as u32)
            .map(|i| {
                let t = f64::from(i) / 4.0;
                json!([t, f(t)])
            })
            .collect()
    };
    let mut series = vec![json!({
        "source": "scrape:stack", "name": "db_pool_acquire_wait_seconds:mean", "unit": "seconds",
        "dimensions": {"pool": "main"},
        "points": points(&|t| if t >= turn { 0.25 } else { 0.002 + (t * 7.0).sin().abs() * 0.001 })
    })];
    for i in 0..12 {
        series.push(json!({
            "source": "scrape:stack", "name": format!("quiet_gauge_{i}"), "unit": "count",
            "points": points(&|t| 10.0 + i as f64 + ((t * 3.0 + i as f64).sin() * 0.2))
        }));
    }
    results["infra"] = json!({
        "series": series,
        "events": [
            {"source": "application-autoscaling", "name": "Setting desired count to 4.",
             "start": turn + 1.0, "end": turn + 3.0, "cause": "alarm CPU high", "status": "Successful"},
            {"source": "application-autoscaling", "name": "Setting desired count to 6.",
             "start": seconds - 1.0, "cause": "alarm CPU high", "status": "InProgress"},
            {"source": "logs", "name": "log", "start": turn + 0.5, "cause": "ERROR pool timeout",
             "status": "error"}
        ]
    });
    results["findings"] = json!([
        {"kind": "db_pool_saturation", "signal": "db_pool_acquire_wait_seconds:mean{pool=\"main\"}",
         "score": 0.82, "window": {"start_s": turn, "end_s": seconds},
         "evidence": {"baseline": 0.002, "during": 0.25, "z": 30.0, "lead_s": 1.0},
         "summary": "The pool wait rose from 2 ms to 250 ms: requests are waiting for a database connection."},
        {"kind": "scaling_lag", "signal": "application-autoscaling:Setting desired count to 4.",
         "score": 0.4, "window": {"start_s": turn, "end_s": turn + 3.0},
         "evidence": {"in_service_after_breach_s": 3.0},
         "summary": "New capacity came into service 3s after latency rose: scale earlier."}
    ]);
    results["capacity"] = json!({"max_sustained_rps": 40.0, "at_s": turn - 1.0, "reached": true,
        "limited_by": "latency", "degraded_at_s": turn, "latency_ms_before": 9.0});
}

#[test]
fn a_diagnosed_report_renders_its_diagnosis_chart_in_chromium() {
    require_chromium();
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(staged_scenario(&server));
    let work = case.dir();
    let run = peakload_run(&case, &work.join("staged"), &[]);
    let results_path = run.results_path();
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results_path).unwrap()).unwrap();
    assert!(
        results["timeline"].as_array().unwrap().len() >= 6,
        "an 8 s run: {}",
        results["timeline"]
    );
    add_diagnosis(&mut results, 4.0);
    let diagnosed = work.join("diagnosed.json");
    std::fs::write(&diagnosed, results.to_string()).unwrap();
    let page = work.join("diagnosed.html");
    let o = peakload_report(&[diagnosed.as_os_str(), "-o".as_ref(), page.as_os_str()]);
    assert_eq!(o.code, 0, "{}", o.stderr);

    let r = render(&page);
    assert!(r.console_errors.is_empty(), "{:#?}", r.console_errors);
    let at = r.dom.find("id=\"diagnosis\"").expect("a diagnosis section");
    assert!(
        at < r.dom.find("id=\"time\"").unwrap(),
        "before the time charts"
    );
    let fig_at = r.dom[at..].find("<figure").unwrap() + at;
    let fig = &r.dom[fig_at..fig_at + r.dom[fig_at..].find("</figure>").unwrap()];
    assert_eq!(fig.matches("<svg").count(), 1, "one stacked chart");
    let series = data_polylines(fig);
    assert_eq!(series.len(), 2, "latency and the pool wait: {series:?}");
    assert!(series.iter().all(|&n| n >= 6), "{series:?}");
    for label in [
        "p99 latency per second",
        "#1 db_pool_saturation · db_pool_acquire_wait_seconds:mean{pool=",
        "desired 4 · Successful",
        "desired 6 · InProgress",
        "degraded window",
        "doorbuster spike",
    ] {
        assert!(
            fig.contains(label),
            "{label} missing from the diagnosis chart"
        );
    }
    assert!(r.dom.contains("Database connection pool saturated"));
    assert!(r.dom.contains("13 signal(s), the most moved first"));

    let shots = screenshots_dir(work);
    check_rendered_report(&page, &shots.join("report-diagnosis.png"), "NO THRESHOLDS");
}
