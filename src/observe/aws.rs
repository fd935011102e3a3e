//! The AWS sources (`[observe.cloudwatch]`, `[observe.logs]`, `[observe.scaling]`), read after
//! the run through the `peakload-aws` crate and brought into this module's model.
//!
//! Every read (the metrics, each log group, each scaling resource) has its own time limit and
//! runs beside the others; what arrived is kept when another read fails, hangs or the run is
//! interrupted, and the notes name what was not read (operation, resource, endpoint).
//!
//! CloudWatch publishes data points with a delay (standard metrics: about a minute), so a
//! series that stops short of the run's end is named in a note that says how to wait for it
//! (`[observe] settle`); one with too few values to time a change in the run is named too.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use peakload_aws::{AwsSources, Connect, Observed, SharedProgress};

use super::RunWindow;
use crate::record::infra::{Event, Infra, Series};

/// The AWS sections of `[observe]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsObserve {
    pub cloudwatch: Option<peakload_aws::CloudWatchConfig>,
    pub logs: Option<peakload_aws::LogsConfig>,
    pub scaling: Option<peakload_aws::ScalingConfig>,
}

/// What [`AwsObserve::collect_into`] names while it resolves the region and credentials.
const CONNECTING: &str = "aws: resolving the region and credentials";

impl AwsObserve {
    pub fn from_scenario(o: &crate::scenario::Observe) -> Option<AwsObserve> {
        o.reads_aws().then(|| AwsObserve {
            cloudwatch: o.cloudwatch.clone(),
            logs: o.logs.clone(),
            scaling: o.scaling.clone(),
        })
    }

    /// Reads every configured source for `window`, each read within `limit`. Never fails: what
    /// could not be read is a note, and the rest is still returned.
    pub async fn collect(&self, window: &RunWindow, limit: Duration) -> Infra {
        let progress = SharedProgress::default();
        self.collect_into(window, limit, &progress).await;
        self.infra(progress, window)
    }

    /// Connects, then reads every configured source into `progress` (see
    /// `AwsSources::collect_into`): a caller that stops waiting keeps what arrived.
    pub async fn collect_into(
        &self,
        window: &RunWindow,
        limit: Duration,
        progress: &SharedProgress,
    ) {
        let connect = self
            .cloudwatch
            .as_ref()
            .map(Connect::from)
            .unwrap_or_default();
        let failed = |message: String| {
            let mut p = progress
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            p.pending.retain(|n| n != CONNECTING);
            p.observed.errors.push(message);
        };
        progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pending
            .push(CONNECTING.into());
        let sources = match tokio::time::timeout(limit, AwsSources::connect(&connect)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return failed(e.to_string()),
            Err(_) => {
                return failed(format!(
                    "{CONNECTING}: no answer within {} s",
                    limit.as_secs_f64()
                ))
            }
        };
        progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pending
            .retain(|n| n != CONNECTING);
        if let Err(e) = sources
            .collect_into(
                self.cloudwatch.as_ref(),
                self.logs.as_ref(),
                self.scaling.as_ref(),
                &to_aws_window(window),
                limit,
                progress,
            )
            .await
        {
            failed(e.to_string());
        }
    }

    /// What `progress` holds, in this module's model, with notes for what failed, what had not
    /// answered yet (the caller stopped waiting) and what is thin.
    pub fn infra(&self, progress: SharedProgress, window: &RunWindow) -> Infra {
        let (observed, pending) = {
            let mut p = progress
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (
                std::mem::take(&mut p.observed),
                std::mem::take(&mut p.pending),
            )
        };
        let mut infra = convert(observed, window.duration_s);
        infra.notes.extend(pending.iter().map(|name| {
            format!("{name}: not read: interrupted before it answered (what the other sources returned is kept)")
        }));
        infra
    }
}

/// Observed data in this module's model, with the notes about it.
fn convert(observed: Observed, run_s: f64) -> Infra {
    let mut infra = Infra::default();
    infra
        .notes
        .extend(observed.errors.iter().map(|e| format!("aws: {e}")));
    infra
        .notes
        .extend(observed.notes.iter().map(|e| format!("aws: {e}")));
    infra.notes.extend(data_notes(&observed.series, run_s));
    infra.series.extend(observed.series.into_iter().map(series));
    infra
        .events
        .extend(observed.events.into_iter().map(scaling_event));
    infra.events.extend(log_lines(observed.log_samples));
    infra
}

/// Sample log lines as events: each an instant (`end` = `start`), once even when it matched
/// several patterns (its `status` then names them all).
fn log_lines(samples: Vec<peakload_aws::LogSample>) -> Vec<Event> {
    let mut lines: BTreeMap<(String, String, u64, String), Vec<String>> = BTreeMap::new();
    let mut order = Vec::new();
    for s in samples {
        let key = (s.log_group, s.log_stream, s.at.to_bits(), s.message);
        let patterns = lines.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        if !patterns.contains(&s.pattern) {
            patterns.push(s.pattern);
        }
    }
    order
        .into_iter()
        .map(|key| {
            let patterns = lines.remove(&key).unwrap_or_default();
            let (group, stream, at, message) = key;
            let at = f64::from_bits(at);
            Event {
                source: format!("cloudwatch_logs:{group}"),
                name: "log".into(),
                start: at,
                end: Some(at),
                cause: message,
                status: patterns.join(", "),
                dimensions: [("log_stream".to_string(), stream)].into(),
            }
        })
        .collect()
}

fn to_aws_window(w: &RunWindow) -> peakload_aws::RunWindow {
    let start = UNIX_EPOCH + Duration::from_secs_f64(w.start_unix.max(0.0));
    let end = start + Duration::from_secs_f64(w.duration_s.max(0.0));
    peakload_aws::RunWindow::new(start, end)
}

/// CloudWatch's unit names in this model's vocabulary.
fn unit(cloudwatch: &str) -> String {
    match cloudwatch {
        "Percent" => "percent".into(),
        "Seconds" => "seconds".into(),
        "Bytes" => "bytes".into(),
        "Count" => "count".into(),
        "Count/Second" => "per_second".into(),
        "Bytes/Second" => "bytes_per_second".into(),
        other => other.to_ascii_lowercase(),
    }
}

fn series(s: peakload_aws::Series) -> Series {
    Series {
        source: s.source,
        name: s.name,
        unit: unit(&s.unit),
        dimensions: s.dimensions,
        span_s: s.span_s,
        points: s.points,
    }
}

/// A scaling activity: named `scaling` (what the diagnosis looks for), with AWS's description
/// leading the cause.
fn scaling_event(e: peakload_aws::Event) -> Event {
    let cause = match (e.name.trim(), e.cause.trim()) {
        ("", c) => c.to_string(),
        (d, "") => d.to_string(),
        (d, c) => format!("{d} {c}"),
    };
    Event {
        source: e.source,
        name: "scaling".into(),
        start: e.start,
        end: e.end,
        cause,
        status: e.status,
        dimensions: e.dimensions,
    }
}

/// Fewer values than this within the run cannot show a change against a baseline.
const FEW_VALUES: usize = 3;

/// Names the metric series with no data (a wrong namespace, metric or dimension reads as
/// nothing, not as an error), those whose data stops well before the run's end (CloudWatch
/// had not published it yet), and those with too few values in the run to time a change (a
/// period as long as the run).
fn data_notes(series: &[peakload_aws::Series], run_s: f64) -> Vec<String> {
    let metrics = || series.iter().filter(|s| s.source == "cloudwatch");
    let period = |s: &peakload_aws::Series| s.span_s.unwrap_or(60.0);
    // Named with their dimensions: two services' CPU share a name.
    let empty: Vec<String> = metrics().filter(|s| s.points.is_empty()).map(key).collect();
    let late: Vec<String> = metrics()
        .filter(|s| {
            s.points
                .last()
                .is_some_and(|p| p.0 + 2.0 * period(s) < run_s)
        })
        .map(key)
        .collect();
    let in_run = |s: &peakload_aws::Series| {
        s.points
            .iter()
            .filter(|(t, _)| *t < run_s && t + period(s) > 0.0)
            .count()
    };
    let few: Vec<String> = metrics()
        .filter(|s| (1..FEW_VALUES).contains(&in_run(s)))
        .map(|s| format!("{} ({} at {:.0} s)", key(s), in_run(s), period(s)))
        .collect();
    let mut notes = Vec::new();
    if !empty.is_empty() {
        notes.push(format!(
            "cloudwatch: {} had no data in the run's window: check the namespace, metric name, dimensions (all of them, exactly) and region",
            listed(&empty)
        ));
    }
    if !late.is_empty() {
        notes.push(format!(
            "cloudwatch: {} had no data for the end of the run (CloudWatch publishes with a delay; set [observe] settle = \"2m\" to wait for it)",
            listed(&late)
        ));
    }
    if !few.is_empty() {
        notes.push(format!(
            "cloudwatch: {} had fewer than {FEW_VALUES} values in the {run_s:.0} s run: too coarse to time a change against the users' (leave `period` out to read the finest each metric has; a standard metric has one value a minute, so publish it at high resolution or run for several minutes)",
            listed(&few)
        ));
    }
    notes
}

/// `name{k="v",…}`, as the diagnosis names a series.
fn key(s: &peakload_aws::Series) -> String {
    if s.dimensions.is_empty() {
        return s.name.clone();
    }
    let dims: Vec<String> = s
        .dimensions
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{}{{{}}}", s.name, dims.join(","))
}

fn listed(names: &[String]) -> String {
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        format!("{shown} and {} more", names.len() - 3)
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_series(points: Vec<(f64, f64)>) -> peakload_aws::Series {
        peakload_aws::Series {
            source: "cloudwatch".into(),
            name: "AWS/ECS/CPUUtilization:Average".into(),
            unit: "Percent".into(),
            dimensions: Default::default(),
            points,
            span_s: Some(60.0),
        }
    }

    #[test]
    fn series_keep_points_and_spans_and_speak_our_units() {
        let s = series(aws_series(vec![(0.0, 10.0), (60.0, 80.0)]));
        assert_eq!(s.unit, "percent");
        assert_eq!(s.points, vec![(0.0, 10.0), (60.0, 80.0)]);
        assert_eq!(s.span_s, Some(60.0), "a value covers its period");
        assert_eq!(unit("Count/Second"), "per_second");
        assert_eq!(unit(""), "");
    }

    #[test]
    fn scaling_activities_become_scaling_events() {
        let e = scaling_event(peakload_aws::Event {
            source: "application-autoscaling".into(),
            name: "Setting desired count to 4.".into(),
            start: 12.0,
            end: Some(95.0),
            cause: "monitor alarm cpu-high in state ALARM triggered policy cpu70".into(),
            status: "Successful".into(),
            dimensions: [("desired_capacity".to_string(), "4".to_string())].into(),
        });
        assert_eq!(e.name, "scaling");
        assert!(e
            .cause
            .starts_with("Setting desired count to 4. monitor alarm"));
        assert_eq!(e.dimensions["desired_capacity"], "4");
    }

    #[test]
    fn missing_late_and_thin_data_are_named_with_the_fix() {
        let late = aws_series((0..4).map(|k| (k as f64 * 60.0, 1.0)).collect());
        let notes = data_notes(&[late.clone(), aws_series(vec![])], 600.0);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("no data in the run's window") && notes[0].contains("dimensions")
        );
        assert!(notes[1].contains("CPUUtilization") && notes[1].contains("settle"));
        assert!(data_notes(&[late], 200.0).is_empty());
        // A minute's period over a 60 s run: two values, named, with what to do.
        let two = aws_series(vec![(-20.0, 30.0), (40.0, 50.0)]);
        let notes = data_notes(&[two], 60.0);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("CPUUtilization:Average (2 at 60 s)")
                && notes[0].contains("leave `period` out"),
            "{notes:?}"
        );
    }

    #[test]
    fn two_services_without_data_are_named_apart() {
        let service = |name: &str| {
            let mut s = aws_series(vec![]);
            s.dimensions = [("ServiceName".to_string(), name.to_string())].into();
            s
        };
        let notes = data_notes(&[service("api"), service("worker")], 60.0);
        assert!(
            notes[0].starts_with(
                "cloudwatch: AWS/ECS/CPUUtilization:Average{ServiceName=\"api\"}, AWS/ECS/CPUUtilization:Average{ServiceName=\"worker\"} had no data"
            ),
            "{notes:?}"
        );
    }

    #[test]
    fn a_log_line_matching_two_patterns_is_one_instant_event() {
        let sample = |pattern: &str, at: f64, message: &str| peakload_aws::LogSample {
            pattern: pattern.into(),
            log_group: "/ecs/api".into(),
            log_stream: "api/1".into(),
            at,
            message: message.into(),
        };
        let events = log_lines(vec![
            sample("errors", 25.15, "ERROR connection pool exhausted: timeout"),
            sample("errors", 26.0, "ERROR connection pool exhausted"),
            sample(
                "timeouts",
                25.15,
                "ERROR connection pool exhausted: timeout",
            ),
        ]);
        let shown: Vec<(f64, Option<f64>, &str)> = events
            .iter()
            .map(|e| (e.start, e.end, e.status.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (25.15, Some(25.15), "errors, timeouts"),
                (26.0, Some(26.0), "errors")
            ]
        );
        assert_eq!(events[0].source, "cloudwatch_logs:/ecs/api");
    }

    #[test]
    fn window_converts_to_wall_clock() {
        let w = to_aws_window(&RunWindow {
            start_unix: 1_700_000_000.0,
            duration_s: 30.0,
        });
        assert_eq!(
            w.end.duration_since(w.start).unwrap(),
            Duration::from_secs(30)
        );
    }
}
