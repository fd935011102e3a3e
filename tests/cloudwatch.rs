//! CloudWatch, CloudWatch Logs and the after-run reading, through peakload's own path
//! (`observe::aws`, `RunObserver::finish`, the diagnosis), against the AWS API emulator
//! (`moto_server`, started by `scripts/test`; `PEAKLOAD_MOTO_URL`).
//!
//! The planted fault is the one an SRE would check by hand: ECS `CPUUtilization` steps from
//! 30 % to 95 % for 20 s (published at high resolution, a point a second), an SQS metric is
//! noise, an RDS metric is flat, "ERROR connection pool exhausted" lines are logged during the
//! fault, and the users' p95 rises by 200 ms over the same seconds while every request still
//! succeeds. Read at 1 s, 5 s, 10 s and 60 s periods, each value must stand at the start of
//! the period it aggregates, and the diagnosis must never credit a lead shorter than a period.

// The scaling-activity fixture (recorded responses in AWS's shapes, which moto lacks), shared
// with the AWS crate's own tests.
#[allow(dead_code)]
#[path = "../crates/peakload-aws/tests/aws/fixture_server.rs"]
mod fixture_server;

use std::net::TcpListener as StdListener;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use peakload::diagnose::{analyze, render_text, sli, Input};
use peakload::observe::aws::AwsObserve;
use peakload::observe::{RunObserver, RunWindow};
use peakload::record::findings::Kind;
use peakload::record::infra::Infra;
use peakload::scenario::{Observe, PrometheusSource};
use peakload_aws::{CloudWatchConfig, EcsService, LogsConfig, MetricSpec, ScalingConfig};

use peakload_test_support::{require_moto as moto_url, unique};

fn epoch(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The fault as published: who, when, and the run's window.
struct Planted {
    moto: String,
    cluster: String,
    queue: String,
    db: String,
    log_group: String,
    window: RunWindow,
}

const RUN_S: usize = 60;
/// Seconds of the run the fault covers (the users' p95 and the CPU).
const FAULT: std::ops::Range<f64> = 25.0..45.0;

/// Publishes two minutes of the planted fault to moto; the run starts 20.4 s into them (on no
/// second and no period boundary).
async fn plant() -> Planted {
    let moto = moto_url();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto)
        .load()
        .await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A whole minute 20 to 40 minutes ago: CloudWatch keeps 1 s data for 3 hours.
    let base = UNIX_EPOCH + Duration::from_secs((now / 60 - 20 - fastrand::u64(0..20)) * 60);
    let run_start = base + Duration::from_millis(20_400);
    let run = |s: u64| s as f64 - 20.4;
    let (cluster, queue, db) = (unique("shop-"), unique("emails-"), unique("mysql-"));
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let datum = |metric: &str, dims: &[(&str, &str)], s: u64, v: f64, unit: StandardUnit| {
        MetricDatum::builder()
            .metric_name(metric)
            .set_dimensions(Some(
                dims.iter()
                    .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                    .collect(),
            ))
            .timestamp(DateTime::from(base + Duration::from_secs(s)))
            .unit(unit)
            .storage_resolution(1)
            .value(v)
            .build()
    };
    let ecs = [("ClusterName", cluster.as_str()), ("ServiceName", "api")];
    let mut put: Vec<(&str, Vec<MetricDatum>)> = vec![
        ("AWS/ECS", Vec::new()),
        ("AWS/SQS", Vec::new()),
        ("AWS/RDS", Vec::new()),
    ];
    for s in 0..120u64 {
        let cpu = if FAULT.contains(&run(s)) { 95.0 } else { 30.0 };
        put[0]
            .1
            .push(datum("CPUUtilization", &ecs, s, cpu, StandardUnit::Percent));
        let noise = 10.0 + ((s * 7919) % 7) as f64;
        put[1].1.push(datum(
            "NumberOfMessagesSent",
            &[("QueueName", &queue)],
            s,
            noise,
            StandardUnit::Count,
        ));
        put[2].1.push(datum(
            "ReadIOPS",
            &[("DBInstanceIdentifier", &db)],
            s,
            42.0,
            StandardUnit::CountSecond,
        ));
    }
    for (namespace, data) in put {
        cw.put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .expect("PutMetricData to moto");
    }
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let log_group = format!("/ecs/{cluster}/api");
    logs.create_log_group()
        .log_group_name(&log_group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&log_group)
        .log_stream_name("api/1")
        .send()
        .await
        .unwrap();
    // The first line at t=25.15 s; one also matches the default "timeouts" pattern.
    let lines: Vec<InputLogEvent> = [
        (
            25.15,
            "ERROR connection pool exhausted: timed out waiting for a connection",
        ),
        (27.3, "ERROR connection pool exhausted"),
        (33.0, "ERROR connection pool exhausted"),
        (41.8, "ERROR connection pool exhausted"),
    ]
    .iter()
    .map(|(t, m)| {
        let at = run_start + Duration::from_secs_f64(*t);
        InputLogEvent::builder()
            .timestamp(at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64)
            .message(*m)
            .build()
            .unwrap()
    })
    .collect();
    logs.put_log_events()
        .log_group_name(&log_group)
        .log_stream_name("api/1")
        .set_log_events(Some(lines))
        .send()
        .await
        .unwrap();
    Planted {
        moto,
        cluster,
        queue,
        db,
        log_group,
        window: RunWindow {
            start_unix: epoch(run_start),
            duration_s: RUN_S as f64,
        },
    }
}

impl Planted {
    fn observe(&self, period: Option<u32>) -> AwsObserve {
        let metric =
            |namespace: &str, metric: &str, stat: &str, dims: &[(&str, &str)], unit| MetricSpec {
                namespace: namespace.into(),
                metric: metric.into(),
                dimensions: dims
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect(),
                stat: stat.into(),
                unit: Some(String::from(unit)),
            };
        AwsObserve {
            cloudwatch: Some(CloudWatchConfig {
                endpoint_url: Some(self.moto.clone()),
                period,
                metrics: vec![
                    metric(
                        "AWS/ECS",
                        "CPUUtilization",
                        "Average",
                        &[("ClusterName", &self.cluster), ("ServiceName", "api")],
                        "Percent",
                    ),
                    metric(
                        "AWS/SQS",
                        "NumberOfMessagesSent",
                        "Sum",
                        &[("QueueName", &self.queue)],
                        "Count",
                    ),
                    metric(
                        "AWS/RDS",
                        "ReadIOPS",
                        "Average",
                        &[("DBInstanceIdentifier", &self.db)],
                        "Count/Second",
                    ),
                ],
                ..CloudWatchConfig::default()
            }),
            logs: Some(LogsConfig::new(vec![self.log_group.clone()], vec![])),
            scaling: None,
        }
    }
}

/// The users' side of the run: 30 requests a second, all successful; p95 at ~5 ms, 200 ms
/// more during the fault.
fn users() -> Input {
    users_over(RUN_S, FAULT)
}

/// The users over `seconds`, with p95 200 ms higher during `fault`.
fn users_over(seconds: usize, fault: std::ops::Range<f64>) -> Input {
    let jitter = |t: usize| ((t * 7919) % 13) as f64 / 13.0;
    Input {
        latency_stat: "p95",
        latency_ms: Some(
            (0..seconds)
                .map(|t| {
                    5.0 + jitter(t)
                        + if fault.contains(&(t as f64)) {
                            200.0
                        } else {
                            0.0
                        }
                })
                .collect(),
        ),
        error_rate: Some(vec![0.0; seconds]),
        rps: (0..seconds).map(|t| 30.0 + jitter(t)).collect(),
        target: vec![30.0; seconds],
        generator_busy: vec![false; seconds],
        generator_kept_up: true,
        latency_floor_ms: sli::LATENCY_FLOOR_MS,
        ..Input::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_at_1_5_10_and_60_s_periods_times_the_planted_step_right() {
    let planted = plant().await;
    let w = planted.window;
    for period in [1u32, 5, 10, 60] {
        let infra: Infra = planted
            .observe(Some(period))
            .collect(&w, Duration::from_secs(30))
            .await;
        let at = format!("period {period}");
        let cpu = infra
            .series
            .iter()
            .find(|s| s.name == "AWS/ECS/CPUUtilization:Average")
            .unwrap_or_else(|| panic!("{at}: no CPU in {infra:?}"));
        // Every value at the start of the period it averages, on CloudWatch's clock (periods
        // start on multiples of the period since the epoch), with its span.
        let p = f64::from(period);
        assert_eq!(cpu.span_s, Some(p), "{at}");
        for (t, v) in &cpu.points {
            let starts = (w.start_unix + t).round();
            assert!(
                starts % p == 0.0 && (w.start_unix + t - starts).abs() < 1e-3,
                "{at}: {t}"
            );
            // The mean of the seconds it covers: 95 % inside the fault, 30 % outside.
            let inside = (0..period)
                .filter(|k| FAULT.contains(&(t + f64::from(*k))))
                .count() as f64;
            let want = (inside * 95.0 + (p - inside) * 30.0) / p;
            assert!((v - want).abs() < 1e-6, "{at}: ({t}, {v}), want {want}");
        }
        let logged = infra
            .series
            .iter()
            .find(|s| s.name == "log:errors")
            .unwrap_or_else(|| panic!("{at}: no log counts"));
        assert_eq!(logged.span_s, Some(p), "{at}: counted per period");
        assert_eq!(logged.points.iter().map(|p| p.1).sum::<f64>(), 4.0, "{at}");
        let lines: Vec<&str> = infra
            .events
            .iter()
            .filter(|e| e.name == "log")
            .map(|e| e.status.as_str())
            .collect();
        // Three sample lines a pattern; the first matched two patterns and is one event.
        assert_eq!(
            lines,
            ["errors, timeouts", "errors", "errors"],
            "{at}: a line two patterns matched is one event"
        );
        assert!(
            infra.events.iter().all(|e| e.end == Some(e.start)),
            "{at}: a log line is an instant"
        );

        let mut input = users();
        input.add_infra(&infra);
        let d = analyze(&input);
        let text = render_text(&d);
        // No finding claims a lead (or a lag) shorter than its signal's period.
        for f in &d.findings {
            let (lead, span) = (f.evidence.get("lead_s"), f.evidence.get("span_s"));
            if let (Some(l), Some(s)) = (lead, span) {
                assert!(*l == 0.0 || l.abs() >= *s, "{at}: {f:?}");
            }
            assert!(
                !f.summary.contains("returned errors"),
                "{at}: the users saw no errors: {}",
                f.summary
            );
        }
        if period <= 10 {
            let f = d
                .findings
                .iter()
                .find(|f| f.kind == Kind::CpuSaturation)
                .unwrap_or_else(|| panic!("{at}: CPU not named:\n{text}"));
            assert_eq!(f.signal, cpu.key(), "{at}");
            assert_eq!(f.evidence["lead_s"], 0.0, "{at}: {}", f.summary);
            assert!(
                f.summary
                    .contains(&format!("as (to within its {period} s period)")),
                "{at}: {}",
                f.summary
            );
        } else {
            // Two values over the run: said, with what to do.
            assert!(
                infra.notes.iter().any(|n| n.contains("fewer than 3 values")
                    && n.contains(&format!("{} (2 at 60 s)", cpu.key()))),
                "{at}: {:?}",
                infra.notes
            );
            // And the verdict says why nothing could show a 20 s fault.
            assert!(
                !text.contains("no infrastructure signals were observed")
                    && text.contains("average over periods longer than it lasted")
                    && d.too_coarse.contains(&cpu.key()),
                "{at}:\n{text}"
            );
        }
    }

    // Left to choose, every metric here has a point a second: read at 1 s, and said.
    let infra = planted
        .observe(None)
        .collect(&w, Duration::from_secs(30))
        .await;
    assert!(
        infra
            .series
            .iter()
            .filter(|s| s.source == "cloudwatch")
            .all(|s| s.span_s == Some(1.0)),
        "{infra:?}"
    );
    assert!(
        infra
            .notes
            .iter()
            .any(|n| n.starts_with("aws: cloudwatch: periods read (the finest each metric has): 1 s for AWS/ECS/CPUUtilization:Average, AWS/SQS/NumberOfMessagesSent:Sum, AWS/RDS/ReadIOPS:Average")),
        "{:?}",
        infra.notes
    );
}

/// A Prometheus server that accepts connections and never answers.
fn silent_server() -> String {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_source_costs_its_own_timeout_and_what_arrived_is_kept() {
    let planted = plant().await;
    let silent = silent_server();
    let observe = |source_timeout: Duration| Observe {
        prometheus: Some(PrometheusSource {
            url: silent.clone(),
            step: Duration::from_secs(1),
            queries: vec![("db_wait".into(), "rate(db_wait_seconds_sum[5s])".into())],
        }),
        cloudwatch: planted.observe(None).cloudwatch,
        source_timeout,
        ..Observe::default()
    };
    let cpu_kept = |infra: &Infra| {
        infra
            .series
            .iter()
            .any(|s| s.name == "AWS/ECS/CPUUtilization:Average" && s.points.len() == 61)
    };

    // The silent server costs its own 2 s; CloudWatch is read meanwhile and kept.
    let observer = RunObserver::start(
        &observe(Duration::from_secs(2)),
        "http://127.0.0.1:9",
        Instant::now(),
        false,
        None,
    )
    .unwrap();
    let started = Instant::now();
    let infra = observer
        .finish(Some(planted.window), std::future::pending())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(cpu_kept(&infra), "{infra:?}");
    assert!(
        infra.notes.contains(&format!(
            "prometheus query_range at {silent}: no answer within 2 s; the other sources were read"
        )),
        "{:?}",
        infra.notes
    );
    assert!(
        !infra.notes.iter().any(|n| n.contains("interrupted")),
        "nothing was interrupted: {:?}",
        infra.notes
    );

    // Interrupted (a signal, the run's own limit) while the silent server still holds its
    // read: what arrived is kept, and only the read that had not answered is named.
    let observer = RunObserver::start(
        &observe(Duration::from_secs(120)),
        "http://127.0.0.1:9",
        Instant::now(),
        false,
        None,
    )
    .unwrap();
    let infra = observer
        .finish(
            Some(planted.window),
            tokio::time::sleep(Duration::from_secs(6)),
        )
        .await
        .unwrap();
    assert!(cpu_kept(&infra), "{infra:?}");
    let interrupted: Vec<&String> = infra
        .notes
        .iter()
        .filter(|n| n.contains("interrupted"))
        .collect();
    assert_eq!(
        interrupted,
        [&format!(
            "prometheus query_range at {silent}: not read: interrupted before it answered (what the other sources returned is kept)"
        )],
        "{:?}",
        infra.notes
    );
}

/// Scaling activities as AWS answers them (the recorded responses, through the real SDK
/// clients and peakload's reading), against users degraded from t=100 s to 200 s of a 4-minute
/// run from the fixtures' start: the status and end of each activity decide what is said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_activities_as_aws_answers_them_decide_the_scaling_lag_sentence() {
    moto_url();
    let fixtures = fixture_server::start("").await;
    // 2024-11-29T10:00:00Z, the run the fixtures were written for.
    let window = RunWindow {
        start_unix: 1_732_874_400.0,
        duration_s: 240.0,
    };
    let read = |ecs: Vec<&str>, asg: Vec<&str>| {
        let observe = AwsObserve {
            cloudwatch: Some(CloudWatchConfig {
                endpoint_url: Some(fixtures.url.clone()),
                ..CloudWatchConfig::default()
            }),
            logs: None,
            scaling: Some(ScalingConfig {
                ecs: ecs
                    .into_iter()
                    .map(|service| EcsService {
                        cluster: "peakload-stack".into(),
                        service: service.into(),
                    })
                    .collect(),
                asg: asg.into_iter().map(String::from).collect(),
                lookback: None,
            }),
        };
        async move { observe.collect(&window, Duration::from_secs(30)).await }
    };
    let scaling_lag = |infra: &Infra| {
        let mut input = users_over(240, 100.0..200.0);
        input.add_infra(infra);
        analyze(&input)
            .findings
            .into_iter()
            .find(|f| f.kind == Kind::ScalingLag)
    };

    // The API service (2 → 4 done at t=190 s) and the node group (a launch done at 165 s, one
    // failed at 211 s, a scale-in before the run): the first capacity to come after the users
    // turned is the node at 165 s.
    let infra = read(vec!["peakload-stack-api"], vec![fixture_server::ASG_NAME]).await;
    assert!(infra.notes.is_empty(), "{:?}", infra.notes);
    let f = scaling_lag(&infra).expect("a scaling finding");
    assert_eq!(f.evidence["in_service_after_breach_s"], 65.0, "{f:?}");
    assert!(
        f.summary
            .starts_with("New capacity came into service 65s after")
            && f.summary.contains("completed at t=165s, status Successful"),
        "{}",
        f.summary
    );

    // The worker: a scale-out overridden, one in progress, then one that failed: said so.
    let infra = read(vec!["peakload-stack-worker"], vec![]).await;
    let f = scaling_lag(&infra).expect("a scaling finding");
    assert!(
        f.summary.starts_with("A scale-out failed at t=181s (status Failed: Failed to set desired count to 8. Reason: the scalable target's MaxCapacity is 6.)")
            && !f.summary.contains("came into service"),
        "{}",
        f.summary
    );
}
