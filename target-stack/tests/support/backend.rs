//! The SQL store under a test's stack and the settings tests run it with: shared by the
//! stack's own tests and the AWS backend's (each includes this file with `#[path]`).

use std::time::Duration;

use peakload_stack::{BackendConfig, Config};
use peakload_test_support::mysql::FreshDatabase;
pub use peakload_test_support::Db;

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Owns the test's database: a temporary directory, or a MariaDB database dropped at the end.
pub enum DbGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    MariaDb(#[allow(dead_code)] FreshDatabase),
}

/// A fresh store: SQLite in a temporary directory, or a MariaDB database named `prefix_…`.
pub async fn sql_backend(db: Db, prefix: &str) -> (BackendConfig, DbGuard) {
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
            let db = FreshDatabase::create(prefix).await;
            (
                BackendConfig::MySql {
                    url: db.url().to_owned(),
                },
                DbGuard::MariaDb(db),
            )
        }
    }
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
