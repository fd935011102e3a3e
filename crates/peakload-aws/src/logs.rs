//! CloudWatch Logs through `FilterLogEvents`: for every log group and pattern, how many
//! lines matched in each interval of the run, and the first few matching lines.
//!
//! CloudWatch does the matching (the pattern is its filter syntax), so only matching lines
//! cross the network. A bound on the lines read per pattern keeps a log storm from stalling
//! the diagnosis; hitting it sets [`LogCounts::truncated`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::LogPattern;
use crate::error::{AwsSourceError, Redactor};
use crate::model::{from_epoch_millis, RunWindow, Series};

/// Lines read per (log group, pattern) at most.
pub const MAX_EVENTS_PER_PATTERN: usize = 100_000;

/// A sample line is cut to this many bytes.
const SAMPLE_MAX_BYTES: usize = 1000;

/// Pattern counts and sample lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogCounts {
    /// One series per (log group, pattern): `name` = `log:<pattern>`, unit `Count`, one point
    /// per interval (zeros included: no match is a finding too).
    pub series: Vec<Series>,
    pub samples: Vec<LogSample>,
    /// Whether some (log group, pattern) had more than [`MAX_EVENTS_PER_PATTERN`] lines.
    pub truncated: bool,
}

/// A matching line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogSample {
    pub pattern: String,
    pub log_group: String,
    pub log_stream: String,
    /// Seconds since run start.
    pub at: f64,
    pub message: String,
}

pub(crate) async fn fetch(
    client: &aws_sdk_cloudwatchlogs::Client,
    redactor: &Redactor,
    log_groups: &[String],
    patterns: &[LogPattern],
    window: &RunWindow,
    interval: Duration,
    samples_per_pattern: usize,
) -> Result<LogCounts, AwsSourceError> {
    if interval.is_zero() {
        return Err(AwsSourceError::Config("log interval must be > 0".into()));
    }
    let step = interval.as_secs_f64();
    let span = (window.end_epoch_secs() - window.start_epoch_secs()).max(0.0);
    let bins = ((span / step).ceil() as usize).max(1);
    let start_ms = (window.start_epoch_secs() * 1000.0).floor() as i64;
    let end_ms = (window.end_epoch_secs() * 1000.0).ceil() as i64;
    let mut out = LogCounts::default();
    for group in log_groups {
        for pattern in patterns {
            let mut counts = vec![0.0_f64; bins];
            let mut kept = 0;
            let mut read = 0;
            let mut next_token: Option<String> = None;
            loop {
                let page = client
                    .filter_log_events()
                    .log_group_name(group)
                    .start_time(start_ms)
                    .end_time(end_ms)
                    .filter_pattern(pattern.filter())
                    .set_next_token(next_token.take())
                    .send()
                    .await
                    .map_err(|e| redactor.call_error("logs", "FilterLogEvents", e))?;
                for event in page.events() {
                    let Some(ms) = event.timestamp() else {
                        continue;
                    };
                    read += 1;
                    let at = window.offset(from_epoch_millis(ms));
                    if at < 0.0 {
                        continue;
                    }
                    let bin = ((at / step) as usize).min(bins - 1);
                    counts[bin] += 1.0;
                    if kept < samples_per_pattern {
                        kept += 1;
                        out.samples.push(LogSample {
                            pattern: pattern.name().to_owned(),
                            log_group: group.clone(),
                            log_stream: event.log_stream_name().unwrap_or_default().to_owned(),
                            at,
                            message: cut(event.message().unwrap_or_default().trim_end()),
                        });
                    }
                }
                if read >= MAX_EVENTS_PER_PATTERN {
                    out.truncated = true;
                    break;
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => next_token = Some(t.to_owned()),
                    _ => break,
                }
            }
            out.series.push(Series {
                source: "cloudwatch_logs".to_owned(),
                name: format!("log:{}", pattern.name()),
                unit: "Count".to_owned(),
                dimensions: BTreeMap::from([
                    ("log_group".to_owned(), group.clone()),
                    ("pattern".to_owned(), pattern.filter().to_owned()),
                ]),
                points: counts
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| (i as f64 * step, n))
                    .collect(),
            });
        }
    }
    Ok(out)
}

fn cut(line: &str) -> String {
    if line.len() <= SAMPLE_MAX_BYTES {
        return line.to_owned();
    }
    let mut end = SAMPLE_MAX_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}
