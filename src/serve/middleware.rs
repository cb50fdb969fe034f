//! What runs around every request: the limit on the request target's
//! length, the concurrency limit, the timeout, JSON bodies for the 4xx
//! axum makes itself, and the request metrics.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::ApiError;
use super::state::AppState;
use super::MAX_URI;

/// The metrics label of requests that matched no route: one label for all
/// of them, so stray paths cannot grow the metrics without bound.
pub const UNMATCHED: &str = "other";

/// The route a request matched, as written in `app()` (`/v1/items/{id}`),
/// or [`UNMATCHED`]. The router sets [`MatchedPath`] before the layers of
/// its routes run; the fallback gets none.
pub fn route_label(matched: Option<&MatchedPath>) -> &str {
    matched.map_or(UNMATCHED, MatchedPath::as_str)
}

/// A 503 that tells the client when to come back.
fn unavailable(msg: &str) -> Response {
    let mut r = ApiError(StatusCode::SERVICE_UNAVAILABLE, msg.into()).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Longest error text kept when a plain 4xx is turned into JSON.
const PLAIN_ERROR_MAX: usize = 4096;

/// A 4xx that axum made itself (405 for a known path with another method,
/// a rejection no handler saw) comes with a text or empty body; every 4xx
/// of this service carries the JSON error body, so it is rewritten, its
/// headers (`Allow`) kept.
async fn json_4xx(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !resp.status().is_client_error() || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, PLAIN_ERROR_MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let msg = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_lowercase()
    } else {
        text
    };
    let json = ApiError(parts.status, msg).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, json.into_body())
}

/// URI limit, concurrency limit, timeout and metrics around every request.
pub async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    // Taken before the request moves on; a clone is a reference count.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let resp = if target > MAX_URI {
        ApiError(
            StatusCode::URI_TOO_LONG,
            format!("the path and query string must be at most {MAX_URI} bytes, got {target}"),
        )
        .into_response()
    } else {
        match st.limit.clone().try_acquire_owned() {
            Err(_) => {
                st.metrics.shed.fetch_add(1, Ordering::Relaxed);
                unavailable("overloaded, retry shortly")
            }
            Ok(permit) => {
                // Scoring is CPU work that runs to completion once started, so
                // without a yield a worker would admit and finish one request at
                // a time and the permits would never run out: the queue would
                // grow unseen in the connections. Yielding once after admission
                // lets every ready request take its permit first, so the permits
                // count the requests waiting for a CPU, and the ones beyond the
                // limit are turned away at once. It is done only while ready
                // tasks wait long for a worker (`state::spawn_lag_monitor`).
                if st.lagging.load(Ordering::Relaxed) {
                    tokio::task::yield_now().await;
                }
                let r = match tokio::time::timeout(st.opts.timeout, next.run(req)).await {
                    Ok(r) => json_4xx(r).await,
                    Err(_) => unavailable("request timed out"),
                };
                drop(permit);
                r
            }
        }
    };
    // A 503 from anywhere (a handler's own deadline too) says when to retry.
    let mut resp = resp;
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE
        && !resp.headers().contains_key(header::RETRY_AFTER)
    {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    st.metrics.observe(
        route_label(matched.as_ref()),
        resp.status().as_u16(),
        t0.elapsed().as_secs_f64(),
    );
    resp
}
