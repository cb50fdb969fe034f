//! The routes and their handlers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[allow(unused_imports)] // ErrorBody: named by the OpenAPI attributes only
use super::api::{
    ApiError, Availability, AvailabilityResult, BatchAnswer, BatchEntry, BatchRequest,
    BatchResponse, ErrorBody, ItemInfo, ModelInfo, RecList, RecQuery, SimilarItems, SimilarQuery,
    UserError,
};
use super::middleware::guard;
use super::state::AppState;
use super::MAX_BATCH_ITEMS;
use crate::score::{self, foldin};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A user's recommendations.
#[utoipa::path(
    get,
    path = "/v1/users/{id}/recommendations",
    tag = "recommendations",
    params(("id" = String, Path, description = "a user id", min_length = 1, example = "196"), RecQuery),
    responses(
        (status = 200, description = "the user's list; popular items for an unknown user", body = RecList),
        (status = 400, description = "a bad parameter (n out of range, an unknown field, a list too long)", body = ErrorBody),
        (status = 404, description = "unknown user with strict", body = ErrorBody),
    )
)]
pub(super) async fn user_recommendations(
    State(st): State<Arc<AppState>>,
    user: Result<UrlPath<String>, PathRejection>,
    q: Result<Query<RecQuery>, QueryRejection>,
) -> ApiResult<RecList> {
    let UrlPath(user) = user.map_err(|e| ApiError::bad(e.body_text()))?;
    let Query(q) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    let served = st.current.load();
    let o = q.options(&served, st.opts.strict)?;
    let r = score::recommend(&served.model, &user, &o)?;
    Ok(Json(RecList::new(r, st.titles().as_deref())))
}

/// `{"users": …}` (known users, one list each) or `{"items": …}` (a new
/// user, folded in).
#[utoipa::path(
    post,
    path = "/v1/recommendations",
    tag = "recommendations",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "`results` for `users`; one list for `items`", body = BatchAnswer),
        (status = 400, description = "a bad body: not JSON, both or neither of users and items, a list too long, users × n over 100000, no usable item to fold in", body = ErrorBody),
        (status = 413, description = "a body over --body-limit", body = ErrorBody),
        (status = 415, description = "no `Content-Type: application/json`", body = ErrorBody),
    )
)]
pub(super) async fn batch_recommendations(
    State(st): State<Arc<AppState>>,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> ApiResult<BatchAnswer> {
    let Json(req) = body.map_err(ApiError::body)?;
    let q = req.to_query()?;
    let served = st.current.load_full();
    let o = q.options(&served, st.opts.strict)?;
    let titles = st.titles();
    match (req.users, req.items) {
        (Some(users), None) => {
            // At most MAX_BATCH users: the body's parser stops at more.
            let users = BatchRequest::user_ids(users);
            if users.len() * o.n > MAX_BATCH_ITEMS {
                return Err(ApiError::bad(format!(
                    "users × n must be at most {MAX_BATCH_ITEMS}, got {} × {}",
                    users.len(),
                    o.n
                )));
            }
            // Large batches are CPU work: off the async workers, and scored
            // together, one matrix product per block of users. The guard's
            // timeout drops the request but cannot stop this thread; the
            // batch is bounded (users × n) and an answer past the deadline
            // is dropped here too.
            let deadline = Instant::now() + st.opts.timeout;
            let results = tokio::task::spawn_blocking(move || {
                let ids: Vec<&str> = users.iter().map(String::as_str).collect();
                let out: Vec<BatchEntry> = score::recommend_many(&served.model, &ids, &o)
                    .into_iter()
                    .zip(&users)
                    .map(|(r, u)| match r {
                        Ok(r) => BatchEntry::List(RecList::new(r, titles.as_deref())),
                        Err(e) => BatchEntry::Error(UserError {
                            error: e.to_string(),
                            user: u.clone(),
                        }),
                    })
                    .collect();
                (Instant::now() <= deadline).then_some(out)
            })
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .ok_or_else(|| ApiError(StatusCode::SERVICE_UNAVAILABLE, "request timed out".into()))?;
            Ok(Json(BatchAnswer::Users(BatchResponse { results })))
        }
        (None, Some(items)) => {
            // At most MAX_N items, as for users.
            let given: Vec<(String, Option<f32>)> =
                items.0.into_iter().map(|g| (g.item, g.value)).collect();
            // Fold-in fails only on what the request gave (no usable items).
            let r = foldin::recommend_items(&served.model, &given, &o)
                .map_err(|e| ApiError::bad(e.to_string()))?;
            Ok(Json(BatchAnswer::FoldIn(RecList::new(
                r,
                titles.as_deref(),
            ))))
        }
        _ => Err(ApiError::bad(
            "give exactly one of `users` (a list of user ids) or `items` (a new user's items)",
        )),
    }
}

/// The items most similar to an item (cosine of the item factors).
#[utoipa::path(
    get,
    path = "/v1/items/{id}/similar",
    tag = "items",
    params(("id" = String, Path, description = "an item id", min_length = 1, example = "50"), SimilarQuery),
    responses(
        (status = 200, description = "the most similar items", body = SimilarItems),
        (status = 400, description = "a bad parameter", body = ErrorBody),
        (status = 404, description = "unknown item", body = ErrorBody),
    )
)]
pub(super) async fn similar_items(
    State(st): State<Arc<AppState>>,
    item: Result<UrlPath<String>, PathRejection>,
    q: Result<Query<SimilarQuery>, QueryRejection>,
) -> ApiResult<SimilarItems> {
    let UrlPath(item) = item.map_err(|e| ApiError::bad(e.body_text()))?;
    let Query(q) = q.map_err(|e| ApiError::bad(e.body_text()))?;
    let served = st.current.load();
    let rq = RecQuery {
        n: q.n,
        exclude: q.exclude,
        only: q.only,
        ..Default::default()
    };
    let o = rq.options(&served, false)?;
    // The error keeps its cause: an unknown item is 404, anything else
    // says what it is (see `api::status_of`).
    let picks = score::similar::similar_items(&served.model, &item, o.n, &o.filters)?;
    let items = score::to_scored(&served.model, &picks, &[], 0);
    Ok(Json(SimilarItems::new(item, items, st.titles().as_deref())))
}

/// Whether the request carries the admin token. The digests of both are
/// compared in constant time, so neither the token's bytes nor its length
/// show in how long a refusal takes.
fn authorized(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &st.opts.admin_token else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "admin routes are off (start with --admin-token)".into(),
        ));
    };
    // The scheme's name is case-insensitive (RFC 9110 §11.1).
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let ok = given.is_some_and(|g| tokens_match(g, token));
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".into(),
        ))
    }
}

/// Constant-time equality of two tokens of any lengths.
pub fn tokens_match(given: &str, token: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(token.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// Replaces the set of items never returned (admin).
#[utoipa::path(
    put,
    path = "/v1/availability",
    tag = "admin",
    request_body = Availability,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the new set is in force", body = AvailabilityResult),
        (status = 400, description = "a bad body", body = ErrorBody),
        (status = 401, description = "missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "admin routes are off (no --admin-token)", body = ErrorBody),
        (status = 413, description = "a body over --body-limit", body = ErrorBody),
        (status = 415, description = "no `Content-Type: application/json`", body = ErrorBody),
    )
)]
pub(super) async fn put_availability(
    State(st): State<Arc<AppState>>,
    req: Request,
) -> ApiResult<AvailabilityResult> {
    // The token first: without it the body is never read.
    authorized(&st, req.headers())?;
    let Json(a) = Json::<Availability>::from_request(req, &())
        .await
        .map_err(ApiError::body)?;
    let ids = a.ids();
    let (unavailable, unknown_ids) = st.set_unavailable(ids)?;
    Ok(Json(AvailabilityResult {
        unavailable,
        unknown_ids,
    }))
}

/// The model being served: file, version, when loaded, its metadata.
#[utoipa::path(
    get,
    path = "/v1/model",
    tag = "service",
    responses((status = 200, description = "the served model", body = ModelInfo))
)]
pub(super) async fn model_info(State(st): State<Arc<AppState>>) -> ApiResult<ModelInfo> {
    let s = st.current.load();
    Ok(Json(ModelInfo {
        file: s.file.display().to_string(),
        loaded_at: s.loaded_at.clone(),
        meta: serde_json::to_value(s.model.meta())
            .map_err(|e| ApiError::internal(e.to_string()))?,
        version: s.version.clone(),
    }))
}

/// One item: its title (when titles are loaded) and training popularity.
#[utoipa::path(
    get,
    path = "/v1/items/{id}",
    tag = "items",
    params(("id" = String, Path, description = "an item id", min_length = 1, example = "50")),
    responses(
        (status = 200, description = "the item", body = ItemInfo),
        (status = 400, description = "a path that does not decode", body = ErrorBody),
        (status = 404, description = "unknown item", body = ErrorBody),
    )
)]
pub(super) async fn item_info(
    State(st): State<Arc<AppState>>,
    item: Result<UrlPath<String>, PathRejection>,
) -> ApiResult<ItemInfo> {
    let UrlPath(item) = item.map_err(|e| ApiError::bad(e.body_text()))?;
    let served = st.current.load();
    let m = &served.model;
    let Some(i) = m.item_ids().get(&item) else {
        return Err(crate::Error::UnknownItem(item).into());
    };
    let popularity = m.item_popularity()[i as usize];
    Ok(Json(ItemInfo::new(
        item,
        popularity,
        st.titles().as_deref(),
    )))
}

/// The console: one static page, embedded in the binary.
#[utoipa::path(
    get,
    path = "/",
    tag = "service",
    responses((status = 200, description = "the console", content_type = "text/html", body = String))
)]
pub(super) async fn console() -> Html<&'static str> {
    Html(include_str!("console.html"))
}

/// Liveness.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String))
)]
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: a model with items is loaded.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    responses((status = 200, description = "`ready`", content_type = "text/plain", body = String))
)]
pub(super) async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.current.load().model.n_items() > 0 {
        (StatusCode::OK, "ready").into_response()
    } else {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "no model".into()).into_response()
    }
}

/// Prometheus text: requests by route and status, latency, model version,
/// reloads, shed requests.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String))
)]
pub(super) async fn metrics_text(State(st): State<Arc<AppState>>) -> Response {
    let s = st.current.load();
    let body = st
        .metrics
        .render(&s.version, &s.model.meta().data.fingerprint);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses((status = 200, description = "the OpenAPI 3 document of the service", body = Object))
)]
pub(super) async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        super::openapi::json(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such route".into())
}

/// The service's routes on `state`.
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.opts.body_limit;
    Router::new()
        .route("/v1/users/{id}/recommendations", get(user_recommendations))
        .route("/v1/recommendations", post(batch_recommendations))
        .route("/v1/items/{id}/similar", get(similar_items))
        .route("/v1/items/{id}", get(item_info))
        .route("/", get(console))
        .route("/v1/availability", put(put_availability))
        .route("/v1/model", get(model_info))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
