//! The real `peakload-stack` binary publishes to CloudWatch and CloudWatch Logs in moto while
//! it is loaded, with an error burst planted part-way through (`POST /admin/faults`); the
//! series read back through `peakload-aws` show the load and the burst where it happened.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use peakload_aws::{LogPattern, LogsConfig, MetricQuery, RunWindow, Series};
use serde_json::json;

use crate::common::{moto_sources, require_moto, unique};

const ADMIN_TOKEN: &str = "e2e-admin-token";

/// `peakload-stack`, built by `cargo build -p peakload-stack-cli` into this target directory.
fn stack_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/peakload-stack
    let mut candidates = vec![exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("peakload-stack")];
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug").join("peakload-stack"));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the peakload-stack binary is not built (looked at {candidates:?}): run \
                 `cargo build -p peakload-stack-cli` first (scripts/test builds the workspace)"
            )
        })
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sum(points: &[(f64, f64)], keep: impl Fn(f64) -> bool) -> f64 {
    points
        .iter()
        .filter(|(t, _)| keep(*t))
        .map(|(_, v)| v)
        .sum()
}

fn find<'a>(series: &'a [Series], name: &str) -> &'a Series {
    series
        .iter()
        .find(|s| s.name.ends_with(name))
        .unwrap_or_else(|| panic!("no series {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_metrics_and_logs_in_cloudwatch_show_the_load_and_the_error_burst() {
    let moto = require_moto();
    let sources = moto_sources().await;
    let namespace = unique("PeakloadE2E");
    let service = unique("e2e-");
    let group = format!("/peakload/{service}/api");
    let mut child = Command::new(stack_binary())
        .args(["all", "--listen", "127.0.0.1:0", "--seed-users", "10"])
        .args(["--admin-token", ADMIN_TOKEN, "--catalogue-cache-ms", "0"])
        .args([
            "--cloudwatch-namespace",
            &namespace,
            "--cloudwatch-interval-secs",
            "1",
        ])
        .args([
            "--cloudwatch-service",
            &service,
            "--cloudwatch-log-group",
            &group,
        ])
        .args(["--aws-endpoint", &moto, "--aws-create-resources"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .strip_prefix("peakload-stack listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim()
        .to_owned();

    let http = reqwest::Client::new();
    let run_start = SystemTime::now();
    let started = Instant::now();
    let (mut sent, mut failed) = (0_u32, 0_u32);
    let mut burst = (0.0, 0.0);
    // 4 s healthy, 4 s with every API request failing, 4 s healthy again; ~40 requests/s.
    for phase in 0..3 {
        if phase > 0 {
            let rate = if phase == 1 { 1.0 } else { 0.0 };
            let at = started.elapsed().as_secs_f64();
            let r = http
                .post(format!("{base}/admin/faults"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({ "error_rate": rate }))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            if phase == 1 {
                burst.0 = at;
            } else {
                burst.1 = at;
            }
        }
        let phase_end = started.elapsed() + Duration::from_secs(4);
        while started.elapsed() < phase_end {
            let r = http
                .get(format!("{base}/api/products?page=1"))
                .send()
                .await
                .unwrap();
            sent += 1;
            if r.status().as_u16() == 500 {
                failed += 1;
            } else {
                assert_eq!(r.status().as_u16(), 200);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    assert!(
        failed > 20 && sent > failed * 2,
        "sent {sent}, failed {failed}"
    );

    // SIGTERM: the stack drains, publishes its last interval and ships its last lines.
    let mut running = running;
    // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
    let rc = unsafe { libc::kill(running.0.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM delivered");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "peakload-stack did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let window = RunWindow::new(run_start, SystemTime::now() + Duration::from_secs(1));

    let q = |metric: &str, stat: &str| {
        MetricQuery::new(&namespace, metric, stat, "").dimension("Service", &service)
    };
    let series = sources
        .metrics(
            &[
                q("RequestCount", "Sum"),
                q("HTTPCode_5XX_Count", "Sum"),
                q("Latency", "Average"),
                q("ProcessResidentMemory", "Maximum"),
            ],
            &window,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    let requests = &find(&series, "/RequestCount:Sum").points;
    let errors = &find(&series, "/HTTPCode_5XX_Count:Sum").points;
    // Every request counted once (deltas, plus the last interval at shutdown).
    assert_eq!(sum(requests, |_| true), f64::from(sent), "{requests:?}");
    assert_eq!(sum(errors, |_| true), f64::from(failed), "{errors:?}");
    // The load runs through the whole run; the errors only in the burst (a point is stamped
    // up to one interval after its requests, and periods are whole seconds).
    let (from, to) = (burst.0 - 1.0, burst.1 + 2.0);
    // At least a second's worth of the load on each side (the client's pace varies with the
    // machine, so the bar is the rate it actually reached, not a fixed count).
    let per_second = f64::from(sent) / load_secs;
    assert!(per_second > 10.0, "the client sent only {per_second:.1}/s");
    assert!(
        sum(requests, |t| t < from) > 0.8 * per_second,
        "{requests:?}"
    );
    assert!(sum(requests, |t| t > to) > 0.8 * per_second, "{requests:?}");
    assert_eq!(
        sum(errors, |t| t < from || t > to),
        0.0,
        "burst {burst:?}: {errors:?}"
    );
    assert!(
        sum(errors, |t| t > burst.0 + 1.0 && t < burst.1) > 20.0,
        "{errors:?}"
    );
    assert!(!find(&series, "/Latency:Average").points.is_empty());
    assert!(find(&series, "/ProcessResidentMemory:Maximum")
        .points
        .iter()
        .all(|(_, v)| *v > 1e6));

    // One ERROR line per failed request, in the same window, with samples.
    let logs = LogsConfig::new(vec![group.clone()], vec![LogPattern::Plain("ERROR".into())]);
    let counts = sources
        .log_counts(&logs, &window, Duration::from_secs(1))
        .await
        .unwrap();
    let lines = &counts.series[0].points;
    assert_eq!(sum(lines, |_| true), f64::from(failed), "{lines:?}");
    assert_eq!(
        sum(lines, |t| t < from || t > to),
        0.0,
        "burst {burst:?}: {lines:?}"
    );
    assert_eq!(counts.samples.len(), 3);
    assert!(counts
        .samples
        .iter()
        .all(|s| s.message.contains("injected fault") && s.message.starts_with("ERROR")));
}
