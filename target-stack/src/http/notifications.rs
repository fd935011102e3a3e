//! Notifications: accepted into the durable queue (202), delivered later by the e-mail worker.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::extract::{JsonBody, PathParam};
use super::AppState;
use crate::error::AppError;
use crate::store::Queue;

/// A notification, as queued for the e-mail worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Notification {
    fn validate(&self) -> Result<(), AppError> {
        let to = self.to.trim();
        if to.is_empty()
            || to.len() > 320
            || !to.contains('@')
            || to.chars().any(char::is_whitespace)
        {
            return Err(AppError::unprocessable("to must be an e-mail address"));
        }
        if self.subject.len() > 200 {
            return Err(AppError::unprocessable("subject is longer than 200 bytes"));
        }
        if self.body.len() > 16 * 1024 {
            return Err(AppError::unprocessable("body is longer than 16 KiB"));
        }
        Ok(())
    }
}

pub async fn create(
    State(state): State<AppState>,
    JsonBody(n): JsonBody<Notification>,
) -> Result<Response, AppError> {
    n.validate()?;
    let payload = serde_json::to_string(&n)
        .map_err(|e| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let id = state
        .stores
        .queues
        .enqueue(Queue::Notifications, &payload)
        .await?;
    state.wake_notifications.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "queued" })),
    )
        .into_response())
}

pub async fn status(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<Response, AppError> {
    let s = state
        .stores
        .queues
        .status(Queue::Notifications, id)
        .await?
        .ok_or_else(|| AppError::not_found("no such notification"))?;
    Ok(Json(json!({ "id": id, "status": s.status, "attempts": s.attempts })).into_response())
}
