//! The HTTP face of the stack: shared state, the router, and the middleware that counts every
//! request into [`Metrics`] and applies the request-side faults.
//!
//! Requests enter through [`router`]; handlers live in one module per service and reach
//! storage only through [`AppState::stores`].

pub mod extract;
mod multivac;
pub(crate) mod notifications;
pub(crate) mod ops;
pub mod queue_stats;
mod shop;
mod timestamps;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tokio::sync::Notify;

pub use crate::cache::{CatalogueCache, CatalogueKey};
use crate::config::Role;
use crate::error::AppError;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::store::gate::DbGate;
use crate::store::Stores;

/// What every handler can reach. Clone is cheap.
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

pub struct AppShared {
    pub role: Role,
    pub stores: Stores,
    pub faults: Arc<Faults>,
    pub metrics: Arc<Metrics>,
    pub gate: Arc<DbGate>,
    pub admin_token: Option<String>,
    pub sessions: SessionCache,
    pub catalogue: CatalogueCache,
    pub multivac_threshold: u64,
    /// Largest request body read.
    pub body_limit: usize,
    /// Poked after an enqueue so an in-process worker picks the message up at once.
    pub wake_notifications: Arc<Notify>,
    pub wake_multivac: Arc<Notify>,
    pub started_at_unix: f64,
    /// Queue stats for `/metrics`, read off the request path.
    pub queue_stats: Arc<queue_stats::QueueStatsCache>,
}

impl std::ops::Deref for AppState {
    type Target = AppShared;
    fn deref(&self) -> &AppShared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: AppShared) -> Self {
        AppState(Arc::new(shared))
    }
}

/// Sessions never change once created, so a token seen valid can be remembered.
#[derive(Default)]
pub struct SessionCache {
    map: RwLock<HashMap<String, i64>>,
}

const SESSION_CACHE_MAX: usize = 200_000;

impl SessionCache {
    pub fn get(&self, token: &str) -> Option<i64> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .copied()
    }

    pub fn insert(&self, token: &str, user: i64) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SESSION_CACHE_MAX {
            map.clear();
        }
        map.insert(token.to_owned(), user);
    }
}

/// A JSON body already serialised.
pub fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Routes and the (method, pattern, faultable) list the metrics registry needs.
pub struct RouteTable {
    router: Router<AppState>,
    pub list: Vec<(&'static str, &'static str, bool)>,
}

impl RouteTable {
    fn new() -> Self {
        RouteTable {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    fn add(
        mut self,
        path: &'static str,
        methods: &[&'static str],
        faultable: bool,
        route: MethodRouter<AppState>,
    ) -> Self {
        for m in methods {
            self.list.push((m, path, faultable));
        }
        self.router = self.router.route(path, route);
        self
    }
}

/// The routes a process of this role serves: the operational ones always, the services'
/// unless it is a worker.
pub fn routes(role: Role) -> RouteTable {
    let mut table = RouteTable::new()
        .add("/healthz", &["GET"], false, get(ops::healthz))
        .add("/readyz", &["GET"], false, get(ops::readyz))
        .add("/metrics", &["GET"], false, get(ops::metrics))
        .add(
            "/admin/faults",
            &["GET", "POST"],
            false,
            get(ops::get_faults).post(ops::set_faults),
        );
    if role.serves_api() {
        table = table
            .add("/api/login", &["POST"], true, post(shop::login))
            .add("/api/products", &["GET"], true, get(shop::list_products))
            .add("/api/products/{id}", &["GET"], true, get(shop::get_product))
            .add(
                "/api/cart/items",
                &["POST"],
                true,
                post(shop::add_cart_item),
            )
            .add("/api/cart", &["GET"], true, get(shop::get_cart))
            .add("/api/checkout", &["POST"], true, post(shop::checkout))
            .add("/api/orders/{id}", &["GET"], true, get(shop::get_order))
            .add(
                "/api/notifications",
                &["POST"],
                true,
                post(notifications::create),
            )
            .add(
                "/api/notifications/{id}",
                &["GET"],
                true,
                get(notifications::status),
            )
            .add(
                "/app",
                &["GET", "POST"],
                true,
                get(timestamps::list).post(timestamps::create),
            )
            .add("/multivac/data", &["POST"], true, post(multivac::add_data))
            .add("/multivac", &["GET"], true, get(multivac::answer));
    }
    table
}

/// The finished router for `table` over `state`.
pub fn router(table: RouteTable, state: AppState, body_limit: usize) -> Router {
    table
        .router
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .with_state(state)
}

/// Reads every request body (up to the limit) before routing, so a handler or extractor
/// that rejects early or ignores the body never leaves unread bytes on a keep-alive
/// connection (which would make the server close it under a client about to reuse it).
async fn read_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, state.body_limit).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(_) => {
            AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
        }
    }
}

/// Counts the request and applies the request-side faults.
async fn track(
    State(state): State<AppState>,
    matched: MatchedPath,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = state.metrics.route(method.as_str(), matched.as_str());
    let response = if route.faultable {
        state.faults.burn_cpu();
        if state.faults.should_inject_error() {
            // One line per failed request, as a real service logs its 500s: log-based
            // diagnosis (CloudWatch Logs pattern counts) sees the burst.
            tracing::error!(
                method = method.as_str(),
                route = route.route,
                "request failed: injected fault (error_rate)"
            );
            AppError::injected().into_response()
        } else {
            next.run(req).await
        }
    } else {
        next.run(req).await
    };
    route.record(response.status().as_u16(), started.elapsed());
    response
}

async fn not_found(State(state): State<AppState>) -> AppError {
    state.metrics.unmatched().record(404, Duration::ZERO);
    AppError::not_found("no such route")
}

async fn method_not_allowed() -> AppError {
    AppError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}
