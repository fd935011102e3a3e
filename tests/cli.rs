//! End-to-end tests of `peakload run` and `peakload check`: the real binary against the
//! harness's HTTP server on loopback, each run bounded to a few seconds and writing to its own
//! temporary `--out` directory.
//!
//! `results.json` is validated against `reports/schema/results.schema.json` and `latency.hlog`
//! read back with the Python `hdrhistogram` package; without Python or those packages these
//! tests fail, saying so.
//!
//! Runs whose figures depend on timing (the coordinated-omission tests) take the CPU
//! exclusively ([`exclusive_cpu`]), so that no other run competes with them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::python::{python, schema_verdict};
use crate::util::stack::{http, StackProcess};
use crate::util::{
    assert_valid_results, code, eventually, exclusive_cpu, f, peakload, run, shared_cpu, spawn,
    step, threshold, u, wait_until, Case, Journey, Scenario, Stall, Step, TestServer,
};

/// `peakload check <path>`.
fn check(path: &std::path::Path) -> crate::util::Outcome {
    let mut cmd = peakload();
    cmd.arg("check").arg(path);
    run(cmd)
}

/// A lowercase RFC 4122 version-4 UUID, as `{{uuid}}` renders.
fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

const USERS_CSV: &str = "name,password\nalice,pw-alice\nbob,pw-bob\ncarol,pw-carol\n";

/// One step, `GET /work` checked for a 200, at `rps` for `secs`.
fn work_scenario(name: &str, rps: u32, secs: u32) -> Scenario {
    Scenario::new(name)
        .rps(rps, &format!("{secs}s"))
        .journey(Journey::new("w").step(work_step()))
}

fn work_step() -> Step {
    Step::get("work", "/work").check("{ status = 200 }")
}

const BEARER: &str = r#"{ Authorization = "Bearer {{token}}" }"#;

const LOGIN_JSON: &str = r#"{ user = "{{user.name}}", password = "{{user.password}}" }"#;

// ---------------------------------------------------------------------------------------------
// Journeys: extraction, feeders, cookies, templates
// ---------------------------------------------------------------------------------------------

/// A login → authenticated calls journey: the token extracted from the login's JSON is sent back
/// as a Bearer header, feeder rows are used in turn, cookies set in an iteration come back in
/// that iteration only, and templates render fresh values per request.
#[test]
fn journey_extracts_token_uses_feeder_keeps_cookies_and_renders_templates() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("journey")
            .timeout("5s")
            .rps(20, "2s")
            .feeder("user", "users.csv", "sequential")
            .journey(
                Journey::new("shopper")
                    .step(
                        Step::post("login", "/login")
                            .json(LOGIN_JSON)
                            .extract(r#"{ token = { json = "$.token" } }"#)
                            .check("{ status = 200 }"),
                    )
                    .step(Step::get("me", "/me").headers(BEARER).check("{ status = 200 }"))
                    .step(Step::get("cookie_before", "/cookie/check").query(r#"{ phase = "before" }"#))
                    .step(Step::get("cookie_set", "/cookie/set"))
                    .step(Step::get("cookie_after", "/cookie/check").query(r#"{ phase = "after" }"#))
                    .step(
                        Step::post("order", "/orders")
                            .headers(BEARER)
                            .json(r#"{ id = "{{uuid}}", qty = "{{random_int 1 100}}", tag = "{{env.PEAKLOAD_E2E_TAG}}", user = "{{user.name}}" }"#)
                            .check(r#"{ status = 201, json = { "$.tag" = "e2e-tag-42" } }"#),
                    )
                    .step(
                        Step::post("echo", "/echo")
                            .query(r#"{ n = "{{random_int 1 1000000}}", it = "{{iteration}}" }"#)
                            .headers(r#"{ X-Tag = "{{env.PEAKLOAD_E2E_TAG}}" }"#)
                            .json(r#"{ id = "{{uuid}}" }"#)
                            .check("{ status = 200 }"),
                    ),
            ),
    )
    .file("users.csv", USERS_CSV);
    let outcome = case.run_with_env(&server, &[], &[("PEAKLOAD_E2E_TAG", "e2e-tag-42")]);
    outcome.expect_code(code::OK);
    let r = outcome.results();
    assert_valid_results(&outcome.results_path());

    let n = u(&r["summary"]["iterations"]);
    assert!(n >= 30, "expected ~40 iterations, got {n}");
    assert_eq!(u(&r["summary"]["failed_iterations"]), 0);
    assert_eq!(u(&r["summary"]["errors"]), 0, "errors: {}", r["errors"]);
    assert_eq!(u(&r["summary"]["requests"]), 7 * n);

    // The server saw every request the results count, route by route.
    for (route, step_names) in [
        ("login", &["login"][..]),
        ("me", &["me"]),
        ("cookie_check", &["cookie_before", "cookie_after"]),
        ("cookie_set", &["cookie_set"]),
        ("orders", &["order"]),
        ("echo", &["echo"]),
    ] {
        let counted: u64 = step_names.iter().map(|s| u(&step(&r, s)["requests"])).sum();
        assert_eq!(server.count(route), counted, "route {route}");
        assert_eq!(counted, n * step_names.len() as u64, "route {route}");
    }
    assert_eq!(server.count("other"), 0, "{:?}", server.counts());

    // Feeder, sequential: rows used in turn, wrapping around.
    let logins = server.logins();
    let mut per_user: BTreeMap<&str, u64> = BTreeMap::new();
    for name in &logins {
        *per_user.entry(name.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_user.keys().copied().collect::<Vec<_>>(),
        ["alice", "bob", "carol"]
    );
    let (lo, hi) = (
        per_user.values().min().unwrap(),
        per_user.values().max().unwrap(),
    );
    assert!(hi - lo <= 1, "sequential rows unevenly used: {per_user:?}");

    // Extraction: every /me and /orders carried a token the server issued, and it was the token
    // of the user who logged in within that iteration.
    assert_eq!(
        server
            .state
            .unauthorized
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let mut me = server.me_users();
    let mut logged_in = logins.clone();
    me.sort();
    logged_in.sort();
    assert_eq!(me, logged_in);
    let orders = server.orders();
    assert_eq!(orders.len() as u64, n);
    for o in &orders {
        // The feeder row and the token belong to the same iteration: /orders only accepts the
        // token, the body names the user from the row; the server's tokens embed the user.
        assert!(logins.contains(&o["user"].as_str().unwrap().to_string()));
    }

    // Cookies: kept between steps of one iteration, never carried into the next.
    let seen = server.cookies_seen();
    let before: Vec<_> = seen.iter().filter(|c| c.phase == "before").collect();
    let after: Vec<_> = seen.iter().filter(|c| c.phase == "after").collect();
    assert_eq!(before.len() as u64, n);
    assert!(
        before.iter().all(|c| c.session.is_none()),
        "a cookie leaked into the next iteration: {before:?}"
    );
    let sessions_back: Vec<String> = after.iter().filter_map(|c| c.session.clone()).collect();
    assert_eq!(
        sessions_back.len() as u64,
        n,
        "cookie not sent back: {after:?}"
    );
    let mut set = server.sessions_set();
    let mut back = sessions_back.clone();
    set.sort();
    back.sort();
    assert_eq!(
        back, set,
        "each session set must come back exactly once, in its own iteration"
    );

    // Templates: {{uuid}}, {{random_int}}, {{env.*}}, {{iteration}}.
    let ids: BTreeSet<&str> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len() as u64, n, "uuids must be fresh per request");
    assert!(ids.iter().all(|id| is_uuid_v4(id)), "{ids:?}");
    let qty: Vec<i64> = orders
        .iter()
        .map(|o| {
            o["qty"]
                .as_i64()
                .unwrap_or_else(|| panic!("qty is not a JSON integer: {o}"))
        })
        .collect();
    assert!(qty.iter().all(|q| (1..=100).contains(q)), "{qty:?}");
    assert!(
        qty.iter().collect::<BTreeSet<_>>().len() > 1,
        "random_int never varied: {qty:?}"
    );
    assert!(orders.iter().all(|o| o["tag"] == "e2e-tag-42"));
    let echoed = server.echoed();
    assert_eq!(echoed.len() as u64, n);
    let mut iterations = BTreeSet::new();
    for e in &echoed {
        assert_eq!(e.x_tag.as_deref(), Some("e2e-tag-42"));
        let k: u64 = e.query["n"].parse().expect("n is an integer");
        assert!((1..=1_000_000).contains(&k));
        iterations.insert(e.query["it"].clone());
        assert!(is_uuid_v4(e.body["id"].as_str().unwrap()), "{:?}", e.body);
    }
    assert_eq!(
        iterations.len() as u64,
        n,
        "{{{{iteration}}}} must differ per iteration"
    );
    assert_eq!(
        u(&step(&r, "order")["checks"]),
        2 * n,
        "status and JSON checks on every order"
    );
    assert_eq!(u(&step(&r, "order")["checks_failed"]), 0);
}

/// A unique feeder gives each row once; arrivals after that are skipped (nothing sent) and
/// counted in `feeder_exhausted`.
#[test]
fn unique_feeder_running_out_skips_and_counts_iterations() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let users: String = std::iter::once("name,password\n".to_string())
        .chain((0..5).map(|i| format!("u{i},pw-u{i}\n")))
        .collect();
    let case = Case::new(
        Scenario::new("unique")
            .rps(10, "2s")
            .feeder("user", "users.csv", "unique")
            .journey(
                Journey::new("signup").step(
                    Step::post("login", "/login")
                        .json(LOGIN_JSON)
                        .check("{ status = 200 }"),
                ),
            ),
    )
    .file("users.csv", &users);
    let outcome = case.run(&server, &["--threshold", "feeder_exhausted == 0"]);
    // Running out is not an error by itself; a threshold makes it fail the run.
    outcome.expect_code(code::THRESHOLDS);
    let r = outcome.results();
    assert_valid_results(&outcome.results_path());
    assert_eq!(r["thresholds"][0]["expr"], "feeder_exhausted == 0");
    assert_eq!(r["thresholds"][0]["ok"], false);

    let mut logins = server.logins();
    logins.sort();
    assert_eq!(
        logins,
        ["u0", "u1", "u2", "u3", "u4"],
        "each row exactly once"
    );
    assert_eq!(server.total(), 5, "nothing sent once rows ran out");
    assert_eq!(u(&r["summary"]["iterations"]), 5);
    assert_eq!(u(&r["summary"]["requests"]), 5);
    let started: u64 = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| u(&p["iterations_started"]))
        .sum();
    let exhausted = u(&r["feeder_exhausted"]);
    assert!(
        exhausted >= 10,
        "~15 of ~20 arrivals had no row: {exhausted}"
    );
    assert_eq!(started, 5 + exhausted, "every arrival accounted for");
    assert_eq!(u(&r["dropped_iterations"]), 0);
    assert!(
        outcome.stdout.contains(&format!(
            "{exhausted} iterations skipped: a unique feeder ran out of rows"
        )),
        "{}",
        outcome.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Thresholds
// ---------------------------------------------------------------------------------------------

#[test]
fn thresholds_that_hold_exit_0() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(work_scenario("pass", 20, 2).thresholds(&[
        "http.error_rate < 1%",
        "http.p99 < 2s",
        "dropped_iterations == 0",
    ]));
    let outcome = case.run(&server, &["--threshold", "work.requests >= 30"]);
    outcome.expect_code(code::OK);
    let r = outcome.results();
    let ts = r["thresholds"].as_array().unwrap();
    assert_eq!(ts.len(), 4, "scenario thresholds plus --threshold: {ts:?}");
    assert!(ts.iter().all(|t| t["ok"] == true), "{ts:?}");
    assert_eq!(f(&threshold(&r, "http.error_rate < 1%")["value"]), 0.0);
    assert_eq!(
        f(&threshold(&r, "http.p99 < 2s")["value"]),
        f(&r["summary"]["latency_ms"]["p99"])
    );
    assert_eq!(
        f(&threshold(&r, "work.requests >= 30")["value"]),
        u(&r["summary"]["requests"]) as f64
    );
    assert_eq!(u(&r["summary"]["requests"]), server.count("work"));
    assert_eq!(
        outcome.stdout.matches("✓ pass").count(),
        4,
        "{}",
        outcome.stdout
    );
}

/// A crossed threshold: exit 1, and the measured value in results.json and in the summary.
#[test]
fn crossed_thresholds_exit_1_with_the_measured_values() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("fail")
            .thresholds(&[
                "slow.p50 < 10ms",
                "http.error_rate < 1%",
                "dropped_iterations == 0",
            ])
            .rps(10, "2s")
            .step(Step::get("slow", "/delay/40"))
            .step(Step::get("broken", "/status/503")),
    );
    let outcome = case.run(&server, &["--threshold", "http.requests < 1"]);
    outcome.expect_code(code::THRESHOLDS);
    let r = outcome.results();
    assert_valid_results(&outcome.results_path());

    let slow = threshold(&r, "slow.p50 < 10ms");
    assert_eq!(slow["ok"], false);
    assert!(f(&slow["value"]) >= 40.0, "{slow}");
    assert_eq!(f(&slow["value"]), f(&step(&r, "slow")["latency_ms"]["p50"]));

    let requests = u(&r["summary"]["requests"]);
    let broken = u(&step(&r, "broken")["requests"]);
    assert!(broken >= 15, "{broken}");
    assert_eq!(u(&r["errors"]["http_5xx"]), broken);
    assert_eq!(u(&r["summary"]["errors"]), broken);
    let rate = threshold(&r, "http.error_rate < 1%");
    assert_eq!(rate["ok"], false);
    let expected_rate = broken as f64 / requests as f64;
    assert!((f(&rate["value"]) - expected_rate).abs() < 1e-3, "{rate}");

    assert_eq!(threshold(&r, "dropped_iterations == 0")["ok"], true);
    let flag = threshold(&r, "http.requests < 1");
    assert_eq!(flag["ok"], false);
    assert_eq!(f(&flag["value"]), requests as f64);
    assert_eq!(requests, server.count("delay") + server.count("status"));

    // The summary names each failure and what was measured.
    for t in r["thresholds"].as_array().unwrap() {
        let mark = if t["ok"] == true {
            "✓ pass"
        } else {
            "✗ FAIL"
        };
        let expr = t["expr"].as_str().unwrap();
        let line = outcome
            .stdout
            .lines()
            .find(|l| l.contains(expr))
            .unwrap_or_else(|| panic!("{expr} not in the summary:\n{}", outcome.stdout));
        assert!(line.contains(mark), "{line}");
        // The value as measured, in the threshold's unit (ms, %, /s or a count).
        let result: peakload::record::results::ThresholdResult =
            serde_json::from_value(t.clone()).unwrap();
        let shown = peakload::output::verdict::threshold_view(&result).measured;
        assert!(line.contains(&format!("measured {shown}")), "{line}");
    }
}

#[test]
fn invalid_threshold_flag_exits_2_and_sends_nothing() {
    let server = TestServer::start();
    let case = Case::new(work_scenario("flag", 10, 1));
    let outcome = case.run(&server, &["--threshold", "wrok.p99 < 1ms"]);
    outcome.expect_code(code::INVALID);
    assert!(
        outcome
            .stderr
            .contains("--threshold \"wrok.p99 < 1ms\": unknown metric"),
        "{}",
        outcome.stderr
    );
    assert_eq!(server.total(), 0);
    assert!(!outcome.results_path().exists());
}

// ---------------------------------------------------------------------------------------------
// Invalid input
// ---------------------------------------------------------------------------------------------

/// Several mistakes at once: each reported as `path:line:col: message`, in file order; exit 2;
/// the server (the scenario's own base_url) receives nothing.
#[test]
fn invalid_scenario_reports_every_problem_at_once_and_sends_nothing() {
    let server = TestServer::start();
    let case = Case::new(format!(
        r#"name = "broken"
base_url = "{}"
timeout = 10
thresholds = ["chekout.p99 < 300ms"]

[load]
stages = [ {{ duration = "10 parsecs", target_rps = 5 }} ]

[[feeder]]
name = "user"
file = "missing.csv"

[[journey]]
name = "j"
  [[journey.step]]
  name = "checkout"
  methd = "POST"
  path = "/work"
  headers = {{ Authorization = "Bearer {{{{tokn}}}}" }}
"#,
        server.url()
    ));
    let p = case.scenario();
    let p = p.display();
    let missing = case.dir().join("missing.csv");
    let expected = [
        format!("{p}:3:11: \"timeout\" must be a duration string such as \"10s\" or \"250ms\", found integer 10"),
        format!("{p}:4:15: unknown metric \"chekout.p99\"; expected http.<stat>, <journey>.<stat>, <step>.<stat>, <journey>.<step>.<stat>, dropped_iterations, iterations, feeder_exhausted, checks.failed or checks.rate; journeys: j; steps: checkout (did you mean \"checkout.p99\"?)"),
        format!("{p}:7:25: bad duration for \"duration\": unknown unit \"parsecs\" in duration \"10 parsecs\"; write e.g. \"250ms\", \"1.5s\", \"2m\" or \"1m30s\" (units: h, m, s, ms, us)"),
        format!("{p}:11:8: feeder file \"missing.csv\" not found (looked in {}); relative paths start from the scenario file's directory", missing.display()),
        format!("{p}:17:3: unknown key \"methd\" in [[journey.step]]; expected one of: name, method, path, url, query, headers, json, form, body, content_type, timeout, think, extract, check, max_redirects (did you mean \"method\"?)"),
        format!("{p}:19:39: undefined variable \"tokn\": no earlier step extracts it and no feeder column has that name; nothing is defined here yet"),
    ];

    for (what, outcome) in [
        ("run", run(case.run_command(&case.out()))),
        ("check", check(&case.scenario())),
    ] {
        outcome.expect_code(code::INVALID);
        let lines: Vec<&str> = outcome.stderr.lines().collect();
        assert_eq!(
            lines[..lines.len() - 1],
            expected.iter().map(String::as_str).collect::<Vec<_>>()[..],
            "peakload {what} stderr:\n{}",
            outcome.stderr
        );
        assert_eq!(
            lines.last().copied(),
            Some(format!("{} problem(s) found; nothing was sent", expected.len()).as_str())
        );
        assert_eq!(server.total(), 0, "peakload {what} sent requests");
    }
    assert!(!case.out().join("results.json").exists());
}

#[test]
fn check_accepts_a_valid_scenario_without_sending_anything() {
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("ok")
            .base_url(server.url())
            .thresholds(&["http.p99 < 1s"])
            .rps(5, "2s")
            .journey(Journey::new("w").step(Step::get("work", "/work"))),
    );
    let outcome = check(&case.scenario());
    outcome.expect_code(code::OK);
    assert!(
        outcome
            .stdout
            .starts_with(&format!("{}: valid\n", case.scenario().display())),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("10 planned iterations"),
        "{}",
        outcome.stdout
    );
    assert!(outcome.stdout.contains("threshold http.p99 < 1s"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.total(), 0);
}

#[test]
fn unreachable_target_exits_4_with_a_clear_message() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let case = Case::new(work_scenario("down", 10, 2));
    let mut cmd = case.run_command(&case.out());
    cmd.arg("--target").arg(format!("http://127.0.0.1:{port}"));
    let outcome = run(cmd);
    outcome.expect_code(code::UNREACHABLE);
    assert!(
        outcome.stderr.contains(&format!(
            "target unreachable: cannot connect to 127.0.0.1:{port}"
        )),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.elapsed < Duration::from_secs(5),
        "{:?}",
        outcome.elapsed
    );
}

// ---------------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------------

/// The first SIGINT or SIGTERM stops the load, drains, writes what was measured: exit 3.
fn interrupted_run_writes_valid_results(sig: libc::c_int) {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(work_scenario("long", 20, 60).thresholds(&["http.p99 < 10s"]));
    let running = case.spawn(&server, &["--drain", "2s"]);
    wait_until("the first requests", Duration::from_secs(15), || {
        server.count("work") >= 10
    });
    running.signal(sig);
    let signalled = Instant::now();
    let outcome = running.finish();
    let stop_time = signalled.elapsed();
    outcome.expect_code(code::INTERRUPTED);
    assert!(
        stop_time < Duration::from_secs(4),
        "took {stop_time:?} to stop with --drain 2s"
    );
    assert_valid_results(&outcome.results_path());
    let r = outcome.results();
    assert_eq!(r["status"], "interrupted");
    assert!(f(&r["duration_s"]) < 20.0, "{}", r["duration_s"]);
    let requests = u(&r["summary"]["requests"]);
    assert!(requests >= 10, "{requests}");
    assert!(requests <= server.count("work"));
    // Thresholds are still evaluated on what was measured.
    assert_eq!(threshold(&r, "http.p99 < 10s")["ok"], true);
    assert!(
        outcome.stdout.contains("(interrupted)"),
        "{}",
        outcome.stdout
    );
    assert!(outcome.out.join("latency.hlog").exists());
}

#[test]
fn sigint_mid_run_writes_interrupted_results_and_exits_3() {
    interrupted_run_writes_valid_results(libc::SIGINT);
}

#[test]
fn sigterm_mid_run_writes_interrupted_results_and_exits_3() {
    interrupted_run_writes_valid_results(libc::SIGTERM);
}

/// A terminal's Ctrl-C goes to its whole foreground process group. The bundled stack sits in a
/// group of its own, so it keeps serving through peakload's drain and last scrape and is stopped
/// once the results are written; and when peakload is killed outright, the stack ends with it.
#[test]
fn the_bundled_stack_outlives_a_terminal_ctrl_c_but_not_peakload() {
    use std::os::unix::process::CommandExt;
    let _cpu = shared_cpu();
    let scenario = Scenario::new("stacked")
        .base_url("stack")
        .rps(20, "60s")
        .section("[observe]\nscrape = [\"stack\"]")
        .step(Step::get("products", "/api/products"));
    for killed in [false, true] {
        let case = Case::new(&scenario);
        let mut cmd = case.run_command(&case.out());
        cmd.arg("-q").process_group(0);
        let running = spawn(cmd).writing_to(case.out());
        let log = case.out().join("stack.log");
        let stack_log = || std::fs::read_to_string(&log).unwrap_or_default();
        wait_until("the stack ready", Duration::from_secs(30), || {
            stack_log().contains("ready")
        });
        std::thread::sleep(Duration::from_secs(3));
        if killed {
            running.signal(libc::SIGKILL);
            let outcome = running.finish();
            assert_eq!(outcome.code, -1, "killed");
            let stopped = eventually(Duration::from_secs(15), || stack_log().contains("stopped"));
            assert!(stopped, "the stack did not stop; its log:\n{}", stack_log());
            continue;
        }
        // What a terminal does on Ctrl-C.
        running.signal_group(libc::SIGINT);
        let outcome = running.finish();
        outcome.expect_code(code::INTERRUPTED);
        let r = outcome.results();
        let notes = r["infra"]["notes"].as_array().cloned().unwrap_or_default();
        assert!(notes.is_empty(), "the scrape lost the stack: {notes:?}");
        assert_eq!(u(&r["summary"]["errors"]), 0, "{:#}", r["errors"]);
        assert!(stack_log().contains("stopped"), "{}", stack_log());
    }
}

/// A second signal does not wait for the drain.
#[test]
fn second_sigint_exits_at_once() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("stuck")
            .timeout("30s")
            .rps(5, "60s")
            .step(Step::unnamed("/delay/20000")),
    );
    let running = case.spawn(&server, &["--drain", "20s"]);
    wait_until("requests in flight", Duration::from_secs(15), || {
        server.count("delay") >= 2
    });
    running.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    running.signal(libc::SIGINT);
    let second = Instant::now();
    let outcome = running.finish();
    outcome.expect_code(code::INTERRUPTED);
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "{:?}",
        second.elapsed()
    );
    assert!(
        outcome.stderr.contains("second interrupt"),
        "{}",
        outcome.stderr
    );
}

/// A request still waiting when the drain runs out is recorded as `cancelled` with the time it
/// had waited: a hang the user interrupted must not vanish from the results.
#[test]
fn requests_cut_off_by_a_stop_are_recorded_as_cancelled() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("hang")
            .timeout("30s")
            .rps(5, "60s")
            .step(Step::get("hang", "/delay/20000")),
    );
    let running = case.spawn(&server, &["--drain", "1s"]);
    wait_until("requests in flight", Duration::from_secs(15), || {
        server.count("delay") >= 3
    });
    std::thread::sleep(Duration::from_millis(500));
    running.signal(libc::SIGINT);
    let outcome = running.finish();
    outcome.expect_code(code::INTERRUPTED);
    let r = outcome.results();
    assert_valid_results(&outcome.results_path());
    let cancelled = u(&r["errors"]["cancelled"]);
    assert!(cancelled >= 3, "cancelled {cancelled}: {r:#}");
    let hang = step(&r, "hang");
    assert_eq!(u(&hang["requests"]), cancelled);
    // Their iterations were cut, not done and not failed: they are counted apart.
    assert_eq!(u(&r["interrupted_iterations"]), cancelled, "{r:#}");
    assert_eq!(u(&r["journeys"][0]["iterations"]), 0, "{r:#}");
    assert!(outcome.stdout.contains(&format!(
        "{cancelled} iterations cut part-way by the end of the run"
    )));
    // The oldest had waited at least the half second before the signal plus the drain.
    assert!(f(&hang["latency_ms"]["max"]) >= 1400.0, "{hang:#}");
}

// ---------------------------------------------------------------------------------------------
// Coordinated omission
// ---------------------------------------------------------------------------------------------

fn stall_scenario(load: &str) -> Scenario {
    Scenario::new("stall")
        .timeout("5s")
        .load(load)
        .journey(Journey::new("w").step(work_step()))
}

/// The server freezes for one second, two seconds into the run. At 100 arrivals/s the open
/// model records ~100 requests waiting up to a second out of ~600: p99 close to the stall. A
/// closed model with two VUs sees the same stall but sends only two requests into it, so its
/// p99 stays low — the coordinated omission the open model exists to avoid.
#[test]
fn stall_shows_in_open_model_p99_and_closed_model_hides_it() {
    let _cpu = exclusive_cpu();
    let stall = Stall {
        after: Duration::from_secs(2),
        length: Duration::from_secs(1),
    };
    let stall_ms = stall.length.as_millis() as f64;

    let open_server = TestServer::with_stall(stall);
    let open = Case::new(stall_scenario(
        "start_rps = 100\nmax_vus = 400\npre_allocated_vus = 50\nstages = [{ duration = \"6s\", target_rps = 100 }]",
    ));
    let outcome = open.run(&open_server, &[]);
    outcome.expect_code(code::OK);
    let o = outcome.results();
    assert_valid_results(&outcome.results_path());
    let stalled = open_server
        .state
        .stalled
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        stalled >= 60,
        "~100 requests should hit the stall, {stalled} did"
    );
    let ol = &o["summary"]["latency_ms"];
    assert!(
        f(&ol["p99"]) >= 0.7 * stall_ms,
        "open model p99 {} must reflect the {stall_ms} ms stall",
        ol["p99"]
    );
    assert!(f(&ol["max"]) >= 0.9 * stall_ms, "{ol}");
    assert!(f(&ol["p50"]) < 50.0, "p50 must stay small: {ol}");
    assert_eq!(u(&o["dropped_iterations"]), 0);
    assert!(u(&o["summary"]["requests"]) >= 550);

    let closed_server = TestServer::with_stall(stall);
    let closed = Case::new(stall_scenario(
        "model = \"closed\"\nvus = 2\nduration = \"6s\"",
    ));
    let outcome = closed.run(&closed_server, &[]);
    outcome.expect_code(code::OK);
    let c = outcome.results();
    let cl = &c["summary"]["latency_ms"];
    assert!(
        f(&cl["max"]) >= 0.9 * stall_ms,
        "the closed run must have met the same stall: {cl}"
    );
    assert!(
        f(&cl["p99"]) < 0.2 * stall_ms,
        "closed model p99 {} hides the stall",
        cl["p99"]
    );
    assert!(
        f(&ol["p99"]) >= 5.0 * f(&cl["p99"]),
        "open p99 {} vs closed p99 {}",
        ol["p99"],
        cl["p99"]
    );
}

/// Too few VUs for the arrival rate: arrivals queue, start late, and their latency counts from
/// when they were due, so p99 includes the wait.
#[test]
fn queued_arrivals_count_latency_from_their_intended_start() {
    let _cpu = exclusive_cpu();
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("queued")
            .load(
                r#"start_rps = 40
max_vus = 1
pre_allocated_vus = 1
stages = [{ duration = "2s", target_rps = 40 }]"#,
            )
            .step(Step::get("slow", "/delay/50")),
    );
    let outcome = case.run(&server, &[]);
    outcome.expect_code(code::OK);
    let r = outcome.results();
    assert_valid_results(&outcome.results_path());
    // 80 arrivals, one VU serving 20/s: the k-th waits ~k × 25 ms, up to ~2 s.
    let requests = u(&r["summary"]["requests"]);
    assert_eq!(requests, 80);
    assert_eq!(server.count("delay"), requests);
    assert_eq!(u(&r["dropped_iterations"]), 0);
    let late = u(&r["late_iterations"]);
    assert!(late >= 60, "most arrivals start late: {late}");
    let lag = &r["schedule_lag_ms"];
    assert!(f(&lag["max"]) >= 1500.0, "{lag}");
    let l = &step(&r, "slow")["latency_ms"];
    assert!(f(&l["min"]) >= 50.0, "{l}");
    assert!(f(&l["p50"]) >= 700.0, "the wait counts: {l}");
    assert!(f(&l["p99"]) >= 1500.0, "the wait counts: {l}");
    assert!(
        f(&l["max"]) >= f(&lag["max"]) + 49.0,
        "the latest arrival's latency is its wait plus the service time: {l} vs lag {lag}"
    );
    let journey = &r["journeys"][0]["latency_ms"];
    assert!(f(&journey["p99"]) >= 1500.0, "{journey}");
}

// ---------------------------------------------------------------------------------------------
// results.json and latency.hlog, read by other tools
// ---------------------------------------------------------------------------------------------

const HDR_READBACK: &str = r#"
import base64, json, math
results = json.load(open(sys.argv[1]))

def at(h, q):
    # The rank Rust's (and Java's) HdrHistogram use; Python's rounds instead of ceiling.
    n = h.get_total_count()
    rank = max(1, math.ceil(q * n))
    return h.get_value_at_percentile(100.0 * rank / n)

def stats(h):
    return {"count": h.get_total_count(), "p50": at(h, 0.5), "p99": at(h, 0.99),
            "max": h.get_max_value(), "min": h.get_min_value()}

reader = hdrh.log.HistogramLogReader(sys.argv[2], hdrh.histogram.HdrHistogram(1, 3600000000, 3))
total = hdrh.histogram.HdrHistogram(1, 3600000000, 3)
tagged = {}
lines = 0
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    lines += 1
    tag = h.get_tag()
    if tag is None:
        total.add(h)
    else:
        tagged.setdefault(tag, hdrh.histogram.HdrHistogram(1, 3600000000, 3)).add(h)

steps = {}
for s in results["steps"]:
    h = hdrh.histogram.HdrHistogram.decode(s["histogram"])
    steps[s["journey"] + "/" + s["name"]] = stats(h)
summary = stats(hdrh.histogram.HdrHistogram.decode(results["summary"]["histogram"]))
print(json.dumps({"lines": lines, "hlog": stats(total),
                  "hlog_tags": {t: stats(h) for t, h in tagged.items()},
                  "steps": steps, "summary": summary}))
"#;

/// Equal within HdrHistogram's 3 significant digits (µs values, compared in ms).
fn assert_close(what: &str, python_us: &Value, results_ms: &Value) {
    let p = f(python_us) / 1000.0;
    let r = f(results_ms);
    assert!(
        (p - r).abs() <= r.abs() * 1e-3 + 0.001,
        "{what}: Python hdrh says {p} ms, results.json {r} ms"
    );
}

#[test]
fn results_match_the_schema_and_hdr_outputs_read_back_in_python() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("readback")
            .rps(30, "3s")
            .step(Step::get("varied", "/delay/{{random_int 1 30}}"))
            .step(Step::get("fast", "/work")),
    );
    let outcome = case.run(&server, &[]);
    outcome.expect_code(code::OK);
    let results_path = outcome.results_path();
    assert_valid_results(&results_path);
    let r = outcome.results();
    let requests = u(&r["summary"]["requests"]);
    assert!(requests >= 150, "{requests}");

    let (ok, out) = python(
        &["hdrh.histogram", "hdrh.log"],
        HDR_READBACK,
        &[&results_path, &outcome.out.join("latency.hlog")],
    );
    assert!(ok, "{out}");
    let py: Value = serde_json::from_str(out.trim()).expect("python printed JSON");

    // The interval log, all untagged lines added up = every request of the run.
    let hlog = &py["hlog"];
    assert_eq!(u(&hlog["count"]), requests, "hlog total count");
    let summary = &r["summary"]["latency_ms"];
    for stat in ["p50", "p99", "max"] {
        assert_close(&format!("hlog {stat}"), &hlog[stat], &summary[stat]);
    }
    assert_eq!(py["summary"]["count"], hlog["count"]);
    // Tagged lines: each step's share.
    for s in r["steps"].as_array().unwrap() {
        let tag = format!(
            "{}/{}",
            s["journey"].as_str().unwrap(),
            s["name"].as_str().unwrap()
        );
        let from_log = &py["hlog_tags"][&tag];
        assert_eq!(u(&from_log["count"]), u(&s["requests"]), "hlog tag {tag}");
        let from_blob = &py["steps"][&tag];
        assert_eq!(
            u(&from_blob["count"]),
            u(&s["requests"]),
            "step {tag} histogram"
        );
        for stat in ["min", "p50", "p99", "max"] {
            assert_close(
                &format!("step {tag} {stat}"),
                &from_blob[stat],
                &s["latency_ms"][stat],
            );
            assert_close(
                &format!("hlog tag {tag} {stat}"),
                &from_log[stat],
                &s["latency_ms"][stat],
            );
        }
    }
    let varied = &step(&r, "varied")["latency_ms"];
    assert!(
        f(&varied["max"]) >= 20.0 && f(&varied["min"]) >= 1.0,
        "{varied}"
    );
    assert!(u(&py["lines"]) > r["timeline"].as_array().unwrap().len() as u64);

    // The timeline: one point per second from 0, adding up to the run's totals.
    let timeline = r["timeline"].as_array().unwrap();
    let ts: Vec<u64> = timeline.iter().map(|p| u(&p["t"])).collect();
    assert_eq!(ts, (0..ts.len() as u64).collect::<Vec<_>>());
    assert!(ts.len() >= 3, "{ts:?}");
    let per_second: u64 = timeline.iter().map(|p| u(&p["requests"])).sum();
    assert_eq!(per_second, requests);
    let targets: Vec<f64> = timeline.iter().map(|p| f(&p["target_rps"])).collect();
    // The plan covers seconds 0..3; a last, partial second may hold responses still in flight.
    assert!(targets.len() <= 4, "{targets:?}");
    assert_eq!(targets[..3], [30.0, 30.0, 30.0], "target_rps per second");
    assert!(targets[3..].iter().all(|&t| t == 0.0), "{targets:?}");

    // The schema catches drift: an unknown field, a missing one, a wrong error kind.
    let mut doc = r.clone();
    doc["summary"]["p42"] = Value::from(1);
    let drifted = outcome.out.join("drifted.json");
    std::fs::write(&drifted, doc.to_string()).unwrap();
    let err = schema_verdict(&drifted).expect_err("unknown field accepted");
    assert!(err.contains("p42"), "{err}");
    let mut doc = r.clone();
    doc["steps"][0].as_object_mut().unwrap().remove("histogram");
    std::fs::write(&drifted, doc.to_string()).unwrap();
    let err = schema_verdict(&drifted).expect_err("missing field accepted");
    assert!(err.contains("histogram"), "{err}");
    let mut doc = r.clone();
    doc["errors"]["teapot"] = Value::from(0);
    std::fs::write(&drifted, doc.to_string()).unwrap();
    schema_verdict(&drifted).expect_err("unknown error kind accepted");
}

/// Every documented exit code is produced by the binary somewhere in these tests (6 and 7 in
/// tests/distributed.rs); this pins the library's constants to the same table.
#[test]
fn exit_codes_are_the_documented_ones() {
    use peakload::cmd::exit;
    let codes = [
        code::OK,
        code::THRESHOLDS,
        code::INVALID,
        code::INTERRUPTED,
        code::UNREACHABLE,
        code::UNWRITTEN,
        code::START_MISSED,
        code::INCOMPLETE,
    ];
    assert_eq!(
        [
            exit::OK,
            exit::THRESHOLDS,
            exit::INVALID,
            exit::ABORTED,
            exit::UNREACHABLE,
            exit::UNWRITTEN,
            exit::START_MISSED,
            exit::INCOMPLETE,
        ],
        codes
    );
    assert_eq!([0, 1, 2, 3, 4, 5, 6, 7], codes);
}

/// A reader that leaves early (`peakload run … 2>&1 | head`): the run goes on, writes every file
/// and exits with its own code. `print!` and `eprintln!` panicked on the closed pipes (exit 101)
/// before the report was written.
#[test]
fn a_run_whose_output_pipes_close_early_still_writes_everything() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(work_scenario("pipes", 20, 2).thresholds(&["http.p99 < 2s"]));
    // Without -q: progress lines on standard error as well as the summary on standard output.
    let mut cmd = case.run_command(&case.out());
    cmd.arg("--target").arg(server.url());
    // Both pipes' readers are gone before the process starts, so its first write fails.
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(reader_gone())
        .stderr(reader_gone())
        .spawn()
        .expect("start peakload");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("peakload did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(code::OK), "{status:?}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(case.out().join("results.json")).unwrap())
            .unwrap();
    assert!(u(&results["summary"]["requests"]) >= 30, "{results}");
    assert!(case.out().join("report.html").is_file());
    assert!(case.out().join("latency.hlog").is_file());
}

/// Where standard output is what was asked for (`check`, `diagnose`, `history`), failing to
/// write it is a failure, said on standard error; a closed pipe is not.
#[test]
fn check_whose_output_cannot_be_written_fails_and_says_why() {
    let case = Case::new(work_scenario("full", 5, 2).base_url("http://127.0.0.1:9"));
    let mut cmd = peakload();
    cmd.arg("check").arg(case.scenario());
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let output = cmd
        .stdin(std::process::Stdio::null())
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run peakload check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code::INVALID), "{stderr}");
    assert!(
        stderr.contains("cannot write to standard output"),
        "{stderr}"
    );
    let mut cmd = peakload();
    cmd.arg("check").arg(case.scenario());
    let status = cmd
        .stdin(std::process::Stdio::null())
        .stdout(reader_gone())
        .status()
        .expect("run peakload check");
    assert_eq!(status.code(), Some(code::OK));
}

/// The writing end of a pipe whose reading end is already closed.
fn reader_gone() -> std::process::Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `pipe` fills both descriptors on success; each is then owned exactly once.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    std::process::Stdio::from(write)
}

/// Regression: a threshold that could not be measured (its step never ran) was stored as NaN,
/// which JSON writes as `null` and the results model could not read back, so nothing
/// downstream (gate, report, merge) could load that results.json.
#[test]
fn unmeasurable_threshold_is_null_and_results_read_back_into_the_model() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("unmeasured")
            .thresholds(&["never.p99 < 100ms", "first.requests > 0"])
            .rps(10, "1s")
            // /work answers "ok": not JSON.
            .step(Step::get("first", "/work").extract(r#"{ token = { json = "$.token" } }"#))
            .step(Step::get("never", "/me").headers(BEARER)),
    );
    let outcome = case.run(&server, &[]);
    outcome.expect_code(code::THRESHOLDS);
    assert_valid_results(&outcome.results_path());
    let r = outcome.results();
    assert_eq!(
        server.count("me"),
        0,
        "a failed extraction ends the iteration"
    );
    let requests = u(&step(&r, "first")["requests"]);
    assert!(requests >= 5, "{requests}");
    assert_eq!(u(&r["errors"]["extract_failed"]), requests);
    let never = threshold(&r, "never.p99 < 100ms");
    assert_eq!(never["value"], Value::Null, "{never}");
    assert_eq!(never["ok"], false);
    assert_eq!(threshold(&r, "first.requests > 0")["ok"], true);
    assert!(
        outcome.stdout.lines().any(|l| l.contains("✗ FAIL")
            && l.contains("never.p99 < 100ms")
            && l.contains("not measured")),
        "{}",
        outcome.stdout
    );

    let text = std::fs::read_to_string(outcome.results_path()).unwrap();
    let model: peakload::record::results::Results = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("results.json does not read back into the model: {e}"));
    assert_eq!(
        serde_json::to_value(&model).unwrap(),
        r,
        "lossless round trip"
    );
}

/// Secrets sent in headers, queries and bodies never reach results, the log or the console.
#[test]
fn secrets_stay_out_of_results_and_output() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let secret = "s3cr3t-Zq81xV";
    let case = Case::new(
        Scenario::new("secrets")
            .rps(10, "1s")
            .step(
                Step::get("denied", "/status/401")
                    .query(r#"{ api_key = "{{env.E2E_SECRET}}" }"#)
                    .headers(r#"{ Authorization = "Bearer {{env.E2E_SECRET}}" }"#),
            )
            .step(
                Step::named("post")
                    .set("method", r#""POST""#)
                    .set("url", r#""http://127.0.0.1:9/echo?key={{env.E2E_SECRET}}""#)
                    .json(r#"{ password = "{{env.E2E_SECRET}}" }"#),
            ),
    );
    let outcome = case.run_with_env(&server, &[], &[("E2E_SECRET", secret)]);
    outcome.expect_code(code::OK);
    let r = outcome.results();
    assert!(u(&r["errors"]["http_4xx"]) >= 5, "{}", r["errors"]);
    assert!(u(&r["errors"]["connect_refused"]) >= 5, "{}", r["errors"]);
    assert!(!r["error_samples"].as_array().unwrap().is_empty());
    for (what, text) in [
        (
            "results.json",
            std::fs::read_to_string(outcome.results_path()).unwrap(),
        ),
        (
            "latency.hlog",
            std::fs::read_to_string(outcome.out.join("latency.hlog")).unwrap(),
        ),
        ("stdout", outcome.stdout.clone()),
        ("stderr", outcome.stderr.clone()),
    ] {
        assert!(
            !text.contains(secret),
            "the secret leaked into {what}:\n{text}"
        );
    }
}

/// `peakload stack up` is the stack in the foreground: its ready line, its answers, and a
/// graceful exit on SIGTERM.
#[test]
fn stack_up_runs_the_reference_stack_in_the_foreground() {
    let _cpu = shared_cpu();
    let data = tempfile::tempdir().unwrap();
    let mut cmd = peakload();
    cmd.args(["stack", "up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path());
    let stack = StackProcess::start(cmd);
    assert!(stack.url.starts_with("http://"), "{}", stack.url);
    let answer = http(&stack.url, "GET", "/healthz", &[], "");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let status = stack.terminate();
    assert_eq!(status.code(), Some(0));
}

/// `think` follows the last step too: it paces a closed-model VU between iterations.
#[test]
fn think_after_the_last_step_paces_closed_model_vus() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("paced")
            .vus(2, "2s")
            .step(Step::get("only", "/status/200").think("200ms")),
    );
    let outcome = case.run(&server, &[]);
    outcome.expect_code(code::OK);
    let sent = server.count("status");
    // 2 VUs × 2 s / 200 ms = 20 iterations; without the pause it would be thousands.
    assert!((10..=24).contains(&sent), "{sent} requests");
}

/// A failed JSON check says what kind of value it found, never the value: responses carry
/// tokens and personal data.
#[test]
fn failed_json_checks_do_not_quote_the_response() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let secret = "tok-9f8e7d6c5b4a";
    let case = Case::new(
        Scenario::new("quiet-checks").rps(5, "1s").step(
            Step::post("echo", "/echo")
                .json(&format!(r#"{{ token = "{secret}" }}"#))
                .check(r#"{ json = { "$.token" = "nope" } }"#),
        ),
    );
    let outcome = case.run(&server, &[]);
    outcome.expect_code(code::OK);
    let results = std::fs::read_to_string(outcome.results_path()).unwrap();
    assert!(results.contains("check_failed"), "{results}");
    assert!(results.contains("another string (16 chars)"), "{results}");
    for (what, text) in [
        ("results.json", results.as_str()),
        ("stdout", outcome.stdout.as_str()),
        ("stderr", outcome.stderr.as_str()),
    ] {
        assert!(
            !text.contains(secret),
            "the token leaked into {what}:\n{text}"
        );
    }
}

/// Regression: a stack that could not start because its log could not be written was reported
/// with an empty reason. A log on a full disk (/dev/full) is now refused before the stack is
/// started, naming the file and the OS error; a stack that exits without writing anything
/// says so, with its exit status.
#[test]
fn a_stack_start_up_failure_says_why_even_without_a_log() {
    let scenario = Scenario::new("stacked")
        .base_url("stack")
        .rps(5, "2s")
        .step(Step::get("products", "/api/products"));

    let case = Case::new(&scenario);
    std::fs::create_dir_all(case.out()).unwrap();
    std::os::unix::fs::symlink("/dev/full", case.out().join("stack.log")).unwrap();
    let mut cmd = case.run_command(&case.out());
    cmd.arg("-q").env("PEAKLOAD_STACK_BIN", "/bin/true");
    let outcome = run(cmd);
    outcome.expect_code(code::INVALID);
    assert!(
        outcome.stderr.contains("stack.log") && outcome.stderr.contains("No space left"),
        "{}",
        outcome.stderr
    );
    assert!(!case.out().join("results.json").exists());

    let case = Case::new(&scenario);
    let mut cmd = case.run_command(&case.out());
    cmd.arg("-q").env("PEAKLOAD_STACK_BIN", "/bin/false");
    let outcome = run(cmd);
    outcome.expect_code(code::UNREACHABLE);
    assert!(
        outcome.stderr.contains("exit status: 1")
            && outcome.stderr.contains("wrote nothing to its log")
            && outcome.stderr.contains("stack.log"),
        "{}",
        outcome.stderr
    );
}

/// `peakload check <scenario>` with its output in files; the exit code, the child's own peak
/// resident memory in KiB (wait4), its time, and what it printed.
fn check_measured(case: &Case) -> (i32, i64, Duration, String, String) {
    let (out, err) = (case.dir().join("check.out"), case.dir().join("check.err"));
    let started = Instant::now();
    // Reaped by wait4 below, which also gives the child's own peak memory.
    #[allow(clippy::zombie_processes)]
    let child = peakload()
        .arg("check")
        .arg(case.scenario())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; status and usage are valid for writes.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let elapsed = started.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let text = |p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    (code, usage.ru_maxrss, elapsed, text(&out), text(&err))
}

/// Regression: a 10 MB template took 2.9 s and 631 MB to check and echoed the whole value in
/// its error (the "did you mean" hint compared it with every name through a table of its
/// length times each name's). About 10 MB in a body, a path of non-ASCII text and an
/// undefined variable's name are now checked in memory linear in the file, and
/// neither the error nor the description repeats them whole.
#[test]
fn a_10_mb_template_is_checked_in_bounded_time_and_memory() {
    let body = "é{{uuid}}".repeat(1_000_000);
    let path = "/é".repeat(3_300_000);
    let name = "v".repeat(10_000_000);
    let cases = [
        (
            Step::post("big-body", "/p").set("body", format!("\"{body}\"")),
            code::OK,
        ),
        (
            Step::named("big-path").set("path", format!("\"{path}\"")),
            code::OK,
        ),
        (
            Step::get("big-name", "/p").headers(&format!("{{ A = \"{{{{{name}}}}}\" }}")),
            code::INVALID,
        ),
    ];
    for (step, want) in cases {
        let case = Case::new(Scenario::new("big").rps(1, "1s").step(step));
        let (code, rss_kb, elapsed, stdout, stderr) = check_measured(&case);
        let what = format!(
            "exit {code}, {} MB, {elapsed:?}, {} bytes out, {} bytes err\n{}",
            rss_kb / 1024,
            stdout.len(),
            stderr.len(),
            &stderr[..stderr.len().min(2000)]
        );
        eprintln!("10 MB template: {what}");
        assert_eq!(code, want, "{what}");
        // Debug build: 170 MB for the body (a million expressions, a part each), 40 MB for the
        // name (the issue measured 631 MB).
        assert!(rss_kb < 300 * 1024, "{what}");
        assert!(stdout.len() + stderr.len() < 100_000, "{what}");
    }
}
