//! peakload's reference target stack: a small multi-service system to load and diagnose.
//!
//! - A **shop** (login, catalogue, cart, checkout that never oversells, orders),
//!   **notifications** queued for an e-mail worker, a **timestamp writer** (`/app`), and
//!   **MultiVAC**, which learns from queued data — see `README.md` for the endpoints.
//! - Storage is behind the traits of [`store`] (`Arc<dyn …>` in [`store::Stores`]); the SQL
//!   backend runs on SQLite (default, in a data directory) or MySQL/MariaDB.
//! - [`http`] holds the router, handlers and the metrics/fault middleware; [`worker`] the
//!   queue workers; [`faults`] the injectable faults; [`metrics`] the Prometheus exposition.
//!
//! A [`Stack`] is opened from a [`Config`] (connect, migrate, seed), then [`Stack::serve`]s
//! on a bound listener until its shutdown token is cancelled: it stops accepting, lets
//! in-flight requests and worker batches finish (up to `shutdown_grace`), and returns.

pub mod cache;
pub mod config;
pub mod error;
pub mod faults;
pub mod host;
pub mod http;
pub mod metrics;
pub mod seed;
pub mod store;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{BackendConfig, Config, RedisConfig, Role, WorkerConfig};
pub use error::{AppError, StackError};
pub use faults::{FaultPatch, FaultSet, Faults};

use http::{AppShared, AppState, CatalogueCache, SessionCache};
use metrics::Metrics;
use store::gate::DbGate;
use store::sql::{SqlOptions, SqlStore};
use store::Stores;
use worker::{EmailWorker, MultivacWorker};

/// An opened stack: storage connected, migrated and seeded; ready to serve.
#[derive(Clone)]
pub struct Stack {
    state: AppState,
    config: Arc<Config>,
}

impl Stack {
    pub async fn open(config: Config) -> Result<Stack, StackError> {
        let faults = Faults::new(&config.faults)?;
        let gate = Arc::new(DbGate::new(faults.clone()));
        let sql = open_sql(&config, gate.clone()).await?;
        let stores = Stores::from_sql(sql);
        Self::with_stores(config, stores, faults, gate).await
    }

    /// Opens the stack over stores built by the caller (another backend, or a mix).
    pub async fn with_stores(
        config: Config,
        stores: Stores,
        faults: Arc<Faults>,
        gate: Arc<DbGate>,
    ) -> Result<Stack, StackError> {
        if config.role.serves_api() {
            let started = std::time::Instant::now();
            stores
                .shop
                .seed(
                    &seed::users(config.seed_users),
                    &seed::products(config.seed_products),
                )
                .await?;
            tracing::info!(
                users = config.seed_users,
                products = config.seed_products,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "seeded"
            );
        }
        let table = http::routes(config.role);
        let metrics = Arc::new(Metrics::new(&table.list));
        let catalogue = if config.role.serves_api() {
            CatalogueCache::open(
                config.catalogue_cache,
                config.redis.as_ref(),
                metrics.clone(),
            )
            .await?
        } else {
            CatalogueCache::Off
        };
        let started_at_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let state = AppState::new(AppShared {
            role: config.role,
            stores,
            faults,
            metrics,
            gate,
            admin_token: config.admin_token.clone().filter(|t| !t.is_empty()),
            sessions: SessionCache::default(),
            catalogue,
            multivac_threshold: config.multivac_threshold,
            body_limit: config.body_limit,
            wake_notifications: Arc::new(Notify::new()),
            wake_multivac: Arc::new(Notify::new()),
            started_at_unix,
            queue_stats: Default::default(),
        });
        Ok(Stack {
            state,
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stores(&self) -> &Stores {
        &self.state.stores
    }

    pub fn faults(&self) -> &Arc<Faults> {
        &self.state.faults
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }

    /// The gauges `/metrics` shows besides the counters of [`Stack::metrics`]: pools, the
    /// database gate, queue stats, faults, process CPU and memory — for other exporters.
    pub async fn scrape(&self) -> metrics::Scrape<'_> {
        http::ops::scrape(&self.state).await
    }

    /// The router for this stack's role.
    pub fn router(&self) -> axum::Router {
        http::router(
            http::routes(self.config.role),
            self.state.clone(),
            self.config.body_limit,
        )
    }

    /// A new e-mail worker; run it with [`EmailWorker::run`].
    pub fn email_worker(&self) -> EmailWorker {
        let s = &self.state;
        EmailWorker::new(
            s.stores.clone(),
            s.faults.clone(),
            self.config.worker.clone(),
            s.wake_notifications.clone(),
            s.metrics.clone(),
        )
    }

    /// A new MultiVAC worker; run it with [`MultivacWorker::run`].
    pub fn multivac_worker(&self) -> MultivacWorker {
        let s = &self.state;
        MultivacWorker::new(
            s.stores.clone(),
            s.faults.clone(),
            self.config.worker.clone(),
            s.wake_multivac.clone(),
            s.metrics.clone(),
        )
    }

    /// Serves HTTP on `listener` (and runs the workers if the role says so) until `shutdown`
    /// is cancelled, then drains within `shutdown_grace`.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), StackError> {
        let mut workers = JoinSet::new();
        if self.config.role.runs_workers() {
            workers.spawn(self.email_worker().run(shutdown.clone()));
            workers.spawn(self.multivac_worker().run(shutdown.clone()));
        }
        let grace = self.config.shutdown_grace;
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        let server =
            axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let deadline = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server => result?,
            _ = deadline => tracing::warn!("shutdown grace expired with requests in flight"),
        }
        let drained = tokio::time::timeout(grace, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown grace expired with worker batches in flight");
        }
        Ok(())
    }
}

/// Connects to (and migrates) the SQL database of `config.backend`, every operation passing
/// `gate`. [`Stack::open`] uses it for all stores; other backends keep what they do not cover
/// there (see [`Stack::with_stores`]).
pub async fn open_sql(config: &Config, gate: Arc<DbGate>) -> Result<Arc<SqlStore>, StackError> {
    let sql = match &config.backend {
        BackendConfig::Sqlite { data_dir } => {
            std::fs::create_dir_all(data_dir)?;
            let mut options = SqlOptions::for_dialect(store::schema::Dialect::Sqlite);
            if let Some(n) = config.db_max_connections {
                options.max_connections = n.max(1);
            }
            SqlStore::open_sqlite(data_dir, options, gate).await?
        }
        BackendConfig::MySql { url } => {
            let mut options = SqlOptions::for_dialect(store::schema::Dialect::MySql);
            if let Some(n) = config.db_max_connections {
                options.max_connections = n.max(1);
            }
            SqlStore::open_mysql(url, options, gate).await?
        }
    };
    Ok(Arc::new(sql))
}

/// Opens a stack from `config` and serves it on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StackError> {
    Stack::open(config).await?.serve(listener, shutdown).await
}
