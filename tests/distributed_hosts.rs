//! A distributed run across hosts: four shards, each a `peakload run` in a network namespace of
//! its own (its own address, interface and routes, on a veth bridge), against the bundled
//! stack listening on the bridge, merged by `peakload merge`.
//!
//! What the stack stored is the witness from outside the generators: the timestamp writer keeps
//! every request's `X-Request-Id` (here the plan's arrival number) and the address it came
//! from, so the test sees each arrival arrive once, from the host of the shard that owns it,
//! not before its planned instant. The merged result must then be the sum of the shards:
//! counts, histograms bucket for bucket (and so every percentile), thresholds evaluated
//! again on it; a shard killed mid-run makes it `incomplete`, named.
//!
//! Needs root and iproute2 (see [`crate::util::netns`]); elsewhere it says why and skips,
//! unless `PEAKLOAD_TEST_NETNS=1` demands it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use peakload::plan::Arrivals;
use peakload::record::hlog::read_intervals;
use peakload::record::results::{decode_histogram, LatencyStats, Results};
use peakload::scenario::Load;

use crate::util::netns::{self, Hosts};
use crate::util::process::{Running, BIN};
use crate::util::stack::{stack_binary, StackProcess};
use crate::util::{code, peakload, run_within, shared_cpu, spawn, Case, Journey, Scenario, Step};

const SHARDS: usize = 4;
const RATE: u64 = 60;
const SECONDS: u64 = 4;

fn case() -> Case {
    Case::new(
        Scenario::new("across-hosts")
            .timeout("5s")
            .thresholds(&["http.error_rate < 1%", "http.p99 < 5s", "stamp.p95 < 5s"])
            .load(&format!(
                "rps = {RATE}\nduration = \"{SECONDS}s\"\narrivals = \"poisson\"\nseed = 7"
            ))
            .journey(
                Journey::new("buy")
                    .step(
                        Step::post("stamp", "/app")
                            .headers(r#"{ "X-Request-Id" = "{{iteration}}" }"#),
                    )
                    .step(Step::get("product", "/api/products/7")),
            ),
    )
}

/// The four shards, started together at `at` from their own hosts.
fn start_shards(hosts: &Hosts, case: &Case, target: &str, root: &Path, at: &str) -> Vec<Running> {
    (0..SHARDS)
        .map(|i| {
            let out = root.join(format!("shard-{i}"));
            let mut cmd: Command = hosts.command(i, BIN);
            cmd.arg("run")
                .arg(case.scenario())
                .arg("--out")
                .arg(&out)
                .args(["--target", target, "-q", "--threads", "1"])
                .args(["--shard", &format!("{i}/{SHARDS}"), "--start-at", at]);
            spawn(cmd).writing_to(out)
        })
        .collect()
}

fn merge(inputs: &Path, out: &Path, extra: &[&str]) -> crate::util::Outcome {
    let mut cmd = peakload();
    cmd.arg("merge")
        .arg(inputs)
        .arg("--out")
        .arg(out)
        .args(extra);
    run_within(cmd, Duration::from_secs(60))
}

fn at_in(secs: u64) -> (SystemTime, String) {
    let at = SystemTime::now() + Duration::from_secs(secs);
    // Whole milliseconds, as the flag is written and as the stack stamps requests.
    let ms = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    (at, humantime::format_rfc3339_millis(at).to_string())
}

fn ms_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

/// Adds histograms as the reference does: the first decides the precision, the range grows.
fn sum<'a>(hs: impl IntoIterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut acc: Option<Histogram<u64>> = None;
    for h in hs {
        match &mut acc {
            None => {
                let mut first = h.clone();
                first.auto(true);
                acc = Some(first);
            }
            Some(a) => a.add(h).unwrap(),
        }
    }
    acc.expect("at least one histogram")
}

/// Every percentile, on a grid fine enough to visit every bucket of a few hundred samples.
#[track_caller]
fn same_percentiles(got: &Histogram<u64>, want: &Histogram<u64>, what: &str) {
    assert_eq!(got, want, "{what}: histograms");
    for q in (0..=10_000).map(|i| i as f64 / 10_000.0) {
        assert_eq!(
            got.value_at_quantile(q),
            want.value_at_quantile(q),
            "{what}: quantile {q}"
        );
    }
    assert_eq!(
        LatencyStats::from_histogram(got),
        LatencyStats::from_histogram(want)
    );
}

/// `(request id, client address, server time in ms since the epoch)` of every `POST /app`
/// the stack stored.
fn stamps(data_dir: &Path) -> Vec<(String, String, i64)> {
    let path = data_dir.join("stack.db");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .read_only(true);
            let pool = sqlx::SqlitePool::connect_with(options)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT request_id, client_addr, timestamp_ms FROM app_timestamps ORDER BY id",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows
        })
}

#[test]
fn four_hosts_merge_exactly_and_a_killed_host_makes_the_run_incomplete() {
    let hosts = match Hosts::create(SHARDS) {
        Ok(h) => h,
        Err(why) if netns::required() => {
            panic!(
                "{} demands the namespace test, but: {why}",
                netns::REQUIRE_ENV
            )
        }
        Err(why) => {
            eprintln!(
                "SKIPPED four_hosts_merge_exactly_and_a_killed_host_makes_the_run_incomplete: \
                 {why} (set {}=1 to make this a failure)",
                netns::REQUIRE_ENV
            );
            return;
        }
    };
    let _cpu = shared_cpu();
    let case = case();
    let scenario = peakload::scenario::load_scenario(&case.scenario()).expect("scenario");
    let Load::Open(open) = &scenario.load else {
        panic!("an open model")
    };
    let mut arrivals = Arrivals::new(open);
    let planned: Vec<f64> = (0..arrivals.total_arrivals())
        .map(|k| arrivals.due(k).unwrap().as_secs_f64() * 1000.0)
        .collect();
    let total = planned.len();
    assert_eq!(total as u64, RATE * SECONDS);

    // The stack on the hub, reachable from every host.
    let data = case.dir().join("stack");
    let mut cmd = hosts.hub_command(stack_binary());
    cmd.args(["all", "--listen", &format!("{}:0", netns::HUB_ADDR)])
        .arg("--data-dir")
        .arg(&data);
    let stack = StackProcess::start(cmd);
    let port: u16 = stack.url.rsplit(':').next().unwrap().parse().unwrap();
    for i in 0..SHARDS {
        hosts
            .reaches(i, port)
            .unwrap_or_else(|e| panic!("host {i} cannot reach the stack: {e}"));
    }

    // Phase 1: the four shards run whole.
    let root = case.dir().join("complete");
    let (at, at_text) = at_in(4);
    let dirs: Vec<PathBuf> = start_shards(&hosts, &case, &stack.url, &root, &at_text)
        .into_iter()
        .map(|p| {
            let o = p.finish_within(Duration::from_secs(60));
            o.expect_code(code::OK);
            o.out
        })
        .collect();
    let parts: Vec<Results> = dirs
        .iter()
        .map(|d| Results::load(&d.join("results.json")).unwrap())
        .collect();

    // Phase 2: the same, with shard 2 killed part-way (no results from it at all).
    let root2 = case.dir().join("killed");
    let (at2, at2_text) = at_in(4);
    let mut shards = start_shards(&hosts, &case, &stack.url, &root2, &at2_text);
    let killed = shards.remove(2);
    let kill_at = at2 + Duration::from_millis(1500);
    std::thread::sleep(
        kill_at
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    );
    killed.signal(libc::SIGKILL);
    let k = killed.finish_within(Duration::from_secs(10));
    assert_eq!(k.code, -1, "ended by the signal\nstderr:\n{}", k.stderr);
    for p in shards {
        p.finish_within(Duration::from_secs(60))
            .expect_code(code::OK);
    }
    assert!(stack.terminate().success(), "the stack exits cleanly");
    let rows = stamps(&data);

    // From outside the generators: every planned arrival reached the stack once, from the
    // host of its shard, not before its instant (each shard's schedule runs from its own
    // start, `late_start_ms` after --start-at).
    let at_ms = ms_since_epoch(at);
    let (phase1, phase2): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|(_, _, t)| (*t as f64) < ms_since_epoch(at2));
    let mut seen: BTreeMap<u64, (String, i64)> = BTreeMap::new();
    for (id, addr, t) in &phase1 {
        let k: u64 = id
            .parse()
            .unwrap_or_else(|_| panic!("request id {id:?} is not an arrival number"));
        assert!(
            seen.insert(k, (addr.clone(), *t)).is_none(),
            "arrival {k} reached the stack twice"
        );
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        (0..total as u64).collect::<Vec<_>>(),
        "the union of the shards' arrivals is the plan's"
    );
    let mut worst_delay_ms: f64 = 0.0;
    for (&k, (addr, t)) in &seen {
        let owner = (k % SHARDS as u64) as usize;
        assert_eq!(
            addr,
            &Hosts::addr(owner),
            "arrival {k} came from another host"
        );
        let late = parts[owner].shard.as_ref().unwrap().late_start_ms.unwrap();
        let due = at_ms + late + planned[k as usize];
        // The stack's clock reads whole milliseconds (up to 1 ms early), and an arrival is
        // dispatched up to a millisecond before its instant (the engine's `DISPATCH_EARLY`,
        // which offsets tokio's timer firing up to a millisecond late): never 2 ms early.
        let delay = *t as f64 - due;
        assert!(delay > -2.0, "arrival {k} arrived {:.1} ms early", -delay);
        // The first step's latency runs from the planned instant (coordinated omission
        // corrected), so the stack cannot have seen the request later than the shard's
        // slowest `stamp` allows: the shard's figures and the outside witness agree.
        let stamp = parts[owner]
            .steps
            .iter()
            .find(|s| s.name == "stamp")
            .unwrap();
        assert!(
            delay <= stamp.latency_ms.max + 1.5,
            "arrival {k} reached the stack {delay:.1} ms after its instant, but shard {owner}'s \
             slowest stamp took {} ms from its instant",
            stamp.latency_ms.max
        );
        worst_delay_ms = worst_delay_ms.max(delay);
    }
    eprintln!("arrivals reached the stack at most {worst_delay_ms:.1} ms after their instant");

    // Each shard: its slice, its share of the plan, a start on time.
    for (i, p) in parts.iter().enumerate() {
        let s = p.shard.as_ref().expect("a shard says which it is");
        assert_eq!((s.index, s.count), (i as u32, SHARDS as u32));
        let own = (i..total).step_by(SHARDS).count() as u64;
        assert_eq!(s.asked.arrivals, Some(own), "shard {i}'s arrivals");
        assert_eq!(s.asked.plan_arrivals, Some(total as u64));
        assert_eq!(p.summary.iterations, own, "shard {i} ran its slice");
        let late = s.late_start_ms.unwrap();
        assert!(
            (0.0..2000.0).contains(&late),
            "shard {i} started {late} ms late"
        );
    }

    // Merged, with a threshold only the whole can meet (each shard ran a quarter).
    let merged_out = root.join("merged");
    let want_iterations = format!("iterations == {total}");
    let m = merge(&root, &merged_out, &["--threshold", &want_iterations]);
    m.expect_code(code::OK);
    crate::util::assert_valid_results(&merged_out.join("results.json"));
    let merged = Results::load(&merged_out.join("results.json")).unwrap();
    assert_eq!(merged.status, "completed");
    let shard_requests: u64 = parts.iter().map(|p| p.summary.requests).sum();
    assert_eq!(merged.summary.requests, shard_requests, "sum of the shards");
    assert_eq!(merged.summary.requests, 2 * total as u64);
    assert_eq!(merged.summary.iterations, total as u64);
    assert_eq!(merged.summary.errors, 0, "{:?}", merged.error_samples);
    for step in &merged.steps {
        let of_shards: u64 = parts
            .iter()
            .map(|p| {
                p.steps
                    .iter()
                    .find(|s| s.name == step.name)
                    .unwrap()
                    .requests
            })
            .sum();
        assert_eq!(step.requests, of_shards, "step {}", step.name);
    }
    let started: u64 = merged.timeline.iter().map(|p| p.iterations_started).sum();
    assert_eq!(
        started, total as u64,
        "iterations started, second by second"
    );
    let targets: f64 = merged.timeline.iter().map(|p| p.target_rps).sum();
    assert_eq!(targets, total as f64, "the planned arrivals of the union");

    // The merged histograms are the shards' samples added: from the shards' results and, on
    // their own, from every interval of every shard's latency.hlog.
    let shard_logs: Vec<_> = dirs
        .iter()
        .map(|d| read_intervals(&std::fs::read_to_string(d.join("latency.hlog")).unwrap()).unwrap())
        .collect();
    let merged_hist = decode_histogram(&merged.summary.histogram).unwrap();
    let from_results: Vec<_> = parts
        .iter()
        .map(|p| decode_histogram(&p.summary.histogram).unwrap())
        .collect();
    same_percentiles(&merged_hist, &sum(&from_results), "run, from the results");
    let every_second: Vec<&Histogram<u64>> = shard_logs
        .iter()
        .flatten()
        .filter(|iv| iv.tag.is_none())
        .map(|iv| &iv.histogram)
        .collect();
    same_percentiles(
        &merged_hist,
        &sum(every_second),
        "run, from the shards' logs",
    );
    assert_eq!(merged_hist.len(), 2 * total as u64);
    assert_eq!(
        merged.summary.latency_ms,
        LatencyStats::from_histogram(&merged_hist)
    );
    for step in &merged.steps {
        let got = decode_histogram(&step.histogram).unwrap();
        let tag = format!("{}/{}", step.journey, step.name);
        let tagged: Vec<&Histogram<u64>> = shard_logs
            .iter()
            .flatten()
            .filter(|iv| iv.tag.as_deref() == Some(tag.as_str()))
            .map(|iv| &iv.histogram)
            .collect();
        same_percentiles(
            &got,
            &sum(tagged),
            &format!("step {tag}, from the shards' logs"),
        );
        assert_eq!(step.latency_ms, LatencyStats::from_histogram(&got));
    }
    let merged_log =
        read_intervals(&std::fs::read_to_string(merged_out.join("latency.hlog")).unwrap()).unwrap();
    let merged_seconds: Vec<&Histogram<u64>> = merged_log
        .iter()
        .filter(|iv| iv.tag.is_none())
        .map(|iv| &iv.histogram)
        .collect();
    same_percentiles(
        &sum(merged_seconds),
        &merged_hist,
        "the merged log, added up",
    );

    // Thresholds evaluated again, on the merged figures.
    let value = |expr: &str| {
        let t = merged
            .thresholds
            .iter()
            .find(|t| t.expr == expr)
            .unwrap_or_else(|| panic!("no threshold {expr:?} in {:?}", merged.thresholds));
        assert!(t.ok, "{expr}: {:?}", t.value);
        t.value
    };
    assert_eq!(merged.thresholds.len(), 4, "{:?}", merged.thresholds);
    assert_eq!(value("http.error_rate < 1%"), Some(0.0));
    assert_eq!(value("http.p99 < 5s"), Some(merged.summary.latency_ms.p99));
    let stamp = merged.steps.iter().find(|s| s.name == "stamp").unwrap();
    assert_eq!(value("stamp.p95 < 5s"), Some(stamp.latency_ms.p95));
    assert_eq!(value(&want_iterations), Some(total as f64));
    for p in &parts {
        let t = p
            .thresholds
            .iter()
            .find(|t| t.expr == "http.p99 < 5s")
            .unwrap();
        assert_eq!(
            t.value,
            Some(p.summary.latency_ms.p99),
            "each shard judged its own"
        );
    }
    let info = merged.merged.as_ref().expect("merge info");
    assert_eq!(info.shards.len(), SHARDS);
    assert!(m.stdout.contains("shards (4 of 4)"), "{}", m.stdout);

    // Phase 2: shard 2's host sent part of its slice, then nothing; the merge says so.
    let from_killed = phase2
        .iter()
        .filter(|(_, addr, _)| *addr == Hosts::addr(2))
        .count();
    assert!(
        (1..total / SHARDS).contains(&from_killed),
        "the killed shard sent {from_killed} of its {} arrivals",
        total / SHARDS
    );
    assert!(!root2.join("shard-2").join("results.json").exists());
    let out = root2.join("merged");
    let m = merge(&root2, &out, &[]);
    m.expect_code(code::INCOMPLETE);
    let partial = Results::load(&out.join("results.json")).unwrap();
    assert_eq!(partial.status, "incomplete");
    let info = partial.merged.as_ref().unwrap();
    assert_eq!((&info.missing, &info.failed), (&vec![2], &vec![]));
    assert!(m.stdout.contains("missing shard(s) 2/4"), "{}", m.stdout);
    let survivors: u64 = [0, 1, 3]
        .iter()
        .map(|i| {
            Results::load(&root2.join(format!("shard-{i}")).join("results.json"))
                .unwrap()
                .summary
                .requests
        })
        .sum();
    assert_eq!(partial.summary.requests, survivors);
}
