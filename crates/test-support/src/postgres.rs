//! The test PostgreSQL server (`PEAKLOAD_TEST_POSTGRES`, by default the development machine's
//! `postgres://postgres@127.0.0.1:5432/test`). Tests work in a schema of their own, reached
//! through the URL's `search_path`, so they can share one server in parallel.

/// The server's URL, as `scripts/test` sets it.
pub fn postgres_url() -> String {
    std::env::var("PEAKLOAD_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema name no other test uses (the caller creates and drops it).
pub fn unique_schema(prefix: &str) -> String {
    crate::unique(&format!("{prefix}_"))
}

/// The server's URL with `schema` first on the search path.
pub fn url_in_schema(schema: &str) -> String {
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// Where the server is, without its credentials: for messages.
pub fn postgres_place() -> String {
    let url = postgres_url();
    match url.rsplit_once('@') {
        Some((_, place)) => format!("postgres://…@{place}"),
        None => url,
    }
}
