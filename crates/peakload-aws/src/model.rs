//! The shapes this crate hands out: time series and events, mirroring the diagnosis core's
//! `observe` model (`Series`, `Event`) field for field, so converting is a move, not a
//! translation. Times are seconds since the run started (negative before it).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One signal over the run window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Where it came from: `cloudwatch` (metrics) or `cloudwatch_logs` (pattern counts).
    pub source: String,
    /// `Namespace/MetricName:Stat` for metrics (e.g. `AWS/ECS/CPUUtilization:Average`),
    /// `log:<pattern name>` for log counts.
    pub name: String,
    /// CloudWatch unit name (`Percent`, `Seconds`, `Count`, …); empty when unknown, because
    /// `GetMetricData` does not return units and a custom query may not name one.
    pub unit: String,
    /// The CloudWatch dimensions (metrics), or `log_group` and `pattern` (log counts).
    pub dimensions: BTreeMap<String, String>,
    /// `(seconds since run start, value)`, ascending. A metric's point is stamped at the start
    /// of its period, as CloudWatch does; periods with no data have no point.
    pub points: Vec<(f64, f64)>,
    /// The interval each value aggregates: the metric's period, or the log count's interval.
    /// The point `(t, v)` covers `[t, t + span_s)`.
    #[serde(default)]
    pub span_s: Option<f64>,
}

/// Something that happened over an interval: here, a scaling activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `application-autoscaling` (ECS services) or `autoscaling` (EC2 Auto Scaling groups).
    pub source: String,
    /// What AWS says the activity does, e.g. `Setting desired count to 4.`
    pub name: String,
    /// Seconds since run start.
    pub start: f64,
    /// `None` while the activity is still going (`InProgress`, `Pending`).
    pub end: Option<f64>,
    /// AWS's `Cause`: which alarm or request started it.
    pub cause: String,
    /// AWS's status code (`Successful`, `InProgress`, `Failed`, …), with the status message
    /// after `: ` when AWS gives one.
    pub status: String,
    /// `resource` (ECS `service/<cluster>/<service>` or the group name), `activity_id`, and
    /// `desired_capacity` when the description names the new capacity.
    pub dimensions: BTreeMap<String, String>,
}

/// The wall-clock span of a run; everything is read for this window and placed relative to
/// its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunWindow {
    pub start: SystemTime,
    pub end: SystemTime,
}

impl RunWindow {
    pub fn new(start: SystemTime, end: SystemTime) -> RunWindow {
        RunWindow { start, end }
    }

    /// Seconds from the run start to `at` (negative before it).
    pub fn offset(&self, at: SystemTime) -> f64 {
        match at.duration_since(self.start) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        }
    }

    /// The run's length in seconds.
    pub fn duration_s(&self) -> f64 {
        self.offset(self.end).max(0.0)
    }

    pub(crate) fn start_epoch_secs(&self) -> f64 {
        epoch_secs(self.start)
    }

    pub(crate) fn end_epoch_secs(&self) -> f64 {
        epoch_secs(self.end)
    }
}

pub(crate) fn epoch_secs(at: SystemTime) -> f64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

pub(crate) fn from_epoch_secs(secs: f64) -> SystemTime {
    if secs >= 0.0 {
        UNIX_EPOCH + Duration::from_secs_f64(secs)
    } else {
        UNIX_EPOCH - Duration::from_secs_f64(-secs)
    }
}

pub(crate) fn from_epoch_millis(ms: i64) -> SystemTime {
    from_epoch_secs(ms as f64 / 1000.0)
}
