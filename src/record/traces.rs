//! Trace ids kept per step (`trace = true`): the slowest requests and the first failed ones,
//! so a slow checkout in the results can be looked up in the tracing system the target reports
//! to (X-Ray, Jaeger, Tempo) by the W3C trace id peakload sent.
//!
//! Each worker thread keeps its own few per step and hands them over with its last report; the
//! aggregator keeps the few of all threads. Nothing here runs unless the scenario traces.

use serde::{Deserialize, Serialize};

use super::ErrorKind;

/// How many slowest and how many failed requests each step keeps.
pub const TRACES_KEPT: usize = 5;

/// One traced request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TracedRequest {
    /// The W3C trace id (32 lower-case hex digits) of its `traceparent` header.
    pub trace_id: String,
    pub latency_ms: f64,
    /// When it ended, in seconds since the run's start.
    pub at_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKind>,
}

/// A step's kept trace ids.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepTraces {
    /// Slowest first.
    #[serde(default)]
    pub slowest: Vec<TracedRequest>,
    /// Earliest first: the first failures are the ones that show how it began.
    #[serde(default)]
    pub failed: Vec<TracedRequest>,
}

impl StepTraces {
    pub fn is_empty(&self) -> bool {
        self.slowest.is_empty() && self.failed.is_empty()
    }

    /// Whether a request with this latency (and failure) would be kept: asked before its id
    /// is formatted.
    pub fn wants(&self, latency_ms: f64, failed: bool) -> bool {
        (failed && self.failed.len() < TRACES_KEPT)
            || self.slowest.len() < TRACES_KEPT
            || self
                .slowest
                .last()
                .is_some_and(|s| s.latency_ms < latency_ms)
    }

    pub fn offer(&mut self, r: TracedRequest) {
        if r.error.is_some() && self.failed.len() < TRACES_KEPT {
            self.failed.push(r.clone());
            self.failed.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        }
        if self.slowest.len() < TRACES_KEPT
            || self
                .slowest
                .last()
                .is_some_and(|s| s.latency_ms < r.latency_ms)
        {
            self.slowest.push(r);
            self.slowest
                .sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
            self.slowest.truncate(TRACES_KEPT);
        }
    }

    /// Keeps the slowest and the earliest failures of both.
    pub fn merge(&mut self, other: &StepTraces) {
        self.slowest.extend(other.slowest.iter().cloned());
        self.slowest
            .sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
        self.slowest.truncate(TRACES_KEPT);
        self.failed.extend(other.failed.iter().cloned());
        self.failed.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        self.failed.truncate(TRACES_KEPT);
    }
}

/// Merges per-step traces of `from` into `into`, growing it as needed.
pub fn merge_steps(into: &mut Vec<StepTraces>, from: &[StepTraces]) {
    if into.len() < from.len() {
        into.resize_with(from.len(), StepTraces::default);
    }
    for (a, b) in into.iter_mut().zip(from) {
        a.merge(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(latency_ms: f64, at_s: f64, error: Option<ErrorKind>) -> TracedRequest {
        TracedRequest {
            trace_id: format!("{:032x}", (latency_ms * 1000.0) as u128),
            latency_ms,
            at_s,
            error,
        }
    }

    #[test]
    fn keeps_the_slowest_and_the_first_failures() {
        let mut a = StepTraces::default();
        for i in 0..20 {
            let err = (i % 3 == 0).then_some(ErrorKind::Http5xx);
            let r = req(f64::from((i * 7) % 20), f64::from(i), err);
            if a.wants(r.latency_ms, r.error.is_some()) {
                a.offer(r);
            }
        }
        let slow: Vec<f64> = a.slowest.iter().map(|r| r.latency_ms).collect();
        assert_eq!(slow, [19.0, 18.0, 17.0, 16.0, 15.0]);
        let failed: Vec<f64> = a.failed.iter().map(|r| r.at_s).collect();
        assert_eq!(failed, [0.0, 3.0, 6.0, 9.0, 12.0]);
        let mut b = StepTraces::default();
        b.offer(req(50.0, 0.5, Some(ErrorKind::Timeout)));
        let mut all = vec![StepTraces::default()];
        merge_steps(&mut all, &[a]);
        merge_steps(&mut all, &[b]);
        assert_eq!(all[0].slowest[0].latency_ms, 50.0);
        assert_eq!(all[0].slowest.len(), 5);
        let failed: Vec<f64> = all[0].failed.iter().map(|r| r.at_s).collect();
        assert_eq!(failed, [0.0, 0.5, 3.0, 6.0, 9.0]);
    }
}
