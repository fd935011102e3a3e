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
    /// per interval at its start, `span_s` the interval (zeros included: no match is a finding
    /// too).
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
                    // Checked here as well: an emulator may not apply the pattern, and a
                    // count of every line would read as a burst of everything.
                    if !matches_filter(pattern.filter(), event.message().unwrap_or_default()) {
                        continue;
                    }
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
                // The pattern's name is in the series name; its filter text would only make
                // the key long.
                dimensions: BTreeMap::from([("log_group".to_owned(), group.clone())]),
                points: counts
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| (i as f64 * step, n))
                    .collect(),
                // A count covers its whole interval, not the moment it starts.
                span_s: Some(step),
            });
        }
    }
    Ok(out)
}

/// Whether `message` matches a CloudWatch Logs filter pattern of unstructured terms: every
/// plain term (or `"quoted phrase"`) present, no `-term` present, and at least one `?term`
/// when there are any. Terms are case-sensitive, as CloudWatch's are. JSON (`{ … }`),
/// space-delimited (`[ … ]`) and regular-expression (`%…%`) patterns are left to CloudWatch.
pub fn matches_filter(pattern: &str, message: &str) -> bool {
    let p = pattern.trim();
    if p.is_empty() || p.starts_with('{') || p.starts_with('[') || p.starts_with('%') {
        return true;
    }
    let (mut all, mut none, mut any) = (Vec::new(), Vec::new(), Vec::new());
    let mut rest = p;
    while !rest.is_empty() {
        let (prefix, body) = match rest.as_bytes()[0] {
            b'?' => (Some('?'), &rest[1..]),
            b'-' => (Some('-'), &rest[1..]),
            _ => (None, rest),
        };
        let (term, after) = if let Some(quoted) = body.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            let end = body.find(char::is_whitespace).unwrap_or(body.len());
            (&body[..end], &body[end..])
        };
        if !term.is_empty() {
            match prefix {
                Some('?') => any.push(term),
                Some(_) => none.push(term),
                None => all.push(term),
            }
        }
        rest = after.trim_start();
    }
    all.iter().all(|t| message.contains(t))
        && !none.iter().any(|t| message.contains(t))
        && (any.is_empty() || any.iter().any(|t| message.contains(t)))
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

#[cfg(test)]
mod tests {
    use super::matches_filter;

    #[test]
    fn filter_terms_as_cloudwatch_reads_them() {
        let errors = "?ERROR ?Error ?error ?Exception ?panicked";
        assert!(matches_filter(errors, "ERROR request failed"));
        assert!(!matches_filter(errors, "INFO all good"));
        let oom = "?OutOfMemory ?\"out of memory\" ?OOMKilled";
        assert!(matches_filter(oom, "fatal: out of memory"));
        assert!(!matches_filter(oom, "ERROR request failed: out of"));
        assert!(matches_filter("ERROR timeout", "ERROR upstream timeout"));
        assert!(!matches_filter("ERROR timeout", "ERROR refused"));
        assert!(!matches_filter("ERROR -healthz", "ERROR on /healthz"));
        assert!(matches_filter("", "anything"));
        assert!(matches_filter(
            "{ $.level = \"error\" }",
            "anything: left to CloudWatch"
        ));
    }
}
