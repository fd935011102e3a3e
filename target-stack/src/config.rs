//! The validated configuration a [`crate::Stack`] is opened with. The binary builds it from
//! flags and environment; tests build it directly.

use std::path::PathBuf;
use std::time::Duration;

use crate::faults::FaultSet;

/// Which parts of the stack a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// API and workers in one process.
    All,
    /// The HTTP services only.
    Api,
    /// The workers, with the operational endpoints (health, metrics, faults) on `--listen`.
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }

    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    pub fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum BackendConfig {
    /// `stack.db` in this directory (created if missing).
    Sqlite { data_dir: PathBuf },
    /// A MySQL/MariaDB URL; the database must exist.
    MySql { url: String },
}

/// How the workers drain their queues.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Messages claimed at once.
    pub batch_size: u32,
    /// How long a claimed message stays invisible to other workers; a worker that dies
    /// mid-batch has its messages redelivered after this.
    pub lease: Duration,
    /// Sleep when a queue is empty (an in-process enqueue wakes the worker sooner).
    pub poll_interval: Duration,
    /// Attempts before a notification is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch_size: 32,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// The Redis catalogue cache.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` (no TLS).
    pub url: String,
    /// Prepended to every key, so several stacks (or tests) can share one Redis.
    pub key_prefix: String,
    /// Longest wait for one Redis command (connecting included) before the answer comes
    /// from the database instead.
    pub timeout: Duration,
}

impl RedisConfig {
    pub const DEFAULT_KEY_PREFIX: &'static str = "peakload-stack:";
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);

    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            key_prefix: Self::DEFAULT_KEY_PREFIX.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// The URL may hold a password: it is not shown.
impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"<hidden>")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    pub backend: BackendConfig,
    /// Enables `/admin/faults` with this bearer token; without one that endpoint is a 404.
    pub admin_token: Option<String>,
    /// Faults in force at start.
    pub faults: FaultSet,
    pub seed_users: u32,
    pub seed_products: u32,
    pub worker: WorkerConfig,
    /// Items MultiVAC must have learnt before it answers.
    pub multivac_threshold: u64,
    /// How long catalogue answers are reused; zero disables the cache. With [`Config::redis`]
    /// it is the TTL of the answers kept in Redis.
    pub catalogue_cache: Duration,
    /// Keep catalogue answers in Redis (shared by every API process) instead of in process.
    pub redis: Option<RedisConfig>,
    /// Largest request body accepted (413 beyond).
    pub body_limit: usize,
    /// Pool size: readers on SQLite, all connections on MySQL. `None`: 4 / 16.
    pub db_max_connections: Option<u32>,
    /// After a shutdown signal, how long in-flight requests and worker batches may take.
    pub shutdown_grace: Duration,
}

impl Config {
    /// Defaults, on SQLite in `data_dir`.
    pub fn sqlite(data_dir: impl Into<PathBuf>) -> Self {
        Self::with_backend(BackendConfig::Sqlite {
            data_dir: data_dir.into(),
        })
    }

    /// Defaults, on MySQL at `url`.
    pub fn mysql(url: impl Into<String>) -> Self {
        Self::with_backend(BackendConfig::MySql { url: url.into() })
    }

    pub fn with_backend(backend: BackendConfig) -> Self {
        Config {
            role: Role::All,
            backend,
            admin_token: None,
            faults: FaultSet::default(),
            seed_users: 1000,
            seed_products: 200,
            worker: WorkerConfig::default(),
            multivac_threshold: 100,
            catalogue_cache: Duration::from_secs(1),
            redis: None,
            body_limit: 64 * 1024,
            db_max_connections: None,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
