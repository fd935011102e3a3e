//! Storage seams of the stack.
//!
//! Handlers and workers see storage only through the traits below, held in [`Stores`] as
//! `Arc<dyn …>`. The SQL backend ([`sql::SqlStore`], SQLite or MySQL) implements all of them;
//! another backend (DynamoDB for carts, sessions and timestamps; SQS for the queues) can
//! implement a subset and be mixed in, because each trait owns a separate piece of state and
//! no operation spans two traits.
//!
//! Times cross these traits as milliseconds since the Unix epoch (`i64`), so every backend
//! stores them the same way.

pub mod gate;
pub mod health;
pub mod schema;
pub mod sql;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

/// What can go wrong in a store. Cheap to build; the HTTP layer maps it to 500/503.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// A backend other than SQL (DynamoDB, SQS, …) failed; `unavailable` when it could not be
    /// reached or throttled the call, rather than refusing it.
    #[error("{backend} error: {message}")]
    Backend {
        backend: &'static str,
        message: String,
        unavailable: bool,
    },
    /// The task that ran the operation ended without an answer (it panicked, or the runtime
    /// is shutting down). Its connection went back through the pool's checks, which close
    /// one left inside a transaction.
    #[error("database operation lost: {0}")]
    Lost(String),
}

impl StoreError {
    /// True when the backend could not be reached or had no free connection in time.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            ) | StoreError::Backend {
                unavailable: true,
                ..
            }
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Milliseconds since the Unix epoch, the time unit of every store.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A user's login material: the password is checked as `sha256(salt || password)`.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub id: i64,
    pub salt: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CartLine {
    pub product_id: i64,
    pub name: String,
    pub qty: i64,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddToCart {
    Added,
    UnknownProduct,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderLine {
    pub product_id: i64,
    pub qty: i64,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub order_id: i64,
    #[serde(skip)]
    pub user_id: i64,
    pub total_cents: i64,
    pub created_at_ms: i64,
    pub items: Vec<OrderLine>,
}

#[derive(Debug, Clone)]
pub enum CheckoutOutcome {
    Placed(Order),
    EmptyCart,
    /// Nothing was changed: the cart stays as it was.
    OutOfStock {
        product_id: i64,
    },
}

/// A user to seed; the hash is computed by the caller so every backend stores the same thing.
#[derive(Debug, Clone)]
pub struct SeedUser {
    pub email: String,
    pub salt: String,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct SeedProduct {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// The shop: users and sessions, catalogue, carts and orders.
#[async_trait]
pub trait ShopStore: Send + Sync {
    async fn user_credentials(&self, email: &str) -> StoreResult<Option<UserCredentials>>;
    async fn create_session(&self, token: &str, user_id: i64) -> StoreResult<()>;
    async fn session_user(&self, token: &str) -> StoreResult<Option<i64>>;
    /// `page` starts at 1; `name_contains` is matched literally (no wildcards).
    async fn list_products(
        &self,
        page: u32,
        per_page: u32,
        name_contains: Option<&str>,
    ) -> StoreResult<Vec<Product>>;
    async fn product(&self, id: i64) -> StoreResult<Option<Product>>;
    /// Adds `qty` to the user's line for the product (creating it).
    async fn add_to_cart(&self, user_id: i64, product_id: i64, qty: i64) -> StoreResult<AddToCart>;
    async fn cart(&self, user_id: i64) -> StoreResult<Vec<CartLine>>;
    /// Atomically: decrement the stock of every cart line (never below zero), record the order,
    /// empty the cart. Either all of it happens or none.
    async fn checkout(&self, user_id: i64) -> StoreResult<CheckoutOutcome>;
    /// The order, if it exists and belongs to `user_id`.
    async fn order(&self, user_id: i64, order_id: i64) -> StoreResult<Option<Order>>;
    /// Units of a product in all orders (for invariant checks and diagnosis).
    async fn units_sold(&self, product_id: i64) -> StoreResult<i64>;
    /// Inserts what is missing; running it again changes nothing.
    async fn seed(&self, users: &[SeedUser], products: &[SeedProduct]) -> StoreResult<()>;
}

/// The durable queues the stack uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    Notifications,
    Multivac,
}

impl Queue {
    pub const ALL: [Queue; 2] = [Queue::Notifications, Queue::Multivac];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Notifications => "notifications",
            Queue::Multivac => "multivac",
        }
    }
}

/// A message leased to one worker until its lease runs out.
#[derive(Debug, Clone)]
pub struct LeasedMessage {
    pub id: i64,
    pub payload: String,
    /// Deliveries attempted so far, this one included.
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    Queued,
    Sent,
    Failed,
}

impl MessageState {
    /// The stored code: 0 queued, 1 sent, 2 failed.
    pub(crate) fn from_code(code: i64) -> StoreResult<Self> {
        match code {
            0 => Ok(MessageState::Queued),
            1 => Ok(MessageState::Sent),
            2 => Ok(MessageState::Failed),
            other => Err(StoreError::Corrupt(format!("message state {other}"))),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct MessageStatus {
    pub status: MessageState,
    pub attempts: u32,
}

/// Gauges of one queue, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueStats {
    /// Messages waiting or leased (not yet sent nor dead-lettered).
    pub depth: u64,
    /// Age of the oldest such message.
    pub oldest_age: Option<Duration>,
    /// Messages dead-lettered after too many attempts.
    pub dead_lettered: u64,
}

/// Durable at-least-once queues with leases, delayed retries and a dead-letter state.
///
/// Workers `claim` a batch (which leases it and counts an attempt), then `ack`, `retry_later`
/// or `dead_letter` each message. A message whose worker died reappears when its lease ends.
#[async_trait]
pub trait QueueStore: Send + Sync {
    async fn enqueue(&self, queue: Queue, payload: &str) -> StoreResult<i64>;
    async fn claim(
        &self,
        queue: Queue,
        max: u32,
        lease: Duration,
    ) -> StoreResult<Vec<LeasedMessage>>;
    async fn ack(&self, queue: Queue, ids: &[i64]) -> StoreResult<()>;
    async fn retry_later(&self, queue: Queue, id: i64, delay: Duration) -> StoreResult<()>;
    async fn dead_letter(&self, queue: Queue, id: i64) -> StoreResult<()>;
    async fn status(&self, queue: Queue, id: i64) -> StoreResult<Option<MessageStatus>>;
    async fn stats(&self, queue: Queue) -> StoreResult<QueueStats>;
}

/// A delivered e-mail, as the recipient's mailbox sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub notification_id: i64,
    pub recipient: String,
    pub subject: String,
}

/// The recipients' side of the e-mail worker: one row per notification id, ever.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Records the delivery; `false` if this id was already delivered (nothing changes).
    async fn record_delivery(&self, delivery: &Delivery) -> StoreResult<bool>;
    /// How many deliveries are recorded for the id (0 or 1 by construction).
    async fn deliveries_of(&self, notification_id: i64) -> StoreResult<i64>;
    async fn delivery_total(&self) -> StoreResult<i64>;
}

#[derive(Debug, Clone, Serialize)]
pub struct TimestampRecord {
    pub id: i64,
    pub request_id: String,
    pub client_addr: String,
    pub timestamp_ms: i64,
}

/// The timestamp writer's table.
#[async_trait]
pub trait TimestampStore: Send + Sync {
    async fn insert(
        &self,
        request_id: &str,
        client_addr: &str,
        timestamp_ms: i64,
    ) -> StoreResult<TimestampRecord>;
    async fn recent(&self, limit: u32) -> StoreResult<Vec<TimestampRecord>>;
    async fn by_request_id(&self, request_id: &str) -> StoreResult<Option<TimestampRecord>>;
}

/// What MultiVAC has learnt so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Knowledge {
    pub items_processed: u64,
    /// The most frequent word and its count.
    pub top_word: Option<(String, u64)>,
}

/// MultiVAC's learnt state. Learning is idempotent per message id.
#[async_trait]
pub trait MultivacStore: Send + Sync {
    /// Learns the words of each (message id, words) item not learnt before; returns how many
    /// items were new.
    async fn learn(&self, items: &[(i64, Vec<String>)]) -> StoreResult<u64>;
    async fn knowledge(&self) -> StoreResult<Knowledge>;
}

/// A connection pool's gauges.
#[derive(Debug, Clone)]
pub struct PoolSnapshot {
    pub name: &'static str,
    pub max: u32,
    pub open: u32,
    pub idle: u32,
}

/// Reachability, writability and pool gauges of a backend.
#[async_trait]
pub trait BackendHealth: Send + Sync {
    fn backend_name(&self) -> &'static str;
    async fn ping(&self) -> StoreResult<()>;
    /// Whether writes work now (`Err` says why not). A backend that answers pings can still
    /// be unable to write: a writer connection left broken, a lock held elsewhere, one kind
    /// of write failing every time. The default knows nothing and says yes.
    async fn writes_ok(&self) -> Result<(), String> {
        Ok(())
    }
    fn pools(&self) -> Vec<PoolSnapshot>;
}

/// Every store the stack uses. Clone is cheap.
#[derive(Clone)]
pub struct Stores {
    pub shop: Arc<dyn ShopStore>,
    pub queues: Arc<dyn QueueStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub timestamps: Arc<dyn TimestampStore>,
    pub multivac: Arc<dyn MultivacStore>,
    pub health: Vec<Arc<dyn BackendHealth>>,
}

impl Stores {
    /// All stores backed by one SQL database.
    pub fn from_sql(store: Arc<sql::SqlStore>) -> Self {
        Stores {
            shop: store.clone(),
            queues: store.clone(),
            deliveries: store.clone(),
            timestamps: store.clone(),
            multivac: store.clone(),
            health: vec![store],
        }
    }
}
