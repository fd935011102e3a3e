//! The report end to end: real runs of the binary against a small axum server on loopback,
//! then the HTML opened in real headless Chromium (screenshot and rendered DOM), the JUnit XML
//! read by Python's `junitparser`, and `peakload report` rebuilding from results alone.
//!
//! Needs `/usr/bin/chromium` (Debian's `chromium`) and `junitparser` (PyPI); a missing one
//! fails the test with the command that installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_peakload");
const CHROMIUM: &str = "/usr/bin/chromium";

/// Starts the target on 127.0.0.1:0 in its own thread and runtime; returns its port. `/` is
/// instant, `/item/{id}` waits `id % 10` ms and fails with 500 for id 7 (about 1% of requests).
fn start_target() -> u16 {
    use axum::extract::Path as UrlPath;
    use axum::http::StatusCode;
    use axum::routing::get;

    async fn item(UrlPath(id): UrlPath<u32>) -> (StatusCode, &'static str) {
        tokio::time::sleep(Duration::from_millis((id % 10) as u64)).await;
        if id == 7 {
            (StatusCode::INTERNAL_SERVER_ERROR, "planted failure")
        } else {
            (StatusCode::OK, "{\"ok\":true}")
        }
    }

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/", get(|| async { "ok" }))
                .route("/item/{id}", get(item));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("target started")
}

fn scenario(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "report-e2e"
base_url = "http://127.0.0.1:{port}"
timeout = "2s"
thresholds = ["http.error_rate < 10%", "http.p99 < 2s"]

[load]
start_rps = 20
max_vus = 50
stages = [
  {{ duration = "1500ms", target_rps = 60, name = "ramp" }},
  {{ duration = "1500ms", target_rps = 60, name = "steady" }},
]

[[journey]]
name = "browse"

  [[journey.step]]
  name = "home"
  path = "/"
  check = {{ status = 200 }}

  [[journey.step]]
  name = "item"
  path = "/item/{{{{random_int 1 50}}}}"
"#
        ),
    )
    .unwrap();
    path
}

/// A run of several short stages (their names must not collide on the charts), long enough
/// for a diagnosis chart to have a shape.
fn staged_scenario(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("staged.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "report-diagnosis"
base_url = "http://127.0.0.1:{port}"
timeout = "2s"

[load]
start_rps = 10
max_vus = 50
stages = [
  {{ duration = "1s", target_rps = 20, name = "warm-up" }},
  {{ duration = "1s", target_rps = 40, name = "ramp to the peak" }},
  {{ duration = "1s", target_rps = 40, name = "doorbuster spike" }},
  {{ duration = "5s", target_rps = 40, name = "steady" }},
]

[[journey]]
name = "browse"

  [[journey.step]]
  name = "home"
  path = "/"

  [[journey.step]]
  name = "item"
  path = "/item/{{{{random_int 1 50}}}}"
"#
        ),
    )
    .unwrap();
    path
}

/// Runs a command to completion within `limit`, killing it past that.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // Our own child, by its id.
            unsafe { libc::kill(id as i32, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Run {
    dir: PathBuf,
    code: i32,
    stdout: String,
}

fn peakload_run(scenario: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .args(["--no-tui", "--threads", "1", "--drain", "1s"])
        .args(extra);
    let o = run_bounded(&mut cmd, Duration::from_secs(60));
    let stdout = text(&o.stdout);
    assert!(
        out.join("results.json").exists(),
        "no results: {stdout}\n{}",
        text(&o.stderr)
    );
    Run {
        dir: out.to_owned(),
        code: o.status.code().unwrap_or(-1),
        stdout,
    }
}

fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install it with `apt-get install -y chromium`"
    );
}

/// What the browser made of a page: its DOM after scripts, and console errors.
struct Rendered {
    dom: String,
    console_errors: Vec<String>,
}

fn render_in_chromium(page: &Path) -> Rendered {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let o = run_bounded(
        Command::new(CHROMIUM)
            .args(chromium_args(profile.path()))
            .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
            .arg(&url),
        Duration::from_secs(90),
    );
    let stderr = text(&o.stderr);
    let console_errors = stderr
        .lines()
        .filter(|l| l.contains("Uncaught") || (l.contains(":CONSOLE") && l.contains("rror")))
        .map(str::to_string)
        .collect();
    Rendered {
        dom: text(&o.stdout),
        console_errors,
    }
}

/// Takes a screenshot; returns its path and the luminance variance and distinct colours of
/// its pixels (a blank page has variance ~0 and one colour).
fn screenshot(page: &Path, png_path: &Path) -> (f64, usize) {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let o = run_bounded(
        Command::new(CHROMIUM)
            .args(chromium_args(profile.path()))
            .args([
                "--hide-scrollbars",
                "--window-size=1280,2200",
                &format!("--screenshot={}", png_path.display()),
            ])
            .arg(&url),
        Duration::from_secs(90),
    );
    assert!(
        png_path.exists(),
        "no screenshot: {}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    assert!(info.width >= 1000 && info.height >= 1000, "{info:?}");
    let mut colours = std::collections::HashSet::new();
    let (mut sum, mut sum_sq, mut n) = (0.0, 0.0, 0.0);
    for px in bytes.chunks_exact(channels) {
        let (r, g, b) = (px[0] as f64, px[1] as f64, px[2] as f64);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        sum += y;
        sum_sq += y * y;
        n += 1.0;
        if colours.len() < 10_000 {
            colours.insert((px[0], px[1], px[2]));
        }
    }
    let mean = sum / n;
    (sum_sq / n - mean * mean, colours.len())
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
    let r = render_in_chromium(report);
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

fn require_junitparser() {
    let ok = Command::new("python3")
        .args(["-c", "import junitparser"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "Python's junitparser is missing: install it with `pip install junitparser`"
    );
}

/// Reads a JUnit file with junitparser; returns one line per test case:
/// `suite|case|passed|message`.
fn junit_cases(path: &Path) -> Vec<String> {
    let script = r#"
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    print(f"suite|{suite.name}|{suite.tests}|{suite.failures}")
    for case in suite:
        failures = [r for r in case.result if isinstance(r, Failure)]
        msg = failures[0].message if failures else ""
        print(f"case|{case.name}|{case.is_passed}|{msg}")
"#;
    let o = run_bounded(
        Command::new("python3").args(["-c", script]).arg(path),
        Duration::from_secs(30),
    );
    assert!(
        o.status.success(),
        "junitparser could not read {}: {}",
        path.display(),
        text(&o.stderr)
    );
    text(&o.stdout).lines().map(str::to_string).collect()
}

#[test]
fn console_errors_are_caught() {
    // The detector itself, on a page that throws: a check that never fires proves nothing.
    require_chromium();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>x</p><script>throw new Error('boom')</script></body></html>",
    )
    .unwrap();
    let r = render_in_chromium(&page);
    assert!(
        r.console_errors.iter().any(|l| l.contains("boom")),
        "{:?}",
        r.console_errors
    );
}

#[test]
fn reports_from_real_runs_render_in_chromium() {
    require_chromium();
    require_junitparser();
    let started = Instant::now();
    let port = start_target();
    let work = tempfile::tempdir().unwrap();
    let scenario = scenario(work.path(), port);

    // A run whose thresholds hold.
    let junit_ok = work.path().join("ci/junit-ok.xml");
    let summary = work.path().join("ci/summary.md");
    let ok = peakload_run(
        &scenario,
        &work.path().join("ok"),
        &[
            "--junit",
            junit_ok.to_str().unwrap(),
            "--summary-md",
            summary.to_str().unwrap(),
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert!(ok.stdout.contains("report: "), "{}", ok.stdout);
    let report_ok = ok.dir.join("report.html");
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
    let junit_failed = work.path().join("ci/junit-failed.xml");
    let failed = peakload_run(
        &scenario,
        &work.path().join("failed"),
        &[
            "--threshold",
            "http.rps > 1000000",
            "--junit",
            junit_failed.to_str().unwrap(),
        ],
    );
    assert_eq!(failed.code, 1, "thresholds crossed: {}", failed.stdout);
    let report_failed = failed.dir.join("report.html");

    let shots = std::env::var_os("PEAKLOAD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| work.path().to_owned());
    std::fs::create_dir_all(&shots).unwrap();
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
    let rebuilt = work.path().join("compare/report.html");
    let o = run_bounded(
        Command::new(BIN)
            .arg("report")
            .arg(failed.dir.join("results.json"))
            .arg("-o")
            .arg(&rebuilt)
            .arg("--baseline")
            .arg(ok.dir.join("results.json")),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let html = std::fs::read_to_string(&rebuilt).unwrap();
    assert!(html.contains(">FAILED<") && html.contains("id=\"deltas\""));
    assert!(html.contains("requests/s (baseline)"));
    check_rendered_report(&rebuilt, &shots.join("report-baseline.png"), "FAILED");

    // Bad inputs: exit 2 with a clear message.
    let o = run_bounded(
        Command::new(BIN)
            .arg("report")
            .arg(work.path().join("missing.json")),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("cannot read"),
        "{}",
        text(&o.stderr)
    );
    let junk = work.path().join("junk.json");
    std::fs::write(&junk, "{\"not\": \"results\"}").unwrap();
    let o = run_bounded(
        Command::new(BIN).arg("report").arg(&junk),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("is not a peakload results file"),
        "{}",
        text(&o.stderr)
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
    let port = start_target();
    let work = tempfile::tempdir().unwrap();
    let run = peakload_run(
        &staged_scenario(work.path(), port),
        &work.path().join("staged"),
        &[],
    );
    let results_path = run.dir.join("results.json");
    let mut results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results_path).unwrap()).unwrap();
    assert!(
        results["timeline"].as_array().unwrap().len() >= 6,
        "an 8 s run: {}",
        results["timeline"]
    );
    add_diagnosis(&mut results, 4.0);
    let diagnosed = work.path().join("diagnosed.json");
    std::fs::write(&diagnosed, results.to_string()).unwrap();
    let page = work.path().join("diagnosed.html");
    let o = run_bounded(
        Command::new(BIN)
            .arg("report")
            .arg(&diagnosed)
            .arg("-o")
            .arg(&page),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    let r = render_in_chromium(&page);
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

    let shots = std::env::var_os("PEAKLOAD_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| work.path().to_owned());
    std::fs::create_dir_all(&shots).unwrap();
    check_rendered_report(&page, &shots.join("report-diagnosis.png"), "NO THRESHOLDS");
}
