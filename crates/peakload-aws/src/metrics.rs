//! CloudWatch metrics through `GetMetricData`: queries in, one [`Series`] per query out.
//!
//! Queries go in calls of at most 500 (the API's limit), each call paginated with
//! `NextToken`; the pages of one query are joined. The window is widened to whole periods
//! (CloudWatch aggregates on period boundaries), and points are placed relative to the run
//! start, each at the start of the period it aggregates (`span_s` = the period).
//!
//! [`read_finest`] chooses the period: the finest CloudWatch still keeps for data as old as the
//! run ([`finest_kept`]: 1 s for 3 hours, 1 minute for 15 days, 5 minutes for 63 days, then an
//! hour) and that reads the run in at most 3600 values ([`finest_for_length`]: 1 s up to an
//! hour's run), or the one asked for; then each metric whose data turns out coarser (a standard
//! metric has a point a minute, stamped on the minute: [`natural_period`]) is read again at its
//! own resolution, so that no value claims a shorter interval than it aggregates. Which period
//! each series was read at is said in a note.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};

use crate::config::{check_period, MetricQuery};
use crate::error::{AwsSourceError, Redactor};
use crate::model::{RunWindow, Series};

/// `GetMetricData` takes at most this many queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// Pages of one call to follow before giving up (a bound, not an expected figure).
const MAX_PAGES: usize = 1000;

/// Reads `queries` over `window` at `period`, in calls of at most `per_call` queries.
pub(crate) async fn fetch(
    client: &aws_sdk_cloudwatch::Client,
    redactor: &Redactor,
    queries: &[MetricQuery],
    window: &RunWindow,
    period: Duration,
    per_call: usize,
) -> Result<Vec<Series>, AwsSourceError> {
    let period_secs = u32::try_from(period.as_secs())
        .ok()
        .filter(|p| Duration::from_secs(u64::from(*p)) == period)
        .ok_or_else(|| AwsSourceError::Config(format!("period {period:?} is not whole seconds")))?;
    check_period(period_secs).map_err(AwsSourceError::Config)?;
    let (start, end) = aligned(window, period_secs);
    let mut series: Vec<Series> = queries
        .iter()
        .map(|q| Series {
            source: "cloudwatch".to_owned(),
            name: q.series_name(),
            unit: q.unit.clone(),
            dimensions: q.dimensions.clone(),
            points: Vec::new(),
            span_s: Some(f64::from(period_secs)),
        })
        .collect();
    for (chunk_index, chunk) in queries
        .chunks(per_call.clamp(1, MAX_QUERIES_PER_CALL))
        .enumerate()
    {
        let offset = chunk_index * per_call.clamp(1, MAX_QUERIES_PER_CALL);
        let data_queries: Vec<MetricDataQuery> = chunk
            .iter()
            .enumerate()
            .map(|(i, q)| data_query(&query_id(offset + i), q, period_secs))
            .collect();
        let ids: HashMap<String, usize> = (0..chunk.len())
            .map(|i| (query_id(offset + i), offset + i))
            .collect();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = client
                .get_metric_data()
                .set_metric_data_queries(Some(data_queries.clone()))
                .start_time(DateTime::from_secs(start))
                .end_time(DateTime::from_secs(end))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| redactor.call_error("cloudwatch", "GetMetricData", e))?;
            for result in page.metric_data_results() {
                let Some(&index) = result.id().and_then(|id| ids.get(id)) else {
                    continue;
                };
                let points = &mut series[index].points;
                for (t, v) in result.timestamps().iter().zip(result.values()) {
                    let at = match SystemTime::try_from(*t) {
                        Ok(t) => window.offset(t),
                        Err(_) => t.as_secs_f64() - window.start_epoch_secs(),
                    };
                    if v.is_finite() {
                        points.push((at, *v));
                    }
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next_token = Some(t.to_owned()),
                _ => break,
            }
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        s.points.dedup_by(|a, b| a.0 == b.0);
    }
    Ok(series)
}

/// Every period CloudWatch accepts that a metric's resolution may be, finest first (periods of
/// several minutes or hours are multiples of these).
const RESOLUTIONS: [u32; 7] = [1, 5, 10, 30, 60, 300, 3600];

/// The finest period CloudWatch still keeps for data `age` old: data finer than a minute
/// (high-resolution metrics) for 3 hours, 1-minute data for 15 days, 5-minute data for 63
/// days, then 1-hour data.
pub fn finest_kept(age: Duration) -> u32 {
    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;
    match age.as_secs() {
        a if a < 3 * HOUR => 1,
        a if a < 15 * DAY => 60,
        a if a < 63 * DAY => 300,
        _ => 3600,
    }
}

/// Values per metric a run is read at, at most, when the period is left to choose: an hour's
/// run at 1 s; a longer one at the next coarser period.
pub const MAX_VALUES_PER_METRIC: f64 = 3600.0;

/// The finest period that keeps a run of `run_s` seconds within [`MAX_VALUES_PER_METRIC`].
pub fn finest_for_length(run_s: f64) -> u32 {
    RESOLUTIONS
        .iter()
        .copied()
        .find(|p| run_s / f64::from(*p) <= MAX_VALUES_PER_METRIC)
        .unwrap_or(3600)
}

/// How long CloudWatch keeps data at `period`, in words, for notes.
fn kept_for(period: u32) -> &'static str {
    match period {
        p if p < 60 => "3 hours",
        p if p < 300 => "15 days",
        p if p < 3600 => "63 days",
        _ => "15 months",
    }
}

/// The resolution a metric's data has, read at `asked`: the coarsest of [`RESOLUTIONS`] (not
/// finer than `asked`) on whose boundaries every point falls and that is no longer than the
/// shortest distance between two points. A standard metric read at 1 s has a point a minute,
/// each on the minute: 60. With a single point, the distance is unknown and 60 is the most
/// it is taken to be. Points are seconds since `window`'s start.
pub fn natural_period(points: &[(f64, f64)], window: &RunWindow, asked: u32) -> u32 {
    let stamps: Vec<i64> = points
        .iter()
        .map(|(t, _)| (window.start_epoch_secs() + t).round() as i64)
        .collect();
    if stamps.is_empty() {
        return asked;
    }
    let spacing = stamps
        .windows(2)
        .map(|w| (w[1] - w[0]).unsigned_abs())
        .filter(|d| *d > 0)
        .min()
        .map_or(60, |d| u32::try_from(d).unwrap_or(u32::MAX));
    RESOLUTIONS
        .iter()
        .copied()
        .filter(|p| *p >= asked && *p <= spacing && *p % asked == 0)
        .filter(|p| stamps.iter().all(|s| s.rem_euclid(i64::from(*p)) == 0))
        .max()
        .unwrap_or(asked)
}

/// Series for `queries` at the finest period they have (see the module doc), and notes that
/// say which period each was read at. `asked` is the scenario's `period`, `None` to choose;
/// `now` dates the window (CloudWatch keeps fine data only for a while).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn read_finest(
    client: &aws_sdk_cloudwatch::Client,
    redactor: &Redactor,
    queries: &[MetricQuery],
    window: &RunWindow,
    asked: Option<u32>,
    now: SystemTime,
    per_call: usize,
) -> Result<(Vec<Series>, Vec<String>), AwsSourceError> {
    let age = now.duration_since(window.start).unwrap_or_default();
    let kept = finest_kept(age);
    let mut notes = Vec::new();
    let first = match asked {
        Some(p) if p < kept => {
            notes.push(format!(
                "cloudwatch: period = {p}s asked, but CloudWatch keeps data finer than {kept} s for {} only, and the run started {} ago: read at {kept} s",
                kept_for(p),
                humanize(age)
            ));
            kept
        }
        Some(p) => p,
        None => kept.max(finest_for_length(window.duration_s())),
    };
    let period = |p: u32| Duration::from_secs(u64::from(p));
    let mut series = fetch(client, redactor, queries, window, period(first), per_call).await?;
    let mut coarser: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, s) in series.iter().enumerate() {
        let natural = natural_period(&s.points, window, first);
        if natural > first {
            coarser.entry(natural).or_default().push(i);
        }
    }
    for (p, indices) in &coarser {
        let again: Vec<MetricQuery> = indices.iter().map(|&i| queries[i].clone()).collect();
        let read = fetch(client, redactor, &again, window, period(*p), per_call).await?;
        for (&i, s) in indices.iter().zip(read) {
            series[i] = s;
        }
    }
    let mut by_period: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        let p = s.span_s.unwrap_or(f64::from(first)) as u32;
        by_period.entry(p).or_default().push(&s.name);
    }
    if asked.is_none() || !coarser.is_empty() {
        let parts: Vec<String> = by_period
            .iter()
            .map(|(p, names)| {
                let why = if *p == first {
                    String::new()
                } else {
                    format!(" (its data is a point every {p} s)")
                };
                format!("{p} s for {}{why}", listed(names))
            })
            .collect();
        if !parts.is_empty() {
            let how = match asked {
                None => "the finest each metric has",
                Some(_) => "as asked, or coarser where the metric has no finer data",
            };
            notes.push(format!(
                "cloudwatch: periods read ({how}): {}",
                parts.join("; ")
            ));
        }
    }
    Ok((series, notes))
}

/// Up to three names, then how many more.
pub(crate) fn listed(names: &[&str]) -> String {
    let shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        format!("{shown} and {} more", names.len() - 3)
    } else {
        shown
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s => format!("{} minutes", s / 60),
    }
}

/// Query ids must start with a lower-case letter.
fn query_id(index: usize) -> String {
    format!("q{index}")
}

fn data_query(id: &str, q: &MetricQuery, period: u32) -> MetricDataQuery {
    let dimensions: Vec<Dimension> = q
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect();
    let metric = Metric::builder()
        .namespace(&q.namespace)
        .metric_name(&q.metric)
        .set_dimensions(Some(dimensions))
        .build();
    let stat = MetricStat::builder()
        .metric(metric)
        .period(period as i32)
        .stat(&q.stat)
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(stat)
        .return_data(true)
        .build()
}

/// The window widened to whole periods, in epoch seconds.
fn aligned(window: &RunWindow, period: u32) -> (i64, i64) {
    let p = i64::from(period);
    let start = window.start_epoch_secs().floor() as i64;
    let end = window.end_epoch_secs().ceil() as i64;
    let start = start.div_euclid(p) * p;
    let end = (end + p - 1).div_euclid(p) * p;
    (start, end.max(start + p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn the_finest_period_kept_follows_the_data_age() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(finest_kept(Duration::from_secs(600)), 1);
        assert_eq!(finest_kept(h(3)), 60);
        assert_eq!(finest_kept(h(24 * 14)), 60);
        assert_eq!(finest_kept(h(24 * 20)), 300);
        assert_eq!(finest_kept(h(24 * 100)), 3600);
    }

    #[test]
    fn a_long_run_is_read_in_at_most_3600_values() {
        assert_eq!(finest_for_length(60.0), 1);
        assert_eq!(finest_for_length(3600.0), 1);
        assert_eq!(finest_for_length(2.0 * 3600.0), 5);
        assert_eq!(finest_for_length(8.0 * 3600.0), 10);
        assert_eq!(finest_for_length(24.0 * 3600.0), 30);
        assert_eq!(finest_for_length(50.0 * 3600.0), 60);
    }

    #[test]
    fn a_metrics_resolution_is_read_from_its_points() {
        // The run starts 20.4 s after a minute.
        let w = RunWindow::new(
            UNIX_EPOCH + Duration::from_millis(1_700_000_040_400),
            UNIX_EPOCH + Duration::from_millis(1_700_000_160_400),
        );
        let at = |epoch: i64| (epoch as f64 - 1_700_000_040.4, 1.0);
        // A standard metric: a point a minute, on the minute.
        let minutes = [at(1_700_000_040), at(1_700_000_100), at(1_700_000_160)];
        assert_eq!(natural_period(&minutes, &w, 1), 60);
        assert_eq!(natural_period(&minutes[..1], &w, 1), 60);
        // High resolution: points on any second.
        let seconds = [at(1_700_000_041), at(1_700_000_042), at(1_700_000_047)];
        assert_eq!(natural_period(&seconds, &w, 1), 1);
        // Every 10 s on the 10 s.
        let tens = [at(1_700_000_050), at(1_700_000_060), at(1_700_000_080)];
        assert_eq!(natural_period(&tens, &w, 1), 10);
        assert_eq!(natural_period(&tens, &w, 5), 10);
        // Read at 60 already: stays.
        assert_eq!(natural_period(&minutes, &w, 60), 60);
        assert_eq!(natural_period(&[], &w, 5), 5);
    }

    #[test]
    fn window_widens_to_whole_periods() {
        let w = RunWindow::new(
            UNIX_EPOCH + Duration::from_millis(125_500),
            UNIX_EPOCH + Duration::from_millis(181_200),
        );
        assert_eq!(aligned(&w, 60), (120, 240));
        assert_eq!(aligned(&w, 1), (125, 182));
        let empty = RunWindow::new(
            UNIX_EPOCH + Duration::from_secs(60),
            UNIX_EPOCH + Duration::from_secs(60),
        );
        assert_eq!(aligned(&empty, 60), (60, 120));
    }
}
