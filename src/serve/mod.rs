//! `recsys serve`: the HTTP JSON service.
//!
//! The served model ([`Served`]: model, version, availability mask) sits
//! behind an [`ArcSwap`]: a request takes a snapshot with one atomic load
//! and never waits on a reload; a reload loads and checks the new file off
//! the request path and swaps it in whole. A model that fails to load is
//! refused and logged, and the old one keeps serving.
//!
//! Limits: a concurrency limit that answers 503 with `Retry-After` instead of
//! queueing without bound, a per-request timeout, a body-size limit. Every
//! bad request gets a 4xx with a JSON body `{"error": …}`.
//!
//! `/` serves a small console (`console.html`, embedded at build time):
//! plain HTML and a little JavaScript against the JSON routes. With item
//! titles loaded, every item in an answer also carries its `title`.

pub mod metrics;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::model::{resolve_model_path, Model};
use crate::score::{self, foldin, Fallback, Filters, ItemList, RecommendOptions};
use metrics::Metrics;

/// Largest `n` a request may ask for.
pub const MAX_N: usize = 1000;
/// Largest batch of users in one POST.
pub const MAX_BATCH: usize = 1000;

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// A model file, or a registry pointer such as `models/current`.
    pub model_path: PathBuf,
    /// Bearer token for the admin routes; `None` turns them off.
    pub admin_token: Option<String>,
    /// Requests in flight at most; beyond, 503 with `Retry-After`.
    pub max_concurrency: usize,
    pub timeout: Duration,
    pub body_limit: usize,
    /// How often the model path is checked for a new model.
    pub watch_interval: Duration,
    /// Unknown users get 404 instead of the popularity fallback.
    pub strict: bool,
    /// Item id → title; answers then carry a `title` per item.
    pub titles: Option<Arc<HashMap<String, String>>>,
    /// Where `titles` came from: read again with every new model, so items
    /// a retrain adds get their titles without a restart.
    pub titles_path: Option<PathBuf>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            model_path: PathBuf::from("models/current"),
            admin_token: None,
            max_concurrency: 4096,
            timeout: Duration::from_secs(2),
            body_limit: 1 << 20,
            watch_interval: Duration::from_millis(500),
            strict: false,
            titles: None,
            titles_path: None,
        }
    }
}

/// The model being served and what depends on it.
pub struct Served {
    pub model: Arc<Model>,
    /// The model file's name (the registry names files by time and fingerprint).
    pub version: String,
    pub file: PathBuf,
    pub loaded_at: String,
    /// Unavailable items as a mask over this model's catalogue.
    pub blocked: Option<Arc<Vec<bool>>>,
    /// What identifies the files on disk, to notice a replacement.
    stamp: Stamp,
}

/// (path, length, modification time, inode) of the pointer and the model file.
type Stamp = Vec<(PathBuf, u64, Option<SystemTime>, u64)>;

fn stamp_of(paths: &[&Path]) -> Stamp {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok();
            #[cfg(unix)]
            let ino = m.as_ref().map_or(0, std::os::unix::fs::MetadataExt::ino);
            #[cfg(not(unix))]
            let ino = 0;
            (
                p.to_path_buf(),
                m.as_ref().map_or(0, |m| m.len()),
                m.as_ref().and_then(|m| m.modified().ok()),
                ino,
            )
        })
        .collect()
}

/// Shared state of all requests.
pub struct AppState {
    pub current: ArcSwap<Served>,
    /// The unavailable item ids, as set by `PUT /v1/availability`; kept as
    /// ids so a new model gets its own mask.
    unavailable: Mutex<Vec<String>>,
    pub metrics: Metrics,
    opts: ServeOptions,
    limit: Arc<Semaphore>,
    /// Serializes reloads (the watcher, SIGHUP, tests).
    reloading: tokio::sync::Mutex<()>,
    /// Item titles, replaced when a new model is swapped in.
    titles: arc_swap::ArcSwapOption<HashMap<String, String>>,
}

fn blocked_mask(model: &Model, unavailable: &[String]) -> Option<Arc<Vec<bool>>> {
    if unavailable.is_empty() {
        return None;
    }
    let mut f = Filters::default();
    f.exclude_items(model, unavailable.iter().map(String::as_str));
    f.blocked
}

/// Loads and checks the model a path designates.
pub fn load_served(path: &Path, unavailable: &[String]) -> crate::Result<Served> {
    let file = resolve_model_path(path)?;
    let stamp = stamp_of(&[path, &file]);
    let model = Model::load(&file)?;
    let version = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let blocked = blocked_mask(&model, unavailable);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(Served {
        model: Arc::new(model),
        version,
        file,
        loaded_at: crate::model::rfc3339(now),
        blocked,
        stamp,
    })
}

impl AppState {
    pub fn new(opts: ServeOptions) -> crate::Result<Arc<AppState>> {
        let served = load_served(&opts.model_path, &[])?;
        Ok(Arc::new(AppState {
            current: ArcSwap::from_pointee(served),
            titles: arc_swap::ArcSwapOption::new(opts.titles.clone()),
            unavailable: Mutex::new(Vec::new()),
            metrics: Metrics::default(),
            limit: Arc::new(Semaphore::new(opts.max_concurrency.max(1))),
            opts,
            reloading: tokio::sync::Mutex::new(()),
        }))
    }

    /// Reloads if the files changed (or always, with `force`). Returns
    /// whether a new model was swapped in; a model that fails to load is
    /// refused (the error is returned and the old model keeps serving).
    pub async fn reload(self: &Arc<Self>, force: bool) -> crate::Result<bool> {
        let _guard = self.reloading.lock().await;
        let path = self.opts.model_path.clone();
        let file = resolve_model_path(&path).unwrap_or_else(|_| path.clone());
        if !force && stamp_of(&[&path, &file]) == self.current.load().stamp {
            return Ok(false);
        }
        let unavailable = self
            .unavailable
            .lock()
            .map(|u| u.clone())
            .unwrap_or_default();
        let loaded = tokio::task::spawn_blocking(move || load_served(&path, &unavailable))
            .await
            .map_err(|e| crate::Error::Other(format!("reload task failed: {e}")))?;
        match loaded {
            Ok(s) => {
                tracing::info!(version = %s.version, "model loaded and swapped in");
                self.current.store(Arc::new(s));
                self.reload_titles().await;
                self.metrics.reloads.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(e) => {
                self.metrics.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "new model refused; the current one keeps serving");
                Err(e)
            }
        }
    }
}

/// A JSON error response.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

impl AppState {
    /// Reads the titles file again; a file that no longer reads leaves
    /// the titles as they were (logged), like a model that fails to load.
    async fn reload_titles(&self) {
        let Some(p) = self.opts.titles_path.clone() else {
            return;
        };
        let read = tokio::task::spawn_blocking(move || crate::data::titles::read_titles(&p)).await;
        match read {
            Ok(Ok(t)) => self.titles.store(Some(Arc::new(t))),
            Ok(Err(e)) => tracing::error!(error = %e, "titles not reloaded; the old ones stay"),
            Err(e) => tracing::error!(error = %e, "titles reload task failed"),
        }
    }

    /// Adds `title` to each entry of `v["items"]` (and to `v` itself when it
    /// names an `item`), when titles are loaded; answers are unchanged otherwise.
    fn with_titles(&self, mut v: Value) -> Value {
        let titles = self.titles.load_full();
        let Some(t) = titles.as_deref() else {
            return v;
        };
        if let Some(title) = v.get("item").and_then(Value::as_str).and_then(|i| t.get(i)) {
            v["title"] = title.clone().into();
        }
        if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
            for it in items {
                if let Some(title) = it
                    .get("item")
                    .and_then(Value::as_str)
                    .and_then(|i| t.get(i))
                {
                    it["title"] = title.clone().into();
                }
            }
        }
        v
    }
}

/// Filters and options accepted by the recommendation routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecQuery {
    pub n: Option<usize>,
    pub exclude_seen: Option<bool>,
    /// Comma-separated item ids never to return.
    pub exclude: Option<String>,
    /// Comma-separated item ids to choose from (an allow list).
    pub only: Option<String>,
    pub min_history: Option<usize>,
    /// `recent` or `overall`.
    pub fallback: Option<String>,
    pub explain: Option<bool>,
    pub strict: Option<bool>,
}

fn split_ids(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

impl RecQuery {
    fn options(&self, served: &Served, strict_default: bool) -> Result<RecommendOptions, ApiError> {
        let n = self.n.unwrap_or(10);
        if n == 0 || n > MAX_N {
            return Err(bad(format!("n must be in 1..={MAX_N}, got {n}")));
        }
        let fallback = match self.fallback.as_deref() {
            None | Some("recent") => Fallback::Recent,
            Some("overall") => Fallback::Overall,
            Some(o) => {
                return Err(bad(format!(
                    "fallback must be recent or overall, got {o:?}"
                )))
            }
        };
        let mut filters = Filters {
            exclude_seen: self.exclude_seen.unwrap_or(true),
            blocked: served.blocked.clone(),
        };
        let m = &served.model;
        let exclude = split_ids(&self.exclude);
        if !exclude.is_empty() {
            filters.exclude_items(m, exclude.iter().map(String::as_str));
        }
        if self.only.is_some() {
            let only = split_ids(&self.only);
            filters.only(
                m,
                &ItemList::resolve(m, only.iter().map(String::as_str)).items,
            );
        }
        Ok(RecommendOptions {
            n,
            filters,
            strict: self.strict.unwrap_or(strict_default),
            min_history: self.min_history.unwrap_or(0),
            fallback,
            explain: if self.explain.unwrap_or(false) { 3 } else { 0 },
        })
    }
}

type AppResult = Result<Json<Value>, ApiError>;

async fn user_recommendations(
    State(st): State<Arc<AppState>>,
    user: Result<UrlPath<String>, PathRejection>,
    q: Result<Query<RecQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let UrlPath(user) = user.map_err(|e| bad(e.body_text()))?;
    let Query(q) = q.map_err(|e| bad(e.body_text()))?;
    let served = st.current.load();
    let o = q.options(&served, st.opts.strict)?;
    match score::recommend(&served.model, &user, &o) {
        Ok(r) => {
            Ok(Json(st.with_titles(serde_json::to_value(r).unwrap_or_default())).into_response())
        }
        Err(crate::Error::UnknownUser(u)) => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown user {u:?}"),
        )),
        Err(e) => Err(ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// An item given for fold-in: an id, or an id with a value.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum GivenItem {
    Id(String),
    Num(i64),
    WithValue { item: Value, value: Option<f32> },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Known users: one list each.
    pub users: Option<Vec<Value>>,
    /// An anonymous user given by items (fold-in).
    pub items: Option<Vec<GivenItem>>,
    #[serde(flatten)]
    pub query: BatchQuery,
}

/// The options of [`RecQuery`] in a JSON body (lists as arrays).
#[derive(Debug, Default, Deserialize)]
pub struct BatchQuery {
    pub n: Option<usize>,
    pub exclude_seen: Option<bool>,
    pub exclude: Option<Vec<Value>>,
    pub only: Option<Vec<Value>>,
    pub min_history: Option<usize>,
    pub fallback: Option<String>,
    pub explain: Option<bool>,
    pub strict: Option<bool>,
}

fn id_text(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(bad(format!("ids must be strings or integers, got {other}"))),
    }
}

fn id_list(v: &Option<Vec<Value>>) -> Result<Option<String>, ApiError> {
    v.as_ref()
        .map(|l| {
            l.iter()
                .map(id_text)
                .collect::<Result<Vec<_>, _>>()
                .map(|ids| ids.join(","))
        })
        .transpose()
}

async fn batch_recommendations(
    State(st): State<Arc<AppState>>,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> AppResult {
    let Json(req) = body.map_err(|e| bad(e.body_text()))?;
    let q = RecQuery {
        n: req.query.n,
        exclude_seen: req.query.exclude_seen,
        exclude: id_list(&req.query.exclude)?,
        only: id_list(&req.query.only)?,
        min_history: req.query.min_history,
        fallback: req.query.fallback.clone(),
        explain: req.query.explain,
        strict: req.query.strict,
    };
    let served = st.current.load_full();
    let o = q.options(&served, st.opts.strict)?;
    match (req.users, req.items) {
        (Some(users), None) => {
            if users.len() > MAX_BATCH {
                return Err(bad(format!(
                    "at most {MAX_BATCH} users per request, got {}",
                    users.len()
                )));
            }
            let users: Vec<String> = users.iter().map(id_text).collect::<Result<_, _>>()?;
            // Large batches are CPU work: off the async workers.
            let titled = Arc::clone(&st);
            let results = tokio::task::spawn_blocking(move || {
                users
                    .iter()
                    .map(|u| match score::recommend(&served.model, u, &o) {
                        Ok(r) => titled.with_titles(serde_json::to_value(r).unwrap_or_default()),
                        Err(e) => json!({ "user": u, "error": e.to_string() }),
                    })
                    .collect::<Vec<Value>>()
            })
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            Ok(Json(json!({ "results": results })))
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
                return Err(bad(format!("at most {MAX_N} items, got {}", given.len())));
            }
            let r = foldin::recommend_items(&served.model, &given, &o)
                .map_err(|e| bad(e.to_string()))?;
            Ok(Json(
                st.with_titles(serde_json::to_value(r).unwrap_or_default()),
            ))
        }
        _ => Err(bad(
            "give exactly one of `users` (a list of user ids) or `items` (a new user's items)",
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarQuery {
    pub n: Option<usize>,
    pub exclude: Option<String>,
    pub only: Option<String>,
}

async fn similar_items(
    State(st): State<Arc<AppState>>,
    item: Result<UrlPath<String>, PathRejection>,
    q: Result<Query<SimilarQuery>, QueryRejection>,
) -> AppResult {
    let UrlPath(item) = item.map_err(|e| bad(e.body_text()))?;
    let Query(q) = q.map_err(|e| bad(e.body_text()))?;
    let served = st.current.load();
    let rq = RecQuery {
        n: q.n,
        exclude: q.exclude,
        only: q.only,
        ..Default::default()
    };
    let o = rq.options(&served, false)?;
    match score::similar::similar_items(&served.model, &item, o.n, &o.filters) {
        Ok(picks) => Ok(Json(st.with_titles(
            json!({ "item": item, "items": score::to_scored(&served.model, &picks, &[], 0) }),
        ))),
        Err(_) => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown item {item:?}"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    /// The items that may not be returned (replaces the previous set).
    pub unavailable: Vec<Value>,
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
) -> AppResult {
    authorized(&st, &headers)?;
    let Json(a) = body.map_err(|e| bad(e.body_text()))?;
    let ids: Vec<String> = a
        .unavailable
        .iter()
        .map(id_text)
        .collect::<Result<_, _>>()?;
    // Swap in a new snapshot with the new mask; the model is shared, not copied.
    let (known, unknown) = {
        let mut u = st
            .unavailable
            .lock()
            .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned".into()))?;
        *u = ids;
        let cur = st.current.load_full();
        let l = ItemList::resolve(&cur.model, u.iter().map(String::as_str));
        let blocked = blocked_mask(&cur.model, &u);
        st.current.rcu(|old| {
            Arc::new(Served {
                model: Arc::clone(&old.model),
                version: old.version.clone(),
                file: old.file.clone(),
                loaded_at: old.loaded_at.clone(),
                blocked: blocked.clone(),
                stamp: old.stamp.clone(),
            })
        });
        (l.items.len(), l.unknown)
    };
    Ok(Json(
        json!({ "unavailable": known, "unknown_ids": unknown }),
    ))
}

async fn model_info(State(st): State<Arc<AppState>>) -> Json<Value> {
    let s = st.current.load();
    Json(json!({
        "version": s.version,
        "file": s.file.display().to_string(),
        "loaded_at": s.loaded_at,
        "meta": s.model.meta(),
    }))
}

/// One item: its title (when titles are loaded) and training popularity.
async fn item_info(State(st): State<Arc<AppState>>, UrlPath(item): UrlPath<String>) -> AppResult {
    let served = st.current.load();
    let m = &served.model;
    let Some(i) = m.item_ids().get(&item) else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown item {item:?}"),
        ));
    };
    Ok(Json(st.with_titles(json!({
        "item": item,
        "popularity": m.item_popularity()[i as usize],
    }))))
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

/// Concurrency limit, timeout and metrics around every request.
async fn guard(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let route: &'static str = match req.extensions().get::<MatchedPath>().map(|m| m.as_str()) {
        Some("/v1/users/{id}/recommendations") => "/v1/users/{id}/recommendations",
        Some("/v1/recommendations") => "/v1/recommendations",
        Some("/v1/items/{id}/similar") => "/v1/items/{id}/similar",
        Some("/v1/items/{id}") => "/v1/items/{id}",
        Some("/") => "/",
        Some("/v1/availability") => "/v1/availability",
        Some("/v1/model") => "/v1/model",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/metrics") => "/metrics",
        _ => "other",
    };
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
    st.metrics
        .observe(route, resp.status().as_u16(), t0.elapsed().as_secs_f64());
    resp
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

/// Watches the model path and reloads on change; also reloads on SIGHUP.
pub fn spawn_reloaders(state: Arc<AppState>) {
    let st = Arc::clone(&state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(st.opts.watch_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let _ = st.reload(false).await;
        }
    });
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the model");
            let _ = state.reload(true).await;
        }
    });
}

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
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| crate::Error::Other(format!("server: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::{IdMap, Interactions};
    use crate::train::als::AlsParams;
    use axum::body::Body;
    use tower::ServiceExt;

    fn write_model(dir: &Path, name: &str, seed: u64) -> PathBuf {
        let mut users = Vec::new();
        let mut items = Vec::new();
        for u in 0..30u32 {
            for i in 0..20u32 {
                if (u < 15) == (i < 10) && (u + i) % 3 != 0 {
                    users.push(u);
                    items.push(i);
                }
            }
        }
        let n = users.len();
        let x = Interactions {
            users,
            items,
            values: vec![1.0; n],
            times: None,
            user_ids: Arc::new(IdMap::from_ints((0..30).collect())),
            item_ids: Arc::new(IdMap::from_ints((100..120).collect())),
        };
        let m = AlsParams {
            factors: 4,
            epochs: 3,
            seed,
            threads: Some(1),
            ..Default::default()
        }
        .check()
        .unwrap()
        .fit(&x, None, &mut |_| {})
        .unwrap();
        let p = dir.join(name);
        m.save(&p).unwrap();
        p
    }

    fn point(dir: &Path, name: &str) -> PathBuf {
        let cur = dir.join("current");
        crate::util::atomic_write(&cur, |w| {
            std::io::Write::write_all(w, name.as_bytes())
                .map_err(|e| crate::Error::io("current", e))
        })
        .unwrap();
        cur
    }

    fn state(dir: &Path, token: Option<&str>, limit: usize) -> Arc<AppState> {
        write_model(dir, "a.safetensors", 1);
        let cur = point(dir, "a.safetensors");
        AppState::new(ServeOptions {
            model_path: cur,
            admin_token: token.map(String::from),
            max_concurrency: limit,
            ..Default::default()
        })
        .unwrap()
    }

    async fn call(
        st: &Arc<AppState>,
        method: &str,
        uri: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = b.body(Body::from(body.unwrap_or("").to_string())).unwrap();
        let resp = app(Arc::clone(st)).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, v)
    }

    #[tokio::test]
    async fn routes_answer_and_bad_requests_get_json_4xx() {
        let d = tempfile::tempdir().unwrap();
        let st = state(d.path(), Some("s3cret"), 64);
        let (s, _, v) = call(&st, "GET", "/v1/users/1/recommendations?n=5", None, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["items"].as_array().unwrap().len(), 5);
        assert_eq!(v["source"], "model");
        for uri in [
            "/v1/users/1/recommendations?n=0",
            "/v1/users/1/recommendations?n=abc",
            "/v1/users/1/recommendations?bogus=1",
            "/v1/users/1/recommendations?fallback=x",
        ] {
            let (s, _, v) = call(&st, "GET", uri, None, None).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
            assert!(v["error"].is_string(), "{uri}: {v}");
        }
        let (s, _, v) = call(&st, "GET", "/v1/users/nobody/recommendations", None, None).await;
        assert_eq!(
            (s, v["source"].as_str()),
            (StatusCode::OK, Some("popularity"))
        );
        let (s, _, _) = call(
            &st,
            "GET",
            "/v1/users/nobody/recommendations?strict=true",
            None,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Batch and fold-in.
        let (s, _, v) = call(
            &st,
            "POST",
            "/v1/recommendations",
            Some(r#"{"users": ["1", 2, "nobody"], "n": 3}"#),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["results"].as_array().unwrap().len(), 3);
        let (s, _, v) = call(
            &st,
            "POST",
            "/v1/recommendations",
            Some(r#"{"items": ["100", {"item": 101, "value": 2.0}], "n": 3}"#),
            None,
        )
        .await;
        assert_eq!(
            (s, v["source"].as_str()),
            (StatusCode::OK, Some("fold_in")),
            "{v}"
        );
        for body in [
            "{not json",
            r#"{"users": ["1"], "items": ["100"]}"#,
            r#"{"users": [1.5]}"#,
            r#"{"nope": 1}"#,
            "{}",
        ] {
            let (s, _, v) = call(&st, "POST", "/v1/recommendations", Some(body), None).await;
            assert!(s.is_client_error(), "{body}: {s}");
            assert!(v["error"].is_string(), "{body}: {v}");
        }
        // Similar items.
        let (s, _, v) = call(&st, "GET", "/v1/items/100/similar?n=3", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["items"].as_array().unwrap().len(), 3);
        let (s, _, _) = call(&st, "GET", "/v1/items/999/similar", None, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Model info, health, metrics, unknown routes.
        let (s, _, v) = call(&st, "GET", "/v1/model", None, None).await;
        assert_eq!(
            (s, v["version"].as_str()),
            (StatusCode::OK, Some("a.safetensors"))
        );
        assert_eq!(
            call(&st, "GET", "/healthz", None, None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(&st, "GET", "/readyz", None, None).await.0,
            StatusCode::OK
        );
        let (_, _, m) = call(&st, "GET", "/metrics", None, None).await;
        let m = m.as_str().unwrap().to_string();
        assert!(
            m.contains(
                "recsys_requests_total{route=\"/v1/users/{id}/recommendations\",status=\"200\"}"
            ),
            "{m}"
        );
        assert!(m.contains("recsys_request_duration_seconds_bucket"));
        assert_eq!(
            call(&st, "GET", "/nope", None, None).await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn console_titles_and_the_item_route() {
        let d = tempfile::tempdir().unwrap();
        let plain = state(d.path(), None, 64);
        let titles: HashMap<String, String> = (100..120)
            .map(|i| (i.to_string(), format!("Film {i}")))
            .collect();
        let st = AppState::new(ServeOptions {
            model_path: d.path().join("current"),
            titles: Some(Arc::new(titles)),
            ..Default::default()
        })
        .unwrap();
        let (s, h, v) = call(&st, "GET", "/", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let page = v.as_str().unwrap();
        assert!(page.contains("recsys console") && page.contains("/v1/model"));
        // With titles: each item carries one; without: the answers are as before.
        let (_, _, v) = call(&st, "GET", "/v1/users/1/recommendations?n=3", None, None).await;
        for it in v["items"].as_array().unwrap() {
            let id = it["item"].as_str().unwrap();
            assert_eq!(it["title"], format!("Film {id}"));
        }
        let (_, _, v) = call(&plain, "GET", "/v1/users/1/recommendations?n=3", None, None).await;
        assert!(v["items"][0].get("title").is_none(), "{v}");
        let (_, _, v) = call(&st, "GET", "/v1/items/100/similar?n=2", None, None).await;
        assert_eq!(
            (v["title"].as_str(), v["items"][0]["title"].is_string()),
            (Some("Film 100"), true)
        );
        let (_, _, v) = call(
            &st,
            "POST",
            "/v1/recommendations",
            Some(r#"{"users": ["1"], "n": 2}"#),
            None,
        )
        .await;
        assert!(v["results"][0]["items"][0]["title"].is_string(), "{v}");
        let (s, _, v) = call(&st, "GET", "/v1/items/101", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["title"], "Film 101");
        assert!(v["popularity"].as_f64().unwrap() > 0.0);
        assert_eq!(
            call(&st, "GET", "/v1/items/999", None, None).await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn availability_needs_the_token_and_filters_everything() {
        let d = tempfile::tempdir().unwrap();
        let st = state(d.path(), Some("s3cret"), 64);
        let body = r#"{"unavailable": ["100", "101", "102", "103", "104", "105", "106", "107", "108", "zzz"]}"#;
        assert_eq!(
            call(&st, "PUT", "/v1/availability", Some(body), None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&st, "PUT", "/v1/availability", Some(body), Some("wrong"))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        let (s, _, v) = call(&st, "PUT", "/v1/availability", Some(body), Some("s3cret")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["unavailable"].as_u64(), v["unknown_ids"].as_u64()),
            (Some(9), Some(1))
        );
        for uri in [
            "/v1/users/1/recommendations?n=20&exclude_seen=false",
            "/v1/users/nobody/recommendations?n=20",
            "/v1/items/109/similar?n=20",
        ] {
            let (_, _, v) = call(&st, "GET", uri, None, None).await;
            for it in v["items"].as_array().unwrap() {
                let id: u32 = it["item"].as_str().unwrap().parse().unwrap();
                assert!(id > 108, "{uri} returned unavailable item {id}");
            }
        }
        // Without a configured token the admin routes are off.
        let d2 = tempfile::tempdir().unwrap();
        let st2 = state(d2.path(), None, 64);
        assert_eq!(
            call(&st2, "PUT", "/v1/availability", Some(body), Some("x"))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn reloads_swap_good_models_and_refuse_bad_ones() {
        let d = tempfile::tempdir().unwrap();
        let st = state(d.path(), None, 64);
        assert!(!st.reload(false).await.unwrap(), "nothing changed");
        write_model(d.path(), "b.safetensors", 2);
        point(d.path(), "b.safetensors");
        assert!(st.reload(false).await.unwrap());
        assert_eq!(st.current.load().version, "b.safetensors");
        // A corrupt model is refused; b keeps serving.
        std::fs::write(d.path().join("c.safetensors"), b"not a model at all").unwrap();
        point(d.path(), "c.safetensors");
        assert!(st.reload(false).await.is_err());
        assert_eq!(st.current.load().version, "b.safetensors");
        let (s, _, _) = call(&st, "GET", "/v1/users/1/recommendations", None, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(st.metrics.reload_failures.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn titles_are_read_again_with_a_new_model() {
        let d = tempfile::tempdir().unwrap();
        state(d.path(), None, 64);
        let tp = d.path().join("u.item");
        std::fs::write(&tp, "100|Old title|01-Jan-1995||\n").unwrap();
        let st = AppState::new(ServeOptions {
            model_path: d.path().join("current"),
            titles: Some(Arc::new(crate::data::titles::read_titles(&tp).unwrap())),
            titles_path: Some(tp.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            call(&st, "GET", "/v1/items/100", None, None).await.2["title"],
            "Old title"
        );
        std::fs::write(&tp, "100|New title|01-Jan-1995||\n").unwrap();
        write_model(d.path(), "b.safetensors", 2);
        point(d.path(), "b.safetensors");
        assert!(st.reload(false).await.unwrap());
        assert_eq!(
            call(&st, "GET", "/v1/items/100", None, None).await.2["title"],
            "New title"
        );
        // A titles file that no longer reads keeps the old titles.
        std::fs::remove_file(&tp).unwrap();
        write_model(d.path(), "c.safetensors", 3);
        point(d.path(), "c.safetensors");
        assert!(st.reload(false).await.unwrap());
        assert_eq!(
            call(&st, "GET", "/v1/items/100", None, None).await.2["title"],
            "New title"
        );
    }

    #[tokio::test]
    async fn overload_answers_503_with_retry_after() {
        let d = tempfile::tempdir().unwrap();
        let st = state(d.path(), None, 1);
        let held = Arc::clone(&st.limit).try_acquire_owned().unwrap();
        let (s, h, v) = call(&st, "GET", "/v1/users/1/recommendations", None, None).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(h.get(header::RETRY_AFTER).unwrap(), "1");
        assert!(v["error"].is_string());
        drop(held);
        assert_eq!(
            call(&st, "GET", "/v1/users/1/recommendations", None, None)
                .await
                .0,
            StatusCode::OK
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn over_real_tcp_with_the_load_generator() {
        let d = tempfile::tempdir().unwrap();
        let st = state(d.path(), None, 4096);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app(st)).await });
        let r = crate::loadtest::run(crate::loadtest::LoadOptions {
            addr,
            connections: 8,
            duration: Duration::from_millis(500),
            rate: None,
            max_requests: 2000,
            users: (0..30).map(|u| u.to_string()).collect(),
            query: "n=5".into(),
            reload_every: None,
            reload_path: None,
            seed: 1,
        })
        .await
        .unwrap();
        assert!(r.requests > 0 && r.non_2xx == 0 && r.errors == 0, "{r:?}");
        assert!(
            crate::loadtest::run(crate::loadtest::LoadOptions {
                addr: "10.1.2.3:80".parse().unwrap(),
                connections: 1,
                duration: Duration::from_millis(10),
                rate: None,
                max_requests: 1,
                users: vec!["1".into()],
                query: String::new(),
                reload_every: None,
                reload_path: None,
                seed: 1
            })
            .await
            .is_err(),
            "only loopback"
        );
        server.abort();
    }
}
