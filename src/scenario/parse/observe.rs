//! `[observe]`: scrape targets, a Prometheus server to query after the run, and the AWS
//! sections (CloudWatch, logs, scaling), whose shape the AWS crate owns. The section's settings
//! ([`Observe`]) are defined here beside their reader, so a new source's keys, settings and
//! parsing stay in one file.

use std::time::Duration;

use toml::de::DeValue;

use super::fields::{entries, Fields};
use super::{Compiler, Value};
use crate::scenario::diag::did_you_mean;
use crate::scenario::duration::parse_duration;

/// `[observe]`: where the infrastructure's own signals come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Observe {
    /// Prometheus-format endpoints read every `scrape_interval` during the run.
    pub scrape: Vec<ScrapeTarget>,
    pub scrape_interval: Duration,
    /// `query_range` queries run against a Prometheus server after the run.
    pub prometheus: Option<PrometheusSource>,
    /// `[observe.cloudwatch]`: CloudWatch metrics read after the run (its region and
    /// endpoint serve the logs and scaling sources too).
    pub cloudwatch: Option<peakload_aws::CloudWatchConfig>,
    /// `[observe.logs]`: CloudWatch Logs pattern counts read after the run.
    pub logs: Option<peakload_aws::LogsConfig>,
    /// `[observe.scaling]`: ECS and EC2 Auto Scaling activities read after the run.
    pub scaling: Option<peakload_aws::ScalingConfig>,
    /// How long to wait after the load stops before reading the after-run sources: CloudWatch
    /// publishes data points with a delay.
    pub settle: Duration,
    /// How long each after-run read (a Prometheus server, the CloudWatch metrics, one log group,
    /// one scaling resource) may take before it is given up and named in a note; the others
    /// are kept.
    pub source_timeout: Duration,
}

/// `[observe] source_timeout` unless set.
pub const SOURCE_TIMEOUT: Duration = Duration::from_secs(60);

/// `[observe.prometheus]` in a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusSource {
    /// Base URL of the server, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// Resolution of the query; default 1 s.
    pub step: Duration,
    /// `(name, PromQL)`, in file order.
    pub queries: Vec<(String, String)>,
}

impl Default for Observe {
    fn default() -> Self {
        Observe {
            scrape: Vec::new(),
            scrape_interval: Duration::from_secs(1),
            prometheus: None,
            cloudwatch: None,
            logs: None,
            scaling: None,
            settle: Duration::ZERO,
            source_timeout: SOURCE_TIMEOUT,
        }
    }
}

impl Observe {
    pub fn is_empty(&self) -> bool {
        self.scrape.is_empty() && self.prometheus.is_none() && !self.reads_aws()
    }

    /// Whether any AWS source is configured.
    pub fn reads_aws(&self) -> bool {
        self.cloudwatch.is_some() || self.logs.is_some() || self.scaling.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScrapeTarget {
    /// `"stack"`: the `/metrics` of the run's target (the bundled stack, whether the run
    /// started it or `--target` points at one).
    Stack,
    /// A full URL of a metrics endpoint.
    Url(String),
}

const OBSERVE_KEYS: &[&str] = &[
    "scrape",
    "scrape_interval",
    "settle",
    "source_timeout",
    "prometheus",
    "cloudwatch",
    "logs",
    "scaling",
];
const CLOUDWATCH_KEYS: &[&str] = &["region", "endpoint_url", "period", "metrics", "presets"];
const LOGS_KEYS: &[&str] = &["log_groups", "patterns", "interval", "samples"];
const SCALING_KEYS: &[&str] = &["ecs", "asg", "lookback"];
const PROMETHEUS_KEYS: &[&str] = &["url", "step", "queries"];

/// Where a validation problem that starts with its place (`period = 45: …`,
/// `metrics[1].stat: …`) stands in the section: the value named, or the array item.
fn problem_at(f: &Fields<'_, '_>, problem: &str) -> Option<usize> {
    let place = problem.split([':', ' ']).next()?;
    let (key, rest) = place.split_once('[').unwrap_or((place, ""));
    let v = f.get(key)?;
    let Some((index, field)) = rest.split_once(']') else {
        return Some(v.span().start);
    };
    let DeValue::Array(items) = v.get_ref() else {
        return Some(v.span().start);
    };
    let item = items.get(index.parse::<usize>().ok()?)?;
    let field = field.trim_start_matches('.');
    if let (false, DeValue::Table(t)) = (field.is_empty(), item.get_ref()) {
        if let Some((_, value)) = entries(t)
            .into_iter()
            .find(|(k, _)| k.get_ref().as_ref() == field)
        {
            return Some(value.span().start);
        }
    }
    Some(item.span().start)
}

/// Where the value at a serde path stands, as deep as the path can be followed; with `at_key`,
/// a path that ends in a key points at the key (an unknown field), else at its value.
fn locate(v: &Value<'_>, path: &serde_path_to_error::Path, at_key: bool) -> usize {
    use serde_path_to_error::Segment;
    let mut at = v.span().start;
    let mut node = v;
    for seg in path.iter() {
        let next = match (seg, node.get_ref()) {
            (Segment::Map { key }, DeValue::Table(t)) => t
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == key)
                .map(|(k, v)| {
                    (
                        if at_key {
                            k.span().start
                        } else {
                            v.span().start
                        },
                        v,
                    )
                }),
            (Segment::Seq { index }, DeValue::Array(a)) => {
                a.get(*index).map(|v| (v.span().start, v))
            }
            _ => None,
        };
        match next {
            Some((start, n)) => {
                at = start;
                node = n;
            }
            None => break,
        }
    }
    at
}

/// serde's words in the file's terms: "expected a sequence" is an array to a TOML writer, and an
/// unknown variant gets a "did you mean".
fn friendlier(message: &str) -> String {
    let mut out = message
        .replace(
            "expected a sequence",
            "expected an array such as [\"a\", \"b\"]",
        )
        .replace(
            "expected a map",
            "expected a table such as { key = \"value\" }",
        )
        .replace("invalid type: ", "");
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some((word, expected)) = rest.split_once("`, expected one of ") {
            let candidates: Vec<&str> = expected.split(", ").map(|c| c.trim_matches('`')).collect();
            out.push_str(&did_you_mean(word, candidates.iter().copied()));
        }
    }
    out
}

impl<'s> Compiler<'s> {
    pub(super) fn observe(&mut self, v: &Value<'_>) -> Observe {
        let mut out = Observe::default();
        let Some(f) = self.fields(v, "[observe]", OBSERVE_KEYS, &[]) else {
            return out;
        };
        if let Some(list) = f.get("scrape") {
            match list.get_ref() {
                DeValue::Array(items) => {
                    for item in items.iter() {
                        let Some(s) = self.string(item, "scrape") else {
                            continue;
                        };
                        if s == "stack" {
                            out.scrape.push(ScrapeTarget::Stack);
                        } else if self.http_url(item, "scrape", s) {
                            out.scrape.push(ScrapeTarget::Url(s.to_string()));
                        }
                    }
                }
                _ => self.type_error(
                    list,
                    "scrape",
                    "an array such as [\"stack\", \"http://host:9100/metrics\"]",
                ),
            }
        }
        if let Some(d) = f
            .get("scrape_interval")
            .and_then(|v| self.duration(v, "scrape_interval", true))
        {
            out.scrape_interval = d;
        }
        if let Some(d) = f
            .get("settle")
            .and_then(|v| self.duration(v, "settle", false))
        {
            out.settle = d;
        }
        if let Some(d) = f
            .get("source_timeout")
            .and_then(|v| self.duration(v, "source_timeout", true))
        {
            out.source_timeout = d;
        }
        if let Some(p) = f.get("prometheus") {
            out.prometheus = self.prometheus(p);
        }
        if let Some(v) = f.get("cloudwatch") {
            out.cloudwatch = self.aws_section(
                v,
                "[observe.cloudwatch]",
                CLOUDWATCH_KEYS,
                peakload_aws::CloudWatchConfig::validate,
            );
        }
        if let Some(v) = f.get("logs") {
            out.logs = self.aws_section(
                v,
                "[observe.logs]",
                LOGS_KEYS,
                peakload_aws::LogsConfig::validate,
            );
        }
        if let Some(v) = f.get("scaling") {
            out.scaling = self.aws_section(v, "[observe.scaling]", SCALING_KEYS, |_| Ok(()));
        }
        out
    }

    /// An AWS section, read by its serde type (the AWS crate owns its shape) and checked by
    /// `validate` (what AWS would refuse). Keys are checked here first, for "did you mean";
    /// a value serde refuses is reported where it stands. Durations may be written as the
    /// rest of the file writes them (`"1m"`) or as seconds.
    fn aws_section<T: serde::de::DeserializeOwned>(
        &mut self,
        v: &Value<'_>,
        what: &str,
        allowed: &[&str],
        validate: impl Fn(&T) -> Result<(), peakload_aws::AwsSourceError>,
    ) -> Option<T> {
        let f = self.fields(v, what, allowed, &[])?;
        let mut json = self.toml_to_json(v)?;
        // Unknown keys are reported already; the rest is still worth checking.
        let mut clean = true;
        if let Some(map) = json.as_object_mut() {
            let before = map.len();
            map.retain(|k, _| allowed.contains(&k.as_str()));
            clean = map.len() == before;
        }
        for key in ["period", "interval", "lookback"] {
            let Some(field) = json.get_mut(key) else {
                continue;
            };
            let Some(text) = field.as_str().map(str::to_owned) else {
                continue;
            };
            let at = f.get(key).map_or(f.at, |v| v.span().start);
            // The general duration hint ("250ms", "1.5s") names values these keys refuse.
            let hint = match key {
                "period" => "write \"1s\", \"5s\", \"10s\", \"30s\" or whole minutes such as \"1m\" (or leave period out: the finest each metric has)",
                _ => "write whole seconds, such as \"10s\" or \"15m\"",
            };
            if key == "period" && text.trim() == "auto" {
                *field = serde_json::Value::Null;
                continue;
            }
            match parse_duration(&text) {
                Ok(d) if d.subsec_nanos() == 0 => *field = serde_json::Value::from(d.as_secs()),
                Ok(_) => {
                    self.error(
                        at,
                        format!("{what} \"{key}\" must be whole seconds, found \"{text}\"; {hint}"),
                    );
                    return None;
                }
                Err(e) => {
                    let reason = e.split("; ").next().unwrap_or(&e);
                    self.error(at, format!("bad duration for \"{key}\": {reason}; {hint}"));
                    return None;
                }
            }
        }
        let parsed = match serde_path_to_error::deserialize::<_, T>(json) {
            Ok(t) => t,
            Err(e) => {
                let message = friendlier(&e.inner().to_string());
                let at = locate(v, e.path(), message.starts_with("unknown field"));
                let path = e.path().to_string();
                let place = if path == "." {
                    String::new()
                } else {
                    format!(" {path}")
                };
                self.error(at, format!("{what}{place}: {message}"));
                return None;
            }
        };
        match validate(&parsed) {
            Ok(()) => clean.then_some(parsed),
            Err(peakload_aws::AwsSourceError::Config(msg)) => {
                // Each problem names its place ("period = 45: …", "metrics[1].stat: …").
                for problem in msg.split("; ") {
                    let at = problem_at(&f, problem).unwrap_or(f.at);
                    self.error(at, format!("{what} {problem}"));
                }
                None
            }
            Err(e) => {
                self.error(f.at, format!("{what}: {e}"));
                None
            }
        }
    }

    fn prometheus(&mut self, v: &Value<'_>) -> Option<PrometheusSource> {
        let f = self.fields(v, "[observe.prometheus]", PROMETHEUS_KEYS, &[])?;
        let url = match f.get("url") {
            Some(u) => self
                .string(u, "url")
                .filter(|s| self.http_url(u, "url", s))
                .map(|s| s.trim_end_matches('/').to_string()),
            None => {
                if f.missing("url") {
                    self.error(
                        f.at,
                        "[observe.prometheus] needs url = \"http://host:9090\"",
                    );
                }
                None
            }
        };
        let step = f
            .get("step")
            .and_then(|s| self.duration(s, "step", true))
            .unwrap_or(Duration::from_secs(1));
        let mut queries = Vec::new();
        match f.get("queries") {
            Some(q) => match q.get_ref() {
                DeValue::Table(t) => {
                    for (k, val) in entries(t) {
                        if let Some(promql) = self.string(val, k.get_ref().as_ref()) {
                            if promql.trim().is_empty() {
                                self.error(
                                    val.span().start,
                                    format!("query \"{}\" is empty", k.get_ref().as_ref()),
                                );
                            } else {
                                queries.push((k.get_ref().to_string(), promql.to_string()));
                            }
                        }
                    }
                    if t.is_empty() {
                        self.error(
                            q.span().start,
                            "\"queries\" needs at least one name = \"promql\"",
                        );
                    }
                }
                _ => self.type_error(q, "queries", "a table of name = \"promql\""),
            },
            None => {
                if f.missing("queries") {
                    self.error(
                        f.at,
                        "[observe.prometheus] needs queries = { name = \"promql\" }",
                    );
                }
            }
        }
        Some(PrometheusSource {
            url: url?,
            step,
            queries,
        })
    }

    /// Reports `s` unless it is an absolute http(s) URL with a host.
    fn http_url(&mut self, v: &Value<'_>, key: &str, s: &str) -> bool {
        match crate::url::split_url(s) {
            Ok(_) => true,
            Err(e) => {
                let hint = if key == "scrape" {
                    " (or \"stack\")"
                } else {
                    ""
                };
                self.error(
                    v.span().start,
                    format!("\"{key}\" entry \"{s}\": {e}{hint}"),
                );
                false
            }
        }
    }
}
