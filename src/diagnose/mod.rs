//! Diagnosis: from a run's timeline and its infrastructure signals to ranked causes.
//!
//! Data enters as an [`Input`] — per-second users' latency (p99) and error rate, achieved and
//! planned throughput, and every infrastructure [`Series`](crate::record::infra::Series) resampled
//! onto the same one-second grid — built from `results.json` ([`Input::from_results`]) or
//! from a CSV export. [`analyze`] then:
//!
//! 1. [`sli`]: decides whether the users' experience degraded (latency or errors above their
//!    own baseline by margins both relative and absolute — latency at least 1.5× and 20 ms
//!    above it — for several seconds running). A healthy run stops here: no cause is named.
//! 2. [`knee`]: the capacity — highest sustained throughput before the turn, and the knee of
//!    latency against throughput.
//! 3. [`rank`]: scores every signal by how abnormal it became (robust z against its own
//!    baseline), how well it tracks the degraded SLI (Spearman over lags, the signal leading),
//!    whether its change came first, and discounts signals that only follow the load.
//! 4. [`rules`]: names the cause (`kind`) from the signal, and writes the finding; findings
//!    downstream of an earlier one in the system's declared [`structure`] are explained away,
//!    and each names its runner-up and why it lost.
//! 5. A run still says what moved without reaching the users ([`moved`]: in a healthy run the
//!    users' worst stretch and infrastructure that moved; in a degraded one, infrastructure
//!    that moved outside the degraded window); a degradation nothing explains says what was not
//!    observed and what to observe next ([`unknown`]).
//!
//! Everything is scale-free (ranks, medians, ratios), so signals in bytes, seconds and
//! percent compete fairly.

pub mod knee;
pub mod moved;
pub mod rank;
pub mod rules;
pub mod sli;
pub mod stats;
pub mod structure;
pub mod synthetic;
pub mod unknown;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::record::findings::{Capacity, Finding, Kind};
use crate::record::infra::{Event, Infra, Series};
use crate::record::results::Results;

/// What the analysis reads, all on one grid: index `i` covers second `[i, i + 1)`.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// Users' tail latency per second in milliseconds (see `latency_stat`); `None` when
    /// unknown.
    pub latency_ms: Option<Vec<f64>>,
    /// Which per-second quantile `latency_ms` holds: `p99` when seconds carry at least 100
    /// requests, `p95` from 20, else `p50` — a per-second p99 of 30 requests is just the
    /// slowest one, and a healthy run's noise would read as degradation.
    pub latency_stat: &'static str,
    /// Failed requests / requests.
    pub error_rate: Option<Vec<f64>>,
    /// Achieved requests per second.
    pub rps: Vec<f64>,
    /// Planned load (arrivals/s or VUs); empty when unknown.
    pub target: Vec<f64>,
    /// Seconds in which the load generator was CPU-bound.
    pub generator_busy: Vec<bool>,
    /// Whether the generator kept up over the whole run, and why not.
    pub generator_kept_up: bool,
    pub generator_notes: Vec<String>,
    pub signals: Vec<Signal>,
    pub events: Vec<Event>,
    /// Sample error messages, for error findings.
    pub error_samples: Vec<String>,
    /// How far above its baseline (ms) a stretch of high latency must be (its median) to
    /// count as degraded, besides the relative margin; 0 when the SLI's unit is unknown (CSV).
    pub latency_floor_ms: f64,
    /// Whether every threshold of the scenario passed; `None` when it had none (or for CSV).
    pub thresholds_passed: Option<bool>,
    /// Series that could not be placed on the grid, each `name{dims}: why`.
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Signal {
    /// `name{dims}`, as in the ranking.
    pub name: String,
    pub unit: String,
    pub values: Vec<f64>,
    /// Seconds held at the value seen last (or first) across a silence longer than a bridge
    /// (empty: none): filled in, not measured, so no change can be read in them.
    pub held: Vec<bool>,
    /// The interval each of the source's values aggregated (see `Series::span_s`): a change is
    /// only placed in time to within it.
    pub span_s: Option<f64>,
    /// With `span_s`, where each of the source's intervals started (`[t, t + span_s)`), so that
    /// the users' experience can be aggregated over the same intervals ([`Signal::aggregate_like`]).
    pub starts: Vec<f64>,
}

impl Signal {
    /// Whether second `i` was held across a silence (see [`Signal::held`]).
    pub fn held_at(&self, i: usize) -> bool {
        self.held.get(i).is_some_and(|h| *h)
    }

    /// `per_second` (a value per second of the run, as the SLIs are) averaged over the same
    /// intervals as this signal's values and spread back onto the grid the same way: the users'
    /// experience as this source would have published it. `None` for instantaneous samples.
    pub fn aggregate_like(&self, per_second: &[f64]) -> Option<Vec<f64>> {
        let p = self.span_s.filter(|p| p.is_finite() && *p > 0.0)?;
        let n = per_second.len();
        let points: Vec<(f64, f64)> = self
            .starts
            .iter()
            .filter_map(|&t| {
                let (from, to) = (t.max(0.0), (t + p).min(n as f64));
                let (mut sum, mut weight) = (0.0, 0.0);
                let mut i = from.floor().max(0.0) as usize;
                while (i as f64) < to && i < n {
                    let overlap = (to.min(i as f64 + 1.0) - from.max(i as f64)).max(0.0);
                    if overlap > 0.0 && per_second[i].is_finite() {
                        sum += per_second[i] * overlap;
                        weight += overlap;
                    }
                    i += 1;
                }
                (weight > 0.0).then(|| (t, sum / weight))
            })
            .collect();
        let series = Series {
            source: String::new(),
            name: String::new(),
            unit: String::new(),
            dimensions: Default::default(),
            points,
            span_s: Some(p),
        };
        resample_known(&series, n).map(|r| r.values)
    }
}

impl Input {
    pub fn len(&self) -> usize {
        self.rps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rps.is_empty()
    }

    /// From a run's results and what was observed during it.
    pub fn from_results(r: &Results, infra: Option<&Infra>) -> Input {
        let mut per_second: Vec<f64> = r.timeline.iter().map(|p| p.requests as f64).collect();
        let typical = stats::median(&per_second);
        per_second.clear();
        let stat = if typical >= 100.0 {
            "p99"
        } else if typical >= 20.0 {
            "p95"
        } else {
            "p50"
        };
        let completed: Vec<f64> = r
            .timeline
            .iter()
            .map(|p| match (p.requests, stat) {
                (0, _) => f64::NAN,
                (_, "p99") => p.latency_ms.p99,
                (_, "p95") => p.latency_ms.p95,
                _ => p.latency_ms.p50,
            })
            .collect();
        let mut latency = by_send_time(&completed);
        let mut last = f64::NAN;
        for v in &mut latency {
            if v.is_nan() {
                *v = last;
            } else {
                last = *v;
            }
        }
        let first_known = latency.iter().copied().find(|v| !v.is_nan()).unwrap_or(0.0);
        for v in &mut latency {
            if v.is_nan() {
                *v = first_known;
            }
        }
        let threads = r.generator.threads.max(1) as f64;
        let mut input = Input {
            latency_ms: Some(latency),
            latency_stat: stat,
            error_rate: Some(
                r.timeline
                    .iter()
                    .map(|p| {
                        if p.requests == 0 {
                            0.0
                        } else {
                            p.errors as f64 / p.requests as f64
                        }
                    })
                    .collect(),
            ),
            rps: r.timeline.iter().map(|p| p.requests as f64).collect(),
            target: r.timeline.iter().map(|p| p.target_rps).collect(),
            generator_busy: r
                .timeline
                .iter()
                .map(|p| p.generator_cpu_pct >= 90.0 * threads)
                .collect(),
            generator_kept_up: r.generator.kept_up,
            generator_notes: r.generator.notes.clone(),
            signals: Vec::new(),
            events: Vec::new(),
            error_samples: r
                .error_samples
                .iter()
                .map(|s| format!("{}: {}", s.kind.as_str(), s.message))
                .collect(),
            latency_floor_ms: sli::LATENCY_FLOOR_MS,
            thresholds_passed: (!r.thresholds.is_empty())
                .then(|| r.thresholds.iter().all(|t| t.ok)),
            left_out: Vec::new(),
        };
        if let Some(infra) = infra {
            input.add_infra(infra);
        }
        input
    }

    /// Resamples every series onto the grid and keeps the events; a series that cannot be
    /// placed on it is named in `left_out`, with why.
    pub fn add_infra(&mut self, infra: &Infra) {
        let n = self.len();
        let named = signal_names(&infra.series);
        for (s, name) in infra.series.iter().zip(named) {
            let Some(r) = resample_known(s, n) else {
                let why = match s.span_s {
                    _ if s.points.is_empty() => "it has no values".to_string(),
                    Some(p) => format!(
                        "its {} values ({p:.0} s each) cover fewer than 3 seconds of the {n} s run",
                        s.points.len()
                    ),
                    None => format!(
                        "fewer than 3 of the run's {n} seconds have a value ({} in all)",
                        s.points.len()
                    ),
                };
                self.left_out.push(format!("{}: {why}", s.key()));
                continue;
            };
            self.signals.push(Signal {
                name,
                unit: s.unit.clone(),
                values: r.values,
                held: r.held,
                span_s: s.span_s,
                starts: if s.span_s.is_some() {
                    s.points.iter().map(|p| p.0).collect()
                } else {
                    Vec::new()
                },
            });
        }
        self.events.extend(infra.events.iter().cloned());
    }
}

/// Per-second latencies (ms, `NaN` for a second with no completions) moved from the second
/// requests completed in to the second they were sent in: a request that completes in second
/// `i` after `v` ms was sent about `i + 0.5 - v / 1000` (the open model measures from the
/// intended start, so this is when it was meant to go). Each send second keeps the worst value
/// that lands on it. A stall from t=25 whose requests time out after 5 s completes only from
/// t=30; dated by completion, the users' degradation began one timeout late, and the seconds
/// in between (no completions) repeated the last fast value.
pub fn by_send_time(completed: &[f64]) -> Vec<f64> {
    let mut sent = vec![f64::NAN; completed.len()];
    for (i, &v) in completed.iter().enumerate() {
        if !v.is_finite() {
            continue;
        }
        let at = (i as f64 + 0.5 - v.max(0.0) / 1000.0)
            .floor()
            .clamp(0.0, i as f64) as usize;
        if sent[at].is_nan() || v > sent[at] {
            sent[at] = v;
        }
    }
    sent
}

/// Each series' name in the ranking: its key (`name{dims}`, a scraped endpoint's `instance`
/// among them), with its `source` added when another source has a series of the same key — a
/// ranking that lists one name twice leaves the reader to guess which process moved.
fn signal_names(series: &[Series]) -> Vec<String> {
    let keys: Vec<String> = series.iter().map(Series::key).collect();
    keys.iter()
        .zip(series)
        .map(|(key, s)| {
            let shared = keys
                .iter()
                .zip(series)
                .any(|(k, o)| k == key && o.source != s.source);
            if !shared {
                return key.clone();
            }
            let mut dimensions = s.dimensions.clone();
            dimensions.insert("source".into(), s.source.clone());
            Series {
                source: String::new(),
                name: s.name.clone(),
                unit: String::new(),
                dimensions,
                points: Vec::new(),
                span_s: None,
            }
            .key()
        })
        .collect()
}

/// A gap in a series up to this many seconds (or three of its usual intervals, if longer) is
/// bridged linearly; a longer one is held at the last value seen: a target that did not answer
/// for 20 s has no trend to draw between the two sides.
const BRIDGED_GAP_S: f64 = 5.0;

/// A series on the analysis grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Resampled {
    pub values: Vec<f64>,
    /// Whether each second was covered by data; the others were filled.
    pub known: Vec<bool>,
    /// Whether each second was held at a neighbour's value (before the first value, after the
    /// last, or in a gap too long to bridge) rather than covered or bridged.
    pub held: Vec<bool>,
}

/// Per-second means of a series over `n` seconds (edges filled with the nearest value). `None`
/// when fewer than 3 seconds are covered.
pub fn resample(s: &Series, n: usize) -> Option<Vec<f64>> {
    resample_known(s, n).map(|r| r.values)
}

/// [`resample`], saying which seconds had data. An aggregate over an interval (`span_s`) counts
/// in every second it covers, weighted by the overlap; an instantaneous sample counts in its
/// own second. Short gaps are bridged linearly, long ones held flat (see [`BRIDGED_GAP_S`]).
pub fn resample_known(s: &Series, n: usize) -> Option<Resampled> {
    let mut sum = vec![0.0; n];
    let mut weight = vec![0.0f64; n];
    let span = s.span_s.filter(|p| p.is_finite() && *p > 0.0);
    for &(t, v) in &s.points {
        if !v.is_finite() || !t.is_finite() {
            continue;
        }
        match span {
            Some(p) => {
                let (from, to) = (t.max(0.0), (t + p).min(n as f64));
                let mut i = from.floor() as usize;
                while (i as f64) < to && i < n {
                    let overlap = (to.min(i as f64 + 1.0) - from.max(i as f64)).max(0.0);
                    if overlap > 0.0 {
                        sum[i] += v * overlap;
                        weight[i] += overlap;
                    }
                    i += 1;
                }
            }
            None => {
                if t < 0.0 {
                    continue;
                }
                let i = t.floor() as usize;
                if i < n {
                    sum[i] += v;
                    weight[i] += 1.0;
                }
            }
        }
    }
    let known_at: Vec<usize> = (0..n).filter(|&i| weight[i] > 0.0).collect();
    if known_at.len() < 3 {
        return None;
    }
    let mut values: Vec<f64> = (0..n)
        .map(|i| {
            if weight[i] > 0.0 {
                sum[i] / weight[i]
            } else {
                f64::NAN
            }
        })
        .collect();
    let (first, last) = (known_at[0], known_at[known_at.len() - 1]);
    let mut held = vec![false; n];
    for i in 0..first {
        values[i] = values[first];
        held[i] = true;
    }
    for i in last + 1..n {
        values[i] = values[last];
        held[i] = true;
    }
    // The usual distance between covered seconds, so a slow but regular source (a query every
    // 15 s) is bridged and only a silence longer than its own rhythm is held.
    let steps: Vec<f64> = known_at.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let usual = stats::median(&steps);
    let bridged = BRIDGED_GAP_S.max(3.0 * usual);
    for w in known_at.windows(2) {
        let (a, b) = (w[0], w[1]);
        let bridge = (b - a) as f64 <= bridged;
        for i in a + 1..b {
            values[i] = if bridge {
                let f = (i - a) as f64 / (b - a) as f64;
                values[a] + (values[b] - values[a]) * f
            } else {
                held[i] = true;
                values[a]
            };
        }
    }
    let known = (0..n).map(|i| weight[i] > 0.0).collect();
    Some(Resampled {
        values,
        known,
        held,
    })
}

/// One candidate signal's place in the ranking.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ranked {
    pub signal: String,
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Diagnosis {
    /// False when latency or errors degraded.
    pub healthy: bool,
    pub sli: sli::SliReport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    pub findings: Vec<Finding>,
    /// Every candidate signal, best first.
    pub ranking: Vec<Ranked>,
    /// Signals whose values each cover more than the degraded window (a 60 s period for a 20 s
    /// degradation): they cannot show it, whatever caused it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub too_coarse: Vec<String>,
    /// Series that could not be placed on the run's seconds at all, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
    /// Infrastructure signals that moved notably while the users were served well (in a
    /// healthy run, anywhere; in a degraded one, outside its degraded window), furthest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<moved::Moved>,
    /// When the users degraded and nothing observed explains it: that, and what to observe next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

/// Runs the whole analysis.
pub fn analyze(input: &Input) -> Diagnosis {
    let sli = sli::assess(input);
    let capacity = knee::capacity(input, &sli);
    let scored = rank::rank(input, &sli);
    let findings = rules::findings(input, &sli, &scored);
    let moved = moved::moved(input, &sli);
    let unknown = unknown::unknowns(input, &sli, &findings, &scored);
    let ranking = scored
        .iter()
        .map(|s| Ranked {
            signal: s.name.clone(),
            score: round3(s.score),
            kind: s.kind,
        })
        .collect();
    let degraded_s = (sli.end + 1).saturating_sub(sli.onset) as f64;
    let too_coarse = input
        .signals
        .iter()
        .filter(|s| sli.degraded() && s.span_s.is_some_and(|p| p > degraded_s))
        .map(|s| s.name.clone())
        .collect();
    Diagnosis {
        healthy: sli.report.healthy,
        sli: sli.report.clone(),
        capacity,
        findings,
        ranking,
        too_coarse,
        left_out: input.left_out.clone(),
        moved,
        unknown,
    }
}

/// Diagnoses a run from its own results and stores `capacity` and `findings` in them; the
/// series it could not use are named in `infra.notes`.
pub fn apply(results: &mut Results) -> Diagnosis {
    let d = analyze(&Input::from_results(results, results.infra.as_ref()));
    results.capacity = d.capacity.clone();
    results.findings = d.findings.clone();
    results.diagnosis_notes = d.notes();
    if let Some(infra) = results.infra.as_mut() {
        for why in &d.left_out {
            let note = format!("diagnosis: left out {why}");
            if !infra.notes.contains(&note) {
                infra.notes.push(note);
            }
        }
    }
    d
}

impl Diagnosis {
    /// What `results.json` keeps of `moved` and `unknown`, as sentences.
    pub fn notes(&self) -> Vec<String> {
        self.moved
            .iter()
            .map(|m| format!("moved, not user-visible: {}", m.summary))
            .chain(self.unknown.iter().map(|u| format!("not known: {u}")))
            .collect()
    }
}

/// Up to three names, then how many more.
fn listed(names: &[String]) -> String {
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        format!("{shown} and {} more", names.len() - 3)
    } else {
        shown
    }
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The text summary `peakload diagnose` prints.
pub fn render_text(d: &Diagnosis) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "diagnosis: {}", d.sli.describe());
    if let Some(c) = &d.capacity {
        if c.reached {
            let _ = write!(
                out,
                "capacity: {:.1} rps sustained (held from t={:.0}s) before {} turned",
                c.max_sustained_rps,
                c.at_s,
                c.limited_by.as_deref().unwrap_or("latency")
            );
        } else {
            let _ = write!(
                out,
                "capacity: at least {:.1} rps (t={:.0}s); no limit reached in this run",
                c.max_sustained_rps, c.at_s
            );
        }
        if let Some(k) = c.knee_rps {
            let _ = write!(out, "; latency knee at ~{k:.1} rps");
        }
        out.push('\n');
    }
    if d.findings.is_empty() {
        if d.healthy {
            let _ = writeln!(out, "findings: none — the run stayed healthy");
        } else {
            if d.ranking.is_empty() && d.left_out.is_empty() {
                let _ = writeln!(
                    out,
                    "findings: none — no infrastructure signals were observed; add sources in [observe] (scrape, prometheus, cloudwatch) to learn why"
                );
            } else if d.ranking.is_empty() {
                let _ = writeln!(
                    out,
                    "findings: none — none of the {} observed series could be placed on the run's seconds (see below)",
                    d.left_out.len()
                );
            } else if !d.too_coarse.is_empty() {
                let _ = writeln!(
                    out,
                    "findings: none — none of the {} observed signals changed with the degradation, and {} of them average over periods longer than it lasted, so they could not show it: {}; read them at a finer period",
                    d.ranking.len(),
                    d.too_coarse.len(),
                    listed(&d.too_coarse)
                );
            } else {
                let _ = writeln!(
                    out,
                    "findings: none — none of the {} observed signals changed with the degradation; observe the component that limits (database, queue, load balancer) in [observe]",
                    d.ranking.len()
                );
            }
        }
    } else {
        let _ = writeln!(out, "findings:");
        for (i, f) in d.findings.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {} (score {:.2}) — {}, t={:.0}–{:.0}s",
                i + 1,
                f.kind.as_str(),
                f.score,
                f.signal,
                f.window.start_s,
                f.window.end_s
            );
            let _ = writeln!(out, "     {}", f.summary);
            for l in f.lines.iter().take(3) {
                let _ = writeln!(out, "     | {l}");
            }
            if let Some(r) = &f.runner_up {
                let _ = writeln!(
                    out,
                    "     runner-up: {}{} (score {:.2}), not chosen: {}",
                    r.signal,
                    r.kind
                        .map(|k| format!(" [{}]", k.as_str()))
                        .unwrap_or_default(),
                    r.score,
                    r.why_not
                );
            }
        }
    }
    if !d.moved.is_empty() {
        let _ = writeln!(out, "what moved (the users did not notice):");
        for m in &d.moved {
            let _ = writeln!(out, "  - {}", m.summary);
        }
    }
    if !d.unknown.is_empty() {
        let _ = writeln!(out, "what this diagnosis does not know:");
        for u in &d.unknown {
            let _ = writeln!(out, "  - {u}");
        }
    }
    for why in &d.left_out {
        let _ = writeln!(out, "left out: {why}");
    }
    if !d.ranking.is_empty() {
        let shown = d.ranking.len().min(10);
        let _ = writeln!(out, "ranking (top {shown} of {} signals):", d.ranking.len());
        for r in &d.ranking[..shown] {
            let _ = writeln!(
                out,
                "  {:>5.3}  {}{}",
                r.score,
                r.signal,
                r.kind
                    .map(|k| format!("  [{}]", k.as_str()))
                    .unwrap_or_default()
            );
        }
    }
    out
}

#[cfg(test)]
mod outside_tests;
#[cfg(test)]
mod tests;
