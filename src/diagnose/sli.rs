//! Did the users' experience degrade? Latency (p99) and error rate are each compared with
//! their own baseline (the first quarter of the run, skipping the first second): a second is
//! above the baseline when its rolling median exceeds both a robust margin (4 robust sigmas)
//! and a relative one; a stretch of [`MIN_RUN_S`] such seconds or more is a degradation when
//! its median is also an absolute floor above the baseline. The degradation runs from the
//! first such stretch to the end of the last. Without one, the run is healthy and no cause is
//! named.
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
        }
        if let Some(e) = &self.error_rate {
            parts.push(if e.degraded {
                format!(
                    "errors rose from t={:.0}s ({:.2}% → {:.2}%)",
                    e.start_s.unwrap_or(0.0),
                    e.baseline * 100.0,
                    e.during * 100.0
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
    onset: Option<usize>,
    end: usize,
    smoothed: Vec<f64>,
    /// Seconds above both the margin and the floor.
    over: Vec<bool>,
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
        .collect();
    let onset = material.first().map(|r| r.0);
    let end = material.last().map_or(0, |r| r.1);
    let during = match onset {
        Some(o) => median(&ys[o..=end]),
        None => median(&ys[base.1.min(ys.len())..]),
    };
    let threshold = per_second.max(med + floor);
    Detected {
        change: SliChange {
            degraded: onset.is_some(),
            baseline: round(med),
            during: round(during),
            threshold: round(threshold),
            start_s: onset.map(|o| o as f64),
            end_s: onset.map(|_| end as f64 + 1.0),
        },
        onset,
        end,
        over: ys.iter().map(|v| *v > threshold).collect(),
        smoothed: ys,
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
    };
    let mut onset: Option<usize> = None;
    let mut end = 0;
    let mut targets = Vec::new();
    let mut latency_smoothed = None;
    let mut over = vec![false; n];
    let too_short = n < base.1 + MIN_RUN_S;
    if let Some(lat) = input.latency_ms.as_ref().filter(|_| !too_short) {
        let d = detect(
            lat,
            base,
            |med, sigma| {
                (med + 4.0 * sigma.max(0.05 * med))
                    .max(med * LATENCY_RATIO)
                    .max(med + LATENCY_NOISE_MS.min(input.latency_floor_ms))
            },
            input.latency_floor_ms,
        );
        for (o, h) in over.iter_mut().zip(&d.over) {
            *o |= *h;
        }
        if let Some(o) = d.onset {
            onset = Some(onset.map_or(o, |x: usize| x.min(o)));
            end = end.max(d.end);
            targets.push(d.smoothed.clone());
        }
        latency_smoothed = Some(d.smoothed);
        report.latency_ms = Some(d.change);
    }
    if let Some(err) = input.error_rate.as_ref().filter(|_| !too_short) {
        let d = detect(
            err,
            base,
            |med, sigma| (med + 4.0 * sigma).max(med * 2.0).max(med + ERROR_FLOOR),
            ERROR_FLOOR,
        );
        for (o, h) in over.iter_mut().zip(&d.over) {
            *o |= *h;
        }
        if let Some(o) = d.onset {
            onset = Some(onset.map_or(o, |x: usize| x.min(o)));
            end = end.max(d.end);
            targets.push(d.smoothed);
        }
        report.error_rate = Some(d.change);
    }
    report.healthy = onset.is_none();
    let onset = match onset {
        Some(o) => o,
        None => {
            let reference = latency_smoothed.unwrap_or_default();
            end = n.saturating_sub(1);
            if !reference.is_empty() {
                targets.push(reference.clone());
            }
            shift_point(&reference, base.1).unwrap_or(base.1.min(n.saturating_sub(1)))
        }
    };
    Sli {
        report,
        baseline: base,
        onset,
        end: end.max(onset),
        targets,
        over,
    }
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
