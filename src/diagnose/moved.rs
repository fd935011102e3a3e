//! What moved while the users were served well: a healthy verdict still says it, worded as not
//! user-visible (a 320-message backlog nobody noticed is still worth a line). A degraded
//! verdict says it too for stretches wholly outside the users' degraded window: the findings
//! explain that window only, and a worker stopped for 18 s in a run whose users were degraded
//! by something else for 3 s had gone unmentioned.
//!
//! A signal counts when it names a kind of cause ([`classify`]), left its own baseline (the
//! SLI's baseline window) by 8 robust sigmas for [`MIN_STRETCH_S`] seconds running, at least
//! doubled or halved, and reached a level that matters for its kind: a queue 10 messages or
//! 5 s of age deeper, a consumer handling under half its usual rate, a target that stopped
//! answering its scrapes, 10 more database operations or connections in use (or a pool nearly
//! full). A handful of messages or queries in flight is a queue or a database doing its job.

use serde::{Deserialize, Serialize};

use super::rules::{classify, pool_use, psi, signal_value, POOL_FULL, PSI_FLOOR};
use super::sli::Sli;
use super::stats::{median_mad, rolling_median, sustained_runs};
use super::{round3, Input};
use crate::record::findings::Kind;

/// Seconds a signal must stay away from its baseline to be told.
pub const MIN_STRETCH_S: usize = 5;

/// At most this many are told, the furthest from their baseline first.
const TOLD: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Moved {
    pub signal: String,
    pub kind: Kind,
    pub start_s: f64,
    pub end_s: f64,
    pub baseline: f64,
    /// The furthest value from the baseline in the stretch.
    pub peak: f64,
    pub summary: String,
}

pub fn moved(input: &Input, sli: &Sli) -> Vec<Moved> {
    let n = input.len();
    let (b0, b1) = sli.baseline;
    if n < b1 + MIN_STRETCH_S || b1 < b0 + 3 {
        return Vec::new();
    }
    let mut out: Vec<(f64, Moved)> = Vec::new();
    for s in &input.signals {
        let xs = rolling_median(&s.values, 3);
        let (med, mad) = median_mad(&xs[b0..b1]);
        let noise = (1.4826 * mad).max(0.05 * med.abs()).max(1e-9);
        // A value held across a target's silence was not measured (see `rank`).
        let hit: Vec<bool> = xs
            .iter()
            .enumerate()
            .map(|(i, v)| (v - med).abs() > 8.0 * noise && !s.held_at(i))
            .collect();
        // In a degraded run, what moved with the users (or just before, as a cause leads) is
        // the findings' business.
        let outside = |(a, b): &(usize, usize)| {
            !sli.degraded() || *b + MIN_STRETCH_S < sli.onset || *a > sli.end
        };
        let Some((a, b, peak)) = sustained_runs(&hit, b1, MIN_STRETCH_S)
            .into_iter()
            .filter(outside)
            .map(|(a, b)| {
                let peak = xs[a..=b]
                    .iter()
                    .copied()
                    .max_by(|x, y| (x - med).abs().total_cmp(&(y - med).abs()))
                    .unwrap_or(med);
                (a, b, peak)
            })
            .max_by(|x, y| (x.2 - med).abs().total_cmp(&(y.2 - med).abs()))
        else {
            continue;
        };
        let direction = if peak >= med { 1.0 } else { -1.0 };
        let Some(kind) = classify(&s.name, direction) else {
            continue;
        };
        let doubled = if direction > 0.0 {
            peak >= 2.0 * med
        } else {
            peak <= 0.5 * med
        };
        if !doubled || !matters(kind, &s.name, &s.unit, med, peak) {
            continue;
        }
        // Database operations or connections in use (a count): a handful more is the database
        // doing its job (controls showed "rose from 0 to 1"); it matters from 10 more, or once
        // an observed pool was nearly full.
        let count = !matches!(s.unit.as_str(), "seconds" | "seconds_per_second");
        if matches!(kind, Kind::DbLatency | Kind::DbPoolSaturation)
            && count
            && (peak - med).abs() < 10.0
            && pool_use(input, a, b).is_none_or(|p| p.peak < POOL_FULL * p.size)
        {
            continue;
        }
        let moved = if direction > 0.0 { "rose" } else { "fell" };
        let users = if sli.degraded() {
            format!(
                "outside the users' degraded stretch (t={}–{}s), while their experience stayed within its margins",
                sli.onset,
                sli.end + 1
            )
        } else {
            "while the users' experience stayed within its margins".to_owned()
        };
        let summary = format!(
            "{} {moved} from {} to {} over t={a}–{}s ({}) {users}: not user-visible in this run",
            s.name,
            signal_value(&s.name, med, &s.unit),
            signal_value(&s.name, peak, &s.unit),
            b + 1,
            kind.as_str()
        );
        out.push((
            (peak - med).abs() / noise,
            Moved {
                signal: s.name.clone(),
                kind,
                start_s: a as f64,
                end_s: b as f64 + 1.0,
                baseline: round3(med),
                peak: round3(peak),
                summary,
            },
        ));
    }
    out.sort_by(|x, y| y.0.total_cmp(&x.0));
    out.into_iter().take(TOLD).map(|(_, m)| m).collect()
}

/// Whether a move of `from` → `to` is large enough, for its kind, to be worth telling.
fn matters(kind: Kind, name: &str, unit: &str, from: f64, to: f64) -> bool {
    let delta = (to - from).abs();
    match kind {
        Kind::QueueBacklog if to < from => from >= 0.5,
        Kind::QueueBacklog if unit == "seconds" => delta >= 5.0,
        Kind::QueueBacklog => delta >= 10.0,
        Kind::TargetUnresponsive => to <= 0.5,
        Kind::DbLatency | Kind::DbPoolSaturation if unit == "seconds" => delta >= 0.02,
        Kind::CpuSaturation if unit == "seconds_per_second" || unit == "ratio" => {
            to >= 0.5 || name.contains("pressure")
        }
        Kind::CpuSaturation if unit == "percent" => to >= 50.0,
        Kind::MemoryPressure if unit == "bytes" => delta >= 64.0 * 1024.0 * 1024.0,
        Kind::MemoryPressure | Kind::IoSaturation if psi(name) => to >= PSI_FLOOR,
        _ => true,
    }
}
