//! MultiVAC: data goes into a queue; the answer appears once enough of it has been learnt.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::extract::FormBody;
use super::AppState;
use crate::error::AppError;
use crate::store::Queue;

pub const INSUFFICIENT: &str = "INSUFFICIENT DATA FOR MEANINGFUL ANSWER";

#[derive(Deserialize)]
pub struct DataForm {
    data: String,
}

pub async fn add_data(
    State(state): State<AppState>,
    FormBody(form): FormBody<DataForm>,
) -> Result<Response, AppError> {
    if form.data.trim().is_empty() {
        return Err(AppError::unprocessable("data is empty"));
    }
    let id = state
        .stores
        .queues
        .enqueue(Queue::Multivac, &form.data)
        .await?;
    state.wake_multivac.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "queued" })),
    )
        .into_response())
}

pub async fn answer(State(state): State<AppState>) -> Result<Response, AppError> {
    let k = state.stores.multivac.knowledge().await?;
    let text = match k.top_word {
        Some((word, n)) if k.items_processed >= state.multivac_threshold => format!(
            "THE ANSWER IS \"{word}\" (SEEN {n} TIMES IN {} ITEMS)",
            k.items_processed
        ),
        _ => INSUFFICIENT.to_owned(),
    };
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
