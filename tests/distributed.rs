//! Distributed runs: shards as separate processes against one loopback server, merged.
//!
//! The merged result of N shards must be the single run's, count for count: the same
//! arrivals, requests, iterations and errors; its histograms must be the sum of the shards'
//! (every percentile recomputed from that sum); a missing shard must make it `incomplete`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use peakload::record::infra::{Infra, Series};
use peakload::record::results::{decode_histogram, LatencyStats, Results};
use serde_json::Value;

use crate::util::{
    code, peakload, run_within, shared_cpu, spawn, Case, Journey, Scenario, Step, TestServer,
};

const ROWS: usize = 400;

fn case() -> Case {
    let users: String = std::iter::once("name".to_string())
        .chain((0..ROWS).map(|i| format!("user{i}")))
        .collect::<Vec<_>>()
        .join("\n");
    Case::new(
        Scenario::new("sharded")
            .timeout("5s")
            .rps(40, "3s")
            .thresholds(&["http.error_rate < 50%"])
            .feeder("user", "users.csv", "unique")
            .journey(
                Journey::new("shop")
                    .step(Step::get("item", "/item/{{iteration}}"))
                    .step(Step::post("echo", "/echo").json(
                        r#"{ user = "{{user.name}}", vu = "{{vu}}", it = "{{iteration}}" }"#,
                    )),
            ),
    )
    .file("users.csv", &users)
}

/// A rendered `{{vu}}` or `{{iteration}}`: a JSON number or a string of one.
fn number(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("{v} is not a number"))
}

fn results(dir: &Path) -> Results {
    Results::load(&dir.join("results.json")).expect("results.json")
}

fn merge(inputs: &[&Path], out: &Path) -> crate::util::Outcome {
    let mut cmd = peakload();
    cmd.arg("merge").args(inputs).arg("--out").arg(out);
    run_within(cmd, Duration::from_secs(60))
}

#[test]
fn three_shards_merge_to_the_single_run_count_for_count() {
    let _cpu = shared_cpu();
    let case = case();

    // The plan run whole, once.
    let whole_server = TestServer::start();
    let whole_out = case.dir().join("whole");
    let mut cmd = case.run_command(&whole_out);
    cmd.arg("--target").arg(whole_server.url()).arg("-q");
    run_within(cmd, Duration::from_secs(60)).expect_code(code::OK);
    let whole = results(&whole_out);

    // The same plan as three shards, three processes, started together.
    let server = TestServer::start();
    let at = SystemTime::now() + Duration::from_secs(4);
    let at = humantime::format_rfc3339_millis(at).to_string();
    let shards: Vec<_> = (0..3)
        .map(|i| {
            let out = case.dir().join("shards").join(format!("shard-{i}"));
            let mut cmd: Command = case.run_command(&out);
            cmd.arg("--target")
                .arg(server.url())
                .arg("-q")
                .arg("--threads")
                .arg("1")
                .arg("--shard")
                .arg(format!("{i}/3"))
                .arg("--start-at")
                .arg(&at);
            (out, spawn(cmd))
        })
        .collect();
    let dirs: Vec<_> = shards
        .into_iter()
        .map(|(out, p)| {
            p.finish_within(Duration::from_secs(60))
                .expect_code(code::OK);
            out
        })
        .collect();
    let parts: Vec<Results> = dirs.iter().map(|d| results(d)).collect();
    for (i, p) in parts.iter().enumerate() {
        let s = p.shard.as_ref().expect("a shard says which it is");
        assert_eq!((s.index, s.count), (i as u32, 3));
        assert_eq!(s.asked.plan_arrivals, Some(120));
        assert_eq!(s.asked.arrivals, Some(40));
        let late = s.late_start_ms.expect("late start recorded");
        assert!(
            (0.0..2000.0).contains(&late),
            "shard {i} started {late} ms late"
        );
    }

    // Across the shards: every arrival once, every unique row once, VUs numbered apart.
    let echoed: Vec<Value> = server.echoed().into_iter().map(|e| e.body).collect();
    let its: BTreeSet<u64> = echoed.iter().map(|b| number(&b["it"])).collect();
    assert_eq!(its, (0..120).collect(), "iterations of the union");
    let users: BTreeSet<&str> = echoed.iter().map(|b| b["user"].as_str().unwrap()).collect();
    assert_eq!(
        users.len(),
        echoed.len(),
        "a unique row used twice across shards"
    );
    let vus_by_shard: Vec<BTreeSet<u64>> = (0..3)
        .map(|i| {
            echoed
                .iter()
                .map(|b| number(&b["vu"]))
                .filter(|v| v % 3 == i)
                .collect()
        })
        .collect();
    assert!(
        vus_by_shard.iter().all(|s| !s.is_empty()),
        "{vus_by_shard:?}"
    );

    // Merged, from the directory holding the shard directories (a shared volume); the merged
    // directory written there is not read as a shard when the merge runs again.
    let root = case.dir().join("shards");
    let merged_out = root.join("merged");
    merge(&[&root], &merged_out).expect_code(code::OK);
    let m = merge(&[&root], &merged_out);
    m.expect_code(code::OK);
    crate::util::assert_valid_results(&merged_out.join("results.json"));
    let merged = results(&merged_out);
    assert_eq!(merged.status, "completed");
    let (a, b) = (&merged.summary, &whole.summary);
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.requests, 240);
    assert_eq!(a.iterations, b.iterations);
    assert_eq!(a.errors, b.errors);
    assert_eq!(
        a.errors, 1,
        "/item/7 fails once, in whichever shard ran arrival 7"
    );
    assert_eq!(merged.errors, whole.errors);
    for (x, y) in merged.steps.iter().zip(&whole.steps) {
        assert_eq!(
            (&x.name, x.requests, x.errors),
            (&y.name, y.requests, y.errors)
        );
    }
    let planned: f64 = merged.timeline.iter().map(|p| p.target_rps).sum();
    assert_eq!(planned, 120.0, "the union's planned arrivals");
    let started: u64 = merged.timeline.iter().map(|p| p.iterations_started).sum();
    assert_eq!(started, 120);

    // The merged histogram is the shards' added, and its percentiles come from it.
    let mut sum = decode_histogram(&parts[0].summary.histogram).unwrap();
    sum.auto(true);
    for p in &parts[1..] {
        sum.add(decode_histogram(&p.summary.histogram).unwrap())
            .unwrap();
    }
    let got = decode_histogram(&merged.summary.histogram).unwrap();
    assert_eq!(got, sum);
    assert_eq!(got.len(), 240);
    assert_eq!(
        merged.summary.latency_ms,
        LatencyStats::from_histogram(&sum)
    );
    let t = &merged.thresholds;
    assert_eq!(t.len(), 1);
    assert!(t[0].ok);
    assert_eq!(t[0].value, Some((1.0f64 / 240.0 * 1e3).round() / 1e3));

    let info = merged.merged.as_ref().expect("merge info");
    assert_eq!(info.shards.len(), 3);
    assert!(info.missing.is_empty() && info.failed.is_empty());
    for f in ["latency.hlog", "report.html", "junit.xml", "summary.md"] {
        assert!(merged_out.join(f).is_file(), "{f} written");
    }
    let hlog = std::fs::read_to_string(merged_out.join("latency.hlog")).unwrap();
    let per_second: u64 = peakload::record::hlog::read_intervals(&hlog)
        .unwrap()
        .iter()
        .filter(|i| i.tag.is_none())
        .map(|i| i.histogram.len())
        .sum();
    assert_eq!(per_second, 240, "the merged hlog holds every request once");
    assert!(m.stdout.contains("shards (3 of 3)"), "{}", m.stdout);

    // One shard missing: written, but incomplete, named, with its own exit code.
    let partial_out = case.dir().join("partial");
    let p = merge(&[&dirs[0], &dirs[2]], &partial_out);
    p.expect_code(code::INCOMPLETE);
    let partial = results(&partial_out);
    assert_eq!(partial.status, "incomplete");
    assert_eq!(partial.merged.as_ref().unwrap().missing, vec![1]);
    assert!(p.stdout.contains("missing shard(s) 1/3"), "{}", p.stdout);
    let md = std::fs::read_to_string(partial_out.join("summary.md")).unwrap();
    assert!(md.contains("INCOMPLETE"), "{md}");
    let html = std::fs::read_to_string(partial_out.join("report.html")).unwrap();
    assert!(html.contains("id=\"shards\"") && html.contains("Missing: 1/3."));

    // The same shard twice is refused, not added twice.
    merge(&[&dirs[0], &dirs[0]], &case.dir().join("twice")).expect_code(code::INVALID);

    // Infrastructure observed by two shards (the same system) is taken once, from the lowest
    // index, and the diagnosis runs on the merged load.
    let observed = case.dir().join("observed");
    for (i, d) in dirs.iter().enumerate() {
        let to = observed.join(format!("shard-{i}"));
        std::fs::create_dir_all(&to).unwrap();
        let mut r = results(d);
        if i < 2 {
            r.infra = Some(Infra {
                series: vec![Series {
                    source: "scrape:test".into(),
                    name: "queue_depth".into(),
                    unit: "count".into(),
                    dimensions: Default::default(),
                    points: (0..4).map(|t| (t as f64, (i * 100 + t) as f64)).collect(),
                    span_s: None,
                }],
                events: Vec::new(),
                notes: Vec::new(),
            });
        }
        r.save(&to.join("results.json")).unwrap();
        std::fs::copy(d.join("latency.hlog"), to.join("latency.hlog")).unwrap();
    }
    let out = observed.join("merged");
    merge(&[&observed], &out).expect_code(code::OK);
    let m = results(&out);
    let infra = m.infra.expect("infra kept");
    assert_eq!(infra.series.len(), 1, "observed once, not once per shard");
    assert_eq!(infra.series[0].points.len(), 4);
    assert!(
        infra.series[0].points.iter().all(|p| p.1 < 100.0),
        "shard 0's copy"
    );
    assert!(
        infra.notes.iter().any(|n| n.contains("1 other shard(s)")),
        "{:?}",
        infra.notes
    );
    assert!(
        m.capacity.is_some(),
        "the diagnosis ran on the merged result"
    );
}

#[test]
fn a_shard_that_missed_its_start_refuses_to_run() {
    let case = case();
    let server = TestServer::start();
    let at = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(60));
    let o = case.run(&server, &["--shard", "0/2", "--start-at", &at.to_string()]);
    o.expect_code(code::START_MISSED);
    assert!(o.stderr.contains("--start-tolerance"), "{}", o.stderr);
    assert_eq!(server.total(), 0, "nothing was sent");
    assert!(!o.results_path().exists());
}

#[test]
fn an_indexed_job_without_its_shard_count_refuses_to_run_the_whole_plan() {
    let case = case();
    let server = TestServer::start();
    let o = case.run_with_env(&server, &[], &[("JOB_COMPLETION_INDEX", "2")]);
    o.expect_code(code::INVALID);
    assert!(o.stderr.contains("PEAKLOAD_SHARD_COUNT"), "{}", o.stderr);
    assert_eq!(server.total(), 0);
}

/// Closed model as shards: the plan's VUs split across them (remainder spread), numbered as
/// the plan numbers them; one shard stopped part-way and one killed make the merge
/// `incomplete` with both named.
#[test]
fn closed_shards_split_the_vus_and_a_stopped_or_killed_shard_is_named() {
    let _cpu = shared_cpu();
    let case = Case::new(
        Scenario::new("closed-sharded")
            .timeout("5s")
            .vus(7, "3s")
            .journey(
                Journey::new("shop").step(
                    Step::post("echo", "/echo")
                        .json(r#"{ vu = "{{vu}}", it = "{{iteration}}" }"#)
                        .think("50ms"),
                ),
            ),
    );
    let server = TestServer::start();
    let root = case.dir().join("shards");
    let spawn_shard = |i: u32| {
        let out = root.join(format!("shard-{i}"));
        let mut cmd: Command = case.run_command(&out);
        cmd.arg("--target")
            .arg(server.url())
            .arg("-q")
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("PEAKLOAD_SHARD_COUNT", "4");
        spawn(cmd).writing_to(out)
    };
    // Shards 0 and 1 run whole; shard 2 is stopped part-way (it writes what it measured);
    // shard 3 is killed part-way (it writes no results).
    let (a, b, c, d) = (
        spawn_shard(0),
        spawn_shard(1),
        spawn_shard(2),
        spawn_shard(3),
    );
    std::thread::sleep(Duration::from_millis(1500));
    c.signal(libc::SIGTERM);
    d.signal(libc::SIGKILL);
    let c = c.finish_within(Duration::from_secs(60));
    c.expect_code(code::INTERRUPTED);
    d.finish_within(Duration::from_secs(60));
    a.finish_within(Duration::from_secs(60))
        .expect_code(code::OK);
    b.finish_within(Duration::from_secs(60))
        .expect_code(code::OK);

    // 7 VUs over 4 shards: 2, 2, 2, 1; VU k is shard k mod 4's.
    for (i, want) in [(0u32, 2u32), (1, 2), (2, 2)] {
        let r = results(&root.join(format!("shard-{i}")));
        assert_eq!(r.shard.as_ref().unwrap().asked.max_vus, want, "shard {i}");
        assert_eq!(r.shard.as_ref().unwrap().asked.plan_max_vus, 7);
    }
    let echoed: Vec<Value> = server.echoed().into_iter().map(|e| e.body).collect();
    let vus: BTreeSet<u64> = echoed.iter().map(|b| number(&b["vu"])).collect();
    assert_eq!(vus, (0..7).collect(), "VU k ran on shard k mod 4");
    let its: Vec<u64> = echoed.iter().map(|b| number(&b["it"])).collect();
    let distinct: BTreeSet<u64> = its.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        its.len(),
        "an iteration number used twice across shards"
    );

    let out = root.join("merged");
    let m = merge(&[&root], &out);
    m.expect_code(code::INCOMPLETE);
    let merged = results(&out);
    assert_eq!(merged.status, "incomplete");
    let info = merged.merged.as_ref().unwrap();
    assert_eq!((&info.missing, &info.failed), (&vec![3], &vec![2]));
    // Every request the three shards with results had answered is in the merged result once
    // (the stopped shard's in-flight requests finish within the drain).
    let from_recorded = echoed.iter().filter(|b| number(&b["vu"]) % 4 != 3).count();
    assert_eq!(merged.summary.requests, from_recorded as u64);
    assert!(
        m.stdout
            .contains("missing shard(s) 3/4; failed shard(s) 2/4"),
        "{}",
        m.stdout
    );
}
