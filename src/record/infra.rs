//! Infrastructure signals observed during a run, as `results.json` carries them (`infra`):
//! [`Series`] (numbers over time) and [`Event`]s (things with a start and an end, such as a
//! scaling activity or a log line). Sources in `observe` produce them; the diagnosis and the
//! report read them. Times are seconds relative to the run's start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything observed about the infrastructure during a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Infra {
    #[serde(default)]
    pub series: Vec<Series>,
    #[serde(default)]
    pub events: Vec<Event>,
    /// Problems reading sources (an endpoint that failed some scrapes, a query that errored):
    /// the diagnosis is only as complete as what was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Infra {
    pub fn is_empty(&self) -> bool {
        self.series.is_empty() && self.events.is_empty()
    }

    pub fn extend(&mut self, other: Infra) {
        self.series.extend(other.series);
        self.events.extend(other.events);
        self.notes.extend(other.notes);
    }
}

/// One signal over time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Series {
    /// Where it came from: `scrape:<url>`, `prometheus`, `csv:<file>`, later `cloudwatch`.
    pub source: String,
    /// The metric name; derived series carry a suffix (`:rate` for counters, `:mean` and
    /// `:p95` for histograms).
    pub name: String,
    /// `per_second`, `seconds`, `bytes`, `ratio`, `percent`, `count` or empty when unknown.
    #[serde(default)]
    pub unit: String,
    /// Labels (Prometheus) or dimensions (CloudWatch) that tell same-named series apart.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
    /// `(t, value)`: seconds since the run's start, in time order.
    pub points: Vec<(f64, f64)>,
    /// When each value is an aggregate over an interval (a CloudWatch period, a log count per
    /// interval, a rate over a window), the interval's length: the point `(t, v)` then covers
    /// `[t, t + span_s)`. Sources that speak of windows ending at `t` (a Prometheus `rate(x[5s])`)
    /// shift their points to the window's start. Absent for instantaneous samples (a gauge
    /// read once a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_s: Option<f64>,
}

impl Series {
    /// The name people see: `name{k="v",...}`.
    pub fn key(&self) -> String {
        if self.dimensions.is_empty() {
            return self.name.clone();
        }
        let dims: Vec<String> = self
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        format!("{}{{{}}}", self.name, dims.join(","))
    }
}

/// Something that happened over an interval: a scaling activity, a deployment, a log line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub source: String,
    /// What kind of event: `scaling`, `log`, `deployment`…
    pub name: String,
    /// Seconds since the run's start (negative: before it).
    pub start: f64,
    /// When it finished; `None` while still in progress at collection time.
    #[serde(default)]
    pub end: Option<f64>,
    /// Why it happened, or the log line itself.
    #[serde(default)]
    pub cause: String,
    /// `successful`, `failed`, `in_progress`, or a log level.
    #[serde(default)]
    pub status: String,
    /// What tells it apart: a scaling activity's `resource`, `activity_id` and
    /// `desired_capacity`; a log line's `log_stream`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dimensions: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shows_dimensions_in_order() {
        let s = Series {
            source: "x".into(),
            name: "queue_depth".into(),
            unit: String::new(),
            dimensions: [("queue".to_string(), "email".to_string())].into(),
            span_s: None,
            points: vec![],
        };
        assert_eq!(s.key(), "queue_depth{queue=\"email\"}");
    }
}

#[cfg(test)]
mod roundtrip {
    use super::*;

    /// What results.json holds reads back bit for bit (serde_json's float_roundtrip): a report
    /// rebuilt from the file, and shards merged from files, see the very numbers written.
    #[test]
    fn values_read_back_exactly() {
        let mut x = 0.1f64;
        let points: Vec<(f64, f64)> = (0..2000)
            .map(|i| {
                x = (x * 1.000_123_7 + 0.333_333_333_333_3).fract() * 97.1;
                (i as f64 * 0.001_1, x / 3.0)
            })
            .collect();
        let s = Series {
            source: "t".into(),
            name: "x".into(),
            unit: String::new(),
            dimensions: BTreeMap::new(),
            span_s: Some(1.0 / 3.0),
            points,
        };
        let text = serde_json::to_vec_pretty(&s).unwrap();
        let back: Series = serde_json::from_slice(&text).unwrap();
        for (a, b) in s.points.iter().zip(&back.points) {
            assert_eq!(a.0.to_bits(), b.0.to_bits());
            assert_eq!(a.1.to_bits(), b.1.to_bits());
        }
        assert_eq!(back.span_s.unwrap().to_bits(), (1.0f64 / 3.0).to_bits());
    }
}
