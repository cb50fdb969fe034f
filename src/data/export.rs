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
//! same data: [`write`] from loaded [`Interactions`], and [`export`], which
//! streams the source files (polars' streaming engine, in batches) in three
//! passes so only the id maps and one partition are ever in memory:
//! 1. the id columns → id maps (dense ids in first-seen order, as [`super::load`]);
//! 2. rows, checked and mapped, appended to per-partition staging files;
//! 3. per partition: duplicated (user, item) pairs resolved as the loader
//!    does (newest by time, else the later row), sorted, written.
//!
//! The directory is built beside `DIR` and renamed into place when complete.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{check_rows, format, read_adjacency, scan, Format, LoadOptions};
use crate::error::{Error, Result};
use crate::interactions::{FastMap, IdMap, Interactions};

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

/// Reads an id map written by an export (rows in index order).
pub fn read_id_map(path: &Path) -> Result<IdMap> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let df = ParquetReader::new(f).finish().map_err(polars_err(path))?;
    let pl = polars_err(path);
    let index: Vec<i32> = df
        .column("index")
        .and_then(|c| Ok(c.i32()?.into_no_null_iter().collect()))
        .map_err(&pl)?;
    if index.iter().enumerate().any(|(n, &i)| i as usize != n) {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: "id map rows are not in index order 0, 1, 2, …".into(),
        });
    }
    let id = df.column("id").map_err(&pl)?;
    Ok(match id.dtype() {
        DataType::String => IdMap::from_strings(
            id.str()
                .map_err(&pl)?
                .iter()
                .map(|s| s.unwrap_or_default().to_string())
                .collect(),
        ),
        _ => IdMap::from_ints(
            id.cast(&DataType::Int64)
                .and_then(|c| Ok(c.i64()?.into_no_null_iter().collect()))
                .map_err(&pl)?,
        ),
    })
}

/// Reads `DIR/manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let p = dir.join("manifest.json");
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::Format {
        path: p.clone(),
        message: format!("not an export manifest: {e}"),
    })?;
    if m.format != EXPORT_FORMAT {
        return Err(Error::Format {
            path: p,
            message: format!("format is {:?}, expected {EXPORT_FORMAT:?}", m.format),
        });
    }
    Ok(m)
}

/// Reads an export back into interactions (every partition, in memory),
/// with its manifest. A corrupt file is an error on it, never a panic.
pub fn read(dir: &Path) -> Result<(Interactions, Manifest)> {
    super::guard_reader(dir, || read_unguarded(dir))
}

fn read_unguarded(dir: &Path) -> Result<(Interactions, Manifest)> {
    let m = read_manifest(dir)?;
    let user_ids = read_id_map(&dir.join("user_ids.parquet"))?;
    let item_ids = read_id_map(&dir.join("item_ids.parquet"))?;
    let mut x = Interactions {
        users: Vec::with_capacity(m.rows),
        items: Vec::with_capacity(m.rows),
        values: Vec::with_capacity(m.rows),
        times: m.has_time.then(Vec::new),
        user_ids: std::sync::Arc::new(user_ids),
        item_ids: std::sync::Arc::new(item_ids),
    };
    for p in 0..m.partitions {
        let path = dir.join(part_name(p));
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let df = ParquetReader::new(f).finish().map_err(polars_err(&path))?;
        let r = Rows::from_frame(&df).map_err(polars_err(&path))?;
        let (nu, ni) = (x.n_users(), x.n_items());
        if r.users.iter().any(|&u| u < 0 || u as usize >= nu)
            || r.items.iter().any(|&i| i < 0 || i as usize >= ni)
        {
            return Err(Error::Format {
                path,
                message: format!("an id outside the id maps ({nu} users, {ni} items)"),
            });
        }
        x.users.extend(r.users.iter().map(|&u| u as u32));
        x.items.extend(r.items.iter().map(|&i| i as u32));
        x.values.extend(&r.values);
        if let (Some(t), Some(rt)) = (&mut x.times, &r.times) {
            t.extend(rt);
        }
    }
    if x.len() != m.rows {
        return Err(Error::Format {
            path: dir.join("manifest.json"),
            message: format!(
                "{} rows in the partitions, the manifest says {}",
                x.len(),
                m.rows
            ),
        });
    }
    Ok((x, m))
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

/// Writes loaded interactions in the export layout (see the module docs).
pub fn write(
    x: &Interactions,
    dir: &Path,
    partitions: usize,
    implicit: bool,
    sources: &[String],
) -> Result<Manifest> {
    check_partitions(partitions)?;
    dense_i32(x.n_users(), "users")?;
    dense_i32(x.n_items(), "items")?;
    let staged = Staged::new(dir)?;
    let mut parts: Vec<Rows> = (0..partitions)
        .map(|_| Rows {
            times: x.times.as_ref().map(|_| Vec::new()),
            ..Default::default()
        })
        .collect();
    for n in 0..x.len() {
        let r = &mut parts[x.users[n] as usize % partitions];
        r.users.push(x.users[n] as i32);
        r.items.push(x.items[n] as i32);
        r.values.push(x.values[n]);
        if let (Some(t), Some(src)) = (&mut r.times, &x.times) {
            t.push(src[n]);
        }
    }
    let mut totals = Totals::new(&x.user_ids, &x.item_ids);
    for (p, mut r) in parts.into_iter().enumerate() {
        // Loaded interactions have no duplicates left; this only sorts.
        r.resolve_duplicates();
        totals.add(&r);
        let path = staged.tmp.join(part_name(p));
        write_frame(&path, r.frame(false).map_err(polars_err(&path))?)?;
    }
    write_id_map(&staged.tmp.join("user_ids.parquet"), &x.user_ids)?;
    write_id_map(&staged.tmp.join("item_ids.parquet"), &x.item_ids)?;
    let m = manifest(
        totals,
        (x.n_users(), x.n_items(), partitions),
        implicit,
        x.times.is_some(),
        sources,
        (x.len(), 0, 0),
    );
    write_manifest(&staged.tmp, &m)?;
    staged.commit()?;
    Ok(m)
}

/// Writes a test side with the training side's dense ids, as one partition
/// (`DIR/part-00000.parquet`): an unknown user is -1, each distinct unknown
/// item gets its own negative id (so it counts as one missed positive).
/// Returns (rows, rows with an unknown user, rows with an unknown item).
pub fn write_test(
    test: &Interactions,
    user_ids: &IdMap,
    item_ids: &IdMap,
    dir: &Path,
) -> Result<(usize, usize, usize)> {
    let staged = Staged::new(dir)?;
    let tu = test.user_ids.translate_to(user_ids);
    let ti = test.item_ids.translate_to(item_ids);
    let mut r = Rows::default();
    let (mut unknown_users, mut unknown_items) = (0, 0);
    for n in 0..test.len() {
        let u = tu[test.users[n] as usize].map_or(-1, |u| u as i32);
        let i = ti[test.items[n] as usize].map_or(-2 - test.items[n] as i32, |i| i as i32);
        unknown_users += (u < 0) as usize;
        unknown_items += (i < 0) as usize;
        r.users.push(u);
        r.items.push(i);
        r.values.push(test.values[n]);
    }
    let path = staged.tmp.join(part_name(0));
    write_frame(&path, r.frame(false).map_err(polars_err(&path))?)?;
    staged.commit()?;
    Ok((test.len(), unknown_users, unknown_items))
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

/// Calls `f` with each checked batch of rows of `path` (columns `user`,
/// `item`, `rating`[, `time`]), in file order, streaming through polars.
/// Returns (rows read, bad rows skipped). A panic of polars' reader on a
/// malformed file is an error on that file, as in [`super::load`].
fn for_each_batch(
    path: &Path,
    opts: &LoadOptions,
    f: impl FnMut(DataFrame) -> Result<()>,
) -> Result<(usize, usize)> {
    super::guard_reader(path, || for_each_batch_unguarded(path, opts, f))
}

fn for_each_batch_unguarded(
    path: &Path,
    opts: &LoadOptions,
    mut f: impl FnMut(DataFrame) -> Result<()>,
) -> Result<(usize, usize)> {
    let layout = format::detect(path, opts)?;
    if layout.format == Format::Adjacency {
        // Adjacency lists are read whole (one user per line, no batches).
        let ff = read_adjacency(path, opts)?;
        let counts = (ff.rows_read, ff.bad_rows);
        f(ff.df)?;
        return Ok(counts);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<DataFrame>(2);
    // The callback returns true (stop) once the consumer below has gone.
    let lf = scan(path, &layout)?
        .sink_batches(
            PlanCallback::new(move |df: DataFrame| Ok(tx.send(df).is_err())),
            true,
            None,
        )
        .map_err(polars_err(path))?;
    std::thread::scope(|s| {
        let run = s.spawn(move || lf.collect_with_engine(Engine::Streaming).map(|_| ()));
        let mut result = Ok((0, 0));
        let (mut offset, mut bad) = (0usize, 0usize);
        for df in rx.iter() {
            let n = df.height();
            match check_rows(df, path, &layout, offset, opts).and_then(|(df, b)| {
                bad += b;
                f(df)
            }) {
                Ok(()) => offset += n,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(rx);
        let ran = run
            .join()
            .map_err(|_| Error::Other(format!("{}: the reader panicked", path.display())))?;
        result?;
        ran.map_err(polars_err(path))?;
        Ok((offset, bad))
    })
}

/// Dense ids for one id column, built from strings in first-seen order;
/// integral when every id is a canonical integer (as [`super::load`] decides).
struct IdBuilder {
    index: FastMap<String, u32>,
    ids: Vec<String>,
    all_int: bool,
}

impl IdBuilder {
    fn new() -> Self {
        IdBuilder {
            index: FastMap::default(),
            ids: Vec::new(),
            all_int: true,
        }
    }

    fn add(&mut self, c: &Column) -> PolarsResult<()> {
        let s = c.cast(&DataType::String)?;
        for v in s.str()?.iter() {
            let v = v.unwrap_or_default();
            if !self.index.contains_key(v) {
                self.all_int &= v.parse::<i64>().is_ok_and(|n| n.to_string() == v);
                self.index.insert(v.to_string(), self.ids.len() as u32);
                self.ids.push(v.to_string());
            }
        }
        Ok(())
    }

    fn lookup(&self, c: &Column) -> PolarsResult<Vec<i32>> {
        let s = c.cast(&DataType::String)?;
        Ok(s.str()?
            .iter()
            .map(|v| self.index[v.unwrap_or_default()] as i32)
            .collect())
    }

    fn finish(self) -> IdMap {
        if self.all_int {
            IdMap::from_ints(self.ids.iter().map(|s| s.parse().unwrap_or(0)).collect())
        } else {
            IdMap::from_strings(self.ids)
        }
    }
}

/// Streams interaction files into the export layout (see the module docs).
/// The minimum-count filters of [`LoadOptions`] are not applied.
pub fn export(
    sources: &[String],
    opts: &LoadOptions,
    dir: &Path,
    partitions: usize,
) -> Result<Manifest> {
    check_partitions(partitions)?;
    let files = super::expand_sources(sources)?;
    let layouts = files
        .iter()
        .map(|f| super::guard_reader(f, || format::detect(f, opts)))
        .collect::<Result<Vec<_>>>()?;
    let has_time = layouts.iter().all(|l| l.time.is_some());
    let implicit = layouts.iter().all(|l| l.rating.is_none());

    // Pass 1: the id maps, from the id columns.
    let (mut users, mut items) = (IdBuilder::new(), IdBuilder::new());
    let (mut rows_read, mut bad_rows) = (0, 0);
    for f in &files {
        let (r, b) = for_each_batch(f, opts, |df| {
            let pl = polars_err(f);
            users.add(df.column("user").map_err(&pl)?).map_err(&pl)?;
            items.add(df.column("item").map_err(&pl)?).map_err(&pl)?;
            Ok(())
        })?;
        rows_read += r;
        bad_rows += b;
    }
    dense_i32(users.ids.len(), "users")?;
    dense_i32(items.ids.len(), "items")?;

    // Pass 2: rows to per-partition staging files, flushed in blocks.
    let staged = Staged::new(dir)?;
    const FLUSH: usize = 1 << 16;
    let mut buf: Vec<Rows> = (0..partitions).map(|_| Rows::default()).collect();
    let mut writers: Vec<Option<polars::io::parquet::write::BatchedWriter<File>>> =
        (0..partitions).map(|_| None).collect();
    let staging = |p: usize| staged.tmp.join(format!("staging-{p:05}.parquet"));
    let mut flush = |p: usize, r: &mut Rows| -> Result<()> {
        let path = staging(p);
        let pl = polars_err(&path);
        let df = r.frame(true).map_err(&pl)?;
        if writers[p].is_none() {
            let f = File::create(&path).map_err(|e| Error::io(&path, e))?;
            writers[p] = Some(ParquetWriter::new(f).batched(df.schema()).map_err(&pl)?);
        }
        if let Some(w) = &mut writers[p] {
            w.write_batch(&df).map_err(&pl)?;
        }
        *r = Rows::default();
        Ok(())
    };
    let mut seq = 0u64;
    for f in &files {
        for_each_batch(f, opts, |df| {
            let pl = polars_err(f);
            let u = users.lookup(df.column("user").map_err(&pl)?).map_err(&pl)?;
            let i = items.lookup(df.column("item").map_err(&pl)?).map_err(&pl)?;
            let v = df.column("rating").map_err(&pl)?.f32().map_err(&pl)?;
            let t = match (has_time, df.column("time")) {
                (true, Ok(c)) => Some(c.i64().map_err(&pl)?),
                _ => None,
            };
            for (n, (&u, &i)) in u.iter().zip(&i).enumerate() {
                let p = u as usize % partitions;
                let r = &mut buf[p];
                r.users.push(u);
                r.items.push(i);
                r.values.push(v.get(n).unwrap_or(1.0));
                if let Some(t) = &t {
                    r.times
                        .get_or_insert_with(Vec::new)
                        .push(t.get(n).unwrap_or(0));
                }
                r.seq.push(seq);
                seq += 1;
                if r.len() >= FLUSH {
                    let mut full = std::mem::take(r);
                    flush(p, &mut full)?;
                }
            }
            Ok(())
        })?;
    }
    for (p, r) in buf.iter_mut().enumerate() {
        if r.len() > 0 {
            flush(p, r)?;
        }
    }
    for (p, w) in writers.iter().enumerate() {
        if let Some(w) = w {
            w.finish().map_err(polars_err(&staging(p)))?;
        }
    }
    drop(writers);

    // Pass 3: one partition at a time: resolve duplicates, sort, write.
    let (user_ids, item_ids) = (users.finish(), items.finish());
    let mut totals = Totals::new(&user_ids, &item_ids);
    let mut duplicates = 0;
    for p in 0..partitions {
        let sp = staging(p);
        let mut r = if sp.exists() {
            let f = File::open(&sp).map_err(|e| Error::io(&sp, e))?;
            let df = ParquetReader::new(f).finish().map_err(polars_err(&sp))?;
            Rows::from_frame(&df).map_err(polars_err(&sp))?
        } else {
            Rows::default()
        };
        if has_time && r.times.is_none() {
            r.times = Some(Vec::new());
        }
        duplicates += r.resolve_duplicates();
        totals.add(&r);
        let path = staged.tmp.join(part_name(p));
        write_frame(&path, r.frame(false).map_err(polars_err(&path))?)?;
        if sp.exists() {
            std::fs::remove_file(&sp).map_err(|e| Error::io(&sp, e))?;
        }
    }
    write_id_map(&staged.tmp.join("user_ids.parquet"), &user_ids)?;
    write_id_map(&staged.tmp.join("item_ids.parquet"), &item_ids)?;
    let m = manifest(
        totals,
        (user_ids.len(), item_ids.len(), partitions),
        implicit,
        has_time,
        sources,
        (rows_read, bad_rows, duplicates),
    );
    write_manifest(&staged.tmp, &m)?;
    staged.commit()?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(d: &tempfile::TempDir) -> Vec<String> {
        let a = d.path().join("a.csv");
        std::fs::write(
            &a,
            "user,item,rating,ts\nann,x,1,10\nbob,y,2,10\nann,x,5,20\ncid,z,3,5\nann,x,3,15\nbob,y,4,10\n",
        )
        .unwrap();
        let b = d.path().join("b.csv");
        std::fs::write(&b, "user,item,rating,ts\ndan,x,2,1\nann,y,4,2\n").unwrap();
        vec![
            a.to_string_lossy().into_owned(),
            b.to_string_lossy().into_owned(),
        ]
    }

    fn read_parts(dir: &Path, m: &Manifest) -> Vec<(i32, i32, f32)> {
        let mut out = Vec::new();
        for p in 0..m.partitions {
            let path = dir.join(part_name(p));
            let df = ParquetReader::new(File::open(&path).unwrap())
                .finish()
                .unwrap();
            let r = Rows::from_frame(&df).unwrap();
            for n in 0..r.len() {
                assert_eq!(r.users[n] as usize % m.partitions, p);
                out.push((r.users[n], r.items[n], r.values[n]));
            }
        }
        out
    }

    #[test]
    fn streamed_export_equals_the_loaded_data() {
        let d = tempfile::tempdir().unwrap();
        let src = files(&d);
        let opts = LoadOptions::default();
        let (x, _) = super::super::load(&src, &opts).unwrap();
        let (a, b) = (d.path().join("mem"), d.path().join("stream"));
        let ma = write(&x, &a, 3, false, &src).unwrap();
        let mb = export(&src, &opts, &b, 3).unwrap();
        assert_eq!(mb.duplicates_dropped, 3);
        assert_eq!(mb.rows_read, 8);
        assert_eq!((mb.rows, mb.users, mb.items), (5, 4, 3));
        assert_eq!(ma.fingerprint, mb.fingerprint);
        let rows = read_parts(&b, &mb);
        assert_eq!(rows, read_parts(&a, &ma));
        // The reference: every loaded entry, by external id.
        let users = read_id_map(&b.join("user_ids.parquet")).unwrap();
        let items = read_id_map(&b.join("item_ids.parquet")).unwrap();
        let mut got: Vec<(String, String, f32)> = rows
            .iter()
            .map(|&(u, i, v)| {
                (
                    users.key(u as u32).to_string(),
                    items.key(i as u32).to_string(),
                    v,
                )
            })
            .collect();
        let mut want: Vec<(String, String, f32)> = (0..x.len())
            .map(|n| {
                (
                    x.user_ids.key(x.users[n]).to_string(),
                    x.item_ids.key(x.items[n]).to_string(),
                    x.values[n],
                )
            })
            .collect();
        got.sort_by(|p, q| p.partial_cmp(q).unwrap());
        want.sort_by(|p, q| p.partial_cmp(q).unwrap());
        assert_eq!(got, want);
        assert!(
            want.contains(&("ann".into(), "x".into(), 5.0)),
            "newest wins"
        );
        let (back, _) = read(&b).unwrap();
        assert_eq!((back.len(), back.n_users(), back.n_items()), (5, 4, 3));
        assert_eq!(back.times.as_ref().map(|t| t.len()), Some(5));
        // Re-exporting over an existing export replaces it whole.
        let mc = export(&src[..1], &opts, &b, 2).unwrap();
        assert_eq!(read_manifest(&b).unwrap(), mc);
        assert!(!b.join(part_name(2)).exists());
    }

    #[test]
    fn a_malformed_row_names_its_line_and_leaves_no_directory() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.csv");
        std::fs::write(&a, "user,item,rating\n1,2,3\n1,3,five\n").unwrap();
        let out = d.path().join("out");
        let err = export(
            &[a.to_string_lossy().into_owned()],
            &LoadOptions::default(),
            &out,
            2,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(":3:") && err.contains("rating"), "{err}");
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn integer_ids_stay_integers() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("u.data");
        std::fs::write(&a, "7\t100\t3\t1\n3\t100\t4\t2\n7\t5\t1\t3\n").unwrap();
        let out = d.path().join("out");
        let m = export(
            &[a.to_string_lossy().into_owned()],
            &LoadOptions::default(),
            &out,
            1,
        )
        .unwrap();
        assert_eq!(
            (m.users, m.items, m.rating_min, m.rating_max),
            (2, 2, 1.0, 4.0)
        );
        let u = read_id_map(&out.join("user_ids.parquet")).unwrap();
        assert!(matches!(&u, IdMap::Int { ids, .. } if ids == &vec![7, 3]));
    }
}
