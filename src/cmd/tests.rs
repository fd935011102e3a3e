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

/// A worker thread that panics makes the run aborted (exit 3), never "completed" with exit 0;
/// the message says which thread and why.
#[test]
fn a_worker_panic_is_an_aborted_run() {
    let spawn = |name: &str, fail: bool| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if fail {
                    panic!("overflow when adding duration to instant {}", 1);
                }
            })
            .unwrap()
    };
    let why = run::join_workers(vec![
        spawn("peakload-worker-0", false),
        spawn("peakload-worker-1", true),
    ])
    .expect("the panic is seen");
    assert!(
        why.contains("peakload-worker-1") && why.contains("overflow when adding duration"),
        "{why}"
    );
    assert_eq!(
        run::join_workers(vec![spawn("peakload-worker-0", false)]),
        None
    );
    let failure: Result<Outcome, super::Failure> = Err(super::Failure::Aborted(why));
    assert_eq!(super::exit_code(&failure), super::exit::ABORTED);
}

/// A password in a step's URL and the values of its query (API keys) reach neither
/// results.json, nor report.html, nor what `check` prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_a_step_url_are_in_no_output() {
    let server = ScriptedServer::start(
        Transport::Tcp,
        vec![(0..8).flat_map(|_| answer(&ok("x"))).collect()],
    )
    .await;
    let authority = server.url().trim_start_matches("http://").to_string();
    let src = format!(
        r#"name = "secrets"
[load]
rps = 2
duration = "1s"
[[journey]]
name = "j"
  [[journey.step]]
  url = "http://user:PASS@{authority}/a?api_key=SECRET&page=2"
"#
    );
    let scenario = crate::scenario::parse_scenario(&src, Path::new("s.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = super::check::describe_plan(&scenario);
    assert!(plan.contains("?api_key=…&page=…"), "{plan}");
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        target: None,
        out: Some(dir.path().to_path_buf()),
        threads: Some(1),
        drain: Duration::from_secs(5),
        quiet: true,
        no_tui: true,
        insecure: true,
        progress_every: Duration::from_secs(5),
        outputs: OutputFlags::default(),
        shard: Default::default(),
    };
    run::execute(
        scenario,
        &options,
        Shutdown::from_token(CancellationToken::new()),
    )
    .await
    .unwrap_or_else(|e| panic!("the run failed: {e:?}"));
    let r = Results::load(&dir.path().join("results.json")).unwrap();
    assert!(r.summary.requests >= 1);
    assert_eq!(
        r.steps[0].path,
        format!("http://{authority}/a?api_key=…&page=…")
    );
    for (what, text) in [
        ("check", plan),
        (
            "results.json",
            std::fs::read_to_string(dir.path().join("results.json")).unwrap(),
        ),
        (
            "report.html",
            std::fs::read_to_string(dir.path().join("report.html")).unwrap(),
        ),
    ] {
        assert!(
            !text.contains("PASS") && !text.contains("SECRET") && !text.contains("user:"),
            "{what} leaks a credential"
        );
    }
}

fn quiet_options(out: &Path, outputs: OutputFlags, target: String) -> RunOptions {
    RunOptions {
        target: Some(target),
        out: Some(out.to_path_buf()),
        threads: Some(1),
        drain: Duration::from_secs(5),
        quiet: true,
        no_tui: true,
        insecure: true,
        progress_every: Duration::from_secs(5),
        outputs,
        shard: Default::default(),
    }
}

const TWO_REQUESTS: &str = r#"name = "out"
base_url = "http://127.0.0.1:9"
[load]
rps = 2
duration = "1s"
[[journey]]
name = "j"
  [[journey.step]]
  name = "s"
  path = "/"
"#;

/// An output that cannot be written is found before anything is sent: exit 2, the server saw
/// no request, and the output directory the run made is not left behind empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_output_stops_the_run_before_anything_is_sent() {
    let server = ScriptedServer::start(
        Transport::Tcp,
        vec![(0..4).flat_map(|_| answer(&ok("x"))).collect()],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    for outputs in [
        OutputFlags {
            junit: Some(blocker.join("junit.xml")),
            summary_md: None,
        },
        OutputFlags {
            junit: None,
            summary_md: Some(blocker.join("summary.md")),
        },
        // The JUnit path's new directories are made for its check, then removed again when
        // a later check fails.
        OutputFlags {
            junit: Some(dir.path().join("new/deeper/junit.xml")),
            summary_md: Some(blocker.join("summary.md")),
        },
    ] {
        let out = dir.path().join("out");
        let scenario =
            crate::scenario::parse_scenario(TWO_REQUESTS, Path::new("s.toml"), &|_| None).unwrap();
        let result = run::execute(
            scenario,
            &quiet_options(&out, outputs, server.url()),
            Shutdown::from_token(CancellationToken::new()),
        )
        .await;
        let Err(e) = &result else {
            panic!("{result:?}")
        };
        assert_eq!(super::exit_code(&result), super::exit::INVALID, "{e}");
        assert!(e.to_string().contains("a-file"), "{e}");
        assert!(!out.exists(), "an empty output directory is left");
        assert!(
            !dir.path().join("new").exists(),
            "an empty directory is left"
        );
    }
    // The run made its preflight connection, but no request.
    assert!(server.settle(0).await.is_empty());
}

/// Regression: an unreachable target (exit 4) left the output directories the run had made
/// (the default `reports/` among them) behind, empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_leaves_no_empty_output_directories() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports/run-1");
    let scenario =
        crate::scenario::parse_scenario(TWO_REQUESTS, Path::new("s.toml"), &|_| None).unwrap();
    let result = run::execute(
        scenario,
        &quiet_options(&out, OutputFlags::default(), closed),
        Shutdown::from_token(CancellationToken::new()),
    )
    .await;
    assert_eq!(
        super::exit_code(&result),
        super::exit::UNREACHABLE,
        "{result:?}"
    );
    assert!(
        !dir.path().join("reports").exists(),
        "empty directories left"
    );
}

/// The HDR log on a full disk (/dev/full): the load was sent, results.json is still written
/// whole, and the run ends with its own exit code and says what was not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_after_the_load_has_its_own_exit_code() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let server = ScriptedServer::start(
        Transport::Tcp,
        vec![(0..4).flat_map(|_| answer(&ok("x"))).collect()],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::symlink("/dev/full", out.join("latency.hlog")).unwrap();
    let scenario =
        crate::scenario::parse_scenario(TWO_REQUESTS, Path::new("s.toml"), &|_| None).unwrap();
    let result = run::execute(
        scenario,
        &quiet_options(&out, OutputFlags::default(), server.url()),
        Shutdown::from_token(CancellationToken::new()),
    )
    .await;
    assert_eq!(
        super::exit_code(&result),
        super::exit::UNWRITTEN,
        "{result:?}"
    );
    let e = result.unwrap_err().to_string();
    assert!(
        e.contains("HDR interval log") && e.contains("No space"),
        "{e}"
    );
    let r = Results::load(&out.join("results.json")).unwrap();
    assert_eq!(r.summary.requests, 2);
    assert!(out.join("report.html").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The shipped scenarios, mutated (spliced tokens that broke `check` before: non-ASCII text,
/// huge numbers and durations, template and table brackets; deleted and duplicated ranges),
/// go through the compiler and `check`'s description without a panic. Deterministic seeds, so a
/// failure names the input that broke.
#[test]
fn mutated_scenarios_never_panic_check() {
    const TOKENS: &[&str] = &[
        "é",
        "éééé",
        "\u{0}",
        "\"",
        "'",
        "{{",
        "}}",
        "{{user.",
        "[[",
        "]]",
        "[",
        "]",
        "{",
        "}",
        "=",
        ",",
        "\n",
        "18446744073709551615s",
        "8784h",
        "1e308",
        "1.797e308",
        "-1",
        "nan",
        "inf",
        "4294967295",
        "0",
        "http://",
        "http://[::1",
        ":99999",
        "user:PASS@",
        "?k=",
        "%",
        "#",
        "..",
        "weight = ",
        "optional = true",
        "duration = ",
        "target_rps = ",
        "max_vus = ",
        "vus = ",
        "url = ",
        "settle = ",
        "[observe]\nscrape = [\"é\"]\n",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut checked = 0;
    for file in ["black-friday.toml", "breaking-point.toml", "smoke.toml"] {
        let path = dir.join(file);
        let original = std::fs::read_to_string(&path).unwrap();
        for seed in 0..300u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut text = original.clone();
            for _ in 0..rng.usize(1..4) {
                let mut at = rng.usize(0..=text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match rng.u8(0..3) {
                    0 => text.insert_str(at, TOKENS[rng.usize(0..TOKENS.len())]),
                    1 => {
                        let mut end = (at + rng.usize(0..40)).min(text.len());
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        text.replace_range(at..end, "");
                    }
                    _ => {
                        let mut end = (at + rng.usize(0..200)).min(text.len());
                        while !text.is_char_boundary(end) {
                            end -= 1;
                        }
                        let copy = text[at..end].to_string();
                        text.insert_str(at, &copy);
                    }
                }
            }
            let outcome = std::panic::catch_unwind(|| {
                if let Ok(s) = crate::scenario::parse_scenario(&text, &path, &|_| None) {
                    let _ = super::check::describe_plan(&s);
                    let _ = crate::plan::Plan::new(&s.load).target_in_second(0);
                }
            });
            assert!(outcome.is_ok(), "{file} seed {seed} panicked on:\n{text}");
            checked += 1;
        }
    }
    assert_eq!(checked, 900);
}
