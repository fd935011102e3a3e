//! The timestamp writer: `POST /app` stores now, the client address and a request id.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::error::AppError;
use crate::seed::random_hex128;
use crate::store::{now_ms, TimestampRecord};

const RECENT: u32 = 50;

fn record_json(r: &TimestampRecord) -> serde_json::Value {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.timestamp_ms.max(0) as u64);
    json!({
        "id": r.id,
        "request_id": r.request_id,
        "client_addr": r.client_addr,
        "timestamp": humantime::format_rfc3339_millis(at).to_string(),
        "timestamp_ms": r.timestamp_ms,
    })
}

/// The caller's `X-Request-Id` if it is sane, otherwise a fresh one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(random_hex128, str::to_owned)
}

/// The first `X-Forwarded-For` hop (behind a load balancer), else the peer address.
fn client_addr(req: &Request) -> String {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 64);
    match forwarded {
        Some(f) => f.to_owned(),
        None => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
    }
}

pub async fn create(State(state): State<AppState>, req: Request) -> Result<Response, AppError> {
    let rid = request_id(&req);
    let addr = client_addr(&req);
    let record = state
        .stores
        .timestamps
        .insert(&rid, &addr, now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(record_json(&record))).into_response())
}

pub async fn list(State(state): State<AppState>) -> Result<Response, AppError> {
    let records = state.stores.timestamps.recent(RECENT).await?;
    let items: Vec<_> = records.iter().map(record_json).collect();
    Ok(Json(json!({ "items": items })).into_response())
}
