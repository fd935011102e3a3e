//! Reaching moto, and names no other test uses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, SdkConfig};
use peakload_aws::{AwsSources, Connect};
pub use peakload_test_support::{aws_env, require_moto, unique};

/// The sources, on moto.
pub async fn moto_sources() -> AwsSources {
    let url = require_moto();
    AwsSources::connect(&Connect {
        region: None,
        endpoint_url: Some(url),
    })
    .await
    .expect("connect to moto")
}

/// An SDK configuration on moto, to put test data in.
pub async fn moto_sdk() -> SdkConfig {
    let url = require_moto();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .load()
        .await
}

/// A whole minute about two days ago, with a random offset so that tests sharing a moto
/// rarely share a window (moto scans every datum in the window per query).
pub fn past_minute() -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minutes_back = 2 * 24 * 60 + fastrand::u64(0..600);
    UNIX_EPOCH + Duration::from_secs((now / 60 - minutes_back) * 60)
}

/// A whole minute 20 to 40 minutes ago: recent enough that CloudWatch keeps 1 s data for it
/// (3 hours), with a random offset so that tests sharing a moto rarely share a window.
pub fn recent_minute() -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minutes_back = 20 + fastrand::u64(0..20);
    UNIX_EPOCH + Duration::from_secs((now / 60 - minutes_back) * 60)
}

/// Puts `(seconds after base, value)` points of one high-resolution metric (stored at 1 s, as
/// `PutMetricData` with `StorageResolution = 1` asks), in calls of at most 500.
pub async fn put_high_res(
    namespace: &str,
    metric: &str,
    dims: &[(&str, &str)],
    base: SystemTime,
    points: &[(u64, f64)],
) {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let client = aws_sdk_cloudwatch::Client::new(&moto_sdk().await);
    for chunk in points.chunks(500) {
        let data: Vec<MetricDatum> = chunk
            .iter()
            .map(|(at, v)| {
                MetricDatum::builder()
                    .metric_name(metric)
                    .set_dimensions(Some(
                        dims.iter()
                            .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                            .collect(),
                    ))
                    .timestamp(DateTime::from(base + Duration::from_secs(*at)))
                    .unit(StandardUnit::Percent)
                    .storage_resolution(1)
                    .value(*v)
                    .build()
            })
            .collect();
        client
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .expect("PutMetricData to moto");
    }
}

/// Seconds since the epoch.
pub fn epoch(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}
