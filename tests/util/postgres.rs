//! The PostgreSQL server for history tests (`PEAKLOAD_TEST_POSTGRES`, or the development
//! machine's `postgres://postgres@127.0.0.1:5432/test`): each test gets a schema of its own,
//! reached through the URL's `search_path`, and drops it afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

pub fn admin_url() -> String {
    std::env::var("PEAKLOAD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn execute(sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(&admin_url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {} is needed (scripts/test starts it): {e}",
                    admin_url()
                )
            });
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    });
}

/// A new empty schema; returns the URL that works in it, and its name.
pub fn fresh_schema() -> (String, String) {
    static N: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "peakload_it_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    execute(&format!("CREATE SCHEMA {schema}"));
    let base = admin_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    (
        format!("{base}{sep}options=-c%20search_path%3D{schema}"),
        schema,
    )
}

pub fn drop_schema(schema: &str) {
    execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
}
