//! The Redis catalogue cache, against a real Redis: `PEAKLOAD_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`; `scripts/test` starts one). Each test uses its own random key
//! prefix, so they run in parallel on one Redis; their keys expire by themselves (TTL).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peakload_stack::{BackendConfig, RedisConfig};
use peakload_test_support::redis_url;
use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::both_backends;
use crate::common::{start, Db, TestStack};

both_backends!(
    catalogue_answers_come_from_redis_until_the_ttl,
    checkout_invalidates_the_cached_stock
);

/// A connection to the test Redis; fails the test, naming `scripts/test`, if it is down.
async fn redis_conn() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("PEAKLOAD_TEST_REDIS_URL parses");
    match tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "Redis is unreachable at {url}: {e} — run the tests through scripts/test, which \
             starts redis-server, or set PEAKLOAD_TEST_REDIS_URL"
        ),
        Err(_) => panic!(
            "Redis at {url} did not answer within 5 s — run the tests through scripts/test, \
             which starts redis-server, or set PEAKLOAD_TEST_REDIS_URL"
        ),
    }
}

fn random_prefix() -> String {
    format!("peakload-test-{:016x}:", fastrand::u64(..))
}

/// `url` with its host and port replaced by `addr`.
fn with_addr(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a redis:// URL");
    let (auth, hostpath) = match rest.rsplit_once('@') {
        Some((a, h)) => (format!("{a}@"), h),
        None => (String::new(), rest),
    };
    let path = hostpath.find('/').map_or("", |i| &hostpath[i..]);
    format!("{scheme}://{auth}{addr}{path}")
}

/// The host and port of `url`.
async fn redis_addr(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostpath = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let hostport = hostpath.split('/').next().unwrap();
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:6379")
    };
    tokio::net::lookup_host(hostport)
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// Starts a stack whose catalogue cache is the test Redis (`via` replaces its address).
async fn start_cached(db: Db, ttl: Duration, via: Option<SocketAddr>) -> (TestStack, String) {
    redis_conn().await; // fail early, with the message, if Redis is down
    let prefix = random_prefix();
    let url = match via {
        Some(addr) => with_addr(&redis_url(), addr),
        None => redis_url(),
    };
    let key_prefix = prefix.clone();
    let s = start(db, move |c| {
        c.catalogue_cache = ttl;
        c.redis = Some(RedisConfig {
            url,
            key_prefix,
            // Short behind the proxy that cuts Redis off (each read then waits it out); long
            // enough elsewhere that a busy machine's slow reply is not a cache error.
            timeout: if via.is_some() {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(2)
            },
        });
    })
    .await;
    (s, prefix)
}

/// Runs `sql` on the stack's database directly, behind the cache.
async fn execute_sql(s: &TestStack, sql: &str) {
    use sqlx::Connection;
    match &s.stack.config().backend {
        BackendConfig::Sqlite { data_dir } => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(data_dir.join("stack.db"))
                .busy_timeout(Duration::from_secs(5));
            let mut c = sqlx::sqlite::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            sqlx::Executor::execute(&mut c, sql).await.unwrap();
            c.close().await.unwrap();
        }
        BackendConfig::MySql { url } => {
            let mut c = sqlx::mysql::MySqlConnection::connect(url).await.unwrap();
            sqlx::Executor::execute(&mut c, sql).await.unwrap();
            c.close().await.unwrap();
        }
    }
}

/// The value of one sample line of `/metrics`, e.g. `cache_requests_total{result="hit"}`.
async fn metric(s: &TestStack, series: &str) -> u64 {
    let text = s.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

const HITS: &str = "cache_requests_total{result=\"hit\"}";
const MISSES: &str = "cache_requests_total{result=\"miss\"}";
const ERRORS: &str = "cache_requests_total{result=\"error\"}";
const WRITE_ERRORS: &str = "cache_write_errors_total";

async fn product(s: &TestStack, id: i64) -> serde_json::Value {
    let a = s.get(&format!("/api/products/{id}"), None).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    a.body
}

/// The price of `id` on catalogue page 1.
async fn page_price(s: &TestStack, id: i64) -> i64 {
    let a = s.get("/api/products?page=1", None).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap()["price_cents"]
        .as_i64()
        .unwrap()
}

/// A price changed in the database behind the cache: the cached answers (product and page)
/// keep the old price, are in Redis under the prefix with at most the TTL left, and the new
/// price shows once the TTL since the first read has passed.
async fn catalogue_answers_come_from_redis_until_the_ttl(db: Db) {
    let ttl = Duration::from_millis(4000);
    let (s, prefix) = start_cached(db, ttl, None).await;
    let id = 5;
    let t0 = Instant::now();
    let old = product(&s, id).await["price_cents"].as_i64().unwrap();
    assert_eq!(page_price(&s, id).await, old);
    // Both keys were written before this instant, so both are gone a TTL after it (t0 is
    // too early: on a loaded machine the misses' SETs can land long after it).
    let filled = Instant::now();
    assert_eq!(metric(&s, MISSES).await, 2);

    let mut redis = redis_conn().await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}product:{id}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        pttl > 0 && pttl <= ttl.as_millis() as i64,
        "PTTL {pttl} of the product's key"
    );
    let cached: Option<Vec<u8>> = redis::cmd("GET")
        .arg(format!("{prefix}page:1"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(cached.is_some(), "page 1 is in Redis under the test prefix");

    let new = old + 1234;
    execute_sql(
        &s,
        &format!("UPDATE products SET price_cents = {new} WHERE id = {id}"),
    )
    .await;
    assert_eq!(product(&s, id).await["price_cents"], old, "served by Redis");
    assert_eq!(page_price(&s, id).await, old, "served by Redis");
    assert!(
        t0.elapsed() < ttl,
        "the cached reads ran within the TTL ({:?})",
        t0.elapsed()
    );
    assert_eq!(metric(&s, HITS).await, 2);

    // Once the TTL since both keys were written has passed, the new price.
    tokio::time::sleep(
        (filled + ttl + Duration::from_millis(50)).saturating_duration_since(Instant::now()),
    )
    .await;
    assert_eq!(product(&s, id).await["price_cents"], new);
    assert_eq!(page_price(&s, id).await, new);
    assert_eq!(metric(&s, MISSES).await, 4);
    assert_eq!(metric(&s, ERRORS).await, 0);
    s.stop().await;
}

/// A checkout forgets the products' cached answers before answering, placed (201) or
/// refused (409), although the TTL is long: the next read shows the stock as it is.
async fn checkout_invalidates_the_cached_stock(db: Db) {
    let (s, _prefix) = start_cached(db, Duration::from_secs(60), None).await;
    let (a, b) = (195, 196); // seeded with stock 50
    assert_eq!(product(&s, a).await["stock"], 50);
    assert_eq!(product(&s, a).await["stock"], 50);
    assert_eq!(metric(&s, HITS).await, 1);

    let token = s.login(1).await;
    let r = s
        .post(
            "/api/cart/items",
            Some(&token),
            json!({ "product_id": a, "qty": 3 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = s.post("/api/checkout", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(
        product(&s, a).await["stock"],
        47,
        "fresh after the checkout"
    );

    // The stock drops behind the cache; the refused checkout clears the stale answer.
    assert_eq!(product(&s, b).await["stock"], 50);
    execute_sql(&s, &format!("UPDATE products SET stock = 2 WHERE id = {b}")).await;
    assert_eq!(product(&s, b).await["stock"], 50, "still cached");
    let r = s
        .post(
            "/api/cart/items",
            Some(&token),
            json!({ "product_id": b, "qty": 5 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = s.post("/api/checkout", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    assert_eq!(product(&s, b).await["stock"], 2, "fresh after the refusal");
    assert_eq!(metric(&s, ERRORS).await, 0);
    assert_eq!(metric(&s, WRITE_ERRORS).await, 0);
    s.stop().await;
}

/// A TCP proxy to Redis that can be cut (listener and connections closed) and restored.
struct Proxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(bind: SocketAddr, upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Proxy { addr, task }
    }

    /// Closes the port and every proxied connection.
    async fn cut(self) -> SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }
}

/// Redis goes away mid-test: catalogue answers are still 200 and fresh from the database,
/// every lookup counts as an error, a checkout still works (its invalidation counts as a
/// write error), `/readyz` stays 200; when Redis is back, hits resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_serves_from_the_database() {
    let upstream = redis_addr(&redis_url()).await;
    let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), upstream).await;
    let (s, _prefix) = start_cached(Db::Sqlite, Duration::from_secs(60), Some(proxy.addr)).await;
    let id = 7;
    let old = product(&s, id).await["price_cents"].as_i64().unwrap();
    product(&s, id).await;
    assert_eq!(metric(&s, HITS).await, 1);
    assert_eq!(metric(&s, ERRORS).await, 0);

    let addr = proxy.cut().await;
    let new = old + 99;
    execute_sql(
        &s,
        &format!("UPDATE products SET price_cents = {new} WHERE id = {id}"),
    )
    .await;
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(
            product(&s, id).await["price_cents"],
            new,
            "from the database"
        );
        assert_eq!(page_price(&s, id).await, new, "from the database");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "20 reads with Redis down took {:?}",
        started.elapsed()
    );
    assert_eq!(metric(&s, ERRORS).await, 20, "every lookup counted");
    assert_eq!(metric(&s, HITS).await, 1);
    let token = s.login(2).await;
    let r = s
        .post(
            "/api/cart/items",
            Some(&token),
            json!({ "product_id": id, "qty": 1 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let r = s.post("/api/checkout", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert!(metric(&s, WRITE_ERRORS).await >= 1);
    assert_eq!(s.get("/readyz", None).await.status, StatusCode::OK);

    // Back: a product not read during the outage is cached and hit again.
    let _proxy = Proxy::start(addr, upstream).await;
    let other = 8;
    s.eventually(
        Duration::from_secs(10),
        "cache hits after Redis is back",
        || async {
            product(&s, other).await;
            metric(&s, HITS).await > 1
        },
    )
    .await;
    s.stop().await;
}
