//! The SQL backend: every store trait on one SQLite file or one MySQL/MariaDB database,
//! through sqlx's `Any` driver, with the few dialect differences spelt out where they occur.
//!
//! SQLite runs in WAL mode with a pool of readers and a single writer connection, so writes
//! queue fairly in-process instead of spinning on the file lock; write transactions start
//! with `BEGIN IMMEDIATE`. MySQL uses one pool, row locks, and `FOR UPDATE SKIP LOCKED` for
//! queue claims. Every operation first passes the [`DbGate`] (injected faults, wait metrics).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Row};

use super::gate::{DbGate, Held};
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

pub struct SqlStore {
    dialect: Dialect,
    read: AnyPool,
    /// The same pool as `read` on MySQL; a one-connection pool on SQLite.
    write: AnyPool,
    read_max: u32,
    write_max: u32,
    gate: Arc<DbGate>,
}

/// A pooled connection that also holds the gate's permit.
struct GatedConn {
    conn: PoolConnection<Any>,
    _held: Held,
}

const SEED_BATCH: usize = 200;

impl SqlStore {
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
            AnyPoolOptions::new()
                .max_connections(max)
                .min_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .after_connect(|conn, _meta| {
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
        let store = SqlStore {
            dialect: Dialect::Sqlite,
            read,
            write,
            read_max: options.max_connections,
            write_max: 1,
            gate,
        };
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
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
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
        let store = SqlStore {
            dialect: Dialect::MySql,
            read: pool.clone(),
            write: pool,
            read_max: options.max_connections,
            write_max: options.max_connections,
            gate,
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.write.acquire().await?;
        for statement in self.dialect.migrations() {
            conn.execute(*statement).await?;
        }
        Ok(())
    }

    /// Passes the gate, then takes a connection from the read or write pool.
    async fn conn(&self, write: bool) -> StoreResult<GatedConn> {
        let (held, gate_wait) = self.gate.enter().await;
        let started = Instant::now();
        let pool = if write { &self.write } else { &self.read };
        let conn = pool.acquire().await?;
        self.gate.record_wait(gate_wait + started.elapsed());
        Ok(GatedConn { conn, _held: held })
    }

    /// Begins a write transaction that holds the write lock from its first statement.
    async fn begin_write<'c>(
        &self,
        conn: &'c mut AnyConnection,
    ) -> StoreResult<sqlx::Transaction<'c, Any>> {
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

    async fn checkout_once(&self, user_id: i64) -> StoreResult<CheckoutOutcome> {
        let mut conn = self.conn(true).await?;
        let mut tx = self.begin_write(&mut conn.conn).await?;
        if self.dialect == Dialect::MySql {
            // One checkout per user at a time, so the same cart is never sold twice.
            sqlx::query("SELECT id FROM users WHERE id = ? FOR UPDATE")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let rows = sqlx::query(
            "SELECT c.product_id, c.qty, p.price_cents FROM cart_items c \
             JOIN products p ON p.id = c.product_id WHERE c.user_id = ? ORDER BY c.product_id",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
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
        let order = match self.place_in(&mut tx, user_id, items).await? {
            CheckoutOutcome::Placed(order) => order,
            other => return Ok(other),
        };
        sqlx::query("DELETE FROM cart_items WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CheckoutOutcome::Placed(order))
    }

    /// Inside `tx`: conditional stock decrements for `items` (sorted by product id), then the
    /// order. `OutOfStock` leaves the transaction to be rolled back by the caller (dropped).
    async fn place_in(
        &self,
        tx: &mut sqlx::Transaction<'_, Any>,
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

    async fn place_order_once(
        &self,
        user_id: i64,
        lines: &[(i64, i64)],
    ) -> StoreResult<CheckoutOutcome> {
        if lines.is_empty() {
            return Ok(CheckoutOutcome::EmptyCart);
        }
        let mut conn = self.conn(true).await?;
        let mut tx = self.begin_write(&mut conn.conn).await?;
        let sql = format!(
            "SELECT id, price_cents FROM products WHERE id IN ({})",
            placeholders(lines.len())
        );
        let mut query = sqlx::query(&sql);
        for (product_id, _) in lines {
            query = query.bind(*product_id);
        }
        let prices: BTreeMap<i64, i64> = query
            .fetch_all(&mut *tx)
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
        let outcome = self.place_in(&mut tx, user_id, items).await?;
        if matches!(outcome, CheckoutOutcome::Placed(_)) {
            tx.commit().await?;
        }
        Ok(outcome)
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
        retrying(|| self.place_order_once(user_id, lines)).await
    }
}

/// Runs `op` again (up to 4 times in all) while it fails with a retryable error.
async fn retrying<T, F, Fut>(mut op: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Err(e) if attempt < 4 && is_retryable(&e) => {
                tokio::time::sleep(Duration::from_millis(fastrand::u64(1..20))).await;
            }
            other => return other,
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
        let mut c = self.conn(false).await?;
        let row = sqlx::query("SELECT id, salt, password_hash FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(&mut *c.conn)
            .await?;
        row.map(|r| {
            Ok(UserCredentials {
                id: r.try_get(0)?,
                salt: r.try_get(1)?,
                password_hash: r.try_get(2)?,
            })
        })
        .transpose()
    }

    async fn create_session(&self, token: &str, user_id: i64) -> StoreResult<()> {
        let mut c = self.conn(true).await?;
        sqlx::query("INSERT INTO sessions (token, user_id, created_at_ms) VALUES (?, ?, ?)")
            .bind(token)
            .bind(user_id)
            .bind(now_ms())
            .execute(&mut *c.conn)
            .await?;
        Ok(())
    }

    async fn session_user(&self, token: &str) -> StoreResult<Option<i64>> {
        let mut c = self.conn(false).await?;
        let row = sqlx::query("SELECT user_id FROM sessions WHERE token = ?")
            .bind(token)
            .fetch_optional(&mut *c.conn)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn list_products(
        &self,
        page: u32,
        per_page: u32,
        name_contains: Option<&str>,
    ) -> StoreResult<Vec<Product>> {
        let mut c = self.conn(false).await?;
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let rows = match name_contains {
            Some(text) => sqlx::query(
                "SELECT id, name, price_cents, stock FROM products WHERE name LIKE ? ESCAPE '!' \
                     ORDER BY id LIMIT ? OFFSET ?",
            )
            .bind(like_pattern(text))
            .bind(i64::from(per_page))
            .bind(offset)
            .fetch_all(&mut *c.conn)
            .await?,
            None => sqlx::query(
                "SELECT id, name, price_cents, stock FROM products ORDER BY id LIMIT ? OFFSET ?",
            )
            .bind(i64::from(per_page))
            .bind(offset)
            .fetch_all(&mut *c.conn)
            .await?,
        };
        rows.iter().map(product_from).collect()
    }

    async fn product(&self, id: i64) -> StoreResult<Option<Product>> {
        let mut c = self.conn(false).await?;
        let row = sqlx::query("SELECT id, name, price_cents, stock FROM products WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *c.conn)
            .await?;
        row.as_ref().map(product_from).transpose()
    }

    async fn add_to_cart(&self, user_id: i64, product_id: i64, qty: i64) -> StoreResult<AddToCart> {
        retrying(|| async {
            let sql = match self.dialect {
                Dialect::Sqlite => {
                    "INSERT INTO cart_items (user_id, product_id, qty) SELECT ?, id, ? FROM products WHERE id = ? \
                     ON CONFLICT (user_id, product_id) DO UPDATE SET qty = qty + excluded.qty"
                }
                Dialect::MySql => {
                    "INSERT INTO cart_items (user_id, product_id, qty) SELECT ?, id, ? FROM products WHERE id = ? \
                     ON DUPLICATE KEY UPDATE qty = qty + VALUES(qty)"
                }
            };
            let mut c = self.conn(true).await?;
            let done = sqlx::query(sql)
                .bind(user_id)
                .bind(qty)
                .bind(product_id)
                .execute(&mut *c.conn)
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
        let mut c = self.conn(false).await?;
        let rows = sqlx::query(
            "SELECT c.product_id, p.name, c.qty, p.price_cents FROM cart_items c \
             JOIN products p ON p.id = c.product_id WHERE c.user_id = ? ORDER BY c.product_id",
        )
        .bind(user_id)
        .fetch_all(&mut *c.conn)
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
    }

    async fn checkout(&self, user_id: i64) -> StoreResult<CheckoutOutcome> {
        retrying(|| self.checkout_once(user_id)).await
    }

    async fn order(&self, user_id: i64, order_id: i64) -> StoreResult<Option<Order>> {
        let mut c = self.conn(false).await?;
        let Some(row) = sqlx::query(
            "SELECT total_cents, created_at_ms FROM orders WHERE id = ? AND user_id = ?",
        )
        .bind(order_id)
        .bind(user_id)
        .fetch_optional(&mut *c.conn)
        .await?
        else {
            return Ok(None);
        };
        let items = sqlx::query(
            "SELECT product_id, qty, price_cents FROM order_items WHERE order_id = ? ORDER BY product_id",
        )
        .bind(order_id)
        .fetch_all(&mut *c.conn)
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
    }

    async fn units_sold(&self, product_id: i64) -> StoreResult<i64> {
        let mut c = self.conn(false).await?;
        let rows = sqlx::query("SELECT qty FROM order_items WHERE product_id = ?")
            .bind(product_id)
            .fetch_all(&mut *c.conn)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<i64, _>(0)?)).sum()
    }

    async fn seed(&self, users: &[SeedUser], products: &[SeedProduct]) -> StoreResult<()> {
        let mut c = self.conn(true).await?;
        let mut tx = self.begin_write(&mut c.conn).await?;
        let have_users: i64 = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
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
                q.execute(&mut *tx).await?;
            }
        }
        let have_products: i64 = sqlx::query("SELECT COUNT(*) FROM products")
            .fetch_one(&mut *tx)
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
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl QueueStore for SqlStore {
    async fn enqueue(&self, queue: Queue, payload: &str) -> StoreResult<i64> {
        retrying(|| async {
            let now = now_ms();
            let sql = self.returning_id(
                "INSERT INTO queue_messages (queue, payload, state, attempts, visible_at_ms, created_at_ms) \
                 VALUES (?, ?, 0, 0, ?, ?)",
            );
            let mut c = self.conn(true).await?;
            self.insert_id(
                &mut c.conn,
                sqlx::query(&sql)
                    .bind(queue.as_str())
                    .bind(payload)
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
        let now = now_ms();
        let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let mut c = self.conn(true).await?;
        let rows = match self.dialect {
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
                .fetch_all(&mut *c.conn)
                .await?
            }
            Dialect::MySql => {
                let mut tx = c.conn.begin().await?;
                let rows = sqlx::query(
                    "SELECT id, payload, attempts + 1 FROM queue_messages \
                     WHERE queue = ? AND state = 0 AND visible_at_ms <= ? ORDER BY id LIMIT ? \
                     FOR UPDATE SKIP LOCKED",
                )
                .bind(queue.as_str())
                .bind(now)
                .bind(i64::from(max))
                .fetch_all(&mut *tx)
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
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                rows
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
    }

    async fn ack(&self, queue: Queue, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE queue_messages SET state = 1 WHERE queue = ? AND state = 0 AND id IN ({})",
            placeholders(ids.len())
        );
        let mut q = sqlx::query(&sql).bind(queue.as_str());
        for id in ids {
            q = q.bind(*id);
        }
        let mut c = self.conn(true).await?;
        q.execute(&mut *c.conn).await?;
        Ok(())
    }

    async fn retry_later(&self, queue: Queue, id: i64, delay: Duration) -> StoreResult<()> {
        let at = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        let mut c = self.conn(true).await?;
        sqlx::query(
            "UPDATE queue_messages SET visible_at_ms = ? WHERE queue = ? AND id = ? AND state = 0",
        )
        .bind(at)
        .bind(queue.as_str())
        .bind(id)
        .execute(&mut *c.conn)
        .await?;
        Ok(())
    }

    async fn dead_letter(&self, queue: Queue, id: i64) -> StoreResult<()> {
        let mut c = self.conn(true).await?;
        sqlx::query("UPDATE queue_messages SET state = 2 WHERE queue = ? AND id = ? AND state = 0")
            .bind(queue.as_str())
            .bind(id)
            .execute(&mut *c.conn)
            .await?;
        Ok(())
    }

    async fn status(&self, queue: Queue, id: i64) -> StoreResult<Option<MessageStatus>> {
        let mut c = self.conn(false).await?;
        let row =
            sqlx::query("SELECT state, attempts FROM queue_messages WHERE queue = ? AND id = ?")
                .bind(queue.as_str())
                .bind(id)
                .fetch_optional(&mut *c.conn)
                .await?;
        row.map(|r| {
            Ok(MessageStatus {
                status: MessageState::from_code(r.try_get(0)?)?,
                attempts: u32::try_from(r.try_get::<i64, _>(1)?).unwrap_or(u32::MAX),
            })
        })
        .transpose()
    }

    async fn stats(&self, queue: Queue) -> StoreResult<QueueStats> {
        let mut c = self.conn(false).await?;
        let depth: i64 =
            sqlx::query("SELECT COUNT(*) FROM queue_messages WHERE queue = ? AND state = 0")
                .bind(queue.as_str())
                .fetch_one(&mut *c.conn)
                .await?
                .try_get(0)?;
        let oldest = sqlx::query(
            "SELECT created_at_ms FROM queue_messages WHERE queue = ? AND state = 0 ORDER BY id LIMIT 1",
        )
        .bind(queue.as_str())
        .fetch_optional(&mut *c.conn)
        .await?
        .map(|r| r.try_get::<i64, _>(0))
        .transpose()?;
        let dead: i64 =
            sqlx::query("SELECT COUNT(*) FROM queue_messages WHERE queue = ? AND state = 2")
                .bind(queue.as_str())
                .fetch_one(&mut *c.conn)
                .await?
                .try_get(0)?;
        Ok(QueueStats {
            depth: depth.max(0) as u64,
            oldest_age: oldest.map(|t| Duration::from_millis((now_ms() - t).max(0) as u64)),
            dead_lettered: dead.max(0) as u64,
        })
    }
}

#[async_trait]
impl DeliveryStore for SqlStore {
    async fn record_delivery(&self, d: &Delivery) -> StoreResult<bool> {
        retrying(|| async {
            let sql = format!(
                "{} INTO deliveries (notification_id, recipient, subject, delivered_at_ms) VALUES (?, ?, ?, ?)",
                self.dialect.insert_ignore()
            );
            let mut c = self.conn(true).await?;
            let done = sqlx::query(&sql)
                .bind(d.notification_id)
                .bind(d.recipient.as_str())
                .bind(d.subject.as_str())
                .bind(now_ms())
                .execute(&mut *c.conn)
                .await?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn deliveries_of(&self, notification_id: i64) -> StoreResult<i64> {
        let mut c = self.conn(false).await?;
        Ok(
            sqlx::query("SELECT COUNT(*) FROM deliveries WHERE notification_id = ?")
                .bind(notification_id)
                .fetch_one(&mut *c.conn)
                .await?
                .try_get(0)?,
        )
    }

    async fn delivery_total(&self) -> StoreResult<i64> {
        let mut c = self.conn(false).await?;
        Ok(sqlx::query("SELECT COUNT(*) FROM deliveries")
            .fetch_one(&mut *c.conn)
            .await?
            .try_get(0)?)
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
        retrying(|| async {
            let sql = self.returning_id(
                "INSERT INTO app_timestamps (request_id, client_addr, timestamp_ms) VALUES (?, ?, ?)",
            );
            let mut c = self.conn(true).await?;
            let id = self
                .insert_id(
                    &mut c.conn,
                    sqlx::query(&sql)
                        .bind(request_id)
                        .bind(client_addr)
                        .bind(timestamp_ms),
                )
                .await?;
            Ok(TimestampRecord {
                id,
                request_id: request_id.to_owned(),
                client_addr: client_addr.to_owned(),
                timestamp_ms,
            })
        })
        .await
    }

    async fn recent(&self, limit: u32) -> StoreResult<Vec<TimestampRecord>> {
        let mut c = self.conn(false).await?;
        let rows = sqlx::query(
            "SELECT id, request_id, client_addr, timestamp_ms FROM app_timestamps ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *c.conn)
        .await?;
        rows.iter().map(timestamp_from).collect()
    }

    async fn by_request_id(&self, request_id: &str) -> StoreResult<Option<TimestampRecord>> {
        let mut c = self.conn(false).await?;
        let row = sqlx::query(
            "SELECT id, request_id, client_addr, timestamp_ms FROM app_timestamps WHERE request_id = ? \
             ORDER BY id LIMIT 1",
        )
        .bind(request_id)
        .fetch_optional(&mut *c.conn)
        .await?;
        row.as_ref().map(timestamp_from).transpose()
    }
}

#[async_trait]
impl MultivacStore for SqlStore {
    async fn learn(&self, items: &[(i64, Vec<String>)]) -> StoreResult<u64> {
        retrying(|| async {
            if items.is_empty() {
                return Ok(0);
            }
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
            let mut c = self.conn(true).await?;
            let mut tx = self.begin_write(&mut c.conn).await?;
            let mut fresh = 0u64;
            // Sorted, so concurrent learners lock words in the same order.
            let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
            for (id, words) in items {
                let done = sqlx::query(&mark).bind(*id).execute(&mut *tx).await?;
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
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE multivac_stats SET items = items + ? WHERE id = 1")
                .bind(fresh as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(fresh)
        })
        .await
    }

    async fn knowledge(&self) -> StoreResult<Knowledge> {
        let mut c = self.conn(false).await?;
        let items: i64 = sqlx::query("SELECT items FROM multivac_stats WHERE id = 1")
            .fetch_optional(&mut *c.conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        let top =
            sqlx::query("SELECT word, n FROM multivac_words ORDER BY n DESC, word ASC LIMIT 1")
                .fetch_optional(&mut *c.conn)
                .await?
                .map(|r| -> StoreResult<(String, u64)> {
                    Ok((r.try_get(0)?, r.try_get::<i64, _>(1)?.max(0) as u64))
                })
                .transpose()?;
        Ok(Knowledge {
            items_processed: items.max(0) as u64,
            top_word: top,
        })
    }
}

#[async_trait]
impl BackendHealth for SqlStore {
    fn backend_name(&self) -> &'static str {
        self.dialect.name()
    }

    async fn ping(&self) -> StoreResult<()> {
        for pool in [&self.read, &self.write] {
            let mut conn = tokio::time::timeout(Duration::from_secs(2), pool.acquire())
                .await
                .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))??;
            conn.execute("SELECT 1").await?;
        }
        Ok(())
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
