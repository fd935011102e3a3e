//! What the workspace's tests share: the services they run against, reached the same way
//! everywhere. `scripts/test` starts each of them and sets the variables named here; a test
//! whose service is down fails, naming the variable and `scripts/test`, and never skips.
//!
//! - [`moto`]: the local AWS API emulator (`PEAKLOAD_MOTO_URL`) and the emulator credentials.
//! - `mysql` (feature `mysql`): a fresh MariaDB database per test, dropped at its end
//!   (`PEAKLOAD_TEST_MYSQL_URL`).
//! - [`redis_url`]: the test Redis (`PEAKLOAD_TEST_REDIS_URL`).
//! - [`postgres`]: the test PostgreSQL server (`PEAKLOAD_TEST_POSTGRES`), a schema per test.
//! - [`Db`] and [`both_backends!`]: one test body run on SQLite and on MariaDB.
//!
//! A dev-dependency only; it pulls in no AWS SDK and, without `mysql`, no SQL client.

pub mod moto;
#[cfg(feature = "mysql")]
pub mod mysql;
pub mod postgres;

pub use moto::{aws_env, create_bucket, delete_bucket, moto_url, require_moto};

/// `prefix` and 12 random hex digits: a name (table, queue, namespace, database) no other
/// test uses, so tests can share one emulator or one server in parallel.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{:012x}", fastrand::u64(..) >> 16)
}

/// The test Redis: `PEAKLOAD_TEST_REDIS_URL`, by default `redis://127.0.0.1:6379/`.
pub fn redis_url() -> String {
    std::env::var("PEAKLOAD_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned())
}

/// The SQL store a test body runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    MariaDb,
}

/// Generates `mod $name { sqlite, mariadb }`: two tests calling the async `$name(Db)`, each on
/// a two-thread tokio runtime.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Db::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mariadb() {
                    super::$name($crate::Db::MariaDb).await
                }
            }
        )*
    };
}
