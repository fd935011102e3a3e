//! The schema, in the two SQL dialects. Every statement is idempotent, so migrating at each
//! start (and from several processes at once) is safe.

/// Which SQL database a [`super::sql::SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
}

pub const SQLITE: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        email TEXT NOT NULL UNIQUE,
        salt TEXT NOT NULL,
        password_hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions (
        token TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS products (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        price_cents INTEGER NOT NULL,
        stock INTEGER NOT NULL CHECK (stock >= 0))",
    "CREATE TABLE IF NOT EXISTS cart_items (
        user_id INTEGER NOT NULL,
        product_id INTEGER NOT NULL,
        qty INTEGER NOT NULL,
        PRIMARY KEY (user_id, product_id))",
    "CREATE TABLE IF NOT EXISTS orders (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL,
        total_cents INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS order_items (
        order_id INTEGER NOT NULL,
        product_id INTEGER NOT NULL,
        qty INTEGER NOT NULL,
        price_cents INTEGER NOT NULL,
        PRIMARY KEY (order_id, product_id))",
    "CREATE INDEX IF NOT EXISTS order_items_product ON order_items (product_id)",
    "CREATE TABLE IF NOT EXISTS queue_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        payload TEXT NOT NULL,
        state INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        visible_at_ms INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS queue_messages_ready ON queue_messages (queue, state, id)",
    "CREATE TABLE IF NOT EXISTS deliveries (
        notification_id INTEGER PRIMARY KEY,
        recipient TEXT NOT NULL,
        subject TEXT NOT NULL,
        delivered_at_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS app_timestamps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL,
        client_addr TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS app_timestamps_request ON app_timestamps (request_id)",
    "CREATE TABLE IF NOT EXISTS multivac_learnt (message_id INTEGER PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS multivac_words (
        word TEXT PRIMARY KEY,
        n INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS multivac_words_n ON multivac_words (n)",
    "CREATE TABLE IF NOT EXISTS multivac_stats (
        id INTEGER PRIMARY KEY,
        items INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO multivac_stats (id, items) VALUES (1, 0)",
    "CREATE TABLE IF NOT EXISTS health_probe (
        id INTEGER PRIMARY KEY,
        probed_at_ms INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO health_probe (id, probed_at_ms) VALUES (1, 0)",
];

pub const MYSQL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        email VARCHAR(255) NOT NULL UNIQUE,
        salt VARCHAR(64) NOT NULL,
        password_hash VARCHAR(64) NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS sessions (
        token VARCHAR(64) NOT NULL PRIMARY KEY,
        user_id BIGINT NOT NULL,
        created_at_ms BIGINT NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS products (
        id BIGINT NOT NULL PRIMARY KEY,
        name VARCHAR(255) NOT NULL,
        price_cents BIGINT NOT NULL,
        stock BIGINT NOT NULL,
        CONSTRAINT products_stock_non_negative CHECK (stock >= 0)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS cart_items (
        user_id BIGINT NOT NULL,
        product_id BIGINT NOT NULL,
        qty BIGINT NOT NULL,
        PRIMARY KEY (user_id, product_id)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS orders (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        user_id BIGINT NOT NULL,
        total_cents BIGINT NOT NULL,
        created_at_ms BIGINT NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS order_items (
        order_id BIGINT NOT NULL,
        product_id BIGINT NOT NULL,
        qty BIGINT NOT NULL,
        price_cents BIGINT NOT NULL,
        PRIMARY KEY (order_id, product_id),
        KEY order_items_product (product_id)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS queue_messages (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        queue VARCHAR(32) NOT NULL,
        payload MEDIUMTEXT NOT NULL,
        state BIGINT NOT NULL DEFAULT 0,
        attempts BIGINT NOT NULL DEFAULT 0,
        visible_at_ms BIGINT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        KEY queue_messages_ready (queue, state, id)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS deliveries (
        notification_id BIGINT NOT NULL PRIMARY KEY,
        recipient VARCHAR(320) NOT NULL,
        subject TEXT NOT NULL,
        delivered_at_ms BIGINT NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS app_timestamps (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        request_id VARCHAR(64) NOT NULL,
        client_addr VARCHAR(64) NOT NULL,
        timestamp_ms BIGINT NOT NULL,
        KEY app_timestamps_request (request_id)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS multivac_learnt (message_id BIGINT NOT NULL PRIMARY KEY) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS multivac_words (
        word VARCHAR(64) NOT NULL PRIMARY KEY,
        n BIGINT NOT NULL,
        KEY multivac_words_n (n)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS multivac_stats (
        id BIGINT NOT NULL PRIMARY KEY,
        items BIGINT NOT NULL) ENGINE=InnoDB",
    "INSERT IGNORE INTO multivac_stats (id, items) VALUES (1, 0)",
    "CREATE TABLE IF NOT EXISTS health_probe (
        id BIGINT NOT NULL PRIMARY KEY,
        probed_at_ms BIGINT NOT NULL) ENGINE=InnoDB",
    "INSERT IGNORE INTO health_probe (id, probed_at_ms) VALUES (1, 0)",
];

impl Dialect {
    pub fn migrations(self) -> &'static [&'static str] {
        match self {
            Dialect::Sqlite => SQLITE,
            Dialect::MySql => MYSQL,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::MySql => "mysql",
        }
    }

    /// `INSERT` that skips rows whose key exists.
    pub fn insert_ignore(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INSERT OR IGNORE",
            Dialect::MySql => "INSERT IGNORE",
        }
    }
}
