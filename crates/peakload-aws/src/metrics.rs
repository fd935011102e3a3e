//! CloudWatch metrics through `GetMetricData`: queries in, one [`Series`] per query out.
//!
//! Queries go in calls of at most 500 (the API's limit), each call paginated with
//! `NextToken`; the pages of one query are joined. The window is widened to whole periods
//! (CloudWatch aggregates on period boundaries), and points are placed relative to the run
//! start.

use std::collections::HashMap;
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
