//! The catalogue cache: serialised answers of `GET /api/products?page=&q=` and
//! `GET /api/products/{id}`, kept in process (`--catalogue-cache-ms`) or, with `--redis`, in
//! Redis, where every API process shares them.
//!
//! **Guarantee.** An answer is never served more than the TTL after the start of the
//! database read it came from: an entry's lifetime is the TTL minus the time the read (and
//! serialisation) took, given to Redis with the write as `SET … PX` (so Redis expires it
//! even if this process dies). A checkout — placed, or refused for want of stock — then
//! deletes the product's own entry before answering, so the next `GET /api/products/{id}`
//! usually reads the new stock at once; that is best effort (a read that started before the
//! commit may write the old answer back, and Redis may be unreachable), the TTL is the bound.
//! Catalogue pages are not tracked per product: they follow the TTL only.
//!
//! **Redis unreachable.** Every command has a time limit; on a failure the answer comes from
//! the database, the lookup counts as `error` in `cache_requests_total`, and Redis is left
//! alone for [`REDIS_BACKOFF`] (those lookups count as `error` too), so an outage costs one
//! time-out per back-off rather than one per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::RedisConfig;
use crate::error::StackError;
use crate::metrics::Metrics;

/// How long Redis is skipped after a failed command.
pub const REDIS_BACKOFF: Duration = Duration::from_millis(500);

/// Entries of the in-process cache before it is emptied.
const MEMORY_CACHE_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CatalogueKey {
    /// A page (from 1) and the trimmed, non-empty name filter.
    Page(u32, Option<String>),
    Product(i64),
}

/// Where catalogue answers are kept, if anywhere.
pub enum CatalogueCache {
    Off,
    Memory(MemoryCache),
    Redis(RedisCache),
}

impl CatalogueCache {
    /// Off when `ttl` is zero; in Redis when `redis` is given (a TTL is then required);
    /// otherwise in process. An unreachable Redis is not a start-up error (it is logged and
    /// the catalogue is served from the database until Redis answers); a bad URL is.
    pub async fn open(
        ttl: Duration,
        redis: Option<&RedisConfig>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StackError> {
        match (redis, ttl.is_zero()) {
            (Some(_), true) => Err(StackError::Config(
                "the Redis catalogue cache needs a TTL: --catalogue-cache-ms > 0".to_owned(),
            )),
            (Some(config), false) => Ok(CatalogueCache::Redis(
                RedisCache::open(config, ttl, metrics).await?,
            )),
            (None, true) => Ok(CatalogueCache::Off),
            (None, false) => Ok(CatalogueCache::Memory(MemoryCache::new(ttl, metrics))),
        }
    }

    /// `off`, `memory` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            CatalogueCache::Off => "off",
            CatalogueCache::Memory(_) => "memory",
            CatalogueCache::Redis(_) => "redis",
        }
    }

    /// The cached answer, if any (and still within its TTL).
    pub async fn get(&self, key: &CatalogueKey) -> Option<Bytes> {
        match self {
            CatalogueCache::Off => None,
            CatalogueCache::Memory(m) => m.get(key),
            CatalogueCache::Redis(r) => r.get(key).await,
        }
    }

    /// Keeps `body`, read from the database in a read that started at `read_started`.
    pub async fn put(&self, key: &CatalogueKey, body: Bytes, read_started: Instant) {
        match self {
            CatalogueCache::Off => {}
            CatalogueCache::Memory(m) => m.put(key, body, read_started),
            CatalogueCache::Redis(r) => r.put(key, body, read_started).await,
        }
    }

    /// Forgets the products' own answers (their stock changed, or may have).
    pub async fn invalidate_products(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        match self {
            CatalogueCache::Off => {}
            CatalogueCache::Memory(m) => m.invalidate_products(ids),
            CatalogueCache::Redis(r) => r.invalidate_products(ids).await,
        }
    }
}

/// The in-process cache: one per process, so another process's checkout does not clear it.
pub struct MemoryCache {
    ttl: Duration,
    map: RwLock<HashMap<CatalogueKey, (Instant, Bytes)>>,
    metrics: Arc<Metrics>,
}

impl MemoryCache {
    pub fn new(ttl: Duration, metrics: Arc<Metrics>) -> Self {
        MemoryCache {
            ttl,
            map: RwLock::new(HashMap::new()),
            metrics,
        }
    }

    fn get(&self, key: &CatalogueKey) -> Option<Bytes> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let found = map
            .get(key)
            .filter(|(read_started, _)| read_started.elapsed() < self.ttl)
            .map(|(_, b)| b.clone());
        self.metrics.cache.count(if found.is_some() {
            Lookup::Hit
        } else {
            Lookup::Miss
        });
        found
    }

    fn put(&self, key: &CatalogueKey, body: Bytes, read_started: Instant) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MEMORY_CACHE_MAX {
            map.clear();
        }
        map.insert(key.clone(), (read_started, body));
    }

    fn invalidate_products(&self, ids: &[i64]) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            map.remove(&CatalogueKey::Product(*id));
        }
    }
}

/// What a cache lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
    /// The cache could not be asked (Redis failed, or is in its back-off).
    Error,
}

/// The Redis cache: one multiplexed connection, re-established after a failure.
pub struct RedisCache {
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    metrics: Arc<Metrics>,
    /// Redis is skipped while `started.elapsed()` (ms) is below this.
    skip_until_ms: AtomicU64,
    started: Instant,
    /// Whether the last command succeeded (to log changes, not every failure).
    healthy: AtomicBool,
}

impl RedisCache {
    async fn open(
        config: &RedisConfig,
        ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StackError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StackError::Config(format!("invalid Redis URL: {e}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| StackError::Config(format!("Redis: {e}")))?;
        let cache = RedisCache {
            conn,
            prefix: config.key_prefix.clone(),
            ttl,
            timeout: config.timeout,
            metrics,
            skip_until_ms: AtomicU64::new(0),
            started: Instant::now(),
            healthy: AtomicBool::new(true),
        };
        // A failure is logged by `command` (and the catalogue served from the database).
        if cache.command::<String>(&redis::cmd("PING")).await.is_ok() {
            tracing::info!(ttl_ms = ttl.as_millis() as u64, "catalogue cache in Redis");
        }
        Ok(cache)
    }

    fn key(&self, key: &CatalogueKey) -> String {
        match key {
            CatalogueKey::Product(id) => format!("{}product:{id}", self.prefix),
            CatalogueKey::Page(page, None) => format!("{}page:{page}", self.prefix),
            CatalogueKey::Page(page, Some(q)) => format!("{}page:{page}:{q}", self.prefix),
        }
    }

    fn backing_off(&self) -> bool {
        (self.started.elapsed().as_millis() as u64) < self.skip_until_ms.load(Ordering::Relaxed)
    }

    /// Runs one command within the time limit; a failure starts the back-off.
    async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut conn = self.conn.clone();
        let result = match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        match &result {
            Ok(_) => {
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: catalogue cache back in use");
                }
            }
            Err(e) => {
                let until = self.started.elapsed() + REDIS_BACKOFF;
                self.skip_until_ms
                    .store(until.as_millis() as u64, Ordering::Relaxed);
                if self.healthy.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "Redis failed: catalogue served from the database");
                }
            }
        }
        result
    }

    async fn get(&self, key: &CatalogueKey) -> Option<Bytes> {
        if self.backing_off() {
            self.metrics.cache.count(Lookup::Error);
            return None;
        }
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        match self.command::<Option<Vec<u8>>>(&cmd).await {
            Ok(Some(body)) => {
                self.metrics.cache.count(Lookup::Hit);
                Some(Bytes::from(body))
            }
            Ok(None) => {
                self.metrics.cache.count(Lookup::Miss);
                None
            }
            Err(_) => {
                self.metrics.cache.count(Lookup::Error);
                None
            }
        }
    }

    async fn put(&self, key: &CatalogueKey, body: Bytes, read_started: Instant) {
        let left = self.ttl.saturating_sub(read_started.elapsed());
        let px = left.as_millis() as u64;
        if px == 0 || self.backing_off() {
            return;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(&body[..]).arg("PX").arg(px);
        if self.command::<()>(&cmd).await.is_err() {
            self.metrics
                .cache
                .write_errors
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn invalidate_products(&self, ids: &[i64]) {
        if self.backing_off() {
            self.metrics
                .cache
                .write_errors
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut cmd = redis::cmd("DEL");
        for id in ids {
            cmd.arg(self.key(&CatalogueKey::Product(*id)));
        }
        if self.command::<i64>(&cmd).await.is_err() {
            self.metrics
                .cache
                .write_errors
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}
