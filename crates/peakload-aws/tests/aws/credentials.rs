//! The credentials in use never reach an error message, whatever failed.

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use peakload_aws::{AwsSources, EcsService, LogsConfig, MetricQuery, RunWindow};
use std::time::{Duration, SystemTime};

use crate::common::require_moto;
use crate::fixture_server::{self, ECHO_RESOURCE};

const SECRET: &str = "pEaKl0ad/TEST+secret/MUST-NOT-LEAK/0123456789";
const TOKEN: &str = "FwoGZXIvYXdzEPEAKLOAD-session-token-MUST-NOT-LEAK";

async fn sources(endpoint: &str) -> AwsSources {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIAPEAKLOADTEST0001",
            SECRET,
            Some(TOKEN.to_owned()),
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .load()
        .await;
    AwsSources::from_sdk_config(&sdk).await.unwrap()
}

fn assert_clean(what: &str, err: &peakload_aws::AwsSourceError) {
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(SECRET), "{what}: secret key in {text}");
        assert!(!text.contains(TOKEN), "{what}: session token in {text}");
    }
}

#[tokio::test]
async fn error_messages_never_contain_the_secret_key() {
    let window = RunWindow::new(
        SystemTime::now() - Duration::from_secs(60),
        SystemTime::now(),
    );

    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let err = sources(&closed)
        .await
        .metrics(
            &[MetricQuery::new("N", "M", "Sum", "")],
            &window,
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("GetMetricData"), "{err}");
    assert_clean("unreachable endpoint", &err);

    // A service error from the emulator (no such log group).
    let moto = require_moto();
    let err = sources(&moto)
        .await
        .log_counts(
            &LogsConfig::new(vec!["/peakload/no-such-group".into()], vec![]),
            &window,
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
    assert_clean("service error", &err);

    // A service that echoes the secret back in its error message.
    let fixtures = fixture_server::start(&format!("{SECRET} and {TOKEN}")).await;
    let echo = EcsService {
        cluster: "echo".into(),
        service: "echo".into(),
    };
    assert_eq!(echo.resource_id(), ECHO_RESOURCE);
    let err = sources(&fixtures.url)
        .await
        .ecs_scaling_activities(&echo, &window, Duration::ZERO)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ValidationException") && text.contains("[redacted]"),
        "{text}"
    );
    assert_clean("echoing service", &err);
}
