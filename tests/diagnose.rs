//! Planted faults, end to end: the real `peakload` binary loads the real reference stack for
//! 20 s at 30 arrivals/s, scraping its `/metrics`; at t≈10 s the test switches one fault on
//! through `POST /admin/faults`, and the diagnosis must name the matching kind first. The same
//! run without a fault must name no cause.
//!
//! The runs share two cores, and a CPU fault in one would slow the others: runs with the
//! stack take the CPU exclusively ([`exclusive_cpu`]).

use std::time::Duration;

use peakload_test_support::{require_moto, unique};
use serde_json::Value;

use crate::util::stack::{stack_binary, StackProcess};
use crate::util::{
    assert_valid_results, exclusive_cpu, peakload, run, spawn, Case, Journey, Scenario, Step,
};

const SCRAPE_STACK: &str = "[observe]\nscrape = [\"stack\"]";

/// 30 arrivals/s for 20 s against `base` (a URL, or "stack" to let the run start one),
/// observed through `observe`: eight in ten browse a product; two in ten send a notification
/// and check it was delivered.
fn planted_scenario(base: &str, observe: &str) -> Scenario {
    Scenario::new("planted")
        .base_url(base)
        .timeout("3s")
        .load("rps = 30\nduration = \"20s\"\nmax_vus = 200")
        .section(observe)
        .journey(Journey::new("browse").weight(8).step(
            Step::get("product", "/api/products/{{random_int 1 200}}").check("{ status = 200 }"),
        ))
        .journey(
            Journey::new("notify")
                .weight(2)
                .step(
                    Step::post("notify", "/api/notifications")
                        .json(r#"{ to = "a@example.com", subject = "s", body = "b" }"#)
                        .extract(r#"{ id = { json = "$.id" } }"#)
                        .check("{ status = 202 }")
                        .think("1500ms"),
                )
                // Delivered within 1.5 s when the worker is healthy.
                .step(
                    Step::get("status", "/api/notifications/{{id}}")
                        .check(r#"{ json = { "$.status" = "sent" } }"#),
                ),
        )
}

/// Runs `case` (quiet, no `--target`) with `envs` added to its environment; `fault` is posted
/// to its stack 10 s in. Checks the run ended with a diagnosis and results that match the
/// schema (with `infra`, `capacity` and `findings`); returns results.json.
fn run_planted(case: &Case, fault: Option<(&StackProcess, &str)>, envs: &[(&str, &str)]) -> Value {
    let mut cmd = case.run_command(&case.out());
    cmd.arg("--quiet").envs(envs.iter().copied());
    let running = spawn(cmd).writing_to(case.out());
    if let Some((stack, body)) = fault {
        std::thread::sleep(
            Duration::from_millis(10_300).saturating_sub(running.started().elapsed()),
        );
        stack.post_fault(body);
    }
    let outcome = running.finish();
    assert!(
        (0..=1).contains(&outcome.code),
        "peakload run failed: exit {}\n{}\n{}",
        outcome.code,
        outcome.stdout,
        outcome.stderr
    );
    assert!(outcome.stdout.contains("diagnosis:"), "{}", outcome.stdout);
    assert_valid_results(&outcome.results_path());
    outcome.results()
}

/// Returns the first finding and results.json.
fn planted(fault: &str, stack_flags: &[&str], want: &str) -> (Value, Value) {
    let _cpu = exclusive_cpu();
    let stack_dir = tempfile::tempdir().unwrap();
    let stack = StackProcess::all(stack_dir.path(), stack_flags, &[]);
    let case = Case::new(planted_scenario(&stack.url, SCRAPE_STACK));
    let results = run_planted(&case, Some((&stack, fault)), &[]);
    let findings = results["findings"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    // What the diagnosis saw, for a failure: its text summary has the SLI, capacity and
    // ranking, and the per-second figures show what the users saw when.
    let explain = || {
        let mut diagnose = peakload();
        diagnose
            .arg("diagnose")
            .arg(case.out().join("results.json"));
        let text = run(diagnose);
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
            text.stdout,
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
    (findings[0].clone(), results)
}

#[test]
fn planted_db_latency_is_db_latency() {
    let (f, results) = planted(r#"{"db_latency_ms": 40}"#, &[], "db_latency");
    // The finding names a database signal: the operations' duration, or how many were in
    // flight. Which of the two changed first is a race between the fault and the next scrape
    // (a CI run had the count rise 1 s after the users' p95, the duration later, and the
    // count led the finding).
    let signal = f["signal"].as_str().unwrap();
    assert!(
        signal.starts_with("db_operation_duration_seconds")
            || signal.starts_with("db_operations_in_flight"),
        "{f}"
    );
    // Either way the stack showed the slow database as a duration, not only as operations in
    // flight: a duration series went from well under the planted 40 ms to about it.
    let median_within = |points: &[Value], from: f64, to: f64| {
        let mut v: Vec<f64> = points
            .iter()
            .filter(|p| (from..to).contains(&p[0].as_f64().unwrap()))
            .map(|p| p[1].as_f64().unwrap())
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let durations: Vec<&Value> = results["infra"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["name"]
                .as_str()
                .unwrap()
                .starts_with("db_operation_duration_seconds")
        })
        .collect();
    assert!(
        durations.iter().any(|s| {
            let points = s["points"].as_array().unwrap();
            let before = median_within(points, 0.0, 9.0);
            let during = median_within(points, 13.0, 20.0);
            matches!((before, during), (Some(b), Some(d)) if b < 0.02 && d >= 0.03)
        }),
        "no database duration rose to the planted 40 ms: {durations:?}"
    );
}

#[test]
fn planted_small_pool_is_db_pool_saturation() {
    // Database operations take 20 ms throughout; one connection cannot serve the load.
    let (f, _) = planted(
        r#"{"db_pool_size": 1}"#,
        &["--db-latency-ms", "20"],
        "db_pool_saturation",
    );
    // The limit, not the 4-connection read pool behind it, is what filled up.
    assert_eq!(f["evidence"]["pool_size"], 1.0, "{f}");
    let summary = f["summary"].as_str().unwrap();
    // Both gauges from the API's own endpoint (its `instance`).
    assert!(
        summary.contains(" of 1 connections in use (from db_operations_in_flight{instance=\"")
            && summary.contains(" and db_operations_limit{instance=\""),
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
    let _cpu = exclusive_cpu();
    // `base_url = "stack"`: the run starts the stack itself and scrapes it.
    let case = Case::new(planted_scenario("stack", SCRAPE_STACK));
    let results = run_planted(&case, None, &[]);
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

    let mut cmd = peakload();
    cmd.arg("diagnose")
        .arg(case.out().join("results.json"))
        .arg("--json");
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let d: Value = serde_json::from_str(&out.stdout).unwrap();
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
    let mut cmd = peakload();
    cmd.args(["diagnose", "--metrics"])
        .arg(&path)
        .args(["--sli", "p99_ms", "--json"]);
    let out = run(cmd);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let d: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(d["ranking"][0]["signal"], "db_wait_s");
    assert_eq!(d["ranking"].as_array().unwrap().len(), 3);

    let mut cmd = peakload();
    cmd.args(["diagnose", "--metrics"])
        .arg(&path)
        .args(["--sli", "p95"]);
    let out = run(cmd);
    assert_eq!(out.code, 2);
    assert!(out
        .stderr
        .contains("columns: p99_ms, db_wait_s, cpu, noise"));
}

/// The stack publishes its metrics to CloudWatch and its log lines to CloudWatch Logs (the
/// AWS API emulator); the run reads them back through the AWS SDK — no scrape — and the
/// diagnosis names the planted error burst from those signals, with the logged lines.
#[test]
fn cloudwatch_signals_diagnose_a_planted_error_burst() {
    let _cpu = exclusive_cpu();
    let moto = require_moto();
    // Emulator credentials (any are accepted), with a secret that would be recognised in the
    // outputs; the stack and the run are given them.
    const SECRET: &str = "peakload-test-secret-b6f2c";
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let aws = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", region.as_str()),
    ];
    let stack_dir = tempfile::tempdir().unwrap();
    let unique = unique("");
    let namespace = format!("PeakloadDiagnose{unique}");
    let service = format!("diagnose-{unique}");
    let group = format!("/peakload/{service}/api");
    let stack = StackProcess::all(
        stack_dir.path(),
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
        &aws,
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
    let case = Case::new(planted_scenario(&stack.url, &observe));
    let results = run_planted(&case, Some((&stack, r#"{"error_rate": 0.3}"#)), &aws);
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
    let text = std::fs::read_to_string(case.out().join("results.json")).unwrap()
        + &std::fs::read_to_string(case.out().join("report.html")).unwrap();
    assert!(
        !text.contains(SECRET),
        "the secret key never lands in outputs"
    );
}

/// `[stack] args` reach the stack `peakload run` starts; a flag it refuses stops the run
/// before any load, with the stack's own words.
#[test]
fn stack_args_configure_the_bundled_stack() {
    let _cpu = exclusive_cpu();
    stack_binary();
    let run_with_args = |args: &str| {
        let case = Case::new(
            Scenario::new("args")
                .base_url("stack")
                .section(&format!("[stack]\nargs = {args}"))
                .rps(20, "2s")
                .step(Step::get("product", "/api/products/1")),
        );
        let mut cmd = case.run_command(&case.out());
        cmd.arg("--quiet");
        (spawn(cmd).writing_to(case.out()).finish(), case)
    };

    let (o, _case) = run_with_args(r#"["--error-rate", "1"]"#);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let results = o.results();
    assert!(results["summary"]["requests"].as_u64().unwrap() >= 20);
    assert_eq!(results["summary"]["error_rate"], 1.0, "every answer a 500");

    let (o, _case) = run_with_args(r#"["--no-such-flag"]"#);
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(
        o.stderr.contains("exited during start-up") && o.stderr.contains("--no-such-flag"),
        "{}",
        o.stderr
    );
}
