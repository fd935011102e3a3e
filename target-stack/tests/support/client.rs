//! Serving a stack on a loopback port and talking to it over HTTP: shared by the stack's own
//! tests and the AWS backend's (each includes this file with `#[path]`).

use std::time::Duration;

use peakload_stack::{Stack, StackError};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A stack serving on `base`, with a client for it.
pub struct Served {
    pub base: String,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), StackError>>>,
}

/// A response: status and body (JSON if it parses, else a JSON string).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

#[allow(dead_code)]
impl Served {
    /// Serves `stack` on a free loopback port until [`Served::stop`].
    pub async fn start(stack: &Stack) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(stack.clone().serve(listener, shutdown.clone()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Served {
            base,
            http,
            shutdown,
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<Value>,
    ) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(j) = json {
            req = req.json(&j);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    /// `GET /metrics`, as text.
    pub async fn metrics_text(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).send().await.unwrap();
        resp.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, json: Value) -> Answer {
        self.call(Method::POST, path, token, Some(json)).await
    }

    pub async fn login(&self, user: u32) -> String {
        let a = self
            .post(
                "/api/login",
                None,
                serde_json::json!({ "email": format!("user{user}@example.com"), "password": format!("pw-{user}") }),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        a.body["token"].as_str().unwrap().to_owned()
    }

    /// Waits until `check` is true, polling; panics after `limit`.
    pub async fn eventually<F, Fut>(&self, limit: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let until = tokio::time::Instant::now() + limit;
        loop {
            if check().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "timed out waiting for: {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Graceful stop; asserts the server returned cleanly.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        let server = self.server.take().expect("stopped once");
        let result = tokio::time::timeout(Duration::from_secs(15), server)
            .await
            .expect("server stopped in time")
            .expect("server task did not panic");
        result.expect("server returned Ok");
    }
}
