//! Health, readiness, metrics, the fault admin API and graceful shutdown. The binary's
//! process contract is tested in the `peakload-stack-cli` package, which builds it.

use std::time::{Duration, Instant};

use peakload_stack::{BackendConfig, Role};
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::common::{assert_json_error, start, Db, TestStack, ADMIN_TOKEN};

both_backends!(
    health_and_metrics,
    faults_change_behaviour_at_run_time,
    readiness_fails_while_writes_cannot_finish,
);

async fn health_and_metrics(db: Db) {
    let s = start(db, |_| {}).await;
    assert_eq!(s.get("/healthz", None).await.status, StatusCode::OK);
    let ready = s.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");
    s.get("/api/products/1", None).await;
    s.get("/api/products/0", None).await;
    s.post(
        "/api/notifications",
        None,
        json!({ "to": "x@bounce.invalid", "subject": "", "body": "" }),
    )
    .await;
    let resp = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for needle in [
        "http_requests_total{method=\"GET\",route=\"/api/products/{id}\",status_class=\"2xx\"} 1\n",
        "http_requests_total{method=\"GET\",route=\"/api/products/{id}\",status_class=\"4xx\"} 1\n",
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/products/{id}\",le=\"+Inf\"} 2\n",
        "http_request_duration_seconds_count{method=\"POST\",route=\"/api/notifications\"} 1\n",
        "db_pool_connections{pool=",
        "state=\"in_use\"}",
        "state=\"idle\"}",
        "db_pool_acquire_wait_seconds_count ",
        "db_operation_duration_seconds_count ",
        "queue_depth{queue=\"notifications\"}",
        "queue_oldest_message_age_seconds{queue=\"multivac\"} 0\n",
        "worker_messages_processed_total{worker=\"email\"}",
        "worker_messages_failed_total{worker=\"email\"}",
        "worker_messages_in_flight{worker=\"multivac\"}",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "# TYPE http_request_duration_seconds histogram\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }
    s.stop().await;
}

async fn faults_change_behaviour_at_run_time(db: Db) {
    let s = start(db, |_| {}).await;
    let admin = Some(ADMIN_TOKEN);
    assert_json_error(&s.get("/admin/faults", None).await, 401);
    assert_json_error(&s.get("/admin/faults", Some("wrong")).await, 401);
    assert_json_error(
        &s.post("/admin/faults", Some("wrong"), json!({ "error_rate": 1.0 }))
            .await,
        401,
    );
    let current = s.get("/admin/faults", admin).await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.body["error_rate"], 0.0);
    assert_json_error(
        &s.post("/admin/faults", admin, json!({ "error_rate": 2.0 }))
            .await,
        422,
    );
    assert_json_error(
        &s.post("/admin/faults", admin, json!({ "no_such_fault": 1 }))
            .await,
        422,
    );

    // error_rate: every API request fails with a JSON 500; operational endpoints do not.
    let set = s
        .post("/admin/faults", admin, json!({ "error_rate": 1.0 }))
        .await;
    assert_eq!(set.body["error_rate"], 1.0);
    assert_json_error(&s.get("/api/products/1", None).await, 500);
    assert_eq!(s.get("/healthz", None).await.status, StatusCode::OK);
    s.post("/admin/faults", admin, json!({ "error_rate": 0.0 }))
        .await;
    assert_eq!(s.get("/api/products/1", None).await.status, StatusCode::OK);

    // db_latency_ms and db_pool_size: concurrent reads queue behind one slow connection.
    assert!(s.metrics_text().await.contains("queue_stats_fresh 1\n"));
    let set = s
        .post(
            "/admin/faults",
            admin,
            json!({ "db_latency_ms": 100, "db_pool_size": 1 }),
        )
        .await;
    assert_eq!(set.body["db_pool_size"], 1);
    let started = Instant::now();
    let reads: Vec<_> = (0..4).map(|_| s.get("/api/products/2", None)).collect();
    // A scrape while the slot is taken answers at once, with the queue gauges it had: a
    // scraper that waited behind the fault would lose the seconds that show it.
    let scrape = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let asked = Instant::now();
        let text = s.metrics_text().await;
        (asked.elapsed(), text)
    };
    let (answers, (scrape_took, scraped)) = tokio::join!(futures_join(reads), scrape);
    for a in answers {
        assert_eq!(a.status, StatusCode::OK);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "4 reads × 100 ms through one slot"
    );
    assert!(
        scrape_took < Duration::from_millis(300),
        "/metrics waited {scrape_took:?} behind the database"
    );
    assert!(scraped.contains("queue_stats_fresh 0\n"), "{scraped}");
    let metrics = s.metrics_text().await;
    assert!(metrics.contains("db_operations_limit 1\n"), "{metrics}");
    s.post(
        "/admin/faults",
        admin,
        json!({ "db_latency_ms": 0, "db_pool_size": 0 }),
    )
    .await;
    assert_eq!(
        s.get("/admin/faults", admin).await.body["db_pool_size"],
        serde_json::Value::Null
    );
    s.eventually(Duration::from_secs(10), "fresh queue stats", || async {
        s.metrics_text().await.contains("queue_stats_fresh 1\n")
    })
    .await;

    // cpu_work_us: each request burns the CPU time.
    s.post("/admin/faults", admin, json!({ "cpu_work_us": 30_000 }))
        .await;
    let started = Instant::now();
    s.get("/api/products/3", None).await;
    assert!(started.elapsed() >= Duration::from_millis(30));
    s.post("/admin/faults", admin, json!({ "cpu_work_us": 0 }))
        .await;

    // worker_paused: nothing is delivered until resumed.
    s.post(
        "/admin/faults",
        admin,
        json!({ "worker_paused": true, "worker_delay_ms": 1 }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let queued = s
        .post(
            "/api/notifications",
            None,
            json!({ "to": "p@example.com", "subject": "", "body": "" }),
        )
        .await;
    let path = format!("/api/notifications/{}", queued.body["id"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.get(&path, None).await.body["status"], "queued");
    s.post("/admin/faults", admin, json!({ "worker_paused": false }))
        .await;
    s.eventually(Duration::from_secs(10), "sent after resume", || async {
        s.get(&path, None).await.body["status"] == "sent"
    })
    .await;
    s.stop().await;
}

async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    // Poll them together: all start before any finishes.
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().map(Option::unwrap));
    out
}

#[tokio::test]
async fn admin_endpoint_is_absent_without_a_token() {
    let s = start(Db::Sqlite, |c| c.admin_token = None).await;
    assert_json_error(&s.get("/admin/faults", None).await, 404);
    assert_json_error(
        &s.post(
            "/admin/faults",
            Some("anything"),
            json!({ "error_rate": 1.0 }),
        )
        .await,
        404,
    );
    s.stop().await;
}

#[tokio::test]
async fn worker_role_serves_only_operational_endpoints() {
    let s = start(Db::Sqlite, |c| c.role = Role::Worker).await;
    assert_eq!(s.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(s.get("/metrics", None).await.status, StatusCode::OK);
    assert_json_error(&s.get("/api/products", None).await, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight() {
    let s = start(Db::Sqlite, |c| c.faults.db_latency_ms = 2_000).await;
    let slow = {
        let req = s
            .http
            .post(s.url("/app"))
            .header("x-request-id", "in-flight");
        tokio::spawn(async move { req.send().await.map(|r| r.status()) })
    };
    // Half a second to reach the handler, where the injected 2 s keep it in flight.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stack = s.stack.clone();
    s.stop().await;
    assert_eq!(
        slow.await.unwrap().expect("in-flight request answered"),
        StatusCode::CREATED
    );
    assert!(stack
        .stores()
        .timestamps
        .by_request_id("in-flight")
        .await
        .unwrap()
        .is_some());
}

/// Another client holds the database's write lock (SQLite: a `BEGIN IMMEDIATE` on the file;
/// MariaDB: `LOCK TABLES … WRITE` on every table): pings still answer, writes cannot finish.
/// `/readyz` must say so, and be 200 again once the lock is gone. An API process, so that no
/// worker's claims make writes to watch: the test write has to find it out.
async fn readiness_fails_while_writes_cannot_finish(db: Db) {
    let s = start(db, |c| c.role = Role::Api).await;
    assert_eq!(s.get("/readyz", None).await.status, StatusCode::OK);
    let lock = WriteLock::take(&s).await;
    let until = Instant::now() + Duration::from_secs(8);
    let answer = loop {
        let a = s.get("/readyz", None).await;
        if a.status == StatusCode::SERVICE_UNAVAILABLE {
            break a;
        }
        assert!(
            Instant::now() < until,
            "/readyz still {a:?} while writes are locked out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let why = answer.body["error"].as_str().unwrap_or_default();
    assert!(why.contains("cannot write"), "{answer:?}");
    lock.release().await;
    s.eventually(
        Duration::from_secs(10),
        "/readyz 200 once the lock is gone",
        || async { s.get("/readyz", None).await.status == StatusCode::OK },
    )
    .await;
    let token = s.login(2).await;
    let add = s
        .post(
            "/api/cart/items",
            Some(&token),
            json!({ "product_id": 3, "qty": 1 }),
        )
        .await;
    assert_eq!(add.status, StatusCode::CREATED, "{add:?}");
    let order = s.post("/api/checkout", Some(&token), json!({})).await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
    s.stop().await;
}

/// The write lock of [`readiness_fails_while_writes_cannot_finish`], held by a connection
/// of the test's own.
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    MariaDb(sqlx::MySqlConnection),
}

impl WriteLock {
    async fn take(s: &TestStack) -> WriteLock {
        use sqlx::{Connection, Executor, Row};
        match &s.stack.config().backend {
            BackendConfig::Sqlite { data_dir } => {
                let url = format!("sqlite://{}", data_dir.join("stack.db").display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                c.execute("PRAGMA busy_timeout = 10000").await.unwrap();
                c.execute("BEGIN IMMEDIATE").await.unwrap();
                WriteLock::Sqlite(c)
            }
            BackendConfig::MySql { url } => {
                let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
                let tables: Vec<String> = sqlx::query("SHOW TABLES")
                    .fetch_all(&mut c)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect();
                let list: Vec<String> = tables.iter().map(|t| format!("`{t}` WRITE")).collect();
                c.execute(format!("LOCK TABLES {}", list.join(", ")).as_str())
                    .await
                    .unwrap();
                WriteLock::MariaDb(c)
            }
        }
    }

    async fn release(self) {
        use sqlx::{Connection, Executor};
        match self {
            WriteLock::Sqlite(mut c) => {
                c.execute("ROLLBACK").await.unwrap();
                c.close().await.unwrap();
            }
            WriteLock::MariaDb(mut c) => {
                c.execute("UNLOCK TABLES").await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}
