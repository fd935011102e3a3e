//! Property: any scenario `peakload check` accepts runs against a loopback server without a
//! panic, an abort or unbounded memory, and writes valid results when stopped.
//!
//! Scenarios are generated from a seed over what the plan and the engine are sized by (weights,
//! VU counts, rates, stages, durations up to the largest `check` takes, feeders, templates,
//! absolute URLs, timeouts, think times), and kept only when `check` accepts them. Each one
//! runs as the real binary against [`TestServer`] for one second, then gets SIGTERM (the run
//! drains for 200 ms and writes its results); its peak resident memory is read from /proc
//! while it runs. Every URL is on loopback: the scenario's base URL is replaced with
//! `--target`, and absolute step URLs name the test server or a closed loopback port.
//!
//! The CI version runs [`DEFAULT_CASES`] scenarios; `bench/property/run` runs many more
//! (`PEAKLOAD_PROPERTY_CASES`, `PEAKLOAD_PROPERTY_SEED`).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::python::schema_verdict;
use crate::util::scenario::quoted;
use crate::util::{peakload, run_within, shared_cpu, TestServer};

const DEFAULT_CASES: usize = 20;
const DEFAULT_SEED: u64 = 0x5eed_0015;
/// How long each run gets before SIGTERM.
const RUN_FOR: Duration = Duration::from_secs(1);
/// From SIGTERM to exit: the 200 ms drain, the results and the report, on a loaded machine.
const STOP_WITHIN: Duration = Duration::from_secs(15);
/// Peak resident memory of one run: a base, and a share per VU the plan may run. A debug
/// build idles near 30 MB and measured 820 MB with 100,000 VUs (about 8 KiB a VU); the
/// failures this guards against (memory per unit of weight, per arrival of a huge rate) grew
/// past 600 MB within a second on a plan of a few VUs.
const RSS_BASE_KB: u64 = 256 * 1024;
const RSS_PER_VU_KB: u64 = 16;

/// The most VUs a generated scenario's plan may run: the largest VU count it names (open
/// plans default to max_vus 1000).
fn planned_vus(scenario: &str) -> u64 {
    let counts: Vec<u64> = scenario
        .split(['\n', ','])
        .filter_map(|part| {
            let (key, value) = part.split_once('=')?;
            let key = key.trim().trim_start_matches('{').trim();
            matches!(key, "vus" | "max_vus" | "start_vus" | "target_vus")
                .then(|| value.trim().trim_end_matches('}').trim().parse().ok())?
        })
        .collect();
    let open_default = if scenario.contains("max_vus") || !scenario.contains("rps") {
        0
    } else {
        1000
    };
    counts.into_iter().max().unwrap_or(0).max(open_default)
}

fn pick<'a, T: ?Sized>(rng: &mut fastrand::Rng, items: &[&'a T]) -> &'a T {
    items[rng.usize(..items.len())]
}

/// A `[load]` section over the rates, counts and durations the plan is sized by.
fn load_section(rng: &mut fastrand::Rng) -> String {
    const DURATIONS: &[&str] = &[
        "1ms",
        "300ms",
        "1s",
        "3s",
        "1h",
        "10000d",
        "18446744073709551615s",
        "0s",
    ];
    const RATES: &[&str] = &["0", "0.5", "1", "7", "150", "2000", "10000000", "1.797e308"];
    const COUNTS: &[&str] = &["0", "1", "3", "50", "1000", "100000", "4294967295"];
    let d = |rng: &mut fastrand::Rng| quoted(pick(rng, DURATIONS));
    match rng.u8(..4) {
        0 => format!(
            "rps = {}\nduration = {}\narrivals = {}\nmax_vus = {}",
            pick(rng, RATES),
            d(rng),
            quoted(pick(rng, &["even", "poisson"])),
            pick(rng, COUNTS),
        ),
        1 => {
            let mut s = format!(
                "start_rps = {}\nmax_vus = {}\nstages = [\n",
                pick(rng, RATES),
                pick(rng, COUNTS)
            );
            for _ in 0..rng.usize(1..4) {
                let _ = writeln!(
                    s,
                    "  {{ duration = {}, target_rps = {} }},",
                    d(rng),
                    pick(rng, RATES)
                );
            }
            s.push(']');
            s
        }
        2 => format!("vus = {}\nduration = {}", pick(rng, COUNTS), d(rng)),
        _ => {
            let mut s = format!(
                "model = \"closed\"\nstart_vus = {}\nstages = [\n",
                pick(rng, COUNTS)
            );
            for _ in 0..rng.usize(1..4) {
                let _ = writeln!(
                    s,
                    "  {{ duration = {}, target_vus = {} }},",
                    d(rng),
                    pick(rng, COUNTS)
                );
            }
            s.push(']');
            s
        }
    }
}

/// One step: a path or an absolute loopback URL with templates, and what it sends; whether it
/// extracts `token`. Feeder columns and `token` are used only where they are defined.
fn step(
    rng: &mut fastrand::Rng,
    server: &str,
    n: usize,
    has_feeder: bool,
    has_token: bool,
) -> (String, bool) {
    const PATHS: &[&str] = &[
        "/status/200",
        "/status/{{random_int 200 503}}",
        "/item/{{random_int 0 20}}",
        "/echo?q={{uuid}}&v={{vu}}-{{iteration}}",
        "/delay/{{random_int 0 30}}",
        "/ü/{{now_ms}}/%25/a b",
        "/{{token}}",
        "/{{user.email}}/{{user.password}}",
        "/login",
    ];
    let mut s = format!("  [[journey.step]]\n  name = \"s{n}\"\n");
    let usable: Vec<&str> = PATHS
        .iter()
        .copied()
        .filter(|p| (has_token || !p.contains("token")) && (has_feeder || !p.contains("user.")))
        .collect();
    let path = pick(rng, &usable);
    if has_feeder && rng.bool() {
        let _ = writeln!(s, "  query = {{ u = \"{{{{user.email}}}}\" }}");
    }
    match rng.u8(..6) {
        0 => {
            let _ = writeln!(s, "  url = {}", quoted(&format!("{server}{path}")));
        }
        1 => {
            // A closed port on loopback: connection refused, counted, nothing sent elsewhere.
            let _ = writeln!(
                s,
                "  url = {}",
                quoted(&format!("http://127.0.0.1:9{path}"))
            );
        }
        2 => {
            let creds = server.replacen("http://", "http://user:secret@", 1);
            let _ = writeln!(s, "  url = {}", quoted(&format!("{creds}{path}")));
        }
        _ => {
            let _ = writeln!(s, "  path = {}", quoted(path));
        }
    }
    match rng.u8(..5) {
        0 => {
            let _ = writeln!(
                s,
                "  method = \"POST\"\n  json = {{ user = \"u{{{{vu}}}}\", password = \"pw-u{{{{vu}}}}\", n = \"{{{{random_int 1 9}}}}\" }}"
            );
        }
        1 => {
            let _ = writeln!(
                s,
                "  method = \"POST\"\n  body = {}",
                quoted(&"é{{uuid}}".repeat(rng.usize(0..200)))
            );
        }
        2 => {
            let _ = writeln!(s, "  headers = {{ X-Tag = \"{{{{iteration}}}}\" }}");
        }
        _ => {}
    }
    let extracts = rng.u8(..3) == 0;
    if extracts {
        let optional = if rng.bool() { ", optional = true" } else { "" };
        let _ = writeln!(
            s,
            "  extract = {{ token = {{ json = \"$.token\"{optional} }} }}"
        );
    }
    if rng.u8(..3) == 0 {
        let _ = writeln!(
            s,
            "  check = {{ status = {} }}",
            pick(rng, &["200", "[200, 404]"])
        );
    }
    if rng.u8(..4) == 0 {
        let _ = writeln!(
            s,
            "  think = {}",
            quoted(pick(rng, &["0ms", "10ms", "2s", "1h"]))
        );
    }
    if rng.u8(..4) == 0 {
        let _ = writeln!(
            s,
            "  timeout = {}",
            quoted(pick(rng, &["1ms", "50ms", "1s"]))
        );
    }
    (s, extracts)
}

/// A whole scenario file, and the feeder CSV it reads when it has one.
fn scenario(rng: &mut fastrand::Rng, server: &str) -> (String, Option<String>) {
    let mut s = String::new();
    let name = pick(rng, &["prop", "ünïcödé", "a-long-name"]);
    let _ = writeln!(s, "name = {}", quoted(name));
    let _ = writeln!(s, "base_url = \"http://127.0.0.1:9\"");
    if rng.bool() {
        let _ = writeln!(
            s,
            "timeout = {}",
            quoted(pick(rng, &["1ms", "100ms", "5s", "18446744073709551615s"]))
        );
    }
    if rng.bool() {
        let _ = writeln!(
            s,
            "thresholds = [\"http.error_rate < 1%\", \"http.p99 < 500ms\", \"j0.p95 < 1s\"]"
        );
    }
    let _ = writeln!(s, "\n[load]\n{}\n", load_section(rng));
    let feeder = if rng.bool() {
        let mode = pick(rng, &["sequential", "random", "unique"]);
        let _ = writeln!(
            s,
            "[[feeder]]\nname = \"user\"\nfile = \"users.csv\"\nmode = \"{mode}\"\n"
        );
        let mut csv = String::from("email,password\n");
        for i in 0..rng.usize(0..6) {
            let _ = writeln!(csv, "u{i}@example.com,pw-u{i}");
        }
        Some(csv)
    } else {
        None
    };
    for j in 0..rng.usize(1..4) {
        let _ = writeln!(s, "[[journey]]\nname = \"j{j}\"");
        if rng.bool() {
            let weight = pick(
                rng,
                &[
                    "0",
                    "1",
                    "3",
                    "1000",
                    "100000000",
                    "2147483648",
                    "4294967295",
                ],
            );
            let _ = writeln!(s, "weight = {weight}");
        }
        if rng.u8(..4) == 0 {
            let _ = writeln!(s, "keep_alive = false");
        }
        let mut has_token = false;
        for n in 0..rng.usize(1..5) {
            let (text, extracts) = step(rng, server, n, feeder.is_some(), has_token);
            s.push_str(&text);
            has_token |= extracts;
        }
        s.push('\n');
    }
    (s, feeder)
}

/// The peak resident set of a live process, in KiB (VmHWM only grows).
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

struct Ran {
    code: Option<i32>,
    stderr: String,
    peak_rss_kb: u64,
    stop_took: Duration,
}

/// `peakload run` for [`RUN_FOR`], then SIGTERM; output goes to files in `dir`.
fn run_for_a_second(dir: &Path, target: &str) -> Ran {
    let stderr_path = dir.join("stderr.txt");
    let mut child = peakload()
        .args(["run", "scenario.toml", "--out", "out", "--target", target])
        .args(["-q", "--no-tui", "--drain", "200ms"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start peakload");
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    let mut signalled: Option<Instant> = None;
    let status = loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        match signalled {
            None if started.elapsed() >= RUN_FOR => {
                // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                signalled = Some(Instant::now());
            }
            Some(at) if at.elapsed() > STOP_WITHIN => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "still running {STOP_WITHIN:?} after SIGTERM; stderr:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ran {
        code: status.code(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        peak_rss_kb: peak,
        stop_took: signalled.map(|at| at.elapsed()).unwrap_or_default(),
    }
}

#[test]
fn any_scenario_check_accepts_runs_a_second_without_a_panic_an_abort_or_unbounded_memory() {
    let cases: usize = std::env::var("PEAKLOAD_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("PEAKLOAD_PROPERTY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let _cpu = shared_cpu();
    let server = TestServer::start();
    let url = server.url();
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut generated, mut ran, mut max_rss) = (0, 0, 0);
    let mut refusals = std::collections::BTreeMap::new();
    let started = Instant::now();
    while ran < cases {
        generated += 1;
        if generated > cases * 6 {
            let mut common: Vec<(usize, String)> =
                refusals.into_iter().map(|(m, n)| (n, m)).collect();
            common.sort_unstable_by(|a, b| b.cmp(a));
            common.truncate(8);
            panic!(
                "check accepted only {ran} of {generated} generated scenarios; the generator \
                 has drifted from the scenario format. Most common refusals: {common:#?}"
            );
        }
        let (text, feeder) = scenario(&mut rng, &url);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scenario.toml"), &text).unwrap();
        if let Some(csv) = feeder {
            std::fs::write(dir.path().join("users.csv"), csv).unwrap();
        }
        let mut check = peakload();
        check
            .args(["check", "scenario.toml"])
            .current_dir(dir.path());
        // A check that hangs fails the test (run_within kills it).
        let check = run_within(check, Duration::from_secs(30));
        let check_stderr = check.stderr;
        match check.code {
            0 => {}
            2 => {
                // Each refusal without its place, to tell which dimension is refused most.
                for line in check_stderr.lines() {
                    let message = line.splitn(4, ':').nth(3).unwrap_or(line).trim();
                    let message: String = message.chars().take(60).collect();
                    *refusals.entry(message).or_insert(0usize) += 1;
                }
                continue;
            }
            other => panic!(
                "check ended with {other:?} on case {generated} (seed {seed}):\n{text}\n{check_stderr}"
            ),
        }
        ran += 1;
        let r = run_for_a_second(dir.path(), &url);
        let context = format!(
            "case {generated} (seed {seed}), exit {:?}, peak RSS {} MB, stop took {:?}\n\
             scenario:\n{text}\nstderr:\n{}",
            r.code,
            r.peak_rss_kb / 1024,
            r.stop_took,
            r.stderr
        );
        // 0 and 1: the plan ended within the second; 3: stopped by the signal.
        assert!(matches!(r.code, Some(0 | 1 | 3)), "{context}");
        assert!(
            !r.stderr.contains("panicked") && !r.stderr.contains("memory allocation"),
            "{context}"
        );
        let limit_kb = RSS_BASE_KB + RSS_PER_VU_KB * planned_vus(&text);
        assert!(
            r.peak_rss_kb < limit_kb,
            "over {} MB: {context}",
            limit_kb / 1024
        );
        let results = dir.path().join("out/results.json");
        if let Err(e) = schema_verdict(&results) {
            panic!("results.json: {e}\n{context}");
        }
        max_rss = max_rss.max(r.peak_rss_kb);
    }
    eprintln!(
        "property: {ran} runs of {generated} generated scenarios (seed {seed}) in {:.1} s; \
         highest peak RSS {} MB",
        started.elapsed().as_secs_f64(),
        max_rss / 1024
    );
}
