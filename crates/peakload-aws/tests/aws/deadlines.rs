//! One source that never answers costs its own time limit, not the collection: the metrics,
//! the other log group and the scaling activities are kept, and the note names the read that
//! hung (operation, log group, endpoint). A caller that stops waiting keeps what arrived and
//! learns which reads had not answered.

use std::time::{Duration, Instant, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use peakload_aws::{
    AwsSources, CloudWatchConfig, Connect, EcsService, LogPattern, LogsConfig, MetricSpec,
    RunWindow, ScalingConfig, SharedProgress,
};

use crate::common::{moto_sdk, put_high_res, recent_minute, require_moto, unique};
use crate::fixture_server::{self, Options};

#[tokio::test]
async fn a_source_that_hangs_costs_its_own_limit_and_the_rest_is_kept() {
    let moto = require_moto();
    let ns = unique("PeakloadHang");
    let host = unique("h");
    let base = recent_minute();
    let cpu: Vec<(u64, f64)> = (0..60).map(|s| (s, 30.0 + (s % 3) as f64)).collect();
    put_high_res(&ns, "CPUUtilization", &[("Host", &host)], base, &cpu).await;
    // A log group in moto with one matching line, and one whose reads never come back.
    let logs_client = aws_sdk_cloudwatchlogs::Client::new(&moto_sdk().await);
    let readable = format!("/peakload/{}/api", unique("t"));
    logs_client
        .create_log_group()
        .log_group_name(&readable)
        .send()
        .await
        .unwrap();
    logs_client
        .create_log_stream()
        .log_group_name(&readable)
        .log_stream_name("api/1")
        .send()
        .await
        .unwrap();
    let line_at = base + Duration::from_millis(30_250);
    logs_client
        .put_log_events()
        .log_group_name(&readable)
        .log_stream_name("api/1")
        .log_events(
            InputLogEvent::builder()
                .timestamp(line_at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64)
                .message("ERROR connection pool exhausted")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let hangs = format!("/peakload/{}/hangs", unique("t"));
    let fixtures = fixture_server::start_with(Options {
        forward_to: Some(moto),
        hang_log_group: Some(hangs.clone()),
        ..Options::default()
    })
    .await;
    let sources = AwsSources::connect(&Connect {
        region: None,
        endpoint_url: Some(fixtures.url.clone()),
    })
    .await
    .unwrap();
    let cloudwatch = CloudWatchConfig {
        metrics: vec![MetricSpec {
            namespace: ns.clone(),
            metric: "CPUUtilization".into(),
            dimensions: [("Host".to_string(), host.clone())].into(),
            stat: "Average".into(),
            unit: Some("Percent".into()),
        }],
        ..CloudWatchConfig::default()
    };
    let logs = LogsConfig::new(
        vec![readable.clone(), hangs.clone()],
        vec![LogPattern::Plain("ERROR".into())],
    );
    let scaling = ScalingConfig {
        ecs: vec![EcsService {
            cluster: "peakload-stack".into(),
            service: "peakload-stack-api".into(),
        }],
        asg: vec![],
        lookback: None,
    };
    let window = RunWindow::new(base, base + Duration::from_secs(60));
    let hung = format!("logs FilterLogEvents on {hangs} at {}", fixtures.url);

    // Each read within 2 s: the whole collection takes about that, not forever.
    let progress = SharedProgress::default();
    let started = Instant::now();
    let collected = tokio::time::timeout(
        Duration::from_secs(60),
        sources.collect_into(
            Some(&cloudwatch),
            Some(&logs),
            Some(&scaling),
            &window,
            Duration::from_secs(2),
            &progress,
        ),
    )
    .await;
    let took = started.elapsed();
    assert!(
        matches!(collected, Ok(Ok(()))),
        "the collection ends by itself: {collected:?}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    {
        let p = progress.lock().unwrap();
        assert!(p.pending.is_empty(), "{:?}", p.pending);
        let o = &p.observed;
        assert_eq!(
            o.errors,
            [format!(
                "{hung}: no answer within 2 s; the other sources were read"
            )]
        );
        let cpu = o
            .series
            .iter()
            .find(|s| s.name.ends_with("/CPUUtilization:Average"))
            .expect("the metrics are kept");
        assert_eq!(cpu.points.len(), 60);
        let lines = o
            .series
            .iter()
            .find(|s| s.name == "log:ERROR" && s.dimensions["log_group"] == readable)
            .expect("the other log group is kept");
        assert_eq!(lines.points.iter().map(|p| p.1).sum::<f64>(), 1.0);
        assert_eq!(lines.span_s, Some(1.0), "a count a second for a short run");
        assert!(lines.points.iter().any(|&(t, n)| t == 30.0 && n == 1.0));
        assert!(o.log_samples.iter().all(|s| s.log_group == readable));
    }

    // The caller stops waiting (an interrupt) before the hanging read's own limit: what had
    // arrived is there, and the read that had not answered is named.
    let progress = SharedProgress::default();
    let waited = tokio::time::timeout(
        Duration::from_secs(8),
        sources.collect_into(
            Some(&cloudwatch),
            Some(&logs),
            Some(&scaling),
            &window,
            Duration::from_secs(120),
            &progress,
        ),
    )
    .await;
    assert!(waited.is_err(), "still waiting on the hanging read");
    let p = progress.lock().unwrap();
    assert_eq!(p.pending, [hung]);
    assert!(p.observed.errors.is_empty(), "{:?}", p.observed.errors);
    assert!(p
        .observed
        .series
        .iter()
        .any(|s| s.name.ends_with("/CPUUtilization:Average") && s.points.len() == 60));
}
