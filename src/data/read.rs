//! Reading one file into checked rows: format detection applied, polars'
//! scans, the row checks with their error messages, adjacency lists, and
//! the guard that turns a reader's panic into an error on that file.

use std::path::Path;

use polars::prelude::*;

use super::time::TimeFormat;
use super::{format, Format, Layout, LoadOptions, TextEncoding};
use crate::error::{Error, Result};

/// One file read into columns `user`, `item` (Int64 or String), `rating`
/// (Float32) and optionally `time` (Int64).
pub(crate) struct FileFrame {
    pub(crate) df: DataFrame,
    pub(crate) int_ids: (bool, bool),
    pub(crate) has_time: bool,
    pub(crate) rows_read: usize,
    pub(crate) bad_rows: usize,
    /// Rows without a user or item id, skipped.
    pub(crate) empty_ids: usize,
    /// What reading decided (encoding, time format), for the load report.
    pub(crate) notes: Vec<String>,
}

/// The file polars reads for a delimited file: the file itself when it is
/// UTF-8 (bad bytes in columns the command does not use are never looked
/// at), else a UTF-8 copy in a temporary file that lives as long as this.
pub(crate) struct TextSource {
    pub(crate) path: std::path::PathBuf,
    /// Read lossily as UTF-8: an id holding U+FFFD came from a bad byte.
    pub(crate) lossy_utf8: bool,
    pub(crate) note: Option<String>,
    _copy: Option<tempfile::TempPath>,
}

/// Where to read `path` from, decoding it as `opts.encoding` says (see
/// [`TextEncoding`]).
pub(crate) fn text_source(path: &Path, layout: &Layout, opts: &LoadOptions) -> Result<TextSource> {
    let as_is = |note: Option<String>| TextSource {
        path: path.to_path_buf(),
        lossy_utf8: true,
        note,
        _copy: None,
    };
    if layout.format == Format::Parquet {
        return Ok(as_is(None));
    }
    let enc = match opts.encoding {
        TextEncoding::Named(e) if e == encoding_rs::UTF_8 => return Ok(as_is(None)),
        TextEncoding::Named(e) => e,
        TextEncoding::Auto => {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            // SAFETY: the map is read-only and dropped before this call
            // returns; recsys never writes a data file it reads. Another
            // program changing or truncating the file while it is mapped is
            // outside what we can defend against, as for any mapped file
            // (and as for the model loader's map).
            let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
            match sniff_encoding(&bytes) {
                None => return Ok(as_is(None)),
                Some(e) => e,
            }
        }
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (text, _, had_errors) = enc.decode(&bytes);
    let mut tmp = tempfile::Builder::new()
        .prefix(".recsys-decoded-")
        .suffix(".csv")
        .tempfile()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(|e| Error::io(tmp.path(), e))?;
    let detected = if opts.encoding == TextEncoding::Auto {
        " (detected: the file is not UTF-8)"
    } else {
        ""
    };
    let bad = if had_errors {
        "; bytes that are not in it became U+FFFD"
    } else {
        ""
    };
    Ok(TextSource {
        path: tmp.path().to_path_buf(),
        lossy_utf8: false,
        note: Some(format!(
            "{}: read as {}{detected}{bad}",
            path.display(),
            enc.name()
        )),
        _copy: Some(tmp.into_temp_path()),
    })
}

/// `None` when `bytes` read as UTF-8 (valid, or UTF-8 with a few bad bytes
/// among valid multi-byte characters); else the encoding to decode with:
/// UTF-16 by its byte-order mark, windows-1252 otherwise.
fn sniff_encoding(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    if let Some((enc, _)) = encoding_rs::Encoding::for_bom(bytes) {
        return (enc != encoding_rs::UTF_8).then_some(enc);
    }
    let (mut rest, mut bad) = (bytes, false);
    loop {
        match std::str::from_utf8(rest) {
            Ok(tail) if !tail.is_ascii() => return None,
            Ok(_) => break,
            Err(e) => {
                // A valid run with a non-ASCII byte holds a multi-byte
                // character: the file is UTF-8, with some bad bytes.
                if !rest[..e.valid_up_to()].is_ascii() {
                    return None;
                }
                bad = true;
                let skip = e.valid_up_to() + e.error_len().unwrap_or(rest.len() - e.valid_up_to());
                rest = &rest[skip..];
            }
        }
    }
    bad.then_some(encoding_rs::WINDOWS_1252)
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
    let source = text_source(path, &layout, opts)?;
    let df = scan(&source.path, &layout)?
        .collect_with_engine(Engine::Streaming)
        .map_err(pl)?
        .unwrap_single();
    let rows_read = df.height();
    let mut time_format = opts.time_format.clone();
    let checked = check_rows(df, path, &source, &layout, 0, opts, &mut time_format)?;
    let df = checked.df;
    let mut notes: Vec<String> = source.note.iter().cloned().collect();
    if let (Some(t), Some(f)) = (&layout.time, &time_format) {
        if opts.time_format.is_none() && *f != TimeFormat::Integer {
            notes.push(format!(
                "{}: time column `{t}` read as {f} (detected; --time-format sets it)",
                path.display()
            ));
        }
    }
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
        bad_rows: checked.bad_rows,
        empty_ids: checked.empty_ids,
        notes,
    })
}

/// The lazy read of one delimited or Parquet file (for a file in another
/// encoding, of its [`text_source`]): columns `user`, `item`, `rating`
/// (Float32; 1 without a value column) and `time` (as in the file), plus
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
            // Bad bytes become U+FFFD instead of failing the whole read:
            // they may sit in a column the command does not use.
            .with_encoding(CsvEncoding::LossyUtf8)
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
        // Raw: strings become integers in `check_rows`, which knows the
        // time format.
        sel.push(col(t.as_str()).alias("time"));
        sel.push(col(t.as_str()).is_null().alias("time_missing"));
    }
    Ok(lf.select(sel))
}

/// What [`check_rows`] kept.
pub(crate) struct Checked {
    /// Columns `user`, `item`, `rating` (and `time`, Int64).
    pub(crate) df: DataFrame,
    pub(crate) bad_rows: usize,
    pub(crate) empty_ids: usize,
}

/// Checks the rows of a [`scan`] of `source` (read for `path`) whose first
/// row is data row `offset` of the file: a malformed row is an error naming
/// its line and field (or is dropped and counted with `skip_bad_rows`);
/// blank lines are dropped, rows without a user or item id are dropped and
/// counted. Time strings become integers in `time_format`, which is
/// detected from these rows when `None` (and kept for the next batch).
pub(crate) fn check_rows(
    mut df: DataFrame,
    path: &Path,
    source: &TextSource,
    layout: &Layout,
    offset: usize,
    opts: &LoadOptions,
    time_format: &mut Option<TimeFormat>,
) -> Result<Checked> {
    let pl = |e: PolarsError| Error::Polars {
        path: path.to_path_buf(),
        source: e,
    };
    if let Some(name) = &layout.time {
        let times = parse_times(&df, path, name, time_format).map_err(|e| match e {
            TimeError::Polars(e) => pl(e),
            TimeError::Unknown(message) => Error::Format {
                path: path.to_path_buf(),
                message,
            },
        })?;
        df.replace("time", times).map_err(pl)?;
    }
    let time_reason = match time_format {
        Some(TimeFormat::Integer) | None => "not an integer".to_string(),
        Some(f) => format!("not a time in the format {f}"),
    };
    let rows = find_bad_rows(&df, layout, source.lossy_utf8, &time_reason).map_err(pl)?;
    let mut bad_rows = 0;
    if let Some((row, field, column, reason)) = rows.bad.first() {
        if !opts.skip_bad_rows {
            let column_name = match *column {
                "user" => Some(&layout.user),
                "item" => Some(&layout.item),
                "rating" => layout.rating.as_ref(),
                _ => layout.time.as_ref(),
            };
            let field = match column_name {
                Some(c) if layout.has_header && c != field => format!("{field}` in column `{c}"),
                _ => field.to_string(),
            };
            return Err(Error::MalformedRow {
                path: path.to_path_buf(),
                line: format::line_of_row(layout, offset + row),
                field,
                value: raw_field(&source.path, layout, offset + row, column),
                reason: reason.clone(),
            });
        }
        bad_rows = rows.bad.len();
    }
    let empty_ids = rows.empty.len();
    if !rows.bad.is_empty() || !rows.blank.is_empty() || !rows.empty.is_empty() {
        let mut keep = vec![true; df.height()];
        for &r in rows
            .bad
            .iter()
            .map(|b| &b.0)
            .chain(&rows.blank)
            .chain(&rows.empty)
        {
            keep[r] = false;
        }
        let mask = BooleanChunked::from_slice("keep".into(), &keep);
        df = df.filter(&mask).map_err(pl)?;
    }
    let mut keep_cols = vec!["user", "item", "rating"];
    if layout.time.is_some() {
        keep_cols.push("time");
    }
    Ok(Checked {
        df: df.select(keep_cols).map_err(pl)?,
        bad_rows,
        empty_ids,
    })
}

enum TimeError {
    Polars(PolarsError),
    Unknown(String),
}

impl From<PolarsError> for TimeError {
    fn from(e: PolarsError) -> Self {
        TimeError::Polars(e)
    }
}

/// The `time` column as Int64: strings read in `format` (detected from a
/// sample of up to 5,000 values spread over the rows when `None`), values
/// that do not read as null; other types cast.
fn parse_times(
    df: &DataFrame,
    path: &Path,
    name: &str,
    format: &mut Option<TimeFormat>,
) -> std::result::Result<Column, TimeError> {
    use rayon::prelude::*;
    let c = df.column("time")?;
    if c.dtype() != &DataType::String {
        return Ok(c.cast(&DataType::Int64)?);
    }
    let strs = c.str()?;
    let values: Vec<Option<&str>> = strs.iter().collect();
    if format.is_none() {
        let present: Vec<&str> = values.iter().flatten().copied().collect();
        let step = present.len().div_ceil(5_000).max(1);
        let sample = present.iter().step_by(step).copied();
        match TimeFormat::detect(sample) {
            Some(f) => *format = Some(f),
            None if present.iter().all(|s| s.trim().is_empty()) => {
                return Ok(c.cast(&DataType::Int64)?)
            }
            None => {
                let example = present
                    .iter()
                    .find(|s| !s.trim().is_empty())
                    .copied()
                    .unwrap_or("");
                return Err(TimeError::Unknown(format!(
                    "time column `{name}`: no known format reads values like {example:?}; \
                     give --time-format (a strftime pattern such as \"%m/%d/%Y %H:%M\", \
                     or integer, or rfc3339)"
                )));
            }
        }
    }
    let f = format.as_ref().expect("set above");
    let _ = path;
    let parsed: Vec<Option<i64>> = values
        .par_iter()
        .map(|v| v.and_then(|s| f.parse(s)))
        .collect();
    Ok(Column::new("time".into(), parsed))
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
        empty_ids: 0,
        notes: Vec::new(),
    })
}

/// (row index, field name for the message, source column, reason).
type BadRow = (usize, &'static str, &'static str, String);

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
        .with_encoding(CsvEncoding::LossyUtf8)
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

/// The rows [`check_rows`] drops, each list in row order.
struct RowIssues {
    /// Malformed rows.
    bad: Vec<BadRow>,
    /// Blank lines (the CSV reader gives them as all-null rows).
    blank: Vec<usize>,
    /// Rows without a user or item id (an event log's anonymous rows).
    empty: Vec<usize>,
}

/// Sorts the rows of `df` into [`RowIssues`]. With `lossy_utf8`, an id
/// holding U+FFFD came from a byte that is not UTF-8: a malformed row.
fn find_bad_rows(
    df: &DataFrame,
    layout: &Layout,
    lossy_utf8: bool,
    time_reason: &str,
) -> PolarsResult<RowIssues> {
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
    // A row cut short has no value or time either (in a file that has those
    // columns): its missing id is a malformed row. An id left empty in a row
    // that has them, or in a file of ids alone, is an anonymous event:
    // skipped and counted.
    let tn = if layout.time.is_some() {
        flags("time_missing")?
    } else {
        None
    };
    let cut_short = |r: usize| {
        (layout.rating.is_some() || layout.time.is_some())
            && (layout.rating.is_none() || rn.as_ref().is_some_and(|m| m[r]))
            && (layout.time.is_none() || tn.as_ref().is_some_and(|m| m[r]))
    };
    let mut empty = vec![false; df.height()];
    for (name, missing) in [("user", &un), ("item", &inn)] {
        if let Some(m) = missing {
            for (r, &gone) in m.iter().enumerate() {
                if !gone {
                    continue;
                }
                if cut_short(r) {
                    bad.push((r, name, name, "missing field".to_string()));
                } else {
                    empty[r] = true;
                }
            }
        }
        let c = df.column(name)?;
        if c.dtype() == &DataType::String {
            for (r, v) in c.str()?.iter().enumerate() {
                match v {
                    Some(s) if s.trim().is_empty() => empty[r] = true,
                    Some(s) if lossy_utf8 && s.contains('\u{FFFD}') => bad.push((
                        r,
                        name,
                        name,
                        "not valid UTF-8: the file may be in another encoding \
                         (pass --encoding, e.g. latin-1)"
                            .to_string(),
                    )),
                    _ => {}
                }
            }
        }
    }
    if layout.rating.is_some() {
        let parsed = df.column("rating")?.f32()?;
        if parsed.null_count() > 0 || parsed.iter().any(|v| v.is_some_and(|v| !v.is_finite())) {
            for (r, p) in parsed.iter().enumerate() {
                let why = match p {
                    None if rn.as_ref().is_some_and(|m| m[r]) => "missing field",
                    None => "not a number",
                    Some(v) if !v.is_finite() => "not a finite number",
                    _ => continue,
                };
                bad.push((r, "rating", "rating", why.to_string()));
            }
        }
    }
    if layout.time.is_some() {
        let parsed = df.column("time")?.i64()?;
        if parsed.null_count() > 0 {
            for (r, p) in parsed.iter().enumerate() {
                if p.is_none() {
                    let missing = tn.as_ref().is_some_and(|m| m[r]);
                    let why = if missing {
                        "missing field"
                    } else {
                        time_reason
                    };
                    bad.push((r, "timestamp", "time", why.to_string()));
                }
            }
        }
    }
    // A row without an id is skipped whatever else is wrong with it.
    bad.retain(|b| !is_blank(b.0) && !empty[b.0]);
    bad.sort_by_key(|b| b.0);
    let empty = (0..df.height())
        .filter(|&r| empty[r] && !is_blank(r))
        .collect();
    Ok(RowIssues { bad, blank, empty })
}
