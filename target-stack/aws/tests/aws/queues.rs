//! SQS specifics: dead-lettering after the last attempt, the queue gauges, and the
//! DynamoDB-held carts and sessions under concurrent use of one cart.

use std::sync::Arc;
use std::time::Duration;

use peakload_stack::store::{MessageState, Queue};
use peakload_stack::Role;
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

use crate::common::{start, Db};

/// A recipient that always bounces is tried `max_attempts` times (each retry a visibility
/// timeout), then lands in the DLQ with status `failed`; a flaky one is sent on attempt 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounced_notifications_are_dead_lettered_after_the_last_attempt() {
    let s = start(Db::Sqlite, |c| c.worker.max_attempts = 3).await;
    let bounce = s
        .post(
            "/api/notifications",
            None,
            json!({"to": "nobody@bounce.invalid", "subject": "s", "body": "b"}),
        )
        .await;
    assert_eq!(bounce.status, StatusCode::ACCEPTED, "{bounce:?}");
    let flaky = s
        .post(
            "/api/notifications",
            None,
            json!({"to": "maybe@flaky.invalid", "subject": "s", "body": "b"}),
        )
        .await;
    assert_eq!(flaky.status, StatusCode::ACCEPTED);
    let (bounce_id, flaky_id) = (
        bounce.body["id"].as_i64().unwrap(),
        flaky.body["id"].as_i64().unwrap(),
    );
    s.eventually(
        Duration::from_secs(30),
        "the bounce dead-lettered",
        || async {
            s.get(&format!("/api/notifications/{bounce_id}"), None)
                .await
                .body["status"]
                == "failed"
        },
    )
    .await;
    let status = s
        .get(&format!("/api/notifications/{bounce_id}"), None)
        .await;
    assert_eq!(status.body["attempts"], 3, "{status:?}");
    s.eventually(Duration::from_secs(30), "the flaky one sent", || async {
        s.get(&format!("/api/notifications/{flaky_id}"), None)
            .await
            .body["status"]
            == "sent"
    })
    .await;
    let status = s.get(&format!("/api/notifications/{flaky_id}"), None).await;
    assert_eq!(status.body["attempts"], 3, "{status:?}");
    let stores = s.stack.stores();
    assert_eq!(stores.deliveries.deliveries_of(bounce_id).await.unwrap(), 0);
    assert_eq!(stores.deliveries.deliveries_of(flaky_id).await.unwrap(), 1);
    let stats = stores.queues.stats(Queue::Notifications).await.unwrap();
    assert_eq!(stats.dead_lettered, 1, "the DLQ holds the bounce");
    assert_eq!(stats.depth, 0);
    let metrics = s.get("/metrics", None).await.body;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("queue_dead_letters{queue=\"notifications\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("worker_messages_dead_lettered_total{worker=\"email\"} 1"));
    s.stop().await;
}

/// With no worker, depth counts what was queued and the oldest age grows with time;
/// unknown ids are 404 (no status record), and /readyz pings every table and queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_gauges_track_depth_and_age_without_a_worker() {
    let s = start(Db::Sqlite, |c| c.role = Role::Api).await;
    assert_eq!(s.get("/readyz", None).await.status, StatusCode::OK);
    for i in 0..3 {
        let a = s
            .post(
                "/api/notifications",
                None,
                json!({"to": format!("u{i}@example.com"), "subject": "s", "body": "b"}),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED);
        assert_eq!(
            s.get(&format!("/api/notifications/{}", a.body["id"]), None)
                .await
                .body["status"],
            "queued"
        );
    }
    let form = s
        .http
        .post(s.url("/multivac/data"))
        .form(&[("data", "forty two")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::ACCEPTED);
    let queues = &s.stack.stores().queues;
    let first = queues.stats(Queue::Notifications).await.unwrap();
    assert_eq!(first.depth, 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = queues.stats(Queue::Notifications).await.unwrap();
    assert!(
        later.oldest_age.unwrap() >= first.oldest_age.unwrap() + Duration::from_secs(1),
        "{first:?} then {later:?}"
    );
    assert_eq!(queues.stats(Queue::Multivac).await.unwrap().depth, 1);
    assert_eq!(
        s.get("/api/notifications/12345", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(queues
        .status(Queue::Notifications, 12345)
        .await
        .unwrap()
        .is_none());
    let metrics = s.get("/metrics", None).await.body;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("queue_depth{queue=\"notifications\"} 3"),
        "{metrics}"
    );
    s.stop().await;
}

/// One user, one cart, many concurrent checkouts and adds: every unit added is either in
/// exactly one order or still in the cart — none sold twice, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cart_under_concurrent_checkouts_sells_each_unit_once() {
    const PRODUCT: i64 = 7;
    let s = Arc::new(start(Db::Sqlite, |_| {}).await);
    let token = s.login(9).await;
    let mut tasks = JoinSet::new();
    for i in 0..24 {
        let (s, token) = (s.clone(), token.clone());
        tasks.spawn(async move {
            if i % 2 == 0 {
                let a = s
                    .post(
                        "/api/cart/items",
                        Some(&token),
                        json!({"product_id": PRODUCT, "qty": 1}),
                    )
                    .await;
                assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
                (1, 0)
            } else {
                let a = s.post("/api/checkout", Some(&token), json!({})).await;
                match a.status.as_u16() {
                    201 => (0, a.body["items"][0]["qty"].as_i64().unwrap()),
                    422 => (0, 0),
                    other => panic!("checkout answered {other}: {a:?}"),
                }
            }
        });
    }
    let (mut added, mut ordered) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (a, o) = r.unwrap();
        added += a;
        ordered += o;
    }
    let cart = s.get("/api/cart", Some(&token)).await;
    let in_cart = cart.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["qty"].as_i64().unwrap())
        .sum::<i64>();
    assert_eq!(added, ordered + in_cart, "added = ordered + left in cart");
    assert_eq!(
        s.stack.stores().shop.units_sold(PRODUCT).await.unwrap(),
        ordered
    );
    Arc::into_inner(s).expect("no other owner").stop().await;
}

/// A notification's status record is written before the message, and status reads are
/// consistent: a notification is `queued` the moment its 202 is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_status_are_readable_at_once() {
    let s = start(Db::Sqlite, |c| c.role = Role::Api).await;
    for user in 1..=5 {
        let token = s.login(user).await;
        let cart = s.get("/api/cart", Some(&token)).await;
        assert_eq!(cart.status, StatusCode::OK, "{cart:?}");
    }
    let status = s
        .stack
        .stores()
        .queues
        .status(Queue::Notifications, 1)
        .await
        .unwrap();
    assert!(status.is_none());
    let a = s
        .post(
            "/api/notifications",
            None,
            json!({"to": "x@example.com", "subject": "s", "body": "b"}),
        )
        .await;
    let id = a.body["id"].as_i64().unwrap();
    assert!(id > 0 && id < (1 << 53));
    let st = s
        .stack
        .stores()
        .queues
        .status(Queue::Notifications, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st.status, MessageState::Queued);
    assert_eq!(st.attempts, 0);
    s.stop().await;
}
