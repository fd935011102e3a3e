//! `FilterLogEvents` against moto: counts per interval and sample lines.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use peakload_aws::{LogPattern, LogsConfig, RunWindow};

use crate::common::{moto_sdk, moto_sources, unique};

#[tokio::test]
async fn counts_each_pattern_per_interval_with_a_few_samples() {
    let sources = moto_sources().await;
    let client = aws_sdk_cloudwatchlogs::Client::new(&moto_sdk().await);
    let group = format!("/peakload/{}/api", unique("t"));
    client
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    client
        .create_log_stream()
        .log_group_name(&group)
        .log_stream_name("api/1")
        .send()
        .await
        .unwrap();
    // An hour ago, on a whole second.
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = UNIX_EPOCH + Duration::from_secs(now_s - 3600);
    let lines: [(i64, &str); 8] = [
        (-500, "ERROR before the run"),
        (1_000, "ERROR database operation failed"),
        (1_500, "ERROR request failed: injected fault"),
        (2_100, "INFO seeded"),
        (5_000, "WARN upstream timeout after 5s"),
        (7_000, "ERROR request failed: injected fault"),
        (7_300, "ERROR request failed again"),
        (9_999, "ERROR last"),
    ];
    let events: Vec<InputLogEvent> = lines
        .iter()
        .map(|(ms, msg)| {
            let at = if *ms < 0 {
                start - Duration::from_millis(ms.unsigned_abs())
            } else {
                start + Duration::from_millis(*ms as u64)
            };
            InputLogEvent::builder()
                .timestamp(at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64)
                .message(*msg)
                .build()
                .unwrap()
        })
        .collect();
    client
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name("api/1")
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();

    let window = RunWindow::new(start, start + Duration::from_secs(10));
    let mut config = LogsConfig::new(
        vec![group.clone()],
        vec![
            LogPattern::Plain("ERROR".into()),
            LogPattern::named("timeouts", "timeout"),
            LogPattern::named("oom", "OutOfMemory"),
        ],
    );
    config.samples = 2;
    let counts = sources
        .log_counts(&config, &window, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(!counts.truncated);
    assert_eq!(counts.series.len(), 3);
    let errors = &counts.series[0];
    assert_eq!(errors.source, "cloudwatch_logs");
    assert_eq!(errors.name, "log:ERROR");
    assert_eq!(errors.unit, "Count");
    assert_eq!(errors.dimensions["log_group"], group);
    assert_eq!(
        errors.points,
        [(0.0, 2.0), (2.0, 0.0), (4.0, 0.0), (6.0, 2.0), (8.0, 1.0)]
    );
    assert_eq!(counts.series[1].name, "log:timeouts");
    assert_eq!(
        counts.series[1].points,
        [(0.0, 0.0), (2.0, 0.0), (4.0, 1.0), (6.0, 0.0), (8.0, 0.0)]
    );
    assert!(counts.series[2].points.iter().all(|(_, n)| *n == 0.0));

    let samples: Vec<(&str, &str, f64)> = counts
        .samples
        .iter()
        .map(|s| (s.pattern.as_str(), s.message.as_str(), s.at))
        .collect();
    assert_eq!(
        samples,
        [
            ("ERROR", "ERROR database operation failed", 1.0),
            ("ERROR", "ERROR request failed: injected fault", 1.5),
            ("timeouts", "WARN upstream timeout after 5s", 5.0),
        ]
    );
    assert!(counts
        .samples
        .iter()
        .all(|s| s.log_stream == "api/1" && s.log_group == group));

    let missing = sources
        .log_counts(
            &LogsConfig::new(vec![format!("{group}-missing")], vec![]),
            &window,
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("FilterLogEvents"), "{missing}");
}
