//! Naming the cause: each signal maps to a [`Kind`] by its name (and the direction it moved),
//! and the best-scored signal of each kind becomes a [`Finding`] with its evidence and a
//! sentence to act on. Events (scaling activities, log lines) and the generator's own health
//! add findings the series cannot.
//!
//! # The vocabulary
//!
//! | kind | from | signals (case-insensitive, on `name{dims}`) |
//! |---|---|---|
//! | `throttling` | series rising | `throttl`, `429`, `rate_limit` |
//! | `db_pool_saturation` | series rising | `pool` with `wait`/`acquire`/`pending`/`in_use`, `DatabaseConnections` |
//! | `db_latency` | series rising | `db`/`database`/`sql`/`query`/`rds`/`dynamo` with `latency`/`duration`/`in_flight`/`InFlight`/`time`, `ReadLatency`, `WriteLatency` |
//! | `queue_backlog` | series rising (depth, age, lag) or falling (worker throughput) | `queue`, `backlog`, `ApproximateNumberOfMessages`, `AgeOfOldestMessage`, `consumer_lag`, `worker` |
//! | `cpu_saturation` | series rising; a core's idle time falling to 10 % or less | by what the series measures (see [`classify`]): node_exporter's `node_cpu_seconds_total` by `mode` (idle falling; user, system, steal rising; **iowait is I/O, not CPU**), `process_cpu_seconds_total`, CFS and cgroup throttling, PSI `cpu` (`node_pressure_*`, the stack's `host_pressure_*`), scheduling delay (`node_schedstat_waiting…`, `process_schedstat_waiting…`); else `cpu` beginning a word of the metric's *name* — never a label (`node_softnet_processed_total{cpu="0"}` counts packets) |
//! | `io_saturation` | series rising (an EBS burst or I/O balance falling) | PSI `io` (`node_pressure_io_*`, the stack's `host_pressure_io_*`) from 5 % of the time stalled; a core's `iowait` from a tenth of it; node_exporter's disk busy time and queue (`node_disk_io_time…`, `…read_time…`, `…write_time…`, `node_disk_io_now`) from half the time; `DiskQueueDepth`, `VolumeQueueLength`, `BurstBalance`, `iowait`/`io_wait` in the name — never a disk's bytes or operations (throughput) |
//! | `target_unresponsive` | `up` falling: scrapes of a target got no answer | `up` (the scraper records one per attempt, as Prometheus does) |
//! | `memory_pressure` | series rising (available memory falling) | `memory`, `rss`, `resident`, `heap`, `swap`, `oom`, PSI `memory`, `node_memory_*Available*`/`*Free*` |
//! | `scaling_lag` | a scale-out that completed after the SLI turned (the first to land gives the lag), else one that failed, else one still in progress when read — each said as such; series of desired vs running capacity | `desired`, `running_count`, `in_service`, `replicas` |
//! | `error_burst` | series rising (with matching log lines); the users' own errors when nothing else explains them | `5xx`, `error`, `fail`, `exception` |
//! | `generator_limited` | the results' generator health: CPU-bound seconds, `kept_up = false` | — |
//!
//! Workers handling fewer messages name a backlog unless every observed queue depth and age
//! stayed flat meanwhile (see [`backlog_grew`]): with the queues empty, they were handed fewer.
//!
//! Patterns read a signal's metric name and its labels, except those that say where it came
//! from or which core (`instance`, `job`, `source`, `cpu`…; see [`IDENTITY_LABELS`]).
//! Network series and a disk's throughput (bytes, operations completed) name no kind.
//!
//! **I/O.** A core's `iowait` is idle time with I/O outstanding — high on an idle core with
//! little I/O, low on a busy one with much — so a finding read from it is scored × 0.5.
//! Memory stalls (PSI `memory`) that began no later than the disk's explain it:
//! pages evicted under memory pressure are read back (the I/O finding is a consequence, × 0.3).
//! CPU saturation (a starved service, the host's CPU pressure) while the disk stalled names
//! the disk first: its readers and writers take CPU too, while CPU contention alone does not
//! make tasks wait for the disk (both findings stay, each naming the other).
//!
//! A backlog accumulates: a queue signal that rose but did not keep growing through the
//! window (rank correlation with time below 0.5) is a queue reacting to something else, and
//! its finding's score is multiplied by 0.6.
//!
//! A `db_pool_saturation` finding says how full the pool was — "1 of 1 connections in use" —
//! when a gauge of connections in use and one of the pool's size are both observed (see
//! [`pool_use`]); when the finding's signal is a wait, it reads as the pool wait. An in-use
//! gauge names it only when the fullest observed pool was at least [`POOL_FULL`] full: with a
//! planted error rate, a read pool going from 0 to 1 of 4 connections had outranked the
//! errors themselves. A pool *wait* names it only when, with a pool observed, the pool filled
//! at some time in the window (its 90th percentile in use): a CPU-starved caller's waits rose
//! with 2 of 16 connections in use.
//!
//! **CPU starvation.** A service's own CPU (`process_cpu_seconds_total`…) that *fell* — or its
//! own threads' wait for a CPU that rose (0.1 s/s more, and doubled) while its own CPU did not —
//! while a CPU of its host was saturated (a core's idle at 10 % or less, a busy share at 90 %, PSI
//! `cpu` rising, or its own threads waiting runnable for a tenth of a second per second or more) names `cpu_saturation` on the host's signal, scored at least 0.5: the service
//! was descheduled by other work. The database findings of every starved process (same `instance`)
//! whose window starts with the starvation are explained away — unless I/O pressure (PSI `io`,
//! `iowait`) rose with it, a second explanation for a database timing — their score × 0.3, with a line
//! saying why: a wall-clock timing taken by a caller that is not running inflates whatever it
//! times. Without a host signal no starvation is claimed.
//!
//! CPU and memory name a cause only at a level that can limit a service: CPU at 20% of a core
//! or of the host (`seconds_per_second`, `ratio`, `percent`); memory pressure stall (PSI) at 5%
//! of the time; memory at 80% of a memory limit
//! observed among the signals, or at 80% (`ratio`, `percent`), or — in bytes with no limit
//! known — after growing by 64 MiB and 20%. Below that they stay in the ranking as symptoms.
//!
//! An `error_burst` says the service returned errors only when the users' error rate rose;
//! errors found only in its logs (or another signal) while the users' requests succeeded are
//! said to have been absorbed inside it.
//!
//! A signal whose values aggregate an interval (`span_s`) is said to have moved "as (to within
//! its 10 s period)" the users' experience, or at least a whole period before or after it
//! (see `rank::credible_lead`).
//!
//! A signal that matches nothing (the server's own request latency, request counts) is still
//! ranked, but names no cause: it is a symptom.
//!
//! **Consequences.** When the system declares its structure (see [`super::structure`]), a
//! finding whose component depends on another finding's, and which changed no earlier than it
//! (to within a scrape) while that one scored at least half as high, is that finding's
//! consequence: a consumer blocked by the database it
//! calls, the queue backing up behind it. It stays in the list, scored × 0.3, with a line giving
//! the chain (`database → worker:email → queue:notifications`) and `explained_by` naming the
//! cause. Nothing is assumed when nothing is declared.
//!
//! **Runner-up.** Each finding names the candidate after it — the next finding, or for the last
//! one the best-ranked signal that named none — and why that one was not chosen: a consequence,
//! a starved caller's timing, a symptom with no kind, a kind already named, a change too small
//! to date, or the factor of the score it lost on (later, less aligned with the users, smaller).
//!
//! Values are worded by what they measure ([`signal_value`]): pressure stall (PSI) is a share
//! of time some task stalled, not of a core.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use regex::Regex;

use super::rank::{Scored, CHANGE_Z};
use super::sli::Sli;
use super::structure::Structure;
use super::{round3, Input};
use crate::record::findings::{Finding, Kind, RunnerUp, Window};
use crate::record::infra::Event;

/// Below this score a signal names no cause.
pub const MIN_SCORE: f64 = 0.2;

/// Which way a signal must move to point at its kind.
#[derive(Clone, Copy, PartialEq)]
enum Moves {
    Up,
    Down,
}

fn patterns() -> &'static [(Kind, Regex, Moves)] {
    static P: OnceLock<Vec<(Kind, Regex, Moves)>> = OnceLock::new();
    P.get_or_init(|| {
        let r = |s: &str| Regex::new(&format!("(?i){s}")).expect("valid rule pattern");
        vec![
            (Kind::Throttling, r(r"throttl|\b429\b|rate_?limit"), Moves::Up),
            (
                Kind::DbPoolSaturation,
                r(r"pool.*(wait|acquire|pending|in_use|exhaust)|databaseconnections"),
                Moves::Up,
            ),
            (
                Kind::DbLatency,
                r(r"(db|database|sql|query|rds|dynamo).*(latency|duration|in_?flight|time)|readlatency|writelatency"),
                Moves::Up,
            ),
            // Before the queues: an EBS volume's queue is the disk's.
            (
                Kind::IoSaturation,
                r(r"iowait|(^|[^a-z])io_?wait|diskqueuedepth|volumequeuelength|disk.*(busy|util)"),
                Moves::Up,
            ),
            (
                Kind::IoSaturation,
                r(r"burstbalance|ebsiobalance|volumeidletime"),
                Moves::Down,
            ),
            (
                Kind::QueueBacklog,
                r(r"worker.*(processed|completed|consumed)|messages_deleted|numberofmessagesdeleted"),
                Moves::Down,
            ),
            (
                Kind::QueueBacklog,
                r(r"queue|backlog|approximatenumberofmessages|ageofoldestmessage|consumer_?lag"),
                Moves::Up,
            ),
            // `cpu` as the start of a word of the metric name (`process_cpu_…`, `CPUUtilization`),
            // not inside one.
            (Kind::CpuSaturation, r(r"(^|[^a-z])cpu"), Moves::Up),
            (
                Kind::MemoryPressure,
                // `rss` and `mem` as words of the name (`_` is a word character, so `\b`
                // would miss `process_rss`; RCAEval's columns are `cartservice_mem`), not
                // inside one (`memcached_…`).
                r(r"memory|(^|[^a-z])(rss|mem)([^a-z]|$)|resident|heap|swap|oom"),
                Moves::Up,
            ),
            (
                Kind::ScalingLag,
                r(r"desired|running_?count|in_?service|replicas"),
                Moves::Up,
            ),
            (
                Kind::ErrorBurst,
                r(r"5xx|error|fail|exception|status=.?5\d\d"),
                Moves::Up,
            ),
        ]
    })
}

/// The share of a pool in use (median over the degradation) from which its in-use gauge can
/// name `db_pool_saturation`.
pub const POOL_FULL: f64 = 0.75;

/// Labels that say where a series came from, not what it measures: never read for its kind
/// (a host called `db-queue-1` does not make its CPU a queue). `cpu` and `core` say which core,
/// not that the series is about CPU (`node_softnet_processed_total{cpu="0"}` counts packets).
const IDENTITY_LABELS: [&str; 10] = [
    "instance",
    "exported_instance",
    "job",
    "source",
    "host",
    "hostname",
    "pod",
    "node",
    "cpu",
    "core",
];

/// A signal key (`name{k="v",...}`) as its metric name and its labels.
pub fn split_key(key: &str) -> (&str, Vec<(String, String)>) {
    static DIM: OnceLock<Regex> = OnceLock::new();
    let dim = DIM
        .get_or_init(|| Regex::new(r#"(\w+)="((?:[^"\\]|\\.)*)""#).expect("valid label pattern"));
    match key.split_once('{') {
        None => (key, Vec::new()),
        Some((name, dims)) => (
            name,
            dim.captures_iter(dims)
                .map(|c| (c[1].to_string(), c[2].to_string()))
                .collect(),
        ),
    }
}

/// A CPU's time in `mode` (`node_cpu_seconds_total{mode="idle"}`, `"iowait"`).
fn cpu_mode(name: &str, mode: &str) -> bool {
    let (_, dims) = split_key(name);
    dims.iter().any(|(k, v)| k == "mode" && v == mode)
}

fn idle_time(name: &str) -> bool {
    cpu_mode(name, "idle")
}

/// What a series from a known exporter measures, by its metric name and `mode`: `Some(kind)`
/// when the name is known (`Some(None)`: known, and no cause of ours — network packets, I/O
/// wait), `None` to fall back on the vocabulary's patterns.
fn measured(metric: &str, dims: &[(String, String)], moved: Moves) -> Option<Option<Kind>> {
    let m = metric.to_ascii_lowercase();
    let base = m.split(':').next().unwrap_or(&m);
    let label = |k: &str| {
        dims.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let up = |k: Kind| (moved == Moves::Up).then_some(k);
    // Whether the last scrape of a target got an answer (Prometheus's own `up`, or ours).
    if base == "up" {
        return Some((moved == Moves::Down).then_some(Kind::TargetUnresponsive));
    }
    // node_exporter's per-mode CPU time: idle falling is the CPU filling up; iowait is time a
    // CPU sat idle waiting for the disk, not CPU work.
    if base == "node_cpu_seconds_total" || base == "node_cpu_guest_seconds_total" {
        return Some(match label("mode").as_deref() {
            Some("idle") => (moved == Moves::Down).then_some(Kind::CpuSaturation),
            Some("iowait") => up(Kind::IoSaturation),
            _ => up(Kind::CpuSaturation),
        });
    }
    // A disk's busy time and queue say how saturated it was; bytes and operations completed
    // are its throughput, which a healthy disk raises too.
    if base.starts_with("node_disk_") {
        return Some(
            [
                "node_disk_io_time_seconds_total",
                "node_disk_io_time_weighted_seconds_total",
                "node_disk_read_time_seconds_total",
                "node_disk_write_time_seconds_total",
                "node_disk_io_now",
            ]
            .contains(&base)
            .then(|| up(Kind::IoSaturation))
            .flatten(),
        );
    }
    // Network counters, wherever they mention a CPU.
    if [
        "node_softnet_",
        "node_network_",
        "node_netstat_",
        "node_sockstat_",
    ]
    .iter()
    .any(|p| base.starts_with(p))
    {
        return Some(None);
    }
    // Pressure stall information (node_exporter's node_pressure_*, or /proc/pressure read by
    // the service itself): time tasks waited for CPU, memory or I/O.
    if base.contains("pressure") {
        if base.contains("cpu") {
            return Some(up(Kind::CpuSaturation));
        }
        if base.contains("memory") {
            return Some(up(Kind::MemoryPressure));
        }
        if base.contains("_io") {
            return Some(up(Kind::IoSaturation));
        }
    }
    // A cgroup's CPU limit reached (CFS throttling), and tasks waiting for a CPU (the host's,
    // or a process's own scheduling delay from /proc/<pid>/schedstat).
    if base.starts_with("container_cpu_cfs_throttled")
        || base.starts_with("cgroup_cpu_throttled")
        || base == "node_procs_running"
        || base == "node_schedstat_waiting_seconds_total"
        || base == "process_schedstat_waiting_seconds_total"
    {
        return Some(up(Kind::CpuSaturation));
    }
    // Memory still available falling is memory filling up.
    if base.starts_with("node_memory_") && (base.contains("available") || base.contains("free")) {
        return Some((moved == Moves::Down).then_some(Kind::MemoryPressure));
    }
    None
}

/// The kind a signal points at when it moved in `direction` (+1 up, -1 down): by what it
/// measures — a known exporter's metric name and `mode` (see [`measured`]), else the
/// vocabulary's patterns on its metric name and its labels other than where it came from and
/// which core ([`IDENTITY_LABELS`]).
pub fn classify(name: &str, direction: f64) -> Option<Kind> {
    let moved = if direction < 0.0 {
        Moves::Down
    } else {
        Moves::Up
    };
    let (metric, dims) = split_key(name);
    if let Some(kind) = measured(metric, &dims, moved) {
        return kind;
    }
    let mut subject = metric.to_string();
    for (k, v) in dims
        .iter()
        .filter(|(k, _)| !IDENTITY_LABELS.contains(&k.as_str()))
    {
        let _ = write!(subject, " {k}=\"{v}\"");
    }
    patterns()
        .iter()
        // CPU is read from the metric's name only: a route or a label value that mentions
        // it (`route="/cpu-report"`) does not make a request count CPU.
        .find(|(k, re, _)| match k {
            Kind::CpuSaturation => re.is_match(metric),
            _ => re.is_match(&subject),
        })
        .filter(|(_, _, m)| *m == moved)
        .map(|(k, _, _)| *k)
}

pub fn findings(input: &Input, sli: &Sli, scored: &[Scored]) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(f) = generator_finding(input, sli) {
        out.push(f);
    }
    if !sli.degraded() {
        return out;
    }
    let mut seen = Vec::new();
    for s in scored {
        let Some(kind) = s.kind else { continue };
        if s.score < MIN_SCORE
            || s.z < CHANGE_Z
            || s.changed_at.is_none()
            || seen.contains(&kind)
            || !high_enough(input, sli, s, kind)
        {
            continue;
        }
        // Workers that handle fewer messages while no queue grows were handed fewer (the
        // producer failed or slowed): a consequence, not a backlog.
        if kind == Kind::QueueBacklog
            && s.direction < 0.0
            && backlog_grew(input, sli) == Some(false)
        {
            continue;
        }
        seen.push(kind);
        let mut f = signal_finding(input, sli, s, kind);
        if kind == Kind::IoSaturation && cpu_mode(&s.name, "iowait") {
            f.score = round3(f.score * 0.5);
            f.lines.push("iowait is a core's idle time while some I/O was outstanding, a weak measure of the disk: scored × 0.5 — observe I/O pressure (PSI io) or the disk's busy time".into());
        }
        if kind == Kind::QueueBacklog && s.direction > 0.0 {
            let growth = growth(input, sli, s);
            f.evidence.insert("growth".into(), round3(growth));
            if growth < 0.5 {
                f.score = round3(f.score * 0.6);
            }
        }
        out.push(f);
    }
    if let Some(st) = starvation(sli, scored) {
        explain_starvation(&mut out, input, sli, &st);
    }
    explain_io_by_memory(&mut out);
    io_before_cpu(&mut out);
    explain_consequences(&mut out, &Structure::declared(&input.signals));
    out.extend(scaling_findings(input, sli));
    if out.is_empty() {
        if let Some(e) = sli.report.error_rate.as_ref().filter(|e| e.degraded) {
            out.push(Finding {
                kind: Kind::ErrorBurst,
                signal: "errors".into(),
                score: 0.3,
                window: window(sli),
                evidence: BTreeMap::from([
                    ("baseline_error_rate".into(), e.baseline),
                    ("during_error_rate".into(), e.during),
                ]),
                lines: input.error_samples.iter().take(3).cloned().collect(),
                summary: format!(
                    "Users saw errors from t={:.0}s ({:.1}% of requests, {:.1}% before) and no observed signal explains them; read the error samples and the service's logs for that window.",
                    sli.onset,
                    e.during * 100.0,
                    e.baseline * 100.0
                ),
                explained_by: None,
                runner_up: None,
            });
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    name_runners_up(&mut out, input, sli, scored);
    out
}

/// A gauge is read at the next scrape: an effect may be seen this long after its cause and
/// still have come after it.
const READ_SLACK_S: f64 = 1.0;

/// When a finding's signal changed (s), as its evidence records it.
fn changed_at(f: &Finding) -> Option<f64> {
    f.evidence.get("changed_at_s").copied()
}

/// Memory stalls (PSI `memory`) that began no later than the disk's pressure explain it: pages
/// evicted under memory pressure are read back from disk as they are used again (the fault
/// suite's memory limit raised I/O stall with it). The I/O finding stays, scored × 0.3.
fn explain_io_by_memory(out: &mut [Finding]) {
    let Some((signal, at)) = out
        .iter()
        .filter(|f| f.kind == Kind::MemoryPressure && psi(&f.signal) && f.explained_by.is_none())
        .filter_map(|f| Some((f.signal.clone(), changed_at(f)?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
    else {
        return;
    };
    for f in out.iter_mut().filter(|f| f.kind == Kind::IoSaturation) {
        if changed_at(f).is_some_and(|t| t + READ_SLACK_S >= at) {
            f.score = round3(f.score * 0.3);
            f.lines.push(format!(
                "a consequence of {signal} (memory stalls from t={at:.0}s): pages evicted under memory pressure are read back from disk as they are used again"
            ));
            f.explained_by = Some(signal.clone());
        }
    }
}

/// CPU saturation (a starved service, or the host's CPU pressure) while the disk stalled too:
/// the disk is named first. Reads, writes and writeback take CPU themselves (the fault suite's
/// disk writers doubled the API's wait for a CPU, and took the host's CPU pressure from 28 % to
/// 100 % of the time on a busy 2-core host), while CPU contention alone does not make tasks
/// wait for the disk. Both findings stay, each saying the other was seen. A disk read from
/// `iowait` alone is too weak for this.
fn io_before_cpu(out: &mut [Finding]) {
    let overlaps = |a: &Window, b: &Window| a.start_s < b.end_s && b.start_s < a.end_s;
    let Some(i) = out.iter().position(|f| {
        f.kind == Kind::IoSaturation && f.explained_by.is_none() && !cpu_mode(&f.signal, "iowait")
    }) else {
        return;
    };
    let Some(c) = out
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == Kind::CpuSaturation && overlaps(&f.window, &out[i].window))
        .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
        .map(|(c, _)| c)
    else {
        return;
    };
    let (cpu_signal, io_signal) = (out[c].signal.clone(), out[i].signal.clone());
    out[i].score = out[i].score.max(out[c].score);
    out[i].lines.push(format!(
        "CPU was short meanwhile too ({cpu_signal}): reads, writes and writeback take CPU as well, while CPU contention alone leaves the disk quiet"
    ));
    out[c].lines.push(format!(
        "the disk stalled in the same window ({io_signal}): named first, as the contention that also explains this one and the database's timings"
    ));
    // Equal scores keep their order when sorted: the disk's goes first.
    if c < i {
        out.swap(c, i);
    }
}

/// How well supported, against its effect's score, a finding upstream must be to explain it.
const CAUSE_SHARE: f64 = 0.5;

/// Findings that the declared structure puts downstream of another finding that changed
/// earlier (or within [`READ_SLACK_S`] of it) are consequences: a consumer blocked by the
/// database it calls, a queue backing up behind that consumer. Each keeps its place in the
/// list, scored × 0.3, with a line saying what it follows and `explained_by` naming it; the
/// earliest such cause is the one named. A cause must be at least half as well supported as
/// its effect ([`CAUSE_SHARE`]): a database timing that moved 0.4 → 0.6 ms (score 0.37) took
/// a stopped worker's backlog (0.86) down to 0.26 and was named first.
fn explain_consequences(out: &mut [Finding], structure: &Structure) {
    if structure.is_empty() {
        return;
    }
    let parts: Vec<Option<String>> = out.iter().map(|f| structure.component(&f.signal)).collect();
    let mut explained: Vec<(usize, usize, Vec<String>)> = Vec::new();
    for (e, effect) in out.iter().enumerate() {
        let (Some(part), Some(at)) = (&parts[e], changed_at(effect)) else {
            continue;
        };
        let cause = out
            .iter()
            .enumerate()
            .filter(|(c, f)| {
                *c != e && f.explained_by.is_none() && f.score >= CAUSE_SHARE * effect.score
            })
            .filter_map(|(c, f)| {
                let t = changed_at(f).filter(|t| *t <= at + READ_SLACK_S)?;
                let chain = structure.path(part, parts[c].as_deref()?)?;
                Some((c, t, chain))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((c, _, chain)) = cause {
            explained.push((e, c, chain));
        }
    }
    for (e, c, chain) in explained {
        let (cause_signal, cause_at) = (out[c].signal.clone(), changed_at(&out[c]).unwrap_or(0.0));
        let f = &mut out[e];
        let lag = changed_at(f).unwrap_or(cause_at) - cause_at;
        let when = if lag >= 1.0 {
            format!("{lag:.0} s after it")
        } else {
            "with it".to_string()
        };
        f.score = round3(f.score * 0.3);
        f.lines.push(format!(
            "a consequence of {cause_signal} (changed at t={cause_at:.0}s, this one {when}): {} depends on {} ({}), as the stack declares",
            chain.last().map_or("it", String::as_str),
            chain[0],
            chain.join(" → ")
        ));
        f.explained_by = Some(cause_signal);
    }
}

/// Each finding's runner-up — the next finding, or for the last one the best-ranked signal
/// that named none — and why it was not chosen.
fn name_runners_up(out: &mut [Finding], input: &Input, sli: &Sli, scored: &[Scored]) {
    let named: Vec<String> = out.iter().map(|f| f.signal.clone()).collect();
    let find = |name: &str| scored.iter().find(|s| s.name == name);
    for i in 0..out.len() {
        let winner = &out[i];
        let runner = match out.get(i + 1) {
            Some(next) => RunnerUp {
                signal: next.signal.clone(),
                kind: Some(next.kind),
                score: round3(next.score),
                why_not: why_not_finding(winner, next, find(&winner.signal), find(&next.signal)),
            },
            None => {
                let Some(s) = scored.iter().find(|s| {
                    s.score > 0.0
                        && !named.contains(&s.name)
                        && !super::structure::declares(&s.name)
                }) else {
                    continue;
                };
                RunnerUp {
                    signal: s.name.clone(),
                    kind: s.kind,
                    score: round3(s.score),
                    why_not: why_not_signal(input, sli, winner, find(&winner.signal), s, out),
                }
            }
        };
        out[i].runner_up = Some(runner);
    }
}

fn why_not_finding(
    winner: &Finding,
    next: &Finding,
    w: Option<&Scored>,
    r: Option<&Scored>,
) -> String {
    if winner.kind == Kind::IoSaturation
        && next
            .lines
            .iter()
            .any(|l| l.starts_with("the disk stalled in the same window"))
    {
        return "the disk stalled with it: the disk's readers and writers take CPU too, while CPU contention alone leaves the disk quiet".into();
    }
    if let (Some(cause), Kind::IoSaturation) = (&next.explained_by, next.kind) {
        return format!(
            "it is a consequence of {cause}: pages evicted under memory pressure are read back from disk"
        );
    }
    if let Some(cause) = &next.explained_by {
        return format!(
            "it is a consequence of {cause}: downstream of it in the stack's declared structure, and it changed no earlier"
        );
    }
    if next
        .lines
        .iter()
        .any(|l| l.contains("starved of CPU") && !l.contains("not explained away"))
    {
        return "it rose only while its caller was starved of CPU: a descheduled caller's wall clock".into();
    }
    match (w, r) {
        (Some(w), Some(r)) => compare(w, r),
        _ => format!(
            "its evidence is weaker (score {:.2} against {:.2})",
            next.score, winner.score
        ),
    }
}

fn why_not_signal(
    input: &Input,
    sli: &Sli,
    winner: &Finding,
    w: Option<&Scored>,
    r: &Scored,
    out: &[Finding],
) -> String {
    let Some(kind) = r.kind else {
        return format!(
            "{} names no cause: it is a symptom (what a service reports of its own work), not a resource that limits",
            r.name
        );
    };
    if out.iter().any(|f| f.kind == kind) {
        return format!(
            "its kind, {}, is already named by a better-scored signal",
            kind.as_str()
        );
    }
    if r.z < CHANGE_Z || r.changed_at.is_none() {
        return format!(
            "it did not change clearly against its own noise (z {:.1}, {CHANGE_Z} needed)",
            r.z
        );
    }
    if r.score < MIN_SCORE {
        return format!(
            "its score {:.2} is below the {MIN_SCORE} a cause needs: {}",
            r.score,
            w.map_or_else(String::new, |w| compare(w, r))
        );
    }
    if !high_enough(input, sli, r, kind) {
        return "it did not reach a level that can limit a service".into();
    }
    match w {
        Some(w) => compare(w, r),
        None => format!(
            "its evidence is weaker (score {:.2} against {:.2})",
            r.score, winner.score
        ),
    }
}

/// Which factor of the score the runner-up `r` lost on against the winner `w`.
fn compare(w: &Scored, r: &Scored) -> String {
    if let (Some(a), Some(b)) = (w.changed_at, r.changed_at) {
        if b as f64 >= a as f64 + 2.0 {
            return format!("it changed {}s later (t={b}s against t={a}s)", b - a);
        }
    }
    if r.changed_at.is_none() {
        return "it never changed clearly enough to be dated".into();
    }
    if r.correlation + 0.1 < w.correlation {
        return format!(
            "it tracked the users' experience less closely (rank correlation {:.2} against {:.2})",
            r.correlation, w.correlation
        );
    }
    if r.z < w.z {
        return format!(
            "it moved less against its own noise (z {:.1} against {:.1})",
            r.z.min(1e6),
            w.z.min(1e6)
        );
    }
    format!(
        "its score is lower ({:.2} against {:.2}): a smaller share of the users' rise, or timed further from it",
        r.score, w.score
    )
}

/// A service's own CPU falling, or its own threads waiting for a CPU, while a CPU of its host
/// is saturated: the service was starved of CPU by other work there (issue 13: busy loops on
/// its core).
struct Starvation<'a> {
    /// The best-scored evidence of a starved process: its own CPU
    /// (`process_cpu_seconds_total:rate`…), which fell, or its scheduling delay, which rose.
    process: &'a Scored,
    /// The host's saturated CPU (a core at 0 % idle, a busy share near 1, PSI `cpu` rising);
    /// `process` itself when the process's own delay is the only view of the host.
    host: &'a Scored,
    /// The `instance` of every process that shows starvation (`None`: a signal without one).
    starved: Vec<Option<String>>,
    /// I/O pressure that rose with it (PSI `io`, a core's `iowait`): another explanation for
    /// database timings, so they are not explained away.
    io: Option<&'a Scored>,
    /// The starved process's own cgroup throttled (its CPU limit reached): then the CPU it
    /// lost went to no other work, and the fix is the limit, not the neighbours.
    limit: Option<&'a Scored>,
}

/// A host's I/O pressure: PSI `io` (node_exporter's or the service's own), a core's `iowait`,
/// a disk's busy time or queue.
fn io_pressure(name: &str) -> bool {
    classify(name, 1.0) == Some(Kind::IoSaturation)
}

/// A process's or container's own CPU (not the host's).
fn own_cpu(name: &str) -> bool {
    let (metric, _) = split_key(name);
    let base = metric
        .split(':')
        .next()
        .unwrap_or(metric)
        .to_ascii_lowercase();
    base == "process_cpu_seconds_total"
        || base == "container_cpu_usage_seconds_total"
        || base == "namedprocess_namegroup_cpu_seconds_total"
}

/// The host CPU signals that say a CPU was saturated while the users were degraded: a core's
/// idle time at 10 % or less (having been 20 points higher), a busy share at 90 % or more
/// (`ratio`, `percent`, or user/system seconds per second of one core), or CPU pressure (PSI)
/// that rose.
fn host_saturated(s: &Scored) -> bool {
    if own_cpu(&s.name)
        || s.changed_at.is_none()
        || classify(&s.name, s.direction) != Some(Kind::CpuSaturation)
    {
        return false;
    }
    let (metric, dims) = split_key(&s.name);
    let m = metric.to_ascii_lowercase();
    let mode = dims
        .iter()
        .find(|(k, _)| k == "mode")
        .map(|(_, v)| v.as_str());
    let per_core = dims.iter().any(|(k, _)| k == "cpu");
    if m.contains("pressure") {
        return s.z >= CHANGE_Z;
    }
    // The process's own scheduling delay: runnable, not running, a tenth of a second per
    // second or more — the host's CPU was taken, seen from the process itself.
    if m.starts_with("process_schedstat_waiting") {
        return s.z >= CHANGE_Z && s.during >= 0.1;
    }
    match (mode, s.unit.as_str()) {
        (Some("idle"), _) => s.during <= 0.1 && s.baseline >= s.during + 0.2 && per_core,
        (_, "percent") => s.during >= 90.0,
        (Some(_), _) | (_, "ratio") => s.during >= 0.9 && (per_core || s.unit == "ratio"),
        _ => false,
    }
}

/// A cgroup's CPU limit reached: CFS throttling (cAdvisor's `container_cpu_cfs_throttled_*`,
/// the stack's `cgroup_cpu_throttled_*`).
fn cpu_limited(name: &str) -> bool {
    let base = split_key(name).0.to_ascii_lowercase();
    base.starts_with("container_cpu_cfs_throttled") || base.starts_with("cgroup_cpu_throttled")
}

const CPU_LIMIT_ADVICE: &str = "the service reached its CPU limit and was throttled: raise the limit (Kubernetes resources.limits.cpu, the ECS task's cpu) or make it use less CPU; a bigger host does not help while the limit holds";

/// A process's own scheduling delay: time its threads were runnable but not running.
fn own_wait(name: &str) -> bool {
    split_key(name)
        .0
        .to_ascii_lowercase()
        .starts_with("process_schedstat_waiting")
}

/// A process that lost CPU to other work: its own CPU fell by a tenth or more, or its threads
/// waited for a CPU at least a tenth of a second per second more than before, and at least
/// twice as long (the same "doubled" as `moved`). The second holds when the core was already full of lower-priority work that
/// yielded first, so the process's own CPU barely fell (the fault suite on a machine busy
/// with `nice`d builds: 0.12 → 0.11 of a core, while its wait went 0.31 → 0.71 s/s). A lock
/// does not do it: threads blocked on a lock sleep, they do not wait runnable.
fn starved_process(s: &Scored) -> bool {
    (own_cpu(&s.name) && s.direction < 0.0 && s.during <= 0.9 * s.baseline)
        || (own_wait(&s.name)
            && s.direction > 0.0
            && s.z >= CHANGE_Z
            && s.during >= s.baseline + 0.1
            && s.during >= 2.0 * s.baseline)
}

fn starvation<'a>(sli: &Sli, scored: &'a [Scored]) -> Option<Starvation<'a>> {
    let lag = 5usize;
    let near = |s: &Scored| {
        s.changed_at
            .is_some_and(|t| t + lag >= sli.onset && t <= sli.end)
    };
    // A process whose own CPU rose is busy itself, not starved by others, however long its
    // threads waited for the core.
    let busy_itself = |s: &Scored| {
        own_wait(&s.name)
            && scored.iter().any(|c| {
                own_cpu(&c.name)
                    && instance_of(&c.name) == instance_of(&s.name)
                    && c.during > 1.1 * c.baseline
            })
    };
    // A process whose own CPU fell while its threads waited for a CPU no longer than before
    // had less to do (blocked on a lock, handed less work), not less CPU: the fault suite's
    // row locks took the API's CPU from 0.14 to 0.04 of a core and its wait from 0.08 to
    // 0.04 s/s while other work on the host raised its CPU pressure.
    let idle_itself = |s: &Scored| {
        own_cpu(&s.name)
            && scored.iter().any(|w| {
                own_wait(&w.name)
                    && instance_of(&w.name) == instance_of(&s.name)
                    && w.during <= w.baseline
            })
    };
    let starved: Vec<&Scored> = scored
        .iter()
        .filter(|s| starved_process(s) && near(s) && !busy_itself(s) && !idle_itself(s))
        .collect();
    let process = *starved.iter().max_by(|a, b| a.score.total_cmp(&b.score))?;
    let host = scored
        .iter()
        .filter(|s| s.name != process.name && host_saturated(s) && near(s))
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .or_else(|| host_saturated(process).then_some(process))?;
    let io = scored
        .iter()
        .filter(|s| io_pressure(&s.name) && s.direction > 0.0 && s.z >= CHANGE_Z && near(s))
        .max_by(|a, b| a.score.total_cmp(&b.score));
    let throttled: Vec<&Scored> = scored
        .iter()
        .filter(|s| cpu_limited(&s.name) && s.direction > 0.0 && s.z >= CHANGE_Z && near(s))
        .collect();
    // The process's own cgroup: the same scrape target (and the same container, where both
    // name one); or, read from elsewhere (cAdvisor's series carry the node's instance, not
    // the pod's), the one container that was throttled, if no other process scraped is it.
    let own: Vec<&Scored> = throttled
        .iter()
        .copied()
        .filter(|s| same_target(&s.name, &process.name))
        .collect();
    let processes: Vec<Option<String>> = scored
        .iter()
        .filter(|s| own_cpu(&s.name) || own_wait(&s.name))
        .map(|s| instance_of(&s.name))
        .filter(|i| i.is_some() && *i != instance_of(&process.name))
        .collect();
    let elsewhere: Vec<&Scored> = throttled
        .iter()
        .copied()
        .filter(|s| !processes.contains(&instance_of(&s.name)))
        .collect();
    let containers = |v: &[&Scored]| {
        let mut keys: Vec<String> = v.iter().map(|s| cgroup_of(&s.name)).collect();
        keys.sort();
        keys.dedup();
        keys.len()
    };
    let limit = if !own.is_empty() {
        own
    } else if containers(&elsewhere) == 1 {
        elsewhere
    } else {
        Vec::new()
    }
    .into_iter()
    // The time throttled says more than the periods: a share of the time.
    .max_by(|a, b| {
        (a.unit == "seconds_per_second")
            .cmp(&(b.unit == "seconds_per_second"))
            .then(a.score.total_cmp(&b.score))
    });
    Some(Starvation {
        process,
        host,
        starved: starved.iter().map(|s| instance_of(&s.name)).collect(),
        io,
        limit,
    })
}

/// Whether two signals come from one process: the same `instance` (which both must have), and
/// the same container where both name one (cAdvisor's series of every container on a node
/// share the node's instance).
fn same_target(a: &str, b: &str) -> bool {
    const CONTAINER: [&str; 5] = ["container", "pod", "namespace", "id", "name"];
    let (da, db) = (split_key(a).1, split_key(b).1);
    let get = |d: &[(String, String)], k: &str| {
        d.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
    };
    get(&da, "instance").is_some()
        && get(&da, "instance") == get(&db, "instance")
        && CONTAINER.iter().all(|k| match (get(&da, k), get(&db, k)) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        })
}

/// A throttling series' cgroup: its dimensions (periods and time of one cgroup share them).
fn cgroup_of(name: &str) -> String {
    let mut dims = split_key(name).1;
    dims.sort();
    format!("{dims:?}")
}

fn instance_of(name: &str) -> Option<String> {
    split_key(name)
        .1
        .into_iter()
        .find(|(k, _)| k == "instance")
        .map(|(_, v)| v)
}

/// Names the starvation as the cause (replacing a finding of the host signal's own), and
/// explains away the database timings of the starved process: the wall clock of a caller
/// that is not running inflates whatever it times.
fn explain_starvation(out: &mut Vec<Finding>, input: &Input, sli: &Sli, st: &Starvation) {
    let (p, h) = (st.process, st.host);
    let process_instance = instance_of(&p.name);
    let any_process = st.starved.iter().any(Option::is_none);
    let from = p
        .changed_at
        .unwrap_or(sli.onset)
        .min(h.changed_at.unwrap_or(sli.onset));
    let caller = match &process_instance {
        Some(i) => format!("the process at {i}"),
        None => "the service".to_string(),
    };
    let mut explained = 0usize;
    for f in out
        .iter_mut()
        .filter(|f| matches!(f.kind, Kind::DbLatency | Kind::DbPoolSaturation))
    {
        let own = instance_of(&f.signal);
        let same_process = any_process || st.starved.contains(&own);
        if same_process && f.window.start_s + 2.0 >= from as f64 {
            let who = own.map_or_else(|| caller.clone(), |i| format!("the process at {i}"));
            // The disk as well as the CPU: the timing may be partly the database's own wait
            // for the disk, so it keeps its score.
            if let Some(io) = st.io {
                f.lines.push(format!(
                    "rose while {who} was starved of CPU, but also while I/O pressure rose ({}: {} → {}): not explained away, part of it may be the database waiting for its disk",
                    io.name,
                    signal_value(&io.name, io.baseline, &io.unit),
                    signal_value(&io.name, io.during, &io.unit)
                ));
                continue;
            }
            f.score = round3(f.score * 0.3);
            f.lines.push(match st.limit {
                Some(l) => format!(
                    "rose only while {who} was starved of CPU (held by its CPU limit; seen in {}): the wall-clock time of a throttled caller, not the database's",
                    l.name
                ),
                None => format!(
                    "rose only while {who} was starved of CPU (it lost CPU to other work; seen in {}): the wall-clock time of a descheduled caller, not the database's",
                    h.name
                ),
            });
            explained += 1;
        }
    }
    // The starvation finding replaces those of its own signals. Where the process's own limit
    // held it, the limit is the signal to show: the host's pressure counts the throttled
    // tasks too, and is the same on every process of the host.
    out.retain(|f| {
        !(f.kind == Kind::CpuSaturation
            && (f.signal == h.name
                || f.signal == p.name
                || st.limit.is_some_and(|l| f.signal == l.name)))
    });
    let mut f = signal_finding(input, sli, st.limit.unwrap_or(h), Kind::CpuSaturation);
    // Two signals agree (the service lost CPU while its host had none to spare): at least an
    // even score, whatever each scored alone.
    f.score = round3(h.score.max(p.score).max(0.5));
    f.evidence
        .insert("process_cpu_baseline".into(), round3(p.baseline));
    f.evidence
        .insert("process_cpu_during".into(), round3(p.during));
    f.evidence.insert("explained_away".into(), explained as f64);
    let (moved, from_v, to_v) = if own_cpu(&p.name) {
        (
            "fell",
            format_value(p.baseline, &p.unit),
            format_value(p.during, &p.unit),
        )
    } else {
        (
            "rose",
            signal_value(&p.name, p.baseline, &p.unit),
            signal_value(&p.name, p.during, &p.unit),
        )
    };
    let host_part = if h.name == p.name {
        String::new()
    } else {
        format!(
            " while {} was saturated ({} → {})",
            h.name,
            signal_value(&h.name, h.baseline, &h.unit),
            signal_value(&h.name, h.during, &h.unit)
        )
    };
    let timings = if explained > 0 {
        format!(
            "; its database timings rose only while it was {}, so they are not the database's",
            if st.limit.is_some() {
                "throttled"
            } else {
                "descheduled"
            }
        )
    } else {
        String::new()
    };
    f.summary = match st.limit {
        // Throttled tasks count as CPU pressure and as scheduling delay, so the host looks
        // saturated too; the throttling says where the CPU went: nowhere.
        Some(l) => {
            f.evidence.insert("throttled_during".into(), round3(l.during));
            format!(
                "{} {moved} from {from_v} to {to_v} at t={}s, as {}: {caller} was held by its own CPU limit — {} rose from {} to {}{timings}. {}{}.",
                p.name,
                p.changed_at.unwrap_or(sli.onset),
                sli_phrase(sli),
                l.name,
                signal_value(&l.name, l.baseline, &l.unit),
                signal_value(&l.name, l.during, &l.unit),
                CPU_LIMIT_ADVICE[..1].to_uppercase(),
                &CPU_LIMIT_ADVICE[1..]
            )
        }
        None => format!(
            "{} {moved} from {from_v} to {to_v} at t={}s{host_part}, as {}: {caller} was starved of CPU by other work on its host{timings}. Find what else runs on that CPU (top, pidstat), pin or isolate the service, or give it more CPU.",
            p.name,
            p.changed_at.unwrap_or(sli.onset),
            sli_phrase(sli),
        ),
    };
    out.push(f);
}

/// Whether a CPU or memory signal reached a level that can limit a service. A robust z-score
/// calls 2% → 6% of a core a large change; it is not saturation, and naming it would send the
/// user after the wrong cause. Levels are read in the signal's unit; an unknown unit passes.
/// Likewise a pool's in-use gauge names saturation only when the pool was nearly full (1 of 4
/// connections in use is a pool doing its job); a pool wait that rose is evidence by itself.
fn high_enough(input: &Input, sli: &Sli, s: &Scored, kind: Kind) -> bool {
    match kind {
        // The fullest pool observed: if it was not nearly full, no pool's gauge names it.
        // A wait names it too only when the pool filled at some time in the window: with most
        // connections idle, waits come from elsewhere (a caller starved of CPU times its own
        // descheduling, connections being opened).
        Kind::DbPoolSaturation => match pool_use(input, sli.onset, sli.end) {
            Some(p) if in_use_pattern().is_match(&s.name) => p.in_use >= POOL_FULL * p.size,
            Some(p) => p.peak.max(p.in_use) >= POOL_FULL * p.size,
            None => true,
        },
        // Idle time that fell names CPU only once (nearly) gone: idle also falls when a core
        // waits for the disk instead (iowait), which is not CPU work.
        Kind::CpuSaturation if idle_time(&s.name) => {
            let per_core = split_key(&s.name).1.iter().any(|(k, _)| k == "cpu");
            if per_core {
                s.during <= 0.1
            } else {
                s.during <= 0.1 * s.baseline
            }
        }
        // Cores (seconds per second), or a share of the host or the limit.
        Kind::CpuSaturation => match s.unit.as_str() {
            "seconds_per_second" | "ratio" => s.during >= 0.2,
            "percent" => s.during >= 20.0,
            _ => true,
        },
        // Most scrapes in the window went unanswered, not one slow answer.
        Kind::TargetUnresponsive => s.during <= 0.5,
        // I/O stall (PSI) from the same floor as memory; a core waiting for the disk a tenth
        // of the time; a disk busy (or with requests queued) half the time.
        Kind::IoSaturation if psi(&s.name) => stalled_enough(input, sli, s),
        Kind::IoSaturation => match s.unit.as_str() {
            "seconds_per_second" if cpu_mode(&s.name, "iowait") => s.during >= 0.1,
            "seconds_per_second" | "ratio" => s.during >= 0.5,
            "percent" => s.during >= 50.0,
            _ => true,
        },
        // Memory pressure stall (PSI): a share of time some task stalled, from nothing: with
        // a baseline of exactly 0, any stall at all is a large z (a SIGSTOPped worker's
        // endpoint read "0 % → 0 %" and named memory first).
        Kind::MemoryPressure if psi(&s.name) => stalled_enough(input, sli, s),
        Kind::MemoryPressure => match s.unit.as_str() {
            "ratio" => s.during >= 0.8,
            "percent" => s.during >= 80.0,
            "bytes" => match memory_limit(input) {
                Some(limit) => s.during >= 0.8 * limit,
                None => {
                    s.during - s.baseline >= 64.0 * 1024.0 * 1024.0 && s.during >= 1.2 * s.baseline
                }
            },
            _ => true,
        },
        _ => true,
    }
}

/// The share of time stalled (PSI) from which memory pressure names a cause: 5 % (the memory
/// faults measured 16–29 %).
pub const PSI_FLOOR: f64 = 0.05;

/// Whether a pressure stall (PSI) series stalled at least [`PSI_FLOOR`] of the time for a
/// quarter of the degraded window or more: its upper quartile there, not its median, since the
/// users' degradation can outlast the pressure (the fault suite's disk writers stalled I/O for
/// 14 of the 45 degraded seconds that followed, at 10–20 % each).
fn stalled_enough(input: &Input, sli: &Sli, s: &Scored) -> bool {
    let Some(sig) = input.signals.iter().find(|x| x.name == s.name) else {
        return s.during >= PSI_FLOOR;
    };
    let end = (sli.end + 1).min(sig.values.len());
    let mut during: Vec<f64> = sig.values[sli.onset.min(end)..end]
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if during.is_empty() {
        return s.during >= PSI_FLOOR;
    }
    during.sort_by(f64::total_cmp);
    during[during.len() * 3 / 4] >= PSI_FLOOR
}

/// A pressure stall (PSI) series: node_exporter's `node_pressure_*`, the service's own
/// `host_pressure_*`.
pub fn psi(name: &str) -> bool {
    split_key(name).0.to_ascii_lowercase().contains("pressure")
}

/// A memory limit in bytes among the signals (`container_spec_memory_limit_bytes`,
/// `memory_limit_bytes`), the smallest when there are several.
fn memory_limit(input: &Input) -> Option<f64> {
    static LIMIT: OnceLock<Regex> = OnceLock::new();
    let re = LIMIT.get_or_init(|| {
        Regex::new(r"(?i)mem.*(limit|max)|(limit|max).*mem").expect("valid limit pattern")
    });
    input
        .signals
        .iter()
        .filter(|x| x.unit == "bytes" && re.is_match(&x.name))
        .map(|x| super::stats::median(&x.values))
        .filter(|v| v.is_finite() && *v > 0.0)
        .min_by(f64::total_cmp)
}

/// Whether any observed queue depth or age grew while the users were degraded (its median
/// then at least 1 above its median before, and 1.5× it); `None` when none is observed.
fn backlog_grew(input: &Input, sli: &Sli) -> Option<bool> {
    static DEPTH: OnceLock<Regex> = OnceLock::new();
    let re = DEPTH.get_or_init(|| {
        Regex::new(r"(?i)queue_?(depth|size|length|messages|oldest|age)|backlog|approximatenumberofmessages|ageofoldestmessage|consumer_?lag")
            .expect("valid queue pattern")
    });
    let mut seen = false;
    for sig in input.signals.iter().filter(|x| re.is_match(&x.name)) {
        let end = (sli.end + 1).min(sig.values.len());
        if sli.onset == 0 || sli.onset >= end {
            continue;
        }
        let clean =
            |v: &[f64]| -> Vec<f64> { v.iter().copied().filter(|x| x.is_finite()).collect() };
        let (before, during) = (
            clean(&sig.values[..sli.onset]),
            clean(&sig.values[sli.onset..end]),
        );
        if before.is_empty() || during.is_empty() {
            continue;
        }
        seen = true;
        let (b, d) = (super::stats::median(&before), super::stats::median(&during));
        if d - b >= 1.0 && d >= 1.5 * b {
            return Some(true);
        }
    }
    seen.then_some(false)
}

/// Rank correlation of a signal with time from its change to the window's end.
fn growth(input: &Input, sli: &Sli, s: &Scored) -> f64 {
    let Some(sig) = input.signals.iter().find(|x| x.name == s.name) else {
        return 0.0;
    };
    let from = s.changed_at.unwrap_or(sli.onset).min(sli.onset);
    let to = (sli.end + 1).min(sig.values.len());
    if to < from + 3 {
        return 0.0;
    }
    let v = &sig.values[from..to];
    let time: Vec<f64> = (0..v.len()).map(|i| i as f64).collect();
    super::stats::pearson(&super::stats::ranks(v), &time)
}

fn window(sli: &Sli) -> Window {
    Window {
        start_s: sli.onset as f64,
        end_s: sli.end as f64 + 1.0,
    }
}

/// What the users saw, for summaries: "p99 latency rose from 3 ms to 55 ms".
fn sli_phrase(sli: &Sli) -> String {
    let mut parts = Vec::new();
    if let Some(l) = sli.report.latency_ms.as_ref().filter(|l| l.degraded) {
        parts.push(format!(
            "{} latency rose from {:.1} ms to {:.1} ms",
            sli.report.latency_stat, l.baseline, l.during
        ));
    }
    if let Some(e) = sli.report.error_rate.as_ref().filter(|e| e.degraded) {
        parts.push(format!(
            "errors rose from {:.1}% to {:.1}%",
            e.baseline * 100.0,
            e.during * 100.0
        ));
    }
    parts.join(" and ")
}

/// A signal's value in words, by what it measures: pressure stall (PSI) is the share of time
/// some task waited for the resource, not CPU used; scheduling delay is time spent runnable
/// but not running (summed over a process's threads); throttling is time a cgroup was held
/// back. Other signals by their unit ([`format_value`]).
pub fn signal_value(name: &str, v: f64, unit: &str) -> String {
    let (metric, _) = split_key(name);
    let m = metric.to_ascii_lowercase();
    if unit == "seconds_per_second" {
        if m.contains("pressure") && m.contains("stalled") {
            return format!("{:.0}% of the time all tasks stalled", v * 100.0);
        }
        if m.contains("pressure") {
            return format!("{:.0}% of the time some task stalled", v * 100.0);
        }
        if m.contains("schedstat_waiting") {
            return format!("{v:.2} s per second waiting for a CPU");
        }
        if m.contains("throttled") {
            return format!("throttled {:.0}% of the time", v * 100.0);
        }
    }
    format_value(v, unit)
}

pub fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "seconds" if v.abs() < 1.0 => format!("{:.1} ms", v * 1000.0),
        "seconds" => format!("{v:.2} s"),
        "bytes" => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        "per_second" => format!("{v:.1}/s"),
        "seconds_per_second" => format!("{:.0}% of a core", v * 100.0),
        "ratio" => format!("{:.1}%", v * 100.0),
        "percent" => format!("{v:.1}%"),
        _ if v.abs() >= 100.0 || v == v.trunc() => format!("{v:.0}"),
        _ => format!("{v:.3}"),
    }
}

fn signal_finding(input: &Input, sli: &Sli, s: &Scored, kind: Kind) -> Finding {
    let changed = s.changed_at.unwrap_or(sli.onset);
    let from = signal_value(&s.name, s.baseline, &s.unit);
    let to = signal_value(&s.name, s.during, &s.unit);
    let lead = s.lead_s.unwrap_or(0.0);
    // An aggregate's lead is a bound (see `rank::credible_lead`), and no lead is "as" only to
    // within its interval: say so, so a 10 s average is not read as timed to the second.
    let span = s.span_s.filter(|p| *p > 0.0);
    let when = match span {
        Some(p) if lead >= 1.0 => format!("at least {lead:.0}s (its {p:.0} s period) before"),
        Some(p) if lead <= -1.0 => format!("at least {:.0}s (its {p:.0} s period) after", -lead),
        Some(p) => format!("as (to within its {p:.0} s period)"),
        None if lead >= 1.0 => format!("{lead:.0}s before"),
        None if lead <= -1.0 => format!("{:.0}s after", -lead),
        None => "as".into(),
    };
    let users = sli_phrase(sli);
    let name = &s.name;
    let moved = if s.direction >= 0.0 { "rose" } else { "fell" };
    let pool = (kind == Kind::DbPoolSaturation)
        .then(|| pool_use(input, sli.onset, sli.end))
        .flatten();
    let mut what = match &pool {
        // The gauge itself: "0 of 1" → "1 of 1" says more than "0" → "1".
        Some(p) if p.in_use_signal == *name => format!(
            "{name} {moved} from {} to {} connections in use at t={changed}s, {when} {users}",
            p.of(s.baseline),
            p.of(s.during)
        ),
        _ if kind == Kind::TargetUnresponsive => format!(
            "{name}: the target stopped answering its scrapes at t={changed}s, {when} {users}"
        ),
        _ if kind == Kind::DbPoolSaturation && s.unit == "seconds" => format!(
            "Pool wait ({name}) {moved} from {from} to {to} at t={changed}s, {when} {users}"
        ),
        _ => format!("{name} {moved} from {from} to {to} at t={changed}s, {when} {users}"),
    };
    if let Some(p) = pool.as_ref().filter(|p| p.in_use_signal != *name) {
        let _ = write!(
            what,
            "; {} connections in use (from {} and {})",
            p.of(p.in_use),
            p.in_use_signal,
            p.size_signal
        );
    }
    let advice = match kind {
        Kind::CpuSaturation if cpu_limited(name) => CPU_LIMIT_ADVICE,
        Kind::CpuSaturation => "the service is CPU-bound: profile the hot path, or give it more CPU or instances",
        Kind::IoSaturation => "the disk is saturated: whatever waits for it (commits, reads of evicted pages) slows down — find what else reads or writes (iotop, pidstat -d), give the database's data or log a faster or dedicated volume, or raise its provisioned IOPS",
        Kind::MemoryPressure => "look for leaks, GC pressure or a container memory limit, and give it headroom",
        Kind::DbPoolSaturation => "requests are waiting for a database connection: enlarge the pool or shorten how long each request holds one",
        Kind::DbLatency => "database operations got slower: look at slow queries, locks and the database host's I/O and CPU",
        Kind::QueueBacklog => "the queue is backing up because consumers stopped or fell behind: check the workers and scale consumers",
        Kind::Throttling => "requests are being throttled: raise the limit or provisioned capacity, or add backoff",
        Kind::ScalingLag => "capacity changed late: scale earlier (lower target, step scaling, warm pool)",
        Kind::ErrorBurst => error_advice(sli, name),
        Kind::GeneratorLimited => "the load generator limited the run",
        Kind::TargetUnresponsive => "the process behind it stopped answering its scrapes — stopped, hung, or starved of CPU: check it first; its own series are missing for that stretch, not flat",
    };
    let advice = match (kind, sli.report.error_rate.as_ref()) {
        (Kind::ErrorBurst, Some(e)) if !e.degraded => format!(
            "{advice} (the users' error rate stayed at {:.2}%)",
            e.during * 100.0
        ),
        _ => advice.to_string(),
    };
    let mut evidence = BTreeMap::from([
        ("baseline".to_string(), round3(s.baseline)),
        ("during".to_string(), round3(s.during)),
        ("z".to_string(), round3(s.z.min(1e6))),
        ("correlation".to_string(), round3(s.correlation)),
        ("load_correlation".to_string(), round3(s.load_correlation)),
        ("changed_at_s".to_string(), changed as f64),
    ]);
    if let Some(l) = s.lead_s {
        evidence.insert("lead_s".into(), l);
    }
    if let Some(p) = span {
        evidence.insert("span_s".into(), p);
    }
    if let Some(p) = &pool {
        evidence.insert("pool_in_use".into(), round3(p.in_use));
        evidence.insert("pool_size".into(), round3(p.size));
    }
    let mut lines: Vec<String> = Vec::new();
    if kind == Kind::ErrorBurst {
        let (a, b) = (sli.onset as f64 - 1.0, sli.end as f64 + 1.0);
        // A line several patterns matched is recorded once per pattern by older results.
        let mut cited: Vec<(u64, &str)> = Vec::new();
        for e in input
            .events
            .iter()
            .filter(|e| e.name == "log" && e.start >= a && e.start <= b)
        {
            if cited.len() == 5 {
                break;
            }
            if !cited.contains(&(e.start.to_bits(), e.cause.as_str())) {
                cited.push((e.start.to_bits(), e.cause.as_str()));
                lines.push(format!("t={:.0}s {}", e.start, e.cause));
            }
        }
        lines.extend(input.error_samples.iter().take(3).cloned());
    }
    Finding {
        kind,
        signal: name.clone(),
        score: round3(s.score),
        // From the signal's change, unless that came earlier than any lead the ranking
        // credits (then it was drift, and the window starts at the longest credited lead).
        window: Window {
            start_s: changed
                .max(sli.onset.saturating_sub(super::rank::max_lag(input.len())))
                .min(sli.onset) as f64,
            end_s: sli.end as f64 + 1.0,
        },
        evidence,
        lines,
        summary: format!("{what}: {advice}."),
        explained_by: None,
        runner_up: None,
    }
}

/// What to do about errors that rose in `signal`: the users' own errors say the service
/// returned them; errors only in its logs (or another signal) while the users' requests
/// succeeded were handled inside it, and may be why it was slow.
fn error_advice(sli: &Sli, signal: &str) -> &'static str {
    let users_saw_them = sli.report.error_rate.as_ref().is_some_and(|e| e.degraded);
    match (users_saw_them, signal.starts_with("log:")) {
        (true, _) => "the service itself returned errors: read its logs for that window",
        (false, true) => {
            "the service logged errors while the users' requests still succeeded: they were retried or absorbed inside it — read the lines, they may be why it was slow"
        }
        (false, false) => {
            "errors rose there while the users' requests still succeeded: a dependency failing behind retries or fallbacks — read its logs for that window"
        }
    }
}

/// How full a connection pool was during the degradation, from a gauge of connections in use
/// and one of the pool's size that share a stem and dimensions (`state` aside):
/// `db_pool_connections{state="in_use"}` and `db_pool_max_connections`,
/// `hikaricp_connections_active` and `hikaricp_connections_max`,
/// `go_sql_in_use_connections` and `go_sql_max_open_connections`, or a limit on database
/// operations at once (`db_operations_in_flight` and `db_operations_limit`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolUse {
    /// Medians over the degraded window.
    pub in_use: f64,
    pub size: f64,
    /// The 90th percentile of connections in use over the window: how full it got.
    pub peak: f64,
    pub in_use_signal: String,
    pub size_signal: String,
}

impl PoolUse {
    /// "1 of 4".
    pub fn of(&self, in_use: f64) -> String {
        let n = |v: f64| {
            if (v - v.round()).abs() < 0.05 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        };
        format!("{} of {}", n(in_use), n(self.size))
    }
}

/// A signal key split into its metric name's words and its dimensions (`state` and `status`
/// left out: they tell the members of one pool apart).
fn stem(key: &str) -> (Vec<String>, Vec<(String, String)>) {
    const USAGE: [&str; 17] = [
        "in", "use", "inuse", "active", "busy", "flight", "inflight", "used", "checked", "out",
        "max", "maximum", "size", "limit", "capacity", "open", "current",
    ];
    let (name, dims) = key.split_once('{').unwrap_or((key, ""));
    let words = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .filter(|w| !w.is_empty() && !USAGE.contains(&w.as_str()))
        .collect();
    static DIM: OnceLock<Regex> = OnceLock::new();
    let dim =
        DIM.get_or_init(|| Regex::new(r#"(\w+)="([^"]*)""#).expect("valid dimension pattern"));
    let dims = dim
        .captures_iter(dims)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .filter(|(k, _)| k != "state" && k != "status")
        .collect();
    (words, dims)
}

/// A gauge of connections (or database operations) in use.
fn in_use_pattern() -> &'static Regex {
    static IN_USE: OnceLock<Regex> = OnceLock::new();
    IN_USE.get_or_init(|| {
        Regex::new(r#"(?i)(pool|connection|db|database|sql).*(in_?use|active|busy|in_?flight|checked_?out)"#)
            .expect("valid pool pattern")
    })
}

pub fn pool_use(input: &Input, from: usize, to: usize) -> Option<PoolUse> {
    static SIZE: OnceLock<Regex> = OnceLock::new();
    let in_use_re = in_use_pattern();
    let size_re = SIZE.get_or_init(|| {
        Regex::new(r"(?i)(pool|connection|db|database|sql).*(max|size|limit|capacity)")
            .expect("valid pool pattern")
    });
    let window = |v: &[f64]| {
        let end = (to + 1).min(v.len());
        (from < end).then(|| super::stats::median(&v[from..end]))
    };
    let mut best: Option<PoolUse> = None;
    for used in input.signals.iter().filter(|x| in_use_re.is_match(&x.name)) {
        let Some(in_use) = window(&used.values).filter(|v| v.is_finite() && *v >= 0.0) else {
            continue;
        };
        let key = stem(&used.name);
        for size in input.signals.iter().filter(|x| {
            x.name != used.name && size_re.is_match(&x.name) && !in_use_re.is_match(&x.name)
        }) {
            let Some(cap) = window(&size.values).filter(|v| v.is_finite() && *v > 0.0) else {
                continue;
            };
            if stem(&size.name) != key {
                continue;
            }
            let candidate = PoolUse {
                in_use,
                size: cap,
                peak: used
                    .values
                    .get(from..(to + 1).min(used.values.len()))
                    .map_or(in_use, |w| {
                        let mut w: Vec<f64> = w.iter().copied().filter(|v| v.is_finite()).collect();
                        w.sort_by(f64::total_cmp);
                        w.get((w.len() * 9 / 10).min(w.len().saturating_sub(1)))
                            .copied()
                            .unwrap_or(in_use)
                    }),
                in_use_signal: used.name.clone(),
                size_signal: size.name.clone(),
            };
            // Several pools: the fullest is the one that limits.
            if best
                .as_ref()
                .is_none_or(|b| in_use / cap > b.in_use / b.size)
            {
                best = Some(candidate);
            }
        }
    }
    best
}

fn generator_finding(input: &Input, sli: &Sli) -> Option<Finding> {
    let busy: Vec<usize> = (0..input.generator_busy.len())
        .filter(|&i| input.generator_busy[i])
        .collect();
    let in_window = busy
        .iter()
        .filter(|&&i| i >= sli.onset && i <= sli.end)
        .count();
    let window_len = (sli.end + 1).saturating_sub(sli.onset).max(1);
    let share = in_window as f64 / window_len as f64;
    let limited = !input.generator_kept_up || (sli.degraded() && share >= 0.5);
    if !limited {
        return None;
    }
    let total_share = busy.len() as f64 / input.generator_busy.len().max(1) as f64;
    Some(Finding {
        kind: Kind::GeneratorLimited,
        signal: "generator".into(),
        score: round3((0.5 + 0.5 * share.max(total_share)).min(1.0)),
        window: Window {
            start_s: busy.first().copied().unwrap_or(0) as f64,
            end_s: busy.last().map_or(input.len(), |b| b + 1) as f64,
        },
        evidence: BTreeMap::from([
            ("busy_seconds".into(), busy.len() as f64),
            ("busy_share_while_degraded".into(), round3(share)),
        ]),
        lines: input.generator_notes.clone(),
        // The generator's own notes go in `lines`, not again here.
        summary: if busy.is_empty() {
            // Not CPU-bound itself, yet it fell behind its plan: the machine it ran on was busy.
            "The load generator fell behind its plan without being CPU-bound itself: the machine running it was short of CPU, so arrivals started late; run it on a quieter machine or with fewer threads.".to_string()
        } else {
            format!(
                "The load generator was CPU-bound for {}s of the run: the results understate the target; add cores or threads, or run distributed.",
                busy.len()
            )
        },
        explained_by: None,
        runner_up: None,
    })
}

/// How a scaling activity stood when it was read, from its status (AWS's code first) and end.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Completed: the new capacity is in service from its end.
    Done(f64),
    /// Ended without the capacity (`Failed`, `Cancelled`, `Unfulfilled`), at its end if known.
    Failed(Option<f64>),
    /// Not finished when read.
    Going,
    /// Replaced by a later activity (`Overridden`): that one tells what came.
    Superseded,
}

fn outcome(e: &Event) -> Outcome {
    let code = e
        .status
        .split(':')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let failed = ["fail", "cancel", "unfulfilled"]
        .iter()
        .any(|w| code.contains(w));
    match e.end.filter(|t| t.is_finite()) {
        _ if failed => Outcome::Failed(e.end.filter(|t| t.is_finite())),
        _ if code.contains("overridden") => Outcome::Superseded,
        Some(end) if code.is_empty() || code.contains("success") => Outcome::Done(end),
        // An end with a status that is not final ("InProgress", "WaitingForInstanceWarmup") is
        // AWS's word against the clock: still going.
        _ => Outcome::Going,
    }
}

/// Whether an activity takes capacity away: EC2 Auto Scaling's "Terminating…", a capacity
/// "from 4 to 2", or a desired count below the one the same resource last reached.
fn scales_in(e: &Event, all: &[&Event]) -> bool {
    static FROM_TO: OnceLock<Regex> = OnceLock::new();
    let re = FROM_TO
        .get_or_init(|| Regex::new(r"(?i)from (\d+) to (\d+)").expect("valid capacity pattern"));
    if e.cause.to_ascii_lowercase().starts_with("terminating") {
        return true;
    }
    if let Some(c) = re.captures(&e.cause) {
        if let (Ok(from), Ok(to)) = (c[1].parse::<u64>(), c[2].parse::<u64>()) {
            return to < from;
        }
    }
    let desired = |x: &Event| x.dimensions.get("desired_capacity")?.parse::<u64>().ok();
    let resource = |x: &Event| x.dimensions.get("resource").cloned();
    let before = all
        .iter()
        .filter(|x| x.start < e.start && resource(x).is_some() && resource(x) == resource(e))
        .filter(|x| matches!(outcome(x), Outcome::Done(_)))
        .max_by(|a, b| a.start.total_cmp(&b.start));
    matches!((before.and_then(|b| desired(b)), desired(e)), (Some(b), Some(d)) if d < b)
}

/// Scaling activities against the users' degradation. What AWS says of each decides: the
/// first scale-out that completed after the users' experience turned gives the lag ("came into
/// service N s after"); without one, a scale-out that failed, or one still in progress when the
/// activities were read, is reported as such — never as capacity that came.
fn scaling_findings(input: &Input, sli: &Sli) -> Option<Finding> {
    let onset = sli.onset as f64;
    let end = sli.end as f64 + 1.0;
    let span = (end - onset).max(1.0);
    let all: Vec<&Event> = input
        .events
        .iter()
        .filter(|e| e.name.to_ascii_lowercase().contains("scal") && e.start.is_finite())
        .collect();
    let outs: Vec<(&Event, Outcome)> = all
        .iter()
        .filter(|e| e.start <= end && !scales_in(e, &all))
        .map(|e| (*e, outcome(e)))
        .collect();
    let users = sli_phrase(sli);
    let at = |t: f64| {
        if t < 0.0 {
            format!("{:.0}s before the run", -t)
        } else {
            format!("t={t:.0}s")
        }
    };
    let status = |e: &Event| {
        if e.status.is_empty() {
            "unknown".to_string()
        } else {
            e.status.clone()
        }
    };
    let finding = |e: &Event, score: f64, window_end: f64, evidence: Vec<(&str, f64)>, summary| {
        let mut evidence: BTreeMap<String, f64> = evidence
            .into_iter()
            .map(|(k, v)| (k.to_string(), round3(v)))
            .collect();
        evidence.insert("started_s".into(), round3(e.start));
        evidence.insert("degraded_at_s".into(), onset);
        Finding {
            kind: Kind::ScalingLag,
            signal: format!("{}:{}", e.source, e.name),
            score: round3(score),
            window: Window {
                start_s: e.start.min(onset),
                end_s: window_end,
            },
            evidence,
            lines: vec![e.cause.clone()],
            summary,
            explained_by: None,
            runner_up: None,
        }
    };
    // Capacity that came after the users turned: the first to come is the lag they waited.
    let landed = outs
        .iter()
        .filter_map(|(e, o)| match o {
            Outcome::Done(t) if *t > onset => Some((*e, *t)),
            _ => None,
        })
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((e, t)) = landed {
        let lag = t - onset;
        return Some(finding(
            e,
            0.3 + 0.6 * (lag / span).min(1.0),
            t,
            vec![("in_service_after_breach_s", lag)],
            format!(
                "New capacity came into service {lag:.0}s after {users} (the activity started at {}, completed at t={t:.0}s, status {}): scale earlier — a lower target, step scaling or a warm pool.",
                at(e.start),
                status(e)
            ),
        ));
    }
    // No capacity came: a scale-out that failed around the degradation, else one still going.
    let failed = outs
        .iter()
        .filter(|(e, o)| matches!(o, Outcome::Failed(_)) && e.end.is_none_or(|t| t >= onset))
        .min_by(|a, b| a.0.start.total_cmp(&b.0.start));
    if let Some((e, Outcome::Failed(ended))) = failed {
        let when = ended.map_or(String::new(), |t| format!(" at {}", at(t)));
        return Some(finding(
            e,
            0.6,
            ended.unwrap_or(end).max(onset),
            ended.map(|t| ("failed_at_s", t)).into_iter().collect(),
            format!(
                "A scale-out failed{when} (status {}) while {users}: its capacity never went into service; fix what stopped it (capacity in the zone, quotas, task placement) before scaling earlier.",
                status(e)
            ),
        ));
    }
    let going = outs
        .iter()
        .filter(|(_, o)| *o == Outcome::Going)
        .min_by(|a, b| a.0.start.total_cmp(&b.0.start));
    going.map(|(e, _)| {
        let waited = (input.len() as f64 - onset).max(0.0);
        finding(
            e,
            0.3 + 0.6 * (waited / span).min(1.0),
            end,
            vec![("not_in_service_after_breach_s", waited)],
            format!(
                "A scale-out that started at {} was still in progress when its activities were read (status {}): its capacity was not yet in service {waited:.0}s after {users}; scale earlier — a lower target, step scaling or a warm pool — and see why it takes this long.",
                at(e.start),
                status(e),
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Signal;

    #[test]
    fn a_weak_cause_upstream_does_not_explain_a_strong_effect_away() {
        let declared = |name: &str| Signal {
            name: name.into(),
            ..Signal::default()
        };
        let structure = Structure::declared(&[
            declared("peakload_stack_dependency{component=\"worker:email\",on=\"database\"}"),
            declared(
                "peakload_stack_dependency{component=\"queue:notifications\",on=\"worker:email\"}",
            ),
        ]);
        let finding = |kind, signal: &str, score, at| Finding {
            kind,
            signal: signal.into(),
            score,
            window: Window {
                start_s: at,
                end_s: 22.0,
            },
            evidence: BTreeMap::from([("changed_at_s".to_string(), at)]),
            lines: Vec::new(),
            summary: String::new(),
            explained_by: None,
            runner_up: None,
        };
        let pair = |db_score| {
            let mut out = vec![
                finding(
                    Kind::QueueBacklog,
                    "queue_depth{queue=\"notifications\"}",
                    0.86,
                    11.0,
                ),
                finding(
                    Kind::DbLatency,
                    "db_operation_duration_seconds:mean",
                    db_score,
                    9.0,
                ),
            ];
            explain_consequences(&mut out, &structure);
            out[0].explained_by.clone()
        };
        assert_eq!(pair(0.37), None);
        assert_eq!(
            pair(0.8).as_deref(),
            Some("db_operation_duration_seconds:mean")
        );
    }
}
