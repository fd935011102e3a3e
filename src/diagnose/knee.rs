//! Capacity: the highest throughput the system held before the users' experience turned,
//! and the knee of latency against throughput.
//!
//! Throughput is the rolling median of achieved requests/s (5 s; 3 s in short runs). A level
//! counts as **sustained** when it was held for [`SUSTAIN_S`] seconds in a row (fewer in short
//! runs, see [`sustain_s`]) with every one of those seconds within [`SUSTAIN_TOLERANCE`] below
//! it, and with latency and errors at or under the thresholds that define a degraded second
//! (and, when the run degraded, before the turn). A window's level is its median, lowered to
//! `min / (1 - tolerance)` when it dipped further than that: on a ramp, the level held is the
//! one the window started from, not the one it passed on its way up; a stage held for only
//! two seconds before latency turned is not sustained. `at_s` is where the window starts.
//!
//! The knee is found on latency (rolling median)
//! binned by throughput: with both axes normalised to 0..1, the bin furthest below the chord
//! from the lowest to the highest throughput (the Kneedle method); reported only when latency
//! at the top is at least 1.5× that at the bottom and the run covered a range of loads.

use super::sli::Sli;
use super::stats::{median, rolling_median};
use super::{round3, Capacity, Input};

/// Seconds a throughput must be held to count as sustained.
pub const SUSTAIN_S: usize = 10;
/// How far below a level (a fraction) a second may dip and still count as holding it: a 5 s
/// median of Poisson arrivals at 30/s wanders about this much.
pub const SUSTAIN_TOLERANCE: f64 = 0.10;

/// Seconds a level must be held in a run of `n` seconds: [`SUSTAIN_S`], or a sixth of a
/// short run (at least 3).
pub fn sustain_s(n: usize) -> usize {
    (n / 6).clamp(3, SUSTAIN_S)
}

/// The highest level held for `hold` seconds in a row among seconds where `ok`, and where
/// its window starts; with no such stretch, over the longest one there is.
pub fn sustained(rps: &[f64], ok: &[bool], hold: usize) -> Option<(usize, f64)> {
    let n = rps.len().min(ok.len());
    let mut longest = 0;
    let mut run = 0;
    for &o in &ok[..n] {
        run = if o { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let hold = hold.min(longest);
    if hold == 0 {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    let mut buf = Vec::with_capacity(hold);
    for i in 0..=n - hold {
        let window = &rps[i..i + hold];
        if !ok[i..i + hold].iter().all(|o| *o) || window.iter().any(|v| !v.is_finite()) {
            continue;
        }
        buf.clear();
        buf.extend_from_slice(window);
        let med = median(&buf);
        let lo = window.iter().copied().fold(f64::INFINITY, f64::min);
        let level = (lo / (1.0 - SUSTAIN_TOLERANCE)).min(med);
        if best.is_none_or(|(_, b)| level > b) {
            best = Some((i, level));
        }
    }
    best
}

pub fn capacity(input: &Input, sli: &Sli) -> Option<Capacity> {
    let n = input.len();
    if n < 3 {
        return None;
    }
    let w = if n >= 20 { 5 } else { 3 };
    let rs = rolling_median(&input.rps, w);
    let degraded = sli.degraded();
    // The last second is usually partial (the drain); leave it out when there is a choice.
    let last = if n > 4 { n - 1 } else { n };
    let until = if degraded { sli.onset.max(1) } else { last };
    let lat = input
        .latency_ms
        .as_ref()
        .map(|l| rolling_median(l, w))
        .unwrap_or_default();
    let ok: Vec<bool> = (0..n).map(|i| i < until && !sli.over[i]).collect();
    let (at, max) = sustained(&rs, &ok, sustain_s(n)).unwrap_or((0, 0.0));
    let limited_by = degraded.then(|| {
        let lat_first = sli
            .report
            .latency_ms
            .as_ref()
            .and_then(|l| l.start_s)
            .unwrap_or(f64::INFINITY);
        let err_first = sli
            .report
            .error_rate
            .as_ref()
            .and_then(|e| e.start_s)
            .unwrap_or(f64::INFINITY);
        if err_first < lat_first {
            "errors"
        } else {
            "latency"
        }
        .to_string()
    });
    Some(Capacity {
        max_sustained_rps: round3(max.max(0.0)),
        at_s: at as f64,
        reached: degraded,
        limited_by,
        degraded_at_s: degraded.then_some(sli.onset as f64),
        knee_rps: if lat.is_empty() {
            None
        } else {
            knee(&rs[..last], &lat[..last])
        },
        latency_ms_before: sli.report.latency_ms.as_ref().map_or(0.0, |l| l.baseline),
        latency_ms_during: sli
            .report
            .latency_ms
            .as_ref()
            .filter(|l| l.degraded)
            .map(|l| l.during),
    })
}

/// Throughput at the knee of latency against throughput, if the data shows one.
pub fn knee(rps: &[f64], latency: &[f64]) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = rps
        .iter()
        .zip(latency)
        .filter(|(r, l)| r.is_finite() && l.is_finite() && **r > 0.0)
        .map(|(r, l)| (*r, *l))
        .collect();
    if pts.len() < 10 {
        return None;
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let bins = 20.min(pts.len() / 3).max(4);
    let per = pts.len().div_ceil(bins);
    let curve: Vec<(f64, f64)> = pts
        .chunks(per)
        .map(|c| {
            let x: Vec<f64> = c.iter().map(|p| p.0).collect();
            let y: Vec<f64> = c.iter().map(|p| p.1).collect();
            (median(&x), median(&y))
        })
        .collect();
    let (x0, y0) = curve[0];
    let (x1, _) = curve[curve.len() - 1];
    let y_max = curve.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let y_min = curve.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    if x1 < x0 * 1.3 || y_max < 1.5 * y0.max(1e-9) || y_max - y_min <= 0.0 {
        return None;
    }
    let (mut best, mut at) = (0.0, None);
    for &(x, y) in &curve {
        let xn = (x - x0) / (x1 - x0);
        let yn = (y - y_min) / (y_max - y_min);
        let d = xn - yn;
        if d > best {
            best = d;
            at = Some(x);
        }
    }
    at.map(round3)
}
