//! `recsys serve`: the HTTP JSON service.
//!
//! The served model ([`Served`]: model, version, availability mask) sits
//! behind an [`ArcSwap`](arc_swap::ArcSwap): a request takes a snapshot
//! with one atomic load and never waits on a reload; a reload loads and
//! checks the new file off the request path and swaps it in whole. A model
//! that fails to load is refused and logged, and the old one keeps serving.
//!
//! Limits: a concurrency limit that answers 503 with `Retry-After` instead of
//! queueing without bound, a per-request timeout, a body-size limit. Every
//! bad request gets a 4xx with a JSON body `{"error": …}`.
//!
//! `/` serves a small console (`console.html`, embedded at build time):
//! plain HTML and a little JavaScript against the JSON routes. With item
//! titles loaded, every item in an answer also carries its `title`.
//!
//! The parts, each using only those listed before it: [`metrics`];
//! [`state`] (the model holder and hot reload); [`api`] (request and answer
//! types, errors as status codes); [`middleware`] (limit, timeout, metrics
//! per route); [`routes`] (the handlers and [`app`]); [`openapi`] (the
//! OpenAPI document derived from the handlers and types, served at
//! `/openapi.json`).

pub mod api;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod state;

pub use api::ApiError;
pub use routes::app;
pub use state::{load_served, spawn_lag_monitor, spawn_reloaders, AppState, ServeOptions, Served};

use std::sync::Arc;

// The limits of what one request may ask for; docs/security.md says what
// each bounds and which test holds it.

/// Largest `n` a request may ask for, and most items a fold-in may give.
pub const MAX_N: usize = 1000;
/// Largest batch of users in one POST.
pub const MAX_BATCH: usize = 1000;
/// Most items a batch may answer in all (users × n): bounds the answer
/// at a few MB.
pub const MAX_BATCH_ITEMS: usize = 100_000;
/// Most ids in an `exclude` or `only` list.
pub const MAX_LIST: usize = 10_000;
/// Most ids in `PUT /v1/availability`.
pub const MAX_UNAVAILABLE: usize = 1_000_000;
/// Longest request target (path and query string) in bytes; longer is 414.
pub const MAX_URI: usize = 8192;
/// Shortest admin token the command line accepts.
pub const MIN_TOKEN_LEN: usize = 16;

/// The line `run` prints on stderr once bound, followed by the address:
/// with `--addr 127.0.0.1:0` the kernel picks the port, and whoever started
/// the service (a script, a test) reads it from there.
pub const LISTENING: &str = "recsys serve: listening on http://";

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Serves until a shutdown signal; in-flight requests finish first.
pub async fn run(opts: ServeOptions, addr: std::net::SocketAddr) -> crate::Result<()> {
    let state = AppState::new(opts)?;
    spawn_reloaders(Arc::clone(&state));
    spawn_lag_monitor(Arc::clone(&state));
    // A deep accept backlog: a flash sale opens thousands of connections at once.
    let bind = || -> std::io::Result<tokio::net::TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(4096)
    };
    let listener = bind().map_err(|e| crate::Error::Other(format!("binding {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| crate::Error::Other(e.to_string()))?;
    tracing::info!(%local, version = %state.current.load().version, "serving");
    // Plain text whatever RUST_LOG says: the log line may be filtered out
    // or coloured. The socket listens already, so a connection made after
    // this line queues until the server accepts it.
    eprintln!("{LISTENING}{local}");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| crate::Error::Other(format!("server: {e}")))
}

#[cfg(test)]
mod tests;
