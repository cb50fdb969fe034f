//! The export layout: interactions with dense ids as partitioned Parquet,
//! the id maps, and a manifest. `recsys export` writes it, Spark's ALS job
//! (`spark/als_job.py`) reads it.
//!
//! ```text
//! DIR/manifest.json                 counts, value range, fingerprint, sources
//! DIR/part-00000.parquet …          user (Int32), item (Int32), rating (Float32)[, time (Int64)]
//! DIR/user_ids.parquet, item_ids.parquet   index (Int32) → id (Int64 or String)
//! ```
//!
//! Rows go to partition `user % partitions`, so a user's rows sit in one
//! file, sorted by (user, item). Two writers give the same files for the
//! same data: [`write`] from loaded
//! [`Interactions`](crate::interactions::Interactions), and [`export`], which
//! streams the source files (polars' streaming engine, in batches) in three
//! passes so only the id maps and one partition are ever in memory:
//! 1. the id columns → id maps (dense ids in first-seen order, as [`super::load`]);
//! 2. rows, checked and mapped, appended to per-partition staging files;
//! 3. per partition: duplicated (user, item) pairs resolved as the loader
//!    does (newest by time, else the later row), sorted, written.
//!
//! The directory is built beside `DIR` and renamed into place when complete.
//!
//! Files: this one holds the layout (manifest, row buffers, staging);
//! `write.rs` writes loaded interactions, `stream.rs` streams source files,
//! `read.rs` reads an export back.

mod read;
mod stream;
mod write;

pub use read::{read, read_id_map, read_manifest};
pub use stream::export;
pub use write::{write, write_test};

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::interactions::IdMap;

/// `format` of a manifest.
pub const EXPORT_FORMAT: &str = "recsys-export";

/// `DIR/manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub rows: usize,
    pub users: usize,
    pub items: usize,
    pub partitions: usize,
    /// No value column was read (every value is 1).
    pub implicit: bool,
    pub has_time: bool,
    pub rating_min: f32,
    pub rating_max: f32,
    pub rating_mean: f64,
    /// xxh3 of the id maps and of the partitions' rows, in file order.
    pub fingerprint: String,
    pub sources: Vec<String>,
    pub rows_read: usize,
    pub bad_rows_skipped: usize,
    pub duplicates_dropped: usize,
}

/// Rows of one partition, or of a whole export before partitioning.
#[derive(Default)]
struct Rows {
    users: Vec<i32>,
    items: Vec<i32>,
    values: Vec<f32>,
    times: Option<Vec<i64>>,
    /// Position in the input, for "the later row wins" (staging only).
    seq: Vec<u64>,
}

impl Rows {
    fn len(&self) -> usize {
        self.users.len()
    }

    fn frame(&self, with_seq: bool) -> PolarsResult<DataFrame> {
        let mut cols = vec![
            Column::new("user".into(), &self.users),
            Column::new("item".into(), &self.items),
            Column::new("rating".into(), &self.values),
        ];
        if let Some(t) = &self.times {
            cols.push(Column::new("time".into(), t));
        }
        if with_seq {
            cols.push(Column::new("seq".into(), &self.seq));
        }
        DataFrame::new_infer_height(cols)
    }

    fn from_frame(df: &DataFrame) -> PolarsResult<Rows> {
        let get = |n: &str| df.column(n);
        Ok(Rows {
            users: get("user")?.i32()?.into_no_null_iter().collect(),
            items: get("item")?.i32()?.into_no_null_iter().collect(),
            values: get("rating")?.f32()?.into_no_null_iter().collect(),
            times: match df.column("time") {
                Ok(c) => Some(c.i64()?.into_no_null_iter().collect()),
                Err(_) => None,
            },
            seq: match df.column("seq") {
                Ok(c) => c.u64()?.into_no_null_iter().collect(),
                Err(_) => Vec::new(),
            },
        })
    }

    /// Keeps the last of each (user, item) pair (newest time, then highest
    /// `seq`, i.e. the later row) and sorts by (user, item). Returns the
    /// number dropped.
    fn resolve_duplicates(&mut self) -> usize {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        let time = |n: usize| self.times.as_ref().map_or(0, |t| t[n]);
        let seq = |n: usize| self.seq.get(n).copied().unwrap_or(n as u64);
        idx.sort_unstable_by_key(|&n| (self.users[n], self.items[n], time(n), seq(n)));
        let keep: Vec<usize> = (0..idx.len())
            .filter(|&k| {
                k + 1 == idx.len()
                    || (self.users[idx[k]], self.items[idx[k]])
                        != (self.users[idx[k + 1]], self.items[idx[k + 1]])
            })
            .map(|k| idx[k])
            .collect();
        let dropped = self.len() - keep.len();
        *self = Rows {
            users: keep.iter().map(|&n| self.users[n]).collect(),
            items: keep.iter().map(|&n| self.items[n]).collect(),
            values: keep.iter().map(|&n| self.values[n]).collect(),
            times: self
                .times
                .as_ref()
                .map(|t| keep.iter().map(|&n| t[n]).collect()),
            seq: Vec::new(),
        };
        dropped
    }
}

/// Running totals for the manifest.
struct Totals {
    rows: usize,
    min: f32,
    max: f32,
    sum: f64,
    hash: xxhash_rust::xxh3::Xxh3,
}

impl Totals {
    fn new(user_ids: &IdMap, item_ids: &IdMap) -> Totals {
        let mut hash = xxhash_rust::xxh3::Xxh3::new();
        for m in [user_ids, item_ids] {
            hash.update(&(m.len() as u64).to_le_bytes());
            for i in 0..m.len() as u32 {
                let k = m.key(i).to_string();
                hash.update(&(k.len() as u64).to_le_bytes());
                hash.update(k.as_bytes());
            }
        }
        Totals {
            rows: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            sum: 0.0,
            hash,
        }
    }

    fn add(&mut self, r: &Rows) {
        self.rows += r.len();
        for &v in &r.values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.sum += v as f64;
        }
        self.hash.update(bytemuck::cast_slice(&r.users));
        self.hash.update(bytemuck::cast_slice(&r.items));
        self.hash.update(bytemuck::cast_slice(&r.values));
    }
}

fn polars_err(path: &Path) -> impl Fn(PolarsError) -> Error + '_ {
    move |e| Error::Polars {
        path: path.to_path_buf(),
        source: e,
    }
}

fn part_name(p: usize) -> String {
    format!("part-{p:05}.parquet")
}

fn write_frame(path: &Path, mut df: DataFrame) -> Result<()> {
    let f = File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(f)
        .finish(&mut df)
        .map_err(polars_err(path))?;
    Ok(())
}

/// Writes an id map as `index` (Int32) → `id` (Int64 or String).
fn write_id_map(path: &Path, m: &IdMap) -> Result<()> {
    let index: Vec<i32> = (0..m.len() as i32).collect();
    let id = match m {
        IdMap::Int { ids, .. } => Column::new("id".into(), ids),
        IdMap::Str { ids, .. } => Column::new("id".into(), ids),
    };
    let df = DataFrame::new_infer_height(vec![Column::new("index".into(), index), id])
        .map_err(polars_err(path))?;
    write_frame(path, df)
}

/// A directory built beside its destination and renamed into place.
struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
}

impl Staged {
    fn new(dest: &Path) -> Result<Staged> {
        let tmp = crate::util::temp_path(dest);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Staged {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// Moves the finished directory over `dest` (an old one is moved aside
    /// first and removed after, so `dest` is never a mix of both).
    fn commit(self) -> Result<()> {
        for entry in std::fs::read_dir(&self.tmp).map_err(|e| Error::io(&self.tmp, e))? {
            let p = entry.map_err(|e| Error::io(&self.tmp, e))?.path();
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&p, e))?;
        }
        let old = if self.dest.exists() {
            let old = crate::util::temp_path(&self.dest);
            std::fs::rename(&self.dest, &old).map_err(|e| Error::io(&self.dest, e))?;
            Some(old)
        } else {
            None
        };
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After a commit `tmp` no longer exists; after a failure it goes.
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn check_partitions(partitions: usize) -> Result<()> {
    if !(1..=10_000).contains(&partitions) {
        return Err(Error::param(
            "partitions",
            partitions,
            "must be in 1..=10000",
        ));
    }
    Ok(())
}

fn dense_i32(n: usize, what: &'static str) -> Result<()> {
    if n > i32::MAX as usize {
        return Err(Error::param(
            what,
            n,
            "more than 2^31 - 1 ids (Spark's ALS takes Int ids)",
        ));
    }
    Ok(())
}

fn manifest(
    t: Totals,
    (users, items, partitions): (usize, usize, usize),
    implicit: bool,
    has_time: bool,
    sources: &[String],
    (rows_read, bad_rows_skipped, duplicates_dropped): (usize, usize, usize),
) -> Manifest {
    let (min, max) = if t.rows == 0 {
        (0.0, 0.0)
    } else {
        (t.min, t.max)
    };
    Manifest {
        format: EXPORT_FORMAT.into(),
        format_version: 1,
        rows: t.rows,
        users,
        items,
        partitions,
        implicit,
        has_time,
        rating_min: min,
        rating_max: max,
        rating_mean: if t.rows == 0 {
            0.0
        } else {
            t.sum / t.rows as f64
        },
        fingerprint: format!("{:016x}", t.hash.digest()),
        sources: sources.to_vec(),
        rows_read,
        bad_rows_skipped,
        duplicates_dropped,
    }
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let p = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(m).map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(&p, text + "\n").map_err(|e| Error::io(&p, e))
}

#[cfg(test)]
mod tests;
