//! Input formats and their detection.
//!
//! A [`Layout`] says how to read one file: the [`Format`], the separator,
//! whether there is a header, and which columns hold the user, item, rating
//! and timestamp. [`detect`] works it out from the file name and first lines.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;

use polars::prelude::*;

use super::LoadOptions;
use crate::error::{Error, Result};

/// The formats recsys reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    /// MovieLens 100K `u.data` / `u1.base`: tab-separated `user item rating ts`, no header.
    Ml100k,
    /// MovieLens 1M `ratings.dat`: `user::item::rating[::ts]`, no header.
    Ml1m,
    /// Comma-separated, with or without a header (MovieLens "latest" `ratings.csv` is one).
    Csv,
    /// Tab-separated, with or without a header.
    Tsv,
    Parquet,
    /// LightGCN/NGCF adjacency lists: `user item item …` per line, space-separated.
    Adjacency,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ml100k" | "ml-100k" | "udata" => Format::Ml100k,
            "ml1m" | "ml-1m" | "dat" => Format::Ml1m,
            "csv" | "mllatest" => Format::Csv,
            "tsv" => Format::Tsv,
            "parquet" | "pq" => Format::Parquet,
            other => {
                return Err(format!(
                    "unknown format {other:?} (expected ml100k, ml1m, csv, tsv or parquet)"
                ))
            }
        })
    }
}

/// How to read one file.
#[derive(Clone, Debug)]
pub struct Layout {
    pub format: Format,
    pub separator: u8,
    pub has_header: bool,
    pub quote: Option<u8>,
    pub user: String,
    pub item: String,
    pub rating: Option<String>,
    pub time: Option<String>,
}

const USER_NAMES: &[&str] = &[
    "user",
    "user_id",
    "userid",
    "uid",
    "user id",
    "customer_id",
    "customerid",
    "visitor_id",
    "visitorid",
];
const ITEM_NAMES: &[&str] = &[
    "item",
    "item_id",
    "itemid",
    "iid",
    "movieid",
    "movie_id",
    "product_id",
    "productid",
    "track_id",
    "stockcode",
    "sku",
];
const RATING_NAMES: &[&str] = &[
    "rating",
    "score",
    "weight",
    "value",
    "count",
    "plays",
    "playcount",
    "quantity",
    "qty",
];
const TIME_NAMES: &[&str] = &[
    "timestamp",
    "ts",
    "time",
    "unix_time",
    "epoch",
    "datetime",
    "event_time",
    "invoicedate",
];

/// Files a folder source contributes: known data extensions and the MovieLens names.
pub fn looks_like_data_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') || name.to_ascii_lowercase().starts_with("readme") {
        return false;
    }
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        ext.as_str(),
        "csv" | "tsv" | "parquet" | "pq" | "dat" | "base" | "txt"
    ) || name == "u.data"
}

fn pick(
    names: &[String],
    wanted: Option<&String>,
    known: &[&str],
    what: &str,
    path: &Path,
) -> Result<Option<String>> {
    if let Some(w) = wanted {
        return match names.iter().find(|n| *n == w) {
            Some(n) => Ok(Some(n.clone())),
            None => Err(Error::Format {
                path: path.to_path_buf(),
                message: format!(
                    "no column {w:?} for the {what} (columns: {})",
                    names.join(", ")
                ),
            }),
        };
    }
    Ok(names
        .iter()
        .find(|n| known.contains(&n.trim().to_ascii_lowercase().as_str()))
        .cloned())
}

fn named_layout(
    format: Format,
    sep: u8,
    names: &[String],
    opts: &LoadOptions,
    path: &Path,
) -> Result<Layout> {
    let need = |v: Option<String>, what: &str, flag: &str| {
        v.ok_or_else(|| Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "cannot tell which column holds the {what} (columns: {}); name it with {flag}",
                names.join(", ")
            ),
        })
    };
    Ok(Layout {
        format,
        separator: sep,
        has_header: true,
        quote: Some(b'"'),
        user: need(
            pick(names, opts.user_col.as_ref(), USER_NAMES, "user", path)?,
            "user",
            "--user-col",
        )?,
        item: need(
            pick(names, opts.item_col.as_ref(), ITEM_NAMES, "item", path)?,
            "item",
            "--item-col",
        )?,
        rating: pick(
            names,
            opts.rating_col.as_ref(),
            RATING_NAMES,
            "rating",
            path,
        )?,
        time: pick(names, opts.time_col.as_ref(), TIME_NAMES, "timestamp", path)?,
    })
}

fn positional(format: Format, sep: u8, n_fields: usize, step: usize) -> Layout {
    let c = |k: usize| format!("column_{}", 1 + k * step);
    Layout {
        format,
        separator: sep,
        has_header: false,
        quote: None,
        user: c(0),
        item: c(1),
        rating: (n_fields >= 3).then(|| c(2)),
        time: (n_fields >= 4).then(|| c(3)),
    }
}

fn first_lines(path: &Path, n: usize) -> Result<Vec<String>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    // Cap what we read: a binary file may have no newline at all.
    let mut r = BufReader::new(f.take(1 << 20));
    let mut buf = Vec::new();
    while out.len() < n {
        buf.clear();
        let got = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if got == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf)
            .trim_end_matches(['\n', '\r'])
            .to_string();
        if !line.trim().is_empty() {
            out.push(line);
        }
    }
    Ok(out)
}

fn is_number(s: &str) -> bool {
    s.trim().parse::<f64>().is_ok()
}

/// Works out how to read `path` (see [`Layout`]).
pub fn detect(path: &Path, opts: &LoadOptions) -> Result<Layout> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let format = opts.format.or(match ext.as_str() {
        "parquet" | "pq" => Some(Format::Parquet),
        _ => None,
    });
    if format == Some(Format::Parquet) {
        let mut lf = LazyFrame::scan_parquet(
            path.to_string_lossy().as_ref().into(),
            ScanArgsParquet::default(),
        )
        .map_err(|e| Error::Polars {
            path: path.to_path_buf(),
            source: e,
        })?;
        let schema = lf.collect_schema().map_err(|e| Error::Polars {
            path: path.to_path_buf(),
            source: e,
        })?;
        let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        return named_layout(Format::Parquet, b',', &names, opts, path);
    }
    let lines = first_lines(path, 2)?;
    let Some(first) = lines.first() else {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: "the file is empty".into(),
        });
    };
    if first.contains('\0') {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: "this is a binary file, not a text interaction log".into(),
        });
    }
    if format == Some(Format::Ml1m) || (format.is_none() && first.contains("::")) {
        let n = first.split("::").count();
        return Ok(positional(Format::Ml1m, b':', n, 2));
    }
    // Adjacency lists: space-separated integers, lines of varying length.
    let all_ints = |l: &str| {
        l.split(' ')
            .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    };
    let ragged = lines.len() > 1 && first.split(' ').count() != lines[1].split(' ').count();
    if format == Some(Format::Adjacency)
        || (format.is_none()
            && !first.contains([',', '\t', ';'])
            && all_ints(first)
            && (ragged || first.split(' ').count() > 4))
    {
        return Ok(Layout {
            format: Format::Adjacency,
            separator: b' ',
            has_header: false,
            quote: None,
            user: "user".into(),
            item: "item".into(),
            rating: None,
            time: None,
        });
    }
    let sep = match format {
        Some(Format::Ml100k | Format::Tsv) => b'\t',
        Some(Format::Csv) => b',',
        _ if first.contains('\t') => b'\t',
        _ if first.contains(',') => b',',
        _ if first.contains(';') => b';',
        _ => b' ',
    };
    let fmt = format.unwrap_or(if sep == b'\t' {
        Format::Tsv
    } else {
        Format::Csv
    });
    let fields: Vec<String> = first
        .split(sep as char)
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect();
    let known = |f: &String| {
        let l = f.to_ascii_lowercase();
        USER_NAMES.contains(&l.as_str()) || ITEM_NAMES.contains(&l.as_str())
    };
    let named = opts.user_col.as_ref().is_some_and(|u| fields.contains(u));
    // A header names a known column, or its last field is text where the next
    // line's is a number.
    let header = fmt != Format::Ml100k
        && (named
            || fields.iter().any(known)
            || (lines.len() > 1
                && !is_number(fields.last().map(String::as_str).unwrap_or(""))
                && lines[1]
                    .split(sep as char)
                    .next_back()
                    .is_some_and(is_number)));
    if header {
        return named_layout(fmt, sep, &fields, opts, path);
    }
    if fields.len() < 2 {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: format!(
                "line 1 has {} field(s) with separator {:?}; need at least user and item",
                fields.len(),
                sep as char
            ),
        });
    }
    let fmt = if sep == b'\t' && fields.len() == 4 {
        Format::Ml100k
    } else {
        fmt
    };
    Ok(positional(fmt, sep, fields.len(), 1))
}

/// The 1-based line of data row `row` (0-based). The CSV reader keeps
/// blank lines as (all-null) rows, so rows and lines correspond one to one.
pub fn line_of_row(layout: &Layout, row: usize) -> u64 {
    row as u64 + 1 + layout.has_header as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn detects_the_movielens_layouts_and_headers() {
        let d = tempfile::tempdir().unwrap();
        let o = LoadOptions::default();
        let l = detect(&write(&d, "u.data", "1\t2\t3\t881250949\n"), &o).unwrap();
        assert_eq!(
            (l.format, l.has_header, l.time.as_deref()),
            (Format::Ml100k, false, Some("column_4"))
        );
        let l = detect(&write(&d, "r.dat", "1::1193::5\n"), &o).unwrap();
        assert_eq!(
            (
                l.format,
                l.item.as_str(),
                l.rating.as_deref(),
                l.time.as_deref()
            ),
            (Format::Ml1m, "column_3", Some("column_5"), None)
        );
        let l = detect(
            &write(
                &d,
                "ratings.csv",
                "userId,movieId,rating,timestamp\n1,2,3.5,9\n",
            ),
            &o,
        )
        .unwrap();
        assert_eq!(
            (
                l.user.as_str(),
                l.item.as_str(),
                l.rating.as_deref(),
                l.time.as_deref()
            ),
            ("userId", "movieId", Some("rating"), Some("timestamp"))
        );
        let l = detect(&write(&d, "x.csv", "who,what,stars\nu1,i1,4\n"), &o).unwrap_err();
        assert!(l.to_string().contains("--user-col"), "{l}");
        let o2 = LoadOptions {
            user_col: Some("who".into()),
            item_col: Some("what".into()),
            rating_col: Some("stars".into()),
            ..Default::default()
        };
        let l = detect(&write(&d, "y.csv", "who,what,stars\nu1,i1,4\n"), &o2).unwrap();
        assert_eq!(l.rating.as_deref(), Some("stars"));
        let l = detect(&write(&d, "train.txt", "0 5 6 7\n1 2\n"), &o).unwrap();
        assert_eq!(l.format, Format::Adjacency);
        let l = detect(&write(&d, "z.csv", "u1,i1\n"), &o).unwrap();
        assert_eq!((l.has_header, l.rating.as_deref()), (false, None));
        assert!(detect(&write(&d, "e.csv", ""), &o).is_err());
    }
}
