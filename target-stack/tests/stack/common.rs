//! Starting a stack on port 0 over a fresh database, and talking to it.

use std::time::Duration;

use peakload_stack::{BackendConfig, Config, Stack};

#[path = "../support/client.rs"]
mod client;
pub use client::{Answer, Served};

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
    pub served: Served,
    pub stack: Stack,
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
    TestStack {
        served: Served::start(&stack).await,
        stack,
        _db: guard,
    }
}

impl std::ops::Deref for TestStack {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.served
    }
}

impl TestStack {
    /// Graceful stop; asserts the server returned cleanly.
    pub async fn stop(mut self) {
        self.served.stop().await;
    }
}

/// Asserts a client error with a JSON `{"error": …}` body.
#[track_caller]
pub fn assert_json_error(a: &Answer, status: u16) {
    assert_eq!(a.status.as_u16(), status, "{a:?}");
    assert!(a.body["error"].is_string(), "no JSON error body: {a:?}");
}
