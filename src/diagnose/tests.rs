use super::synthetic::{case, Spec};
use super::*;
use crate::record::infra::Event;

fn steady(n: usize, f: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..n).map(f).collect()
}

/// A 60 s run at 50 rps whose latency jumps at `at` when `cause` does.
fn planted(cause_name: &str, cause_up: bool, at: usize) -> Input {
    let n = 60;
    let jitter = |t: usize| ((t * 7919) % 13) as f64 / 13.0;
    let step = |t: usize| if t >= at { 1.0 } else { 0.0 };
    Input {
        latency_stat: "p99",
        latency_ms: Some(steady(n, |t| 4.0 + jitter(t) + 40.0 * step(t))),
        error_rate: Some(vec![0.0; n]),
        rps: steady(n, |t| 50.0 + jitter(t)),
        target: vec![50.0; n],
        generator_busy: vec![false; n],
        generator_kept_up: true,
        signals: vec![
            Signal {
                name: cause_name.into(),
                unit: "seconds".into(),
                held: Vec::new(),
                span_s: None,
                starts: Vec::new(),
                values: steady(n, |t| {
                    let base = 0.001 + 0.0002 * jitter(t + 3);
                    if cause_up {
                        base + 0.05 * step(t.saturating_sub(0) + 1)
                    } else {
                        base * (1.0 - 0.9 * step(t + 1))
                    }
                }),
            },
            Signal {
                name: "http_requests_total:rate{status_class=\"2xx\"}".into(),
                unit: "per_second".into(),
                held: Vec::new(),
                span_s: None,
                starts: Vec::new(),
                values: steady(n, |t| 50.0 + jitter(t)),
            },
            Signal {
                name: "process_cpu_seconds_total:rate".into(),
                unit: "seconds_per_second".into(),
                held: Vec::new(),
                span_s: None,
                starts: Vec::new(),
                values: steady(n, |t| 0.2 + 0.02 * jitter(t + 5)),
            },
            Signal {
                // A consequence: rises 6 s after the users' latency.
                name: "queue_depth{queue=\"notifications\"}".into(),
                unit: String::new(),
                held: Vec::new(),
                span_s: None,
                starts: Vec::new(),
                values: steady(n, |t| {
                    2.0 * step(t.saturating_sub(6)) * (t as f64 - at as f64)
                }),
            },
        ],
        latency_floor_ms: sli::LATENCY_FLOOR_MS,
        ..Default::default()
    }
}

#[test]
fn a_planted_cause_ranks_first_and_names_its_kind() {
    let d = analyze(&planted("db_pool_acquire_wait_seconds:mean", true, 30));
    assert!(!d.healthy);
    assert_eq!(d.ranking[0].signal, "db_pool_acquire_wait_seconds:mean");
    let f = &d.findings[0];
    assert_eq!(f.kind, Kind::DbPoolSaturation);
    assert_eq!(f.window.start_s, 29.0);
    assert!(f.evidence["lead_s"] >= 0.0, "{f:?}");
    assert!(f.summary.contains("database connection"), "{}", f.summary);
    assert!(
        d.findings.iter().all(|f| f.kind != Kind::QueueBacklog),
        "the queue only followed: {:?}",
        d.findings
    );
    let c = d.capacity.unwrap();
    assert!(c.reached);
    assert_eq!(c.degraded_at_s, Some(30.0));
    assert!((c.max_sustained_rps - 50.0).abs() < 1.5, "{c:?}");
}

#[test]
fn a_falling_worker_throughput_is_a_backlog() {
    let d = analyze(&planted("worker_messages_processed_total:rate", false, 30));
    assert_eq!(d.findings[0].kind, Kind::QueueBacklog, "{:?}", d.findings);
}

#[test]
fn a_healthy_run_names_no_cause() {
    let mut input = planted("db_operations_in_flight", true, 1000);
    // Noise that never amounts to a degradation: one slow second.
    input.latency_ms.as_mut().unwrap()[40] = 90.0;
    let d = analyze(&input);
    assert!(d.healthy, "{:?}", d.sli);
    assert!(d.findings.is_empty());
    assert!(render_text(&d).contains("healthy"));
    assert!(!d.capacity.unwrap().reached);
}

#[test]
fn error_burst_carries_log_lines() {
    let n = 40;
    let step = |t: usize| if t >= 20 { 1.0 } else { 0.0 };
    let input = Input {
        latency_stat: "p99",
        latency_ms: Some(vec![5.0; n]),
        error_rate: Some(steady(n, |t| 0.3 * step(t))),
        rps: vec![40.0; n],
        target: vec![40.0; n],
        generator_busy: vec![false; n],
        generator_kept_up: true,
        signals: vec![Signal {
            name: "http_requests_total:rate{status_class=\"5xx\"}".into(),
            unit: "per_second".into(),
            held: Vec::new(),
            span_s: None,
            starts: Vec::new(),
            values: steady(n, |t| 12.0 * step(t)),
        }],
        events: vec![Event {
            source: "logs".into(),
            name: "log".into(),
            start: 21.0,
            end: None,
            cause: "ERROR payment gateway refused".into(),
            status: "error".into(),
            dimensions: Default::default(),
        }],
        latency_floor_ms: sli::LATENCY_FLOOR_MS,
        ..Default::default()
    };
    let d = analyze(&input);
    let f = &d.findings[0];
    assert_eq!(f.kind, Kind::ErrorBurst);
    assert_eq!(f.lines, vec!["t=21s ERROR payment gateway refused"]);
    assert_eq!(d.capacity.unwrap().limited_by.as_deref(), Some("errors"));
}

#[test]
fn logged_errors_the_users_did_not_see_are_not_called_returned_errors() {
    // "ERROR connection pool exhausted" logged from t=25.15 s while p95 rose by 200 ms and
    // every request still succeeded; counted per 5 s interval from the run's start.
    let n = 60;
    let degraded = |t: f64| (25.0..45.0).contains(&t);
    let mut input = Input {
        latency_stat: "p95",
        latency_ms: Some(steady(n, |t| {
            5.0 + (t % 3) as f64 * 0.3 + if degraded(t as f64) { 200.0 } else { 0.0 }
        })),
        error_rate: Some(vec![0.0; n]),
        rps: vec![30.0; n],
        target: vec![30.0; n],
        generator_busy: vec![false; n],
        generator_kept_up: true,
        latency_floor_ms: sli::LATENCY_FLOOR_MS,
        ..Default::default()
    };
    let line = |pattern: &str| Event {
        source: "cloudwatch_logs:/ecs/api".into(),
        name: "log".into(),
        start: 25.15,
        end: Some(25.15),
        cause: "ERROR connection pool exhausted: timed out after 5s".into(),
        status: pattern.into(),
        dimensions: Default::default(),
    };
    let infra = Infra {
        series: vec![crate::record::infra::Series {
            source: "cloudwatch_logs".into(),
            name: "log:errors".into(),
            unit: "count".into(),
            dimensions: [("log_group".to_string(), "/ecs/api".to_string())].into(),
            span_s: Some(5.0),
            points: (0..12)
                .map(|k| {
                    let t = k as f64 * 5.0;
                    (t, if degraded(t) { 8.0 } else { 0.0 })
                })
                .collect(),
        }],
        events: vec![line("errors"), line("timeouts")],
        notes: Vec::new(),
    };
    input.add_infra(&infra);
    let d = analyze(&input);
    let f = d
        .findings
        .iter()
        .find(|f| f.kind == Kind::ErrorBurst)
        .unwrap_or_else(|| panic!("{d:#?}"));
    assert!(!f.summary.contains("returned errors"), "{}", f.summary);
    assert!(
        f.summary
            .contains("logged errors while the users' requests still succeeded")
            && f.summary.contains("stayed at 0.00%"),
        "{}",
        f.summary
    );
    assert!(
        f.summary.contains("as (to within its 5 s period)"),
        "{}",
        f.summary
    );
    assert_eq!(
        f.lines,
        vec!["t=25s ERROR connection pool exhausted: timed out after 5s"],
        "cited once"
    );
}

#[test]
fn a_late_scaling_activity_is_scaling_lag() {
    let mut input = planted("unrelated_gauge", true, 1000);
    let lat = input.latency_ms.as_mut().unwrap();
    for v in lat.iter_mut().skip(20).take(25) {
        *v += 80.0;
    }
    input.events.push(Event {
        source: "autoscaling".into(),
        name: "scaling".into(),
        start: 25.0,
        end: Some(44.0),
        cause: "monitor alarm CPU high in state ALARM triggered policy scale-out".into(),
        status: "Successful".into(),
        dimensions: Default::default(),
    });
    let d = analyze(&input);
    let f = d
        .findings
        .iter()
        .find(|f| f.kind == Kind::ScalingLag)
        .expect("scaling finding");
    assert_eq!(f.evidence["in_service_after_breach_s"], 24.0);
}

/// A scaling activity as the AWS sources record it (`observe::aws`).
fn activity(start: f64, end: Option<f64>, status: &str, desired: u32) -> Event {
    Event {
        source: "application-autoscaling".into(),
        name: "scaling".into(),
        start,
        end,
        cause: format!(
            "Setting desired count to {desired}. monitor alarm AlarmHigh in state ALARM triggered policy cpu-70"
        ),
        status: status.into(),
        dimensions: [
            ("resource".to_string(), "service/shop/api".to_string()),
            ("desired_capacity".to_string(), desired.to_string()),
        ]
        .into(),
    }
}

/// Users degraded from t=20 s to 44 s of a 60 s run, with these activities.
fn scaling_case(events: Vec<Event>) -> Option<crate::record::findings::Finding> {
    let mut input = planted("unrelated_gauge", true, 1000);
    let lat = input.latency_ms.as_mut().unwrap();
    for v in lat.iter_mut().skip(20).take(25) {
        *v += 80.0;
    }
    input.events = events;
    analyze(&input)
        .findings
        .into_iter()
        .find(|f| f.kind == Kind::ScalingLag)
}

#[test]
fn a_scaling_activitys_status_and_end_decide_what_it_says() {
    let pre_run = activity(-90.0, Some(-60.0), "Successful", 2);
    let going = activity(30.0, None, "InProgress", 6);
    let landed = activity(
        25.0,
        Some(53.0),
        "Successful: Successfully set desired count to 4. Change successfully fulfilled by ecs.",
        4,
    );
    // The completed scale-out that landed 33 s after the onset is the lag, not the one still
    // going (which was preferred, and said to have "come into service" after the window's 24 s).
    let f = scaling_case(vec![pre_run.clone(), going.clone(), landed.clone()]).unwrap();
    assert_eq!(f.evidence["in_service_after_breach_s"], 33.0, "{f:?}");
    assert!(
        f.summary
            .starts_with("New capacity came into service 33s after")
            && f.summary.contains("completed at t=53s"),
        "{}",
        f.summary
    );
    // Only one still going: never "came into service".
    let f = scaling_case(vec![pre_run.clone(), going.clone()]).unwrap();
    assert!(!f.summary.contains("came into service"), "{}", f.summary);
    assert!(
        f.summary.contains("still in progress") && f.summary.contains("status InProgress"),
        "{}",
        f.summary
    );
    assert!(!f.evidence.contains_key("in_service_after_breach_s"));
    assert_eq!(f.evidence["not_in_service_after_breach_s"], 40.0);
    // A failed scale-out says so, with AWS's reason.
    let failed = activity(
        22.0,
        Some(40.0),
        "Failed: Failed to set desired count to 8. Reason: unable to place tasks",
        8,
    );
    let f = scaling_case(vec![going.clone(), failed]).unwrap();
    assert!(
        f.summary.starts_with("A scale-out failed at t=40s")
            && f.summary.contains("unable to place tasks")
            && !f.summary.contains("came into service"),
        "{}",
        f.summary
    );
    // Capacity in service before the users turned, or a scale-in, is no lag.
    let scale_in = activity(30.0, Some(50.0), "Successful", 1);
    assert_eq!(scaling_case(vec![pre_run, scale_in]), None);
    // Started before the run and still going: said as such.
    let f = scaling_case(vec![activity(-120.0, None, "InProgress", 3)]).unwrap();
    assert!(
        f.summary
            .starts_with("A scale-out that started at 120s before the run was still in progress"),
        "{}",
        f.summary
    );
}

#[test]
fn a_busy_generator_is_reported_even_when_healthy() {
    let mut input = planted("x", true, 1000);
    input.generator_kept_up = false;
    input.generator_busy = vec![true; 60];
    let d = analyze(&input);
    assert_eq!(d.findings.len(), 1);
    assert_eq!(d.findings[0].kind, Kind::GeneratorLimited);
}

#[test]
fn classify_follows_the_vocabulary() {
    let cases = [
        (
            "db_pool_acquire_wait_seconds:p95",
            1.0,
            Some(Kind::DbPoolSaturation),
        ),
        (
            "db_pool_connections{pool=\"read\",state=\"in_use\"}",
            1.0,
            Some(Kind::DbPoolSaturation),
        ),
        ("db_operations_in_flight", 1.0, Some(Kind::DbLatency)),
        (
            "ReadLatency{DBInstanceIdentifier=\"shop\"}",
            1.0,
            Some(Kind::DbLatency),
        ),
        (
            "queue_oldest_message_age_seconds{queue=\"email\"}",
            1.0,
            Some(Kind::QueueBacklog),
        ),
        (
            "worker_messages_processed_total:rate{worker=\"email\"}",
            -1.0,
            Some(Kind::QueueBacklog),
        ),
        (
            "worker_messages_processed_total:rate{worker=\"email\"}",
            1.0,
            None,
        ),
        (
            "process_cpu_seconds_total:rate",
            1.0,
            Some(Kind::CpuSaturation),
        ),
        ("process_cpu_seconds_total:rate", -1.0, None),
        (
            "process_resident_memory_bytes",
            1.0,
            Some(Kind::MemoryPressure),
        ),
        ("process_rss_bytes", 1.0, Some(Kind::MemoryPressure)),
        ("cartservice_mem", 1.0, Some(Kind::MemoryPressure)),
        ("memcached_current_connections", 1.0, None),
        ("ThrottledRequests", 1.0, Some(Kind::Throttling)),
        (
            "http_requests_total:rate{status_class=\"5xx\"}",
            1.0,
            Some(Kind::ErrorBurst),
        ),
        ("http_requests_total:rate{status_class=\"2xx\"}", 1.0, None),
        ("http_request_duration_seconds:p95{route=\"/x\"}", 1.0, None),
    ];
    for (name, dir, want) in cases {
        assert_eq!(rules::classify(name, dir), want, "{name}");
    }
    let json = serde_json::to_string(&Kind::DbPoolSaturation).unwrap();
    assert_eq!(json, "\"db_pool_saturation\"");
    for k in Kind::ALL {
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            format!("\"{}\"", k.as_str())
        );
    }
}

#[test]
fn the_knee_is_where_latency_turns() {
    let rps: Vec<f64> = (0..100).map(|t| 10.0 + t as f64).collect();
    let lat: Vec<f64> = rps
        .iter()
        .map(|r| {
            if *r < 80.0 {
                10.0
            } else {
                10.0 + (r - 80.0) * 5.0
            }
        })
        .collect();
    let k = knee::knee(&rps, &lat).unwrap();
    assert!((75.0..=90.0).contains(&k), "{k}");
    assert_eq!(
        knee::knee(&[50.0; 30], &[10.0; 30]),
        None,
        "no range of loads, no knee"
    );
}

#[test]
fn resampling_averages_and_fills_gaps() {
    let s = crate::record::infra::Series {
        source: "t".into(),
        name: "x".into(),
        unit: String::new(),
        dimensions: Default::default(),
        span_s: None,
        points: vec![(0.2, 1.0), (0.7, 3.0), (3.5, 8.0), (4.1, 10.0)],
    };
    assert_eq!(
        resample(&s, 6).unwrap(),
        vec![2.0, 4.0, 6.0, 8.0, 10.0, 10.0]
    );
    assert_eq!(resample(&s, 1), None);
}

fn series(points: Vec<(f64, f64)>, span_s: Option<f64>) -> crate::record::infra::Series {
    crate::record::infra::Series {
        source: "t".into(),
        name: "x".into(),
        unit: String::new(),
        dimensions: Default::default(),
        span_s,
        points,
    }
}

#[test]
fn an_aggregate_covers_its_whole_interval() {
    // Three 10 s periods: 30 % CPU, then 95 % from t=10 to 20, then 30 % again.
    let s = series(vec![(0.0, 30.0), (10.0, 95.0), (20.0, 30.0)], Some(10.0));
    let r = resample_known(&s, 30).unwrap();
    assert_eq!(&r.values[..10], &[30.0; 10]);
    assert_eq!(&r.values[10..20], &[95.0; 10], "not a ramp from t=0");
    assert_eq!(&r.values[20..], &[30.0; 10]);
    assert!(r.known.iter().all(|k| *k));
    // Two points of a 60 s period still cover a 60 s run (was: fewer than 3 points, dropped).
    let s = series(vec![(-20.0, 10.0), (40.0, 50.0)], Some(60.0));
    let r = resample_known(&s, 60).unwrap();
    assert_eq!(r.values[0], 10.0);
    assert_eq!(r.values[59], 50.0);
    // A period that does not start on a second is shared by overlap.
    let s = series(vec![(0.5, 10.0), (1.5, 20.0), (2.5, 30.0)], Some(1.0));
    let r = resample_known(&s, 4).unwrap();
    assert_eq!(r.values, vec![10.0, 15.0, 25.0, 30.0]);
}

#[test]
fn a_long_silence_is_held_not_drawn_as_a_ramp() {
    // Scraped every second, then 20 s without an answer, then a higher value.
    let mut points: Vec<(f64, f64)> = (0..10).map(|t| (t as f64, 0.0)).collect();
    points.extend((30..40).map(|t| (t as f64, 3.0)));
    let r = resample_known(&series(points, None), 40).unwrap();
    assert!(r.values[10..30].iter().all(|v| *v == 0.0), "{:?}", r.values);
    assert!(!r.known[15] && r.known[9] && r.known[30]);
    assert!(r.held[10..30].iter().all(|h| *h) && !r.held[9] && !r.held[30]);
    // A short gap is bridged.
    let points = vec![(0.0, 0.0), (1.0, 0.0), (4.0, 3.0), (5.0, 3.0)];
    let r = resample_known(&series(points, None), 6).unwrap();
    assert_eq!(r.values, vec![0.0, 0.0, 1.0, 2.0, 3.0, 3.0]);
    assert!(r.held.iter().all(|h| !h));
    // A source that answers every 15 s by design is bridged between its answers.
    let points = (0..5).map(|k| (k as f64 * 15.0, k as f64 * 15.0)).collect();
    let r = resample_known(&series(points, None), 61).unwrap();
    assert_eq!(r.values[7], 7.0);
    assert!(r.held.iter().all(|h| !h));
}

#[test]
fn synthetic_cases_rank_the_cause_first_most_of_the_time() {
    let mut top1 = 0;
    for seed in 0..20 {
        let c = case(
            seed,
            Spec {
                seconds: 300,
                signals: 30,
                ramp: seed % 2 == 0,
                faulty: true,
            },
        );
        let d = analyze(&c.input);
        assert!(!d.healthy, "seed {seed}");
        top1 += usize::from(d.ranking[0].signal == c.cause.clone().unwrap());
    }
    assert!(top1 >= 16, "{top1}/20");
}

#[test]
fn an_hour_of_two_hundred_signals_finds_the_cause() {
    let c = case(
        7,
        Spec {
            seconds: 3600,
            signals: 200,
            ramp: false,
            faulty: true,
        },
    );
    let d = analyze(&c.input);
    assert_eq!(d.ranking.len(), 200);
    let at = d
        .ranking
        .iter()
        .position(|r| Some(&r.signal) == c.cause.as_ref());
    eprintln!("cause at {at:?}; top: {:?}", &d.ranking[..3]);
    assert_eq!(at, Some(0));
}

/// A 60 s run at 50 rps whose latency goes from `before` to `after` ms at t=30, with a cause
/// that moves at the same time.
fn latency_change(before: f64, after: f64) -> Input {
    let mut input = planted("db_pool_acquire_wait_seconds:mean", true, 30);
    let jitter = |t: usize| ((t * 7919) % 13) as f64 / 13.0;
    input.latency_ms = Some(steady(60, |t| {
        (if t >= 30 { after } else { before }) * (1.0 + 0.02 * jitter(t))
    }));
    input
}

#[test]
fn a_loopback_p99_doubling_by_ten_ms_is_not_a_degradation() {
    // 9.6 ms → 19 ms on loopback, every threshold held: noise, not a cause to chase.
    let d = analyze(&latency_change(9.6, 19.0));
    assert!(d.healthy, "{}", d.sli.describe());
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    let text = d.sli.describe();
    assert!(text.contains("rose from 9."), "{text}");
    assert!(text.contains("below the 29."), "{text}");
}

#[test]
fn latency_rising_past_the_absolute_floor_is_a_degradation() {
    for (before, after) in [(20.0, 400.0), (5.0, 30.0)] {
        let d = analyze(&latency_change(before, after));
        assert!(!d.healthy, "{before} → {after}: {}", d.sli.describe());
        assert_eq!(d.findings[0].kind, Kind::DbPoolSaturation);
    }
    // 300 ms → 420 ms is 120 ms more, but only 1.4×.
    assert!(analyze(&latency_change(300.0, 420.0)).healthy);
}

#[test]
fn a_degradation_within_the_thresholds_says_so() {
    let mut input = latency_change(20.0, 400.0);
    input.thresholds_passed = Some(true);
    let text = analyze(&input).sli.describe();
    assert!(text.starts_with("degraded"), "{text}");
    assert!(
        text.contains("every threshold of the scenario passed"),
        "{text}"
    );
    input.thresholds_passed = Some(false);
    let text = analyze(&input).sli.describe();
    assert!(!text.contains("threshold"), "{text}");
}

#[test]
fn noisy_seconds_just_before_a_change_do_not_date_it_early() {
    // A fast service: 2.8 ms, three seconds at 4.5 ms (1.6×, noise), then 45 ms from t=30.
    let mut input = latency_change(2.8, 45.0);
    let lat = input.latency_ms.as_mut().unwrap();
    for v in &mut lat[27..30] {
        *v = 4.5;
    }
    let d = analyze(&input);
    assert_eq!(
        d.sli.latency_ms.as_ref().unwrap().start_s,
        Some(30.0),
        "{}",
        d.sli.describe()
    );
}

fn gauge(name: &str, f: impl Fn(usize) -> f64) -> Signal {
    Signal {
        name: name.into(),
        unit: String::new(),
        held: Vec::new(),
        span_s: None,
        starts: Vec::new(),
        values: steady(60, f),
    }
}

#[test]
fn pool_evidence_says_how_many_connections_of_how_many_were_in_use() {
    // The stack's pool-size fault: at most one database operation at once from t=29.
    let mut input = planted("db_pool_acquire_wait_seconds:p95", true, 30);
    input.signals[0].unit = "seconds".into();
    let limited = |t: usize| t >= 29;
    input.signals.extend([
        gauge("db_operations_in_flight", |t| {
            if limited(t) {
                1.0
            } else {
                0.0
            }
        }),
        gauge(
            "db_operations_limit",
            |t| if limited(t) { 1.0 } else { -1.0 },
        ),
        // The connection pool behind the limit, far from full.
        gauge("db_pool_connections{pool=\"shop\",state=\"in_use\"}", |t| {
            if limited(t) {
                1.0
            } else {
                0.0
            }
        }),
        gauge("db_pool_max_connections{pool=\"shop\"}", |_| 8.0),
    ]);
    let d = analyze(&input);
    let f = &d.findings[0];
    assert_eq!(f.kind, Kind::DbPoolSaturation, "{:?}", d.findings);
    assert_eq!(f.signal, "db_pool_acquire_wait_seconds:p95");
    assert!(f.summary.starts_with("Pool wait ("), "{}", f.summary);
    assert!(
        f.summary.contains(
            "1 of 1 connections in use (from db_operations_in_flight and db_operations_limit)"
        ),
        "{}",
        f.summary
    );
    assert_eq!(f.evidence["pool_in_use"], 1.0);
    assert_eq!(f.evidence["pool_size"], 1.0);
}

#[test]
fn a_pool_gauge_finding_reads_as_n_of_m() {
    let mut input = planted("x", true, 30);
    input.signals[0] = gauge("db_pool_connections_in_use{pool=\"orders\"}", |t| {
        if t >= 29 {
            10.0
        } else {
            2.0 + f64::from(u8::from(t % 5 == 0))
        }
    });
    input.signals.extend([
        gauge("db_pool_connections_max{pool=\"orders\"}", |_| 10.0),
        // Another pool's size: never paired with the orders pool.
        gauge("db_pool_connections_max{pool=\"reports\"}", |_| 40.0),
    ]);
    let f = &analyze(&input).findings[0];
    assert_eq!(f.kind, Kind::DbPoolSaturation);
    assert!(
        f.summary
            .contains("from 2 of 10 to 10 of 10 connections in use"),
        "{}",
        f.summary
    );
    assert_eq!(f.evidence["pool_size"], 10.0);
}

#[test]
fn pool_gauges_pair_by_stem_and_dimensions() {
    let mut input = planted("x", true, 30);
    input.signals = vec![
        gauge("hikaricp_connections_active{pool=\"a\"}", |_| 1.0),
        gauge("hikaricp_connections_max{pool=\"a\"}", |_| 10.0),
        gauge("go_sql_in_use_connections{db=\"a\"}", |_| 3.0),
        gauge("go_sql_max_open_connections{db=\"a\"}", |_| 4.0),
        gauge("go_sql_max_open_connections{db=\"b\"}", |_| 100.0),
        gauge("db_pool_connections{pool=\"p\",state=\"in_use\"}", |_| 5.0),
        gauge("db_pool_connections{pool=\"p\",state=\"idle\"}", |_| 5.0),
        gauge("db_pool_max_connections{pool=\"p\"}", |_| 10.0),
    ];
    let p = rules::pool_use(&input, 30, 59).unwrap();
    assert_eq!(p.in_use_signal, "go_sql_in_use_connections{db=\"a\"}");
    assert_eq!(p.size_signal, "go_sql_max_open_connections{db=\"a\"}");
    assert_eq!(p.of(p.in_use), "3 of 4", "the fullest pool");
    input.signals.drain(..2);
    input.signals.remove(1);
    let p = rules::pool_use(&input, 30, 59).unwrap();
    assert_eq!(p.size_signal, "db_pool_max_connections{pool=\"p\"}");
    assert_eq!(p.of(2.5), "2.5 of 10");
    input.signals.truncate(2);
    assert_eq!(
        rules::pool_use(&input, 30, 59),
        None,
        "no size for this pool"
    );
    assert_eq!(rules::pool_use(&input, 70, 90), None, "window past the end");
}

/// Load rising through `(seconds, rps)` stages; latency turns at `turn_at`.
fn staged(stages: &[(usize, f64)], turn_at: usize) -> Input {
    let n: usize = stages.iter().map(|s| s.0).sum();
    let mut rps = Vec::with_capacity(n);
    for &(secs, level) in stages {
        rps.extend((0..secs).map(|t| level * (1.0 + 0.03 * (((t * 7919) % 7) as f64 / 7.0 - 0.5))));
    }
    let mut input = planted("x", true, 1000);
    input.latency_ms = Some(steady(n, |t| if t >= turn_at { 200.0 } else { 10.0 }));
    input.error_rate = Some(vec![0.0; n]);
    input.target = rps.iter().map(|r| r.round()).collect();
    input.rps = rps;
    input.generator_busy = vec![false; n];
    input.signals.clear();
    input
}

#[test]
fn capacity_is_a_level_held_not_one_passed_through_on_a_ramp() {
    // Stages of 20 s at 20, 40, 60, then 80 rps; latency turns 3 s into the 80 stage, so 80
    // was never sustained with users served well: 60 was.
    let input = staged(&[(20, 20.0), (20, 40.0), (20, 60.0), (20, 80.0)], 63);
    let d = analyze(&input);
    let c = d.capacity.unwrap();
    assert_eq!(c.degraded_at_s, Some(63.0), "{:?}", d.sli);
    assert!((c.max_sustained_rps - 60.0).abs() < 2.0, "{c:?}");
    assert!((40.0..=53.0).contains(&c.at_s), "{c:?}");

    // A steady ramp of 1 rps/s from 10 rps; latency turns at t=70 (80 rps). The level held for
    // 10 s is where that window started (within the tolerance), not the last second's 79.
    let n = 100;
    let mut input = staged(&[(n, 0.0)], 70);
    input.rps = steady(n, |t| 10.0 + t as f64);
    input.target = input.rps.clone();
    let c = analyze(&input).capacity.unwrap();
    assert_eq!(c.degraded_at_s, Some(70.0));
    assert!(
        (68.0..=76.0).contains(&c.max_sustained_rps),
        "{c:?} (the old rolling maximum said 79)"
    );
    assert!(c.at_s + 10.0 <= 70.0, "{c:?}");
}

#[test]
fn sustained_levels_need_the_whole_window() {
    // Held 50 for 10 s, then 90 for 4 s: 50 is what was sustained.
    let mut rps = vec![50.0; 10];
    rps.extend([90.0; 4]);
    assert_eq!(knee::sustained(&rps, &[true; 14], 10), Some((0, 50.0)));
    assert_eq!(knee::sustained(&rps, &[true; 14], 4), Some((10, 90.0)));
    // Seconds with latency over the threshold do not count; with no stretch as long as asked,
    // the longest there is decides.
    let mut ok = [true; 14];
    ok[5] = false;
    let (at, level) = knee::sustained(&rps, &ok, 10).unwrap();
    // Seconds 6..14: every one at least 90% of 55.6 rps.
    assert_eq!(at, 6);
    assert!((level - 50.0 / 0.9).abs() < 1e-9, "{level}");
    assert_eq!(knee::sustained(&[], &[], 10), None);
    assert_eq!(knee::sustained(&rps, &[false; 14], 10), None);
    assert_eq!(knee::sustained(&[f64::NAN; 5], &[true; 5], 3), None);
}

#[test]
fn on_a_ramp_the_cause_outranks_what_follows_the_load() {
    // On a ramp, a step in the cause and in the latency both rank-correlate with the rising
    // load; taking the load out over the whole run took the step with it.
    let mut top1 = 0;
    for seed in 100..130 {
        let c = case(
            seed,
            Spec {
                seconds: 300,
                signals: 30,
                ramp: true,
                faulty: true,
            },
        );
        let d = analyze(&c.input);
        top1 += usize::from(d.ranking[0].signal == c.cause.clone().unwrap());
    }
    eprintln!("ramp top-1: {top1}/30");
    assert!(top1 >= 27, "{top1}/30");
}

#[test]
fn taking_the_load_out_keeps_a_step_and_drops_a_follower() {
    let load: Vec<f64> = (0..100).map(|t| 50.0 + t as f64).collect();
    let follower: Vec<f64> = load.iter().map(|l| 3.0 * l + 7.0).collect();
    let r = rank::without_load(&follower, &load, 0..40);
    assert!(r.iter().all(|v| v.abs() < 1e-9), "{r:?}");
    let step: Vec<f64> = (0..100).map(|t| if t >= 60 { 5.0 } else { 1.0 }).collect();
    let r = rank::without_load(&step, &load, 0..40);
    assert!((r[80] - r[20] - 4.0).abs() < 1e-9, "{r:?}");
    // Too few seconds to fit a line, or a fit past the end: nothing to take out.
    assert_eq!(rank::without_load(&step, &load, 0..2), step);
    assert_eq!(rank::without_load(&step, &load[..10], 50..90), step);
    assert!(rank::without_load(&[], &[], 0..10).is_empty());
}

/// The planted case with its cause signal replaced by `values` in `unit`, plus `extra`.
fn with_cause(name: &str, unit: &str, values: Vec<f64>, extra: Vec<Signal>) -> Input {
    let mut input = planted(name, true, 30);
    input.signals[0].unit = unit.into();
    input.signals[0].values = values;
    input.signals.extend(extra);
    input
}

fn kinds(input: &Input) -> Vec<Kind> {
    analyze(input).findings.iter().map(|f| f.kind).collect()
}

#[test]
fn cpu_and_memory_name_a_cause_only_at_a_limiting_level() {
    let step = |lo: f64, hi: f64| -> Vec<f64> {
        (0..60)
            .map(|t| if t >= 29 { hi } else { lo } + ((t * 31) % 7) as f64 * lo * 0.001)
            .collect()
    };
    let cpu = "container_cpu_usage_seconds_total:rate";
    // 2% → 6% of a core: a big change, no saturation.
    let idle = with_cause(cpu, "seconds_per_second", step(0.02, 0.06), vec![]);
    assert!(
        !kinds(&idle).contains(&Kind::CpuSaturation),
        "{:?}",
        kinds(&idle)
    );
    let busy = with_cause(cpu, "seconds_per_second", step(0.3, 0.98), vec![]);
    assert_eq!(kinds(&busy)[0], Kind::CpuSaturation);
    let pct = with_cause("CPUUtilization", "percent", step(3.0, 9.0), vec![]);
    assert!(!kinds(&pct).contains(&Kind::CpuSaturation));

    let mib = 1024.0 * 1024.0;
    let mem = "process_resident_memory_bytes";
    // +50 MiB with no limit known: not pressure.
    let small = with_cause(mem, "bytes", step(60.0 * mib, 110.0 * mib), vec![]);
    assert!(!kinds(&small).contains(&Kind::MemoryPressure));
    // The same growth against a 128 MiB limit is.
    let limit = Signal {
        name: "container_spec_memory_limit_bytes".into(),
        unit: "bytes".into(),
        held: Vec::new(),
        span_s: None,
        starts: Vec::new(),
        values: vec![128.0 * mib; 60],
    };
    let near = with_cause(mem, "bytes", step(60.0 * mib, 110.0 * mib), vec![limit]);
    assert_eq!(kinds(&near)[0], Kind::MemoryPressure);
    // Large growth with no limit known is.
    let grown = with_cause(mem, "bytes", step(100.0 * mib, 400.0 * mib), vec![]);
    assert_eq!(kinds(&grown)[0], Kind::MemoryPressure);
}

#[test]
fn workers_handed_fewer_messages_are_no_backlog() {
    let worker = "worker_messages_processed_total:rate{worker=\"email\"}";
    // The planted run's queue depth grows after the onset: the workers fell behind.
    let behind = planted(worker, false, 30);
    assert_eq!(kinds(&behind)[0], Kind::QueueBacklog);
    // The same drop with the queue staying empty: the producer sent fewer.
    let mut starved = planted(worker, false, 30);
    starved.signals[3].values = vec![0.0; 60];
    assert!(
        !kinds(&starved).contains(&Kind::QueueBacklog),
        "{:?}",
        kinds(&starved)
    );
}

#[test]
fn a_signal_that_grows_a_thousandfold_changed_when_it_left_its_noise() {
    // A pool wait under overload, as scraped: 0.5 ms, then doubling to seconds.
    let grown = [
        0.012, 0.024, 0.049, 0.135, 0.24, 0.42, 0.56, 0.84, 0.94, 1.16, 2.07, 2.1, 2.05, 3.4, 2.5,
    ];
    let values: Vec<f64> = (0..60usize)
        .map(|t| match t.checked_sub(30) {
            None => 0.0005 + 0.00002 * ((t * 7) % 5) as f64,
            Some(i) => grown.get(i).copied().unwrap_or(4.2),
        })
        .collect();
    let input = with_cause(
        "db_pool_acquire_wait_seconds:p95",
        "seconds",
        values,
        vec![],
    );
    let d = analyze(&input);
    let f = &d.findings[0];
    assert_eq!(f.kind, Kind::DbPoolSaturation);
    assert!(f.evidence["changed_at_s"] <= 32.0, "{:?}", f.evidence);
}

#[test]
fn a_brief_stall_before_the_fault_does_not_date_it() {
    // Pool wait rises at t=30; the users also saw a 3 s stall at t=20–22 (a pause of the
    // machine) that recovered well before.
    let mut input = planted("db_pool_acquire_wait_seconds:p95", true, 30);
    let lat = input.latency_ms.as_mut().unwrap();
    for v in &mut lat[20..23] {
        *v = 60.0;
    }
    let d = analyze(&input);
    let f = &d.findings[0];
    assert_eq!(f.kind, Kind::DbPoolSaturation, "{:?}", d.findings);
    assert_eq!(f.window.start_s, 29.0, "{}", d.sli.describe());
    let spans: Vec<(f64, f64, bool)> = d
        .sli
        .episodes
        .iter()
        .map(|e| (e.start_s, e.end_s, e.diagnosed))
        .collect();
    assert_eq!(spans, [(20.0, 23.0, false), (30.0, 60.0, true)]);
    // What the users saw is told of the diagnosed episode: from t=30, at its level.
    let latency = d.sli.latency_ms.as_ref().unwrap();
    assert_eq!(latency.start_s, Some(30.0));
    assert!(latency.during > 44.0, "{latency:?}");
    let text = d.sli.describe();
    assert!(
        text.contains("2 separate stretches: t=20–23s, t=30–60s (diagnosed)"),
        "{text}"
    );
    assert_eq!(d.capacity.unwrap().degraded_at_s, Some(30.0));
}

#[test]
fn a_climb_that_never_recovers_is_one_episode() {
    // 4 ms, then 40 ms from t=20 and 300 ms from t=26, with calm seconds at t=25 and 27 (one
    // calm second once smoothed): one degradation that began at t=20, however much heavier
    // its second part is.
    let mut input = planted("db_pool_acquire_wait_seconds:p95", true, 20);
    let lat = input.latency_ms.as_mut().unwrap();
    for (t, v) in lat.iter_mut().enumerate().skip(25) {
        *v = if t == 25 || t == 27 { 8.0 } else { 300.0 };
    }
    let d = analyze(&input);
    assert!(d.sli.episodes.is_empty(), "{}", d.sli.describe());
    assert_eq!(d.sli.latency_ms.as_ref().unwrap().start_s, Some(20.0));
    assert_eq!(d.findings[0].window.start_s, 19.0, "{:?}", d.findings);
}

#[test]
fn a_blip_just_before_a_stop_does_not_date_it() {
    // An API stopped at t=24: its users wait out a 5 s timeout from then on; two slower
    // seconds at t=21-22 and a normal one at t=23 came before (one calm second, joined to the
    // stop by the rolling median). The degradation is dated from the stop, and the stop's
    // sign (`up` falling then) is its cause, not a consequence.
    let mut input = planted("up", false, 24);
    input.signals[0].unit = String::new();
    let lat = input.latency_ms.as_mut().unwrap();
    lat[21] = 31.0;
    lat[22] = 40.0;
    for v in lat.iter_mut().skip(24).take(20) {
        *v = 5005.0;
    }
    let d = analyze(&input);
    assert_eq!(
        d.sli.latency_ms.as_ref().unwrap().start_s,
        Some(24.0),
        "{}",
        d.sli.describe()
    );
    assert_eq!(d.ranking[0].signal, "up", "{:?}", d.ranking);
    // A degradation whose own seconds hold from its first is dated from it, blip or not.
    let lat = input.latency_ms.as_mut().unwrap();
    lat[23] = 200.0;
    let d = analyze(&input);
    assert_eq!(d.sli.latency_ms.as_ref().unwrap().start_s, Some(21.0));
}

#[test]
fn a_pool_in_use_gauge_names_saturation_only_when_the_pool_was_nearly_full() {
    let in_use = "db_pool_connections{pool=\"read\",state=\"in_use\"}";
    let with_size = |size: f64| {
        let mut input = planted(in_use, true, 30);
        input.signals[0].unit = String::new();
        input
            .signals
            .push(gauge("db_pool_max_connections{pool=\"read\"}", move |_| {
                size
            }));
        input
    };
    // About 0.05 in use: of a pool of 4, nothing is waiting for a connection.
    assert!(!kinds(&with_size(4.0)).contains(&Kind::DbPoolSaturation));
    // Of a pool of 0.06 (a share, as some exporters give it), it is full.
    assert_eq!(kinds(&with_size(0.06))[0], Kind::DbPoolSaturation);
}

/// A 60 s run whose p95 rises by 200 ms from t=25 s to 45 s while ECS CPU steps from 30 % to
/// 95 %, read from CloudWatch at `period` with its periods starting at `phase` (CloudWatch's
/// periods start on the clock, not on the run), beside a noisy and a flat metric.
fn cloudwatch_case(period: f64, phase: f64) -> Input {
    let n = 60;
    let jitter = |t: usize| ((t * 7919) % 13) as f64 / 13.0;
    let degraded = |t: f64| (25.0..45.0).contains(&t);
    let mut input = Input {
        latency_stat: "p95",
        latency_ms: Some(steady(n, |t| {
            5.0 + jitter(t) + if degraded(t as f64) { 200.0 } else { 0.0 }
        })),
        error_rate: Some(vec![0.0; n]),
        rps: steady(n, |t| 30.0 + jitter(t)),
        target: vec![30.0; n],
        generator_busy: vec![false; n],
        generator_kept_up: true,
        latency_floor_ms: sli::LATENCY_FLOOR_MS,
        ..Default::default()
    };
    let truth = |name: &str, t: f64| -> f64 {
        match name {
            "cpu" if degraded(t) => 95.0,
            "cpu" => 30.0,
            "sqs" => 10.0 + ((t as usize * 31) % 7) as f64,
            _ => 42.0,
        }
    };
    let mut infra = Infra::default();
    for (name, key, unit) in [
        ("cpu", "AWS/ECS/CPUUtilization:Average", "percent"),
        ("sqs", "AWS/SQS/NumberOfMessagesSent:Sum", "count"),
        ("rds", "AWS/RDS/ReadIOPS:Average", ""),
    ] {
        let mut points = Vec::new();
        let mut start = phase;
        while start < n as f64 {
            // The period's average of ten samples a second.
            let samples: Vec<f64> = (0..(period * 10.0) as usize)
                .map(|i| truth(name, start + i as f64 / 10.0))
                .collect();
            points.push((start, samples.iter().sum::<f64>() / samples.len() as f64));
            start += period;
        }
        infra.series.push(crate::record::infra::Series {
            source: "cloudwatch".into(),
            name: key.into(),
            unit: unit.into(),
            dimensions: Default::default(),
            span_s: Some(period),
            points,
        });
    }
    input.add_infra(&infra);
    input
}

#[test]
fn an_aggregate_is_never_credited_a_lead_shorter_than_its_period() {
    // CPU and p95 both turned at t=25.0. Read at 1 s from periods starting 0.4 s off the run's
    // seconds this said "1s before"; at 5 s "4s before"; at 10 s up to "8s before".
    for period in [1.0, 5.0, 10.0] {
        for phase in [
            0.0,
            -0.4,
            -0.6 * period,
            -3.4f64.rem_euclid(period) - period,
        ] {
            let d = analyze(&cloudwatch_case(period, phase));
            let f = &d.findings[0];
            let at = format!("period {period}, phase {phase}: {f:?}");
            assert_eq!(f.kind, Kind::CpuSaturation, "{at}");
            assert_eq!(f.evidence["lead_s"], 0.0, "{at}");
            assert_eq!(f.evidence["span_s"], period, "{at}");
            assert!(
                f.summary
                    .contains(&format!("as (to within its {period:.0} s period)")),
                "{at}"
            );
            assert!(!f.summary.contains("s before"), "{at}");
        }
    }
    // A 60 s period over a 60 s run cannot time a 20 s step: no lead is claimed either way.
    for phase in [0.0, -20.0, -45.0] {
        let d = analyze(&cloudwatch_case(60.0, phase));
        for f in &d.findings {
            assert!(f.evidence.get("lead_s").is_none_or(|l| *l == 0.0), "{f:?}");
        }
    }
}

#[test]
fn a_series_the_grid_cannot_hold_is_named_not_dropped_silently() {
    let mut input = cloudwatch_case(10.0, 0.0);
    let mut infra = Infra::default();
    let mut before = series(vec![(-300.0, 1.0), (-240.0, 2.0)], Some(60.0));
    before.name = "AWS/SQS/ApproximateNumberOfMessagesVisible:Average".into();
    let mut sparse = series(vec![(3.0, 1.0), (40.0, 2.0)], None);
    sparse.name = "queue_depth".into();
    infra.series = vec![before, sparse];
    input.add_infra(&infra);
    let d = analyze(&input);
    assert_eq!(
        d.left_out,
        [
            "AWS/SQS/ApproximateNumberOfMessagesVisible:Average: its 2 values (60 s each) cover fewer than 3 seconds of the 60 s run",
            "queue_depth: fewer than 3 of the run's 60 seconds have a value (2 in all)",
        ]
    );
    assert!(render_text(&d).contains("left out: queue_depth: fewer than 3"));
}

#[test]
fn an_aggregate_leads_by_whole_periods_only() {
    assert_eq!(rank::credible_lead(4.0, None), 4.0);
    assert_eq!(rank::credible_lead(1.0, Some(1.0)), 0.0);
    assert_eq!(rank::credible_lead(2.0, Some(1.0)), 1.0);
    assert_eq!(rank::credible_lead(8.0, Some(10.0)), 0.0);
    assert_eq!(rank::credible_lead(15.0, Some(10.0)), 0.0);
    assert_eq!(rank::credible_lead(25.0, Some(10.0)), 15.0);
    assert_eq!(rank::credible_lead(-12.0, Some(5.0)), -7.0);
    assert_eq!(rank::credible_lead(-6.0, Some(5.0)), 0.0);
}

#[test]
fn a_value_held_across_a_silence_dates_no_change() {
    // A worker stopped at t=29 in the middle of a database call: its last scrape said one call
    // in flight, then it answered nothing until t=50, while the users degraded from t=30.
    let mut input = planted("up", false, 30);
    let silent = |t: usize| (29..50).contains(&t);
    input.signals.push(Signal {
        held: (0..60).map(|t| (30..50).contains(&t)).collect(),
        ..gauge(
            "db_operations_in_flight",
            |t| if silent(t) { 1.0 } else { 0.0 },
        )
    });
    let sli = sli::assess(&input);
    let in_flight = |input: &Input| {
        rank::rank(input, &sli)
            .into_iter()
            .find(|s| s.name == "db_operations_in_flight")
            .unwrap()
    };
    let held = in_flight(&input);
    assert_eq!(held.changed_at, None, "{held:?}");
    // The same values measured every second are a change, dated where it began.
    input.signals.last_mut().unwrap().held.clear();
    assert_eq!(in_flight(&input).changed_at, Some(29));
}

#[test]
fn a_value_held_across_a_silence_did_not_move() {
    // A healthy run in which a worker with one call in flight stopped answering for 20 s.
    let mut input = planted("db_pool_acquire_wait_seconds:p95", true, 1000);
    input.signals.push(Signal {
        held: (0..60).map(|t| (30..50).contains(&t)).collect(),
        ..gauge("db_operations_in_flight", |t| {
            if (29..50).contains(&t) {
                16.0
            } else {
                (t % 3 / 2) as f64
            }
        })
    });
    let named = |input: &Input| {
        let sli = sli::assess(input);
        assert!(!sli.report.latency_ms.as_ref().unwrap().degraded);
        moved::moved(input, &sli)
            .iter()
            .any(|m| m.signal == "db_operations_in_flight")
    };
    assert!(!named(&input));
    input.signals.last_mut().unwrap().held.clear();
    assert!(named(&input), "measured, the same values moved");
}
