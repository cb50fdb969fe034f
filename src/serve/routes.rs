//! The routes and their handlers.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use super::api::{
    id_text, ApiError, Availability, AvailabilityResult, BatchEntry, BatchRequest, BatchResponse,
    GivenItem, ItemInfo, ModelInfo, RecList, RecQuery, SimilarItems, SimilarQuery, UserError,
};
use super::middleware::guard;
use super::state::AppState;
use super::{MAX_BATCH, MAX_N};
use crate::score::{self, foldin};

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn user_recommendations(
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
async fn batch_recommendations(
    State(st): State<Arc<AppState>>,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad(e.body_text()))?;
    let q = req.query.to_query()?;
    let served = st.current.load_full();
    let o = q.options(&served, st.opts.strict)?;
    let titles = st.titles();
    match (req.users, req.items) {
        (Some(users), None) => {
            if users.len() > MAX_BATCH {
                return Err(ApiError::bad(format!(
                    "at most {MAX_BATCH} users per request, got {}",
                    users.len()
                )));
            }
            let users: Vec<String> = users.iter().map(id_text).collect::<Result<_, _>>()?;
            // Large batches are CPU work: off the async workers.
            // Scored together: one matrix product per block of users.
            let results = tokio::task::spawn_blocking(move || {
                let ids: Vec<&str> = users.iter().map(String::as_str).collect();
                score::recommend_many(&served.model, &ids, &o)
                    .into_iter()
                    .zip(&users)
                    .map(|(r, u)| match r {
                        Ok(r) => BatchEntry::List(RecList::new(r, titles.as_deref())),
                        Err(e) => BatchEntry::Error(UserError {
                            error: e.to_string(),
                            user: u.clone(),
                        }),
                    })
                    .collect()
            })
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(Json(BatchResponse { results }).into_response())
        }
        (None, Some(items)) => {
            let mut given = Vec::with_capacity(items.len());
            for it in items {
                given.push(match it {
                    GivenItem::Id(s) => (s, None),
                    GivenItem::Num(n) => (n.to_string(), None),
                    GivenItem::WithValue { item, value } => (id_text(&item)?, value),
                });
            }
            if given.len() > MAX_N {
                return Err(ApiError::bad(format!(
                    "at most {MAX_N} items, got {}",
                    given.len()
                )));
            }
            // Fold-in fails only on what the request gave (no usable items).
            let r = foldin::recommend_items(&served.model, &given, &o)
                .map_err(|e| ApiError::bad(e.to_string()))?;
            Ok(Json(RecList::new(r, titles.as_deref())).into_response())
        }
        _ => Err(ApiError::bad(
            "give exactly one of `users` (a list of user ids) or `items` (a new user's items)",
        )),
    }
}

async fn similar_items(
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

fn authorized(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &st.opts.admin_token else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "admin routes are off (start with --admin-token)".into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time comparison: the token must not leak through timing.
    let ok = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".into(),
        ))
    }
}

async fn put_availability(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<Availability>, JsonRejection>,
) -> ApiResult<AvailabilityResult> {
    authorized(&st, &headers)?;
    let Json(a) = body.map_err(|e| ApiError::bad(e.body_text()))?;
    let ids: Vec<String> = a
        .unavailable
        .iter()
        .map(id_text)
        .collect::<Result<_, _>>()?;
    let (unavailable, unknown_ids) = st.set_unavailable(ids)?;
    Ok(Json(AvailabilityResult {
        unavailable,
        unknown_ids,
    }))
}

async fn model_info(State(st): State<Arc<AppState>>) -> ApiResult<ModelInfo> {
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
async fn item_info(
    State(st): State<Arc<AppState>>,
    UrlPath(item): UrlPath<String>,
) -> ApiResult<ItemInfo> {
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
async fn console() -> Html<&'static str> {
    Html(include_str!("console.html"))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.current.load().model.n_items() > 0 {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no model").into_response()
    }
}

async fn metrics_text(State(st): State<Arc<AppState>>) -> Response {
    let s = st.current.load();
    let body = st
        .metrics
        .render(&s.version, &s.model.meta().data.fingerprint);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
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
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), guard))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
