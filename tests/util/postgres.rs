//! The PostgreSQL server for history tests (`peakload_test_support::postgres`): each test gets
//! a schema of its own, reached through the URL's `search_path`, and drops it afterwards.

use peakload_test_support::postgres::{postgres_place, postgres_url, unique_schema, url_in_schema};

fn execute(sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::PgPool::connect(&postgres_url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {} is needed (scripts/test starts it): {e}",
                    postgres_place()
                )
            });
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    });
}

/// A new empty schema; returns the URL that works in it, and its name.
pub fn fresh_schema() -> (String, String) {
    let schema = unique_schema("peakload_it");
    execute(&format!("CREATE SCHEMA {schema}"));
    (url_in_schema(&schema), schema)
}

pub fn drop_schema(schema: &str) {
    execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
}
