//! Distributed runs: shards as separate processes against one loopback server, merged.
//!
//! The merged result of N shards must be the single run's, count for count: the same
//! arrivals, requests, iterations and errors; its histograms must be the sum of the shards'
//! (every percentile recomputed from that sum); a missing shard must make it `incomplete`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use peakload::record::infra::{Infra, Series};
use peakload::record::results::{decode_histogram, LatencyStats, Results};
use serde_json::Value;

use crate::util::{
    code, eventually, peakload, run_within, shared_cpu, spawn, Case, Journey, Scenario, Step,
    TestServer,
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
            // The second holds for the whole plan only: a shard records its slice's 80 and still
            // exits 0, the merge judges the 240.
            .thresholds(&["http.error_rate < 50%", "http.requests == 240"])
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
    merge_with(inputs, &[], out)
}

fn merge_with(inputs: &[&Path], flags: &[&str], out: &Path) -> crate::util::Outcome {
    let mut cmd = peakload();
    cmd.arg("merge")
        .args(inputs)
        .args(flags)
        .arg("--out")
        .arg(out);
    run_within(cmd, Duration::from_secs(60))
}

/// The case's plan as `n` shards, `n` processes started together against `server`: their
/// directories, `shards/shard-I` under the case's.
fn run_shards(case: &Case, server: &TestServer, n: u32) -> Vec<PathBuf> {
    let at = SystemTime::now() + Duration::from_secs(4);
    let at = humantime::format_rfc3339_millis(at).to_string();
    let shards: Vec<_> = (0..n)
        .map(|i| {
            let out = case.dir().join("shards").join(format!("shard-{i}"));
            let mut cmd: Command = case.run_command(&out);
            cmd.arg("--target")
                .arg(server.url())
                .arg("-q")
                .arg("--threads")
                .arg("1")
                .arg("--shard")
                .arg(format!("{i}/{n}"))
                .arg("--start-at")
                .arg(&at);
            (out, spawn(cmd))
        })
        .collect();
    shards
        .into_iter()
        .map(|(out, p)| {
            p.finish_within(Duration::from_secs(60))
                .expect_code(code::OK);
            out
        })
        .collect()
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
    let dirs = run_shards(&case, &server, 3);
    let parts: Vec<Results> = dirs.iter().map(|d| results(d)).collect();
    for (i, p) in parts.iter().enumerate() {
        let own = p
            .thresholds
            .iter()
            .find(|t| t.expr == "http.requests == 240")
            .expect("the shard records the scenario's thresholds");
        assert_eq!((own.ok, own.value), (false, Some(80.0)), "shard {i}");
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
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t.iter().all(|t| t.ok), "{t:?}");
    assert_eq!(t[0].value, Some((1.0f64 / 240.0 * 1e3).round() / 1e3));
    assert_eq!(t[1].value, Some(240.0));

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

/// A merged result as JSON, without what names where it was read from.
fn figures(dir: &Path) -> Value {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("tool");
    v
}

/// An interval line: tag, second, length and the histogram's (value, count) buckets.
type Interval = (Option<String>, f64, f64, Vec<(u64, u64)>);

/// A merged latency.hlog's intervals.
fn intervals(dir: &Path) -> Vec<Interval> {
    let text = std::fs::read_to_string(dir.join("latency.hlog")).unwrap();
    peakload::record::hlog::read_intervals(&text)
        .unwrap()
        .into_iter()
        .map(|i| {
            let buckets = i
                .histogram
                .iter_recorded()
                .map(|b| (b.value_iterated_to(), b.count_at_value()))
                .collect();
            (i.tag, i.start, i.length, buckets)
        })
        .collect()
}

#[test]
fn a_merge_of_parts_is_the_direct_merge_figure_for_figure() {
    let _cpu = shared_cpu();
    let case = case();
    let server = TestServer::start();
    let dirs = run_shards(&case, &server, 3);
    let root = case.dir().join("shards");
    let direct = case.dir().join("direct");
    merge(&[&root], &direct).expect_code(code::OK);

    // Parts read the same directory and keep their own range; a part is marked, carries the
    // thresholds for the final merge and is not judged itself.
    let parts = case.dir().join("parts");
    let (a, b) = (parts.join("part-0"), parts.join("part-1"));
    let o = merge_with(&[&root], &["--shards", "0-1"], &a);
    o.expect_code(code::OK);
    assert!(
        o.stdout.contains("part: shards 0-1 of 3 (2 found)"),
        "{}",
        o.stdout
    );
    assert!(
        !a.join("report.html").exists(),
        "a part has no report of its own"
    );
    merge_with(&[&root], &["--shards", "2-9"], &b).expect_code(code::OK);
    let part = results(&a);
    let info = part.part.as_ref().expect("marked as a part");
    assert_eq!((info.first, info.last, info.count), (0, 1, 3));
    assert_eq!(
        info.thresholds,
        ["http.error_rate < 50%", "http.requests == 240"]
    );
    assert!(part.thresholds.is_empty());
    assert_eq!(part.merged.as_ref().unwrap().shards.len(), 2);
    let last = results(&b);
    assert_eq!(last.part.as_ref().map(|p| (p.first, p.last)), Some((2, 2)));
    crate::util::assert_valid_results(&a.join("results.json"));

    // The final merge of the parts, of a part and a shard, and of three one-shard parts:
    // figures, thresholds, per-shard rows and every per-second histogram are the direct merge's.
    let want = figures(&direct);
    let want_log = intervals(&direct);
    assert!(!want_log.is_empty());
    let singles: Vec<PathBuf> = (0..3)
        .map(|i| case.dir().join(format!("single-{i}")))
        .collect();
    for (i, out) in singles.iter().enumerate() {
        merge_with(&[&root], &["--shards", &format!("{i}-{i}")], out).expect_code(code::OK);
    }
    let trees: Vec<(&str, Vec<&Path>)> = vec![
        ("parts", vec![&parts]),
        ("part and shard", vec![&a, &dirs[2]]),
        (
            "one-shard parts",
            singles.iter().map(PathBuf::as_path).collect(),
        ),
    ];
    for (name, inputs) in trees {
        let out = case.dir().join(format!("tree-{}", name.replace(' ', "-")));
        let o = merge(&inputs, &out);
        o.expect_code(code::OK);
        assert!(o.stdout.contains("shards (3 of 3)"), "{name}: {}", o.stdout);
        let got = figures(&out);
        for key in want.as_object().unwrap().keys() {
            assert_eq!(got[key], want[key], "{name}: {key}");
        }
        assert_eq!(got, want, "{name}");
        assert_eq!(intervals(&out), want_log, "{name}: latency.hlog");
        crate::util::assert_valid_results(&out.join("results.json"));
    }

    // Shards that started up to half a second apart still land in the same seconds both ways.
    let late = case.dir().join("late");
    for (i, d) in dirs.iter().enumerate() {
        let to = late.join(format!("shard-{i}"));
        std::fs::create_dir_all(&to).unwrap();
        let mut r = results(d);
        let shift = Duration::from_millis(200 * i as u64);
        for t in [&mut r.started_at, &mut r.ended_at] {
            let at = humantime::parse_rfc3339_weak(t).unwrap() + shift;
            *t = humantime::format_rfc3339_millis(at).to_string();
        }
        r.save(&to.join("results.json")).unwrap();
        std::fs::copy(d.join("latency.hlog"), to.join("latency.hlog")).unwrap();
    }
    let late_direct = case.dir().join("late-direct");
    merge(&[&late], &late_direct).expect_code(code::OK);
    let late_parts = case.dir().join("late-parts");
    merge_with(&[&late], &["--shards", "0-0"], &late_parts.join("a")).expect_code(code::OK);
    merge_with(&[&late], &["--shards", "1-2"], &late_parts.join("b")).expect_code(code::OK);
    let late_tree = case.dir().join("late-tree");
    merge(&[&late_parts], &late_tree).expect_code(code::OK);
    assert_eq!(figures(&late_tree), figures(&late_direct));
    assert_eq!(intervals(&late_tree), intervals(&late_direct));

    // A shard in two inputs is refused, both named; so is a part across another's range.
    let o = merge(&[&a, &dirs[1]], &case.dir().join("overlap"));
    o.expect_code(code::INVALID);
    let named = format!(
        "{} and {} both hold shard 1",
        a.display(),
        dirs[1].display()
    );
    assert!(o.stderr.contains(&named), "{}", o.stderr);
    let o = merge_with(&[&a], &["--shards", "1-2"], &case.dir().join("across"));
    o.expect_code(code::INVALID);
    assert!(
        o.stderr.contains("partly inside --shards 1-2"),
        "{}",
        o.stderr
    );
    let o = merge_with(
        &[&root],
        &["--shards", "2-1"],
        &case.dir().join("backwards"),
    );
    o.expect_code(code::INVALID);
    let o = merge_with(&[&root], &["--shards", "5-9"], &case.dir().join("none"));
    o.expect_code(code::INVALID);
    assert!(o.stderr.contains("no shard of 5-9"), "{}", o.stderr);
    let o = merge_with(
        &[&root],
        &["--shards", "0-1", "--threshold", "http.p99 < 1s"],
        &case.dir().join("judged"),
    );
    o.expect_code(code::INVALID);

    // A shard missing from a part: the part is written (exit 0), the final merge is incomplete
    // and names it.
    let gap = case.dir().join("gap");
    let o = merge_with(&[&dirs[0]], &["--shards", "0-1"], &gap.join("part-0"));
    o.expect_code(code::OK);
    assert!(o.stdout.contains("missing shard(s) 1/3"), "{}", o.stdout);
    assert_eq!(
        results(&gap.join("part-0")).merged.unwrap().missing,
        vec![1]
    );
    let out = case.dir().join("gap-merged");
    let o = merge(&[&gap.join("part-0"), &dirs[2]], &out);
    o.expect_code(code::INCOMPLETE);
    let m = results(&out);
    assert_eq!(m.status, "incomplete");
    assert_eq!(m.merged.as_ref().unwrap().missing, vec![1]);
    assert_eq!(m.summary.requests, 160);
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
            // Long enough that the shards to be stopped are still running when each of
            // their VUs has been seen, however slowly the processes started.
            .vus(7, "8s")
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
    // Stopped once every VU of shards 2 (VUs 2 and 6) and 3 (VU 3) has sent something, so
    // that "VU k ran on shard k mod 4" below does not depend on how fast they started.
    let seen = |vu: u64| {
        server
            .echoed()
            .iter()
            .any(|e| e.body.get("vu").map(number) == Some(vu))
    };
    assert!(
        eventually(Duration::from_secs(30), || [2, 3, 6].into_iter().all(seen)),
        "shards 2 and 3 sent nothing from VUs 2, 3 and 6 within 30 s"
    );
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

/// Downloads every object under `s3://bucket/prefix` into `into` (keys below the prefix as
/// paths), with boto3: a client other than peakload's reads what it uploaded.
const S3_DOWNLOAD: &str = r#"
import os
endpoint, bucket, prefix, into = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    keys += [o["Key"] for o in page.get("Contents", [])]
for key in keys:
    path = os.path.join(into, key[len(prefix):])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    s3.download_file(bucket, key, path)
print("\n".join(sorted(keys)))
"#;

const S3_DELETE: &str = r#"
endpoint, bucket, prefix = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
    s3.delete_object(Bucket=bucket, Key=o["Key"])
"#;

fn boto3(script: &str, args: &[&str]) -> String {
    let args: Vec<&Path> = args.iter().map(Path::new).collect();
    let (ok, out) = crate::util::python::python(&["boto3"], script, &args);
    assert!(ok, "{out}");
    out
}

/// `--out s3://bucket/prefix/` from three shard processes, then `merge s3://bucket/prefix/`:
/// the merged result is the local merge of the same files; a missing shard is `incomplete`;
/// a destination already holding a result is refused before any load; an upload that fails
/// after the load is exit 5 with the files kept; the secret key is never printed.
#[test]
fn shards_put_in_s3_merge_from_s3_as_from_a_volume() {
    let _cpu = shared_cpu();
    let moto = peakload_test_support::require_moto();
    let secret = "s3-test-secret-0123456789abcdefghijklmn";
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!("peakload-shards-{nanos}");
    peakload_test_support::create_bucket(&bucket);
    let prefix = format!("s3://{bucket}/runs/bf/");
    let with_s3 = |cmd: &mut Command| {
        cmd.arg("--s3-endpoint")
            .arg(&moto)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1");
    };
    let no_secret = |o: &crate::util::Outcome| {
        assert!(
            !o.stdout.contains(secret) && !o.stderr.contains(secret),
            "the secret key was printed:\n{}\n{}",
            o.stdout,
            o.stderr
        );
    };

    let case = case();
    let server = TestServer::start();
    let at =
        humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(4)).to_string();
    let shard_command = |i: u32| {
        let mut cmd = peakload();
        cmd.arg("run")
            .arg(case.scenario())
            .arg("--out")
            .arg(&prefix)
            .arg("--target")
            .arg(server.url())
            .args(["-q", "--threads", "1", "--start-at", &at])
            .arg("--shard")
            .arg(format!("{i}/3"));
        with_s3(&mut cmd);
        cmd
    };
    let running: Vec<_> = (0..3).map(|i| spawn(shard_command(i))).collect();
    for p in running {
        let o = p.finish_within(Duration::from_secs(60));
        o.expect_code(code::OK);
        no_secret(&o);
        assert!(
            o.stdout.contains(&format!("uploaded to {prefix}shard-")),
            "{}",
            o.stdout
        );
    }
    assert_eq!(server.total(), 240);

    // The layout, as another S3 client sees it.
    let copies = case.dir().join("copies");
    let keys = boto3(
        S3_DOWNLOAD,
        &[&moto, &bucket, "runs/bf/", copies.to_str().unwrap()],
    );
    for i in 0..3 {
        for f in ["results.json", "latency.hlog", "report.html"] {
            let key = format!("runs/bf/shard-{i}-of-3/{f}");
            assert!(keys.lines().any(|k| k == key), "{key} missing in:\n{keys}");
        }
    }

    // A destination that holds a result already is refused before any load.
    // (Its --start-at has passed, so were the destination not checked first, exit 6.)
    let o = run_within(shard_command(0), Duration::from_secs(60));
    o.expect_code(code::INVALID);
    assert!(o.stderr.contains("exists already"), "{}", o.stderr);
    assert_eq!(server.total(), 240, "nothing was sent");

    // Merged from S3 (into S3, then from S3 again to a directory) and from the local copies.
    let s3_merge = |inputs: &[&str], out: &str| {
        let mut cmd = peakload();
        cmd.arg("merge").args(inputs).arg("--out").arg(out);
        with_s3(&mut cmd);
        let o = run_within(cmd, Duration::from_secs(60));
        no_secret(&o);
        o
    };
    let merged_prefix = format!("{prefix}merged/");
    s3_merge(&[&prefix], &merged_prefix).expect_code(code::OK);
    let from_s3 = case.dir().join("from-s3");
    // The merged result written under the prefix is not read as a shard.
    let m = s3_merge(&[&prefix], from_s3.to_str().unwrap());
    m.expect_code(code::OK);
    assert!(m.stderr.contains("left out s3://"), "{}", m.stderr);
    assert!(m.stdout.contains("shards (3 of 3)"), "{}", m.stdout);
    let local = case.dir().join("from-copies");
    merge(&[&copies], &local).expect_code(code::OK);
    let (a, b) = (results(&from_s3), results(&local));
    assert_eq!(a.status, "completed");
    assert_eq!(a.summary.requests, 240);
    assert_eq!(
        serde_json::to_value(&a.summary).unwrap(),
        serde_json::to_value(&b.summary).unwrap()
    );
    assert_eq!(
        serde_json::to_value(&a.steps).unwrap(),
        serde_json::to_value(&b.steps).unwrap()
    );
    assert_eq!(
        serde_json::to_value(&a.timeline).unwrap(),
        serde_json::to_value(&b.timeline).unwrap()
    );
    assert_eq!(
        serde_json::to_value(&a.thresholds).unwrap(),
        serde_json::to_value(&b.thresholds).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(from_s3.join("latency.hlog")).unwrap(),
        std::fs::read_to_string(local.join("latency.hlog")).unwrap()
    );
    let sources: Vec<String> = a
        .merged
        .as_ref()
        .unwrap()
        .shards
        .iter()
        .map(|s| s.source.clone())
        .collect();
    assert!(
        sources.iter().all(|s| s.starts_with(&prefix)),
        "{sources:?}"
    );
    let uploaded_merge = case.dir().join("uploaded-merge");
    boto3(
        S3_DOWNLOAD,
        &[
            &moto,
            &bucket,
            "runs/bf/merged/",
            uploaded_merge.to_str().unwrap(),
        ],
    );
    assert_eq!(results(&uploaded_merge).summary.requests, 240);

    // Two levels, as the rendered parts' Job runs them: each part reads the whole prefix and
    // keeps its own range, the final merge reads the parts.
    let parts = format!("{prefix}merged-parts/");
    s3_merge(&[&prefix, "--shards", "0-1"], &format!("{parts}part-0/")).expect_code(code::OK);
    let o = s3_merge(&[&prefix, "--shards", "2-2"], &format!("{parts}part-1/"));
    o.expect_code(code::OK);
    assert!(
        o.stderr
            .contains("left out 3 shard(s) or part(s) outside shards 2-2"),
        "shards 0 and 1, and part 0: {}",
        o.stderr
    );
    let tree = case.dir().join("tree-from-s3");
    let o = s3_merge(&[&parts], tree.to_str().unwrap());
    o.expect_code(code::OK);
    assert_eq!(figures(&tree), figures(&from_s3));
    assert_eq!(intervals(&tree), intervals(&from_s3));
    // The prefix now holds each shard twice, itself and in a part: refused, both named.
    let o = s3_merge(&[&prefix], case.dir().join("twice").to_str().unwrap());
    o.expect_code(code::INVALID);
    assert!(o.stderr.contains("both hold shard 0"), "{}", o.stderr);
    boto3(S3_DELETE, &[&moto, &bucket, "runs/bf/merged-parts/"]);

    // One shard's files gone: incomplete, named, exit 7.
    boto3(S3_DELETE, &[&moto, &bucket, "runs/bf/shard-1-of-3/"]);
    let partial = case.dir().join("partial");
    let p = s3_merge(&[&prefix], partial.to_str().unwrap());
    p.expect_code(code::INCOMPLETE);
    assert_eq!(results(&partial).merged.unwrap().missing, vec![1]);

    // The bucket removed while a run is under way: the load was sent, the upload fails.
    let gone = format!("peakload-gone-{nanos}");
    peakload_test_support::create_bucket(&gone);
    let mut cmd = case.run_command(Path::new(&format!("s3://{gone}/run/")));
    cmd.arg("--target").arg(server.url()).arg("-q");
    with_s3(&mut cmd);
    let running = spawn(cmd);
    // Once the load is under way (the destination was checked before it).
    crate::util::wait_until("the run to send load", Duration::from_secs(30), || {
        server.total() > 240
    });
    // Nothing is uploaded before the load ends, so the bucket is still empty.
    peakload_test_support::delete_bucket(&gone);
    let o = running.finish_within(Duration::from_secs(60));
    o.expect_code(code::UNWRITTEN);
    no_secret(&o);
    assert!(o.stderr.contains("NoSuchBucket"), "{}", o.stderr);
    let kept = o
        .stderr
        .split("the files are kept in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{}", o.stderr));
    let kept = Path::new(kept.trim_end_matches([';', ',', '.']));
    assert!(kept.join("results.json").is_file(), "{}", o.stderr);
    let _ = std::fs::remove_dir_all(kept);
}

/// Loads every YAML document of `file`, validates each strictly with kubernetes-validate
/// (the Kubernetes version tests/deploy uses) and prints them as one JSON list.
const K8S_VALIDATE: &str = r#"
import json
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    kubernetes_validate.validate(d, "1.33.0", strict=True)
print(json.dumps(docs))
"#;

fn render(scenario: &Path, extra: &[&str]) -> crate::util::Outcome {
    let mut cmd = peakload();
    cmd.args(["k8s", "render"])
        .arg(scenario)
        .args(["--image", "registry.example.com/peakload:1.0"])
        .args(extra);
    run_within(cmd, Duration::from_secs(60))
}

fn validated(case: &Case, name: &str, yaml: &str) -> Vec<Value> {
    let file = case.dir().join(name);
    std::fs::write(&file, yaml).unwrap();
    let (ok, out) =
        crate::util::python::python(&["yaml", "kubernetes_validate"], K8S_VALIDATE, &[&file]);
    assert!(
        ok,
        "kubernetes-validate refused the rendered manifests:\n{out}\n{yaml}"
    );
    serde_json::from_str(&out).unwrap()
}

fn kind<'a>(docs: &'a [Value], kind: &str, suffix: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(suffix))
        })
        .unwrap_or_else(|| panic!("no {kind} *{suffix} in {docs:?}"))
}

#[test]
fn k8s_render_prints_valid_manifests_whose_pods_run_one_shard_each() {
    let users = "name\nann\nbob\n\"quoted, \"\"name\"\"\"\n";
    let case = Case::new(
        Scenario::new("Black Friday: k8s")
            .rps(30000, "60s")
            .feeder("user", "data/users.csv", "unique")
            .journey(
                Journey::new("shop")
                    .step(Step::get("item", "/item/{{user.name}}"))
                    .step(Step::get("cart", "/cart")),
            ),
    );
    std::fs::create_dir_all(case.dir().join("data")).unwrap();
    std::fs::write(case.dir().join("data/users.csv"), users).unwrap();
    let scenario_text = std::fs::read_to_string(case.scenario()).unwrap();

    // Through a shared volume.
    let before = SystemTime::now();
    let o = render(
        &case.scenario(),
        &["--shards", "4", "--start-in", "90s", "--namespace", "load"],
    );
    o.expect_code(code::OK);
    let docs = validated(&case, "volume.yaml", &o.stdout);
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "Job", "PersistentVolumeClaim"])
    );
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "load"));

    let cm = kind(&docs, "ConfigMap", "-scenario");
    assert_eq!(cm["data"]["scenario.toml"], scenario_text.as_str());
    assert_eq!(cm["data"]["data__users.csv"], users);

    let shards = kind(&docs, "Job", "-shards");
    let spec = &shards["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        (spec["completions"].as_u64(), spec["parallelism"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(spec["backoffLimitPerIndex"], 0);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let items = &pod["volumes"][0]["configMap"]["items"];
    assert_eq!(
        items,
        &serde_json::json!([
            { "key": "scenario.toml", "path": "scenario.toml" },
            { "key": "data__users.csv", "path": "data/users.csv" },
        ])
    );
    let c = &pod["containers"][0];
    let env: Vec<(&str, &str)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
        .collect();
    assert!(env.contains(&("PEAKLOAD_SHARD_COUNT", "4")), "{env:?}");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(&args[..2], &["run", "/scenario/scenario.toml"]);
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--out"), "/results/shard-$(SHARD_INDEX)");
    let start = peakload::cli::time_arg(after("--start-at")).unwrap();
    let ahead = start.duration_since(before).unwrap();
    assert!(
        (Duration::from_secs(88)..Duration::from_secs(95)).contains(&ahead),
        "starts {ahead:?} after rendering"
    );
    // 30,000 arrivals/s × 2 steps over 4 shards = 15,000 requests/s a shard; at 41 µs of CPU
    // each and 50 % use: 1.23 → 2 cores, and as many threads.
    assert_eq!(c["resources"]["requests"]["cpu"], "2");
    assert_eq!(after("--threads"), "2");
    assert_eq!(
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );

    let merge = kind(&docs, "Job", "-merge");
    assert_eq!(
        merge["spec"]["suspend"], true,
        "resumed after the shards, not before"
    );
    let margs = &merge["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(
        margs,
        &serde_json::json!([
            "merge",
            "/results",
            "--scenario",
            "/scenario/scenario.toml",
            "--out",
            "/results/merged"
        ])
    );
    assert!(
        o.stdout
            .contains("patch job/peakload-black-friday-k8s-merge"),
        "{}",
        o.stdout
    );
    assert!(
        docs.iter().all(|d| !d["metadata"]["name"]
            .as_str()
            .unwrap()
            .ends_with("-merge-parts")),
        "4 shards merge in one pod"
    );

    // 50 shards: the merge has two levels, four parts of up to 13 shards on their own pods,
    // resumed before the merge of the parts.
    let o = render(&case.scenario(), &["--shards", "50"]);
    o.expect_code(code::OK);
    let docs50 = validated(&case, "parts.yaml", &o.stdout);
    let parts = kind(&docs50, "Job", "-merge-parts");
    let spec = &parts["spec"];
    assert_eq!(spec["suspend"], true, "resumed after the shards");
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        (spec["completions"].as_u64(), spec["parallelism"].as_u64()),
        (Some(4), Some(4))
    );
    let c = &spec["template"]["spec"]["containers"][0];
    assert_eq!(
        c["args"],
        serde_json::json!([
            "merge",
            "/results",
            "--shards-per-part",
            "13",
            "--out",
            "/results/merged-parts/part-$(PART_INDEX)"
        ])
    );
    assert!(c["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "PART_INDEX"));
    let margs =
        &kind(&docs50, "Job", "-merge")["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(margs[1], "/results/merged-parts/");
    let patch_parts = o
        .stdout
        .find("patch job/peakload-black-friday-k8s-merge-parts")
        .expect("the parts are resumed");
    let patch_final = o
        .stdout
        .find("patch job/peakload-black-friday-k8s-merge --type")
        .expect("then the merge");
    assert!(patch_parts < patch_final, "{}", o.stdout);

    // Through S3; 500 shards: the pods' arguments do not grow with N (k6-operator #408), and
    // the merge is spread over parts.
    let o = render(
        &case.scenario(),
        &[
            "--shards",
            "500",
            "--out-s3",
            "s3://results/bf/",
            "--service-account",
            "loadgen",
        ],
    );
    o.expect_code(code::OK);
    let docs500 = validated(&case, "s3.yaml", &o.stdout);
    assert!(docs500.iter().all(|d| d["kind"] != "PersistentVolumeClaim"));
    let pod500 = &kind(&docs500, "Job", "-shards")["spec"]["template"]["spec"];
    assert_eq!(pod500["serviceAccountName"], "loadgen");
    let args500 = pod500["containers"][0]["args"].as_array().unwrap();
    assert_eq!(args500.len(), args.len());
    assert_eq!(args500[args500.len() - 1], "s3://results/bf/");
    let margs =
        &kind(&docs500, "Job", "-merge")["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(margs[1], "s3://results/bf/merged-parts/");
    assert_eq!(margs[5], "s3://results/bf/merged/");
    let parts500 = &kind(&docs500, "Job", "-merge-parts")["spec"];
    // ⌈√(3·500)⌉ = 39 shards a part: the sum of one part's and the final's merge times is
    // least there.
    assert_eq!(parts500["completions"], 13);
    let pargs = &parts500["template"]["spec"]["containers"][0]["args"];
    assert_eq!(pargs[3], "39");
    assert_eq!(pargs[1], "s3://results/bf/");
    assert_eq!(pargs[5], "s3://results/bf/merged-parts/part-$(PART_INDEX)");

    // A feeder outside the scenario's directory cannot be mounted with it: said, exit 2.
    let sub = case.dir().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let outside = Scenario::new("outside")
        .rps(10, "5s")
        .feeder("user", "../data/users.csv", "unique")
        .journey(Journey::new("j").step(Step::get("a", "/{{user.name}}")));
    std::fs::write(sub.join("outside.toml"), outside.to_string()).unwrap();
    let o = render(&sub.join("outside.toml"), &["--shards", "2"]);
    o.expect_code(code::INVALID);
    assert!(
        o.stderr.contains("outside the scenario's directory"),
        "{}",
        o.stderr
    );

    // base_url = "stack" would give each pod a stack of its own: refused unless --target
    // names the service they share, which every pod is then given.
    let own_stack = Scenario::new("own stack")
        .base_url("stack")
        .rps(10, "5s")
        .journey(Journey::new("j").step(Step::get("a", "/healthz")));
    std::fs::write(case.dir().join("own-stack.toml"), own_stack.to_string()).unwrap();
    let o = render(&case.dir().join("own-stack.toml"), &["--shards", "2"]);
    o.expect_code(code::INVALID);
    assert!(o.stderr.contains("pass --target URL"), "{}", o.stderr);
    let o = render(
        &case.dir().join("own-stack.toml"),
        &["--shards", "2", "--target", "http://shop.load.svc:8080"],
    );
    o.expect_code(code::OK);
    let docs = validated(&case, "target.yaml", &o.stdout);
    let args = &kind(&docs, "Job", "-shards")["spec"]["template"]["spec"]["containers"][0]["args"];
    let args: Vec<&str> = args
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    let at = args
        .iter()
        .position(|a| *a == "--target")
        .expect("--target passed to the pods");
    assert_eq!(args[at + 1], "http://shop.load.svc:8080");
    let o = render(
        &case.dir().join("own-stack.toml"),
        &["--shards", "2", "--target", "http://[::1"],
    );
    o.expect_code(code::INVALID);

    // Read through a pipe closed before the manifests are written (`| head`): the render
    // still succeeds, and says nothing of a panic.
    let mut cmd = peakload();
    cmd.args(["k8s", "render"])
        .arg(case.scenario())
        .args([
            "--image",
            "registry.example.com/peakload:1.0",
            "--shards",
            "4",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
