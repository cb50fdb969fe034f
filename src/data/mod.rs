//! Reading interaction logs into [`Interactions`](crate::interactions::Interactions).
//!
//! [`load`] expands files, folders and globs, detects each file's format
//! ([`format`]), reads it with polars (lazy scans, so big files stream), checks
//! every row (a malformed row names its file, line and field; a row without
//! a user or item id is skipped and counted), combines repeated (user, item)
//! rows ([`Aggregate`]: by default the last one wins, newest by timestamp
//! when there is one, else the later row), maps external ids to dense `u32`
//! indices, and applies the minimum-count filters. Delimited files in
//! another encoding than UTF-8 are decoded first ([`TextEncoding`]); columns
//! a command does not use are never parsed.
//! [`split`] cuts a train/test split; [`synth`] generates data with planted
//! structure; [`titles`] reads item-title files.
//! Reading one file (scans, row checks, adjacency lists) is in `read.rs`;
//! [`export`] writes and reads the layout the Spark job uses.

pub mod export;
pub mod feedback;
pub mod format;
mod read;
pub mod split;
pub mod synth;
pub mod time;
pub mod titles;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use crate::error::{Error, Result};
use rayon::prelude::*;

use crate::interactions::{Csr, FastMap, IdMap, Interactions};
pub use format::{Format, Layout};
use read::read_file_guarded;
pub(crate) use read::{check_rows, guard_reader, read_adjacency, scan, text_source};

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
    /// Text encoding of delimited files.
    pub encoding: TextEncoding,
    /// How repeated (user, item) rows combine; `None`: the last one wins.
    /// (The training pipeline makes it `sum` for implicit feedback.)
    pub aggregate: Option<Aggregate>,
    /// Drop entries whose combined value is ≤ 0 (returns and cancellations
    /// in an event log), counting them.
    pub drop_non_positive: bool,
    /// How the time column's strings read; `None`: detected per file.
    pub time_format: Option<time::TimeFormat>,
}

/// The text encoding of delimited files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 when the file is valid UTF-8; a file with no valid multi-byte
    /// UTF-8 sequence but bytes that are not UTF-8 reads as windows-1252
    /// (the superset of Latin-1 that spreadsheets write); a file that is
    /// UTF-8 with a few bad bytes reads as UTF-8, and a bad byte in a column
    /// the command uses is an error naming its line and column.
    #[default]
    Auto,
    /// Any WHATWG encoding label (`utf-8`, `latin-1`, `windows-1252`,
    /// `iso-8859-15`, `shift_jis`, …). ASCII-compatible encodings only: the
    /// layout (separator, header) is read before decoding, so a UTF-16 file
    /// is refused as binary.
    Named(&'static encoding_rs::Encoding),
}

impl std::str::FromStr for TextEncoding {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(TextEncoding::Auto);
        }
        // "latin-1" is how people write it; WHATWG spells it latin1.
        let label = if s.eq_ignore_ascii_case("latin-1") {
            "latin1"
        } else {
            s
        };
        encoding_rs::Encoding::for_label(label.as_bytes())
            .map(TextEncoding::Named)
            .ok_or_else(|| {
                format!(
                    "unknown encoding `{s}`: give auto, utf-8, latin-1, windows-1252, \
                     iso-8859-15 or another WHATWG label"
                )
            })
    }
}

/// How repeated rows of one (user, item) pair combine into one entry. The
/// entry's time is the newest of the rows'.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// The newest row (by time, then by position) wins: ratings, where a
    /// user's later rating replaces the earlier one.
    #[default]
    Last,
    /// The values add up: event logs (plays, purchases, clicks), where each
    /// row is one event.
    Sum,
    /// The number of rows, whatever their values.
    Count,
    /// The largest value.
    Max,
}

impl Aggregate {
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Last => "last",
            Aggregate::Sum => "sum",
            Aggregate::Count => "count",
            Aggregate::Max => "max",
        }
    }
}

impl std::str::FromStr for Aggregate {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "last" => Aggregate::Last,
            "sum" => Aggregate::Sum,
            "count" => Aggregate::Count,
            "max" => Aggregate::Max,
            _ => return Err(format!("`{s}` is not one of sum, count, max, last")),
        })
    }
}

/// What [`load`] did, for the user to see.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LoadReport {
    pub files: Vec<PathBuf>,
    pub rows_read: usize,
    pub bad_rows_skipped: usize,
    /// Rows without a user or item id, skipped.
    pub empty_ids_skipped: usize,
    /// Rows merged into another row of the same (user, item) pair.
    pub duplicates_dropped: usize,
    /// How those rows were combined (`last`, `sum`, `count`, `max`).
    pub aggregate: String,
    /// Entries whose combined value was ≤ 0, dropped.
    pub non_positive_dropped: usize,
    pub filtered_out: usize,
    pub rows: usize,
    pub users: usize,
    pub items: usize,
    /// What reading decided per file: an encoding other than UTF-8, the
    /// format of a time column.
    pub notes: Vec<String>,
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

/// Loads interactions from files, folders or globs. See the module docs.
pub fn load(sources: &[String], opts: &LoadOptions) -> Result<(Interactions, LoadReport)> {
    let files = expand_sources(sources)?;
    let mut frames = Vec::with_capacity(files.len());
    for f in &files {
        frames.push(read_file_guarded(f, opts)?);
    }
    let report = LoadReport {
        files: files.clone(),
        rows_read: frames.iter().map(|f| f.rows_read).sum(),
        bad_rows_skipped: frames.iter().map(|f| f.bad_rows).sum(),
        empty_ids_skipped: frames.iter().map(|f| f.empty_ids).sum(),
        notes: frames
            .iter()
            .flat_map(|f| f.notes.iter().cloned())
            .collect(),
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
    from_frame(all, opts, report, &ctx)
}

/// The ids of one column given in memory (by a front such as the Python
/// package): integers or strings.
#[derive(Clone, Debug)]
pub enum IdColumn {
    Int(Vec<i64>),
    Str(Vec<String>),
}

impl IdColumn {
    fn len(&self) -> usize {
        match self {
            IdColumn::Int(v) => v.len(),
            IdColumn::Str(v) => v.len(),
        }
    }

    fn into_column(self, name: &str) -> Column {
        match self {
            IdColumn::Int(v) => Column::new(name.into(), v),
            IdColumn::Str(v) => Column::new(name.into(), v),
        }
    }
}

/// Interaction columns held in memory, one entry per row; `values` of
/// `None` make every value 1 (as a file of pairs does).
#[derive(Clone, Debug)]
pub struct Columns {
    pub users: IdColumn,
    pub items: IdColumn,
    pub values: Option<Vec<f32>>,
    pub times: Option<Vec<i64>>,
}

/// Interactions from columns in memory, named `source` in errors: the rows
/// are checked (equal lengths, finite values) and then go through
/// the same steps as rows read from a file.
pub fn from_columns(
    c: Columns,
    opts: &LoadOptions,
    source: &str,
) -> Result<(Interactions, LoadReport)> {
    let n = c.users.len();
    let bad = |what: String| Error::Other(format!("{source}: {what}"));
    for (name, len) in [
        ("item", Some(c.items.len())),
        ("value", c.values.as_ref().map(Vec::len)),
        ("time", c.times.as_ref().map(Vec::len)),
    ] {
        if let Some(len) = len.filter(|&l| l != n) {
            return Err(bad(format!(
                "the `{name}` column has {len} rows, the `user` column {n}"
            )));
        }
    }
    if let Some(v) = &c.values {
        if let Some(r) = v.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!(
                "row {r}: field `value`: {} is not a finite number",
                v[r]
            )));
        }
    }
    let mut cols = vec![c.users.into_column("user"), c.items.into_column("item")];
    cols.push(Column::new(
        "rating".into(),
        c.values.unwrap_or_else(|| vec![1.0; n]),
    ));
    if let Some(t) = c.times {
        cols.push(Column::new("time".into(), t));
    }
    let path = Path::new(source);
    let df = DataFrame::new_infer_height(cols).map_err(|e| Error::Polars {
        path: path.to_path_buf(),
        source: e,
    })?;
    let report = LoadReport {
        rows_read: n,
        ..Default::default()
    };
    from_frame(df, opts, report, path)
}

/// Interactions from a frame already in memory, with the columns `user`
/// and `item` (`Int64` or `String`, no nulls), `rating` (`Float32`) and
/// optionally `time` (`Int64`): the id maps, duplicates, non-positive
/// entries and minimum counts as [`load`] does them for files. `report`
/// carries what reading found; `ctx` names the source in polars errors.
fn from_frame(
    mut all: DataFrame,
    opts: &LoadOptions,
    mut report: LoadReport,
    ctx: &Path,
) -> Result<(Interactions, LoadReport)> {
    let pl = |e: PolarsError| Error::Polars {
        path: ctx.to_path_buf(),
        source: e,
    };
    let has_time = all.column("time").is_ok();
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
    // Repeated (user, item) rows combine into one entry.
    let agg = opts.aggregate.unwrap_or_default();
    report.aggregate = agg.name().into();
    if let Some((keep, values)) = combine_duplicates(&x, agg) {
        x.values = values;
        x.retain(&keep);
    }
    report.duplicates_dropped = n_read - x.len();
    if opts.drop_non_positive {
        let keep: Vec<bool> = x.values.iter().map(|&v| v > 0.0).collect();
        let before = x.len();
        if keep.iter().any(|k| !k) {
            x.retain(&keep);
            x = x.compact();
        }
        report.non_positive_dropped = before - x.len();
    }
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

/// Repeated (user, item) rows combined by `agg`: the surviving entry of
/// each pair is its newest row (latest time; ties and no time: the later
/// row), and it takes the combined value. Returns which entries survive and
/// the values (indexed like `x`), or `None` when no pair repeats. Works per
/// user row, in parallel, in O(n log d).
fn combine_duplicates(x: &Interactions, agg: Aggregate) -> Option<(Vec<bool>, Vec<f32>)> {
    let rows = Csr::build(
        x.n_users(),
        &x.users,
        &(0..x.len() as u32).collect::<Vec<_>>(),
        None,
    );
    // (merged-away entry, or survivor with its combined value)
    let changes: Vec<(u32, Option<f32>)> = (0..rows.n_rows())
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
            let mut out = Vec::new();
            let mut start = 0;
            while start < r.len() {
                let item = x.items[r[start] as usize];
                let mut end = start + 1;
                while end < r.len() && x.items[r[end] as usize] == item {
                    end += 1;
                }
                if end - start > 1 {
                    let run = &r[start..end];
                    let vals = run.iter().map(|&e| x.values[e as usize]);
                    let v = match agg {
                        Aggregate::Last => x.values[run[run.len() - 1] as usize],
                        // Summed in f64: thousands of events of one pair
                        // must not lose their small counts to rounding.
                        Aggregate::Sum => vals.map(f64::from).sum::<f64>() as f32,
                        Aggregate::Count => run.len() as f32,
                        Aggregate::Max => vals.fold(f32::NEG_INFINITY, f32::max),
                    };
                    out.extend(run[..run.len() - 1].iter().map(|&e| (e, None)));
                    out.push((run[run.len() - 1], Some(v)));
                } else if agg == Aggregate::Count {
                    out.push((r[start], Some(1.0)));
                }
                start = end;
            }
            out
        })
        .collect();
    if !changes.iter().any(|c| c.1.is_none()) && agg != Aggregate::Count {
        return None;
    }
    let mut keep = vec![true; x.len()];
    let mut values = x.values.clone();
    for (e, v) in changes {
        match v {
            None => keep[e as usize] = false,
            Some(v) => values[e as usize] = v,
        }
    }
    Some((keep, values))
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

    fn load_text(
        name: &str,
        text: &[u8],
        opts: &LoadOptions,
    ) -> Result<(Interactions, LoadReport)> {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join(name);
        std::fs::write(&a, text).unwrap();
        load(&[a.to_string_lossy().into_owned()], opts)
    }

    fn value_of(x: &Interactions, user: &str, item: &str) -> Option<f32> {
        let (u, i) = (x.user_ids.get(user)?, x.item_ids.get(item)?);
        (0..x.len())
            .find(|&n| x.users[n] == u && x.items[n] == i)
            .map(|n| x.values[n])
    }

    #[test]
    fn each_aggregation_mode_gives_the_hand_computed_answer() {
        // ann/x: 2 then 5 then -1 (times 1, 3, 2); bob/y: 4 once; bob/z: 3, -3.
        let log = b"user,item,qty,ts\nann,x,2,1\nbob,y,4,5\nann,x,5,3\nann,x,-1,2\nbob,z,3,1\nbob,z,-3,2\n";
        let want = [
            (Aggregate::Last, [5.0, 4.0, -3.0]),
            (Aggregate::Sum, [6.0, 4.0, 0.0]),
            (Aggregate::Count, [3.0, 1.0, 2.0]),
            (Aggregate::Max, [5.0, 4.0, 3.0]),
        ];
        for (agg, [x_, y_, z_]) in want {
            let opts = LoadOptions {
                aggregate: Some(agg),
                ..Default::default()
            };
            let (x, rep) = load_text("log.csv", log, &opts).unwrap();
            assert_eq!(rep.duplicates_dropped, 3, "{agg:?}");
            assert_eq!(rep.aggregate, agg.name());
            let got = [
                value_of(&x, "ann", "x"),
                value_of(&x, "bob", "y"),
                value_of(&x, "bob", "z"),
            ];
            assert_eq!(got, [Some(x_), Some(y_), Some(z_)], "{agg:?}");
            // The entry keeps the newest time of its rows.
            let n = (0..x.len()).find(|&n| x.values[n] == x_).unwrap();
            assert_eq!(x.times.as_ref().unwrap()[n], 3, "{agg:?}");
        }
        // Sums ≤ 0 (bob/z: a purchase and its return) are dropped and counted.
        let opts = LoadOptions {
            aggregate: Some(Aggregate::Sum),
            drop_non_positive: true,
            ..Default::default()
        };
        let (x, rep) = load_text("log.csv", log, &opts).unwrap();
        assert_eq!((rep.non_positive_dropped, x.len()), (1, 2));
        assert_eq!(value_of(&x, "bob", "z"), None);
    }

    #[test]
    fn rows_without_an_id_are_skipped_and_counted() {
        let log = b"user,item,qty\nann,x,1\n,y,2\nbob,,3\n  ,z,1\nbob,y,1\n";
        let (x, rep) = load_text("log.csv", log, &LoadOptions::default()).unwrap();
        assert_eq!(
            (x.len(), rep.empty_ids_skipped, rep.bad_rows_skipped),
            (2, 3, 0)
        );
        // A file of ids alone: an empty id is anonymous too.
        let (x, rep) = load_text(
            "ids.csv",
            b"user,item\nann,x\n,y\n",
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!((x.len(), rep.empty_ids_skipped), (1, 1));
        // A row cut short (no value either) is malformed.
        let e = load_text(
            "cut.csv",
            b"user,item,qty\nann,x,1\nbob\n",
            &LoadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":3:") && e.contains("missing"), "{e}");
    }

    #[test]
    fn latin_1_files_load_and_unused_columns_are_not_checked() {
        // "£" is 0xA3 in Latin-1 and not UTF-8; it sits in a column no
        // one asked for, and in an item id.
        let mut log = b"user,item,note,qty\n1,caf\xe9,\xa3 5,2\n2,tea,fine,1\n".to_vec();
        let (x, rep) = load_text("l1.csv", &log, &LoadOptions::default()).unwrap();
        assert_eq!(x.len(), 2);
        assert!(x.item_ids.get("café").is_some(), "{:?}", x.item_ids);
        assert!(
            rep.notes.iter().any(|n| n.contains("windows-1252")),
            "{:?}",
            rep.notes
        );
        // Given as latin-1: the same.
        let opts = LoadOptions {
            encoding: "latin-1".parse().unwrap(),
            ..Default::default()
        };
        let (y, _) = load_text("l1.csv", &log, &opts).unwrap();
        assert!(y.item_ids.get("café").is_some());
        // A UTF-8 file with one bad byte in an unused column loads as UTF-8…
        log = "user,item,note,qty\n1,café,ok,2\n2,tea,\u{0}x,1\n"
            .as_bytes()
            .to_vec();
        let pos = log.iter().position(|&b| b == 0).unwrap();
        log[pos] = 0xff;
        let (z, rep) = load_text("u8.csv", &log, &LoadOptions::default()).unwrap();
        assert!(z.item_ids.get("café").is_some() && rep.notes.is_empty());
        // …and one in an id is an error naming its line and column.
        log = "user,item,qty\n1,café,2\n2,t\u{0}a,1\n".as_bytes().to_vec();
        let pos = log.iter().position(|&b| b == 0).unwrap();
        log[pos] = 0xff;
        let e = load_text("u8.csv", &log, &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":3:") && e.contains("item") && e.contains("UTF-8"),
            "{e}"
        );
        assert!("klingon".parse::<TextEncoding>().is_err());
    }

    #[test]
    fn date_times_read_and_a_bad_one_names_its_line() {
        let log = b"user,item,time\na,x,12/1/2010 8:26\na,y,12/2/2010 9:00\nb,x,1/13/2011 10:00\n";
        let (x, rep) = load_text("t.csv", log, &LoadOptions::default()).unwrap();
        assert_eq!(x.times.as_ref().unwrap()[0], 1_291_191_960);
        assert!(
            rep.notes.iter().any(|n| n.contains("%m/%d/%Y %H:%M")),
            "{:?}",
            rep.notes
        );
        // One bad value among many good ones: the format is still found,
        // and the bad row is named by its line.
        let mut bad = String::from("user,item,time\n");
        for i in 0..19 {
            bad.push_str(&format!("a,x{i},12/1/2010 8:26\n"));
        }
        bad.push_str("b,y,13/45/2011 10:00\n");
        let e = load_text("t.csv", bad.as_bytes(), &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":21:") && e.contains("13/45/2011") && e.contains("%m/%d/%Y"),
            "{e}"
        );
        // Values no known format reads: the message says to give one.
        let e = load_text(
            "t.csv",
            b"user,item,time\na,x,soon\n",
            &LoadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--time-format") && e.contains("soon"), "{e}");
        // A given format wins over detection.
        let opts = LoadOptions {
            time_format: Some(time::TimeFormat::from_user("%d/%m/%Y %H:%M").unwrap()),
            ..Default::default()
        };
        let e = load_text("t.csv", log, &opts).unwrap_err().to_string();
        assert!(
            e.contains(":4:"),
            "day 13 of month 1 reads, month 13 does not: {e}"
        );
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
