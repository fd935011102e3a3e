//! Did the users' experience degrade? Latency (p99) and error rate are each compared with
//! their own baseline (the first quarter of the run, skipping the first second): a second is
//! above the baseline when its rolling median exceeds both a robust margin (4 robust sigmas)
//! and a relative one; a stretch of [`MIN_RUN_S`] such seconds or more is a degradation when
//! its median is also an absolute floor above the baseline. Stretches with no calm between
//! them (latency and errors both back within their margins for [`RECOVERED_S`] seconds) form
//! one episode; when a run has several, the findings explain the heaviest (how long and how far
//! above the baseline), and the others are listed: a 3 s stall early in a run does not date a
//! fault that began later, nor does a later fault hide an earlier one. Without a stretch, the
//! run is healthy and no cause is named.
//!
//! # The margins
//!
//! Latency's seconds must exceed the baseline by 4 robust sigmas, reach 1.5× it
//! ([`LATENCY_RATIO`]) and be 5 ms above it ([`LATENCY_NOISE_MS`]); the stretch's median must
//! be at least 20 ms above it ([`LATENCY_FLOOR_MS`]):
//!
//! | baseline → during | verdict | why |
//! |---|---|---|
//! | 10 ms → 19 ms | healthy | +9 ms: below the floor |
//! | 3 ms → 22 ms | healthy | +19 ms: below the floor |
//! | 5 ms → 30 ms | degraded | +25 ms and 6× |
//! | 20 ms → 400 ms | degraded | +380 ms and 20× |
//! | 300 ms → 420 ms | healthy | +120 ms but only 1.4× |
//!
//! The floor exists because a relative margin alone is meaningless on fast services: on
//! loopback or inside one data centre a p99 of a few milliseconds doubles from scheduling
//! jitter, a GC pause or a generator sharing the machine, and a report naming a root cause
//! for 10 ms → 19 ms sends people chasing noise. 20 ms is a fifth of the ~100 ms within which
//! a response still feels instant, a tenth of a typical 200 ms p99 objective, and larger than
//! one scheduler time slice or a minor GC pause; a change smaller than that is rarely worth
//! a root-cause report. CSV input has no unit, so there only the relative and robust margins
//! apply (`Input::latency_floor_ms` = 0).
//!
//! The floor judges the stretch, not each second, so a climb is dated from where it left the
//! noise rather than from where it crossed the floor: the ranking compares causes with the
//! real start.
//!
//! Errors' seconds must exceed 4 robust sigmas, twice the baseline rate and the baseline plus
//! 2 percentage points ([`ERROR_FLOOR`]), so a few one-off failures do not count.
//!
//! The scenario's thresholds are judged separately (`gate`): a run can hold every threshold
//! and still have degraded against its own baseline; the verdict then says so, so a reader
//! does not mistake it for a breach.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::stats::{median, median_mad, rolling_median, sustained_runs};
use super::Input;

/// Seconds in a row above the threshold before latency or errors count as degraded.
pub const MIN_RUN_S: usize = 3;
/// Latency: at least this many times the baseline p99…
pub const LATENCY_RATIO: f64 = 1.5;
/// …and a degraded stretch's median at least this many milliseconds above it (for results;
/// see `Input::latency_floor_ms` and the module doc for why 20).
pub const LATENCY_FLOOR_MS: f64 = 20.0;
/// Each second of a degraded stretch at least this many milliseconds above the baseline too:
/// at a few milliseconds, 1.5× is within a loopback p99's noise, and noisy seconds just before
/// a real change would otherwise date it early.
pub const LATENCY_NOISE_MS: f64 = 5.0;
/// Errors: at least twice the baseline rate and this much above it (a fraction).
pub const ERROR_FLOOR: f64 = 0.02;

/// Seconds in a row with latency and errors both back within their margins after which a
/// later degradation is a separate episode. A second within the margins between two
/// stretches is the noise of a saturated service (a burst of fast answers), not a recovery.
pub const RECOVERED_S: usize = 2;

/// A second's excess above the baseline counts at most this many times the threshold's
/// distance when episodes are weighed.
const EXCESS_CAP: f64 = 4.0;

/// One stretch of degradation, when a run had more than one.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Episode {
    pub start_s: f64,
    pub end_s: f64,
    /// The episode the findings explain: the heaviest (how long and how far above the
    /// baseline).
    pub diagnosed: bool,
}

/// Where an SLI stood before and during the degradation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SliChange {
    pub degraded: bool,
    /// Median over the baseline (ms for latency, a fraction for errors).
    pub baseline: f64,
    /// Median over the degraded window, or over the rest of the run when healthy.
    pub during: f64,
    /// The level a degraded stretch had to exceed: its seconds the robust and relative
    /// margins, its median the absolute floor above the baseline; the larger of the two.
    pub threshold: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_s: Option<f64>,
    /// When it did not degrade: its worst stretch above the per-second margin (too short, or
    /// too small for the floor), so a healthy verdict still says what the users went through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst: Option<Stretch>,
}

/// A stretch of seconds above the margin that did not add up to a degradation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Stretch {
    pub start_s: f64,
    pub end_s: f64,
    /// The highest per-second value in it (unsmoothed).
    pub peak: f64,
    /// Its median (of the smoothed values).
    pub median: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SliReport {
    pub healthy: bool,
    /// The per-second latency quantile judged: `p99`, `p95` or `p50` (see `Input`).
    #[serde(default)]
    pub latency_stat: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<SliChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<SliChange>,
    /// Whether every threshold of the scenario passed; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds_passed: Option<bool>,
    /// The separate stretches of degradation, when there was more than one; the findings
    /// explain the one marked `diagnosed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub episodes: Vec<Episode>,
}

impl SliReport {
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = &self.latency_ms {
            parts.push(if l.degraded {
                format!(
                    "{} latency degraded from t={:.0}s ({:.1} ms → {:.1} ms)",
                    self.latency_stat,
                    l.start_s.unwrap_or(0.0),
                    l.baseline,
                    l.during
                )
            } else if l.during > l.baseline * 1.2 {
                // It moved, just not enough: show by how much, so a reader who sees the rise
                // elsewhere knows it was judged and why it was not called a degradation.
                format!(
                    "{} latency rose from {:.1} ms to {:.1} ms, below the {:.1} ms that counts as degraded",
                    self.latency_stat, l.baseline, l.during, l.threshold
                )
            } else {
                format!(
                    "{} latency stayed near {:.1} ms",
                    self.latency_stat, l.baseline
                )
            });
            // The median over the rest of the run hides an episode: name the worst one.
            if let (false, Some(w), Some(last)) = (l.degraded, &l.worst, parts.last_mut()) {
                let _ = write!(
                    last,
                    "; its worst stretch, t={:.0}–{:.0}s, reached {:.1} ms (median {:.1} ms, against {:.1} ms before)",
                    w.start_s, w.end_s, w.peak, w.median, l.baseline
                );
                if !last.contains("counts as degraded") {
                    let _ = write!(
                        last,
                        ", below the {:.1} ms that counts as degraded",
                        l.threshold
                    );
                }
            }
        }
        if let Some(e) = &self.error_rate {
            parts.push(if e.degraded {
                format!(
                    "errors rose from t={:.0}s ({:.2}% → {:.2}%)",
                    e.start_s.unwrap_or(0.0),
                    e.baseline * 100.0,
                    e.during * 100.0
                )
            } else if let Some(w) = &e.worst {
                format!(
                    "errors stayed near {:.2}%, at worst {:.2}% over t={:.0}–{:.0}s",
                    e.baseline * 100.0,
                    w.peak * 100.0,
                    w.start_s,
                    w.end_s
                )
            } else {
                format!("errors stayed near {:.2}%", e.baseline * 100.0)
            });
        }
        if parts.is_empty() {
            return "no user-facing signal to judge".into();
        }
        let verdict = if self.healthy { "healthy" } else { "degraded" };
        let mut text = format!("{verdict}: {}", parts.join("; "));
        if !self.healthy && self.thresholds_passed == Some(true) {
            text.push_str(
                " — against the run's own baseline; every threshold of the scenario passed",
            );
        }
        if !self.episodes.is_empty() {
            let spans: Vec<String> = self
                .episodes
                .iter()
                .map(|e| {
                    format!(
                        "t={:.0}–{:.0}s{}",
                        e.start_s,
                        e.end_s,
                        if e.diagnosed { " (diagnosed)" } else { "" }
                    )
                })
                .collect();
            text.push_str(&format!(
                "; {} separate stretches: {}",
                spans.len(),
                spans.join(", ")
            ));
        }
        text
    }
}

/// The assessment plus the indices the ranking works with.
#[derive(Debug, Clone)]
pub struct Sli {
    pub report: SliReport,
    /// The baseline window `[start, end)`.
    pub baseline: (usize, usize),
    /// First degraded second; for a healthy run, where latency shifted most (so the ranking
    /// still says what moved with it).
    pub onset: usize,
    /// Last degraded second (inclusive).
    pub end: usize,
    /// The SLIs the ranking correlates with: smoothed latency and/or error rate.
    pub targets: Vec<Vec<f64>>,
    /// Per second: latency or errors above `threshold` (whether or not it lasted), so capacity
    /// counts only the seconds users were served well.
    pub over: Vec<bool>,
}

impl Sli {
    pub fn degraded(&self) -> bool {
        !self.report.healthy
    }
}

/// The baseline window for a run of `n` seconds.
pub fn baseline_window(n: usize) -> (usize, usize) {
    let start = usize::from(n > 12);
    let end = (n / 4).max(start + 5).min(n.saturating_sub(MIN_RUN_S));
    (start, end.max(start + 1).min(n))
}

struct Detected {
    change: SliChange,
    /// The degraded stretches `(first, last)`, in time order.
    material: Vec<(usize, usize)>,
    smoothed: Vec<f64>,
    /// Seconds above the per-second margin: not back to normal.
    hit: Vec<bool>,
    /// Seconds above both the margin and the floor.
    over: Vec<bool>,
    /// Per second, how far above the baseline in units of the threshold's distance from it
    /// (0 at or below the baseline, 1 at the threshold), so latency and errors compare.
    excess: Vec<f64>,
}

/// `margin(median, sigma)`: the value a second must exceed to count; `floor`: how far above
/// the baseline a stretch of such seconds must be (its median) to count as degraded.
fn detect(
    y: &[f64],
    base: (usize, usize),
    margin: impl Fn(f64, f64) -> f64,
    floor: f64,
) -> Detected {
    let w = if y.len() >= 600 { 5 } else { 3 };
    let ys = rolling_median(y, w);
    let (med, mad) = median_mad(&ys[base.0..base.1]);
    let sigma = 1.4826 * mad;
    let per_second = margin(med, sigma);
    let hit: Vec<bool> = ys.iter().map(|v| *v > per_second).collect();
    // The floor judges whole stretches, not seconds: a climb is located from where it left
    // the noise, not from where it crossed the floor, so the ranking sees its real start.
    let material: Vec<(usize, usize)> = sustained_runs(&hit, base.0, MIN_RUN_S)
        .into_iter()
        .filter(|&(a, b)| median(&ys[a..=b]) > med + floor)
        .map(|(a, b)| (past_blip(y, a, b, per_second), b))
        .collect();
    let onset = material.first().map(|r| r.0);
    let end = material.last().map_or(0, |r| r.1);
    let threshold = per_second.max(med + floor);
    let reach = (threshold - med).max(1e-12);
    let during = match onset {
        Some(o) => median(&ys[o..=end]),
        None => median(&ys[base.1.min(ys.len())..]),
    };
    // The heaviest stretch above the margin (seconds × excess, capped as episodes are),
    // told only when nothing degraded.
    let worst = sustained_runs(&hit, base.0, 2)
        .into_iter()
        .map(|(a, b)| {
            let weight: f64 = (a..=b)
                .map(|i| ((ys[i] - med) / reach).clamp(0.0, EXCESS_CAP))
                .sum();
            (a, b, weight)
        })
        .max_by(|x, y| x.2.total_cmp(&y.2))
        .filter(|_| onset.is_none())
        .map(|(a, b, _)| Stretch {
            start_s: a as f64,
            end_s: b as f64 + 1.0,
            peak: round(
                y[a..=b]
                    .iter()
                    .copied()
                    .filter(|v| v.is_finite())
                    .fold(f64::MIN, f64::max),
            ),
            median: round(median(&ys[a..=b])),
        });
    Detected {
        change: SliChange {
            degraded: onset.is_some(),
            baseline: round(med),
            during: round(during),
            threshold: round(threshold),
            start_s: onset.map(|o| o as f64),
            end_s: onset.map(|_| end as f64 + 1.0),
            worst,
        },
        material,
        over: ys.iter().map(|v| *v > threshold).collect(),
        excess: ys.iter().map(|v| ((v - med) / reach).max(0.0)).collect(),
        hit,
        smoothed: ys,
    }
}

/// Where the stretch `a..=b` of smoothed seconds above `margin` began to hold in the seconds
/// themselves: a blip of fewer than [`MIN_RUN_S`] seconds above it, then a second back within
/// it, then the degradation — the rolling median joins the three and dates the degradation
/// from the blip. A 2 s blip 4 s before an API was stopped then dated the users' degradation
/// before the stop, and the stop (`up` falling at the real onset) read as a consequence. The
/// stretch keeps its start when its own seconds never hold for [`MIN_RUN_S`] in a row (a
/// saturated service's noise) or when more than a blip came before they did.
fn past_blip(y: &[f64], a: usize, b: usize, margin: f64) -> usize {
    let raw: Vec<bool> = y[a..=b].iter().map(|v| *v > margin).collect();
    // Full runs only: `sustained_runs` also takes 2 s at the end of what it is given.
    let held = sustained_runs(&raw, 0, MIN_RUN_S)
        .into_iter()
        .find(|&(s, e)| e + 1 - s >= MIN_RUN_S);
    match held {
        Some((s, _)) if s > 0 && raw[..s].iter().filter(|h| **h).count() < MIN_RUN_S => a + s,
        _ => a,
    }
}

impl Detected {
    fn degraded_within(&self, first: usize, last: usize) -> bool {
        self.material.iter().any(|&(a, b)| a <= last && b >= first)
    }

    /// The change over the episode `first..=last` only: its stretches, its median.
    fn change_within(self, first: usize, last: usize) -> SliChange {
        let runs: Vec<(usize, usize)> = self
            .material
            .iter()
            .copied()
            .filter(|&(a, b)| a <= last && b >= first)
            .collect();
        let (from, to) = match (runs.first(), runs.last()) {
            (Some(f), Some(l)) => (f.0, l.1),
            _ => (first, last),
        };
        let to = to.min(self.smoothed.len().saturating_sub(1));
        SliChange {
            degraded: !runs.is_empty(),
            during: if from <= to {
                round(median(&self.smoothed[from..=to]))
            } else {
                self.change.during
            },
            start_s: (!runs.is_empty()).then_some(from as f64),
            end_s: (!runs.is_empty()).then_some(to as f64 + 1.0),
            worst: None,
            ..self.change
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

pub fn assess(input: &Input) -> Sli {
    let n = input.len();
    let base = baseline_window(n);
    let mut report = SliReport {
        healthy: true,
        latency_stat: input.latency_stat.to_string(),
        latency_ms: None,
        error_rate: None,
        thresholds_passed: input.thresholds_passed,
        episodes: Vec::new(),
    };
    let too_short = n < base.1 + MIN_RUN_S;
    let latency = input.latency_ms.as_ref().filter(|_| !too_short).map(|lat| {
        detect(
            lat,
            base,
            |med, sigma| {
                (med + 4.0 * sigma.max(0.05 * med))
                    .max(med * LATENCY_RATIO)
                    .max(med + LATENCY_NOISE_MS.min(input.latency_floor_ms))
            },
            input.latency_floor_ms,
        )
    });
    let errors = input.error_rate.as_ref().filter(|_| !too_short).map(|err| {
        detect(
            err,
            base,
            |med, sigma| (med + 4.0 * sigma).max(med * 2.0).max(med + ERROR_FLOOR),
            ERROR_FLOOR,
        )
    });
    let detected: Vec<&Detected> = latency.iter().chain(&errors).collect();
    let mut over = vec![false; n];
    for d in &detected {
        for (o, h) in over.iter_mut().zip(&d.over) {
            *o |= *h;
        }
    }
    let found = episodes(&detected, n);
    let main = found
        .iter()
        .copied()
        .max_by(|a, b| a.2.total_cmp(&b.2).then_with(|| b.0.cmp(&a.0)));
    let mut targets: Vec<Vec<f64>> = detected
        .iter()
        .filter(|d| main.is_some_and(|(a, b, _)| d.degraded_within(a, b)))
        .map(|d| d.smoothed.clone())
        .collect();
    let (onset, end) = match main {
        Some((first, last, _)) => {
            report.healthy = false;
            if found.len() > 1 {
                report.episodes = found
                    .iter()
                    .map(|&(a, b, _)| Episode {
                        start_s: a as f64,
                        end_s: b as f64 + 1.0,
                        diagnosed: a == first,
                    })
                    .collect();
            }
            (first, last)
        }
        None => {
            let reference = latency
                .as_ref()
                .map(|d| d.smoothed.clone())
                .unwrap_or_default();
            if !reference.is_empty() {
                targets.push(reference.clone());
            }
            let at = shift_point(&reference, base.1).unwrap_or(base.1.min(n.saturating_sub(1)));
            (at, n.saturating_sub(1))
        }
    };
    // What the users saw, told of the episode the findings explain.
    let told = |d: Detected| match main {
        Some((a, b, _)) => d.change_within(a, b),
        None => d.change,
    };
    report.latency_ms = latency.map(told);
    report.error_rate = errors.map(told);
    Sli {
        report,
        baseline: base,
        onset,
        end: end.max(onset),
        targets,
        over,
    }
}

/// The degraded stretches of latency and errors together, as episodes `(first, last,
/// weight)`: stretches join when the users were never back to normal (neither SLI within its
/// margin for [`RECOVERED_S`] seconds) between them. The weight sums each second's excess
/// (capped, so one absurd second does not outweigh a long degradation).
fn episodes(detected: &[&Detected], n: usize) -> Vec<(usize, usize, f64)> {
    let mut runs: Vec<(usize, usize)> = detected
        .iter()
        .flat_map(|d| d.material.iter().copied())
        .collect();
    runs.sort_unstable();
    let normal = |i: usize| {
        detected
            .iter()
            .all(|d| !d.hit.get(i).copied().unwrap_or(false))
    };
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (a, b) in runs {
        if let Some(last) = out.last_mut() {
            let recovered = (last.1 + 1..a)
                .collect::<Vec<_>>()
                .split(|&i| !normal(i))
                .any(|calm| calm.len() >= RECOVERED_S);
            if !recovered {
                last.1 = last.1.max(b);
                continue;
            }
        }
        out.push((a, b));
    }
    out.into_iter()
        .map(|(a, b)| {
            let weight = (a..=b.min(n.saturating_sub(1)))
                .map(|i| {
                    detected
                        .iter()
                        .map(|d| d.excess.get(i).copied().unwrap_or(0.0))
                        .fold(0.0, f64::max)
                        .min(EXCESS_CAP)
                })
                .sum();
            (a, b, weight)
        })
        .collect()
}

/// Where the mean shifts most (CUSUM-style split), searching from `from`.
fn shift_point(y: &[f64], from: usize) -> Option<usize> {
    let n = y.len();
    if n < from.max(2) + 4 {
        return None;
    }
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0);
    for v in y {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + v);
    }
    let total = prefix[n];
    let mut best = (0.0, None);
    for (k, &left) in prefix.iter().enumerate().take(n - 2).skip(from.max(2)) {
        let (nl, nr) = (k as f64, (n - k) as f64);
        let stat = (nl * nr / n as f64).sqrt() * (left / nl - (total - left) / nr).abs();
        if stat > best.0 {
            best = (stat, Some(k));
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stretch_starts_past_a_blip_only_where_its_seconds_hold() {
        let y = |hits: &[u8]| -> Vec<f64> { hits.iter().map(|h| f64::from(*h) * 10.0).collect() };
        // A 2 s blip, a calm second, then 3 s and more above the margin.
        assert_eq!(past_blip(&y(&[1, 1, 0, 1, 1, 1, 1]), 0, 6, 5.0), 3);
        // Never 3 s in a row: kept, even with 2 s at the end of the stretch.
        assert_eq!(past_blip(&y(&[1, 1, 0, 1, 1]), 0, 4, 5.0), 0);
        // Held from the first second, or more than a blip before: kept.
        assert_eq!(past_blip(&y(&[1, 1, 1, 0, 1, 1, 1]), 0, 6, 5.0), 0);
        assert_eq!(past_blip(&y(&[1, 0, 1, 1, 0, 1, 1, 1]), 0, 7, 5.0), 0);
        // Offsets are the stretch's own.
        assert_eq!(past_blip(&y(&[0, 0, 1, 0, 1, 1, 1]), 2, 6, 5.0), 4);
    }
}
