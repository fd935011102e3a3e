//! The store on a real SQLite file and on the real PostgreSQL server (each test in a schema of
//! its own, dropped afterwards), the CSV import's messages, and verdicts over recorded series.

use hdrhistogram::Histogram;
use peakload_test_support::postgres::{postgres_place, postgres_url, unique_schema, url_in_schema};
use serde_json::json;

use super::import::parse_csv;
use super::shape::{commit_from_ci, from_results, load_hash, RunLabels};
use super::verdicts::{describe, judge_run};
use super::{Store, HTTP_SCOPE};
use crate::gate::change::Verdict;
use crate::record::results::{decode_histogram, encode_histogram, LatencyStats, Results};

/// Runs `body` with the URL of a fresh schema on the PostgreSQL server, dropping the schema
/// afterwards even when `body` panics.
async fn with_postgres_schema<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let schema = unique_schema("peakload_test");
    let admin = sqlx::PgPool::connect(&postgres_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is needed (scripts/test starts it): {e}",
                postgres_place()
            )
        });
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = url_in_schema(&schema);
    let outcome = tokio::spawn(body(url)).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A histogram of `n` latencies spread evenly over `low_ms..high_ms`.
fn histogram(n: u64, low_ms: f64, high_ms: f64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for i in 0..n {
        let ms = low_ms + (high_ms - low_ms) * i as f64 / n as f64;
        h.record((ms * 1000.0) as u64).unwrap();
    }
    h
}

/// A results file of scenario `shop` with two steps; `slow` scales the checkout step's
/// latencies (1.0 = as usual), `jitter` shifts every latency a little (run-to-run noise).
fn results(started_at: &str, slow: f64, jitter: f64) -> Results {
    let browse = histogram(1000, 10.0 + jitter, 30.0 + jitter);
    let checkout = histogram(500, (50.0 + jitter) * slow, (90.0 + jitter) * slow);
    let mut all = browse.clone();
    all.add(&checkout).unwrap();
    let stats = |h: &Histogram<u64>| serde_json::to_value(LatencyStats::from_histogram(h)).unwrap();
    let step = |name: &str, h: &Histogram<u64>, errors: u64| {
        let n = h.len();
        json!({
            "journey": "buy", "name": name, "method": "GET", "path": format!("/{name}"),
            "requests": n, "errors": errors, "error_rate": errors as f64 / n as f64,
            "rps": n as f64 / 60.0, "checks": n, "checks_failed": 0,
            "errors_by_kind": {}, "latency_ms": stats(h), "histogram": encode_histogram(h),
        })
    };
    let doc = json!({
        "schema_version": 1,
        "tool": {"name": "peakload", "version": "test"},
        "scenario": {"name": "shop", "file": "shop.toml", "target": "http://127.0.0.1:1", "model": "open"},
        "started_at": started_at, "ended_at": started_at, "duration_s": 60.0,
        "status": "completed",
        "summary": {
            "requests": all.len(), "errors": 3, "error_rate": 3.0 / all.len() as f64,
            "rps": all.len() as f64 / 60.0, "iterations": 500, "failed_iterations": 3,
            "checks": all.len(), "checks_failed": 0, "data_received_bytes": 0, "data_sent_bytes": 0,
            "latency_ms": stats(&all), "histogram": encode_histogram(&all),
        },
        "steps": [step("browse", &browse, 0), step("checkout", &checkout, 3)],
        "journeys": [{"name": "buy", "weight": 1, "iterations": 500, "failed_iterations": 3,
                      "latency_ms": stats(&all), "histogram": encode_histogram(&all)}],
        "timeline": [],
        "stages": [{"name": "steady", "start_s": 0.0, "end_s": 60.0, "target": 25.0}],
        "dropped_iterations": 0, "late_iterations": 0, "arrivals_queued": 0,
        "feeder_exhausted": 0,
        "schedule_lag_ms": {"p50": 0.0, "p99": 0.0, "max": 0.0},
        "thresholds": [], "errors": {}, "error_samples": [],
        "generator": {"threads": 1, "cpu_s": 1.0, "cpu_pct": 2.0, "kept_up": true, "notes": []},
    });
    serde_json::from_value(doc).unwrap()
}

fn at(day: u32) -> String {
    format!("2026-11-{day:02}T10:00:00.000Z")
}

/// Jitter of run `i`: deterministic, a few per cent of the latencies.
fn jitter(i: u32) -> f64 {
    [
        0.0, 1.5, -1.0, 2.5, 0.5, -2.0, 1.0, -0.5, 2.0, -1.5, 0.8, -0.8, 1.2, -1.2,
    ][i as usize % 14]
}

fn labels() -> RunLabels {
    RunLabels {
        environment: Some("ci".into()),
        commit: Some("abc123".into()),
    }
}

/// Records a run and hands back its stored form and values: the layout keeps every field and
/// any percentile can be recomputed from the stored histogram.
async fn stores_runs_losslessly(store: &Store) {
    let r = results(&at(1), 1.0, 0.0);
    let id = store
        .add(&from_results(&r, &labels()).unwrap())
        .await
        .unwrap();
    let run = store.run(id).await.unwrap();
    assert_eq!(run.scenario, "shop");
    assert_eq!(run.environment, "ci");
    assert_eq!(run.commit.as_deref(), Some("abc123"));
    assert_eq!(run.load_hash.as_deref(), Some(load_hash(&r).as_str()));
    assert_eq!(run.started_at, at(1));
    assert!(!run.accepted);

    let values = store.values(id).await.unwrap();
    let get = |scope: &str, metric: &str| {
        values
            .iter()
            .find(|(s, m, _)| s == scope && m == metric)
            .unwrap_or_else(|| panic!("no {scope} {metric} in {values:?}"))
            .2
    };
    assert_eq!(get("buy/checkout", "p99"), r.steps[1].latency_ms.p99);
    assert_eq!(get(HTTP_SCOPE, "p50"), r.summary.latency_ms.p50);
    assert_eq!(get(HTTP_SCOPE, "error_rate"), r.summary.error_rate);
    assert_eq!(get(HTTP_SCOPE, "checks"), 1.0);
    assert_eq!(get("buy/browse", "rps"), r.steps[0].rps);

    let histograms = store.histograms(id).await.unwrap();
    let (_, requests, errors, encoded) = histograms
        .iter()
        .find(|(s, ..)| s == "buy/checkout")
        .unwrap();
    assert_eq!((*requests, *errors), (500, 3));
    let h = decode_histogram(encoded).unwrap();
    let original = decode_histogram(&r.steps[1].histogram).unwrap();
    for q in [0.5, 0.75, 0.999] {
        assert_eq!(h.value_at_quantile(q), original.value_at_quantile(q));
    }

    assert_eq!(
        store.find_recorded("shop", "ci", &at(1)).await.unwrap(),
        Some(id)
    );
    assert_eq!(
        store
            .find_recorded("shop", "staging", &at(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.find_recorded("shop", "ci", &at(2)).await.unwrap(),
        None
    );

    let listed = store.list(Some("shop"), None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id]);
    assert!(store
        .list(Some("other"), None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.run(id + 1000).await,
        Err(super::HistoryError::NoSuchRun(_))
    ));
}

/// Twelve runs at one level, a 13th with a slower checkout step: the step's latency regresses,
/// the browse step does not. Accepted as intended, the next slow runs are not alerted again.
async fn slower_run_regresses_until_accepted(store: &Store) {
    let mut last = 0;
    for day in 1..=12 {
        let r = results(&at(day), 1.0, jitter(day));
        last = store
            .add(&from_results(&r, &labels()).unwrap())
            .await
            .unwrap();
    }
    let (_, verdicts) = judge_run(store, last, &[]).await.unwrap();
    assert!(
        verdicts
            .iter()
            .all(|v| v.judgement.verdict == Verdict::Unchanged),
        "{:#?}",
        verdicts.iter().map(describe).collect::<Vec<_>>()
    );

    let slow = from_results(&results(&at(13), 1.4, jitter(13)), &labels()).unwrap();
    let slow_id = store.add(&slow).await.unwrap();
    let (_, verdicts) = judge_run(store, slow_id, &[]).await.unwrap();
    let regressed: Vec<(&str, &str)> = verdicts
        .iter()
        .filter(|v| v.regressed())
        .map(|v| (v.scope.as_str(), v.metric.as_str()))
        .collect();
    let words: Vec<String> = verdicts.iter().map(describe).collect();
    for metric in ["p50", "p90", "p95", "mean"] {
        assert!(
            regressed.contains(&("buy/checkout", metric)),
            "{metric}: {words:#?}"
        );
    }
    assert!(
        !regressed.iter().any(|(scope, _)| *scope == "buy/browse"),
        "{words:#?}"
    );
    let line = words
        .iter()
        .find(|w| w.starts_with("buy/checkout p50: REGRESSED"))
        .unwrap();
    assert!(
        line.contains("baseline median") && line.contains("p < 0.0001"),
        "{line}"
    );

    // A different environment is another series: nothing to compare with there.
    let other_env = RunLabels {
        environment: Some("staging".into()),
        commit: None,
    };
    let id = store
        .add(&from_results(&results(&at(13), 1.4, 0.0), &other_env).unwrap())
        .await
        .unwrap();
    let (_, verdicts) = judge_run(store, id, &[]).await.unwrap();
    assert!(verdicts
        .iter()
        .all(|v| v.judgement.verdict == Verdict::InsufficientHistory));

    // The slowdown was intended: accepted, it is the new baseline.
    store.set_accepted(slow_id, true).await.unwrap();
    let mut after = Vec::new();
    for day in 14..=16 {
        let r = results(&at(day), 1.4, jitter(day));
        let id = store
            .add(&from_results(&r, &labels()).unwrap())
            .await
            .unwrap();
        let (_, verdicts) = judge_run(store, id, &[]).await.unwrap();
        after.extend(verdicts.into_iter().filter(|v| v.regressed()));
    }
    assert!(
        after.is_empty(),
        "{:#?}",
        after.iter().map(describe).collect::<Vec<_>>()
    );
    // Judging the slow run again (a replay) gives the same verdict as before: the mark only
    // moves the baseline of the runs from it on, and the slow run is the first of them.
    store.set_accepted(slow_id, false).await.unwrap();
    let (_, again) = judge_run(store, slow_id, &[]).await.unwrap();
    assert!(again
        .iter()
        .any(|v| v.regressed() && v.scope == "buy/checkout"));
}

#[tokio::test]
async fn sqlite_file_stores_runs_losslessly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    stores_runs_losslessly(&store).await;
    store.close().await;
    // Reopened: the same file, the same run.
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    assert_eq!(store.list(None, None, 10).await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn sqlite_file_regression_and_accepted_shift() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    slower_run_regresses_until_accepted(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_runs_losslessly() {
    with_postgres_schema(|url| async move {
        let store = Store::open(&url).await.unwrap();
        stores_runs_losslessly(&store).await;
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_regression_and_accepted_shift() {
    with_postgres_schema(|url| async move {
        let store = Store::open(&url).await.unwrap();
        slower_run_regresses_until_accepted(&store).await;
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn newer_table_layout_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE peakload_meta SET value = '99' WHERE key = 'layout_version'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = Store::open(db.to_str().unwrap()).await.err().unwrap();
    assert!(err.to_string().contains("layout version 99"), "{err}");
}

#[test]
fn load_hash_follows_the_load_shape_not_the_figures() {
    let a = results(&at(1), 1.0, 0.0);
    let b = results(&at(2), 1.5, 3.0);
    assert_eq!(load_hash(&a), load_hash(&b));
    let mut c = a.clone();
    c.stages[0].target = 50.0;
    assert_ne!(load_hash(&a), load_hash(&c));
    let mut d = a.clone();
    d.steps[1].path = "/checkout/v2".into();
    assert_ne!(load_hash(&a), load_hash(&d));
}

#[test]
fn commit_comes_from_github_then_gitlab() {
    let vars = |set: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            set.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(
        commit_from_ci(vars(&[("CI_COMMIT_SHA", "gl1"), ("GITHUB_SHA", "gh1")])),
        Some("gh1".into())
    );
    assert_eq!(
        commit_from_ci(vars(&[("CI_COMMIT_SHA", "gl1"), ("GITHUB_SHA", " ")])),
        Some("gl1".into())
    );
    assert_eq!(commit_from_ci(vars(&[])), None);
}

#[test]
fn csv_rows_become_runs() {
    let text = "run_id,time,scenario,step,metric,value,environment,commit\n\
                r1,2026-11-01T10:00:00Z,shop,http,p99,120.5,ci,abc\n\
                r1,2026-11-01T10:00:00Z,shop,buy/checkout,error_rate,0.01,ci,abc\n\
                r2,2026-11-02T12:00:00+02:00,shop,http,p99,130,,\n";
    let runs = parse_csv(text, "h.csv", Some("lab")).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].external_id.as_deref(), Some("r1"));
    assert_eq!(runs[0].environment, "ci");
    assert_eq!(runs[0].commit.as_deref(), Some("abc"));
    assert_eq!(runs[0].values.len(), 2);
    assert_eq!(runs[1].environment, "lab");
    assert_eq!(runs[1].started_ms, runs[0].started_ms + 86_400_000);
    assert!(runs
        .iter()
        .all(|r| r.load_hash.is_none() && r.source == "import"));
}

#[test]
fn csv_errors_name_line_and_column() {
    let text = "run_id,time,scenario,step,metric,value\n\
                r1,2026-11-01T10:00:00Z,shop,http,p99,120\n\
                r1,yesterday,shop,http,p50,80\n\
                r2,2026-11-02T10:00:00Z,shop,checkout,p99,1\n\
                r3,2026-11-03T10:00:00Z,shop,http,latency,1\n\
                r4,2026-11-04T10:00:00Z,shop,http,error_rate,2\n\
                r5,2026-11-05T10:00:00Z,shop,http,p99,fast\n\
                r1,2026-11-01T10:00:00Z,shop,http,p99,121\n\
                r6,2026-11-06T10:00:00Z,shop\n";
    let err = parse_csv(text, "h.csv", None).unwrap_err();
    let want = [
        "h.csv:3:4: time \"yesterday\" is not RFC 3339",
        "h.csv:4:30: step \"checkout\" must be `journey/step`",
        "h.csv:5:35: metric \"latency\" is not a gated metric",
        "h.csv:6:46: error_rate is a fraction from 0 to 1",
        "h.csv:7:39: value \"fast\" is not a number",
        "h.csv:8:35: run \"r1\" already has http p99",
        "h.csv:9:1: 3 field(s), the header has 6",
    ];
    assert_eq!(err.0.len(), want.len(), "{err}");
    for (got, want) in err.0.iter().zip(want) {
        assert!(got.starts_with(want), "{got}\n  wanted {want}");
    }
    let err = parse_csv("run,time\nx,y\n", "h.csv", None).unwrap_err();
    assert!(
        err.0[0].starts_with("h.csv:1:1: the header lacks run_id, scenario"),
        "{err}"
    );
}

/// A series' points, one run per value from run `first_id` on; the one at `accepted` (an
/// index) accepted.
fn points(values: &[f64], first_id: i64, accepted: Option<usize>) -> Vec<super::SeriesPoint> {
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| super::SeriesPoint {
            run_id: first_id + i as i64,
            started_at: String::new(),
            value,
            accepted: accepted == Some(i),
        })
        .collect()
}

/// A sub-millisecond step moved by a quarter of a millisecond on a busy CI machine (0.47 ->
/// 0.73 ms, +46 %, p = 0.0009): significant, but below the default latency floor, so the
/// gate passes it and says why; without the floor the same series regresses.
#[test]
fn a_sub_millisecond_shift_is_below_the_default_latency_floor() {
    use super::verdicts::MetricVerdict;
    use crate::gate::change::{judge, Policy};

    let values = [
        0.46, 0.47, 0.45, 0.47, 0.46, 0.48, 0.46, 0.47, 0.45, 0.46, 0.72, 0.74, 0.73, 0.71, 0.75,
        0.73,
    ];
    let describe_with = |policy: Policy| {
        let points = points(&values, 1, None);
        let judgement = judge(&values, &[], &policy).unwrap();
        let v = MetricVerdict {
            scope: "buy/home".into(),
            metric: "p50".into(),
            value: values[values.len() - 1],
            points,
            judgement,
            policy,
            knife_edge: None,
        };
        (v.judgement.verdict, describe(&v))
    };
    let (verdict, text) = describe_with(Policy::for_metric("p50").unwrap());
    assert_eq!(verdict, Verdict::Unchanged, "{text}");
    assert!(
        text.ends_with("smaller than the minimum effect (5 % and 0.5 ms)"),
        "{text}"
    );
    let (verdict, text) = describe_with(Policy {
        min_absolute: 0.0,
        ..Policy::for_metric("p50").unwrap()
    });
    assert_eq!(verdict, Verdict::Regressed, "{text}");
    assert!(!text.contains("minimum effect"), "{text}");
}

#[test]
fn after_an_accepted_change_the_verdict_says_how_many_runs_are_still_needed() {
    use super::verdicts::MetricVerdict;
    use crate::gate::change::{judge, Policy};

    let values = [100.0, 101.0, 99.0, 100.0, 130.0, 131.0, 129.0];
    let points = points(&values, 10, Some(4));
    let policy = Policy::for_metric("p50").unwrap();
    let verdict = |n: usize| {
        let v = MetricVerdict {
            scope: "buy/checkout".into(),
            metric: "p50".into(),
            value: values[n - 1],
            points: points[..n].to_vec(),
            judgement: judge(&values[..n], if n > 4 { &[4] } else { &[] }, &policy).unwrap(),
            policy: policy.clone(),
            knife_edge: None,
        };
        assert_eq!(v.judgement.verdict, Verdict::InsufficientHistory);
        describe(&v)
    };
    let text = verdict(7);
    assert!(
        text.contains(
            "(2 comparable run(s) since the accepted run #14, 8 needed: 6 more to record, this \
             one included, before the gate judges again)"
        ),
        "{text}"
    );
    let text = verdict(1);
    assert!(
        text.contains("(no earlier comparable run; 8 run(s) to record, this one included"),
        "{text}"
    );
}

/// The whole run's p50 of as many fast requests (about 1 ms) as slow ones (62 ms) is whichever
/// request is the middle one: a run whose slowest fast request took 5 ms "moved" it from 1.4
/// to 5.2 ms, significant against runs that happened to agree (as a `.ci/run` saw). That
/// change is not counted; the same jump of a step whose requests all got slower still is.
#[test]
fn a_percentile_between_two_groups_of_requests_is_not_counted_as_a_change() {
    use super::verdicts::{judge_series, knife_edge};
    use super::{Series, StoredRun};

    let mut mixed = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    mixed.record_n(700, 38).unwrap();
    mixed.record(1_300).unwrap();
    mixed.record(5_160).unwrap();
    mixed.record_n(62_000, 40).unwrap();
    let edge = knife_edge("p50", &mixed, 1.4).expect("the p50 sits on the edge");
    assert!(edge.lo <= 1.4 && edge.hi >= 60.0, "{edge:?}");
    // Inside one group the neighbours are close: no edge, whatever the baseline.
    assert_eq!(knife_edge("p99", &mixed, 62.0), None);
    assert_eq!(knife_edge("mean", &mixed, 1.4), None);
    let mut slower = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    slower.record_n(5_000, 30).unwrap();
    slower.record_n(5_200, 30).unwrap();
    assert_eq!(knife_edge("p50", &slower, 1.4), None);

    let run = StoredRun {
        id: 13,
        scenario: "s".into(),
        load_hash: None,
        environment: "ci".into(),
        commit: None,
        started_at: String::new(),
        started_ms: 0,
        status: "completed".into(),
        source: "run".into(),
        external_id: None,
        accepted: false,
        recorded_at: String::new(),
    };
    let mut values: Vec<f64> = (0..12).map(|i| 1.39 + 0.002 * f64::from(i % 3)).collect();
    values.push(5.16);
    let series = |scope: &str| Series {
        scope: scope.into(),
        metric: "p50".into(),
        points: points(&values, 1, None),
    };
    let histograms = vec![
        (HTTP_SCOPE.to_string(), encode_histogram(&mixed)),
        ("buy/home".to_string(), encode_histogram(&slower)),
    ];
    let verdicts = judge_series(
        &run,
        &[series(HTTP_SCOPE), series("buy/home")],
        &[],
        &histograms,
    )
    .unwrap();
    let http = &verdicts[0];
    assert_eq!(http.scope, HTTP_SCOPE);
    assert_eq!(
        http.judgement.verdict,
        Verdict::Unchanged,
        "{}",
        describe(http)
    );
    assert!(http.knife_edge.is_some());
    assert!(describe(http).contains("not counted"), "{}", describe(http));
    let home = &verdicts[1];
    assert_eq!(
        home.judgement.verdict,
        Verdict::Regressed,
        "{}",
        describe(home)
    );
    assert_eq!(home.knife_edge, None);
    // Without the run's histograms (an imported series), the change counts as before.
    let bare = judge_series(&run, &[series(HTTP_SCOPE)], &[], &[]).unwrap();
    assert_eq!(bare[0].judgement.verdict, Verdict::Regressed);
}
