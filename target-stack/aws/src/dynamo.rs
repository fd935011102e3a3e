//! DynamoDB: sessions, carts, `/app` timestamps and the notifications' status records.
//!
//! Every table is keyed by a string `pk` (and a string `sk`, except sessions), as the
//! Terraform in `deploy/terraform` creates them:
//!
//! | table | pk | sk | attributes |
//! |---|---|---|---|
//! | sessions | token | — | `user_id`, `created_at_ms`, `expires_at` (TTL, epoch seconds) |
//! | carts | `user#<id>` | `cart` | `p<product id>` = quantity, `cart_version`, `lock_token`, `lock_until` |
//! | timestamps | `ts#<shard>` (8 shards by request id) | `<ms, 15 digits>#<id>` | `id`, `request_id`, `client_addr`, `timestamp_ms` |
//! | notifications | `n#<id>` | `status` | `state` (queued/sent/failed), `attempts`, `created_at_ms`, `expires_at` (TTL) |
//!
//! Reads are strongly consistent (a login is followed at once by calls with its token, a
//! `POST /app` by reads of it). Writes that must not clobber are conditional: a session or a
//! status record is never overwritten, a checkout locks the cart it read
//! (`cart_version` unchanged, no live lock) before the SQL order is placed, and removes
//! exactly the quantities it sold, so items added meanwhile stay in the cart. Every call
//! passes the stack's [`DbGate`], so the database faults apply here too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use peakload_stack::store::gate::{DbGate, Held};
use peakload_stack::store::health::{WriteHealth, WriteOp};
use peakload_stack::store::sql::SqlStore;
use peakload_stack::store::{
    now_ms, AddToCart, BackendHealth, CartLine, CheckoutOutcome, MessageState, MessageStatus,
    Order, PoolSnapshot, Product, SeedProduct, SeedUser, ShopStore, StoreError, StoreResult,
    TimestampRecord, TimestampStore, UserCredentials,
};

use crate::error::{corrupt, store_error};

const BACKEND: &str = "dynamodb";
/// Sessions expire (TTL) a day after login.
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Status records of notifications are kept as long as the dead-letter queue keeps messages.
pub const STATUS_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
/// A checkout's lock on a cart lapses after this (a crashed process cannot block a cart).
const CART_LOCK: Duration = Duration::from_secs(30);
/// How long a checkout waits for another checkout of the same cart.
const CART_LOCK_WAIT: Duration = Duration::from_secs(10);
/// Write shards of the timestamps table (each partition key takes ~1,000 writes/s).
pub const TIMESTAMP_SHARDS: u32 = 8;
const ATTEMPTS: &str = "attempts";

/// The table names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoTables {
    pub carts: String,
    pub sessions: String,
    pub timestamps: String,
    pub notifications: String,
}

impl DynamoTables {
    /// `<prefix>-carts`, `<prefix>-sessions`, … as Terraform names them.
    pub fn with_prefix(prefix: &str) -> Self {
        DynamoTables {
            carts: format!("{prefix}-carts"),
            sessions: format!("{prefix}-sessions"),
            timestamps: format!("{prefix}-timestamps"),
            notifications: format!("{prefix}-notifications"),
        }
    }

    pub fn all(&self) -> [&str; 4] {
        [
            &self.carts,
            &self.sessions,
            &self.timestamps,
            &self.notifications,
        ]
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_n(item: &HashMap<String, AttributeValue>, name: &str) -> StoreResult<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| corrupt(format!("{name} is not an integer: {v}"))),
        _ => Err(corrupt(format!("missing number {name}"))),
    }
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt(format!("missing string {name}"))),
    }
}

fn epoch_secs_after(d: Duration) -> i64 {
    now_ms() / 1000 + d.as_secs() as i64
}

/// FNV-1a: a stable shard for a request id.
fn shard_of(request_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in request_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % TIMESTAMP_SHARDS
}

/// A fresh id: random, positive, below 2^53 (exact in every JSON reader).
pub fn new_id() -> i64 {
    fastrand::i64(1..(1 << 53))
}

/// What a cart item holds.
#[derive(Debug, Default)]
struct CartState {
    lines: BTreeMap<i64, i64>,
    version: i64,
    /// Lock token and until when it holds (ms).
    lock: Option<(String, i64)>,
}

impl CartState {
    fn from_item(item: Option<&HashMap<String, AttributeValue>>) -> StoreResult<Self> {
        let Some(item) = item else {
            return Ok(CartState::default());
        };
        let mut state = CartState {
            version: get_n(item, "cart_version").unwrap_or(0),
            ..CartState::default()
        };
        for (name, value) in item {
            if let Some(id) = name.strip_prefix('p').and_then(|d| d.parse::<i64>().ok()) {
                let AttributeValue::N(q) = value else {
                    return Err(corrupt(format!("cart line {name} is not a number")));
                };
                let qty: i64 = q
                    .parse()
                    .map_err(|_| corrupt(format!("cart line {name} = {q}")))?;
                if qty > 0 {
                    state.lines.insert(id, qty);
                }
            }
        }
        if let (Ok(token), Ok(until)) = (get_s(item, "lock_token"), get_n(item, "lock_until")) {
            state.lock = Some((token.to_owned(), until));
        }
        Ok(state)
    }
}

/// The DynamoDB tables and the client, shared by the stores below.
pub struct Dynamo {
    client: Client,
    tables: DynamoTables,
    gate: Arc<DbGate>,
    /// Outcomes of the writes, for readiness.
    writes: WriteHealth,
}

fn is_conditional<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(
    err: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

impl Dynamo {
    pub fn new(client: Client, tables: DynamoTables, gate: Arc<DbGate>) -> Self {
        Dynamo {
            client,
            tables,
            gate,
            writes: WriteHealth::default(),
        }
    }

    pub fn tables(&self) -> &DynamoTables {
        &self.tables
    }

    /// Passes the gate (injected latency and concurrency limit) for one call.
    async fn pass(&self) -> Held {
        let (held, waited) = self.gate.enter().await;
        self.gate.record_wait(waited);
        held
    }

    fn cart_key(user_id: i64) -> [(String, AttributeValue); 2] {
        [
            ("pk".to_owned(), s(format!("user#{user_id}"))),
            ("sk".to_owned(), s("cart")),
        ]
    }

    async fn create_session(&self, token: &str, user_id: i64) -> StoreResult<()> {
        let _p = self.pass().await;
        self.client
            .put_item()
            .table_name(&self.tables.sessions)
            .item("pk", s(token))
            .item("user_id", n(user_id))
            .item("created_at_ms", n(now_ms()))
            .item("expires_at", n(epoch_secs_after(SESSION_TTL)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "PutItem session", e))?;
        Ok(())
    }

    async fn session_user(&self, token: &str) -> StoreResult<Option<i64>> {
        let _p = self.pass().await;
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.sessions)
            .key("pk", s(token))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "GetItem session", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        // TTL deletion is lazy: an expired session may still be there.
        if get_n(item, "expires_at")? <= now_ms() / 1000 {
            return Ok(None);
        }
        Ok(Some(get_n(item, "user_id")?))
    }

    async fn read_cart(&self, user_id: i64) -> StoreResult<CartState> {
        let _p = self.pass().await;
        let mut get = self
            .client
            .get_item()
            .table_name(&self.tables.carts)
            .consistent_read(true);
        for (k, v) in Self::cart_key(user_id) {
            get = get.key(k, v);
        }
        let out = get
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "GetItem cart", e))?;
        CartState::from_item(out.item())
    }

    async fn add_line(&self, user_id: i64, product_id: i64, qty: i64) -> StoreResult<()> {
        let _p = self.pass().await;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.carts)
            .update_expression("ADD #p :q, #v :one")
            .expression_attribute_names("#p", format!("p{product_id}"))
            .expression_attribute_names("#v", "cart_version")
            .expression_attribute_values(":q", n(qty))
            .expression_attribute_values(":one", n(1));
        for (k, v) in Self::cart_key(user_id) {
            update = update.key(k, v);
        }
        update
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "UpdateItem cart add", e))?;
        Ok(())
    }

    /// Locks the cart as read (same version, no live lock). `false`: it changed meanwhile.
    async fn lock_cart(&self, user_id: i64, version: i64, token: &str) -> StoreResult<bool> {
        let _p = self.pass().await;
        let now = now_ms();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.carts)
            .update_expression("SET #t = :t, #u = :until")
            .condition_expression(
                "(#v = :v OR (attribute_not_exists(#v) AND :v = :zero)) \
                 AND (attribute_not_exists(#t) OR #u < :now)",
            )
            .expression_attribute_names("#t", "lock_token")
            .expression_attribute_names("#u", "lock_until")
            .expression_attribute_names("#v", "cart_version")
            .expression_attribute_values(":t", s(token))
            .expression_attribute_values(":until", n(now + CART_LOCK.as_millis() as i64))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":v", n(version))
            .expression_attribute_values(":zero", n(0));
        for (k, v) in Self::cart_key(user_id) {
            update = update.key(k, v);
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional(&e) => Ok(false),
            Err(e) => Err(store_error(BACKEND, "UpdateItem cart lock", e)),
        }
    }

    /// After an order: removes what was sold (exactly those quantities) and the lock.
    async fn finish_checkout(
        &self,
        user_id: i64,
        sold: &BTreeMap<i64, i64>,
        token: &str,
    ) -> StoreResult<()> {
        let _p = self.pass().await;
        // The usual case: the lines are as sold; remove them.
        let names: Vec<(String, String)> = sold
            .keys()
            .enumerate()
            .map(|(i, id)| (format!("#p{i}"), format!("p{id}")))
            .collect();
        let mut remove: Vec<&str> = names.iter().map(|(alias, _)| alias.as_str()).collect();
        remove.extend(["#t", "#u"]);
        let mut condition = vec!["#t = :t".to_owned()];
        condition.extend((0..sold.len()).map(|i| format!("#p{i} = :q{i}")));
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.carts)
            .update_expression(format!("REMOVE {} ADD #v :one", remove.join(", ")))
            .condition_expression(condition.join(" AND "))
            .expression_attribute_names("#t", "lock_token")
            .expression_attribute_names("#u", "lock_until")
            .expression_attribute_names("#v", "cart_version")
            .expression_attribute_values(":t", s(token))
            .expression_attribute_values(":one", n(1));
        for ((alias, name), (i, qty)) in names.iter().zip(sold.values().enumerate()) {
            update = update
                .expression_attribute_names(alias, name)
                .expression_attribute_values(format!(":q{i}"), n(*qty));
        }
        for (k, v) in Self::cart_key(user_id) {
            update = update.key(k, v);
        }
        match update.send().await {
            Ok(_) => return Ok(()),
            Err(e) if is_conditional(&e) => {}
            Err(e) => return Err(store_error(BACKEND, "UpdateItem cart checkout", e)),
        }
        // Items were added meanwhile: subtract what was sold, keep the rest.
        let adds: Vec<String> = (0..sold.len()).map(|i| format!("#p{i} :m{i}")).collect();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.carts)
            .update_expression(format!("REMOVE #t, #u ADD {}, #v :one", adds.join(", ")))
            .condition_expression("#t = :t")
            .expression_attribute_names("#t", "lock_token")
            .expression_attribute_names("#u", "lock_until")
            .expression_attribute_names("#v", "cart_version")
            .expression_attribute_values(":t", s(token))
            .expression_attribute_values(":one", n(1));
        for ((alias, name), (i, qty)) in names.iter().zip(sold.values().enumerate()) {
            update = update
                .expression_attribute_names(alias, name)
                .expression_attribute_values(format!(":m{i}"), n(-qty));
        }
        for (k, v) in Self::cart_key(user_id) {
            update = update.key(k, v);
        }
        update
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "UpdateItem cart checkout", e))?;
        Ok(())
    }

    /// Releases the lock, changing nothing else (the order was not placed).
    async fn unlock_cart(&self, user_id: i64, token: &str) -> StoreResult<()> {
        let _p = self.pass().await;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.carts)
            .update_expression("REMOVE #t, #u")
            .condition_expression("#t = :t")
            .expression_attribute_names("#t", "lock_token")
            .expression_attribute_names("#u", "lock_until")
            .expression_attribute_values(":t", s(token));
        for (k, v) in Self::cart_key(user_id) {
            update = update.key(k, v);
        }
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(store_error(BACKEND, "UpdateItem cart unlock", e)),
        }
    }

    /// Creates the status record of a new notification; `false` if the id is taken.
    pub(crate) async fn create_status(&self, id: i64) -> StoreResult<bool> {
        let _p = self.pass().await;
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.notifications)
            .item("pk", s(format!("n#{id}")))
            .item("sk", s("status"))
            .item("state", s("queued"))
            .item(ATTEMPTS, n(0))
            .item("created_at_ms", n(now_ms()))
            .item("expires_at", n(epoch_secs_after(STATUS_TTL)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if is_conditional(&e) => Ok(false),
            Err(e) => Err(store_error(BACKEND, "PutItem notification", e)),
        }
    }

    pub(crate) async fn delete_status(&self, id: i64) -> StoreResult<()> {
        let _p = self.pass().await;
        self.client
            .delete_item()
            .table_name(&self.tables.notifications)
            .key("pk", s(format!("n#{id}")))
            .key("sk", s("status"))
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "DeleteItem notification", e))?;
        Ok(())
    }

    /// Records the state after an attempt. A `queued` update never overwrites a final state
    /// (a late retry after a delivery by another worker).
    pub(crate) async fn set_status(
        &self,
        id: i64,
        state: MessageState,
        attempts: u32,
    ) -> StoreResult<()> {
        let _p = self.pass().await;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.tables.notifications)
            .key("pk", s(format!("n#{id}")))
            .key("sk", s("status"))
            .update_expression("SET #s = :s, #a = :a")
            .expression_attribute_names("#s", "state")
            .expression_attribute_names("#a", ATTEMPTS)
            .expression_attribute_values(":s", s(state_name(state)))
            .expression_attribute_values(":a", n(i64::from(attempts)));
        if state == MessageState::Queued {
            update = update
                .condition_expression("#s = :queued")
                .expression_attribute_values(":queued", s("queued"));
        } else {
            update = update.condition_expression("attribute_exists(pk)");
        }
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conditional(&e) => Ok(()),
            Err(e) => Err(store_error(BACKEND, "UpdateItem notification", e)),
        }
    }

    pub(crate) async fn status(&self, id: i64) -> StoreResult<Option<MessageStatus>> {
        let _p = self.pass().await;
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.notifications)
            .key("pk", s(format!("n#{id}")))
            .key("sk", s("status"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(BACKEND, "GetItem notification", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let status = match get_s(item, "state")? {
            "queued" => MessageState::Queued,
            "sent" => MessageState::Sent,
            "failed" => MessageState::Failed,
            other => return Err(corrupt(format!("notification state {other}"))),
        };
        let attempts = u32::try_from(get_n(item, ATTEMPTS)?).unwrap_or(u32::MAX);
        Ok(Some(MessageStatus { status, attempts }))
    }

    async fn query_timestamps(
        &self,
        shard: u32,
        limit: Option<u32>,
        request_id: Option<&str>,
    ) -> StoreResult<Vec<TimestampRecord>> {
        let mut records = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let _p = self.pass().await;
            let mut query = self
                .client
                .query()
                .table_name(&self.tables.timestamps)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("ts#{shard}")))
                .scan_index_forward(false)
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if let Some(limit) = limit {
                query = query.limit(limit as i32);
            }
            if let Some(rid) = request_id {
                query = query
                    .filter_expression("request_id = :rid")
                    .expression_attribute_values(":rid", s(rid));
            }
            let out = query
                .send()
                .await
                .map_err(|e| store_error(BACKEND, "Query timestamps", e))?;
            for item in out.items() {
                records.push(TimestampRecord {
                    id: get_n(item, "id")?,
                    request_id: get_s(item, "request_id")?.to_owned(),
                    client_addr: get_s(item, "client_addr")?.to_owned(),
                    timestamp_ms: get_n(item, "timestamp_ms")?,
                });
            }
            match out.last_evaluated_key() {
                Some(key) if limit.is_none() && !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(records),
            }
        }
    }
}

fn state_name(state: MessageState) -> &'static str {
    match state {
        MessageState::Queued => "queued",
        MessageState::Sent => "sent",
        MessageState::Failed => "failed",
    }
}

#[async_trait]
impl TimestampStore for Dynamo {
    async fn insert(
        &self,
        request_id: &str,
        client_addr: &str,
        timestamp_ms: i64,
    ) -> StoreResult<TimestampRecord> {
        let id = new_id();
        let _p = self.pass().await;
        let put = self
            .client
            .put_item()
            .table_name(&self.tables.timestamps)
            .item("pk", s(format!("ts#{}", shard_of(request_id))))
            .item("sk", s(format!("{timestamp_ms:015}#{id:016}")))
            .item("id", n(id))
            .item("request_id", s(request_id))
            .item("client_addr", s(client_addr))
            .item("timestamp_ms", n(timestamp_ms))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error(BACKEND, "PutItem timestamp", e));
        self.writes.record(WriteOp::Timestamp, &put);
        put?;
        Ok(TimestampRecord {
            id,
            request_id: request_id.to_owned(),
            client_addr: client_addr.to_owned(),
            timestamp_ms,
        })
    }

    /// The newest `limit` of each shard, merged (one query per shard, concurrently).
    async fn recent(&self, limit: u32) -> StoreResult<Vec<TimestampRecord>> {
        let queries =
            (0..TIMESTAMP_SHARDS).map(|shard| self.query_timestamps(shard, Some(limit), None));
        let mut all: Vec<TimestampRecord> = futures_util::future::try_join_all(queries)
            .await?
            .into_iter()
            .flatten()
            .collect();
        all.sort_by_key(|r| std::cmp::Reverse((r.timestamp_ms, r.id)));
        all.truncate(limit as usize);
        Ok(all)
    }

    /// A filtered query of the request id's shard: it reads the whole shard, so it is for
    /// checks and diagnosis, not for a hot path.
    async fn by_request_id(&self, request_id: &str) -> StoreResult<Option<TimestampRecord>> {
        let found = self
            .query_timestamps(shard_of(request_id), None, Some(request_id))
            .await?;
        Ok(found.into_iter().next())
    }
}

#[async_trait]
impl BackendHealth for Dynamo {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> StoreResult<()> {
        for table in self.tables.all() {
            self.client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| store_error(BACKEND, "DescribeTable", e))?;
        }
        Ok(())
    }

    /// Not while a kind of write (sessions, carts, checkouts, timestamps) keeps failing.
    async fn writes_ok(&self) -> Result<(), String> {
        self.writes.trouble().map_or(Ok(()), Err)
    }

    fn pools(&self) -> Vec<PoolSnapshot> {
        Vec::new()
    }
}

/// The shop with sessions and carts in DynamoDB; users, catalogue, stock and orders in SQL.
pub struct DynamoShop {
    dynamo: Arc<Dynamo>,
    sql: Arc<SqlStore>,
}

impl DynamoShop {
    pub fn new(dynamo: Arc<Dynamo>, sql: Arc<SqlStore>) -> Self {
        DynamoShop { dynamo, sql }
    }
}

#[async_trait]
impl ShopStore for DynamoShop {
    async fn user_credentials(&self, email: &str) -> StoreResult<Option<UserCredentials>> {
        self.sql.user_credentials(email).await
    }

    async fn create_session(&self, token: &str, user_id: i64) -> StoreResult<()> {
        let created = self.dynamo.create_session(token, user_id).await;
        self.dynamo.writes.record(WriteOp::Session, &created);
        created
    }

    async fn session_user(&self, token: &str) -> StoreResult<Option<i64>> {
        self.dynamo.session_user(token).await
    }

    async fn list_products(
        &self,
        page: u32,
        per_page: u32,
        name_contains: Option<&str>,
    ) -> StoreResult<Vec<Product>> {
        self.sql.list_products(page, per_page, name_contains).await
    }

    async fn product(&self, id: i64) -> StoreResult<Option<Product>> {
        self.sql.product(id).await
    }

    async fn add_to_cart(&self, user_id: i64, product_id: i64, qty: i64) -> StoreResult<AddToCart> {
        if self.sql.product(product_id).await?.is_none() {
            return Ok(AddToCart::UnknownProduct);
        }
        let added = self.dynamo.add_line(user_id, product_id, qty).await;
        self.dynamo.writes.record(WriteOp::AddToCart, &added);
        added.map(|()| AddToCart::Added)
    }

    async fn cart(&self, user_id: i64) -> StoreResult<Vec<CartLine>> {
        let state = self.dynamo.read_cart(user_id).await?;
        let mut lines = Vec::with_capacity(state.lines.len());
        for (product_id, qty) in state.lines {
            if let Some(p) = self.sql.product(product_id).await? {
                lines.push(CartLine {
                    product_id,
                    name: p.name,
                    qty,
                    price_cents: p.price_cents,
                });
            }
        }
        Ok(lines)
    }

    /// Locks the cart as read, places the order in SQL (conditional stock decrements), then
    /// removes the sold quantities and the lock. A second checkout of the same cart waits for
    /// the lock, then finds the cart emptied. If the process dies between the SQL commit and
    /// the cart update, the lock lapses after 30 s with the lines still in the cart (the
    /// order stands; stock is never oversold).
    ///
    /// From the lock on, the checkout runs on a task of its own: a caller that gives up (its
    /// client disconnected) would otherwise leave the cart locked for 30 s, or an order placed
    /// with its lines still in the cart, to be sold a second time once the lock lapses.
    async fn checkout(&self, user_id: i64) -> StoreResult<CheckoutOutcome> {
        let deadline = tokio::time::Instant::now() + CART_LOCK_WAIT;
        loop {
            let state = self.dynamo.read_cart(user_id).await?;
            if state.lines.is_empty() {
                return Ok(CheckoutOutcome::EmptyCart);
            }
            let locked = state
                .lock
                .as_ref()
                .is_some_and(|(_, until)| *until >= now_ms());
            if !locked {
                let (dynamo, sql) = (self.dynamo.clone(), self.sql.clone());
                let attempt = tokio::spawn(async move {
                    let placed = lock_and_place(&dynamo, &sql, user_id, state).await;
                    match &placed {
                        Ok(Some(_)) => dynamo.writes.succeeded(WriteOp::Checkout),
                        Err(e) => dynamo.writes.failed(WriteOp::Checkout, e),
                        // The cart changed before the lock: not an outcome yet.
                        Ok(None) => {}
                    }
                    placed
                });
                let placed = attempt
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Lost(e.to_string())));
                if let Some(result) = placed.transpose() {
                    return result;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let e = StoreError::Backend {
                    backend: BACKEND,
                    message: "cart stayed locked by another checkout".into(),
                    unavailable: true,
                };
                self.dynamo.writes.failed(WriteOp::Checkout, &e);
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(fastrand::u64(5..25))).await;
        }
    }

    async fn order(&self, user_id: i64, order_id: i64) -> StoreResult<Option<Order>> {
        self.sql.order(user_id, order_id).await
    }

    async fn units_sold(&self, product_id: i64) -> StoreResult<i64> {
        self.sql.units_sold(product_id).await
    }

    async fn seed(&self, users: &[SeedUser], products: &[SeedProduct]) -> StoreResult<()> {
        self.sql.seed(users, products).await
    }
}

/// Locks the cart `state` was read from (`None`: it changed meanwhile, read it again),
/// places its order in SQL, then removes the sold lines and the lock (or only the lock, when
/// no order was placed).
async fn lock_and_place(
    dynamo: &Dynamo,
    sql: &SqlStore,
    user_id: i64,
    state: CartState,
) -> StoreResult<Option<CheckoutOutcome>> {
    let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    if !dynamo.lock_cart(user_id, state.version, &token).await? {
        return Ok(None);
    }
    let lines = state.lines;
    let order_lines: Vec<(i64, i64)> = lines.iter().map(|(p, q)| (*p, *q)).collect();
    let outcome = match sql.place_order(user_id, &order_lines).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = dynamo.unlock_cart(user_id, &token).await;
            return Err(e);
        }
    };
    match &outcome {
        CheckoutOutcome::Placed(order) => {
            if let Err(e) = dynamo.finish_checkout(user_id, &lines, &token).await {
                tracing::error!(user_id, order_id = order.order_id, error = %e,
                    "order placed but the cart was not emptied");
            }
        }
        _ => dynamo.unlock_cart(user_id, &token).await?,
    }
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("abc"), shard_of("abc"));
        assert!((0..1000).all(|i| shard_of(&i.to_string()) < TIMESTAMP_SHARDS));
    }

    #[test]
    fn cart_items_parse_lines_version_and_lock() {
        let item: HashMap<String, AttributeValue> = [
            ("pk".to_owned(), s("user#1")),
            ("sk".to_owned(), s("cart")),
            ("p7".to_owned(), n(2)),
            ("p9".to_owned(), n(0)),
            ("cart_version".to_owned(), n(3)),
            ("lock_token".to_owned(), s("t")),
            ("lock_until".to_owned(), n(99)),
        ]
        .into();
        let state = CartState::from_item(Some(&item)).unwrap();
        assert_eq!(state.lines, BTreeMap::from([(7, 2)]));
        assert_eq!(state.version, 3);
        assert_eq!(state.lock, Some(("t".to_owned(), 99)));
    }
}
