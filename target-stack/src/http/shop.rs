//! The shop: login, catalogue (cached), cart, checkout, orders.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::extract::{AuthUser, JsonBody, PathParam, QueryParams};
use super::{json_bytes, AppState, CatalogueKey};
use crate::error::AppError;
use crate::seed::{hashes_equal, password_hash, random_hex128};
use crate::store::{AddToCart, CheckoutOutcome, Order};

pub const PAGE_SIZE: u32 = 20;
const MAX_PAGE: u32 = 100_000;
const MAX_QUERY_LEN: usize = 100;
const MAX_QTY: i64 = 100;

#[derive(Deserialize)]
pub struct LoginRequest {
    email: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Response, AppError> {
    let bad = || AppError::unauthorized("invalid email or password");
    if req.email.len() > 320 || req.password.len() > 1024 {
        return Err(bad());
    }
    let creds = state
        .stores
        .shop
        .user_credentials(&req.email)
        .await?
        .ok_or_else(bad)?;
    if !hashes_equal(
        &password_hash(&creds.salt, &req.password),
        &creds.password_hash,
    ) {
        return Err(bad());
    }
    let token = random_hex128();
    state.stores.shop.create_session(&token, creds.id).await?;
    state.sessions.insert(&token, creds.id);
    Ok(Json(json!({ "token": token, "user_id": creds.id })).into_response())
}

#[derive(Deserialize)]
pub struct ProductQuery {
    page: Option<u32>,
    q: Option<String>,
}

pub async fn list_products(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ProductQuery>,
) -> Result<Response, AppError> {
    let page = query.page.unwrap_or(1);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(AppError::unprocessable(format!(
            "page must be between 1 and {MAX_PAGE}"
        )));
    }
    let q = query
        .q
        .map(|q| q.trim().to_owned())
        .filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.len() > MAX_QUERY_LEN) {
        return Err(AppError::unprocessable(format!(
            "q is longer than {MAX_QUERY_LEN} bytes"
        )));
    }
    let key = CatalogueKey::Page(page, q);
    if let Some(body) = state.catalogue.get(&key).await {
        return Ok(json_bytes(StatusCode::OK, body));
    }
    let CatalogueKey::Page(_, q) = &key else {
        unreachable!("built above")
    };
    let read_started = Instant::now();
    let items = state
        .stores
        .shop
        .list_products(page, PAGE_SIZE, q.as_deref())
        .await?;
    let next_page = (items.len() as u32 == PAGE_SIZE).then_some(page + 1);
    let body = Bytes::from(
        serde_json::to_vec(
            &json!({ "page": page, "per_page": PAGE_SIZE, "next_page": next_page, "items": items }),
        )
        .map_err(|e| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    );
    state.catalogue.put(&key, body.clone(), read_started).await;
    Ok(json_bytes(StatusCode::OK, body))
}

pub async fn get_product(
    State(state): State<AppState>,
    PathParam(id): PathParam<i64>,
) -> Result<Response, AppError> {
    let key = CatalogueKey::Product(id);
    if let Some(body) = state.catalogue.get(&key).await {
        return Ok(json_bytes(StatusCode::OK, body));
    }
    let read_started = Instant::now();
    let product = state
        .stores
        .shop
        .product(id)
        .await?
        .ok_or_else(|| AppError::not_found("no such product"))?;
    let body = Bytes::from(
        serde_json::to_vec(&product)
            .map_err(|e| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
    );
    state.catalogue.put(&key, body.clone(), read_started).await;
    Ok(json_bytes(StatusCode::OK, body))
}

#[derive(Deserialize)]
pub struct AddItem {
    product_id: i64,
    qty: i64,
}

pub async fn add_cart_item(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(item): JsonBody<AddItem>,
) -> Result<Response, AppError> {
    if !(1..=MAX_QTY).contains(&item.qty) {
        return Err(AppError::unprocessable(format!(
            "qty must be between 1 and {MAX_QTY}"
        )));
    }
    match state
        .stores
        .shop
        .add_to_cart(user, item.product_id, item.qty)
        .await?
    {
        AddToCart::Added => Ok((
            StatusCode::CREATED,
            Json(json!({ "product_id": item.product_id, "qty": item.qty })),
        )
            .into_response()),
        AddToCart::UnknownProduct => Err(AppError::not_found("no such product")),
    }
}

pub async fn get_cart(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Response, AppError> {
    let items = state.stores.shop.cart(user).await?;
    let total_cents: i64 = items.iter().map(|l| l.qty * l.price_cents).sum();
    Ok(Json(json!({ "items": items, "total_cents": total_cents })).into_response())
}

fn order_json(order: &Order) -> serde_json::Value {
    json!({
        "order_id": order.order_id,
        "total": order.total_cents as f64 / 100.0,
        "total_cents": order.total_cents,
        "created_at_ms": order.created_at_ms,
        "items": order.items,
    })
}

pub async fn checkout(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Response, AppError> {
    // The stock changed (placed) or was short of what the client saw (refused): forget the
    // cached product answers before answering, so the client's next read is fresh.
    match state.stores.shop.checkout(user).await? {
        CheckoutOutcome::Placed(order) => {
            let ids: Vec<i64> = order.items.iter().map(|l| l.product_id).collect();
            state.catalogue.invalidate_products(&ids).await;
            Ok((StatusCode::CREATED, Json(order_json(&order))).into_response())
        }
        CheckoutOutcome::EmptyCart => Err(AppError::unprocessable("cart is empty")),
        CheckoutOutcome::OutOfStock { product_id } => {
            state.catalogue.invalidate_products(&[product_id]).await;
            Err(AppError::new(StatusCode::CONFLICT, "insufficient stock")
                .with_detail(json!({ "product_id": product_id })))
        }
    }
}

pub async fn get_order(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    PathParam(id): PathParam<i64>,
) -> Result<Response, AppError> {
    let order = state
        .stores
        .shop
        .order(user, id)
        .await?
        .ok_or_else(|| AppError::not_found("no such order"))?;
    Ok(Json(order_json(&order)).into_response())
}
