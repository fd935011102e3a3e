//! `GetMetricData` against moto: values and times come back as put, relative to the run
//! start; more than 500 queries are split over calls; presets read what AWS would publish.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use peakload_aws::{CloudWatchConfig, MetricQuery, Preset, RunWindow};

use crate::common::{moto_sdk, moto_sources, past_minute, unique};

/// Puts `(seconds after base, value)` points of one metric.
async fn put(
    namespace: &str,
    metric: &str,
    dims: &[(&str, &str)],
    base: SystemTime,
    points: &[(u64, f64)],
) {
    let client = aws_sdk_cloudwatch::Client::new(&moto_sdk().await);
    let data: Vec<MetricDatum> = points
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
                .unit(StandardUnit::Count)
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

#[tokio::test]
async fn reads_back_values_per_period_relative_to_the_run_start() {
    let sources = moto_sources().await;
    let ns = unique("PeakloadTest");
    let host = unique("h");
    let base = past_minute();
    let points: Vec<(u64, f64)> = (0..10).map(|i| (i, i as f64 + 1.0)).collect();
    put(&ns, "Requests", &[("Host", &host)], base, &points).await;
    // The run starts 2 s after the data does: the first points are before it.
    let window = RunWindow::new(
        base + Duration::from_secs(2),
        base + Duration::from_secs(10),
    );
    let q = MetricQuery::new(&ns, "Requests", "Sum", "Count").dimension("Host", &host);
    let series = sources
        .metrics(std::slice::from_ref(&q), &window, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(series.len(), 1);
    let s = &series[0];
    assert_eq!(s.source, "cloudwatch");
    assert_eq!(s.name, format!("{ns}/Requests:Sum"));
    assert_eq!(s.unit, "Count");
    assert_eq!(s.dimensions["Host"], host);
    let expected: Vec<(f64, f64)> = (2..10).map(|i| (i as f64 - 2.0, i as f64 + 1.0)).collect();
    assert_eq!(s.points, expected);

    // Whole periods: 5 s sums over a window widened to period boundaries.
    let window = RunWindow::new(base, base + Duration::from_secs(10));
    let series = sources
        .metrics(std::slice::from_ref(&q), &window, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(series[0].points, vec![(0.0, 15.0), (5.0, 40.0)]);

    // Another statistic of the same data.
    let max = MetricQuery {
        stat: "Maximum".into(),
        ..q
    };
    let series = sources
        .metrics(&[max], &window, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(series[0].points, vec![(0.0, 5.0), (5.0, 10.0)]);
    assert!(sources
        .metrics(&[], &window, Duration::from_secs(7))
        .await
        .unwrap_err()
        .to_string()
        .contains("period = 7"));
}

#[tokio::test]
async fn more_than_500_queries_are_split_over_calls_and_joined_in_order() {
    let sources = moto_sources().await;
    let ns = unique("PeakloadTest");
    let host = unique("h");
    let base = past_minute();
    for metric in ["M0", "M499", "M500", "M599"] {
        let n: f64 = metric[1..].parse().unwrap();
        put(&ns, metric, &[("Host", &host)], base, &[(1, n + 0.5)]).await;
    }
    let queries: Vec<MetricQuery> = (0..600)
        .map(|i| MetricQuery::new(&ns, &format!("M{i}"), "Sum", "").dimension("Host", &host))
        .collect();
    let window = RunWindow::new(base, base + Duration::from_secs(5));
    for series in [
        sources
            .metrics(&queries, &window, Duration::from_secs(5))
            .await
            .unwrap(),
        sources
            .metrics_in_calls_of(&queries, &window, Duration::from_secs(5), 7)
            .await
            .unwrap(),
    ] {
        assert_eq!(series.len(), 600);
        for (i, s) in series.iter().enumerate() {
            assert_eq!(s.name, format!("{ns}/M{i}:Sum"));
            let expected = match i {
                0 | 499 | 500 | 599 => vec![(0.0, i as f64 + 0.5)],
                _ => vec![],
            };
            assert_eq!(s.points, expected, "M{i}");
        }
    }
}

#[tokio::test]
async fn an_ecs_preset_reads_the_metrics_aws_publishes_for_a_service() {
    let sources = moto_sources().await;
    let cluster = unique("cluster-");
    let service = unique("svc-");
    let dims = [
        ("ClusterName", cluster.as_str()),
        ("ServiceName", service.as_str()),
    ];
    let base = past_minute();
    put(
        "AWS/ECS",
        "CPUUtilization",
        &dims,
        base,
        &[(0, 40.0), (60, 95.0)],
    )
    .await;
    put(
        "AWS/ECS",
        "MemoryUtilization",
        &dims,
        base,
        &[(0, 30.0), (60, 31.0)],
    )
    .await;
    put(
        "ECS/ContainerInsights",
        "RunningTaskCount",
        &dims,
        base,
        &[(0, 2.0), (60, 2.0)],
    )
    .await;
    put(
        "ECS/ContainerInsights",
        "DesiredTaskCount",
        &dims,
        base,
        &[(0, 2.0), (60, 4.0)],
    )
    .await;
    let config = CloudWatchConfig {
        presets: vec![Preset::EcsService {
            cluster: cluster.clone(),
            service: service.clone(),
        }],
        ..CloudWatchConfig::default()
    };
    let window = RunWindow::new(base, base + Duration::from_secs(120));
    let observed = sources
        .collect(Some(&config), None, None, &window)
        .await
        .unwrap();
    assert!(observed.errors.is_empty(), "{:?}", observed.errors);
    let by_name = |name: &str| {
        observed
            .series
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no series {name}"))
            .points
            .clone()
    };
    assert_eq!(
        by_name("AWS/ECS/CPUUtilization:Average"),
        [(0.0, 40.0), (60.0, 95.0)]
    );
    assert_eq!(
        by_name("AWS/ECS/MemoryUtilization:Maximum"),
        [(0.0, 30.0), (60.0, 31.0)]
    );
    assert_eq!(
        by_name("ECS/ContainerInsights/DesiredTaskCount:Average"),
        [(0.0, 2.0), (60.0, 4.0)]
    );
    let cpu = observed
        .series
        .iter()
        .find(|s| s.name == "AWS/ECS/CPUUtilization:Average")
        .unwrap();
    assert_eq!(cpu.unit, "Percent");
    assert_eq!(cpu.dimensions["ServiceName"], service);
}
