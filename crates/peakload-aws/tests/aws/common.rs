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
