//! Runs driven from the library, as a program embedding peakload would drive them: the
//! scenario loaded and run in the caller's own runtime, stopped by a cancellation token
//! instead of a signal.

use std::time::{Duration, Instant};

use peakload::cmd::run::{execute, RunOptions};
use peakload::cmd::shutdown::Shutdown;
use peakload::cmd::Outcome;
use tokio_util::sync::CancellationToken;

use crate::util::{assert_valid_results, f, shared_cpu, u, Case, Scenario, Step, TestServer};

/// A token cancelled a second in stops a 60 s run the way the first Ctrl-C does: the load
/// drains, the results are written and say so, and the outcome is `Interrupted`.
#[test]
fn cancelling_the_token_interrupts_a_library_run_and_writes_its_results() {
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let case = Case::new(
        Scenario::new("embedded")
            .rps(20, "60s")
            .step(Step::get("work", "/work").check("{ status = 200 }")),
    );
    let scenario = peakload::scenario::load_scenario(&case.scenario()).expect("a valid scenario");
    let options = RunOptions {
        target: Some(server.url()),
        out: Some(case.out()),
        threads: Some(1),
        drain: Duration::from_secs(2),
        quiet: true,
        no_tui: true,
        insecure: false,
        progress_every: Duration::from_secs(1),
        outputs: Default::default(),
        shard: Default::default(),
    };
    let token = CancellationToken::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    let outcome = rt
        .block_on(async {
            let cancel = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                cancel.cancel();
            });
            // Bounded like every run here: a run that ignores its token fails the test.
            tokio::time::timeout(
                Duration::from_secs(30),
                execute(scenario, &options, Shutdown::from_token(token)),
            )
            .await
            .expect("the run stops within 30 s of its start")
        })
        .expect("the run ends without a failure");
    let elapsed = started.elapsed();

    assert_eq!(outcome, Outcome::Interrupted);
    assert!(
        elapsed < Duration::from_secs(10),
        "stopped after {elapsed:?}"
    );
    let path = case.out().join("results.json");
    assert_valid_results(&path);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("results.json written"))
            .expect("results.json is JSON");
    assert_eq!(r["status"], "interrupted");
    let requests = u(&r["summary"]["requests"]);
    assert!(requests > 0, "{requests}");
    assert!(requests <= server.count("work"), "{requests}");
    assert!(f(&r["duration_s"]) < 10.0, "{}", r["duration_s"]);
}
