//! Extractors whose rejections are JSON [`AppError`]s (axum's own answer in plain text), and
//! the bearer-token user.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::AppError;

/// `axum::Json` with JSON errors (400 syntax, 415 content type, 413 size, 422 data).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| JsonBody(v))
            .map_err(|r| AppError::new(r.status(), r.body_text()))
    }
}

/// `axum::Form` (url-encoded) with JSON errors.
pub struct FormBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|axum::Form(v)| FormBody(v))
            .map_err(|r| AppError::new(r.status(), r.body_text()))
    }
}

/// `axum::extract::Query` with JSON errors.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|r| AppError::new(r.status(), r.body_text()))
    }
}

/// `axum::extract::Path` with JSON errors (a non-numeric id is a 400).
pub struct PathParam<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParam(p.0))
            .map_err(|r| AppError::new(r.status(), r.body_text()))
    }
}

/// The user a valid `Authorization: Bearer <token>` belongs to.
pub struct AuthUser(pub i64);

/// The token in an `Authorization: Bearer …` header, if well-formed.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token =
            bearer(&parts.headers).ok_or_else(|| AppError::unauthorized("missing bearer token"))?;
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::unauthorized("invalid token"));
        }
        if let Some(user) = state.sessions.get(token) {
            return Ok(AuthUser(user));
        }
        match state.stores.shop.session_user(token).await? {
            Some(user) => {
                state.sessions.insert(token, user);
                Ok(AuthUser(user))
            }
            None => Err(AppError::unauthorized("invalid token")),
        }
    }
}
