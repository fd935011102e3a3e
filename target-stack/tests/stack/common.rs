//! Starting a stack on port 0 over a fresh database, and talking to it.

use std::time::Duration;

use peakload_stack::{BackendConfig, Config, Stack, StackError};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ADMIN_TOKEN: &str = "test-admin-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    MariaDb,
}

/// Owns the test's database: a temporary directory, or a MariaDB database dropped at the end.
pub enum DbGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    MariaDb { admin_url: String, name: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let DbGuard::MariaDb { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::mysql::MySqlConnection::connect(&admin_url).await {
                        let _ = sqlx::Executor::execute(
                            &mut c,
                            format!("DROP DATABASE IF EXISTS `{name}`").as_str(),
                        )
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn mysql_base_url() -> String {
    std::env::var("PEAKLOAD_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

async fn create_mariadb() -> (BackendConfig, DbGuard) {
    use sqlx::Connection;
    let admin_url = mysql_base_url();
    let mut conn = match tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::mysql::MySqlConnection::connect(&admin_url),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            panic!("MariaDB is unreachable at {admin_url} (set PEAKLOAD_TEST_MYSQL_URL): {e}")
        }
        Err(_) => panic!(
            "MariaDB at {admin_url} did not answer within 10 s (set PEAKLOAD_TEST_MYSQL_URL)"
        ),
    };
    let name = format!("stack_{:016x}", fastrand::u64(..));
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE `{name}`").as_str())
        .await
        .expect("CREATE DATABASE");
    let _ = conn.close().await;
    (
        BackendConfig::MySql {
            url: with_database(&admin_url, &name),
        },
        DbGuard::MariaDb { admin_url, name },
    )
}

/// A stack serving on a loopback port.
pub struct TestStack {
    pub base: String,
    pub http: reqwest::Client,
    pub stack: Stack,
    pub shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), StackError>>>,
    _db: DbGuard,
}

/// Test defaults: fast workers, no catalogue cache, an admin token, 60 users.
pub fn test_config(backend: BackendConfig) -> Config {
    let mut c = Config::with_backend(backend);
    c.admin_token = Some(ADMIN_TOKEN.to_owned());
    c.seed_users = 60;
    c.catalogue_cache = Duration::ZERO;
    c.worker.poll_interval = Duration::from_millis(20);
    c.worker.backoff_base = Duration::from_millis(20);
    c.worker.lease = Duration::from_secs(2);
    c.shutdown_grace = Duration::from_secs(5);
    c
}

pub async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> TestStack {
    let (backend, guard) = match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (
                BackendConfig::Sqlite {
                    data_dir: dir.path().to_owned(),
                },
                DbGuard::Sqlite(dir),
            )
        }
        Db::MariaDb => create_mariadb().await,
    };
    let mut config = test_config(backend);
    tweak(&mut config);
    let stack = Stack::open(config).await.expect("open the stack");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(stack.clone().serve(listener, shutdown.clone()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestStack {
        base,
        http,
        stack,
        shutdown,
        server: Some(server),
        _db: guard,
    }
}

/// A response: status and body (JSON if it parses, else a JSON string).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl TestStack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(j) = json {
            req = req.json(&j);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    /// `GET /metrics`, as text.
    pub async fn metrics_text(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).send().await.unwrap();
        resp.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, json: Value) -> Answer {
        self.call(Method::POST, path, token, Some(json)).await
    }

    pub async fn login(&self, user: u32) -> String {
        let a = self
            .post(
                "/api/login",
                None,
                serde_json::json!({ "email": format!("user{user}@example.com"), "password": format!("pw-{user}") }),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        a.body["token"].as_str().unwrap().to_owned()
    }

    /// Waits until `check` is true, polling; panics after `limit`.
    pub async fn eventually<F, Fut>(&self, limit: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let until = tokio::time::Instant::now() + limit;
        loop {
            if check().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "timed out waiting for: {what}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Graceful stop; asserts the server returned cleanly.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let server = self.server.take().unwrap();
        let result = tokio::time::timeout(Duration::from_secs(15), server)
            .await
            .expect("server stopped in time")
            .expect("server task did not panic");
        result.expect("server returned Ok");
    }
}

/// Asserts a client error with a JSON `{"error": …}` body.
#[track_caller]
pub fn assert_json_error(a: &Answer, status: u16) {
    assert_eq!(a.status.as_u16(), status, "{a:?}");
    assert!(a.body["error"].is_string(), "no JSON error body: {a:?}");
}
