//! The state every request shares: the served model behind an [`ArcSwap`],
//! the availability set, the titles, and hot reload.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::Semaphore;

use super::api::Titles;
use super::metrics::Metrics;
use crate::model::{resolve_model_path, Model};
use crate::score::{Filters, ItemList};

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
    pub titles: Option<Arc<Titles>>,
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

/// Shared state of all requests.
pub struct AppState {
    pub current: ArcSwap<Served>,
    /// The unavailable item ids, as set by `PUT /v1/availability`; kept as
    /// ids so a new model gets its own mask.
    unavailable: Mutex<Vec<String>>,
    pub metrics: Metrics,
    pub(super) opts: ServeOptions,
    pub(super) limit: Arc<Semaphore>,
    /// Serializes reloads (the watcher, SIGHUP, tests).
    reloading: tokio::sync::Mutex<()>,
    /// Item titles, replaced when a new model is swapped in.
    titles: ArcSwapOption<Titles>,
    /// Whether ready tasks wait long for a worker (see
    /// [`spawn_lag_monitor`]): only then does admission yield.
    pub(super) lagging: AtomicBool,
}

impl AppState {
    pub fn new(opts: ServeOptions) -> crate::Result<Arc<AppState>> {
        let served = load_served(&opts.model_path, &[])?;
        Ok(Arc::new(AppState {
            current: ArcSwap::from_pointee(served),
            titles: ArcSwapOption::new(opts.titles.clone()),
            unavailable: Mutex::new(Vec::new()),
            metrics: Metrics::default(),
            limit: Arc::new(Semaphore::new(opts.max_concurrency.max(1))),
            opts,
            reloading: tokio::sync::Mutex::new(()),
            lagging: AtomicBool::new(false),
        }))
    }

    /// The titles now loaded, if any.
    pub fn titles(&self) -> Option<Arc<Titles>> {
        self.titles.load_full()
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

    /// Replaces the unavailable set and swaps in a snapshot with its mask
    /// (the model is shared, not copied). Returns (items now unavailable,
    /// ids the model does not know).
    pub fn set_unavailable(&self, ids: Vec<String>) -> crate::Result<(usize, usize)> {
        let mut u = self
            .unavailable
            .lock()
            .map_err(|_| crate::Error::Other("state poisoned".into()))?;
        *u = ids;
        let cur = self.current.load_full();
        let l = ItemList::resolve(&cur.model, u.iter().map(String::as_str));
        let blocked = blocked_mask(&cur.model, &u);
        self.current.rcu(|old| {
            Arc::new(Served {
                model: Arc::clone(&old.model),
                version: old.version.clone(),
                file: old.file.clone(),
                loaded_at: old.loaded_at.clone(),
                blocked: blocked.clone(),
                stamp: old.stamp.clone(),
            })
        });
        Ok((l.items.len(), l.unknown))
    }
}

/// Watches the model path and reloads on change; also reloads on SIGHUP.
/// How often the lag monitor wakes.
const LAG_PERIOD: Duration = Duration::from_millis(5);

/// Watches how late the runtime runs a task that asked to wake at a given
/// time: that delay is how long a ready request waits for a worker. Past a
/// quarter of the request timeout the service counts as lagging, and the
/// admission guard then yields once after taking a permit, so that the
/// permits count the requests waiting for a CPU and the ones beyond the
/// limit are turned away (see `middleware::guard`). Below it the yield,
/// which costs about 7% of throughput at saturation, is skipped: requests
/// then finish well inside their deadline and there is nothing to shed.
pub fn spawn_lag_monitor(state: Arc<AppState>) {
    let threshold = (state.opts.timeout / 4).max(LAG_PERIOD);
    tokio::spawn(async move {
        loop {
            let due = tokio::time::Instant::now() + LAG_PERIOD;
            tokio::time::sleep_until(due).await;
            let late = tokio::time::Instant::now().saturating_duration_since(due);
            state.metrics.set_lag(late);
            state.lagging.store(late > threshold, Ordering::Relaxed);
        }
    });
}

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
