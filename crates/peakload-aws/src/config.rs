//! The scenario's AWS sections, as serde structs the core's scenario parser embeds:
//! `[observe.cloudwatch]` → [`CloudWatchConfig`], `[observe.logs]` → [`LogsConfig`],
//! `[observe.scaling]` → [`ScalingConfig`]. Unknown keys are errors (`deny_unknown_fields`),
//! so a typo does not silently read nothing.
//!
//! ```toml
//! [observe.cloudwatch]
//! region = "eu-west-1"              # default: the standard chain (AWS_REGION, profile, …)
//! endpoint_url = "http://127.0.0.1:5055"   # optional: an emulator; used by logs and scaling too
//! period = 60                       # seconds: 1, 5, 10, 30 or a multiple of 60; default:
//!                                   # the finest each metric has (see `metrics::read_finest`)
//! metrics = [
//!   { namespace = "PeakloadStack", metric = "RequestCount", stat = "Sum",
//!     dimensions = { Service = "peakload-stack-api" }, unit = "Count" },
//! ]
//! presets = [
//!   { kind = "ecs_service", cluster = "peakload-stack", service = "peakload-stack-api" },
//!   { kind = "alb_target_group", load_balancer = "app/peakload-stack/50dc6c495c0c9188",
//!     target_group = "targetgroup/peakload-stack-api/73e2d6bc24d8a067" },
//!   { kind = "sqs_queue", queue = "peakload-stack-notifications" },
//!   { kind = "rds_instance", instance = "peakload-stack-mysql" },
//!   { kind = "dynamodb_table", table = "peakload-stack-carts" },   # operations = [...] optional
//!   { kind = "lambda_function", function = "resize-images" },
//! ]
//!
//! [observe.logs]
//! log_groups = ["/peakload/peakload-stack/api", "/peakload/peakload-stack/worker"]
//! patterns = [
//!   "ERROR",                                           # name = filter = "ERROR"
//!   { name = "timeouts", filter = "?timeout ?\"timed out\"" },
//! ]                                                    # default: errors, timeouts, oom
//! interval = 10                     # seconds per count (default: the cloudwatch period if
//!                                   # set, else 1 for runs up to 3 hours, else 60)
//! samples = 3                       # sample lines kept per pattern and log group
//!
//! [observe.scaling]
//! ecs = [{ cluster = "peakload-stack", service = "peakload-stack-api" }]
//! asg = ["peakload-stack-nodes"]
//! lookback = 900                    # seconds before the run start to include (default 900)
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::AwsSourceError;
use crate::presets::Preset;

/// `[observe.cloudwatch]`: where AWS is, and which metrics to read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchConfig {
    /// Default: the standard chain's region.
    #[serde(default)]
    pub region: Option<String>,
    /// Every AWS API at this URL (an emulator such as `moto_server`); logs and scaling use it
    /// too. Default: the standard endpoints (or `AWS_ENDPOINT_URL…`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Seconds per data point; `None`: the finest each metric has (high-resolution metrics at
    /// 1 s while CloudWatch keeps such data, standard ones at their minute).
    #[serde(default)]
    pub period: Option<u32>,
    #[serde(default)]
    pub metrics: Vec<MetricSpec>,
    #[serde(default)]
    pub presets: Vec<Preset>,
}

impl CloudWatchConfig {
    /// Checks what CloudWatch would refuse, before any call; every problem at once.
    pub fn validate(&self) -> Result<(), AwsSourceError> {
        let mut problems = Vec::new();
        if let Some(Err(e)) = self.period.map(check_period) {
            problems.push(e);
        }
        for (i, m) in self.metrics.iter().enumerate() {
            if m.namespace.trim().is_empty() || m.metric.trim().is_empty() {
                problems.push(format!("metrics[{i}]: namespace and metric must be set"));
            }
            if let Err(e) = check_stat(&m.stat) {
                problems.push(format!("metrics[{i}].stat: {e}"));
            }
            if m.dimensions.len() > 30 {
                problems.push(format!("metrics[{i}]: at most 30 dimensions"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AwsSourceError::Config(problems.join("; ")))
        }
    }

    /// The explicit metrics followed by every preset's expansion.
    pub fn queries(&self) -> Vec<MetricQuery> {
        let mut out: Vec<MetricQuery> = self.metrics.iter().map(MetricSpec::query).collect();
        for p in &self.presets {
            out.extend(p.expand());
        }
        out
    }
}

/// CloudWatch accepts 1, 5, 10, 30 or a multiple of 60 seconds.
pub(crate) fn check_period(period: u32) -> Result<(), String> {
    if matches!(period, 1 | 5 | 10 | 30) || (period > 0 && period % 60 == 0) {
        Ok(())
    } else {
        Err(format!(
            "period = {period}: CloudWatch accepts 1, 5, 10, 30 or a multiple of 60 seconds"
        ))
    }
}

/// The statistics GetMetricData accepts: the five standard ones, a percentile `p0`..`p100`
/// (decimals allowed), or an extended statistic with its arguments (`tm(10%:90%)`, `PR(:300)`),
/// or `tm99`, `wm99`, `tc99`, `ts99`, `IQM`.
pub(crate) fn check_stat(stat: &str) -> Result<(), String> {
    const STANDARD: [&str; 6] = ["Average", "Sum", "Minimum", "Maximum", "SampleCount", "IQM"];
    let percent = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_digit() || c == '.')
            && s.parse::<f64>().is_ok_and(|v| (0.0..=100.0).contains(&v))
    };
    let ok = STANDARD.contains(&stat)
        || stat.strip_prefix('p').is_some_and(percent)
        || ["tm", "wm", "tc", "ts", "TM", "WM", "TC", "TS", "PR"]
            .iter()
            .any(|prefix| {
                stat.strip_prefix(prefix).is_some_and(|rest| {
                    (*prefix != "PR" && percent(rest))
                        || (rest.starts_with('(') && rest.ends_with(')') && rest.len() > 2)
                })
            });
    if ok {
        Ok(())
    } else {
        let hint = match stat.to_ascii_lowercase().as_str() {
            "average" | "avg" | "mean" => " (did you mean \"Average\"?)",
            "sum" => " (did you mean \"Sum\"?)",
            "min" | "minimum" => " (did you mean \"Minimum\"?)",
            "max" | "maximum" => " (did you mean \"Maximum\"?)",
            "count" | "samplecount" => " (did you mean \"SampleCount\"?)",
            _ => "",
        };
        Err(format!(
            "unknown statistic \"{stat}\"{hint}. Use Average, Sum, Minimum, Maximum, SampleCount, a percentile such as p99 or p99.9, or an extended statistic such as tm99 or tm(10%:90%)"
        ))
    }
}

/// One metric, as written in the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub namespace: String,
    pub metric: String,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// `Average`, `Sum`, `Minimum`, `Maximum`, `SampleCount`, or a percentile `p99`, `p99.9`.
    #[serde(default = "default_stat")]
    pub stat: String,
    /// The unit to report (CloudWatch does not return it); not sent as a filter.
    #[serde(default)]
    pub unit: Option<String>,
}

fn default_stat() -> String {
    "Average".to_owned()
}

impl MetricSpec {
    pub fn query(&self) -> MetricQuery {
        MetricQuery {
            namespace: self.namespace.clone(),
            metric: self.metric.clone(),
            dimensions: self.dimensions.clone(),
            stat: self.stat.clone(),
            unit: self.unit.clone().unwrap_or_default(),
        }
    }
}

/// One resolved `GetMetricData` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricQuery {
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: String,
    /// Reported as the series' unit; empty when unknown.
    pub unit: String,
}

impl MetricQuery {
    pub fn new(namespace: &str, metric: &str, stat: &str, unit: &str) -> MetricQuery {
        MetricQuery {
            namespace: namespace.to_owned(),
            metric: metric.to_owned(),
            dimensions: BTreeMap::new(),
            stat: stat.to_owned(),
            unit: unit.to_owned(),
        }
    }

    pub fn dimension(mut self, name: &str, value: &str) -> MetricQuery {
        self.dimensions.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The series name: `Namespace/MetricName:Stat`.
    pub fn series_name(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.metric, self.stat)
    }
}

/// `[observe.logs]`: CloudWatch Logs groups and the patterns to count in them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    pub log_groups: Vec<String>,
    /// Default: [`LogPattern::defaults`].
    #[serde(default)]
    pub patterns: Vec<LogPattern>,
    /// Seconds per count; default: the CloudWatch period if one is set, else
    /// [`LogsConfig::interval_for`] the run.
    #[serde(default)]
    pub interval: Option<u32>,
    /// Sample lines kept per pattern and log group.
    #[serde(default = "default_samples")]
    pub samples: usize,
}

fn default_samples() -> usize {
    3
}

impl LogsConfig {
    pub fn new(log_groups: Vec<String>, patterns: Vec<LogPattern>) -> LogsConfig {
        LogsConfig {
            log_groups,
            patterns,
            interval: None,
            samples: default_samples(),
        }
    }

    /// Seconds per count for a run of `run_s` seconds: the configured interval, else `period`
    /// (the CloudWatch section's), else 1 s for runs up to 3 hours (a count a second times a
    /// change as well as the lines' own timestamps allow) and 1 minute beyond.
    pub fn interval_for(&self, period: Option<u32>, run_s: f64) -> u32 {
        self.interval
            .or(period)
            .unwrap_or(if run_s <= 3.0 * 3600.0 { 1 } else { 60 })
    }

    /// The patterns to count: the configured ones, or the defaults.
    pub fn patterns(&self) -> Vec<LogPattern> {
        if self.patterns.is_empty() {
            LogPattern::defaults()
        } else {
            self.patterns.clone()
        }
    }

    pub fn validate(&self) -> Result<(), AwsSourceError> {
        let mut problems = Vec::new();
        if self.log_groups.is_empty() {
            problems.push("log_groups must name at least one log group".to_owned());
        }
        if self.interval == Some(0) {
            problems.push("interval must be at least 1 second".to_owned());
        }
        for p in &self.patterns {
            if p.name().trim().is_empty() {
                problems.push("a pattern has an empty name".to_owned());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AwsSourceError::Config(problems.join("; ")))
        }
    }
}

/// A CloudWatch Logs filter pattern, named. Written as a plain string (its own name) or as
/// `{ name, filter }`. The syntax is CloudWatch's: terms are case-sensitive, space-separated
/// terms must all match, `?term ?term` matches any, `"a phrase"` matches literally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogPattern {
    Plain(String),
    Named { name: String, filter: String },
}

impl LogPattern {
    pub fn named(name: &str, filter: &str) -> LogPattern {
        LogPattern::Named {
            name: name.to_owned(),
            filter: filter.to_owned(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            LogPattern::Plain(s) => s,
            LogPattern::Named { name, .. } => name,
        }
    }

    pub fn filter(&self) -> &str {
        match self {
            LogPattern::Plain(s) => s,
            LogPattern::Named { filter, .. } => filter,
        }
    }

    /// `errors`, `timeouts` and `oom`, in CloudWatch filter syntax.
    pub fn defaults() -> Vec<LogPattern> {
        vec![
            LogPattern::named("errors", "?ERROR ?Error ?error ?Exception ?panicked"),
            LogPattern::named(
                "timeouts",
                "?timeout ?Timeout ?TimedOut ?\"timed out\" ?\"deadline exceeded\"",
            ),
            LogPattern::named(
                "oom",
                "?OutOfMemory ?\"out of memory\" ?OOMKilled ?\"Cannot allocate memory\"",
            ),
        ]
    }
}

/// `[observe.scaling]`: whose scaling activities to read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingConfig {
    /// ECS services (Application Auto Scaling).
    #[serde(default)]
    pub ecs: Vec<EcsService>,
    /// EC2 Auto Scaling group names.
    #[serde(default)]
    pub asg: Vec<String>,
    /// Seconds before the run start whose activities are included: a scale-out that began
    /// just before the run still explains capacity during it.
    #[serde(default)]
    pub lookback: Option<u32>,
}

impl ScalingConfig {
    pub fn lookback(&self) -> Duration {
        Duration::from_secs(u64::from(self.lookback.unwrap_or(900)))
    }
}

/// An ECS service, as Application Auto Scaling names it: `service/<cluster>/<service>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsService {
    pub cluster: String,
    pub service: String,
}

impl EcsService {
    pub fn resource_id(&self) -> String {
        format!("service/{}/{}", self.cluster, self.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cloudwatch_accepts() {
        for ok in [1, 5, 10, 30, 60, 300, 3600] {
            assert!(check_period(ok).is_ok(), "{ok}");
        }
        for bad in [0, 2, 45, 90] {
            assert!(check_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statistics_cloudwatch_accepts() {
        for ok in [
            "Average",
            "Sum",
            "SampleCount",
            "p99",
            "p99.9",
            "p0",
            "p100",
            "tm99",
            "tm(10%:90%)",
            "PR(:300)",
            "IQM",
            "wm95",
        ] {
            assert!(check_stat(ok).is_ok(), "{ok}");
        }
        for bad in ["", "p999x", "p101", "avg", "average", "PR", "tm()", "P99"] {
            assert!(check_stat(bad).is_err(), "{bad}");
        }
        assert!(check_stat("avg")
            .unwrap_err()
            .contains("did you mean \"Average\""));
    }
}
