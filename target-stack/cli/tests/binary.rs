//! The `peakload-stack` binary's process contract: one readiness line on stdout, serving,
//! exit 0 on SIGTERM — on its embedded SQLite and on the AWS backends (DynamoDB and SQS in
//! the local AWS API emulator `moto_server`, which `scripts/test` starts).

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use peakload_test_support::{redis_url, require_moto, unique};
use reqwest::StatusCode;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_peakload-stack");

/// A started binary, killed if the test fails before stopping it.
struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and reads its readiness line.
fn start(args: &[&str], envs: &[(&str, &str)]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("peakload-stack listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim()
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    Running { child, stdout, url }
}

/// SIGTERM, then exit 0 within 20 s and nothing more on stdout.
fn stop(mut running: Running) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
    let rc = unsafe { libc::kill(running.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = running.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "peakload-stack did not exit within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut running.stdout, &mut rest).unwrap();
    assert!(rest.is_empty(), "only one line on stdout, then {rest:?}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn binary_announces_readiness_and_exits_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let running = start(
        &[
            "all",
            "--listen",
            "127.0.0.1:0",
            "--seed-users",
            "10",
            "--data-dir",
            dir,
        ],
        &[],
    );
    let status = runtime().block_on(async {
        reqwest::get(format!("{}/readyz", running.url))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, StatusCode::OK);
    stop(running);
}

/// The binary on DynamoDB + SQS in moto, configured the way Terraform configures the ECS
/// tasks (environment variables), creating its tables and queues: login → cart → checkout,
/// a notification delivered, and the AWS gauges in /metrics.
#[test]
fn binary_on_aws_backends_serves_a_shopping_journey() {
    let moto = require_moto();
    let rt = runtime();
    let name = unique("bin");
    let queue = |q: &str| format!("{moto}/123456789012/{name}-{q}");
    let data = tempfile::tempdir().unwrap();
    let (notifications, multivac, dlq) = (queue("notifications"), queue("multivac"), queue("dlq"));
    let envs = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("PEAKLOAD_STACK_DYNAMODB_TABLE", name.as_str()),
        ("PEAKLOAD_STACK_SQS_QUEUE_URL", notifications.as_str()),
        ("PEAKLOAD_STACK_MULTIVAC_QUEUE_URL", multivac.as_str()),
        ("PEAKLOAD_STACK_DLQ_URL", dlq.as_str()),
    ];
    let running = start(
        &[
            "all",
            "--listen",
            "127.0.0.1:0",
            "--seed-users",
            "10",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--aws-endpoint",
            &moto,
            "--aws-create-resources",
        ],
        &envs,
    );
    let base = running.url.clone();
    rt.block_on(async move {
        let http = reqwest::Client::new();
        let post = |path: &str, token: Option<&str>, body: Value| {
            let mut req = http.post(format!("{base}{path}")).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status();
                (status, resp.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let get = |path: &str, token: Option<&str>| {
            let mut req = http.get(format!("{base}{path}"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            async move {
                let resp = req.send().await.unwrap();
                (resp.status(), resp.text().await.unwrap())
            }
        };
        assert_eq!(get("/readyz", None).await.0, StatusCode::OK);
        let (status, login) = post(
            "/api/login",
            None,
            json!({"email": "user3@example.com", "password": "pw-3"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{login}");
        let token = login["token"].as_str().unwrap().to_owned();
        let (status, _) = post(
            "/api/cart/items",
            Some(&token),
            json!({"product_id": 5, "qty": 2}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, cart) = get("/api/cart", Some(&token)).await;
        assert_eq!(status, StatusCode::OK);
        let cart: Value = serde_json::from_str(&cart).unwrap();
        assert_eq!(cart["items"][0]["qty"], 2, "{cart}");
        let (status, order) = post("/api/checkout", Some(&token), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let (_, cart) = get("/api/cart", Some(&token)).await;
        assert!(cart.contains("\"items\":[]"), "cart emptied: {cart}");
        let (status, queued) = post(
            "/api/notifications",
            None,
            json!({"to": "a@example.com", "subject": "s", "body": "b"}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let id = queued["id"].as_i64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, s) = get(&format!("/api/notifications/{id}"), None).await;
            if s.contains("\"sent\"") {
                break;
            }
            assert!(Instant::now() < deadline, "notification not sent: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, metrics) = get("/metrics", None).await;
        assert!(
            metrics.contains("queue_up{queue=\"notifications\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("queue_oldest_message_age_seconds{queue=\"notifications\"}"),
            "{metrics}"
        );
    });
    stop(running);
}

/// The binary with its catalogue cache in Redis, chosen by `PEAKLOAD_STACK_REDIS_URL` (the
/// test Redis, `PEAKLOAD_TEST_REDIS_URL`, which `scripts/test` starts): the second read of a
/// product is a hit.
#[test]
fn binary_keeps_the_catalogue_in_redis_from_the_environment() {
    let redis = redis_url();
    let prefix = format!("{}:", unique("peakload-bin-"));
    let data = tempfile::tempdir().unwrap();
    let running = start(
        &[
            "api",
            "--listen",
            "127.0.0.1:0",
            "--seed-users",
            "10",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--redis-key-prefix",
            &prefix,
        ],
        &[("PEAKLOAD_STACK_REDIS_URL", redis.as_str())],
    );
    let metrics = runtime().block_on(async {
        for _ in 0..2 {
            let r = reqwest::get(format!("{}/api/products/3", running.url))
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        reqwest::get(format!("{}/metrics", running.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        metrics.contains("cache_requests_total{result=\"error\"} 0\n"),
        "Redis is unreachable at {redis}: run the tests through scripts/test, which starts \
         redis-server, or set PEAKLOAD_TEST_REDIS_URL"
    );
    assert!(
        metrics.contains("cache_requests_total{result=\"hit\"} 1\n")
            && metrics.contains("cache_requests_total{result=\"miss\"} 1\n"),
        "{metrics}"
    );
    stop(running);
}
