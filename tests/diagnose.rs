//! Planted faults, end to end: the real `peakload` binary loads the real reference stack for
//! 20 s at 30 arrivals/s, scraping its `/metrics`; at t≈10 s the test switches one fault on
//! through `POST /admin/faults`, and the diagnosis must name the matching kind first. The same
//! run without a fault must name no cause.
//!
//! The runs share two cores, and a CPU fault in one would slow the others, so they take turns.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const SCENARIO: &str = r#"name = "planted"
base_url = "BASE"
timeout = "3s"

[load]
rps = 30
duration = "20s"
max_vus = 200

[observe]
scrape = ["stack"]

[[journey]]
name = "browse"
weight = 8

  [[journey.step]]
  name = "product"
  path = "/api/products/{{random_int 1 200}}"
  check = { status = 200 }

[[journey]]
name = "notify"
weight = 2

  [[journey.step]]
  name = "notify"
  method = "POST"
  path = "/api/notifications"
  json = { to = "a@example.com", subject = "s", body = "b" }
  extract = { id = { json = "$.id" } }
  check = { status = 202 }
  think = "1500ms"

  # Delivered within 1.5 s when the worker is healthy.
  [[journey.step]]
  name = "status"
  path = "/api/notifications/{{id}}"
  check = { json = { "$.status" = "sent" } }
"#;

fn stack_binary() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_peakload"));
    let stack = exe.with_file_name("peakload-stack");
    assert!(
        stack.is_file(),
        "{} is missing: build it with `cargo build --workspace`",
        stack.display()
    );
    stack
}

struct Stack {
    child: Child,
    url: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_stack(dir: &Path, extra: &[&str]) -> Stack {
    let mut child = Command::new(stack_binary())
        .args(["all", "--listen", "127.0.0.1:0", "--admin-token", "planted"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peakload-stack");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the stack exited before it was ready")
            .unwrap();
        if let Some(u) = line.strip_prefix("peakload-stack listening on ") {
            break u.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Stack { child, url }
}

fn post_fault(base_url: &str, body: &str) {
    let addr = base_url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /admin/faults HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer planted\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Runs the scenario against `base` (a URL, or "stack" to let the run start one); `fault` is
/// posted to `fault_url` 10 s in. Returns results.json.
fn run(dir: &Path, base: &str, fault: Option<(&str, &str)>) -> Value {
    run_scenario(dir, &SCENARIO.replace("BASE", base), fault)
}

/// As [`run`], for a scenario given in full.
fn run_scenario(dir: &Path, text: &str, fault: Option<(&str, &str)>) -> Value {
    let scenario = dir.join("planted.toml");
    std::fs::write(&scenario, text).unwrap();
    let out = dir.join("out");
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_peakload"))
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some((url, body)) = fault {
        std::thread::sleep(Duration::from_millis(10_300).saturating_sub(started.elapsed()));
        post_fault(url, body);
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "peakload run failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("diagnosis:"), "{stdout}");
    assert_matches_schema(&out.join("results.json"));
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Results carrying `infra`, `capacity` and `findings` still match the committed schema.
fn assert_matches_schema(results: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/schema/results.schema.json");
    let script = "import sys, json\ntry:\n    import jsonschema\nexcept ImportError:\n    sys.exit('missing Python package jsonschema: pip install jsonschema (scripts/test installs it)')\nV = jsonschema.Draft202012Validator\nerrors = list(V(json.load(open(sys.argv[1]))).iter_errors(json.load(open(sys.argv[2]))))\nfor e in errors:\n    print('/'.join(map(str, e.absolute_path)) or '(root)', e.message)\nsys.exit(1 if errors else 0)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&schema)
        .arg(results)
        .output()
        .expect("python3 runs (scripts/test installs what it needs)");
    assert!(
        out.status.success(),
        "{} does not match the schema:\n{}{}",
        results.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Returns the first finding.
fn planted(fault: &str, stack_flags: &[&str], want: &str) -> Value {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(dir.path(), stack_flags);
    let results = run(dir.path(), &stack.url, Some((&stack.url, fault)));
    let findings = results["findings"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    // What the diagnosis saw, for a failure: its text summary has the SLI, capacity and
    // ranking, and the per-second figures show what the users saw when.
    let explain = || {
        let text = Command::new(env!("CARGO_BIN_EXE_peakload"))
            .arg("diagnose")
            .arg(dir.path().join("out/results.json"))
            .output()
            .unwrap();
        let seconds: Vec<String> = results["timeline"]
            .as_array()
            .map(|v| v.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|p| {
                format!(
                    "t={} rps={} errors={} {} p95={} p99={} ms",
                    p["t"],
                    p["rps"],
                    p["errors"],
                    p["errors_by_kind"],
                    p["latency_ms"]["p95"],
                    p["latency_ms"]["p99"]
                )
            })
            .collect();
        format!(
            "{}\nper second:\n{}\nfindings {}",
            String::from_utf8_lossy(&text.stdout),
            seconds.join("\n"),
            serde_json::to_string_pretty(&findings).unwrap()
        )
    };
    if kinds.first().copied() != Some(want) {
        panic!(
            "fault {fault}: wanted {want} first, found {kinds:?}\n{}",
            explain()
        );
    }
    let start = findings[0]["window"]["start_s"].as_f64().unwrap();
    assert!(
        (8.0..=13.0).contains(&start),
        "fault {fault}: the window starts at {start}\n{}",
        explain()
    );
    let series = results["infra"]["series"].as_array().unwrap();
    assert!(
        series.iter().all(|s| s["name"] != "peakload_stack_fault"),
        "the injected fault itself is not evidence"
    );
    assert_eq!(results["capacity"]["reached"], true);
    findings[0].clone()
}

#[test]
fn planted_db_latency_is_db_latency() {
    let f = planted(r#"{"db_latency_ms": 40}"#, &[], "db_latency");
    // The operations' own duration, not only how many were in flight.
    assert!(
        f["signal"]
            .as_str()
            .unwrap()
            .starts_with("db_operation_duration_seconds"),
        "{f}"
    );
}

#[test]
fn planted_small_pool_is_db_pool_saturation() {
    // Database operations take 20 ms throughout; one connection cannot serve the load.
    let f = planted(
        r#"{"db_pool_size": 1}"#,
        &["--db-latency-ms", "20"],
        "db_pool_saturation",
    );
    // The limit, not the 4-connection read pool behind it, is what filled up.
    assert_eq!(f["evidence"]["pool_size"], 1.0, "{f}");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains(
            " of 1 connections in use (from db_operations_in_flight and db_operations_limit)"
        ),
        "{summary}"
    );
}

#[test]
fn planted_cpu_work_is_cpu_saturation() {
    // 30 ms of CPU per request: with 20 ms, the latency it adds alone would sit right at the
    // diagnosis's 20 ms floor, and only queueing would carry it over.
    planted(r#"{"cpu_work_us": 30000}"#, &[], "cpu_saturation");
}

#[test]
fn planted_paused_worker_is_queue_backlog() {
    planted(r#"{"worker_paused": true}"#, &[], "queue_backlog");
}

#[test]
fn planted_error_rate_is_error_burst() {
    planted(r#"{"error_rate": 0.3}"#, &[], "error_burst");
}

#[test]
fn a_healthy_run_names_no_cause_and_diagnose_reruns_offline() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // `base_url = "stack"`: the run starts the stack itself and scrapes it.
    let results = run(dir.path(), "stack", None);
    assert!(
        results["findings"].as_array().is_none_or(|f| f.is_empty()),
        "{}",
        results["findings"]
    );
    assert_eq!(results["capacity"]["reached"], false);
    let series = results["infra"]["series"].as_array().unwrap();
    assert!(
        series
            .iter()
            .any(|s| s["name"] == "process_cpu_seconds_total:rate"),
        "scraped the stack"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_peakload"))
        .arg("diagnose")
        .arg(dir.path().join("out/results.json"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["healthy"], true);
    assert_eq!(d["findings"], Value::Array(vec![]));
    let ranking = d["ranking"].as_array().unwrap();
    assert_eq!(ranking.len(), series.len(), "every candidate is ranked");
    assert!(ranking
        .iter()
        .all(|r| r["signal"].is_string() && r["score"].is_number()));
}

#[test]
fn diagnose_reads_a_csv_export() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("time,p99_ms,db_wait_s,cpu,noise\n");
    for t in 0..120u32 {
        let after = t >= 60;
        let jitter = f64::from((t * 7919) % 11) / 11.0;
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            1_700_000_000 + t,
            if after { 250.0 } else { 40.0 } + 3.0 * jitter,
            if t >= 58 { 0.4 } else { 0.002 } + 0.001 * jitter,
            0.3 + 0.05 * jitter,
            f64::from((t * 104_729) % 17)
        ));
    }
    let path = dir.path().join("m.csv");
    std::fs::write(&path, csv).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_peakload"))
        .args(["diagnose", "--metrics"])
        .arg(&path)
        .args(["--sli", "p99_ms", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["ranking"][0]["signal"], "db_wait_s");
    assert_eq!(d["ranking"].as_array().unwrap().len(), 3);

    let out = Command::new(env!("CARGO_BIN_EXE_peakload"))
        .args(["diagnose", "--metrics"])
        .arg(&path)
        .args(["--sli", "p95"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("columns: p99_ms, db_wait_s, cpu, noise"));
}

fn moto_url() -> String {
    let url =
        std::env::var("PEAKLOAD_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".to_owned());
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    assert!(
        TcpStream::connect(addr).is_ok(),
        "moto_server is not reachable at {url}: run the tests through scripts/test, which starts \
         it (or start `moto_server -H 127.0.0.1 -p 5055` and set PEAKLOAD_MOTO_URL)"
    );
    url
}

/// The stack publishes its metrics to CloudWatch and its log lines to CloudWatch Logs (the
/// AWS API emulator); the run reads them back through the AWS SDK — no scrape — and the
/// diagnosis names the planted error burst from those signals, with the logged lines.
#[test]
fn cloudwatch_signals_diagnose_a_planted_error_burst() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let moto = moto_url();
    // Emulator credentials (any are accepted), with a secret that would be recognised in the
    // outputs; the stack and the run inherit them.
    const SECRET: &str = "peakload-test-secret-b6f2c";
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
    if std::env::var_os("AWS_REGION").is_none() {
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    let dir = tempfile::tempdir().unwrap();
    let unique = format!(
        "{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let namespace = format!("PeakloadDiagnose{unique}");
    let service = format!("diagnose-{unique}");
    let group = format!("/peakload/{service}/api");
    let stack = start_stack(
        dir.path(),
        &[
            "--cloudwatch-namespace",
            &namespace,
            "--cloudwatch-interval-secs",
            "1",
            "--cloudwatch-service",
            &service,
            "--cloudwatch-log-group",
            &group,
            "--aws-endpoint",
            &moto,
            "--aws-create-resources",
        ],
    );
    let metric = |name: &str, stat: &str| {
        format!(
            "  {{ namespace = \"{namespace}\", metric = \"{name}\", stat = \"{stat}\", \
             dimensions = {{ Service = \"{service}\" }} }},\n"
        )
    };
    let mut observe = format!(
        "[observe]\nsettle = \"3s\"\n\n[observe.cloudwatch]\nendpoint_url = \"{moto}\"\n\
         period = \"1s\"\nmetrics = [\n"
    );
    for (name, stat) in [
        ("RequestCount", "Sum"),
        ("HTTPCode_5XX_Count", "Sum"),
        ("Latency", "Average"),
        ("ProcessCPUUtilization", "Average"),
        ("ProcessResidentMemory", "Maximum"),
        ("DbOperationsInFlight", "Maximum"),
    ] {
        observe.push_str(&metric(name, stat));
    }
    observe.push_str(&format!(
        "]\n\n[observe.logs]\nlog_groups = [\"{group}\"]\ninterval = \"1s\"\n"
    ));
    let scenario = SCENARIO
        .replace("BASE", &stack.url)
        .replace("[observe]\nscrape = [\"stack\"]\n", &observe);
    assert!(scenario.contains("[observe.cloudwatch]"), "{scenario}");

    let results = run_scenario(
        dir.path(),
        &scenario,
        Some((&stack.url, r#"{"error_rate": 0.3}"#)),
    );
    let infra = &results["infra"];
    let series = infra["series"].as_array().unwrap();
    assert!(
        series
            .iter()
            .all(|s| s["source"].as_str().unwrap().starts_with("cloudwatch")),
        "only AWS sources were configured"
    );
    let errors = series
        .iter()
        .find(|s| {
            s["name"]
                .as_str()
                .unwrap()
                .ends_with("/HTTPCode_5XX_Count:Sum")
        })
        .unwrap_or_else(|| panic!("no 5XX series in {infra}"));
    let errors_after: f64 = errors["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[0].as_f64().unwrap() >= 10.0)
        .map(|p| p[1].as_f64().unwrap())
        .sum();
    assert!(errors_after > 10.0, "{errors}");
    assert!(
        series.iter().any(|s| s["name"] == "log:errors"),
        "log pattern counts read back: {infra}"
    );

    let findings = results["findings"].as_array().cloned().unwrap_or_default();
    let first = findings
        .first()
        .unwrap_or_else(|| panic!("no finding; infra notes {}", infra["notes"]));
    assert_eq!(first["kind"], "error_burst", "{findings:#?}");
    let signal = first["signal"].as_str().unwrap();
    assert!(
        signal.contains("5XX") || signal.starts_with("log:errors"),
        "named from a CloudWatch signal, not from the users' own errors: {signal}"
    );
    let start = first["window"]["start_s"].as_f64().unwrap();
    assert!((8.0..=13.0).contains(&start), "window starts at {start}");
    let lines: Vec<&str> = first["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("injected fault (error_rate)")),
        "the matching log lines from CloudWatch Logs: {lines:?}"
    );
    let text = std::fs::read_to_string(dir.path().join("out/results.json")).unwrap()
        + &std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(
        !text.contains(SECRET),
        "the secret key never lands in outputs"
    );
}

/// `[stack] args` reach the stack `peakload run` starts; a flag it refuses stops the run
/// before any load, with the stack's own words.
#[test]
fn stack_args_configure_the_bundled_stack() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    stack_binary();
    let dir = tempfile::tempdir().unwrap();
    let scenario = |args: &str| {
        format!(
            "name = \"args\"\nbase_url = \"stack\"\n[stack]\nargs = {args}\n[load]\nrps = 20\nduration = \"2s\"\n[[journey]]\nname = \"j\"\n  [[journey.step]]\n  name = \"product\"\n  path = \"/api/products/1\"\n"
        )
    };
    let run = |text: String, out: &str| {
        let file = dir.path().join(format!("{out}.toml"));
        std::fs::write(&file, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_peakload"))
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join(out))
            .arg("--quiet")
            .output()
            .unwrap()
    };

    let o = run(scenario(r#"["--error-rate", "1"]"#), "failing");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("failing/results.json")).unwrap();
    let results: Value = serde_json::from_str(&text).unwrap();
    assert!(results["summary"]["requests"].as_u64().unwrap() >= 20);
    assert_eq!(results["summary"]["error_rate"], 1.0, "every answer a 500");

    let o = run(scenario(r#"["--no-such-flag"]"#), "refused");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("exited during start-up") && stderr.contains("--no-such-flag"),
        "{stderr}"
    );
}
