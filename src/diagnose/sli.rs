//! Did the users' experience degrade? Latency (p99) and error rate are each compared with
//! their own baseline (the first quarter of the run, skipping the first second): a second is
//! degraded when the rolling median is above every one of a robust margin (4 robust sigmas), a
//! relative margin and an absolute floor, and the SLI degraded when that lasts
//! [`MIN_RUN_S`] seconds in a row. Below that, the run is healthy and no cause is named.

use serde::{Deserialize, Serialize};

use super::stats::{first_sustained, median, median_mad, rolling_median};
use super::Input;

/// Seconds in a row above the threshold before latency or errors count as degraded.
pub const MIN_RUN_S: usize = 3;
/// Latency: at least this many times the baseline p99…
pub const LATENCY_RATIO: f64 = 1.5;
/// …and at least this many milliseconds above it (for results; see `Input::latency_floor_ms`).
pub const LATENCY_FLOOR_MS: f64 = 5.0;
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
    /// The value a second had to exceed to count as degraded.
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
        format!("{verdict}: {}", parts.join("; "))
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
}

fn detect(y: &[f64], base: (usize, usize), threshold: impl Fn(f64, f64) -> f64) -> Detected {
    let w = if y.len() >= 600 { 5 } else { 3 };
    let ys = rolling_median(y, w);
    let (med, mad) = median_mad(&ys[base.0..base.1]);
    let sigma = 1.4826 * mad;
    let thr = threshold(med, sigma);
    let hit: Vec<bool> = ys.iter().map(|v| *v > thr).collect();
    let onset = first_sustained(&hit, base.0, MIN_RUN_S);
    let end = onset.map_or(0, |o| (o..ys.len()).rev().find(|&i| hit[i]).unwrap_or(o));
    let during = match onset {
        Some(o) => median(&ys[o..=end]),
        None => median(&ys[base.1.min(ys.len())..]),
    };
    Detected {
        change: SliChange {
            degraded: onset.is_some(),
            baseline: round(med),
            during: round(during),
            threshold: round(thr),
            start_s: onset.map(|o| o as f64),
            end_s: onset.map(|_| end as f64 + 1.0),
        },
        onset,
        end,
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
    };
    let mut onset: Option<usize> = None;
    let mut end = 0;
    let mut targets = Vec::new();
    let mut latency_smoothed = None;
    let too_short = n < base.1 + MIN_RUN_S;
    if let Some(lat) = input.latency_ms.as_ref().filter(|_| !too_short) {
        let d = detect(lat, base, |med, sigma| {
            (med + 4.0 * sigma.max(0.05 * med))
                .max(med * LATENCY_RATIO)
                .max(med + input.latency_floor_ms)
        });
        if let Some(o) = d.onset {
            onset = Some(onset.map_or(o, |x: usize| x.min(o)));
            end = end.max(d.end);
            targets.push(d.smoothed.clone());
        }
        latency_smoothed = Some(d.smoothed);
        report.latency_ms = Some(d.change);
    }
    if let Some(err) = input.error_rate.as_ref().filter(|_| !too_short) {
        let d = detect(err, base, |med, sigma| {
            (med + 4.0 * sigma).max(med * 2.0).max(med + ERROR_FLOOR)
        });
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
