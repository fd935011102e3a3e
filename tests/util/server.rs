//! The HTTP target of the end-to-end tests.
//!
//! [`TestServer::start`] binds `127.0.0.1:0` and serves an axum router from a background thread
//! with its own runtime, so a test can run `peakload` (a separate process, or the library in
//! the test's own runtime) against it and then ask the server what it received: per-route
//! counters and the values that matter to each test (who logged in, which token and cookie
//! came back, what templates rendered to). Dropping it stops it at once, requests still in
//! flight included.
//!
//! Routes:
//!
//! | route | behaviour |
//! |---|---|
//! | `POST /login` | JSON `{"user", "password"}`; password must be `pw-<user>`; returns `{"token"}` |
//! | `GET /me` | needs `Authorization: Bearer <token from /login>`; else 401 |
//! | `POST /orders` | needs the bearer token; echoes the JSON body |
//! | `GET /cookie/set` | sets a fresh `session` cookie |
//! | `GET /cookie/check?phase=…` | reports (and records) the `session` cookie it got, if any |
//! | `GET /status/{code}` | answers with that status |
//! | `POST /echo` | echoes the JSON body; records it, the query and `X-Tag` |
//! | `GET /delay/{ms}` | answers after `ms` milliseconds |
//! | `GET /slow` | answers after the delay set by [`TestServer::set_slow_ms`] (0 at first): the same scenario, a slower system |
//! | `GET /work` | fast, except during the configured [`Stall`] window |
//! | `GET /item/{id}` | JSON after `id % 10` ms; a 500 for id 7 (a planted failure) |
//!
//! Any other path is a 404, counted as `"other"`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A window during which `/work` freezes, like a stop-the-world pause: every request that
/// arrives inside it is answered when it ends. Anchored at the first `/work` request.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    pub after: Duration,
    pub length: Duration,
}

/// What `/echo` received.
#[derive(Debug, Clone)]
pub struct Echoed {
    pub query: HashMap<String, String>,
    pub x_tag: Option<String>,
    pub body: Value,
}

/// What `/cookie/check` received.
#[derive(Debug, Clone)]
pub struct CookieSeen {
    pub phase: String,
    pub session: Option<String>,
}

#[derive(Default)]
pub struct ServerState {
    counts: Mutex<BTreeMap<String, u64>>,
    /// Users that logged in, in order.
    pub logins: Mutex<Vec<String>>,
    /// Token → user.
    tokens: Mutex<HashMap<String, String>>,
    /// The user each authorized `/me` resolved to.
    pub me_users: Mutex<Vec<String>>,
    /// Requests to an authenticated route without a valid bearer token.
    pub unauthorized: AtomicU64,
    /// Sessions handed out by `/cookie/set`.
    pub sessions_set: Mutex<Vec<String>>,
    pub cookies_seen: Mutex<Vec<CookieSeen>>,
    pub echoed: Mutex<Vec<Echoed>>,
    pub orders: Mutex<Vec<Value>>,
    stall: Mutex<Option<Stall>>,
    work_first: OnceLock<Instant>,
    /// `/work` requests held by the stall.
    pub stalled: AtomicU64,
    /// How long `/slow` takes, in ms.
    slow_ms: AtomicU64,
    next_id: AtomicU64,
}

impl ServerState {
    fn hit(&self, route: &str) {
        *lock(&self.counts).entry(route.to_string()).or_default() += 1;
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn user_for(&self, headers: &HeaderMap) -> Option<String> {
        let auth = headers.get("authorization")?.to_str().ok()?;
        let token = auth.strip_prefix("Bearer ")?;
        lock(&self.tokens).get(token).cloned()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    pub fn with_stall(stall: Stall) -> Self {
        Self::start_with(Some(stall))
    }

    fn start_with(stall: Option<Stall>) -> Self {
        let state = Arc::new(ServerState::default());
        *lock(&state.stall) = stall;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(state.clone());
        let thread = std::thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    tokio::select! {
                        served = axum::serve(listener, app) => served.expect("test server"),
                        _ = rx => {}
                    }
                });
                // Requests still in flight (a `/delay/20000` the run gave up on) and connections
                // the load generator left open must not hold the test up.
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("server thread");
        TestServer {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// From now on `/slow` answers after `ms` milliseconds.
    pub fn set_slow_ms(&self, ms: u64) {
        self.state.slow_ms.store(ms, Ordering::Relaxed);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received on one route (its name as in the module table, e.g. `"login"`).
    pub fn count(&self, route: &str) -> u64 {
        lock(&self.state.counts).get(route).copied().unwrap_or(0)
    }

    /// Requests received on every route, unknown paths included.
    pub fn total(&self) -> u64 {
        lock(&self.state.counts).values().sum()
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.state.counts).clone()
    }

    pub fn logins(&self) -> Vec<String> {
        lock(&self.state.logins).clone()
    }

    pub fn me_users(&self) -> Vec<String> {
        lock(&self.state.me_users).clone()
    }

    pub fn sessions_set(&self) -> Vec<String> {
        lock(&self.state.sessions_set).clone()
    }

    pub fn cookies_seen(&self) -> Vec<CookieSeen> {
        lock(&self.state.cookies_seen).clone()
    }

    pub fn echoed(&self) -> Vec<Echoed> {
        lock(&self.state.echoed).clone()
    }

    pub fn orders(&self) -> Vec<Value> {
        lock(&self.state.orders).clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type St = State<Arc<ServerState>>;

fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/orders", post(orders))
        .route("/cookie/set", get(cookie_set))
        .route("/cookie/check", get(cookie_check))
        .route("/status/{code}", get(status))
        .route("/echo", post(echo))
        .route("/delay/{ms}", get(delay))
        .route("/slow", get(slow))
        .route("/work", get(work))
        .route("/item/{id}", get(item))
        .fallback(|State(s): St| async move {
            s.hit("other");
            StatusCode::NOT_FOUND
        })
        .with_state(state)
}

async fn login(State(s): St, Json(body): Json<Value>) -> Response {
    s.hit("login");
    let user = body["user"].as_str().unwrap_or_default().to_string();
    let password = body["password"].as_str().unwrap_or_default();
    if user.is_empty() || password != format!("pw-{user}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "bad credentials"})),
        )
            .into_response();
    }
    let token = format!("tok-{}-{user}", s.id());
    lock(&s.tokens).insert(token.clone(), user.clone());
    lock(&s.logins).push(user.clone());
    Json(json!({"token": token, "user": user})).into_response()
}

async fn me(State(s): St, headers: HeaderMap) -> Response {
    s.hit("me");
    match s.user_for(&headers) {
        Some(user) => {
            lock(&s.me_users).push(user.clone());
            Json(json!({"user": user})).into_response()
        }
        None => {
            s.unauthorized.fetch_add(1, Ordering::Relaxed);
            StatusCode::UNAUTHORIZED.into_response()
        }
    }
}

async fn orders(State(s): St, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    s.hit("orders");
    if s.user_for(&headers).is_none() {
        s.unauthorized.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    lock(&s.orders).push(body.clone());
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn cookie_set(State(s): St) -> Response {
    s.hit("cookie_set");
    let session = format!("s{}", s.id());
    lock(&s.sessions_set).push(session.clone());
    (
        [("set-cookie", format!("session={session}; Path=/; HttpOnly"))],
        "cookie set",
    )
        .into_response()
}

async fn cookie_check(
    State(s): St,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    s.hit("cookie_check");
    let session = headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "session")
        .map(|(_, v)| v.to_string());
    lock(&s.cookies_seen).push(CookieSeen {
        phase: q.get("phase").cloned().unwrap_or_default(),
        session: session.clone(),
    });
    Json(json!({"session": session})).into_response()
}

async fn status(State(s): St, Path(code): Path<u16>) -> Response {
    s.hit("status");
    StatusCode::from_u16(code)
        .unwrap_or(StatusCode::BAD_REQUEST)
        .into_response()
}

async fn echo(
    State(s): St,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.hit("echo");
    let x_tag = headers
        .get("x-tag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    lock(&s.echoed).push(Echoed {
        query,
        x_tag,
        body: body.clone(),
    });
    Json(body).into_response()
}

async fn delay(State(s): St, Path(ms): Path<u64>) -> Response {
    s.hit("delay");
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "done".into_response()
}

async fn slow(State(s): St) -> Response {
    s.hit("slow");
    let ms = s.slow_ms.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "done".into_response()
}

async fn work(State(s): St) -> Response {
    s.hit("work");
    let first = *s.work_first.get_or_init(Instant::now);
    let stall = *lock(&s.stall);
    if let Some(stall) = stall {
        let from = first + stall.after;
        let until = from + stall.length;
        let now = Instant::now();
        if now >= from && now < until {
            s.stalled.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep_until(until.into()).await;
        }
    }
    "ok".into_response()
}

async fn item(State(s): St, Path(id): Path<u32>) -> Response {
    s.hit("item");
    tokio::time::sleep(Duration::from_millis(u64::from(id % 10))).await;
    if id == 7 {
        (StatusCode::INTERNAL_SERVER_ERROR, "planted failure").into_response()
    } else {
        Json(json!({"ok": true})).into_response()
    }
}
