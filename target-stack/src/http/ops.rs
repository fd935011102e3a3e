//! Operational endpoints: liveness, readiness, metrics, and the fault admin API.

use axum::extract::{FromRequestParts, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::extract::{bearer, JsonBody};
use super::AppState;
use crate::error::AppError;
use crate::faults::FaultPatch;
use crate::host::HostPressure;
use crate::metrics::{render, ProcessStats, Scrape};
use crate::seed::hashes_equal;

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// 200 when every backend answers a ping and can write (see [`BackendHealth::writes_ok`]);
/// 503 with the reason otherwise.
///
/// [`BackendHealth::writes_ok`]: crate::store::BackendHealth::writes_ok
pub async fn readyz(State(state): State<AppState>) -> Response {
    for backend in &state.stores.health {
        let name = backend.backend_name();
        let trouble = match backend.ping().await {
            Err(e) => Some((format!("{name} unreachable"), e.to_string())),
            Ok(()) => match backend.writes_ok().await {
                Err(why) => Some((format!("{name} cannot write: {why}"), why)),
                Ok(()) => None,
            },
        };
        if let Some((answer, logged)) = trouble {
            tracing::warn!(backend = name, error = %logged, "not ready");
            return AppError::new(StatusCode::SERVICE_UNAVAILABLE, answer).into_response();
        }
    }
    Json(json!({ "status": "ready" })).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let scrape = scrape(&state).await;
    let text = render(&state.metrics, &scrape);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

/// The gauges read at scrape time (queue stats from the stores, unless they are slow: see
/// [`super::queue_stats`]).
pub async fn scrape(state: &AppState) -> Scrape<'_> {
    // Read before the queue stats, which pass the database gate themselves: read after, the
    // gate shows the permit this scrape just released, not the load.
    let db_gate_in_use = state.gate.in_use();
    let db_gate_limit = state.gate.limit();
    let (queues, queue_stats_fresh) = state.queue_stats.read(&state.stores).await;
    Scrape {
        role: state.role.as_str(),
        backend: state
            .stores
            .health
            .first()
            .map_or("none", |h| h.backend_name()),
        pools: state.stores.health.iter().flat_map(|h| h.pools()).collect(),
        db_gate_in_use,
        db_gate_limit,
        db_acquire_wait: state.gate.acquire_wait(),
        db_operation: state.gate.operation(),
        queues,
        queue_stats_fresh,
        faults: state.faults.current(),
        process: ProcessStats::read(state.started_at_unix),
        host: HostPressure::read(),
    }
}

/// Proof of the admin token. Rejects with 404 when no admin token is configured (the
/// endpoint does not exist then), 401 on a missing or wrong one; runs before the body is read.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Some(expected) = state.admin_token.as_deref() else {
            return Err(AppError::not_found("no such route"));
        };
        match bearer(&parts.headers) {
            Some(token) if hashes_equal(token, expected) => Ok(Admin),
            _ => Err(AppError::unauthorized("admin token required")),
        }
    }
}

pub async fn get_faults(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Response, AppError> {
    Ok(Json(state.faults.current()).into_response())
}

pub async fn set_faults(
    State(state): State<AppState>,
    _admin: Admin,
    JsonBody(patch): JsonBody<FaultPatch>,
) -> Result<Response, AppError> {
    let set = state
        .faults
        .apply(&patch)
        .map_err(|e| AppError::unprocessable(e.to_string()))?;
    tracing::info!(faults = ?set, "faults changed");
    Ok(Json(set).into_response())
}
