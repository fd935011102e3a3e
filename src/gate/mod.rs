//! Thresholds: one evaluator, [`metric_value`], over anything [`Measured`] — the final
//! [`Results`] (so a run and `peakload report`/`gate` agree) and the dashboard's live snapshot
//! (so the live verdict is the final one if the run ended now).

use std::borrow::Cow;

use hdrhistogram::Histogram;

pub mod change;

use crate::record::results::{decode_histogram, round3, Results, ThresholdResult};
use crate::scenario::{MetricRef, Scope, Stat, Threshold};

/// Requests, errors and latency of one scope: a step, a journey's iterations, or every request.
pub struct ScopeCounts<'a> {
    pub requests: u64,
    pub errors: u64,
    pub latency: Latency<'a>,
}

/// A scope's latency histogram (µs), as its holder keeps it.
pub enum Latency<'a> {
    Histogram(&'a Histogram<u64>),
    /// Base64 HdrHistogram V2, as in `results.json`; decoded only when a latency is asked for.
    Encoded(&'a str),
}

impl Latency<'_> {
    fn histogram(&self) -> Option<Cow<'_, Histogram<u64>>> {
        match self {
            Latency::Histogram(h) => Some(Cow::Borrowed(*h)),
            Latency::Encoded(s) => decode_histogram(s).ok().map(Cow::Owned),
        }
    }
}

/// The run-wide counters a threshold can name.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunCounts {
    pub dropped_iterations: u64,
    pub iterations: u64,
    pub feeder_exhausted: u64,
    pub checks: u64,
    pub checks_failed: u64,
}

/// What thresholds are measured on.
pub trait Measured {
    /// `None` when the scope does not exist here.
    fn scope(&self, scope: &Scope) -> Option<ScopeCounts<'_>>;
    fn run_counts(&self) -> RunCounts;
    /// The seconds rates divide by; `None` before there is one.
    fn elapsed_s(&self) -> Option<f64>;
}

/// A metric's value in the threshold's unit (ms, fraction, per second, count); `None` when
/// there is nothing to measure yet (no requests in the scope, no checks).
pub fn metric_value(metric: &MetricRef, m: &impl Measured) -> Option<f64> {
    if let Scope::Run = metric.scope {
        let c = m.run_counts();
        return match metric.stat {
            Stat::DroppedIterations => Some(c.dropped_iterations as f64),
            Stat::Iterations => Some(c.iterations as f64),
            Stat::FeederExhausted => Some(c.feeder_exhausted as f64),
            Stat::ChecksFailed => Some(c.checks_failed as f64),
            Stat::ChecksPassRate => (c.checks > 0)
                .then(|| (c.checks - c.checks_failed.min(c.checks)) as f64 / c.checks as f64),
            _ => None,
        };
    }
    let view = m.scope(&metric.scope)?;
    let latency = |f: &dyn Fn(&Histogram<u64>) -> f64| {
        let h = view.latency.histogram()?;
        (!h.is_empty()).then(|| f(&h) / 1000.0)
    };
    match metric.stat {
        Stat::Percentile(p) => latency(&|h| h.value_at_quantile(p / 100.0) as f64),
        Stat::Mean => latency(&|h| h.mean()),
        Stat::Min => latency(&|h| h.min() as f64),
        Stat::Max => latency(&|h| h.max() as f64),
        Stat::ErrorRate => (view.requests > 0).then(|| view.errors as f64 / view.requests as f64),
        Stat::Rps => m.elapsed_s().map(|s| view.requests as f64 / s),
        Stat::Requests => Some(view.requests as f64),
        Stat::Errors => Some(view.errors as f64),
        _ => None,
    }
}

/// Evaluates each threshold on the results; a metric that cannot be computed (no requests)
/// fails.
pub fn evaluate(thresholds: &[Threshold], results: &Results) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| {
            let value = metric_value(&t.metric, results);
            ThresholdResult {
                expr: t.expr.clone(),
                value: value.map(round3),
                ok: value.is_some_and(|v| t.op.holds(v, t.limit)),
            }
        })
        .collect()
}

impl Measured for Results {
    fn scope(&self, scope: &Scope) -> Option<ScopeCounts<'_>> {
        Some(match scope {
            Scope::Http => ScopeCounts {
                requests: self.summary.requests,
                errors: self.summary.errors,
                latency: Latency::Encoded(&self.summary.histogram),
            },
            Scope::Step { journey, step } => {
                let journey_name = &self.journeys.get(*journey)?.name;
                let s = self
                    .steps
                    .iter()
                    .filter(|s| &s.journey == journey_name)
                    .nth(*step)?;
                ScopeCounts {
                    requests: s.requests,
                    errors: s.errors,
                    latency: Latency::Encoded(&s.histogram),
                }
            }
            Scope::Journey(j) => {
                let j = self.journeys.get(*j)?;
                ScopeCounts {
                    requests: j.iterations,
                    errors: j.failed_iterations,
                    latency: Latency::Encoded(&j.histogram),
                }
            }
            Scope::Run => return None,
        })
    }

    fn run_counts(&self) -> RunCounts {
        RunCounts {
            dropped_iterations: self.dropped_iterations,
            iterations: self.summary.iterations,
            feeder_exhausted: self.feeder_exhausted,
            checks: self.summary.checks,
            checks_failed: self.summary.checks_failed,
        }
    }

    fn elapsed_s(&self) -> Option<f64> {
        Some(self.duration_s.max(1e-9))
    }
}
