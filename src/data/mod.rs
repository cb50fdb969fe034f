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

pub mod format;
pub mod split;
pub mod synth;
pub mod titles;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::interactions::{IdMap, Interactions};
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
struct FileFrame {
    df: DataFrame,
    int_ids: (bool, bool),
    has_time: bool,
    rows_read: usize,
    bad_rows: usize,
}

/// Loads interactions from files, folders or globs. See the module docs.
pub fn load(sources: &[String], opts: &LoadOptions) -> Result<(Interactions, LoadReport)> {
    let files = expand_sources(sources)?;
    let mut frames = Vec::with_capacity(files.len());
    for f in &files {
        frames.push(read_file(f, opts)?);
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
    let all = all.ok_or_else(|| Error::Other("no input files".into()))?;

    // Duplicates: the last one wins, by time when there is a time column.
    let n_before = all.height();
    let mut lf = all.lazy();
    if has_time {
        lf = lf.sort(
            ["time"],
            SortMultipleOptions::default().with_maintain_order(true),
        );
    }
    let dedup = lf
        .unique_stable_generic(
            Some(vec![col("user"), col("item")]),
            UniqueKeepStrategy::Last,
        )
        .collect()
        .map_err(&pl)?;
    report.duplicates_dropped = n_before - dedup.height();

    let (users, user_ids) = dense_ids(&dedup, "user").map_err(&pl)?;
    let (items, item_ids) = dense_ids(&dedup, "item").map_err(&pl)?;
    let values: Vec<f32> = dedup
        .column("rating")
        .map_err(&pl)?
        .f32()
        .map_err(&pl)?
        .into_no_null_iter()
        .collect();
    let times = if has_time {
        Some(
            dedup
                .column("time")
                .map_err(&pl)?
                .i64()
                .map_err(&pl)?
                .into_no_null_iter()
                .collect(),
        )
    } else {
        None
    };
    let x = Interactions {
        users,
        items,
        values,
        times,
        user_ids: Arc::new(user_ids),
        item_ids: Arc::new(item_ids),
    };
    let n_dedup = x.len();
    let x = filter_min_counts(x, opts.min_user_count, opts.min_item_count);
    report.filtered_out = n_dedup - x.len();
    report.rows = x.len();
    report.users = x.n_users();
    report.items = x.n_items();
    Ok((x, report))
}

/// Dense `u32` indices in first-seen order for column `name`, and the id map.
fn dense_ids(df: &DataFrame, name: &str) -> PolarsResult<(Vec<u32>, IdMap)> {
    let idx_name = format!("{name}__idx");
    let uniq = df
        .clone()
        .lazy()
        .select([col(name)])
        .unique_stable(None, UniqueKeepStrategy::First)
        .with_row_index(idx_name.as_str(), None)
        .collect()?;
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    let joined = df
        .clone()
        .lazy()
        .select([col(name)])
        .join(uniq.clone().lazy(), [col(name)], [col(name)], args)
        .select([col(idx_name.as_str()).cast(DataType::UInt32)])
        .collect()?;
    let idx: Vec<u32> = joined
        .column(&idx_name)?
        .u32()?
        .into_no_null_iter()
        .collect();
    let ids = uniq.column(name)?;
    let map = match ids.dtype() {
        DataType::Int64 => IdMap::from_ints(ids.i64()?.into_no_null_iter().collect()),
        _ => IdMap::from_strings(
            ids.str()?
                .iter()
                .map(|s| s.unwrap_or_default().to_string())
                .collect(),
        ),
    };
    Ok((idx, map))
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

fn read_file(path: &Path, opts: &LoadOptions) -> Result<FileFrame> {
    let layout = format::detect(path, opts)?;
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
    // Keep the raw text of the numeric fields next to their parsed value, so a
    // value that does not parse can be told from one that is missing.
    let mut sel = vec![
        col(layout.user.as_str()).alias("user"),
        col(layout.item.as_str()).alias("item"),
    ];
    match &layout.rating {
        Some(r) => {
            sel.push(col(r.as_str()).cast(DataType::Float32).alias("rating"));
            sel.push(col(r.as_str()).cast(DataType::String).alias("rating_raw"));
        }
        None => sel.push(lit(1.0f32).alias("rating")),
    }
    if let Some(t) = &layout.time {
        sel.push(col(t.as_str()).cast(DataType::Int64).alias("time"));
        sel.push(col(t.as_str()).cast(DataType::String).alias("time_raw"));
    }
    let mut df = lf
        .select(sel)
        .collect_with_engine(Engine::Streaming)
        .map_err(pl)?
        .unwrap_single();
    let rows_read = df.height();

    let (bad, blank) = find_bad_rows(&df, &layout).map_err(pl)?;
    let mut bad_rows = 0;
    if let Some(&(row, field, ref value, reason)) = bad.first() {
        if !opts.skip_bad_rows {
            return Err(Error::MalformedRow {
                path: path.to_path_buf(),
                line: format::line_of_row(&layout, row),
                field: field.to_string(),
                value: value.clone(),
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
    // An id column is integral when every value parses as an integer.
    let int_col = |df: &DataFrame, name: &str| -> PolarsResult<bool> {
        let c = df.column(name)?;
        if c.dtype().is_integer() {
            return Ok(true);
        }
        if c.dtype() != &DataType::String {
            return Ok(false);
        }
        let cast = c.cast(&DataType::Int64)?;
        Ok(cast.null_count() == 0)
    };
    let int_ids = (
        int_col(&df, "user").map_err(pl)?,
        int_col(&df, "item").map_err(pl)?,
    );
    let mut keep_cols = vec!["user", "item", "rating"];
    if layout.time.is_some() {
        keep_cols.push("time");
    }
    let df = df.select(keep_cols).map_err(pl)?;
    Ok(FileFrame {
        df,
        int_ids,
        has_time: layout.time.is_some(),
        rows_read,
        bad_rows,
    })
}

type BadRow = (usize, &'static str, String, &'static str);

/// Every malformed row: (row index, field, raw value, reason), in row order;
/// and the blank lines (the CSV reader gives them as all-null rows), which
/// are dropped without complaint.
fn find_bad_rows(df: &DataFrame, layout: &Layout) -> PolarsResult<(Vec<BadRow>, Vec<usize>)> {
    let mut bad = Vec::new();
    let all_null = |name: &str| -> PolarsResult<Vec<bool>> {
        Ok(match df.column(name) {
            Ok(c) => c.is_null().iter().map(|v| v.unwrap_or(true)).collect(),
            Err(_) => vec![true; df.height()],
        })
    };
    let (un, inn) = (all_null("user")?, all_null("item")?);
    let rn = if layout.rating.is_some() {
        all_null("rating_raw")?
    } else {
        vec![true; df.height()]
    };
    let blank: Vec<usize> = (0..df.height())
        .filter(|&r| un[r] && inn[r] && rn[r])
        .collect();
    let is_blank = |r: usize| un[r] && inn[r] && rn[r];
    let id_col =
        |name: &'static str, field: &'static str, bad: &mut Vec<BadRow>| -> PolarsResult<()> {
            let c = df.column(name)?.as_materialized_series().clone();
            if c.dtype() == &DataType::String {
                for (r, v) in c.str()?.iter().enumerate() {
                    match v {
                        None => bad.push((r, field, String::new(), "missing field")),
                        Some(s) if s.trim().is_empty() => {
                            bad.push((r, field, s.to_string(), "empty id"))
                        }
                        _ => {}
                    }
                }
            } else if c.null_count() > 0 {
                for (r, v) in c.is_null().iter().enumerate() {
                    if v == Some(true) {
                        bad.push((r, field, String::new(), "missing value"));
                    }
                }
            }
            Ok(())
        };
    id_col("user", "user", &mut bad)?;
    id_col("item", "item", &mut bad)?;
    if layout.rating.is_some() {
        let parsed = df.column("rating")?.f32()?;
        let raw = df.column("rating_raw")?.str()?;
        for (r, (p, s)) in parsed.iter().zip(raw.iter()).enumerate() {
            match (p, s) {
                (_, None) => bad.push((r, "rating", String::new(), "missing field")),
                (None, Some(s)) => bad.push((r, "rating", s.to_string(), "not a number")),
                (Some(v), Some(s)) if !v.is_finite() => {
                    bad.push((r, "rating", s.to_string(), "not a finite number"))
                }
                _ => {}
            }
        }
    }
    if layout.time.is_some() {
        let parsed = df.column("time")?.i64()?;
        let raw = df.column("time_raw")?.str()?;
        for (r, (p, s)) in parsed.iter().zip(raw.iter()).enumerate() {
            match (p, s) {
                (_, None) => bad.push((r, "timestamp", String::new(), "missing field")),
                (None, Some(s)) => bad.push((r, "timestamp", s.to_string(), "not an integer")),
                _ => {}
            }
        }
    }
    bad.retain(|b| !is_blank(b.0));
    bad.sort_by_key(|b| b.0);
    Ok((bad, blank))
}
