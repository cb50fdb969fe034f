//! The model registry: a folder of immutable model files named by creation
//! time and data fingerprint, a one-line `current` pointer naming the
//! promoted one (replaced atomically), a JSON-lines `history.jsonl` of every
//! run and promotion, and the lock that keeps two retrains from overlapping.
//!
//! Crash safety: model files and `current` are written to a temporary
//! sibling, fsynced and renamed, so a kill at any moment leaves the old
//! `current` naming a complete model. History lines are appended and
//! fsynced; a torn last line (a kill mid-append) is skipped when read and
//! terminated before the next append.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{rfc3339, Model};
use crate::util::atomic_write;

/// The pointer file naming the promoted model.
pub const CURRENT: &str = "current";
/// One JSON object per line: every retrain run, promotion and rollback.
pub const HISTORY: &str = "history.jsonl";
/// Held (flock) by the process that is retraining.
pub const LOCK: &str = "retrain.lock";
const MODEL_EXT: &str = "safetensors";

/// A model registry folder. See the module docs.
#[derive(Clone, Debug)]
pub struct Registry {
    dir: PathBuf,
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// UTC time the record was written.
    pub time: String,
    pub unix: u64,
    /// `retrain`, `promote` or `rollback`.
    pub event: String,
    /// For retrain runs: `promoted`, `rejected`, `skipped` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// The model the event is about (the candidate, or the one made current).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The model that was current before this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default)]
    pub reason: String,
    /// Data, parameters, metrics, durations: whatever the event has.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl Record {
    pub fn new(event: &str) -> Record {
        let unix = now_unix();
        Record {
            time: rfc3339(unix),
            unix,
            event: event.into(),
            ..Default::default()
        }
    }

    /// Whether this event made `model` the current one.
    fn made_current(&self) -> bool {
        self.event == "promote"
            || (self.event == "retrain" && self.decision.as_deref() == Some("promoted"))
    }
}

/// A model file in the registry, for listings.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub id: String,
    pub current: bool,
    pub bytes: u64,
    pub created: String,
    pub algorithm: String,
    pub rows: usize,
    pub users: usize,
    pub items: usize,
    pub fingerprint: String,
    pub warm_started: bool,
    pub metrics: std::collections::BTreeMap<String, f64>,
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A model id is a plain file stem: no separators, no leading dot.
fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "{id:?} is not a model id (ids look like 20261125T220000Z-1a2b3c4d)"
        )))
    }
}

impl Registry {
    /// Opens (creating if needed) the registry in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Registry> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Registry { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn current_path(&self) -> PathBuf {
        self.dir.join(CURRENT)
    }

    /// The model file of `id` (with or without the `.safetensors` suffix).
    pub fn model_path(&self, id: &str) -> Result<PathBuf> {
        let id = id.strip_suffix(".safetensors").unwrap_or(id);
        check_id(id)?;
        Ok(self.dir.join(format!("{id}.{MODEL_EXT}")))
    }

    /// The id `current` names, if there is one.
    pub fn current_id(&self) -> Result<Option<String>> {
        let p = self.current_path();
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&p, e)),
        };
        let name = text.trim();
        let id = name.strip_suffix(".safetensors").unwrap_or(name);
        check_id(id).map_err(|_| Error::Format {
            path: p.clone(),
            message: format!("does not name a model file (content {name:?})"),
        })?;
        Ok(Some(id.to_string()))
    }

    /// The current model, loaded (and so checked).
    pub fn current(&self) -> Result<Option<(String, Model)>> {
        let Some(id) = self.current_id()? else {
            return Ok(None);
        };
        let m = Model::load(&self.model_path(&id)?)?;
        Ok(Some((id, m)))
    }

    /// Writes `model` as a new immutable file; returns its id
    /// (`YYYYMMDDTHHMMSSZ-<fingerprint prefix>`, suffixed when taken).
    pub fn add(&self, model: &Model) -> Result<String> {
        let unix = model.meta().created_unix;
        let stamp: String = rfc3339(unix)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let fp: String = model.meta().data.fingerprint.chars().take(8).collect();
        let base = format!("{stamp}-{fp}");
        let mut id = base.clone();
        let mut n = 1;
        while self.model_path(&id)?.exists() {
            n += 1;
            id = format!("{base}-{n}");
        }
        model.save(&self.model_path(&id)?)?;
        Ok(id)
    }

    /// Points `current` at `id` after checking that its model loads. The
    /// pointer is replaced by rename, so readers see the old or the new one.
    pub fn set_current(&self, id: &str) -> Result<()> {
        let path = self.model_path(id)?;
        Model::load(&path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        crate::util::fault_point("promoting");
        atomic_write(&self.current_path(), |w| {
            writeln!(w, "{name}").map_err(|e| Error::io(self.current_path(), e))
        })
    }

    /// Makes `id` current and records it.
    pub fn promote(&self, id: &str, reason: &str) -> Result<Record> {
        let previous = self.current_id()?;
        let id = id.strip_suffix(".safetensors").unwrap_or(id);
        self.set_current(id)?;
        let mut r = Record::new("promote");
        r.model = Some(id.into());
        r.previous = previous;
        r.reason = reason.into();
        self.append(&r)?;
        Ok(r)
    }

    /// The model that was current before the current one was made current
    /// (by its latest promotion), walking back over rollbacks: A → B → C,
    /// rollback gives B, again gives A.
    pub fn rollback_target(&self) -> Result<Option<String>> {
        let Some(cur) = self.current_id()? else {
            return Ok(None);
        };
        let hist = self.history()?;
        Ok(hist
            .iter()
            .rev()
            .find(|r| r.made_current() && r.model.as_deref() == Some(cur.as_str()))
            .and_then(|r| r.previous.clone()))
    }

    /// Makes the previous model current again and records it.
    pub fn rollback(&self) -> Result<Record> {
        let cur = self
            .current_id()?
            .ok_or_else(|| Error::Other(format!("{}: no current model", self.dir.display())))?;
        let target = self.rollback_target()?.ok_or_else(|| {
            Error::Other(format!(
                "{cur} is the first promoted model in {}: nothing to roll back to",
                self.dir.display()
            ))
        })?;
        self.set_current(&target)?;
        let mut r = Record::new("rollback");
        r.model = Some(target);
        r.previous = Some(cur);
        r.reason = "rollback".into();
        self.append(&r)?;
        Ok(r)
    }

    /// Model ids in the folder, oldest first (ids sort by creation time).
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(&format!(".{MODEL_EXT}"))?.to_string();
                check_id(&id).ok().map(|_| id)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Every model with its metadata, oldest first. A file that does not
    /// load is listed with algorithm `unreadable: <reason>`.
    pub fn list(&self) -> Result<Vec<Entry>> {
        let cur = self.current_id()?;
        let mut out = Vec::new();
        for id in self.ids()? {
            let path = self.model_path(&id)?;
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let current = cur.as_deref() == Some(id.as_str());
            out.push(match Model::load(&path) {
                Ok(m) => {
                    let meta = m.meta();
                    Entry {
                        id,
                        current,
                        bytes,
                        created: meta.created.clone(),
                        algorithm: meta.algorithm.clone(),
                        rows: meta.data.rows,
                        users: meta.n_users,
                        items: meta.n_items,
                        fingerprint: meta.data.fingerprint.clone(),
                        warm_started: meta.warm_start.is_some(),
                        metrics: meta.metrics.clone(),
                    }
                }
                Err(e) => Entry {
                    id,
                    current,
                    bytes,
                    created: String::new(),
                    algorithm: format!("unreadable: {e}"),
                    rows: 0,
                    users: 0,
                    items: 0,
                    fingerprint: String::new(),
                    warm_started: false,
                    metrics: Default::default(),
                },
            });
        }
        Ok(out)
    }

    /// Deletes registry model files beyond the newest `keep`, never the
    /// current one nor its rollback target. Returns the deleted ids.
    pub fn retain(&self, keep: usize) -> Result<Vec<String>> {
        // Only files the registry named (time-stamped); a hand-placed
        // `model.safetensors` is left alone.
        let ids: Vec<String> = self
            .ids()?
            .into_iter()
            .filter(|id| id.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        let protect: Vec<String> = [self.current_id()?, self.rollback_target()?]
            .into_iter()
            .flatten()
            .collect();
        let mut deleted = Vec::new();
        let excess = ids.len().saturating_sub(keep);
        for id in ids.into_iter().take(excess) {
            if protect.contains(&id) {
                continue;
            }
            let p = self.model_path(&id)?;
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            // The IVF index beside a model goes with it.
            let _ = std::fs::remove_file(crate::score::ivf_path(&p));
            deleted.push(id);
        }
        Ok(deleted)
    }

    /// Appends one record to the history and fsyncs it.
    pub fn append(&self, r: &Record) -> Result<()> {
        let p = self.dir.join(HISTORY);
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        // A kill mid-append leaves a line without its newline: end it first
        // so this record starts on a line of its own.
        let len = f.metadata().map_err(|e| Error::io(&p, e))?.len();
        let mut line = String::new();
        if len > 0 {
            let mut last = [0u8; 1];
            f.seek(SeekFrom::Start(len - 1))
                .and_then(|_| f.read_exact(&mut last))
                .map_err(|e| Error::io(&p, e))?;
            if last[0] != b'\n' {
                line.push('\n');
            }
        }
        line += &serde_json::to_string(r).map_err(|e| Error::Other(e.to_string()))?;
        line.push('\n');
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(&p, e))
    }

    /// All history records, oldest first; lines that do not parse (a torn
    /// append) are skipped.
    pub fn history(&self) -> Result<Vec<Record>> {
        let p = self.dir.join(HISTORY);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&p, e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// Takes the retrain lock, or says who holds it. The lock is an
    /// advisory `flock` on `retrain.lock`: the kernel drops it when its
    /// process dies, so a lock left by a killed run is never an obstacle.
    /// The pid written inside tells such a stale file from a live holder.
    pub fn lock(&self) -> Result<Lock> {
        let p = self.dir.join(LOCK);
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        let mut before = String::new();
        let _ = f.read_to_string(&mut before);
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Other(format!(
                    "{}: another retrain is running ({}); not starting a second one",
                    p.display(),
                    before.trim()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&p, e)),
        }
        // Whatever pid the file names is not running this lock any more.
        let stale = (!before.trim().is_empty()).then(|| before.trim().to_string());
        let unix = now_unix();
        f.set_len(0)
            .and_then(|_| f.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|_| write!(f, "pid {} since {}", std::process::id(), rfc3339(unix)))
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(&p, e))?;
        Ok(Lock {
            file: f,
            path: p,
            stale,
        })
    }

    /// Removes temporary files (`.NAME.tmp.PID.N`) left by processes that
    /// are gone (a kill during a write). Linux only: elsewhere nothing is
    /// removed, since liveness cannot be told.
    pub fn clean_temp_files(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        if !Path::new("/proc/self").exists() {
            return removed;
        }
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return removed;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix('.') else {
                continue;
            };
            let Some((_, tail)) = rest.rsplit_once(".tmp.") else {
                continue;
            };
            let Some(pid) = tail.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let p = e.path();
                if std::fs::remove_file(&p).is_ok() {
                    removed.push(p);
                }
            }
        }
        removed
    }
}

/// The held retrain lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
    /// What the lock file said when it was taken over: a run that died
    /// holding it (its pid and start), if any.
    pub stale: Option<String>,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Empty the file so the next holder does not report a stale run.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
        let _ = &self.path;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::{IdMap, Interactions};
    use std::sync::Arc;

    fn model(seed: u64) -> Model {
        let (mut u, mut i, mut v) = (Vec::new(), Vec::new(), Vec::new());
        for a in 0..20u32 {
            for b in 0..10u32 {
                if !(a + b + seed as u32).is_multiple_of(3) {
                    u.push(a);
                    i.push(b);
                    v.push(1.0 + ((a + b) % 5) as f32);
                }
            }
        }
        let x = Interactions {
            users: u,
            items: i,
            values: v,
            times: None,
            user_ids: Arc::new(IdMap::from_ints((0..20).collect())),
            item_ids: Arc::new(IdMap::from_ints((0..10).collect())),
        };
        crate::train::sgd::SgdParams::default()
            .factors(4)
            .epochs(2)
            .seed(seed)
            .check()
            .unwrap()
            .fit(&x, None, &mut |_| {})
            .unwrap()
    }

    #[test]
    fn promote_rollback_and_retention() {
        let d = tempfile::tempdir().unwrap();
        let reg = Registry::open(d.path().join("m")).unwrap();
        assert_eq!(reg.current_id().unwrap(), None);
        let ids: Vec<String> = (0..4).map(|s| reg.add(&model(s)).unwrap()).collect();
        // Same second, other data: distinct ids; same data twice: suffixed.
        let again = reg.add(&model(0)).unwrap();
        assert!(!ids.contains(&again));
        for id in &ids[..3] {
            reg.promote(id, "test").unwrap();
        }
        assert_eq!(reg.current_id().unwrap().as_deref(), Some(ids[2].as_str()));
        assert_eq!(
            reg.rollback().unwrap().model.as_deref(),
            Some(ids[1].as_str())
        );
        assert_eq!(
            reg.rollback().unwrap().model.as_deref(),
            Some(ids[0].as_str())
        );
        assert!(reg.rollback().is_err(), "nothing before the first");
        reg.promote(&ids[3], "test").unwrap();
        // Keep 1: the current model and its rollback target survive.
        let deleted = reg.retain(1).unwrap();
        let left = reg.ids().unwrap();
        assert!(left.contains(&ids[3]) && left.contains(&ids[0]), "{left:?}");
        assert_eq!(deleted.len() + left.len(), 5);
        assert!(reg.model_path("../x").is_err());
    }

    #[test]
    fn a_torn_history_line_is_skipped_and_terminated() {
        let d = tempfile::tempdir().unwrap();
        let reg = Registry::open(d.path()).unwrap();
        reg.append(&Record::new("promote")).unwrap();
        // A kill mid-append leaves half a line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(d.path().join(HISTORY))
            .unwrap();
        f.write_all(b"{\"time\":\"2026").unwrap();
        drop(f);
        reg.append(&Record::new("rollback")).unwrap();
        let h = reg.history().unwrap();
        assert_eq!(
            h.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
            ["promote", "rollback"]
        );
    }

    #[test]
    fn the_lock_is_exclusive_and_reports_a_dead_holder() {
        let d = tempfile::tempdir().unwrap();
        let reg = Registry::open(d.path()).unwrap();
        // A file left by a dead process: taken over, and reported.
        std::fs::write(d.path().join(LOCK), "pid 999999 since 2026-01-01T00:00:00Z").unwrap();
        let l = reg.lock().unwrap();
        assert!(l.stale.as_deref().unwrap().contains("999999"));
        let e = reg.lock().unwrap_err().to_string();
        assert!(e.contains("another retrain is running"), "{e}");
        drop(l);
        let l = reg.lock().unwrap();
        assert_eq!(l.stale, None, "a clean release leaves nothing stale");
    }

    #[test]
    fn a_corrupt_pointer_is_an_error_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let reg = Registry::open(d.path()).unwrap();
        std::fs::write(d.path().join(CURRENT), "../../etc/passwd\n").unwrap();
        let e = reg.current_id().unwrap_err().to_string();
        assert!(
            e.contains("current") && e.contains("does not name a model"),
            "{e}"
        );
    }
}
