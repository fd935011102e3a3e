//! Merging the results of the N shards of a distributed run into the result of the whole plan.
//!
//! Every histogram is added losslessly (HdrHistogram buckets), so any percentile of the merged
//! result is the percentile of every request of every shard; counters are summed; per-second
//! timelines are aligned by wall clock (each shard's `started_at`). Infrastructure signals are
//! taken from one shard (the lowest index that has them), never added N times. Thresholds and
//! the diagnosis are the caller's to re-run on the merged result.
//!
//! A shard missing from `0..count`, or one whose run did not complete, makes the result
//! `incomplete` with the shards named in [`MergeInfo`]: never a smaller test in disguise.
//!
//! Two levels, to spread a large merge over machines: [`merge_part`] adds the shards of an
//! index range into a *part* (a merged result marked with [`PartInfo`], its rows, missing and
//! failed shards within the range); [`merge`] takes parts and shards alike and adds them as it
//! adds shards. Every histogram and counter of the tree is the direct merge's. Per-second
//! lines are aligned twice: a part puts a shard's second `t` at `round(t + shard start − part
//! start)`, the final merge puts the part's second at `round(t + part start − earliest start)`,
//! where the direct merge rounds once, `round(t + shard start − earliest start)`. Both agree
//! while every shard started less than half a second after the earliest (`--start-at` runs
//! start within milliseconds); with a wider spread a shard's second can land one bucket apart
//! in the two, the totals unchanged.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::SystemTime;

use hdrhistogram::Histogram;

use super::adder::{Adder, Decoder};
use super::hlog::{split_line_bytes, HlogWriter};
use super::results::{
    encode_histogram, round3, IntervalLatency, JourneyResult, LagStats, LatencyStats, MergeInfo,
    MergedShard, PartInfo, Results, ResultsKind, StepResult, TimelinePoint,
};

/// One shard's results, or a part's, as read from a directory or a file.
pub struct ShardInput {
    /// Where it came from (shown in the per-shard table).
    pub source: String,
    pub results: Results,
    /// Its `latency.hlog`, when there is one: read line by line while merging, so memory holds
    /// one second of every shard's histograms, never a whole log.
    pub hlog: Option<Box<dyn BufRead + Send>>,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge")]
    Empty,
    #[error("{0}")]
    Mismatch(String),
    #[error("{input}: {message}")]
    Unreadable { input: String, message: String },
}

/// An inclusive range of shard indices: the part of a two-level merge (`--shards 0-9`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRange {
    pub first: u32,
    pub last: u32,
}

impl ShardRange {
    /// `A-B`, A ≤ B.
    pub fn parse(s: &str) -> Result<Self, String> {
        let num = |n: &str| {
            n.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: expected A-B, shard indices (e.g. 0-9)"))
        };
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?}: expected A-B, shard indices (e.g. 0-9)"))?;
        let (first, last) = (num(a)?, num(b)?);
        if first > last {
            return Err(format!("{s:?}: the first index is after the last"));
        }
        Ok(ShardRange { first, last })
    }

    /// Part `k` of parts of `size` shards each: `k·size ..= k·size + size − 1`.
    pub fn nth(k: u32, size: u32) -> Result<Self, String> {
        let first = k
            .checked_mul(size)
            .filter(|_| size > 0)
            .ok_or_else(|| format!("part {k} of {size} shard(s) each: out of range"))?;
        Ok(ShardRange {
            first,
            last: first.saturating_add(size - 1),
        })
    }
}

impl std::fmt::Display for ShardRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// Where an input stands against the range of a part being merged.
#[derive(Debug, PartialEq, Eq)]
pub enum InRange {
    Inside,
    Outside,
    /// A part with shards both inside and outside the range.
    Across,
}

/// Whether a shard, or a part, lies in `range`.
pub fn in_range(r: &ResultsKind, range: ShardRange) -> InRange {
    let (first, last) = match (&r.shard, &r.part) {
        (Some(s), _) => (s.index, s.index),
        (None, Some(p)) => (p.first, p.last),
        (None, None) => return InRange::Outside,
    };
    if range.first <= first && last <= range.last {
        InRange::Inside
    } else if last < range.first || range.last < first {
        InRange::Outside
    } else {
        InRange::Across
    }
}

/// The thresholds the inputs were given, each once, in the order first seen: the shards'
/// evaluated ones and those parts carry for the final merge.
pub fn thresholds_given(inputs: &[ShardInput]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for i in inputs {
        let r = &i.results;
        let given = r.thresholds.iter().map(|t| &t.expr).chain(
            r.part
                .as_ref()
                .map(|p| p.thresholds.iter())
                .into_iter()
                .flatten(),
        );
        for t in given {
            if !v.contains(t) {
                v.push(t.clone());
            }
        }
    }
    v
}

/// Adds the shards and parts up and writes the merged `latency.hlog` to `hlog_out`. Inputs
/// that cannot belong to one distributed run (no shard, different scenarios or shard counts,
/// one index in two inputs) are refused.
pub fn merge<W: Write>(inputs: Vec<ShardInput>, hlog_out: W) -> Result<Results, MergeError> {
    merge_inputs(inputs, None, hlog_out)
}

/// Adds the shards of `range` (and parts within it) into a part of a two-level merge; the
/// caller has left out inputs outside the range. Missing and failed shards are those of the
/// range; thresholds are carried for the final merge, not evaluated.
pub fn merge_part<W: Write>(
    inputs: Vec<ShardInput>,
    range: ShardRange,
    hlog_out: W,
) -> Result<Results, MergeError> {
    merge_inputs(inputs, Some(range), hlog_out)
}

/// The shard count an input names: a shard's or a part's.
fn count_of(i: &ShardInput) -> Result<u32, MergeError> {
    match (&i.results.shard, &i.results.part) {
        (Some(s), _) => Ok(s.count),
        (None, Some(p)) => Ok(p.count),
        (None, None) => Err(not_a_shard(i)),
    }
}

/// The shard indices an input holds: a shard's own, or the shards a part added up.
fn held(i: &ShardInput) -> Vec<u32> {
    match (&i.results.shard, &i.results.merged) {
        (Some(s), _) => vec![s.index],
        (None, Some(m)) => m.shards.iter().map(|s| s.index).collect(),
        (None, None) => Vec::new(),
    }
}

fn describe(i: &ShardInput) -> String {
    match (&i.results.shard, &i.results.part) {
        (Some(s), _) => format!("shard {}/{}", s.index, s.count),
        (None, Some(p)) => format!("the part of shards {}-{} of {}", p.first, p.last, p.count),
        (None, None) => "not a shard".into(),
    }
}

fn merge_inputs<W: Write>(
    mut inputs: Vec<ShardInput>,
    range: Option<ShardRange>,
    hlog_out: W,
) -> Result<Results, MergeError> {
    let first = inputs.first().ok_or(MergeError::Empty)?;
    let count = count_of(first)?;
    for i in &inputs {
        let c = count_of(i)?;
        if c != count {
            return Err(MergeError::Mismatch(format!(
                "{} is {} but {} is one of {count}: these are not one run",
                i.source,
                describe(i),
                first.source
            )));
        }
        if let Some(p) = &i.results.part {
            if i.results.merged.is_none() || p.first > p.last {
                return Err(MergeError::Unreadable {
                    input: i.source.clone(),
                    message: "a part without its merged shards or with an empty range".into(),
                });
            }
        }
        let (a, b) = (&i.results.scenario, &first.results.scenario);
        if a.name != b.name || a.model != b.model {
            return Err(MergeError::Mismatch(format!(
                "{} ran scenario {:?} ({}) but {} ran {:?} ({}): these are not one run",
                i.source, a.name, a.model, first.source, b.name, b.model
            )));
        }
    }
    inputs.sort_by_key(|i| held(i).into_iter().min());
    let mut holder: BTreeMap<u32, &str> = BTreeMap::new();
    for i in &inputs {
        for index in held(i) {
            if let Some(other) = holder.insert(index, &i.source) {
                return Err(MergeError::Mismatch(format!(
                    "{other} and {} both hold shard {index}: one index twice{}",
                    i.source,
                    if inputs.iter().any(|x| x.results.part.is_some()) {
                        " (give the parts, or the shards, not both)"
                    } else {
                        ""
                    }
                )));
            }
        }
    }
    let present: Vec<u32> = holder.keys().copied().collect();
    let starts: Vec<SystemTime> = inputs
        .iter()
        .map(|i| parse_time(&i.results.started_at, &i.source))
        .collect::<Result<_, _>>()?;
    let ends: Vec<SystemTime> = inputs
        .iter()
        .map(|i| parse_time(&i.results.ended_at, &i.source))
        .collect::<Result<_, _>>()?;
    let started = *starts.iter().min().expect("at least one input");
    let ended = *ends.iter().max().expect("at least one input");
    let offsets: Vec<f64> = starts
        .iter()
        .map(|s| s.duration_since(started).unwrap_or_default().as_secs_f64())
        .collect();
    let secs = ended
        .duration_since(started)
        .unwrap_or_default()
        .as_secs_f64()
        .max(1e-9);

    let expected = match range {
        Some(r) => r.first..=r.last.min(count.saturating_sub(1)),
        None => 0..=count.saturating_sub(1),
    };
    let missing: Vec<u32> = expected.filter(|i| !holder.contains_key(i)).collect();
    let mut failed: Vec<u32> = inputs
        .iter()
        .flat_map(|i| match (&i.results.shard, &i.results.merged) {
            (Some(s), _) if i.results.status != "completed" => vec![s.index],
            (None, Some(m)) => m.failed.clone(),
            _ => Vec::new(),
        })
        .collect();
    failed.sort_unstable();

    let base = &inputs[0].results;
    let mut r = base.clone();
    r.shard = None;
    r.part = None;
    r.started_at = humantime::format_rfc3339_millis(started).to_string();
    r.ended_at = humantime::format_rfc3339_millis(ended).to_string();
    r.duration_s = round3(secs);
    r.status = if missing.is_empty() && failed.is_empty() {
        "completed".into()
    } else {
        "incomplete".into()
    };
    r.thresholds = Vec::new();
    r.capacity = None;
    r.findings = Vec::new();
    r.diagnosis_notes = Vec::new();

    let all: Vec<&Results> = inputs.iter().map(|i| &i.results).collect();
    let unreadable = |source: &str, message: String| MergeError::Unreadable {
        input: source.to_string(),
        message,
    };

    // Summary.
    let mut hist = Adder::default();
    let s = &mut r.summary;
    *s = base.summary.clone();
    s.requests = 0;
    s.errors = 0;
    s.iterations = 0;
    s.failed_iterations = 0;
    s.checks = 0;
    s.checks_failed = 0;
    s.data_received_bytes = 0;
    s.data_sent_bytes = 0;
    for (i, x) in inputs.iter().enumerate() {
        let y = &x.results.summary;
        s.requests += y.requests;
        s.errors += y.errors;
        s.iterations += y.iterations;
        s.failed_iterations += y.failed_iterations;
        s.checks += y.checks;
        s.checks_failed += y.checks_failed;
        s.data_received_bytes += y.data_received_bytes;
        s.data_sent_bytes += y.data_sent_bytes;
        hist.add(&y.histogram)
            .map_err(|e| unreadable(&inputs[i].source, format!("summary histogram: {e}")))?;
    }
    let h = hist.finish();
    s.error_rate = rate(s.errors, s.requests);
    s.rps = round3(s.requests as f64 / secs);
    s.latency_ms = LatencyStats::from_histogram(&h);
    s.histogram = encode_histogram(&h);

    // Steps and journeys, by name.
    for step in r.steps.iter_mut() {
        let mut hist = Adder::default();
        let mut kinds = BTreeMap::new();
        let (mut req, mut err, mut checks, mut failed_checks) = (0, 0, 0, 0);
        for x in &inputs {
            let Some(y) = x
                .results
                .steps
                .iter()
                .find(|y| y.journey == step.journey && y.name == step.name)
            else {
                return Err(MergeError::Mismatch(format!(
                    "{} has no step {}/{}: the shards ran different scenarios",
                    x.source, step.journey, step.name
                )));
            };
            req += y.requests;
            err += y.errors;
            checks += y.checks;
            failed_checks += y.checks_failed;
            add_kinds(&mut kinds, &y.errors_by_kind);
            hist.add(&y.histogram).map_err(|e| {
                unreadable(&x.source, format!("step {}/{}: {e}", y.journey, y.name))
            })?;
        }
        let h = hist.finish();
        *step = StepResult {
            requests: req,
            errors: err,
            error_rate: rate(err, req),
            rps: round3(req as f64 / secs),
            checks,
            checks_failed: failed_checks,
            errors_by_kind: kinds,
            latency_ms: LatencyStats::from_histogram(&h),
            histogram: encode_histogram(&h),
            ..step.clone()
        };
    }
    for journey in r.journeys.iter_mut() {
        let mut hist = Adder::default();
        let (mut it, mut failed_it) = (0, 0);
        for x in &inputs {
            let Some(y) = x.results.journeys.iter().find(|y| y.name == journey.name) else {
                return Err(MergeError::Mismatch(format!(
                    "{} has no journey {}: the shards ran different scenarios",
                    x.source, journey.name
                )));
            };
            it += y.iterations;
            failed_it += y.failed_iterations;
            hist.add(&y.histogram)
                .map_err(|e| unreadable(&x.source, format!("journey {}: {e}", y.name)))?;
        }
        let h = hist.finish();
        *journey = JourneyResult {
            iterations: it,
            failed_iterations: failed_it,
            latency_ms: LatencyStats::from_histogram(&h),
            histogram: encode_histogram(&h),
            ..journey.clone()
        };
    }

    // Counters.
    let sum = |f: fn(&Results) -> u64| all.iter().map(|x| f(x)).sum::<u64>();
    r.dropped_iterations = sum(|x| x.dropped_iterations);
    r.late_iterations = sum(|x| x.late_iterations);
    r.arrivals_queued = sum(|x| x.arrivals_queued);
    r.feeder_exhausted = sum(|x| x.feeder_exhausted);
    r.interrupted_iterations = sum(|x| x.interrupted_iterations);
    r.retried_requests = sum(|x| x.retried_requests);
    r.errors = BTreeMap::new();
    for x in &all {
        add_kinds(&mut r.errors, &x.errors);
    }
    // Schedule lag is stored as three figures, not a histogram: the merged ones are the worst
    // shard's, an upper bound (the generator notes say so).
    let max = |f: fn(&LagStats) -> f64| {
        all.iter()
            .map(|x| f(&x.schedule_lag_ms))
            .fold(0.0, f64::max)
    };
    r.schedule_lag_ms = LagStats {
        p50: max(|l| l.p50),
        p99: max(|l| l.p99),
        max: max(|l| l.max),
    };
    let mut samples: Vec<_> = all.iter().flat_map(|x| x.error_samples.clone()).collect();
    samples.sort_by_key(|s| s.kind);
    samples.dedup_by(|a, b| a.kind == b.kind && a.message == b.message);
    r.error_samples = samples;

    // Generators.
    let g = &mut r.generator;
    g.threads = all.iter().map(|x| x.generator.threads).sum();
    g.cpu_s = round3(all.iter().map(|x| x.generator.cpu_s).sum());
    g.cpu_pct = round3(all.iter().map(|x| x.generator.cpu_pct).sum());
    g.kept_up = all.iter().all(|x| x.generator.kept_up);
    g.notes = inputs.iter().flat_map(shard_notes).collect();
    if present.len() > 1 {
        g.notes.push(
            "schedule lag: the worst shard's p50, p99 and max (an upper bound for the whole)"
                .into(),
        );
    }

    // Timeline and latency.hlog, aligned by wall clock.
    let without: Vec<String> = inputs
        .iter()
        .flat_map(|x| {
            let own = x.hlog.is_none().then(|| x.source.clone());
            let parts = x
                .results
                .part
                .iter()
                .flat_map(|p| p.without_latency_log.clone());
            own.into_iter().chain(parts)
        })
        .collect();
    let (timeline, note) = timeline(&mut inputs, &offsets, &without, started, hlog_out)?;
    r.timeline = timeline;
    if let Some(note) = note {
        r.generator.notes.push(note);
    }

    // Infrastructure: collected once, by the lowest shard that has it.
    r.infra = None;
    if let Some((i, x)) = inputs
        .iter()
        .enumerate()
        .find(|(_, x)| x.results.infra.is_some())
    {
        let mut infra = x.results.infra.clone().expect("found with infra");
        if x.results.part.is_some() {
            // The part's note counts the shards of its range only; the one below replaces it.
            infra.notes.retain(|n| !n.starts_with(INFRA_NOTE));
        }
        let shift = offsets[i];
        for s in &mut infra.series {
            for p in &mut s.points {
                p.0 += shift;
            }
        }
        for e in &mut infra.events {
            e.start += shift;
            e.end = e.end.map(|t| t + shift);
        }
        let others = inputs.iter().filter(|x| x.results.infra.is_some()).count() - 1;
        let parts = inputs
            .iter()
            .any(|x| x.results.part.is_some() && x.results.infra.is_some());
        if parts {
            let from = match &x.results.part {
                Some(_) => format!("{} (its lowest shard that observed them)", x.source),
                None => x.source.clone(),
            };
            infra.notes.push(format!(
                "{INFRA_NOTE} {from} only; the other shards that observed the same \
                 infrastructure were not added again"
            ));
        } else if others > 0 {
            infra.notes.push(format!(
                "{INFRA_NOTE} {} only; {others} other shard(s) observed the same \
                 infrastructure and were not added again",
                x.source
            ));
        }
        r.infra = Some(infra);
    }

    let mut rows: Vec<MergedShard> = inputs
        .iter()
        .flat_map(|x| match (&x.results.shard, &x.results.merged) {
            (None, Some(m)) => m.shards.clone(),
            _ => vec![shard_row(x)],
        })
        .collect();
    rows.sort_by_key(|row| row.index);
    if let Some(range) = range {
        r.part = Some(PartInfo {
            first: range.first,
            last: range.last.min(count.saturating_sub(1)),
            count,
            thresholds: thresholds_given(&inputs),
            without_latency_log: without,
        });
    }
    r.merged = Some(MergeInfo {
        count,
        shards: rows,
        missing,
        failed,
    });
    Ok(r)
}

/// How the note on infrastructure taken from one input begins.
const INFRA_NOTE: &str = "infrastructure signals taken from";

/// An input's generator notes, each marked with its shard: a shard's own, or those a part
/// marked for its shards (not the part's notes about the merge itself).
fn shard_notes(x: &ShardInput) -> Vec<String> {
    let notes = &x.results.generator.notes;
    match &x.results.shard {
        Some(s) => notes
            .iter()
            .map(|n| format!("shard {}: {n}", s.index))
            .collect(),
        None => {
            let marks: Vec<String> = held(x).iter().map(|i| format!("shard {i}: ")).collect();
            notes
                .iter()
                .filter(|n| marks.iter().any(|m| n.starts_with(m.as_str())))
                .cloned()
                .collect()
        }
    }
}

/// The merged timeline, with the merged `latency.hlog` written as it goes; a note when
/// per-second percentiles could not be recomputed exactly (a shard without its log).
fn timeline<W: Write>(
    inputs: &mut [ShardInput],
    offsets: &[f64],
    without: &[String],
    started: SystemTime,
    hlog_out: W,
) -> Result<(Vec<TimelinePoint>, Option<String>), MergeError> {
    let second = |t: f64, i: usize| (t + offsets[i]).round().max(0.0) as u32;
    let mut points: BTreeMap<u32, TimelinePoint> = BTreeMap::new();
    for (i, x) in inputs.iter().enumerate() {
        for p in &x.results.timeline {
            let t = second(p.t as f64, i);
            let m = points.entry(t).or_insert_with(|| TimelinePoint {
                t,
                requests: 0,
                errors: 0,
                rps: 0.0,
                latency_ms: IntervalLatency::default(),
                active_vus: 0,
                target_rps: 0.0,
                iterations_started: 0,
                dropped_iterations: 0,
                errors_by_kind: BTreeMap::new(),
                generator_cpu_pct: 0.0,
            });
            m.requests += p.requests;
            m.errors += p.errors;
            m.rps = round3(m.rps + p.rps);
            m.active_vus += p.active_vus;
            m.target_rps = round3(m.target_rps + p.target_rps);
            m.iterations_started += p.iterations_started;
            m.dropped_iterations += p.dropped_iterations;
            add_kinds(&mut m.errors_by_kind, &p.errors_by_kind);
            m.generator_cpu_pct =
                ((m.generator_cpu_pct + p.generator_cpu_pct) * 10.0).round() / 10.0;
            // Without the histograms, the worst shard's figures (replaced below when exact).
            let (a, b) = (&mut m.latency_ms, &p.latency_ms);
            a.p50 = a.p50.max(b.p50);
            a.p95 = a.p95.max(b.p95);
            a.p99 = a.p99.max(b.p99);
            a.max = a.max.max(b.max);
        }
    }
    let fail_write = |e: std::io::Error| MergeError::Unreadable {
        input: "the merged latency.hlog".into(),
        message: e.to_string(),
    };
    let mut out = HlogWriter::new(hlog_out, started).map_err(fail_write)?;
    // Each shard's log is in time order: take every shard's lines of merged second t, add them
    // up by tag, write them, forget them, go on to t + 1. The shards are dealt in contiguous
    // blocks to one reader thread per core, each adding its block's second t; their sums are
    // added here in block order (integer counts: the same sum in any order).
    let readers: Vec<(f64, Lines)> = inputs
        .iter_mut()
        .zip(offsets)
        .filter_map(|(x, &offset)| {
            let source = x.source.clone();
            x.hlog.take().map(|r| (offset, Lines::new(r, source)))
        })
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, readers.len().max(1));
    let per_thread = readers.len().div_ceil(threads).max(1);
    let mut blocks: Vec<Vec<(f64, Lines)>> = Vec::new();
    let mut rest = readers.into_iter();
    loop {
        let block: Vec<_> = rest.by_ref().take(per_thread).collect();
        if block.is_empty() {
            break;
        }
        blocks.push(block);
    }
    std::thread::scope(|scope| -> Result<(), MergeError> {
        let sums: Vec<Receiver<Result<SecondSum, MergeError>>> = blocks
            .into_iter()
            .map(|block| {
                // A few seconds ahead at most: memory stays one second per shard block.
                let (tx, rx) = sync_channel(4);
                scope.spawn(move || add_seconds(block, &tx));
                rx
            })
            .collect();
        let next = |rx: &Receiver<Result<SecondSum, MergeError>>| match rx.recv() {
            Ok(sum) => sum.map(Some),
            Err(_) => Ok(None),
        };
        let mut heads: Vec<Option<SecondSum>> = sums.iter().map(next).collect::<Result<_, _>>()?;
        while let Some(t) = heads.iter().flatten().map(|s| s.0).min() {
            let mut by_tag: BTreeMap<Option<String>, (f64, Adder)> = BTreeMap::new();
            for (head, rx) in heads.iter_mut().zip(&sums) {
                if head.as_ref().is_none_or(|s| s.0 != t) {
                    continue;
                }
                let (_, part) = head.take().expect("checked above");
                for (tag, (length, sum)) in part {
                    let e = by_tag.entry(tag).or_insert_with(|| (0.0, Adder::default()));
                    e.0 = e.0.max(length);
                    e.1.absorb(sum).map_err(|message| MergeError::Unreadable {
                        input: "the shards' latency.hlog".into(),
                        message,
                    })?;
                }
                *head = next(rx)?;
            }
            for (tag, (length, adder)) in by_tag {
                let h = adder.finish();
                if tag.is_none() && without.is_empty() {
                    if let Some(p) = points.get_mut(&t) {
                        p.latency_ms = interval_latency(&h);
                    }
                }
                out.interval(tag.as_deref(), t as f64, length.max(0.001), &h)
                    .map_err(fail_write)?;
            }
        }
        Ok(())
    })?;
    out.flush().map_err(fail_write)?;
    let note = (!without.is_empty()).then(|| {
        format!(
            "per-second latency: the worst shard's percentiles, not recomputed (no latency.hlog \
             for {}); the run's and each step's percentiles are exact",
            without.join(", ")
        )
    });
    Ok((points.into_values().collect(), note))
}

/// One merged second of a block of shards: its start (seconds since the merged start) and, by
/// tag, the longest interval length and the sum.
type SecondSum = (u32, BTreeMap<Option<String>, (f64, Adder)>);

/// Adds a block of shards' logs second by second (each shard's lines shifted by its offset
/// from the merged start) and sends each second's sums, in order, until the logs end, a log
/// cannot be read (sent as the error) or the receiver is gone.
fn add_seconds(mut block: Vec<(f64, Lines)>, tx: &SyncSender<Result<SecondSum, MergeError>>) {
    let second = |start: f64, offset: f64| (start + offset).round().max(0.0) as u32;
    let mut decoder = Decoder::default();
    let mut add = |block: &mut Vec<(f64, Lines)>| -> Result<Option<SecondSum>, MergeError> {
        let mut next: Option<u32> = None;
        for (offset, r) in block.iter_mut() {
            if let Some(iv) = r.peek()? {
                let t = second(iv.start, *offset);
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        let Some(t) = next else { return Ok(None) };
        // A second has a dozen tags at most: a list looked up by the line's tag allocates a
        // name once per tag and second, not once per line.
        let mut by_tag: Vec<(Option<String>, (f64, Adder))> = Vec::new();
        for (offset, r) in block.iter_mut() {
            while let Some(iv) = r.peek()? {
                if second(iv.start, *offset) != t {
                    break;
                }
                let length = iv.length;
                let tag = r.tag();
                let at = match by_tag.iter().position(|(t, _)| t.as_deref() == tag) {
                    Some(at) => at,
                    None => {
                        by_tag.push((tag.map(str::to_string), (0.0, Adder::default())));
                        by_tag.len() - 1
                    }
                };
                let e = &mut by_tag[at].1;
                e.0 = e.0.max(length);
                e.1.add_encoded_bytes(r.histogram(), &mut decoder)
                    .map_err(|message| r.error(format!("line {}: {message}", r.line)))?;
                r.consume();
            }
        }
        let by_tag = by_tag.into_iter().collect();
        Ok(Some((t, by_tag)))
    };
    loop {
        let sent = match add(&mut block) {
            Ok(None) => return,
            Ok(Some(sum)) => tx.send(Ok(sum)),
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

fn interval_latency(h: &Histogram<u64>) -> IntervalLatency {
    if h.is_empty() {
        return IntervalLatency::default();
    }
    let ms = |us: u64| round3(us as f64 / 1000.0);
    IntervalLatency {
        p50: ms(h.value_at_quantile(0.5)),
        p95: ms(h.value_at_quantile(0.95)),
        p99: ms(h.value_at_quantile(0.99)),
        max: ms(h.max()),
    }
}

/// A shard's `latency.hlog`, one interval at a time with one looked ahead; its histogram is
/// left encoded until it is added.
struct Lines {
    reader: Box<dyn BufRead + Send>,
    source: String,
    line: usize,
    buf: Vec<u8>,
    ahead: Option<Ahead>,
}

/// The interval line in `Lines::buf`.
struct Ahead {
    /// Where its tag is in the line.
    tag: Option<std::ops::Range<usize>>,
    start: f64,
    length: f64,
    /// Where its histogram is in the line.
    histogram: std::ops::Range<usize>,
}

impl Lines {
    fn new(reader: Box<dyn BufRead + Send>, source: String) -> Self {
        Lines {
            reader,
            source,
            line: 0,
            buf: Vec::new(),
            ahead: None,
        }
    }

    fn peek(&mut self) -> Result<Option<&Ahead>, MergeError> {
        while self.ahead.is_none() {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| self.error(e.to_string()))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let raw = split_line_bytes(&self.buf)
                .map_err(|e| self.error(format!("line {}: {e}", self.line)))?;
            let base = self.buf.as_ptr() as usize;
            let range = |part: &[u8]| {
                let at = part.as_ptr() as usize - base;
                at..at + part.len()
            };
            self.ahead = raw.map(|raw| Ahead {
                tag: raw.tag.map(|t| range(t.as_bytes())),
                start: raw.start,
                length: raw.length,
                histogram: range(raw.histogram),
            });
        }
        Ok(self.ahead.as_ref())
    }

    /// The tag of the line peeked at (checked as text when the line was split).
    fn tag(&self) -> Option<&str> {
        let range = self.ahead.as_ref()?.tag.clone()?;
        std::str::from_utf8(&self.buf[range]).ok()
    }

    /// The encoded histogram of the line peeked at.
    fn histogram(&self) -> &[u8] {
        self.ahead
            .as_ref()
            .map_or(&[][..], |a| &self.buf[a.histogram.clone()])
    }

    fn consume(&mut self) {
        self.ahead = None;
    }

    fn error(&self, message: String) -> MergeError {
        MergeError::Unreadable {
            input: format!("{}/latency.hlog", self.source),
            message,
        }
    }
}

fn shard_row(x: &ShardInput) -> MergedShard {
    let r = &x.results;
    let shard = r.shard.as_ref();
    let started: u64 = r.timeline.iter().map(|p| p.iterations_started).sum();
    MergedShard {
        index: shard.map(|s| s.index).unwrap_or(0),
        source: x.source.clone(),
        status: r.status.clone(),
        started_at: r.started_at.clone(),
        duration_s: r.duration_s,
        asked_rps: shard.and_then(|s| s.asked.rps),
        achieved_rps: round3(started as f64 / r.duration_s.max(1e-9)),
        requests: r.summary.requests,
        errors: r.summary.errors,
        dropped_iterations: r.dropped_iterations,
        late_start_ms: shard.and_then(|s| s.late_start_ms),
        generator_cpu_pct: r.generator.cpu_pct,
        generator_kept_up: r.generator.kept_up,
    }
}

fn not_a_shard(i: &ShardInput) -> MergeError {
    MergeError::Mismatch(format!(
        "{} is not a shard of a distributed run (it was not run with --shard I/N)",
        i.source
    ))
}

fn parse_time(s: &str, source: &str) -> Result<SystemTime, MergeError> {
    humantime::parse_rfc3339_weak(s).map_err(|e| MergeError::Unreadable {
        input: source.to_string(),
        message: format!("start or end time {s:?}: {e}"),
    })
}

fn add_kinds(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, n) in from {
        *into.entry(k.clone()).or_insert(0) += n;
    }
}

fn rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        (errors as f64 / requests as f64 * 1e6).round() / 1e6
    }
}
