//! Reaching moto, and names no other test uses.

use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, SdkConfig};
use peakload_aws::{AwsSources, Connect};

pub fn moto_url() -> String {
    std::env::var("PEAKLOAD_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".to_owned())
}

/// Credentials and region for the emulator (not secrets), unless the environment has them.
pub fn aws_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ] {
            if std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
    });
}

/// Fails the test (never skips it) when moto is not running.
pub async fn require_moto() -> String {
    aws_env();
    let url = moto_url();
    let ok = reqwest::Client::new()
        .get(format!("{url}/moto-api/"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok();
    assert!(
        ok,
        "moto_server is not reachable at {url}: run the tests through scripts/test, which \
         starts it (or start `moto_server -H 127.0.0.1 -p 5055` and set PEAKLOAD_MOTO_URL)"
    );
    url
}

/// The sources, on moto.
pub async fn moto_sources() -> AwsSources {
    let url = require_moto().await;
    AwsSources::connect(&Connect {
        region: None,
        endpoint_url: Some(url),
    })
    .await
    .expect("connect to moto")
}

/// An SDK configuration on moto, to put test data in.
pub async fn moto_sdk() -> SdkConfig {
    let url = require_moto().await;
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .load()
        .await
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:012x}", fastrand::u64(..) >> 16)
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
