//! A stack on DynamoDB + SQS in moto (plus SQLite or a fresh MariaDB database for what stays
//! in SQL) on a loopback port, and helpers to talk to it — the same interface as the core
//! stack's `tests/stack/common.rs`, so its invariants file runs here unchanged.

use std::sync::Once;
use std::time::Duration;

use peakload_stack::{BackendConfig, Config, Stack};
use peakload_stack_aws::{AwsOptions, DynamoTables, Endpoints, SqsQueues};
#[path = "../../../tests/support/client.rs"]
mod client;
#[allow(unused_imports)]
pub use client::{Answer, Served};

pub const ADMIN_TOKEN: &str = "test-admin-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    MariaDb,
}

pub fn moto_url() -> String {
    std::env::var("PEAKLOAD_MOTO_URL").unwrap_or_else(|_| "http://127.0.0.1:5055".to_owned())
}

/// Credentials and region for the emulator (not secrets), unless the environment has them.
pub fn aws_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ] {
            if std::env::var_os(k).is_none() {
                std::env::set_var(k, v);
            }
        }
    });
}

/// Fails the test (never skips it) when moto is not running.
pub async fn require_moto() -> String {
    aws_env();
    let url = moto_url();
    let ok = reqwest::Client::new()
        .get(format!("{url}/moto-api/"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok();
    assert!(
        ok,
        "moto_server is not reachable at {url}: run the tests through scripts/test, which \
         starts it (or start `moto_server -H 127.0.0.1 -p 5055` and set PEAKLOAD_MOTO_URL)"
    );
    url
}

/// Tables and queues with a fresh random prefix, created in moto at start.
pub async fn fresh_aws() -> AwsOptions {
    let moto = require_moto().await;
    let prefix = format!("t{:012x}", fastrand::u64(..) >> 16);
    let queue = |q: &str| format!("{moto}/123456789012/{prefix}-{q}");
    AwsOptions {
        endpoints: Endpoints {
            all: Some(moto.clone()),
            ..Endpoints::default()
        },
        dynamodb: Some(DynamoTables::with_prefix(&prefix)),
        sqs: Some(SqsQueues {
            notifications: queue("notifications"),
            multivac: queue("multivac"),
            dlq: queue("dlq"),
        }),
        create_missing: true,
    }
}

pub fn mysql_base_url() -> String {
    std::env::var("PEAKLOAD_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("a MySQL URL");
    parsed.set_path(&format!("/{name}"));
    parsed.into()
}

/// Runs SQL statements on the admin URL (MariaDB set-up and clean-up).
pub async fn admin_sql(statements: &[String]) {
    use sqlx::Connection;
    let admin_url = mysql_base_url();
    let mut conn = match tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::mysql::MySqlConnection::connect(&admin_url),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "MariaDB is unreachable at {admin_url} (set PEAKLOAD_TEST_MYSQL_URL; scripts/test does): {e}"
        ),
        Err(_) => panic!("MariaDB at {admin_url} did not answer within 10 s"),
    };
    for s in statements {
        sqlx::Executor::execute(&mut conn, s.as_str())
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let _ = conn.close().await;
}

/// Owns the test's SQL database: a temporary directory, or a MariaDB database dropped at
/// the end.
pub enum DbGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    MariaDb(String),
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let DbGuard::MariaDb(name) = self {
            let statement = format!("DROP DATABASE IF EXISTS `{name}`");
            // Drop runs inside the test's runtime: clean up on a thread of its own.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(admin_sql(&[statement]));
            })
            .join();
        }
    }
}

pub async fn sql_backend(db: Db) -> (BackendConfig, DbGuard) {
    match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (
                BackendConfig::Sqlite {
                    data_dir: dir.path().to_owned(),
                },
                DbGuard::Sqlite(dir),
            )
        }
        Db::MariaDb => {
            let name = format!("stackaws_{:016x}", fastrand::u64(..));
            admin_sql(&[format!("CREATE DATABASE `{name}`")]).await;
            (
                BackendConfig::MySql {
                    url: with_database(&mysql_base_url(), &name),
                },
                DbGuard::MariaDb(name),
            )
        }
    }
}

/// A stack serving on a loopback port.
pub struct TestStack {
    pub served: Served,
    pub stack: Stack,
    #[allow(dead_code)]
    pub aws: AwsOptions,
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
    let aws = fresh_aws().await;
    let (backend, guard) = sql_backend(db).await;
    let mut config = test_config(backend);
    tweak(&mut config);
    let stack = peakload_stack_aws::open(config, &aws)
        .await
        .expect("open the stack on DynamoDB + SQS");
    serve(stack, aws, guard).await
}

pub async fn serve(stack: Stack, aws: AwsOptions, guard: DbGuard) -> TestStack {
    TestStack {
        served: Served::start(&stack).await,
        stack,
        aws,
        _db: guard,
    }
}

impl std::ops::Deref for TestStack {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.served
    }
}

#[allow(dead_code)]
impl TestStack {
    /// Graceful stop; asserts the server returned cleanly.
    pub async fn stop(mut self) {
        self.served.stop().await;
    }
}
