//! The SQL backend: every store trait on one SQLite file or one MySQL/MariaDB database,
//! through sqlx's `Any` driver, with the few dialect differences spelt out where they occur.
//!
//! SQLite runs in WAL mode with a pool of readers and a single writer connection, so writes
//! queue fairly in-process instead of spinning on the file lock; write transactions start
//! with `BEGIN IMMEDIATE`. MySQL uses one pool, row locks, and `FOR UPDATE SKIP LOCKED` for
//! queue claims. Every operation first passes the [`DbGate`] (injected faults, wait metrics).
//!
//! **Cancellation.** axum drops a request's future when its client disconnects, and a sqlx
//! future dropped part-way can leave its connection mid-protocol or inside a transaction
//! that nobody will end (then the pool hands it to the next caller). So an operation is in
//! two parts: waiting for the gate and a pooled connection, which the caller may abandon
//! (nothing has started; an abandoned wait is no work for the database), then everything
//! done with the connection, which runs on a task of its own to its end
//! ([`SqlStore::finish`]): a transaction is always committed or rolled back, and awaited.
//! As a last guard, a connection handed back inside a transaction is closed, not pooled.
//!
//! **Readiness.** Every write's outcome is recorded by kind in [`WriteHealth`]; `/readyz`
//! fails while a kind of write keeps failing, and when no write succeeded lately it makes a
//! test write of its own ([`SqlStore::writes_ok`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Row, Transaction};
use tokio::sync::watch;

use super::gate::{DbGate, Held};
use super::health::{WriteHealth, WriteOp};
use super::schema::Dialect;
use super::*;

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// Reader connections (SQLite) or all connections (MySQL).
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl SqlOptions {
    pub fn for_dialect(dialect: Dialect) -> Self {
        SqlOptions {
            max_connections: match dialect {
                Dialect::Sqlite => 4,
                Dialect::MySql => 16,
            },
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Attempts of a write that hit a deadlock, a lock wait time-out or a busy file.
const WRITE_ATTEMPTS: u32 = 4;
/// How long `/readyz` waits for a pooled connection to ping.
const PING_WAIT: Duration = Duration::from_secs(2);
/// A write that succeeded this recently makes a test write unnecessary.
const WRITES_SEEN_FRESH: Duration = Duration::from_secs(1);
/// How long `/readyz` waits for its test write (under the usual 2 s probe time-out).
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// Clone is cheap (pools and counters are shared).
#[derive(Clone)]
pub struct SqlStore {
    dialect: Dialect,
    read: AnyPool,
    /// The same pool as `read` on MySQL; a one-connection pool on SQLite.
    write: AnyPool,
    read_max: u32,
    write_max: u32,
    gate: Arc<DbGate>,
    writes: Arc<WriteHealth>,
    probe: Arc<WriteProbe>,
}

/// The test write of `/readyz`, one at a time: callers that come while it runs wait for it.
struct WriteProbe {
    running_since: Mutex<Option<Instant>>,
    finished: watch::Sender<Option<Result<(), String>>>,
}

impl Default for WriteProbe {
    fn default() -> Self {
        WriteProbe {
            running_since: Mutex::new(None),
            finished: watch::channel(None).0,
        }
    }
}

/// A pooled connection that also holds the gate's permit (none for `/readyz`'s own use).
struct GatedConn {
    conn: PoolConnection<Any>,
    _held: Option<Held>,
}

impl std::ops::Deref for GatedConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for GatedConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

/// Before a connection goes back to the pool: one still inside a transaction (its owner
/// failed to end it) is closed instead, so nobody else runs statements in it.
fn pool_options(max: u32, options: &SqlOptions) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(options.acquire_timeout)
        .after_release(|conn, _meta| {
            let clean = !conn.is_in_transaction();
            if !clean {
                tracing::warn!("a connection came back inside a transaction: closed, not pooled");
            }
            Box::pin(async move { Ok(clean) })
        })
}

const SEED_BATCH: usize = 200;

impl SqlStore {
    fn new(
        dialect: Dialect,
        read: AnyPool,
        write: AnyPool,
        read_max: u32,
        write_max: u32,
        gate: Arc<DbGate>,
    ) -> Self {
        SqlStore {
            dialect,
            read,
            write,
            read_max,
            write_max,
            gate,
            writes: Arc::new(WriteHealth::default()),
            probe: Arc::new(WriteProbe::default()),
        }
    }

    /// Opens (creating if needed) `stack.db` in `data_dir`, migrates it.
    pub async fn open_sqlite(
        data_dir: &Path,
        options: SqlOptions,
        gate: Arc<DbGate>,
    ) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let path = data_dir.join("stack.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let connect: AnyConnectOptions = url.parse()?;
        let pool = |max: u32| {
            pool_options(max, &options).after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            })
        };
        // The writer first, so the WAL switch happens before readers open the file.
        let write = pool(1).connect_with(connect.clone()).await?;
        let read = pool(options.max_connections).connect_with(connect).await?;
        let store = SqlStore::new(
            Dialect::Sqlite,
            read,
            write,
            options.max_connections,
            1,
            gate,
        );
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to a MySQL/MariaDB database (which must exist) and migrates it.
    pub async fn open_mysql(
        url: &str,
        options: SqlOptions,
        gate: Arc<DbGate>,
    ) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let connect: AnyConnectOptions = url.parse()?;
        let pool = pool_options(options.max_connections, &options)
            // No gap locks: queue inserts and claims then cannot deadlock each other.
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        let store = SqlStore::new(
            Dialect::MySql,
            pool.clone(),
            pool,
            options.max_connections,
            options.max_connections,
            gate,
        );
        store.migrate().await?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The outcomes of this store's writes, by kind.
    pub fn write_health(&self) -> &WriteHealth {
        &self.writes
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.write.acquire().await?;
        for statement in self.dialect.migrations() {
            conn.execute(*statement).await?;
        }
        Ok(())
    }

    /// Passes the gate, then takes a connection from the read or write pool. Cancel-safe: a
    /// caller that gives up here leaves nothing behind.
    async fn conn(&self, write: bool) -> StoreResult<GatedConn> {
        let (held, gate_wait) = self.gate.enter().await;
        let started = Instant::now();
        let pool = if write { &self.write } else { &self.read };
        let conn = pool.acquire().await?;
        self.gate.record_wait(gate_wait + started.elapsed());
        Ok(GatedConn {
            conn,
            _held: Some(held),
        })
    }

    /// Runs `op` (which owns its connection) on a task of its own and waits for its answer.
    /// A caller that gives up — a handler dropped because its client disconnected — leaves
    /// the task running to its end, so no statement, transaction or connection is left
    /// half-done. `record`: the kind of write, and whether this is its last attempt (an
    /// error that will be retried is not an outcome yet).
    async fn finish<T, Fut>(&self, record: Option<(WriteOp, bool)>, op: Fut) -> StoreResult<T>
    where
        T: Send + 'static,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
    {
        let writes = self.writes.clone();
        let task = tokio::spawn(async move {
            let result = op.await;
            if let Some((kind, last)) = record {
                match &result {
                    Err(e) if !last && is_retryable(e) => {}
                    _ => writes.record(kind, &result),
                }
            }
            result
        });
        task.await
            .unwrap_or_else(|e| Err(StoreError::Lost(e.to_string())))
    }

    /// A read: the gate and a connection, then `op` to its end (see [`SqlStore::finish`]).
    async fn read<T, F, Fut>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(SqlStore, GatedConn) -> Fut,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
    {
        let conn = self.conn(false).await?;
        self.finish(None, op(self.clone(), conn)).await
    }

    /// A write of `kind`: like [`SqlStore::read`] on the write pool, tried again (up to
    /// [`WRITE_ATTEMPTS`] in all, each waiting for the gate and a connection anew) while it
    /// fails with a deadlock, a lock wait time-out or a busy file; its outcome is recorded
    /// for readiness. `op` gets a clone of `args` for each attempt.
    async fn write<A, T, F, Fut>(&self, kind: WriteOp, args: A, op: F) -> StoreResult<T>
    where
        A: Clone,
        T: Send + 'static,
        F: Fn(SqlStore, GatedConn, A) -> Fut,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = match self.conn(true).await {
                Ok(conn) => conn,
                Err(e) => {
                    self.writes.failed(kind, &e);
                    return Err(e);
                }
            };
            let last = attempt >= WRITE_ATTEMPTS;
            let attempted = op(self.clone(), conn, args.clone());
            match self.finish(Some((kind, last)), attempted).await {
                Err(e) if !last && is_retryable(&e) => {
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..20))).await;
                }
                other => return other,
            }
        }
    }

    /// Begins a write transaction that holds the write lock from its first statement.
    async fn begin_write<'c>(
        &self,
        conn: &'c mut AnyConnection,
    ) -> StoreResult<Transaction<'c, Any>> {
        Ok(match self.dialect {
            Dialect::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::MySql => conn.begin().await?,
        })
    }

    /// Runs an INSERT and returns the new row's id (`RETURNING` on SQLite, where the `Any`
    /// driver does not pass the last insert id through).
    async fn insert_id<'q>(
        &self,
        conn: &mut AnyConnection,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> StoreResult<i64> {
        match self.dialect {
            Dialect::Sqlite => Ok(query.fetch_one(&mut *conn).await?.try_get(0)?),
            Dialect::MySql => query
                .execute(&mut *conn)
                .await?
                .last_insert_id()
                .ok_or_else(|| StoreError::Corrupt("no insert id".into())),
        }
    }

    fn returning_id(&self, sql: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("{sql} RETURNING id"),
            Dialect::MySql => sql.to_owned(),
        }
    }

    /// Inside `tx`: the cart, then its order (see [`SqlStore::place_in`]) and the emptied
    /// cart.
    async fn checkout_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        user_id: i64,
    ) -> StoreResult<CheckoutOutcome> {
        if self.dialect == Dialect::MySql {
            // One checkout per user at a time, so the same cart is never sold twice.
            sqlx::query("SELECT id FROM users WHERE id = ? FOR UPDATE")
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?;
        }
        let rows = sqlx::query(
            "SELECT c.product_id, c.qty, p.price_cents FROM cart_items c \
             JOIN products p ON p.id = c.product_id WHERE c.user_id = ? ORDER BY c.product_id",
        )
        .bind(user_id)
        .fetch_all(&mut **tx)
        .await?;
        if rows.is_empty() {
            return Ok(CheckoutOutcome::EmptyCart);
        }
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(OrderLine {
                product_id: row.try_get(0)?,
                qty: row.try_get(1)?,
                price_cents: row.try_get(2)?,
            });
        }
        let order = match self.place_in(tx, user_id, items).await? {
            CheckoutOutcome::Placed(order) => order,
            other => return Ok(other),
        };
        // Exactly what was sold leaves the cart. On MySQL the cart was read without locking
        // it, so a line added since (another tab, or an add whose client gave up and which
        // is still running) must stay: emptying the cart would lose it unsold.
        for line in &order.items {
            sqlx::query("UPDATE cart_items SET qty = qty - ? WHERE user_id = ? AND product_id = ?")
                .bind(line.qty)
                .bind(user_id)
                .bind(line.product_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM cart_items WHERE user_id = ? AND product_id = ? AND qty <= 0")
                .bind(user_id)
                .bind(line.product_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(CheckoutOutcome::Placed(order))
    }

    /// Inside `tx`: conditional stock decrements for `items` (sorted by product id), then the
    /// order. Anything but `Placed` is for the caller to roll back.
    async fn place_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        user_id: i64,
        mut items: Vec<OrderLine>,
    ) -> StoreResult<CheckoutOutcome> {
        if items.is_empty() {
            return Ok(CheckoutOutcome::EmptyCart);
        }
        items.sort_by_key(|l| l.product_id);
        let total_cents = items.iter().map(|l| l.qty * l.price_cents).sum();
        // Conditional decrements in product-id order (a consistent lock order on MySQL).
        for line in &items {
            let done =
                sqlx::query("UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ?")
                    .bind(line.qty)
                    .bind(line.product_id)
                    .bind(line.qty)
                    .execute(&mut **tx)
                    .await?;
            if done.rows_affected() != 1 {
                return Ok(CheckoutOutcome::OutOfStock {
                    product_id: line.product_id,
                });
            }
        }
        let created_at_ms = now_ms();
        let sql = self.returning_id(
            "INSERT INTO orders (user_id, total_cents, created_at_ms) VALUES (?, ?, ?)",
        );
        let order_id = self
            .insert_id(
                tx,
                sqlx::query(&sql)
                    .bind(user_id)
                    .bind(total_cents)
                    .bind(created_at_ms),
            )
            .await?;
        for line in &items {
            sqlx::query("INSERT INTO order_items (order_id, product_id, qty, price_cents) VALUES (?, ?, ?, ?)")
                .bind(order_id)
                .bind(line.product_id)
                .bind(line.qty)
                .bind(line.price_cents)
                .execute(&mut **tx)
                .await?;
        }
        Ok(CheckoutOutcome::Placed(Order {
            order_id,
            user_id,
            total_cents,
            created_at_ms,
            items,
        }))
    }

    /// Inside `tx`: the prices of `lines`, then the order.
    async fn place_order_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        user_id: i64,
        lines: &[(i64, i64)],
    ) -> StoreResult<CheckoutOutcome> {
        let sql = format!(
            "SELECT id, price_cents FROM products WHERE id IN ({})",
            placeholders(lines.len())
        );
        let mut query = sqlx::query(&sql);
        for (product_id, _) in lines {
            query = query.bind(*product_id);
        }
        let prices: BTreeMap<i64, i64> = query
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<StoreResult<_>>()?;
        let mut items = Vec::with_capacity(lines.len());
        for &(product_id, qty) in lines {
            let Some(&price_cents) = prices.get(&product_id) else {
                return Ok(CheckoutOutcome::OutOfStock { product_id });
            };
            items.push(OrderLine {
                product_id,
                qty,
                price_cents,
            });
        }
        self.place_in(tx, user_id, items).await
    }

    /// Places an order for `lines` (product id, quantity; each product once) held elsewhere
    /// than in this database's cart table — e.g. a DynamoDB cart: the same conditional stock
    /// decrements and order rows as [`ShopStore::checkout`], in one transaction, leaving
    /// `cart_items` alone. `OutOfStock` changes nothing; an unknown product counts as out of
    /// stock.
    pub async fn place_order(
        &self,
        user_id: i64,
        lines: &[(i64, i64)],
    ) -> StoreResult<CheckoutOutcome> {
        if lines.is_empty() {
            return Ok(CheckoutOutcome::EmptyCart);
        }
        let lines: Arc<[(i64, i64)]> = lines.into();
        self.write(
            WriteOp::PlaceOrder,
            lines,
            move |s, mut c, lines| async move {
                let mut tx = s.begin_write(&mut c).await?;
                let placed = s.place_order_in(&mut tx, user_id, &lines).await;
                end_tx(tx, placed, |o| matches!(o, CheckoutOutcome::Placed(_))).await
            },
        )
        .await
    }

    /// `/readyz`'s test write: one row updated in a write transaction, as every write
    /// begins (on SQLite, through the single writer connection and `BEGIN IMMEDIATE`). It
    /// bypasses the injected-fault gate, as the ping does.
    async fn probe_write(&self) -> StoreResult<()> {
        let conn = GatedConn {
            conn: self.write.acquire().await?,
            _held: None,
        };
        let op = {
            let s = self.clone();
            async move {
                let mut c = conn;
                let mut tx = s.begin_write(&mut c).await?;
                let done = sqlx::query("UPDATE health_probe SET probed_at_ms = ? WHERE id = 1")
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await
                    .map(|_| ())
                    .map_err(StoreError::from);
                end_tx(tx, done, |_| true).await
            }
        };
        self.finish(Some((WriteOp::Probe, true)), op).await
    }

    /// The outcome of a test write that finishes within [`PROBE_WAIT`] of this call: one
    /// already running, or a new one. A test write that is slower (a lock held elsewhere, a
    /// hung writer) keeps running and the answer is that writes do not finish.
    async fn probe(&self) -> Result<(), String> {
        let mut finished = self.probe.finished.subscribe();
        let since = {
            let mut running = self
                .probe
                .running_since
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match *running {
                Some(since) => since,
                None => {
                    let now = Instant::now();
                    *running = Some(now);
                    let s = self.clone();
                    tokio::spawn(async move {
                        let outcome = s.probe_write().await.map_err(|e| e.to_string());
                        *s.probe
                            .running_since
                            .lock()
                            .unwrap_or_else(|e| e.into_inner()) = None;
                        s.probe.finished.send_replace(Some(outcome));
                    });
                    now
                }
            }
        };
        match tokio::time::timeout(PROBE_WAIT, finished.changed()).await {
            Ok(Ok(())) => finished.borrow_and_update().clone().unwrap_or(Ok(())),
            _ => Err(format!(
                "a test write has not finished after {:.1} s",
                since.elapsed().as_secs_f64()
            )),
        }
    }
}

/// Ends `tx` before its connection goes back to the pool: commits when `result` is `Ok` and
/// `commit` says so, otherwise rolls back and waits for the rollback (a transaction only
/// dropped is rolled back later, on the connection's next use, by whoever has it then).
async fn end_tx<T>(
    tx: Transaction<'_, Any>,
    result: StoreResult<T>,
    commit: impl FnOnce(&T) -> bool,
) -> StoreResult<T> {
    match result {
        Ok(value) if commit(&value) => {
            tx.commit().await?;
            Ok(value)
        }
        Ok(value) => {
            tx.rollback().await?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback after a failed statement failed");
            }
            Err(e)
        }
    }
}

/// Deadlocks, lock wait timeouts and busy files: worth one more try.
fn is_retryable(err: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(db)) = err else {
        return false;
    };
    match db.code().as_deref() {
        Some("40001") | Some("5") | Some("261") | Some("517") => true,
        _ => {
            db.message().contains("Lock wait timeout")
                || db.message().contains("database is locked")
        }
    }
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A text column; MySQL's `TEXT` types reach the `Any` driver as blobs.
fn text_column(row: &sqlx::any::AnyRow, index: usize) -> StoreResult<String> {
    match row.try_get::<String, _>(index) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes: Vec<u8> = row.try_get(index)?;
            String::from_utf8(bytes)
                .map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))
        }
    }
}

fn product_from(row: &sqlx::any::AnyRow) -> StoreResult<Product> {
    Ok(Product {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        price_cents: row.try_get(2)?,
        stock: row.try_get(3)?,
    })
}

fn timestamp_from(row: &sqlx::any::AnyRow) -> StoreResult<TimestampRecord> {
    Ok(TimestampRecord {
        id: row.try_get(0)?,
        request_id: row.try_get(1)?,
        client_addr: row.try_get(2)?,
        timestamp_ms: row.try_get(3)?,
    })
}

#[async_trait]
impl ShopStore for SqlStore {
    async fn user_credentials(&self, email: &str) -> StoreResult<Option<UserCredentials>> {
        let email = email.to_owned();
        self.read(|_, mut c| async move {
            let row = sqlx::query("SELECT id, salt, password_hash FROM users WHERE email = ?")
                .bind(email.as_str())
                .fetch_optional(&mut *c)
                .await?;
            row.map(|r| {
                Ok(UserCredentials {
                    id: r.try_get(0)?,
                    salt: r.try_get(1)?,
                    password_hash: r.try_get(2)?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn create_session(&self, token: &str, user_id: i64) -> StoreResult<()> {
        let token: Arc<str> = token.into();
        self.write(WriteOp::Session, token, move |_, mut c, token| async move {
            sqlx::query("INSERT INTO sessions (token, user_id, created_at_ms) VALUES (?, ?, ?)")
                .bind(&*token)
                .bind(user_id)
                .bind(now_ms())
                .execute(&mut *c)
                .await?;
            Ok(())
        })
        .await
    }

    async fn session_user(&self, token: &str) -> StoreResult<Option<i64>> {
        let token = token.to_owned();
        self.read(|_, mut c| async move {
            let row = sqlx::query("SELECT user_id FROM sessions WHERE token = ?")
                .bind(token.as_str())
                .fetch_optional(&mut *c)
                .await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
        .await
    }

    async fn list_products(
        &self,
        page: u32,
        per_page: u32,
        name_contains: Option<&str>,
    ) -> StoreResult<Vec<Product>> {
        let pattern = name_contains.map(like_pattern);
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        self.read(move |_, mut c| async move {
            let rows = match pattern {
                Some(pattern) => sqlx::query(
                    "SELECT id, name, price_cents, stock FROM products WHERE name LIKE ? ESCAPE '!' \
                         ORDER BY id LIMIT ? OFFSET ?",
                )
                .bind(pattern)
                .bind(i64::from(per_page))
                .bind(offset)
                .fetch_all(&mut *c)
                .await?,
                None => sqlx::query(
                    "SELECT id, name, price_cents, stock FROM products ORDER BY id LIMIT ? OFFSET ?",
                )
                .bind(i64::from(per_page))
                .bind(offset)
                .fetch_all(&mut *c)
                .await?,
            };
            rows.iter().map(product_from).collect()
        })
        .await
    }

    async fn product(&self, id: i64) -> StoreResult<Option<Product>> {
        self.read(move |_, mut c| async move {
            let row = sqlx::query("SELECT id, name, price_cents, stock FROM products WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *c)
                .await?;
            row.as_ref().map(product_from).transpose()
        })
        .await
    }

    async fn add_to_cart(&self, user_id: i64, product_id: i64, qty: i64) -> StoreResult<AddToCart> {
        self.write(WriteOp::AddToCart, (), move |s, mut c, ()| async move {
            let sql = match s.dialect {
                Dialect::Sqlite => {
                    "INSERT INTO cart_items (user_id, product_id, qty) SELECT ?, id, ? FROM products WHERE id = ? \
                     ON CONFLICT (user_id, product_id) DO UPDATE SET qty = qty + excluded.qty"
                }
                Dialect::MySql => {
                    "INSERT INTO cart_items (user_id, product_id, qty) SELECT ?, id, ? FROM products WHERE id = ? \
                     ON DUPLICATE KEY UPDATE qty = qty + VALUES(qty)"
                }
            };
            let done = sqlx::query(sql)
                .bind(user_id)
                .bind(qty)
                .bind(product_id)
                .execute(&mut *c)
                .await?;
            Ok(if done.rows_affected() == 0 {
                AddToCart::UnknownProduct
            } else {
                AddToCart::Added
            })
        })
        .await
    }

    async fn cart(&self, user_id: i64) -> StoreResult<Vec<CartLine>> {
        self.read(move |_, mut c| async move {
            let rows = sqlx::query(
                "SELECT c.product_id, p.name, c.qty, p.price_cents FROM cart_items c \
                 JOIN products p ON p.id = c.product_id WHERE c.user_id = ? ORDER BY c.product_id",
            )
            .bind(user_id)
            .fetch_all(&mut *c)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(CartLine {
                        product_id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        qty: r.try_get(2)?,
                        price_cents: r.try_get(3)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn checkout(&self, user_id: i64) -> StoreResult<CheckoutOutcome> {
        self.write(WriteOp::Checkout, (), move |s, mut c, ()| async move {
            let mut tx = s.begin_write(&mut c).await?;
            let outcome = s.checkout_in(&mut tx, user_id).await;
            end_tx(tx, outcome, |o| matches!(o, CheckoutOutcome::Placed(_))).await
        })
        .await
    }

    async fn order(&self, user_id: i64, order_id: i64) -> StoreResult<Option<Order>> {
        self.read(move |_, mut c| async move {
            let Some(row) = sqlx::query(
                "SELECT total_cents, created_at_ms FROM orders WHERE id = ? AND user_id = ?",
            )
            .bind(order_id)
            .bind(user_id)
            .fetch_optional(&mut *c)
            .await?
            else {
                return Ok(None);
            };
            let items = sqlx::query(
                "SELECT product_id, qty, price_cents FROM order_items WHERE order_id = ? ORDER BY product_id",
            )
            .bind(order_id)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| Ok(OrderLine { product_id: r.try_get(0)?, qty: r.try_get(1)?, price_cents: r.try_get(2)? }))
            .collect::<StoreResult<Vec<_>>>()?;
            Ok(Some(Order {
                order_id,
                user_id,
                total_cents: row.try_get(0)?,
                created_at_ms: row.try_get(1)?,
                items,
            }))
        })
        .await
    }

    async fn units_sold(&self, product_id: i64) -> StoreResult<i64> {
        self.read(move |_, mut c| async move {
            let rows = sqlx::query("SELECT qty FROM order_items WHERE product_id = ?")
                .bind(product_id)
                .fetch_all(&mut *c)
                .await?;
            rows.iter().map(|r| Ok(r.try_get::<i64, _>(0)?)).sum()
        })
        .await
    }

    async fn seed(&self, users: &[SeedUser], products: &[SeedProduct]) -> StoreResult<()> {
        let rows: Arc<(Vec<SeedUser>, Vec<SeedProduct>)> =
            Arc::new((users.to_vec(), products.to_vec()));
        self.write(WriteOp::Seed, rows, |s, mut c, rows| async move {
            let mut tx = s.begin_write(&mut c).await?;
            let seeded = s.seed_in(&mut tx, &rows.0, &rows.1).await;
            end_tx(tx, seeded, |_| true).await
        })
        .await
    }
}

impl SqlStore {
    async fn seed_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        users: &[SeedUser],
        products: &[SeedProduct],
    ) -> StoreResult<()> {
        let have_users: i64 = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        if have_users < users.len() as i64 {
            for chunk in users.chunks(SEED_BATCH) {
                let sql = format!(
                    "{} INTO users (email, salt, password_hash) VALUES {}",
                    self.dialect.insert_ignore(),
                    vec!["(?, ?, ?)"; chunk.len()].join(", ")
                );
                let mut q = sqlx::query(&sql);
                for u in chunk {
                    q = q
                        .bind(u.email.as_str())
                        .bind(u.salt.as_str())
                        .bind(u.password_hash.as_str());
                }
                q.execute(&mut **tx).await?;
            }
        }
        let have_products: i64 = sqlx::query("SELECT COUNT(*) FROM products")
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        if have_products < products.len() as i64 {
            for chunk in products.chunks(SEED_BATCH) {
                let sql = format!(
                    "{} INTO products (id, name, price_cents, stock) VALUES {}",
                    self.dialect.insert_ignore(),
                    vec!["(?, ?, ?, ?)"; chunk.len()].join(", ")
                );
                let mut q = sqlx::query(&sql);
                for p in chunk {
                    q = q
                        .bind(p.id)
                        .bind(p.name.as_str())
                        .bind(p.price_cents)
                        .bind(p.stock);
                }
                q.execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    /// Inside `tx` (MySQL): lock the ready messages no other claim holds, then lease them.
    async fn claim_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        queue: Queue,
        max: u32,
        now: i64,
        until: i64,
    ) -> StoreResult<Vec<sqlx::any::AnyRow>> {
        let rows = sqlx::query(
            "SELECT id, payload, attempts + 1 FROM queue_messages \
             WHERE queue = ? AND state = 0 AND visible_at_ms <= ? ORDER BY id LIMIT ? \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(queue.as_str())
        .bind(now)
        .bind(i64::from(max))
        .fetch_all(&mut **tx)
        .await?;
        if !rows.is_empty() {
            let sql = format!(
                "UPDATE queue_messages SET visible_at_ms = ?, attempts = attempts + 1 WHERE id IN ({})",
                placeholders(rows.len())
            );
            let mut q = sqlx::query(&sql).bind(until);
            for r in &rows {
                q = q.bind(r.try_get::<i64, _>(0)?);
            }
            q.execute(&mut **tx).await?;
        }
        Ok(rows)
    }

    /// Inside `tx`: marks the new items learnt and counts their words.
    async fn learn_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        items: &[(i64, Vec<String>)],
    ) -> StoreResult<u64> {
        let mark = format!(
            "{} INTO multivac_learnt (message_id) VALUES (?)",
            self.dialect.insert_ignore()
        );
        let upsert = match self.dialect {
            Dialect::Sqlite => {
                "INSERT INTO multivac_words (word, n) VALUES (?, ?) ON CONFLICT (word) DO UPDATE SET n = n + excluded.n"
            }
            Dialect::MySql => {
                "INSERT INTO multivac_words (word, n) VALUES (?, ?) ON DUPLICATE KEY UPDATE n = n + VALUES(n)"
            }
        };
        let mut fresh = 0u64;
        // Sorted, so concurrent learners lock words in the same order.
        let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
        for (id, words) in items {
            let done = sqlx::query(&mark).bind(*id).execute(&mut **tx).await?;
            if done.rows_affected() == 0 {
                continue;
            }
            fresh += 1;
            for w in words {
                *counts.entry(w.as_str()).or_default() += 1;
            }
        }
        for (word, n) in counts {
            sqlx::query(upsert)
                .bind(word)
                .bind(n)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("UPDATE multivac_stats SET items = items + ? WHERE id = 1")
            .bind(fresh as i64)
            .execute(&mut **tx)
            .await?;
        Ok(fresh)
    }
}

#[async_trait]
impl QueueStore for SqlStore {
    async fn enqueue(&self, queue: Queue, payload: &str) -> StoreResult<i64> {
        let payload: Arc<str> = payload.into();
        self.write(WriteOp::Enqueue, payload, move |s, mut c, payload| async move {
            let now = now_ms();
            let sql = s.returning_id(
                "INSERT INTO queue_messages (queue, payload, state, attempts, visible_at_ms, created_at_ms) \
                 VALUES (?, ?, 0, 0, ?, ?)",
            );
            s.insert_id(
                &mut c,
                sqlx::query(&sql)
                    .bind(queue.as_str())
                    .bind(&*payload)
                    .bind(now)
                    .bind(now),
            )
            .await
        })
        .await
    }

    async fn claim(
        &self,
        queue: Queue,
        max: u32,
        lease: Duration,
    ) -> StoreResult<Vec<LeasedMessage>> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        self.write(WriteOp::Claim, (), move |s, mut c, ()| async move {
            let now = now_ms();
            let until = now + lease_ms;
            let rows = match s.dialect {
                Dialect::Sqlite => {
                    sqlx::query(
                        "UPDATE queue_messages SET visible_at_ms = ?, attempts = attempts + 1 WHERE id IN \
                         (SELECT id FROM queue_messages WHERE queue = ? AND state = 0 AND visible_at_ms <= ? \
                          ORDER BY id LIMIT ?) RETURNING id, payload, attempts",
                    )
                    .bind(until)
                    .bind(queue.as_str())
                    .bind(now)
                    .bind(i64::from(max))
                    .fetch_all(&mut *c)
                    .await?
                }
                Dialect::MySql => {
                    let mut tx = c.begin().await?;
                    let claimed = s.claim_in(&mut tx, queue, max, now, until).await;
                    end_tx(tx, claimed, |_| true).await?
                }
            };
            let mut messages = rows
                .iter()
                .map(|r| {
                    Ok(LeasedMessage {
                        id: r.try_get(0)?,
                        payload: text_column(r, 1)?,
                        attempts: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(u32::MAX),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            messages.sort_by_key(|m| m.id);
            Ok(messages)
        })
        .await
    }

    async fn ack(&self, queue: Queue, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Arc<[i64]> = ids.into();
        self.write(WriteOp::Ack, ids, move |_, mut c, ids| async move {
            let sql = format!(
                "UPDATE queue_messages SET state = 1 WHERE queue = ? AND state = 0 AND id IN ({})",
                placeholders(ids.len())
            );
            let mut q = sqlx::query(&sql).bind(queue.as_str());
            for id in ids.iter() {
                q = q.bind(*id);
            }
            q.execute(&mut *c).await?;
            Ok(())
        })
        .await
    }

    async fn retry_later(&self, queue: Queue, id: i64, delay: Duration) -> StoreResult<()> {
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        self.write(WriteOp::RetryLater, (), move |_, mut c, ()| async move {
            sqlx::query(
                "UPDATE queue_messages SET visible_at_ms = ? WHERE queue = ? AND id = ? AND state = 0",
            )
            .bind(now_ms() + delay_ms)
            .bind(queue.as_str())
            .bind(id)
            .execute(&mut *c)
            .await?;
            Ok(())
        })
        .await
    }

    async fn dead_letter(&self, queue: Queue, id: i64) -> StoreResult<()> {
        self.write(WriteOp::DeadLetter, (), move |_, mut c, ()| async move {
            sqlx::query(
                "UPDATE queue_messages SET state = 2 WHERE queue = ? AND id = ? AND state = 0",
            )
            .bind(queue.as_str())
            .bind(id)
            .execute(&mut *c)
            .await?;
            Ok(())
        })
        .await
    }

    async fn status(&self, queue: Queue, id: i64) -> StoreResult<Option<MessageStatus>> {
        self.read(move |_, mut c| async move {
            let row = sqlx::query(
                "SELECT state, attempts FROM queue_messages WHERE queue = ? AND id = ?",
            )
            .bind(queue.as_str())
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
            row.map(|r| {
                Ok(MessageStatus {
                    status: MessageState::from_code(r.try_get(0)?)?,
                    attempts: u32::try_from(r.try_get::<i64, _>(1)?).unwrap_or(u32::MAX),
                })
            })
            .transpose()
        })
        .await
    }

    async fn stats(&self, queue: Queue) -> StoreResult<QueueStats> {
        self.read(move |_, mut c| async move {
            let depth: i64 =
                sqlx::query("SELECT COUNT(*) FROM queue_messages WHERE queue = ? AND state = 0")
                    .bind(queue.as_str())
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?;
            let oldest = sqlx::query(
                "SELECT created_at_ms FROM queue_messages WHERE queue = ? AND state = 0 ORDER BY id LIMIT 1",
            )
            .bind(queue.as_str())
            .fetch_optional(&mut *c)
            .await?
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?;
            let dead: i64 =
                sqlx::query("SELECT COUNT(*) FROM queue_messages WHERE queue = ? AND state = 2")
                    .bind(queue.as_str())
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?;
            Ok(QueueStats {
                depth: depth.max(0) as u64,
                oldest_age: oldest.map(|t| Duration::from_millis((now_ms() - t).max(0) as u64)),
                dead_lettered: dead.max(0) as u64,
            })
        })
        .await
    }
}

#[async_trait]
impl DeliveryStore for SqlStore {
    async fn record_delivery(&self, d: &Delivery) -> StoreResult<bool> {
        let d = Arc::new(d.clone());
        self.write(WriteOp::Delivery, d, |s, mut c, d| async move {
            let sql = format!(
                "{} INTO deliveries (notification_id, recipient, subject, delivered_at_ms) VALUES (?, ?, ?, ?)",
                s.dialect.insert_ignore()
            );
            let done = sqlx::query(&sql)
                .bind(d.notification_id)
                .bind(d.recipient.as_str())
                .bind(d.subject.as_str())
                .bind(now_ms())
                .execute(&mut *c)
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn deliveries_of(&self, notification_id: i64) -> StoreResult<i64> {
        self.read(move |_, mut c| async move {
            Ok(
                sqlx::query("SELECT COUNT(*) FROM deliveries WHERE notification_id = ?")
                    .bind(notification_id)
                    .fetch_one(&mut *c)
                    .await?
                    .try_get(0)?,
            )
        })
        .await
    }

    async fn delivery_total(&self) -> StoreResult<i64> {
        self.read(|_, mut c| async move {
            Ok(sqlx::query("SELECT COUNT(*) FROM deliveries")
                .fetch_one(&mut *c)
                .await?
                .try_get(0)?)
        })
        .await
    }
}

#[async_trait]
impl TimestampStore for SqlStore {
    async fn insert(
        &self,
        request_id: &str,
        client_addr: &str,
        timestamp_ms: i64,
    ) -> StoreResult<TimestampRecord> {
        let record = Arc::new(TimestampRecord {
            id: 0,
            request_id: request_id.to_owned(),
            client_addr: client_addr.to_owned(),
            timestamp_ms,
        });
        self.write(WriteOp::Timestamp, record, |s, mut c, record| async move {
            let sql = s.returning_id(
                "INSERT INTO app_timestamps (request_id, client_addr, timestamp_ms) VALUES (?, ?, ?)",
            );
            let id = s
                .insert_id(
                    &mut c,
                    sqlx::query(&sql)
                        .bind(record.request_id.as_str())
                        .bind(record.client_addr.as_str())
                        .bind(record.timestamp_ms),
                )
                .await?;
            Ok(TimestampRecord {
                id,
                ..(*record).clone()
            })
        })
        .await
    }

    async fn recent(&self, limit: u32) -> StoreResult<Vec<TimestampRecord>> {
        self.read(move |_, mut c| async move {
            let rows = sqlx::query(
                "SELECT id, request_id, client_addr, timestamp_ms FROM app_timestamps ORDER BY id DESC LIMIT ?",
            )
            .bind(i64::from(limit))
            .fetch_all(&mut *c)
            .await?;
            rows.iter().map(timestamp_from).collect()
        })
        .await
    }

    async fn by_request_id(&self, request_id: &str) -> StoreResult<Option<TimestampRecord>> {
        let request_id = request_id.to_owned();
        self.read(|_, mut c| async move {
            let row = sqlx::query(
                "SELECT id, request_id, client_addr, timestamp_ms FROM app_timestamps WHERE request_id = ? \
                 ORDER BY id LIMIT 1",
            )
            .bind(request_id.as_str())
            .fetch_optional(&mut *c)
            .await?;
            row.as_ref().map(timestamp_from).transpose()
        })
        .await
    }
}

#[async_trait]
impl MultivacStore for SqlStore {
    async fn learn(&self, items: &[(i64, Vec<String>)]) -> StoreResult<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        let items: Arc<[(i64, Vec<String>)]> = items.into();
        self.write(WriteOp::Learn, items, |s, mut c, items| async move {
            let mut tx = s.begin_write(&mut c).await?;
            let learnt = s.learn_in(&mut tx, &items).await;
            end_tx(tx, learnt, |_| true).await
        })
        .await
    }

    async fn knowledge(&self) -> StoreResult<Knowledge> {
        self.read(|_, mut c| async move {
            let items: i64 = sqlx::query("SELECT items FROM multivac_stats WHERE id = 1")
                .fetch_optional(&mut *c)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?
                .unwrap_or(0);
            let top =
                sqlx::query("SELECT word, n FROM multivac_words ORDER BY n DESC, word ASC LIMIT 1")
                    .fetch_optional(&mut *c)
                    .await?
                    .map(|r| -> StoreResult<(String, u64)> {
                        Ok((r.try_get(0)?, r.try_get::<i64, _>(1)?.max(0) as u64))
                    })
                    .transpose()?;
            Ok(Knowledge {
                items_processed: items.max(0) as u64,
                top_word: top,
            })
        })
        .await
    }
}

#[async_trait]
impl BackendHealth for SqlStore {
    fn backend_name(&self) -> &'static str {
        self.dialect.name()
    }

    /// A read connection answers `SELECT 1`. (The writer is [`BackendHealth::writes_ok`]'s
    /// business: on SQLite it is busy whenever writes queue, which is not unreachable.)
    async fn ping(&self) -> StoreResult<()> {
        let conn = tokio::time::timeout(PING_WAIT, self.read.acquire())
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))??;
        let mut c = GatedConn { conn, _held: None };
        self.finish(None, async move {
            c.execute("SELECT 1").await?;
            Ok(())
        })
        .await
    }

    /// Not while a kind of write keeps failing; yes if some write succeeded within the last
    /// second; otherwise as a test write says (within a second).
    async fn writes_ok(&self) -> Result<(), String> {
        if let Some(trouble) = self.writes.trouble() {
            return Err(trouble);
        }
        if self.writes.succeeded_within(WRITES_SEEN_FRESH) {
            return Ok(());
        }
        self.probe().await
    }

    fn pools(&self) -> Vec<PoolSnapshot> {
        let snap = |name, pool: &AnyPool, max| PoolSnapshot {
            name,
            max,
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        };
        match self.dialect {
            Dialect::Sqlite => vec![
                snap("read", &self.read, self.read_max),
                snap("write", &self.write, self.write_max),
            ],
            Dialect::MySql => vec![snap("main", &self.read, self.read_max)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("a%b_c!"), "%a!%b!_c!!%");
        assert_eq!(placeholders(3), "?,?,?");
    }
}
