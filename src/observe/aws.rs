//! The AWS sources (`[observe.cloudwatch]`, `[observe.logs]`, `[observe.scaling]`), read after
//! the run through the `peakload-aws` crate and brought into this module's model.
//!
//! CloudWatch publishes data points with a delay (standard metrics: about a minute), so a
//! series that stops short of the run's end is named in a note that says how to wait for it
//! (`[observe] settle`).

use std::time::{Duration, UNIX_EPOCH};

use peakload_aws::{AwsSources, Connect};

use super::RunWindow;
use crate::record::infra::{Event, Infra, Series};

/// The AWS sections of `[observe]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsObserve {
    pub cloudwatch: Option<peakload_aws::CloudWatchConfig>,
    pub logs: Option<peakload_aws::LogsConfig>,
    pub scaling: Option<peakload_aws::ScalingConfig>,
}

impl AwsObserve {
    pub fn from_scenario(o: &crate::scenario::Observe) -> Option<AwsObserve> {
        o.reads_aws().then(|| AwsObserve {
            cloudwatch: o.cloudwatch.clone(),
            logs: o.logs.clone(),
            scaling: o.scaling.clone(),
        })
    }

    /// Reads every configured source for `window`. Never fails: what could not be read is a
    /// note, and the rest is still returned.
    pub async fn collect(&self, window: &RunWindow) -> Infra {
        let mut infra = Infra::default();
        let connect = self
            .cloudwatch
            .as_ref()
            .map(Connect::from)
            .unwrap_or_default();
        let sources = match AwsSources::connect(&connect).await {
            Ok(s) => s,
            Err(e) => {
                infra.notes.push(format!("aws: {e}"));
                return infra;
            }
        };
        let aws_window = to_aws_window(window);
        let observed = match sources
            .collect(
                self.cloudwatch.as_ref(),
                self.logs.as_ref(),
                self.scaling.as_ref(),
                &aws_window,
            )
            .await
        {
            Ok(o) => o,
            Err(e) => {
                infra.notes.push(format!("aws: {e}"));
                return infra;
            }
        };
        infra
            .notes
            .extend(observed.errors.iter().map(|e| format!("aws: {e}")));
        let period = self
            .cloudwatch
            .as_ref()
            .map_or(60.0, |c| f64::from(c.period));
        infra
            .notes
            .extend(data_notes(&observed.series, window.duration_s, period));
        infra.series.extend(observed.series.into_iter().map(series));
        infra
            .events
            .extend(observed.events.into_iter().map(scaling_event));
        infra
            .events
            .extend(observed.log_samples.into_iter().map(|s| Event {
                source: format!("cloudwatch_logs:{}", s.log_group),
                name: "log".into(),
                start: s.at,
                end: None,
                cause: s.message,
                status: s.pattern,
                dimensions: [("log_stream".to_string(), s.log_stream)].into(),
            }));
        infra
    }
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
        span_s: None,
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

/// Names the metric series with no data (a wrong namespace, metric or dimension reads as
/// nothing, not as an error) and those whose data stops well before the run's end (CloudWatch
/// had not published it yet).
fn data_notes(series: &[peakload_aws::Series], run_s: f64, period: f64) -> Vec<String> {
    let metrics = || series.iter().filter(|s| s.source == "cloudwatch");
    let empty: Vec<&str> = metrics()
        .filter(|s| s.points.is_empty())
        .map(|s| s.name.as_str())
        .collect();
    let late: Vec<&str> = metrics()
        .filter(|s| s.points.last().is_some_and(|p| p.0 + 2.0 * period < run_s))
        .map(|s| s.name.as_str())
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
    notes
}

fn listed(names: &[&str]) -> String {
    let shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
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
        }
    }

    #[test]
    fn series_keep_points_and_speak_our_units() {
        let s = series(aws_series(vec![(0.0, 10.0), (60.0, 80.0)]));
        assert_eq!(s.unit, "percent");
        assert_eq!(s.points, vec![(0.0, 10.0), (60.0, 80.0)]);
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
    fn missing_and_late_data_are_named_with_the_fix() {
        let late = aws_series(vec![(0.0, 1.0), (60.0, 2.0)]);
        let notes = data_notes(&[late.clone(), aws_series(vec![])], 600.0, 60.0);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("no data in the run's window") && notes[0].contains("dimensions")
        );
        assert!(notes[1].contains("CPUUtilization") && notes[1].contains("settle"));
        assert!(data_notes(&[late], 150.0, 60.0).is_empty());
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
