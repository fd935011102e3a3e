//! `GetMetricData` against moto: values and times come back as put, relative to the run
//! start; more than 500 queries are split over calls; presets read what AWS would publish.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use peakload_aws::{CloudWatchConfig, MetricQuery, Preset, RunWindow};

use crate::common::{
    epoch, moto_sdk, moto_sources, past_minute, put_high_res, recent_minute, unique,
};

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
    assert_eq!(s.span_s, Some(1.0));
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

/// The mean of the points put at whole seconds `[from, from + period)` since the epoch, for
/// each period of the window widened to whole periods, as `(seconds since the run start, mean)`.
fn expected_periods(
    put: &[(f64, f64)],
    run_start: f64,
    run_end: f64,
    period: u32,
) -> Vec<(f64, f64)> {
    let p = f64::from(period);
    let first = (run_start.floor() / p).floor() * p;
    let end = (run_end.ceil() / p).ceil() * p;
    let mut out = Vec::new();
    let mut from = first;
    while from < end {
        let inside: Vec<f64> = put
            .iter()
            .filter(|(t, _)| *t >= from && *t < from + p)
            .map(|(_, v)| *v)
            .collect();
        if !inside.is_empty() {
            out.push((
                from - run_start,
                inside.iter().sum::<f64>() / inside.len() as f64,
            ));
        }
        from += p;
    }
    out
}

fn assert_points(got: &[(f64, f64)], want: &[(f64, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g.0 - w.0).abs() < 1e-3 && (g.1 - w.1).abs() < 1e-9,
            "{what}: {got:?} vs {want:?}"
        );
    }
}

#[tokio::test]
async fn the_same_planted_step_reads_right_at_1_5_10_and_60_s_periods() {
    let sources = moto_sources().await;
    let ns = unique("PeakloadPeriods");
    let host = unique("h");
    let base = recent_minute();
    // High-resolution CPU for two minutes, a point a second: 30 %, then 95 % for 20 s.
    let cpu: Vec<(u64, f64)> = (0..120)
        .map(|s| (s, if (45..65).contains(&s) { 95.0 } else { 30.0 }))
        .collect();
    put_high_res(&ns, "CPUUtilization", &[("Host", &host)], base, &cpu).await;
    // A standard metric: a point a minute, on the minute.
    let minutes: Vec<(u64, f64)> = vec![(0, 40.0), (60, 50.0), (120, 60.0)];
    put_high_res(&ns, "StandardCPU", &[("Host", &host)], base, &minutes).await;
    // The run starts 20.4 s after the minute (on no second and no period) and lasts 60 s: the
    // step is at t=24.6 s of the run.
    let run_start = base + Duration::from_millis(20_400);
    let window = RunWindow::new(run_start, run_start + Duration::from_secs(60));
    let put: Vec<(f64, f64)> = cpu
        .iter()
        .map(|(s, v)| (epoch(base) + *s as f64, *v))
        .collect();
    let (start_s, end_s) = (epoch(run_start), epoch(run_start) + 60.0);
    let q = MetricQuery::new(&ns, "CPUUtilization", "Average", "Percent").dimension("Host", &host);
    let now = SystemTime::now();
    for period in [1, 5, 10, 60] {
        let (series, notes) = sources
            .metrics_finest(std::slice::from_ref(&q), &window, Some(period), now)
            .await
            .unwrap();
        let s = &series[0];
        let what = format!("period {period}");
        // Each value at the start of the period it averages, and says how long that is.
        assert_eq!(s.span_s, Some(f64::from(period)), "{what}");
        assert_points(
            &s.points,
            &expected_periods(&put, start_s, end_s, period),
            &what,
        );
        assert!(notes.is_empty(), "{what}: {notes:?}");
    }
    // The points at 60 s, spelled out: two minutes overlap the run.
    let (series, _) = sources
        .metrics_finest(std::slice::from_ref(&q), &window, Some(60), now)
        .await
        .unwrap();
    assert_points(
        &series[0].points,
        &[
            (-20.4, (45.0 * 30.0 + 15.0 * 95.0) / 60.0),
            (39.6, (55.0 * 30.0 + 5.0 * 95.0) / 60.0),
        ],
        "60 s",
    );

    // Left to choose: the finest each metric has — 1 s for the high-resolution one, 60 s for
    // the one with a point a minute (read at 1 s, each of its values would claim one second).
    let standard =
        MetricQuery::new(&ns, "StandardCPU", "Average", "Percent").dimension("Host", &host);
    let (series, notes) = sources
        .metrics_finest(&[q.clone(), standard], &window, None, now)
        .await
        .unwrap();
    assert_eq!(series[0].span_s, Some(1.0));
    assert_eq!(series[0].points.len(), 61);
    assert_eq!(series[1].span_s, Some(60.0));
    assert_points(
        &series[1].points,
        &[(-20.4, 40.0), (39.6, 50.0)],
        "standard",
    );
    assert_eq!(
        notes,
        [format!(
            "cloudwatch: periods read (the finest each metric has): 1 s for \
             {ns}/CPUUtilization:Average; 60 s for {ns}/StandardCPU:Average (its data is a \
             point every 60 s)"
        )]
    );

    // Two days on, CloudWatch keeps only minutes: a 1 s period asked is read at 60 s, and said.
    let old_start = past_minute();
    let old = RunWindow::new(old_start, old_start + Duration::from_secs(60));
    let (_, notes) = sources
        .metrics_finest(std::slice::from_ref(&q), &old, Some(1), now)
        .await
        .unwrap();
    assert!(
        notes[0].starts_with("cloudwatch: period = 1s asked, but CloudWatch keeps data finer than 60 s for 3 hours only")
            && notes[0].ends_with("read at 60 s"),
        "{notes:?}"
    );
}
