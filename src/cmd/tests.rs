//! `peakload run` end to end, in process: a scenario against the scripted HTTP server through
//! [`run::execute`], read back from the `results.json` it wrote and compared with what the
//! server received.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::run::{self, RunOptions};
use super::shutdown::Shutdown;
use super::Outcome;
use crate::http::tests::server::{answer, ok, ScriptedServer, Split, Step, Transport};
use crate::output::artifacts::OutputFlags;
use crate::record::results::Results;

/// Runs `src` against `server` on one thread and returns what results.json says.
async fn run(src: &str, server: &ScriptedServer, drain: Duration) -> Results {
    let dir = tempfile::tempdir().unwrap();
    let scenario = crate::scenario::parse_scenario(src, Path::new("e2e.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("out");
    let options = RunOptions {
        target: Some(server.url()),
        out: Some(out.clone()),
        threads: Some(1),
        drain,
        quiet: true,
        no_tui: true,
        insecure: true,
        progress_every: Duration::from_secs(5),
        outputs: OutputFlags::default(),
        shard: Default::default(),
    };
    let token = CancellationToken::new();
    let outcome = run::execute(scenario, &options, Shutdown::from_token(token))
        .await
        .unwrap_or_else(|e| panic!("the run failed: {e:?}"));
    assert!(matches!(outcome, Outcome::Success), "{outcome:?}");
    Results::load(&out.join("results.json")).unwrap()
}

/// A server that reads each POST on a reused keep-alive connection and closes without an
/// answer: every POST reached it once, and each is a `connection_reset` in the results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_the_server_closed_on_is_counted_once_and_never_resent() {
    for t in [Transport::Tcp, Transport::Tls] {
        let server = ScriptedServer::start(
            t,
            vec![[answer(&ok("warm")), vec![Step::Read, Step::Close]].concat()],
        )
        .await;
        let src = r#"name = "resend"
base_url = "http://127.0.0.1:9"
[load]
model = "closed"
vus = 1
duration = "1s"
[[journey]]
name = "checkout"
  [[journey.step]]
  name = "cart"
  path = "/cart"
  [[journey.step]]
  name = "order"
  method = "POST"
  path = "/orders"
  json = { sku = "a-1" }
"#;
        let r = run(src, &server, Duration::from_secs(5)).await;
        let got = server.settle(0).await;
        let posts = got.iter().filter(|q| q.method() == "POST").count() as u64;
        let order = r.steps.iter().find(|s| s.name == "order").unwrap();
        assert!(posts >= 2, "{t:?}: {posts} POSTs");
        assert_eq!(
            order.requests, posts,
            "{t:?}: every POST counted, none sent twice"
        );
        assert_eq!(order.errors_by_kind.get("connection_reset"), Some(&posts));
        assert_eq!(r.summary.requests, got.len() as u64);
        assert_eq!(r.retried_requests, 0);
        assert_eq!(r.errors["cancelled"], 0);
    }
}

/// The closed model's end: a slow request in flight when the plan ends finishes within the
/// drain and is counted; nothing is cancelled or cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_closed_model_drains_what_is_in_flight_at_its_end() {
    let mut script = Vec::new();
    for _ in 0..40 {
        script.extend(answer(&ok("f")));
        script.extend([
            Step::Read,
            Step::Pause(Duration::from_millis(300)),
            Step::Write(ok("s"), Split::Whole),
        ]);
    }
    let server = ScriptedServer::start(Transport::Tcp, vec![script]).await;
    let src = r#"name = "drain"
base_url = "http://127.0.0.1:9"
[load]
model = "closed"
vus = 2
duration = "1s"
[[journey]]
name = "j"
  [[journey.step]]
  name = "fast"
  path = "/fast"
  [[journey.step]]
  name = "slow"
  path = "/slow"
"#;
    let r = run(src, &server, Duration::from_secs(5)).await;
    let got = server.settle(0).await;
    assert_eq!(r.errors["cancelled"], 0, "{:?}", r.errors);
    assert_eq!(r.interrupted_iterations, 0);
    assert_eq!(r.summary.errors, 0);
    assert_eq!(r.summary.requests, got.len() as u64);
    assert_eq!(r.summary.iterations * 2, r.summary.requests);
}
