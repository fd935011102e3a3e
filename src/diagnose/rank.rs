//! Scores every signal by how well it explains the degradation.
//!
//! For each signal (smoothed with a rolling median of 3 s):
//! - **abnormality** `a = z / (z + 4)`, with `z` the shift of its median during the degraded
//!   window from its own baseline median — or over the stretch of that window where the signal
//!   held its own change, when that stretch began within the lead credited, covers a quarter
//!   of the window or more and shifted further (a cause over before the users recovered) —
//!   in robust sigmas (1.4826 × MAD, floored at 5 % of
//!   the baseline level and 2 % of the signal's range so flat baselines do not divide by 0);
//!   `z` is capped at twice the *local* jump: the step across the SLI onset (medians of `w` s
//!   before the lead window against `w` s after the onset) over the same-span steps the signal
//!   took before the onset. A random walk drifts far from its baseline but its step at the onset is
//!   ordinary; a cause's is not;
//! - **alignment** `c`: the best Spearman correlation with the degraded SLI over lags
//!   `0..=L` s, the signal leading (`L` = a tenth of the run, 2 to 30 s), both taken without
//!   the planned load's part: each is replaced by its residual from a least-squares line on
//!   the planned load, fitted before the SLI's onset less `L` (where no cause has moved yet).
//!   On a ramp a mid-run step in the cause and in the SLI both rank-correlate with the rising
//!   load, so partialling the load out over the whole run took the step away with it; a line
//!   fitted before the change removes only what the load explains, and a signal that merely
//!   follows the load is left with noise. `c` is then reduced when the signal tracks achieved
//!   throughput better than it tracks the SLI;
//! - **precedence** `g`: 1 when the signal's own change (4 robust sigmas, 3 s running; 2 s
//!   when the degradation lasted under 6 s) came at or before the SLI's, 0.85 within one
//!   second after it (a gauge read at the next scrape), decaying when it came later (a
//!   consequence) or much earlier (unrelated drift); 0.05 when it never changed. The change
//!   dated is the first that reaches into the degradation or the lead credited before it: one
//!   that came and went long before belongs to another episode. Seconds held at a value seen
//!   before a silence (a target that stopped answering) date nothing: no sample measured them.
//!
//! - **magnitude** `m`: a signal measured in seconds (a wait, a duration) cannot explain more
//!   of the users' p99 rise than its own rise; when latency degraded, `m` is the square root of
//!   that share (floored at 0.05, capped at 1). Other units are not comparable and keep 1.
//!
//! A signal whose values each aggregate an interval (`span_s`: a CloudWatch period, a count of
//! log lines per interval) places a change only to within that interval: its alignment `c` is
//! taken against the users' SLI aggregated over the same intervals, its baseline and its usual
//! steps end a span before the onset (where the aggregate of the onset's interval may already
//! lean), and its lead is moved a span toward 0, a lead shorter than the span counting as none
//! (see [`credible_lead`]): a 10 s average that first leans at t=17 s does not lead a p95 that
//! rose at 25 s.
//!
//! The score is `a × c × g × m × r`, in 0..1, where `r` compares the size of each change with
//! the others' (see [`by_magnitude`]): `a` saturates, so without `r` a change of 20 sigmas and
//! one of 3000 score alike and the correlation with the SLI, often a few hundredths apart
//! between a cause and its effects, decides. Among signals of one unit that explain the
//! degradation about as well as the best, the one that moved furthest against its own noise is
//! preferred (a fault moves its source most; what it reaches moves less against noise of its
//! own, as in the linear causal graphs of PyRCA's and CIRCA's simulators, `bench/rca`).

use super::rules::classify;
use super::sli::{Sli, MIN_RUN_S};
use super::stats::{lagged, median, median_mad, ranks, rolling_median, sustained_runs};
use super::Input;
use crate::record::findings::Kind;

/// Robust sigmas a signal must move to count as changed.
pub const CHANGE_Z: f64 = 4.0;

#[derive(Debug, Clone)]
pub struct Scored {
    pub name: String,
    pub unit: String,
    pub kind: Option<Kind>,
    pub score: f64,
    pub z: f64,
    /// The change in robust sigmas of the signal's own baseline, less floored than `z` (see
    /// [`by_magnitude`]); NaN when its baseline had no spread.
    pub magnitude: f64,
    pub baseline: f64,
    pub during: f64,
    /// +1 when the signal rose, -1 when it fell.
    pub direction: f64,
    /// When the signal changed (s), if it did.
    pub changed_at: Option<usize>,
    /// SLI onset minus the signal's change: positive when the signal led (for an aggregate,
    /// see [`credible_lead`]).
    pub lead_s: Option<f64>,
    /// The interval each of the signal's values aggregated, if any.
    pub span_s: Option<f64>,
    /// Best lagged rank correlation with the SLI (after the load discount).
    pub correlation: f64,
    /// Rank correlation with achieved throughput.
    pub load_correlation: f64,
}

/// How far ahead a cause may lead, in seconds, for a run of `n` seconds.
pub fn max_lag(n: usize) -> usize {
    (n / 10).clamp(2, 30)
}

pub fn rank(input: &Input, sli: &Sli) -> Vec<Scored> {
    let n = input.len();
    if n < 6 || sli.targets.is_empty() {
        return input
            .signals
            .iter()
            .map(|s| Scored {
                name: s.name.clone(),
                unit: s.unit.clone(),
                kind: classify(&s.name, 1.0),
                score: 0.0,
                z: 0.0,
                magnitude: 0.0,
                baseline: 0.0,
                during: 0.0,
                direction: 0.0,
                changed_at: None,
                lead_s: None,
                span_s: s.span_s,
                correlation: 0.0,
                load_correlation: 0.0,
            })
            .collect();
    }
    let lag_max = max_lag(n) as isize;
    let (b0, b1) = sli.baseline;
    // The load's own effect is fitted where no cause has moved yet: before the longest lead
    // the ranking credits, and at least over the baseline.
    let fit = b0..sli.onset.saturating_sub(lag_max as usize).max(b1).min(n);
    let planned = non_constant(&input.target);
    let without_load = |x: &[f64]| match planned {
        Some(load) => without_load(x, load, fit.clone()),
        None => x.to_vec(),
    };
    let target_ranks: Vec<Vec<f64>> = sli
        .targets
        .iter()
        .map(|t| ranks(&without_load(t)))
        .collect();
    let achieved = non_constant(&input.rps).map(|r| ranks(&rolling_median(r, 3)));
    let p99_rise_ms = sli
        .report
        .latency_ms
        .as_ref()
        .filter(|l| l.degraded)
        .map(|l| l.during - l.baseline);
    let base_end = b1.min(sli.onset.saturating_sub(1)).max(b0 + 3).min(n);
    let mut out: Vec<Scored> = input
        .signals
        .iter()
        .map(|s| {
            let xs = rolling_median(&s.values, 3);
            // An aggregate's interval holding the onset may lean already from its start.
            let blur = s
                .span_s
                .filter(|p| *p > 0.0)
                .map_or(0, |p| p.ceil() as usize);
            let base_end = if blur > 0 {
                base_end
                    .min(sli.onset.saturating_sub(blur))
                    .max(b0 + 3)
                    .min(n)
            } else {
                base_end
            };
            let (med, mad) = median_mad(&xs[b0..base_end]);
            let (lo, hi) = xs
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(*v), hi.max(*v))
                });
            let noise = (1.4826 * mad).max(0.05 * med.abs());
            let scale = noise.max(0.02 * (hi - lo)).max(1e-12);
            // When it changed: against its own noise, with a smaller share of its range than
            // the size of the change uses — a signal that grows a thousandfold (a pool wait
            // under overload) would otherwise be seen to change only once 8% of its peak.
            let onset_scale = onset_scale_of(noise, hi - lo);
            // A second held across a silence repeats the last value seen, so it cannot show a
            // change: a worker stopped during a database call read as one call in flight for
            // the whole silence, a change that no sample measured.
            let hit: Vec<bool> = xs
                .iter()
                .enumerate()
                .map(|(i, v)| (v - med).abs() > CHANGE_Z * onset_scale && !s.held_at(i))
                .collect();
            let (w0, w1) = (sli.onset.min(n - 1), sli.end.min(n - 1));
            let changed_at = changed_at(
                &hit,
                base_end,
                min_run(w1 + 1 - w0),
                // An aggregate's lead is credited up to a span further back (`credible_lead`).
                sli.onset.saturating_sub(lag_max as usize + blur),
                sli.end,
            );
            let whole = median(&xs[w0..=w1]);
            // A cause can end before the users recover (a disk's stall over, the users still
            // slow while the system catches up): the median over the whole degraded window then
            // understates it. The stretch where the signal held its own change — begun within
            // the lead the ranking credits, a quarter of the window or more — is measured too,
            // and the larger change taken.
            let own = changed_at
                .filter(|&t| t + lag_max as usize >= sli.onset)
                // The run `changed_at` begins lasts until its first miss.
                .map(|t| {
                    (
                        t,
                        hit[t..]
                            .iter()
                            .position(|h| !h)
                            .map_or(n - 1, |k| t + k - 1),
                    )
                })
                .map(|(a, b)| (a.max(w0), b.min(w1)))
                .filter(|&(a, b)| b >= a && (b + 1 - a) * 4 >= w1 + 1 - w0)
                .map(|(a, b)| median(&xs[a..=b]));
            let during = match own {
                Some(o) if (o - med).abs() > (whole - med).abs() => o,
                _ => whole,
            };
            let z_local = local_jump(&xs, sli.onset, lag_max as usize, blur);
            let z = ((during - med).abs() / scale).min(2.0 * z_local);
            // The size of the change for comparing candidates: against the signal's own noise,
            // with no floor on its range, so a change of 3000 sigmas is not read as 50 (2 % of
            // the range) or 500 (0.2 %, the floor that dates a change) because the change
            // itself set the range: every step past 500 sigmas would tie.
            // A baseline without spread (a state such as `up`, a gauge idle at 0, a count
            // that did not vary) has no noise to count sigmas in: left out of the comparison
            // (NaN) rather than measured against an arbitrary floor.
            let magnitude = if mad <= 0.0 {
                f64::NAN
            } else {
                ((during - med).abs() / noise)
                    .min(2.0 * z_local)
                    .min(MAX_MAGNITUDE)
            };
            let lead = changed_at.map(|t| credible_lead(sli.onset as f64 - t as f64, s.span_s));
            let g = precedence(lead, lag_max as f64);
            let rx = ranks(&without_load(&xs));
            // An aggregate is compared with the SLI aggregated over the same intervals.
            let aggregated: Option<Vec<Vec<f64>>> = sli
                .targets
                .iter()
                .map(|t| s.aggregate_like(t).map(|a| ranks(&without_load(&a))))
                .collect();
            let mut c = 0.0f64;
            for ry in aggregated.as_ref().unwrap_or(&target_ranks) {
                for lag in 0..=lag_max {
                    c = c.max(lagged(&rx, ry, lag).abs());
                }
            }
            let load_correlation = achieved
                .as_ref()
                .map_or(0.0, |a| lagged(&ranks(&xs), a, 0).abs());
            if load_correlation > c {
                c *= (1.0 - (load_correlation - c)).max(0.0);
            }
            let a = z / (z + 4.0);
            let direction = if during >= med { 1.0 } else { -1.0 };
            let m = match p99_rise_ms {
                Some(rise) if s.unit == "seconds" && rise > 0.0 && during > med => {
                    ((during - med) * 1000.0 / rise).clamp(0.05, 1.0).sqrt()
                }
                _ => 1.0,
            };
            Scored {
                name: s.name.clone(),
                unit: s.unit.clone(),
                kind: classify(&s.name, direction),
                score: a * c * g * m,
                z,
                magnitude,
                baseline: med,
                during,
                direction,
                changed_at,
                lead_s: lead,
                span_s: s.span_s,
                correlation: c,
                load_correlation,
            }
        })
        .collect();
    by_magnitude(&mut out);
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// Seconds a signal must stay beyond its noise to count as changed, for a degradation lasting
/// `window` seconds: [`MIN_RUN_S`], or 2 when the degradation itself lasted under twice that
/// (a 2 s fault seen in a 4 s window cannot hold for 3 s in its source, and with no signal
/// dated every candidate's precedence was the same 0.05).
fn min_run(window: usize) -> usize {
    if window < 2 * MIN_RUN_S {
        2
    } else {
        MIN_RUN_S
    }
}

/// When a signal changed for the degradation `lo..=end` (`lo` its onset less the lead
/// credited): the first stretch of `run` seconds beyond its noise, from `from`, that reaches
/// into that span. A change that came and went before it is an earlier episode: for this one
/// the signal did not change (dated, a blip just before `lo` would read as a lead).
fn changed_at(hit: &[bool], from: usize, run: usize, lo: usize, end: usize) -> Option<usize> {
    sustained_runs(hit, from, run)
        .into_iter()
        .find(|&(a, b)| b >= lo && a <= end)
        .map(|(a, _)| a)
}

/// Precedence `g` from a signal's lead over the SLI (seconds, positive when it led): 1 within
/// the lead credited, 0.85 within one second after the SLI, decaying for a later change (a
/// consequence) and for a much earlier one (drift unrelated to the users), 0.05 for none.
fn precedence(lead: Option<f64>, lag_max: f64) -> f64 {
    match lead {
        None => 0.05,
        Some(l) if (0.0..=lag_max).contains(&l) => 1.0,
        // Within one sample of the SLI but after it: gauges are read at scrape time, so allow
        // it, ranked below a change at or before the SLI's.
        Some(l) if (-1.0..0.0).contains(&l) => 0.85,
        // Continuing from the 0.85 (a lead shrunk by a fractional span can fall in between).
        Some(l) if l < 0.0 => 0.85 * ((l + 1.0) / 3.0).exp(),
        Some(l) => (-(l - lag_max) / lag_max.max(5.0)).exp(),
    }
}

fn onset_scale_of(noise: f64, range: f64) -> f64 {
    noise.max(0.002 * range).max(1e-12)
}

/// A change's size past which it is no less extreme (robust sigmas); bounds the logarithm.
const MAX_MAGNITUDE: f64 = 1e6;

/// Among the signals of one unit that explain the degradation about as well as the best one
/// (score at least [`PLAUSIBLE`] of it), the one whose own change was largest in units of its
/// own noise is the likeliest origin: a fault moves its source furthest, and what it reaches
/// downstream moves less against noise of its own. `a` saturates (z 20 and z 3000 both score
/// near 1) and the correlation with the SLI then decides on noise, so each score is multiplied
/// by the square of `ln(1 + magnitude) / ln(1 + largest magnitude among the plausible)`, capped
/// at 1: on a log scale, so that ten times the sigmas counts alike at any size, and squared so
/// that the size outweighs a correlation a few hundredths higher (40 cases of CIRCA's simulator
/// with a sustained fault, seed 7: the cause first in 57 % with the first power, 65 % squared;
/// bench/diagnose unchanged within one case of 300).
///
/// Signals whose baseline had no spread are left out (an idle gauge, a state such as `up`):
/// against the floor their sigmas are arbitrary, and a gauge idle at 0 would outsize any noisy
/// signal.
fn by_magnitude(out: &mut [Scored]) {
    let best = out.iter().map(|s| s.score).fold(0.0, f64::max);
    if best <= 0.0 {
        return;
    }
    // Sigmas are compared only between signals of one unit: a ratio that reached its limit
    // (a core 100 % busy) cannot move as many sigmas as the wait it causes.
    let mut reference: Vec<(String, f64)> = Vec::new();
    for s in out
        .iter()
        .filter(|s| s.score >= PLAUSIBLE * best && s.magnitude.is_finite())
    {
        let size = s.magnitude.ln_1p();
        match reference.iter_mut().find(|(u, _)| *u == s.unit) {
            Some((_, r)) => *r = r.max(size),
            None => reference.push((s.unit.clone(), size)),
        }
    }
    for s in out.iter_mut().filter(|s| s.magnitude.is_finite()) {
        if let Some((_, r)) = reference.iter().find(|(u, _)| *u == s.unit) {
            if *r > 0.0 {
                s.score *= (s.magnitude.ln_1p() / r).min(1.0).powi(2);
            }
        }
    }
}

/// See [`by_magnitude`].
const PLAUSIBLE: f64 = 0.5;

/// The step across `onset` (3 s medians, `lead` + `blur` + 3 s apart) in units of the
/// signal's usual steps over the same span before the onset; unbounded when there is too little
/// before it. `blur` is how far an aggregate's value may reach back from the onset (its span).
fn local_jump(xs: &[f64], onset: usize, lead: usize, blur: usize) -> f64 {
    const W: usize = 3;
    let gap = lead + blur;
    let span = gap + W;
    let n = xs.len();
    if onset < span || onset + W > n || n < span + W + 3 {
        return f64::INFINITY;
    }
    let before = median(&xs[onset - span..onset - gap]);
    let after = median(&xs[onset..onset + W]);
    // Usual steps are taken before the onset (and before an aggregate could lean towards it),
    // where a cause has not yet moved.
    let until = (onset - span).saturating_sub(blur);
    if until < 3 {
        return f64::INFINITY;
    }
    let steps: Vec<f64> = (0..until).map(|t| (xs[t + span] - xs[t]).abs()).collect();
    let usual = median(&steps).max(1e-12 * before.abs().max(1.0));
    (after - before).abs() / usual
}

/// A lead (SLI onset minus the signal's change, in seconds) as far as a signal whose values
/// each aggregate `span` seconds can tell it: the change is placed only to within a span either
/// way, so the lead moves a span toward 0, and what is left under a span is no lead at all.
/// Instantaneous signals (`None`) keep their lead.
pub fn credible_lead(lead: f64, span: Option<f64>) -> f64 {
    match span.filter(|p| p.is_finite() && *p > 0.0) {
        None => lead,
        Some(p) => {
            let shrunk = lead.signum() * (lead.abs() - p).max(0.0);
            if shrunk.abs() < p {
                0.0
            } else {
                shrunk
            }
        }
    }
}

/// `x` minus its least-squares line on `load`, fitted over the seconds `fit`: what is left
/// once the part of `x` that moves with the load is taken out.
pub fn without_load(x: &[f64], load: &[f64], fit: std::ops::Range<usize>) -> Vec<f64> {
    let n = x.len().min(load.len());
    let fit = fit.start.min(n)..fit.end.min(n);
    let m = fit.len() as f64;
    if m < 3.0 {
        return x.to_vec();
    }
    let mx = x[fit.clone()].iter().sum::<f64>() / m;
    let ml = load[fit.clone()].iter().sum::<f64>() / m;
    let (mut sxl, mut sll) = (0.0, 0.0);
    for i in fit {
        sxl += (x[i] - mx) * (load[i] - ml);
        sll += (load[i] - ml) * (load[i] - ml);
    }
    let beta = if sll > 1e-12 { sxl / sll } else { 0.0 };
    (0..x.len())
        .map(|i| x[i] - mx - beta * (load.get(i).copied().unwrap_or(ml) - ml))
        .collect()
}

fn non_constant(x: &[f64]) -> Option<&[f64]> {
    let first = *x.first()?;
    x.iter().any(|v| (v - first).abs() > 1e-9).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(name: &str, unit: &str, score: f64, magnitude: f64) -> Scored {
        Scored {
            name: name.into(),
            unit: unit.into(),
            kind: None,
            score,
            z: 0.0,
            magnitude,
            baseline: 0.0,
            during: 0.0,
            direction: 1.0,
            changed_at: None,
            lead_s: None,
            span_s: None,
            correlation: 0.0,
            load_correlation: 0.0,
        }
    }

    #[test]
    fn a_change_is_dated_by_the_stretch_that_reaches_the_degradation() {
        let mut hit = vec![false; 100];
        // A blip of 4 s that came and went at t=20, then the change at t=80 (onset 82).
        hit[20..24].fill(true);
        hit[80..100].fill(true);
        assert_eq!(changed_at(&hit, 10, 3, 82 - 30, 95), Some(80));
        // Drift: one stretch from t=20 that never ended is dated where it began.
        let mut drift = vec![false; 100];
        drift[20..100].fill(true);
        assert_eq!(changed_at(&drift, 10, 3, 52, 95), Some(20));
        // Nothing reaches the span: the blip at t=20 is another episode, the change at t=80
        // came after it.
        assert_eq!(changed_at(&hit[..40], 10, 3, 35, 39), None);
        assert_eq!(changed_at(&hit, 10, 3, 50, 60), None);
        // A 2 s blip that ended just before the lead credited is no lead.
        let mut blip = vec![false; 100];
        blip[45..47].fill(true);
        assert_eq!(changed_at(&blip, 10, 2, 50, 54), None);
        // A 2 s change counts in a short degradation only.
        let mut short = vec![false; 100];
        short[80..82].fill(true);
        assert_eq!(changed_at(&short, 10, min_run(4), 50, 84), Some(80));
        assert_eq!(changed_at(&short, 10, min_run(20), 50, 99), None);
    }

    #[test]
    fn a_change_long_before_the_users_counts_less_than_one_within_the_lead() {
        // Within the lead credited, or a scrape after the SLI.
        assert_eq!(precedence(Some(0.0), 30.0), 1.0);
        assert_eq!(precedence(Some(30.0), 30.0), 1.0);
        assert_eq!(precedence(Some(-0.5), 30.0), 0.85);
        // Eleven minutes before the users noticed: drift, not the cause. It scored 0.85, as if
        // read one scrape late; such a distractor in bench/diagnose's hour-long case came
        // within reach of the cause's score.
        assert!(precedence(Some(681.0), 30.0) < 1e-6);
        assert!(precedence(Some(40.0), 30.0) < 0.8);
        // Later than a scrape after the SLI: a consequence.
        assert!(precedence(Some(-4.0), 30.0) < 0.4);
        // No step up just past a scrape after the SLI.
        assert!(precedence(Some(-1.3), 30.0) < 0.85);
        assert_eq!(precedence(None, 30.0), 0.05);
    }

    #[test]
    fn the_larger_change_wins_among_the_plausible_of_one_unit() {
        let mut out = vec![
            // A child: correlates a little better with the SLI, moved 20 sigmas.
            scored("child", "", 0.55, 20.0),
            // Its source: moved 3000 sigmas.
            scored("source", "", 0.52, 3000.0),
            // A ratio at its limit: only compared with ratios.
            scored("cpu", "ratio", 0.50, 12.0),
            // An idle gauge that moved: no spread to count sigmas in, left as it was.
            scored("idle", "", 0.40, f64::NAN),
            // Below half the best: not a reference, and a larger change does not raise it.
            scored("noise", "", 0.1, 5000.0),
        ];
        by_magnitude(&mut out);
        let get = |n: &str| out.iter().find(|s| s.name == n).unwrap().score;
        assert!(get("source") > get("child"), "{out:?}");
        assert!((get("source") - 0.52).abs() < 1e-12);
        assert!((get("cpu") - 0.50).abs() < 1e-12);
        assert!((get("idle") - 0.40).abs() < 1e-12);
        assert!((get("noise") - 0.1).abs() < 1e-12);
        let child = 0.55 * (21f64.ln() / 3001f64.ln()).powi(2);
        assert!((get("child") - child).abs() < 1e-12, "{out:?}");
    }
}
