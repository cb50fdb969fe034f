//! [`export`]: source files streamed into the export layout in three passes
//! (see the module docs of `data::export`).

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use super::{
    check_partitions, dense_i32, manifest, part_name, polars_err, write_frame, write_id_map,
    write_manifest, Manifest, Rows, Staged, Totals,
};
use crate::data::{check_rows, format, read_adjacency, scan, text_source, Format, LoadOptions};
use crate::error::{Error, Result};
use crate::interactions::{FastMap, IdMap};

/// Calls `f` with each checked batch of rows of `path` (columns `user`,
/// `item`, `rating`[, `time`]), in file order, streaming through polars.
/// Returns (rows read, bad rows skipped). A panic of polars' reader on a
/// malformed file is an error on that file, as in [`crate::data::load`].
fn for_each_batch(
    path: &Path,
    opts: &LoadOptions,
    f: impl FnMut(DataFrame) -> Result<()>,
) -> Result<(usize, usize)> {
    crate::data::guard_reader(path, || for_each_batch_unguarded(path, opts, f))
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
    let source = text_source(path, &layout, opts)?;
    let mut time_format = opts.time_format.clone();
    let lf = scan(&source.path, &layout)?
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
            match check_rows(df, path, &source, &layout, offset, opts, &mut time_format).and_then(
                |c| {
                    bad += c.bad_rows;
                    f(c.df)
                },
            ) {
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
/// integral when every id is a canonical integer (as [`crate::data::load`] decides).
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
    let files = crate::data::expand_sources(sources)?;
    let layouts = files
        .iter()
        .map(|f| crate::data::guard_reader(f, || format::detect(f, opts)))
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
