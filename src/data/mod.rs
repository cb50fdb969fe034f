//! Reading interaction logs into [`Interactions`](crate::interactions::Interactions).
//!
//! [`load`] expands files, folders and globs, detects each file's format
//! ([`format`]), reads it with polars (lazy scans, so big files stream), checks
//! every row (a malformed row names its file, line and field), resolves
//! duplicated (user, item) pairs (the last one wins: newest by timestamp when
//! there is one, else the later row), maps external ids to dense `u32`
//! indices, and applies the minimum-count filters.
//! [`split`] cuts a train/test split; [`synth`] generates data with planted
//! structure; [`titles`] reads item-title files.

pub mod export;
pub mod format;
pub mod split;
pub mod synth;
pub mod titles;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use crate::error::{Error, Result};
use rayon::prelude::*;

use crate::interactions::{Csr, FastMap, IdMap, Interactions};
pub use format::{Format, Layout};

/// How to read interaction files. Column names apply to files with a header
/// and to Parquet; other layouts are fixed by their format.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Forces a format instead of detecting it per file.
    pub format: Option<Format>,
    pub user_col: Option<String>,
    pub item_col: Option<String>,
    pub rating_col: Option<String>,
    pub time_col: Option<String>,
    /// Skip malformed rows (counted in the report) instead of failing.
    pub skip_bad_rows: bool,
    /// Drop users with fewer entries than this (after de-duplication).
    pub min_user_count: u32,
    /// Drop items with fewer entries than this (after de-duplication).
    pub min_item_count: u32,
}

/// What [`load`] did, for the user to see.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LoadReport {
    pub files: Vec<PathBuf>,
    pub rows_read: usize,
    pub bad_rows_skipped: usize,
    pub duplicates_dropped: usize,
    pub filtered_out: usize,
    pub rows: usize,
    pub users: usize,
    pub items: usize,
}

/// Expands each source (a file, a folder or a glob) into a sorted list of
/// files. A folder contributes its regular files whose format is known
/// (hidden files and READMEs are skipped).
pub fn expand_sources(sources: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for s in sources {
        let p = Path::new(s);
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| Error::io(p, e))?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && format::looks_like_data_file(f))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::NoFiles { pattern: s.clone() });
            }
            out.extend(files);
        } else if s.contains(['*', '?', '[']) {
            let paths =
                glob::glob(s).map_err(|e| Error::Other(format!("{s}: bad glob pattern: {e}")))?;
            let mut files: Vec<PathBuf> = paths
                .filter_map(|r| r.ok())
                .filter(|f| f.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::NoFiles { pattern: s.clone() });
            }
            out.extend(files);
        } else if p.is_file() {
            out.push(p.to_path_buf());
        } else {
            return Err(Error::NotFound {
                path: p.to_path_buf(),
            });
        }
    }
    Ok(out)
}

/// One file read into columns `user`, `item` (Int64 or String), `rating`
/// (Float32) and optionally `time` (Int64).
pub(crate) struct FileFrame {
    pub(crate) df: DataFrame,
    pub(crate) int_ids: (bool, bool),
    pub(crate) has_time: bool,
    pub(crate) rows_read: usize,
    pub(crate) bad_rows: usize,
}

/// Loads interactions from files, folders or globs. See the module docs.
pub fn load(sources: &[String], opts: &LoadOptions) -> Result<(Interactions, LoadReport)> {
    let files = expand_sources(sources)?;
    let mut frames = Vec::with_capacity(files.len());
    for f in &files {
        frames.push(read_file_guarded(f, opts)?);
    }
    let mut report = LoadReport {
        files: files.clone(),
        rows_read: frames.iter().map(|f| f.rows_read).sum(),
        bad_rows_skipped: frames.iter().map(|f| f.bad_rows).sum(),
        ..Default::default()
    };
    let int_users = frames.iter().all(|f| f.int_ids.0);
    let int_items = frames.iter().all(|f| f.int_ids.1);
    let has_time = frames.iter().all(|f| f.has_time);
    let ctx = files.first().cloned().unwrap_or_default();
    let pl = |e: PolarsError| Error::Polars {
        path: ctx.clone(),
        source: e,
    };

    // Bring every file to one schema, then stack.
    let mut all: Option<DataFrame> = None;
    for f in frames {
        let mut sel = vec![
            col("user").cast(if int_users {
                DataType::Int64
            } else {
                DataType::String
            }),
            col("item").cast(if int_items {
                DataType::Int64
            } else {
                DataType::String
            }),
            col("rating"),
        ];
        if has_time {
            sel.push(col("time"));
        }
        let df = f.df.lazy().select(sel).collect().map_err(&pl)?;
        match &mut all {
            None => all = Some(df),
            Some(a) => {
                a.vstack_mut_owned(df).map_err(&pl)?;
            }
        }
    }
    let mut all = all.ok_or_else(|| Error::Other("no input files".into()))?;

    // Each column leaves the frame as it is converted, so the polars table and
    // its Rust copy never both exist whole: on 25 M rows this keeps the peak at
    // the frame plus the two id columns instead of the frame plus everything.
    let n_read = all.height();
    let mut take = |name: &str| all.drop_in_place(name).map_err(&pl);
    let values: Vec<f32> = take("rating")?
        .f32()
        .map_err(&pl)?
        .into_no_null_iter()
        .collect();
    let times: Option<Vec<i64>> = if has_time {
        Some(
            take("time")?
                .i64()
                .map_err(&pl)?
                .into_no_null_iter()
                .collect(),
        )
    } else {
        None
    };
    let (user_col, item_col) = (take("user")?, take("item")?);
    drop(all);
    let ((users, user_ids), (items, item_ids)) =
        rayon::join(|| dense_ids(Ok(&user_col)), || dense_ids(Ok(&item_col)));
    drop((user_col, item_col));
    let (users, user_ids) = users_ok(users, user_ids, &pl)?;
    let (items, item_ids) = users_ok(items, item_ids, &pl)?;
    let mut x = Interactions {
        users,
        items,
        values,
        times,
        user_ids: Arc::new(user_ids),
        item_ids: Arc::new(item_ids),
    };
    // Duplicates: the last one wins, by time when there is a time column.
    if let Some(keep) = last_of_duplicates(&x) {
        x.retain(&keep);
    }
    report.duplicates_dropped = n_read - x.len();
    let n_dedup = x.len();
    let x = filter_min_counts(x, opts.min_user_count, opts.min_item_count);
    report.filtered_out = n_dedup - x.len();
    report.rows = x.len();
    report.users = x.n_users();
    report.items = x.n_items();
    Ok((x, report))
}

fn users_ok(
    r: PolarsResult<Vec<u32>>,
    m: IdMap,
    pl: &dyn Fn(PolarsError) -> Error,
) -> Result<(Vec<u32>, IdMap)> {
    Ok((r.map_err(pl)?, m))
}

/// Dense `u32` indices in first-seen order for an id column, and the id map.
fn dense_ids(c: PolarsResult<&Column>) -> (PolarsResult<Vec<u32>>, IdMap) {
    let c = match c {
        Ok(c) => c,
        Err(e) => return (Err(e), IdMap::from_ints(Vec::new())),
    };
    let mut out = Vec::with_capacity(c.len());
    if let Ok(ca) = c.i64() {
        let mut index = FastMap::default();
        let mut ids = Vec::new();
        for v in ca.into_no_null_iter() {
            let next = ids.len() as u32;
            out.push(*index.entry(v).or_insert_with(|| {
                ids.push(v);
                next
            }));
        }
        return (Ok(out), IdMap::Int { ids, index });
    }
    match c.str() {
        Ok(ca) => {
            let mut index: FastMap<String, u32> = FastMap::default();
            let mut ids = Vec::new();
            for v in ca.iter() {
                let v = v.unwrap_or_default();
                let d = match index.get(v) {
                    Some(&d) => d,
                    None => {
                        let d = ids.len() as u32;
                        ids.push(v.to_string());
                        index.insert(v.to_string(), d);
                        d
                    }
                };
                out.push(d);
            }
            (Ok(out), IdMap::Str { ids, index })
        }
        Err(e) => (Err(e), IdMap::from_ints(Vec::new())),
    }
}

/// Which entries survive de-duplication of (user, item) pairs: the one with
/// the latest time (ties and no time: the later row). `None` when there are
/// no duplicates. Works per user row, in parallel, in O(n log d).
fn last_of_duplicates(x: &Interactions) -> Option<Vec<bool>> {
    let rows = Csr::build(
        x.n_users(),
        &x.users,
        &(0..x.len() as u32).collect::<Vec<_>>(),
        None,
    );
    let dropped: Vec<u32> = (0..rows.n_rows())
        .into_par_iter()
        .flat_map_iter(|u| {
            let mut r: Vec<u32> = rows.row(u).to_vec();
            let key = |&e: &u32| {
                (
                    x.items[e as usize],
                    x.times.as_ref().map_or(0, |t| t[e as usize]),
                    e,
                )
            };
            r.sort_unstable_by_key(key);
            let mut gone = Vec::new();
            for w in r.windows(2) {
                if x.items[w[0] as usize] == x.items[w[1] as usize] {
                    gone.push(w[0]);
                }
            }
            gone
        })
        .collect();
    if dropped.is_empty() {
        return None;
    }
    let mut keep = vec![true; x.len()];
    for d in dropped {
        keep[d as usize] = false;
    }
    Some(keep)
}

/// Drops users and items below the minimum counts (one pass over both, on
/// the counts before either filter), then renumbers densely.
pub fn filter_min_counts(x: Interactions, min_user: u32, min_item: u32) -> Interactions {
    if min_user <= 1 && min_item <= 1 {
        return x;
    }
    let mut uc = vec![0u32; x.n_users()];
    for &u in &x.users {
        uc[u as usize] += 1;
    }
    let ic = x.item_counts();
    let keep: Vec<usize> = (0..x.len())
        .filter(|&n| uc[x.users[n] as usize] >= min_user && ic[x.items[n] as usize] >= min_item)
        .collect();
    x.subset(&keep).compact()
}

/// [`read_file`], with a panic inside the reader turned into an error on
/// this file. polars' readers can panic on malformed input (a corrupt
/// Parquet footer does, in its metadata decoder); a bad file must not
/// bring the program down.
fn read_file_guarded(path: &Path, opts: &LoadOptions) -> Result<FileFrame> {
    guard_reader(path, || read_file(path, opts))
}

/// Runs `read`, a reader of `path`, with a panic inside it turned into an
/// error on this file (see [`read_file_guarded`]); the export and the
/// Spark import read Parquet through it too.
pub(crate) fn guard_reader<T>(path: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(
        |panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown failure".into());
            Err(Error::Format {
                path: path.to_path_buf(),
                message: format!("the reader failed on this file ({why}); it is corrupt or not in the format it looks like"),
            })
        },
    )
}

fn read_file(path: &Path, opts: &LoadOptions) -> Result<FileFrame> {
    let layout = format::detect(path, opts)?;
    if layout.format == Format::Adjacency {
        return read_adjacency(path, opts);
    }
    let pl = |e: PolarsError| Error::Polars {
        path: path.to_path_buf(),
        source: e,
    };
    let df = scan(path, &layout)?
        .collect_with_engine(Engine::Streaming)
        .map_err(pl)?
        .unwrap_single();
    let rows_read = df.height();
    let (df, bad_rows) = check_rows(df, path, &layout, 0, opts)?;
    // An id column is integral when every value parses as an integer.
    let int_col = |df: &DataFrame, name: &str| -> PolarsResult<bool> {
        // Integral only if every value survives the trip to i64 and back
        // unchanged: u64 ids beyond i64 and zero-padded codes like "007"
        // stay strings.
        let c = df.column(name)?.as_materialized_series();
        if !(c.dtype().is_integer() || c.dtype() == &DataType::String) {
            return Ok(false);
        }
        let cast = c.cast(&DataType::Int64)?;
        if cast.null_count() != c.null_count() {
            return Ok(false);
        }
        if c.dtype() == &DataType::String {
            return Ok(cast.cast(&DataType::String)?.equals_missing(c));
        }
        Ok(true)
    };
    let int_ids = (
        int_col(&df, "user").map_err(pl)?,
        int_col(&df, "item").map_err(pl)?,
    );
    Ok(FileFrame {
        df,
        int_ids,
        has_time: layout.time.is_some(),
        rows_read,
        bad_rows,
    })
}

/// The lazy read of one delimited or Parquet file: columns `user`, `item`,
/// `rating` (Float32; 1 without a value column) and `time` (Int64), plus
/// `rating_missing` / `time_missing` flags for [`check_rows`].
pub(crate) fn scan(path: &Path, layout: &Layout) -> Result<LazyFrame> {
    let pl = |e: PolarsError| Error::Polars {
        path: path.to_path_buf(),
        source: e,
    };
    let lf = match layout.format {
        Format::Parquet => LazyFrame::scan_parquet(
            path.to_string_lossy().as_ref().into(),
            ScanArgsParquet::default(),
        )
        .map_err(pl)?,
        _ => LazyCsvReader::new(path.to_string_lossy().as_ref().into())
            .with_has_header(layout.has_header)
            .with_separator(layout.separator)
            .with_quote_char(layout.quote)
            .with_infer_schema_length(Some(0))
            .with_truncate_ragged_lines(true)
            .finish()
            .map_err(pl)?,
    };
    // Next to each parsed number, whether the field was there at all, so a
    // value that does not parse can be told from a missing one.
    let mut sel = vec![
        col(layout.user.as_str()).alias("user"),
        col(layout.item.as_str()).alias("item"),
    ];
    match &layout.rating {
        Some(r) => {
            sel.push(col(r.as_str()).cast(DataType::Float32).alias("rating"));
            sel.push(col(r.as_str()).is_null().alias("rating_missing"));
        }
        None => sel.push(lit(1.0f32).cast(DataType::Float32).alias("rating")),
    }
    if let Some(t) = &layout.time {
        sel.push(col(t.as_str()).cast(DataType::Int64).alias("time"));
        sel.push(col(t.as_str()).is_null().alias("time_missing"));
    }
    Ok(lf.select(sel))
}

/// Checks the rows of a [`scan`] result whose first row is data row
/// `offset` of the file: a malformed row is an error naming its line and
/// field (or is dropped and counted with `skip_bad_rows`); blank lines are
/// dropped. Returns the columns `user`, `item`, `rating` (and `time`).
pub(crate) fn check_rows(
    mut df: DataFrame,
    path: &Path,
    layout: &Layout,
    offset: usize,
    opts: &LoadOptions,
) -> Result<(DataFrame, usize)> {
    let pl = |e: PolarsError| Error::Polars {
        path: path.to_path_buf(),
        source: e,
    };
    let (bad, blank) = find_bad_rows(&df, layout).map_err(pl)?;
    let mut bad_rows = 0;
    if let Some(&(row, field, column, reason)) = bad.first() {
        if !opts.skip_bad_rows {
            return Err(Error::MalformedRow {
                path: path.to_path_buf(),
                line: format::line_of_row(layout, offset + row),
                field: field.to_string(),
                value: raw_field(path, layout, offset + row, column),
                reason: reason.to_string(),
            });
        }
        bad_rows = bad.len();
    }
    if !bad.is_empty() || !blank.is_empty() {
        let mut keep = vec![true; df.height()];
        for &r in bad.iter().map(|b| &b.0).chain(&blank) {
            keep[r] = false;
        }
        let mask = BooleanChunked::from_slice("keep".into(), &keep);
        df = df.filter(&mask).map_err(pl)?;
    }
    let mut keep_cols = vec!["user", "item", "rating"];
    if layout.time.is_some() {
        keep_cols.push("time");
    }
    Ok((df.select(keep_cols).map_err(pl)?, bad_rows))
}

/// Reads `user item item …` lines (LightGCN's train/test files). Lines
/// are independent, so a malformed one names its line and field.
pub(crate) fn read_adjacency(path: &Path, opts: &LoadOptions) -> Result<FileFrame> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let (mut users, mut items) = (Vec::new(), Vec::new());
    let mut bad_rows = 0;
    let mut rows_read = 0;
    for (n, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(u) = fields.next() else { continue };
        let parsed: std::result::Result<(i64, Vec<i64>), (usize, String)> = (|| {
            let u: i64 = u.parse().map_err(|_| (0, u.to_string()))?;
            let its = fields
                .enumerate()
                .map(|(f, v)| v.parse::<i64>().map_err(|_| (f + 1, v.to_string())))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok((u, its))
        })();
        match parsed {
            Ok((u, its)) => {
                rows_read += its.len();
                users.extend(std::iter::repeat_n(u, its.len()));
                items.extend(its);
            }
            Err(_) if opts.skip_bad_rows => bad_rows += 1,
            Err((f, v)) => {
                return Err(Error::MalformedRow {
                    path: path.to_path_buf(),
                    line: n as u64 + 1,
                    field: if f == 0 {
                        "user".into()
                    } else {
                        format!("item {f}")
                    },
                    value: v,
                    reason: "not an integer id".into(),
                })
            }
        }
    }
    let n = users.len();
    let df = DataFrame::new_infer_height(vec![
        Column::new("user".into(), users),
        Column::new("item".into(), items),
        Column::new("rating".into(), vec![1.0f32; n]),
    ])
    .map_err(|e| Error::Polars {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(FileFrame {
        df,
        int_ids: (true, true),
        has_time: false,
        rows_read,
        bad_rows,
    })
}

/// (row index, field name for the message, source column, reason).
type BadRow = (usize, &'static str, &'static str, &'static str);

/// The raw text of one field, re-read for an error message.
fn raw_field(path: &Path, layout: &Layout, row: usize, column: &str) -> String {
    let name = match column {
        "user" => &layout.user,
        "item" => &layout.item,
        "rating" => layout.rating.as_ref().unwrap_or(&layout.user),
        _ => layout.time.as_ref().unwrap_or(&layout.user),
    };
    if layout.format == Format::Parquet {
        return "null".into();
    }
    LazyCsvReader::new(path.to_string_lossy().as_ref().into())
        .with_has_header(layout.has_header)
        .with_separator(layout.separator)
        .with_quote_char(layout.quote)
        .with_infer_schema_length(Some(0))
        .with_truncate_ragged_lines(true)
        .finish()
        .and_then(|lf| {
            lf.slice(row as i64, 1)
                .select([col(name.as_str())])
                .collect()
        })
        .ok()
        .and_then(|df| {
            df.column(name)
                .ok()
                .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)))
        })
        .unwrap_or_default()
}

/// Every malformed row (see [`BadRow`]), in row order; and the blank lines
/// (the CSV reader gives them as all-null rows), dropped without complaint.
fn find_bad_rows(df: &DataFrame, layout: &Layout) -> PolarsResult<(Vec<BadRow>, Vec<usize>)> {
    let mut bad = Vec::new();
    let nulls = |name: &str| -> PolarsResult<Option<Vec<bool>>> {
        let c = df.column(name)?;
        Ok((c.null_count() > 0).then(|| c.is_null().iter().map(|v| v.unwrap_or(true)).collect()))
    };
    let flags = |name: &str| -> PolarsResult<Option<Vec<bool>>> {
        let c = df.column(name)?.bool()?;
        Ok((c.any()).then(|| c.iter().map(|v| v.unwrap_or(true)).collect()))
    };
    let un = nulls("user")?;
    let inn = nulls("item")?;
    let rn = if layout.rating.is_some() {
        flags("rating_missing")?
    } else {
        None
    };
    let blank: Vec<usize> = match (&un, &inn) {
        (Some(u), Some(i)) => (0..df.height())
            .filter(|&r| {
                u[r] && i[r] && (layout.rating.is_none() || rn.as_ref().is_some_and(|m| m[r]))
            })
            .collect(),
        _ => Vec::new(),
    };
    let is_blank = |r: usize| blank.binary_search(&r).is_ok();
    for (name, missing) in [("user", &un), ("item", &inn)] {
        if let Some(m) = missing {
            bad.extend(
                (0..m.len())
                    .filter(|&r| m[r])
                    .map(|r| (r, name, name, "missing field")),
            );
        }
        let c = df.column(name)?;
        if c.dtype() == &DataType::String {
            for (r, v) in c.str()?.iter().enumerate() {
                if v.is_some_and(|s| s.trim().is_empty()) {
                    bad.push((r, name, name, "empty id"));
                }
            }
        }
    }
    if layout.rating.is_some() {
        let parsed = df.column("rating")?.f32()?;
        if parsed.null_count() > 0 || parsed.iter().any(|v| v.is_some_and(|v| !v.is_finite())) {
            for (r, p) in parsed.iter().enumerate() {
                match p {
                    None if rn.as_ref().is_some_and(|m| m[r]) => {
                        bad.push((r, "rating", "rating", "missing field"))
                    }
                    None => bad.push((r, "rating", "rating", "not a number")),
                    Some(v) if !v.is_finite() => {
                        bad.push((r, "rating", "rating", "not a finite number"))
                    }
                    _ => {}
                }
            }
        }
    }
    if layout.time.is_some() {
        let parsed = df.column("time")?.i64()?;
        if parsed.null_count() > 0 {
            let tn = flags("time_missing")?;
            for (r, p) in parsed.iter().enumerate() {
                if p.is_none() {
                    let missing = tn.as_ref().is_some_and(|m| m[r]);
                    bad.push((
                        r,
                        "timestamp",
                        "time",
                        if missing {
                            "missing field"
                        } else {
                            "not an integer"
                        },
                    ));
                }
            }
        }
    }
    bad.retain(|b| !is_blank(b.0));
    bad.sort_by_key(|b| b.0);
    Ok((bad, blank))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_keep_the_newest_then_the_last_row() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.csv");
        std::fs::write(
            &a,
            "user,item,rating,ts\nann,x,1,10\nbob,y,2,10\nann,x,5,20\nann,x,3,15\nbob,y,4,10\n",
        )
        .unwrap();
        let (x, rep) = load(&[a.to_string_lossy().into_owned()], &LoadOptions::default()).unwrap();
        assert_eq!(rep.duplicates_dropped, 3);
        assert_eq!(x.len(), 2);
        let ann = x.user_ids.get("ann").unwrap();
        let n = x.users.iter().position(|&u| u == ann).unwrap();
        assert_eq!(x.values[n], 5.0, "newest timestamp wins");
        let bob = x.user_ids.get("bob").unwrap();
        let n = x.users.iter().position(|&u| u == bob).unwrap();
        assert_eq!(x.values[n], 4.0, "equal timestamps: the later row wins");
    }

    #[test]
    fn integer_and_string_ids_map_densely_in_first_seen_order() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("u.data");
        std::fs::write(&a, "7\t100\t3\t1\n3\t100\t4\t2\n7\t5\t1\t3\n").unwrap();
        let (x, _) = load(&[a.to_string_lossy().into_owned()], &LoadOptions::default()).unwrap();
        assert_eq!(x.users, vec![0, 1, 0]);
        assert_eq!(x.items, vec![0, 0, 1]);
        assert!(matches!(&*x.user_ids, IdMap::Int { ids, .. } if ids == &vec![7, 3]));
        // Mixing integer and string ids across files turns all ids to strings.
        let b = d.path().join("b.csv");
        std::fs::write(&b, "user,item\nzed,100\n").unwrap();
        let (y, _) = load(
            &[
                a.to_string_lossy().into_owned(),
                b.to_string_lossy().into_owned(),
            ],
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(y.n_users(), 3);
        assert_eq!(y.user_ids.get("7"), Some(0));
        assert_eq!(y.user_ids.get("zed"), Some(2));
    }
}
