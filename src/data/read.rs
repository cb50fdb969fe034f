//! Reading one file into checked rows: format detection applied, polars'
//! scans, the row checks with their error messages, adjacency lists, and
//! the guard that turns a reader's panic into an error on that file.

use std::path::Path;

use polars::prelude::*;

use super::{format, Format, Layout, LoadOptions};
use crate::error::{Error, Result};

/// One file read into columns `user`, `item` (Int64 or String), `rating`
/// (Float32) and optionally `time` (Int64).
pub(crate) struct FileFrame {
    pub(crate) df: DataFrame,
    pub(crate) int_ids: (bool, bool),
    pub(crate) has_time: bool,
    pub(crate) rows_read: usize,
    pub(crate) bad_rows: usize,
}

/// [`read_file`], with a panic inside the reader turned into an error on
/// this file. polars' readers can panic on malformed input (a corrupt
/// Parquet footer does, in its metadata decoder); a bad file must not
/// bring the program down.
pub(super) fn read_file_guarded(path: &Path, opts: &LoadOptions) -> Result<FileFrame> {
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
