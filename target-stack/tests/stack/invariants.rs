//! The rules that must hold after real concurrent load: no overselling, every accepted
//! notification delivered exactly once across a worker kill, every accepted `/app` write
//! stored, no 500 for bad input.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use peakload_stack::store::MessageState;
use peakload_stack::store::Queue;
use peakload_stack::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::common::{start, Db};

both_backends!(
    checkout_never_oversells,
    notifications_are_delivered_once_across_a_worker_kill,
    every_accepted_app_write_is_stored,
    malformed_input_never_gets_a_500,
);

/// Product 195 has 50 units; 50 buyers each try to buy 1–3 units twice, concurrently.
async fn checkout_never_oversells(db: Db) {
    const PRODUCT: i64 = 195;
    let s = Arc::new(start(db, |_| {}).await);
    let mut buyers = JoinSet::new();
    for user in 1..=50u32 {
        let s = s.clone();
        buyers.spawn(async move {
            let token = s.login(user).await;
            let mut bought = Vec::new();
            let mut refused = 0;
            for round in 0..2 {
                let qty = i64::from((user + round) % 3 + 1);
                let add = s
                    .post(
                        "/api/cart/items",
                        Some(&token),
                        json!({ "product_id": PRODUCT, "qty": qty }),
                    )
                    .await;
                assert_eq!(add.status, StatusCode::CREATED, "{add:?}");
                let order = s.post("/api/checkout", Some(&token), json!({})).await;
                match order.status.as_u16() {
                    201 => {
                        let order_id = order.body["order_id"].as_i64().unwrap();
                        bought.push((order_id, qty));
                    }
                    409 => {
                        refused += 1;
                        // Leave the cart empty for the next round.
                        break;
                    }
                    other => panic!("checkout answered {other}: {order:?}"),
                }
            }
            (token, bought, refused)
        });
    }
    let mut sold = 0;
    let mut orders = 0;
    let mut refusals = 0;
    while let Some(result) = buyers.join_next().await {
        let (token, bought, refused) = result.expect("buyer task");
        refusals += refused;
        for (order_id, qty) in bought {
            let o = s
                .get(&format!("/api/orders/{order_id}"), Some(&token))
                .await;
            assert_eq!(o.status, StatusCode::OK);
            assert_eq!(o.body["items"][0]["qty"], qty);
            sold += qty;
            orders += 1;
        }
    }
    let shop = &s.stack.stores().shop;
    let stock = shop.product(PRODUCT).await.unwrap().unwrap().stock;
    assert!(stock >= 0, "oversold: stock {stock}");
    assert_eq!(
        sold,
        50 - stock,
        "units in answered orders match the stock taken"
    );
    assert_eq!(
        shop.units_sold(PRODUCT).await.unwrap(),
        sold,
        "stored orders match the stock taken"
    );
    assert!(
        refusals > 0,
        "demand (up to 300 units) exceeded stock, so some checkouts must be refused"
    );
    assert!(orders > 0);
    assert!(
        stock < 3,
        "stock left ({stock}) should be below the smallest refused purchase size"
    );
    Arc::into_inner(s).expect("no other owner").stop().await;
}

/// 200 notifications; a worker is killed mid-batch, two fresh ones race to finish the queue.
async fn notifications_are_delivered_once_across_a_worker_kill(db: Db) {
    const N: usize = 200;
    let s = Arc::new(
        start(db, |c| {
            c.role = Role::Api;
            c.worker.batch_size = 16;
            c.worker.lease = Duration::from_millis(800);
            c.faults.worker_delay_ms = 3;
        })
        .await,
    );
    let mut senders = JoinSet::new();
    for t in 0..10 {
        let s = s.clone();
        senders.spawn(async move {
            let mut ids = Vec::new();
            for i in 0..N / 10 {
                let a = s
                    .post(
                        "/api/notifications",
                        None,
                        json!({ "to": format!("u{t}-{i}@example.com"), "subject": "s", "body": "b" }),
                    )
                    .await;
                assert_eq!(a.status, StatusCode::ACCEPTED, "{a:?}");
                ids.push(a.body["id"].as_i64().unwrap());
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(r) = senders.join_next().await {
        ids.extend(r.unwrap());
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), N);

    let stores = s.stack.stores().clone();
    let first = tokio::spawn(s.stack.email_worker().run(CancellationToken::new()));
    s.eventually(
        Duration::from_secs(20),
        "the first worker delivering",
        || async { stores.deliveries.delivery_total().await.unwrap() >= 40 },
    )
    .await;
    first.abort(); // killed mid-batch: its leased messages come back after the lease
    let _ = first.await;
    let delivered_before = stores.deliveries.delivery_total().await.unwrap();
    assert!(
        delivered_before < N as i64,
        "the kill should land mid-queue"
    );

    let stop = CancellationToken::new();
    let fresh: Vec<_> = (0..2)
        .map(|_| tokio::spawn(s.stack.email_worker().run(stop.clone())))
        .collect();
    s.eventually(
        Duration::from_secs(40),
        "every notification sent",
        || async {
            stores
                .queues
                .stats(Queue::Notifications)
                .await
                .unwrap()
                .depth
                == 0
        },
    )
    .await;
    stop.cancel();
    for w in fresh {
        tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .expect("worker stops")
            .unwrap();
    }
    for id in &ids {
        assert_eq!(
            stores.deliveries.deliveries_of(*id).await.unwrap(),
            1,
            "notification {id}"
        );
        let st = stores
            .queues
            .status(Queue::Notifications, *id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(st.status, MessageState::Sent, "notification {id}");
    }
    assert_eq!(stores.deliveries.delivery_total().await.unwrap(), N as i64);
    Arc::into_inner(s).expect("no other owner").stop().await;
}

async fn every_accepted_app_write_is_stored(db: Db) {
    let s = Arc::new(start(db, |_| {}).await);
    let mut writers = JoinSet::new();
    for t in 0..20 {
        let s = s.clone();
        writers.spawn(async move {
            let mut accepted = Vec::new();
            for i in 0..15 {
                let rid = format!("w{t}-{i}");
                let resp = s
                    .http
                    .post(s.url("/app"))
                    .header("x-request-id", &rid)
                    .send()
                    .await
                    .unwrap();
                if resp.status().is_success() {
                    accepted.push(rid);
                } else {
                    assert!(
                        resp.status().is_server_error(),
                        "unexpected {}",
                        resp.status()
                    );
                }
            }
            accepted
        });
    }
    let mut accepted = Vec::new();
    while let Some(r) = writers.join_next().await {
        accepted.extend(r.unwrap());
    }
    assert_eq!(
        accepted.len(),
        300,
        "no fault injected: every write should be accepted"
    );
    for rid in &accepted {
        let rec = s
            .stack
            .stores()
            .timestamps
            .by_request_id(rid)
            .await
            .unwrap();
        assert!(rec.is_some(), "accepted write {rid} is missing");
    }
    Arc::into_inner(s).expect("no other owner").stop().await;
}

async fn malformed_input_never_gets_a_500(db: Db) {
    let s = start(db, |_| {}).await;
    let token = s.login(3).await;
    let big = "x".repeat(80 * 1024);
    let json_paths = [
        "/api/login",
        "/api/cart/items",
        "/api/checkout",
        "/api/notifications",
        "/admin/faults",
    ];
    let bodies: Vec<(&str, String)> = vec![
        ("application/json", "{".into()),
        ("application/json", "[]".into()),
        ("application/json", "null".into()),
        (
            "application/json",
            "{\"product_id\": \"x\", \"qty\": 1e400}".into(),
        ),
        (
            "application/json",
            "{\"email\": 5, \"password\": []}".into(),
        ),
        ("application/json", format!("{{\"to\": \"{big}\"}}")),
        ("application/json", "\u{0}\u{1}".into()),
        ("text/plain", "hello".into()),
        ("application/x-www-form-urlencoded", "data=%ZZ".into()),
    ];
    let mut checked = 0;
    for path in json_paths.iter().chain(["/multivac/data", "/app"].iter()) {
        for (ctype, body) in &bodies {
            for auth in [
                None,
                Some(token.as_str()),
                Some("garbage"),
                Some("ffffffffffffffffffffffffffffffff"),
            ] {
                let mut req = s
                    .http
                    .post(s.url(path))
                    .header("content-type", *ctype)
                    .body(body.clone());
                if let Some(t) = auth {
                    req = req.bearer_auth(t);
                }
                let resp = match req.send().await {
                    Ok(resp) => resp,
                    // The server may answer 413 (or, for /app, 201 without reading the body)
                    // and close before a client has finished writing an oversized body.
                    Err(e) if body.len() > 64 * 1024 => {
                        assert!(e.is_request(), "POST {path}: {e}");
                        continue;
                    }
                    Err(e) => panic!("POST {path} ({ctype}): {e}"),
                };
                let status = resp.status();
                let text = resp.text().await.unwrap();
                assert!(
                    !status.is_server_error(),
                    "POST {path} ({ctype}) answered {status}: {text}"
                );
                if !status.is_success() {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                        panic!("POST {path} ({ctype}) {status}: not JSON: {text}")
                    });
                    assert!(v["error"].is_string(), "POST {path}: {text}");
                }
                checked += 1;
            }
        }
    }
    for path in [
        "/api/products?page=-1",
        "/api/products?page=99999999999",
        "/api/products/99999999999999999999",
        "/api/orders/abc",
        "/api/notifications/-5",
        "/nope",
    ] {
        let a = s.call(Method::GET, path, Some(&token), None).await;
        assert!(a.status.is_client_error(), "GET {path}: {a:?}");
        assert!(a.body["error"].is_string(), "GET {path}: {a:?}");
    }
    let odd = s.get("/api/products?q=%FF%FE", None).await;
    assert!(!odd.status.is_server_error(), "{odd:?}");
    let long_q = format!("/api/products?q={}", "a".repeat(500));
    assert_eq!(
        s.get(&long_q, None).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert!(checked > 200);
    // Still serving.
    assert_eq!(s.get("/healthz", None).await.status, StatusCode::OK);
    s.stop().await;
}
