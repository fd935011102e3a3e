//! Every service endpoint's happy and error paths.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::common::{assert_json_error, start, Db};

both_backends!(
    shop_endpoints,
    notification_endpoints,
    timestamp_endpoints,
    multivac_endpoints
);

async fn shop_endpoints(db: Db) {
    let s = start(db, |_| {}).await;

    // Login.
    let bad = s
        .post(
            "/api/login",
            None,
            json!({ "email": "user1@example.com", "password": "nope" }),
        )
        .await;
    assert_json_error(&bad, 401);
    let unknown = s
        .post(
            "/api/login",
            None,
            json!({ "email": "ghost@example.com", "password": "pw-1" }),
        )
        .await;
    assert_json_error(&unknown, 401);
    let token = s.login(1).await;
    assert_eq!(token.len(), 32);
    let other = s.login(2).await;

    // Catalogue.
    let page1 = s.get("/api/products", None).await;
    assert_eq!(page1.status, StatusCode::OK);
    let items = page1.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert_eq!(items[0]["id"], 1);
    assert_eq!(page1.body["next_page"], 2);
    let page10 = s.get("/api/products?page=10", None).await;
    assert_eq!(page10.body["items"][19]["id"], 200);
    assert_eq!(page10.body["items"][19]["stock"], 50);
    assert_eq!(
        s.get("/api/products?page=11", None).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let kettles = s.get("/api/products?q=kettle", None).await;
    let kettles = kettles.body["items"].as_array().unwrap();
    assert!(!kettles.is_empty());
    assert!(kettles
        .iter()
        .all(|p| p["name"].as_str().unwrap().contains("Kettle")));
    assert_eq!(
        s.get("/api/products?q=100%25", None).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_json_error(&s.get("/api/products?page=0", None).await, 422);
    assert_json_error(&s.get("/api/products?page=abc", None).await, 400);
    let p7 = s.get("/api/products/7", None).await;
    assert_eq!(p7.status, StatusCode::OK);
    assert_eq!(p7.body["id"], 7);
    assert!(p7.body["price_cents"].as_i64().unwrap() > 0);
    assert_json_error(&s.get("/api/products/9999", None).await, 404);
    assert_json_error(&s.get("/api/products/abc", None).await, 400);

    // Cart.
    let item = json!({ "product_id": 7, "qty": 2 });
    assert_json_error(&s.post("/api/cart/items", None, item.clone()).await, 401);
    assert_json_error(
        &s.post(
            "/api/cart/items",
            Some("0123456789abcdef0123456789abcdef"),
            item.clone(),
        )
        .await,
        401,
    );
    assert_json_error(
        &s.post("/api/cart/items", Some("not-a-token"), item.clone())
            .await,
        401,
    );
    assert_json_error(
        &s.post(
            "/api/cart/items",
            Some(&token),
            json!({ "product_id": 9999, "qty": 1 }),
        )
        .await,
        404,
    );
    assert_json_error(
        &s.post(
            "/api/cart/items",
            Some(&token),
            json!({ "product_id": 7, "qty": 0 }),
        )
        .await,
        422,
    );
    assert_json_error(
        &s.post(
            "/api/cart/items",
            Some(&token),
            json!({ "product_id": 7, "qty": 101 }),
        )
        .await,
        422,
    );
    assert_json_error(
        &s.post(
            "/api/cart/items",
            Some(&token),
            json!({ "product_id": 7, "qty": "2" }),
        )
        .await,
        422,
    );
    assert_json_error(
        &s.post("/api/cart/items", Some(&token), json!({ "product_id": 7 }))
            .await,
        422,
    );
    assert_json_error(&s.post("/api/checkout", Some(&token), json!({})).await, 422);
    let added = s.post("/api/cart/items", Some(&token), item.clone()).await;
    assert_eq!(added.status, StatusCode::CREATED, "{added:?}");
    assert_eq!(
        s.post("/api/cart/items", Some(&token), item.clone())
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        s.post(
            "/api/cart/items",
            Some(&token),
            json!({ "product_id": 3, "qty": 1 })
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let cart = s.get("/api/cart", Some(&token)).await;
    assert_eq!(cart.status, StatusCode::OK);
    let lines = cart.body["items"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["product_id"], 7);
    assert_eq!(lines[1]["qty"], 4);
    assert_json_error(&s.get("/api/cart", None).await, 401);
    assert_eq!(
        s.get("/api/cart", Some(&other)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Checkout and orders.
    let expected_total = cart.body["total_cents"].as_i64().unwrap();
    let stock_before = s.get("/api/products/7", None).await.body["stock"]
        .as_i64()
        .unwrap();
    let order = s.post("/api/checkout", Some(&token), json!({})).await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
    assert_eq!(order.body["total_cents"], expected_total);
    assert_eq!(
        order.body["total"].as_f64().unwrap(),
        expected_total as f64 / 100.0
    );
    let order_id = order.body["order_id"].as_i64().unwrap();
    assert_eq!(
        s.get("/api/products/7", None).await.body["stock"]
            .as_i64()
            .unwrap(),
        stock_before - 4
    );
    assert_eq!(
        s.get("/api/cart", Some(&token)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_json_error(&s.post("/api/checkout", Some(&token), json!({})).await, 422);
    let fetched = s
        .get(&format!("/api/orders/{order_id}"), Some(&token))
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["items"].as_array().unwrap().len(), 2);
    assert_json_error(
        &s.get(&format!("/api/orders/{order_id}"), Some(&other))
            .await,
        404,
    );
    assert_json_error(&s.get(&format!("/api/orders/{order_id}"), None).await, 401);
    assert_json_error(&s.get("/api/orders/424242", Some(&token)).await, 404);

    // Out of stock: 409, nothing changes, the cart stays.
    let scarce = json!({ "product_id": 200, "qty": 51 });
    assert_eq!(
        s.post("/api/cart/items", Some(&other), scarce).await.status,
        StatusCode::CREATED
    );
    let conflict = s.post("/api/checkout", Some(&other), json!({})).await;
    assert_json_error(&conflict, 409);
    assert_eq!(conflict.body["product_id"], 200);
    assert_eq!(s.get("/api/products/200", None).await.body["stock"], 50);
    assert_eq!(
        s.get("/api/cart", Some(&other)).await.body["items"][0]["qty"],
        51
    );
    s.stop().await;
}

async fn notification_endpoints(db: Db) {
    let s = start(db, |c| c.worker.max_attempts = 3).await;
    let note = |to: &str| json!({ "to": to, "subject": "Hello", "body": "Your order shipped" });
    let ok = s
        .post("/api/notifications", None, note("someone@example.com"))
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{ok:?}");
    assert_eq!(ok.body["status"], "queued");
    let bounce = s
        .post("/api/notifications", None, note("someone@bounce.invalid"))
        .await;
    let flaky = s
        .post("/api/notifications", None, note("someone@flaky.invalid"))
        .await;
    let status_of = |a: &crate::common::Answer| format!("/api/notifications/{}", a.body["id"]);
    for (answer, expected, attempts) in [
        (&ok, "sent", 1),
        (&bounce, "failed", 3),
        (&flaky, "sent", 3),
    ] {
        let path = status_of(answer);
        s.eventually(
            Duration::from_secs(20),
            &format!("{path} {expected}"),
            || async { s.get(&path, None).await.body["status"] == expected },
        )
        .await;
        assert_eq!(
            s.get(&path, None).await.body["attempts"],
            attempts,
            "{path}"
        );
    }
    let id = ok.body["id"].as_i64().unwrap();
    assert_eq!(
        s.stack.stores().deliveries.deliveries_of(id).await.unwrap(),
        1
    );
    let bounced = bounce.body["id"].as_i64().unwrap();
    assert_eq!(
        s.stack
            .stores()
            .deliveries
            .deliveries_of(bounced)
            .await
            .unwrap(),
        0
    );

    assert_json_error(
        &s.post("/api/notifications", None, note("not-an-address"))
            .await,
        422,
    );
    assert_json_error(
        &s.post("/api/notifications", None, json!({ "to": "a@example.com" }))
            .await,
        422,
    );
    assert_json_error(&s.get("/api/notifications/999999", None).await, 404);
    assert_json_error(&s.get("/api/notifications/x", None).await, 400);
    s.stop().await;
}

async fn timestamp_endpoints(db: Db) {
    let s = start(db, |_| {}).await;
    let mut last = 0;
    for i in 0..55 {
        let resp = s
            .http
            .post(s.url("/app"))
            .header("x-request-id", format!("req-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["request_id"], format!("req-{i}"));
        assert_eq!(body["client_addr"], "127.0.0.1");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        last = body["id"].as_i64().unwrap();
    }
    let generated = s.call(reqwest::Method::POST, "/app", None, None).await;
    assert_eq!(generated.status, StatusCode::CREATED);
    assert_eq!(generated.body["request_id"].as_str().unwrap().len(), 32);
    let listed = s.get("/app", None).await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    assert_eq!(items[0]["id"], generated.body["id"]);
    assert_eq!(items[1]["id"], last);
    s.stop().await;
}

async fn multivac_endpoints(db: Db) {
    let s = start(db, |c| c.multivac_threshold = 10).await;
    let answer = || async {
        s.http
            .get(s.url("/multivac"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(answer().await, "INSUFFICIENT DATA FOR MEANINGFUL ANSWER");
    let post = |data: &'static str| {
        let req = s.http.post(s.url("/multivac/data")).form(&[("data", data)]);
        async move { req.send().await.unwrap().status() }
    };
    for _ in 0..9 {
        assert_eq!(
            post("entropy can be reversed, entropy").await,
            StatusCode::ACCEPTED
        );
    }
    s.eventually(Duration::from_secs(10), "9 items learnt", || async {
        s.stack
            .stores()
            .multivac
            .knowledge()
            .await
            .unwrap()
            .items_processed
            == 9
    })
    .await;
    assert_eq!(answer().await, "INSUFFICIENT DATA FOR MEANINGFUL ANSWER");
    assert_eq!(post("let there be light").await, StatusCode::ACCEPTED);
    s.eventually(Duration::from_secs(10), "an answer", || async {
        answer().await.contains("entropy")
    })
    .await;
    assert_eq!(
        answer().await,
        "THE ANSWER IS \"entropy\" (SEEN 18 TIMES IN 10 ITEMS)"
    );

    let empty = s
        .http
        .post(s.url("/multivac/data"))
        .form(&[("data", "  ")])
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let missing = s
        .http
        .post(s.url("/multivac/data"))
        .form(&[("other", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let json_body = s.post("/multivac/data", None, json!({ "data": "x" })).await;
    assert_json_error(&json_body, 415);
    s.stop().await;
}
