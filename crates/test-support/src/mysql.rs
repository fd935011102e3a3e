//! MariaDB for tests: the server from `PEAKLOAD_TEST_MYSQL_URL`, statements run as its admin,
//! and a fresh database per test that is dropped when the test ends, passing or not.

use std::time::Duration;

use sqlx::Connection;

/// `PEAKLOAD_TEST_MYSQL_URL`, by default `mysql://root@127.0.0.1:3306/test`.
pub fn mysql_base_url() -> String {
    std::env::var("PEAKLOAD_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned())
}

/// `url` with its database name replaced (its query, if any, kept).
pub fn with_database(url: &str, name: &str) -> String {
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

/// Runs `statements` in order as the admin of [`mysql_base_url`]; fails the test, naming the
/// variable, when MariaDB does not answer within 10 s or a statement fails.
pub async fn admin_sql(statements: &[String]) {
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
        Err(_) => panic!(
            "MariaDB at {admin_url} did not answer within 10 s (set PEAKLOAD_TEST_MYSQL_URL; scripts/test does)"
        ),
    };
    for s in statements {
        sqlx::Executor::execute(&mut conn, s.as_str())
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let _ = conn.close().await;
}

/// [`admin_sql`] from anywhere, a `Drop` inside a test's runtime included: on a thread and a
/// runtime of its own. A failure is ignored (clean-up must not hide the test's own panic).
pub fn admin_sql_blocking(statements: Vec<String>) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the clean-up")
            .block_on(admin_sql(&statements));
    })
    .join();
}

/// A database created for one test and dropped when this is.
#[derive(Debug)]
pub struct FreshDatabase {
    name: String,
    url: String,
}

impl FreshDatabase {
    /// `CREATE DATABASE` named `prefix` and random hex digits.
    pub async fn create(prefix: &str) -> FreshDatabase {
        let name = format!("{prefix}_{:016x}", fastrand::u64(..));
        admin_sql(&[format!("CREATE DATABASE `{name}`")]).await;
        FreshDatabase {
            url: with_database(&mysql_base_url(), &name),
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The admin's URL with this database selected.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        admin_sql_blocking(vec![format!("DROP DATABASE IF EXISTS `{}`", self.name)]);
    }
}
