//! Errors: [`AppError`] is what a handler returns (always a JSON `{"error": …}` body with a
//! 4xx/5xx status); [`StackError`] is what starting or serving the stack returns.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::faults::FaultError;
use crate::store::StoreError;

/// An HTTP error answer.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub message: String,
    /// Extra fields merged into the JSON body (e.g. the product that ran out).
    pub detail: Option<Value>,
}

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppError {
            status,
            message: message.into(),
            detail: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The `error_rate` fault's answer.
    pub fn injected() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected fault: error_rate",
        )
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable");
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        } else {
            tracing::error!(error = %err, "database operation failed");
            AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.detail, &mut body) {
            map.extend(extra);
        }
        (self.status, Json(body)).into_response()
    }
}

/// Why the stack could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("invalid faults: {0}")]
    Faults(#[from] FaultError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}
