//! The run history end to end, through the binary: runs recorded with `run --history` against
//! the harness server, a slower system caught by the gate on the right step, an intended change
//! accepted and not alerted again; the CSV import's errors and a replay with `gate --run`, on a
//! SQLite file and on the PostgreSQL server; and a database fault planted in the bundled stack
//! caught on the step that reads the database.

use std::path::Path;
use std::time::Duration;

use crate::util::stack::StackProcess;
use crate::util::{
    code, exclusive_cpu, peakload, run_within, shared_cpu, Case, Journey, Outcome, Scenario, Step,
    TestServer,
};

/// Two steps: `home` fast, `checkout` as slow as the server's `/slow` is set.
fn shop(server: &TestServer) -> Case {
    Case::new(
        Scenario::new("history-e2e")
            .base_url(server.url())
            .timeout("2s")
            .rps(40, "1s")
            // p50 alone: about a hundred judgements of near-identical runs make up this test,
            // and every gated metric more is another chance of the calibrated false alarm
            // (about one judgement in a thousand) failing it on a busy machine. A 5 ms floor,
            // nine times below the planted slowdown (15 -> 60 ms): the sub-millisecond steps
            // moved 0.46 -> 0.73 ms in one CI run from the machine's other work, and twice
            // that would pass the default floor of half a millisecond.
            .section("[gate]\n\"*\" = \"off\"\np50 = { gated = true, min_absolute = 5 }")
            .journey(
                // Two fast steps to the slow one: with one of each, the whole run's p50 is the
                // slowest fast request or the fastest slow one, whichever a single request
                // decides (a `.ci/run` saw it "regress" from 1.4 to 5.2 ms on an unchanged run).
                Journey::new("buy")
                    .step(Step::get("home", "/status/200"))
                    .step(Step::get("about", "/status/200"))
                    .step(Step::get("checkout", "/slow")),
            ),
    )
}

fn history(db: &str, args: &[&str]) -> Outcome {
    let mut cmd = peakload();
    cmd.arg("history").args(args).arg("--history").arg(db);
    run_within(cmd, Duration::from_secs(60))
}

fn gate(db: &str, args: &[&str]) -> Outcome {
    let mut cmd = peakload();
    cmd.arg("gate").args(args).arg("--history").arg(db);
    run_within(cmd, Duration::from_secs(60))
}

/// `run --history` on one thread; the exit code and the output.
fn recorded_run(case: &Case, server: &TestServer, db: &Path) -> Outcome {
    recorded_run_with(case, server, db, &[])
}

fn recorded_run_with(case: &Case, server: &TestServer, db: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = case.command(
        server,
        &[&["--threads", "1", "--drain", "2s"], extra].concat(),
    );
    cmd.arg("--history")
        .arg(db)
        .arg("--environment")
        .arg("ci")
        .env_remove("GITHUB_SHA")
        .env("CI_COMMIT_SHA", "feedc0de");
    crate::util::spawn(cmd).writing_to(case.out()).finish()
}

fn gate_lines(out: &Outcome) -> Vec<&str> {
    out.stdout
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.contains(": REGRESSED:")
                || l.contains(": unchanged:")
                || l.contains(": improved:")
                || l.contains(": insufficient history")
        })
        .collect()
}

#[test]
fn slower_checkout_fails_the_gate_and_an_accepted_change_does_not_alert_again() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    server.set_slow_ms(15);
    let case = shop(&server);
    let db = case.dir().join("history.db");

    // The first runs have nothing to be compared with, then a baseline builds up.
    for i in 0..10 {
        let out = recorded_run(&case, &server, &db);
        out.expect_code(code::OK);
        if i == 0 {
            assert!(
                out.stdout.contains("insufficient history"),
                "{}",
                out.stdout
            );
        }
    }
    let last_good = recorded_run(&case, &server, &db);
    last_good.expect_code(code::OK);
    assert!(
        last_good.stdout.contains("gate: no regression"),
        "{}",
        last_good.stdout
    );

    // The same scenario against a slower checkout.
    server.set_slow_ms(60);
    let junit = case.dir().join("junit.xml");
    let summary = case.dir().join("summary.md");
    let slow = recorded_run_with(
        &case,
        &server,
        &db,
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--summary-md",
            summary.to_str().unwrap(),
        ],
    );
    slow.expect_code(code::REGRESSED);
    // The verdicts reach results.json (valid against the schema), the report's trend, the
    // JUnit XML (a regression, not a threshold) and the Markdown summary.
    crate::util::assert_valid_results(&slow.results_path());
    let results = slow.results();
    let gated = results["regression"]["metrics"].as_array().unwrap();
    let p50 = gated
        .iter()
        .find(|m| m["scope"] == "buy/checkout" && m["metric"] == "p50")
        .unwrap();
    assert_eq!(p50["verdict"], "regressed");
    assert_eq!(p50["trend"].as_array().unwrap().len(), 12);
    let report = std::fs::read_to_string(case.out().join("report.html")).unwrap();
    assert!(
        report.contains("<section id=\"trend\">"),
        "no trend section"
    );
    assert!(report.contains("class=\"current regressed\""));
    let cases = crate::util::python::junit_cases(&junit);
    assert!(
        cases.iter().any(|c| c.starts_with("suite|regression|")),
        "{cases:?}"
    );
    assert!(
        cases
            .iter()
            .any(|c| c.starts_with("case|buy/checkout p50|False|buy/checkout p50: REGRESSED")),
        "{cases:?}"
    );
    assert!(
        cases
            .iter()
            .any(|c| c.starts_with("case|buy/home p50|True|")),
        "{cases:?}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("Regressed against the history"), "{md}");
    assert!(md.contains("- ❌ buy/checkout p50: REGRESSED"), "{md}");
    let lines = gate_lines(&slow);
    let regressed: Vec<&&str> = lines.iter().filter(|l| l.contains("REGRESSED")).collect();
    assert!(
        regressed
            .iter()
            .any(|l| l.starts_with("buy/checkout p50: REGRESSED")),
        "{}",
        slow.stdout
    );
    assert!(
        !regressed.iter().any(|l| l.starts_with("buy/home")),
        "the fast step did not change: {}",
        slow.stdout
    );
    assert!(slow.stdout.contains("gate: "), "{}", slow.stdout);

    // The same results judged without recording (`gate results.json`): the same verdict,
    // its own recorded copy not counted as history.
    let again = gate(
        db.to_str().unwrap(),
        &[slow.results_path().to_str().unwrap(), "--environment", "ci"],
    );
    again.expect_code(code::REGRESSED);
    assert!(
        again.stdout.contains("buy/checkout p50: REGRESSED")
            && again.stdout.contains("over 11 run(s)"),
        "{}",
        again.stdout
    );

    // Adding the same results file again adds nothing.
    let dup = history(
        db.to_str().unwrap(),
        &[
            "add",
            slow.results_path().to_str().unwrap(),
            "--environment",
            "ci",
        ],
    );
    dup.expect_code(code::OK);
    assert!(
        dup.stdout.contains("already recorded as run #"),
        "{}",
        dup.stdout
    );

    // The history holds the 12 runs, labelled.
    let list = history(db.to_str().unwrap(), &["list"]);
    list.expect_code(code::OK);
    let rows: Vec<&str> = list
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(rows.len(), 12, "{}", list.stdout);
    assert!(rows
        .iter()
        .all(|r| r.contains("history-e2e") && r.contains("ci") && r.contains("feedc0de")));
    let slow_id = rows
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches('#')
        .to_string();

    // A replay of the slow run, judged by the scenario's [gate] as the run was, gives the same
    // verdict; the run before it passes. (Without the scenario every metric is judged: a
    // sub-millisecond step's p95 moving 0.4 -> 0.6 ms over the last runs on a busy CI machine
    // failed the replay, the false alarm the scenario's p50-only gate exists to avoid.)
    let scenario = case.scenario();
    let replay = |run: &str| {
        gate(
            db.to_str().unwrap(),
            &["--run", run, "--scenario", scenario.to_str().unwrap()],
        )
    };
    replay(&slow_id).expect_code(code::REGRESSED);
    let before = (slow_id.parse::<i64>().unwrap() - 1).to_string();
    replay(&before).expect_code(code::OK);

    // show prints the series, the slow value last.
    let show = history(db.to_str().unwrap(), &["show", &slow_id]);
    show.expect_code(code::OK);
    assert!(show.stdout.contains("buy/checkout"), "{}", show.stdout);
    assert!(
        show.stdout.contains("commit       feedc0de"),
        "{}",
        show.stdout
    );

    // Not accepted, the next slow run still fails.
    recorded_run(&case, &server, &db).expect_code(code::REGRESSED);

    // The slowdown was intended: accepted, the following runs build a new baseline, and the
    // gate does not alert on them again.
    history(db.to_str().unwrap(), &["accept", &slow_id]).expect_code(code::OK);
    for _ in 0..9 {
        let out = recorded_run(&case, &server, &db);
        assert_eq!(out.code, code::OK, "{}", out.stdout);
    }
    let judged = recorded_run(&case, &server, &db);
    judged.expect_code(code::OK);
    let lines = gate_lines(&judged);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("buy/checkout p50: unchanged")),
        "judged against the accepted level: {}",
        judged.stdout
    );
}

#[test]
fn csv_import_reports_bad_rows_and_replays_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "run_id,time,scenario,step,metric,value\n\
         r1,2026-11-01T10:00:00Z,shop,http,p99,120\n\
         r2,2026-11-02,shop,http,p99,120\n",
    )
    .unwrap();
    let db = dir.path().join("h.db");
    let out = history(db.to_str().unwrap(), &["import", bad.to_str().unwrap()]);
    out.expect_code(code::INVALID);
    assert!(
        out.stderr.contains(&format!("{}:3:4: time", bad.display())),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("nothing was imported"),
        "{}",
        out.stderr
    );

    // Twelve flat runs and a 13th with checkout p95 40 % higher, in PostgreSQL.
    let mut csv = String::from("run_id,time,scenario,step,metric,value,environment\n");
    for i in 1..=13 {
        let p95 = if i == 13 {
            140.0
        } else {
            100.0 + (i % 4) as f64
        };
        csv.push_str(&format!(
            "run-{i},2026-11-{i:02}T10:00:00Z,shop,buy/checkout,p95,{p95},ci\n\
             run-{i},2026-11-{i:02}T10:00:00Z,shop,http,rps,{},ci\n",
            200.0 + (i % 3) as f64
        ));
    }
    let good = dir.path().join("good.csv");
    std::fs::write(&good, csv).unwrap();
    let (url, schema) = crate::util::postgres::fresh_schema();
    // Trust authentication ignores the password; it is there to be kept out of the output.
    let url = url.replacen("postgres@", "postgres:secret@", 1);
    let result = std::panic::catch_unwind(|| {
        let out = history(&url, &["import", good.to_str().unwrap()]);
        out.expect_code(code::OK);
        assert!(out.stdout.contains("imported 13 run(s)"), "{}", out.stdout);
        // Importing again adds nothing.
        let again = history(&url, &["import", good.to_str().unwrap()]);
        assert!(
            again.stdout.contains("imported 0 run(s)"),
            "{}",
            again.stdout
        );
        let list = history(&url, &["list", "--environment", "ci"]);
        let ids: Vec<String> = list
            .stdout
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix('#'))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 13, "{}", list.stdout);
        let judged = gate(&url, &["--run", &ids[12]]);
        judged.expect_code(code::REGRESSED);
        assert!(
            judged.stdout.contains("buy/checkout p95: REGRESSED"),
            "{}",
            judged.stdout
        );
        assert!(
            judged.stdout.contains("http rps: unchanged"),
            "{}",
            judged.stdout
        );
        gate(&url, &["--run", &ids[11]]).expect_code(code::OK);
        // A team that only cares about larger changes says so per metric.
        let lenient = gate(
            &url,
            &["--run", &ids[12], "--gate-policy", "p95:min_effect=50%"],
        );
        lenient.expect_code(code::OK);
        assert!(
            lenient.stdout.contains("buy/checkout p95: unchanged"),
            "{}",
            lenient.stdout
        );
        let bad = gate(&url, &["--run", &ids[12], "--gate-policy", "p95:alpha=2"]);
        bad.expect_code(code::INVALID);
        assert!(
            bad.stderr.contains("alpha must be between 0 and 1"),
            "{}",
            bad.stderr
        );
        // The password never shows.
        assert!(!judged.stdout.contains("secret") && !judged.stderr.contains("secret"));
    });
    crate::util::postgres::drop_schema(&schema);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// The issue's acceptance test: twelve runs recorded against the bundled stack, then a 13th
/// with a database latency fault planted through the stack's own flag fails the gate on the
/// step that reads the database, and a 13th without it passes. The catalogue cache is off so
/// every product read goes to the database. Throughput is not gated (`[gate] rps = "off"`):
/// a run slowed by the fault drains longer, which lowers every step's requests per second,
/// the untouched step's too.
///
/// One-second runs on a loaded machine vary a lot (product p50 0.9-8 ms over twelve runs
/// with the load average at 15): the CPU is taken exclusively, and the fault is one second,
/// so the verdict does not ride on the edge of the significance level (a 250 ms fault gave
/// p = 0.0008-0.0012 against alpha 0.001 on such a history). The tail percentiles are not
/// gated: of 25 requests a run, p90-p99 are the two or three slowest, and two runs in a row
/// that met a busier machine (product p99 1.5 -> 3 ms in CI) are a real change the gate is
/// right to report, but not the one this test plants.
#[test]
fn a_database_fault_in_the_bundled_stack_fails_the_gate_on_the_step_that_reads_the_database() {
    let _cpu = exclusive_cpu();
    let stack_dir = tempfile::tempdir().unwrap();
    let stack = StackProcess::all(stack_dir.path(), &["--catalogue-cache-ms", "0"], &[]);
    let case = Case::new(
        Scenario::new("stack-gate")
            .base_url(&stack.url)
            .timeout("4s")
            .rps(25, "1s")
            // p50 alone: a mean of 25 requests moves with one slow request. With every
            // product request held a second, 25 VUs are in flight instead of one, and the
            // steps that do not read the database moved too, by what that concurrency costs
            // a shared 2-core machine: 0.22 -> 0.31 ms, then 1.2 -> 2.6 ms for the first step
            // of each iteration in CI. That is a real change, but not the one planted here: a
            // 20 ms floor is fifty times below the planted second, and still far above what
            // the concurrency costs.
            .section("[gate]\n\"*\" = \"off\"\np50 = { gated = true, min_absolute = 20 }")
            .journey(
                // Two steps that do not read the database to the one that does, so that the
                // whole run's p50 lies inside one step's latencies, not on the edge between two.
                Journey::new("shop")
                    .step(Step::get("health", "/healthz").check("{ status = 200 }"))
                    .step(Step::get("live", "/healthz").check("{ status = 200 }"))
                    .step(
                        Step::get("product", "/api/products/{{random_int 1 200}}")
                            .check("{ status = 200 }"),
                    ),
            ),
    );
    let db = case.dir().join("history.db");
    let run = |out: &Path, history: bool| {
        let mut cmd = case.run_command(out);
        cmd.args(["-q", "--threads", "1", "--drain", "3s"]);
        if history {
            cmd.arg("--history")
                .arg(&db)
                .args(["--environment", "ci", "--commit", "c0ffee"]);
        }
        crate::util::spawn(cmd)
            .writing_to(out.to_path_buf())
            .finish()
    };
    for _ in 0..12 {
        run(&case.out(), true).expect_code(code::OK);
    }

    // Without the fault: judged (not recorded) against the twelve, with the scenario's
    // [gate], it passes.
    let clean_out = case.dir().join("clean");
    run(&clean_out, false).expect_code(code::OK);
    let clean = gate(
        db.to_str().unwrap(),
        &[
            clean_out.join("results.json").to_str().unwrap(),
            "--scenario",
            case.scenario().to_str().unwrap(),
            "--environment",
            "ci",
        ],
    );
    assert_eq!(clean.code, code::OK, "{}\n{}", clean.stdout, clean.stderr);
    assert!(
        clean.stdout.contains("shop/product p50: unchanged"),
        "{}",
        clean.stdout
    );
    assert!(
        !clean.stdout.contains(" rps:"),
        "rps is not gated: {}",
        clean.stdout
    );

    // With a second added to every database operation: regressed on the product step only.
    stack.post_fault(r#"{"db_latency_ms": 1000}"#);
    let faulty = run(&case.out(), true);
    assert_eq!(
        faulty.code,
        code::REGRESSED,
        "{}\n{}",
        faulty.stdout,
        faulty.stderr
    );
    let lines = gate_lines(&faulty);
    let regressed: Vec<&&str> = lines.iter().filter(|l| l.contains("REGRESSED")).collect();
    assert!(
        regressed
            .iter()
            .any(|l| l.starts_with("shop/product p50: REGRESSED")),
        "{}",
        faulty.stdout
    );
    assert!(
        !regressed
            .iter()
            .any(|l| l.starts_with("shop/health") || l.starts_with("shop/live")),
        "the step that does not read the database did not change: {}",
        faulty.stdout
    );
}
