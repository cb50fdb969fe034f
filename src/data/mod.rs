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
//! Reading one file (scans, row checks, adjacency lists) is in `read.rs`;
//! [`export`] writes and reads the layout the Spark job uses.

pub mod export;
pub mod format;
mod read;
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
use read::read_file_guarded;
pub(crate) use read::{check_rows, guard_reader, read_adjacency, scan};

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
