//! Thresholds: evaluated from `results.json` alone, so a run and `peakload gate` agree.

pub mod change;

use crate::record::results::{decode_histogram, round3, Results, ThresholdResult};
use crate::scenario::{Scope, Stat, Threshold};

/// Evaluates each threshold; a metric that cannot be computed (no requests) fails.
pub fn evaluate(thresholds: &[Threshold], results: &Results) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| {
            let value = metric_value(t, results);
            ThresholdResult {
                expr: t.expr.clone(),
                value: value.map(round3),
                ok: value.is_some_and(|v| t.op.holds(v, t.limit)),
            }
        })
        .collect()
}

fn metric_value(t: &Threshold, r: &Results) -> Option<f64> {
    let duration = r.duration_s.max(1e-9);
    struct View<'a> {
        requests: u64,
        errors: u64,
        histogram: &'a str,
    }
    let view = match &t.metric.scope {
        Scope::Http => View {
            requests: r.summary.requests,
            errors: r.summary.errors,
            histogram: &r.summary.histogram,
        },
        Scope::Step { journey, step } => {
            let journey_name = &r.journeys.get(*journey)?.name;
            let s = r
                .steps
                .iter()
                .filter(|s| &s.journey == journey_name)
                .nth(*step)?;
            View {
                requests: s.requests,
                errors: s.errors,
                histogram: &s.histogram,
            }
        }
        Scope::Journey(j) => {
            let j = r.journeys.get(*j)?;
            View {
                requests: j.iterations,
                errors: j.failed_iterations,
                histogram: &j.histogram,
            }
        }
        Scope::Run => {
            return match t.metric.stat {
                Stat::DroppedIterations => Some(r.dropped_iterations as f64),
                Stat::Iterations => Some(r.summary.iterations as f64),
                Stat::FeederExhausted => Some(r.feeder_exhausted as f64),
                Stat::ChecksFailed => Some(r.summary.checks_failed as f64),
                Stat::ChecksPassRate => (r.summary.checks > 0).then(|| {
                    (r.summary.checks - r.summary.checks_failed) as f64 / r.summary.checks as f64
                }),
                _ => None,
            }
        }
    };
    let latency = |f: &dyn Fn(&hdrhistogram::Histogram<u64>) -> f64| {
        let h = decode_histogram(view.histogram).ok()?;
        (!h.is_empty()).then(|| f(&h) / 1000.0)
    };
    match t.metric.stat {
        Stat::Percentile(p) => latency(&|h| h.value_at_quantile(p / 100.0) as f64),
        Stat::Mean => latency(&|h| h.mean()),
        Stat::Min => latency(&|h| h.min() as f64),
        Stat::Max => latency(&|h| h.max() as f64),
        Stat::ErrorRate => (view.requests > 0).then(|| view.errors as f64 / view.requests as f64),
        Stat::Rps => Some(view.requests as f64 / duration),
        Stat::Requests => Some(view.requests as f64),
        Stat::Errors => Some(view.errors as f64),
        _ => None,
    }
}
