//! What moved while the users were served well: a healthy verdict still says it, worded as not
//! user-visible (a 320-message backlog nobody noticed is still worth a line).
//!
//! A signal counts when it names a kind of cause ([`classify`]), left its own baseline (the
//! SLI's baseline window) by 8 robust sigmas for [`MIN_STRETCH_S`] seconds running, at least
//! doubled or halved, and reached a level that matters for its kind: a queue 10 messages or
//! 5 s of age deeper, a consumer handling under half its usual rate, a target that stopped
//! answering its scrapes. A handful of messages in flight is a queue doing its job.

use serde::{Deserialize, Serialize};

use super::rules::{classify, signal_value};
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
        let hit: Vec<bool> = xs.iter().map(|v| (v - med).abs() > 8.0 * noise).collect();
        let Some((a, b, peak)) = sustained_runs(&hit, b1, MIN_STRETCH_S)
            .into_iter()
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
        let moved = if direction > 0.0 { "rose" } else { "fell" };
        let summary = format!(
            "{} {moved} from {} to {} over t={a}–{}s ({}) while the users' experience stayed within its margins: not user-visible in this run",
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
        _ => true,
    }
}
