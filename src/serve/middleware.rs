//! What runs around every request: the concurrency limit, the timeout and
//! the request metrics.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::ApiError;
use super::state::AppState;

/// The metrics label of requests that matched no route: one label for all
/// of them, so stray paths cannot grow the metrics without bound.
pub const UNMATCHED: &str = "other";

/// The route a request matched, as written in `app()` (`/v1/items/{id}`),
/// or [`UNMATCHED`]. The router sets [`MatchedPath`] before the layers of
/// its routes run; the fallback gets none.
pub fn route_label(matched: Option<&MatchedPath>) -> &str {
    matched.map_or(UNMATCHED, MatchedPath::as_str)
}

/// Concurrency limit, timeout and metrics around every request.
pub async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    // Taken before the request moves on; a clone is a reference count.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let resp = match st.limit.clone().try_acquire_owned() {
        Err(_) => {
            st.metrics.shed.fetch_add(1, Ordering::Relaxed);
            let mut r = ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded, retry shortly".into(),
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Ok(permit) => {
            // Scoring is CPU work that runs to completion once started, so
            // without a yield a worker would admit and finish one request at
            // a time and the permits would never run out: the queue would
            // grow unseen in the connections. Yielding once after admission
            // lets every ready request take its permit first, so the permits
            // count the requests waiting for a CPU, and the ones beyond the
            // limit are turned away at once.
            tokio::task::yield_now().await;
            let r = match tokio::time::timeout(st.opts.timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => ApiError(StatusCode::SERVICE_UNAVAILABLE, "request timed out".into())
                    .into_response(),
            };
            drop(permit);
            r
        }
    };
    st.metrics.observe(
        route_label(matched.as_ref()),
        resp.status().as_u16(),
        t0.elapsed().as_secs_f64(),
    );
    resp
}
