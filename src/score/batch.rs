//! Recommend-all: top-N for every user (or a list of users), in parallel.
//!
//! Users are scored in blocks of [`BLOCK`] with one matrix product per block
//! (ndarray's GEMM into a per-thread buffer), then each row is masked (the
//! user's training items, blocked items) and cut to the top N by partial
//! selection. Results go to a sink one batch of users at a time, in user
//! order, so memory stays flat however many users there are.

use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView2};
use rayon::prelude::*;

use std::io::Write;
use std::path::Path;

use super::{top_n, Filters};
use crate::error::{Error, Result};
use crate::model::Model;

/// Users per matrix product.
pub const BLOCK: usize = 128;
/// Users per sink call (a multiple of [`BLOCK`]).
pub const BATCH: usize = 64 * BLOCK;

/// One user's recommendations: (user index, [(item index, score)] best first).
pub type UserRecs = (u32, Vec<(u32, f32)>);

/// Top-`n` for each of `users` (dense indices), handed to `sink` in order,
/// [`BATCH`] users at a time.
pub fn recommend_all(
    model: &Model,
    users: &[u32],
    n: usize,
    filters: &Filters,
    sink: &mut dyn FnMut(&[UserRecs]) -> Result<()>,
) -> Result<()> {
    let add = addends(model.lists(), filters);
    for batch in users.chunks(BATCH) {
        sink(&score_users(model, batch, n, filters, &add))?;
    }
    Ok(())
}

/// Top-`n` for each of `users`, in order, held in memory: for a bounded
/// list (a request's users), where [`recommend_all`] streams.
pub fn recommend_users(model: &Model, users: &[u32], n: usize, filters: &Filters) -> Vec<UserRecs> {
    score_users(model, users, n, filters, &addends(model.lists(), filters))
}

/// Per-item addend: the item bias, or −∞ for a blocked item, so blocking
/// costs nothing per user.
fn addends(model: &Model, filters: &Filters) -> Vec<f32> {
    (0..model.n_items() as u32)
        .map(|i| {
            if filters.blocks(i) {
                f32::NEG_INFINITY
            } else {
                model.item_bias()[i as usize]
            }
        })
        .collect()
}

/// One matrix product per [`BLOCK`] of `users`, in parallel, then each row
/// masked and cut to its top `n`.
fn score_users(
    model: &Model,
    users: &[u32],
    n: usize,
    filters: &Filters,
    add: &[f32],
) -> Vec<UserRecs> {
    let model = model.lists();
    let k = model.factors();
    let ni = model.n_items();
    let items = ArrayView2::from_shape((ni, k), model.scoring_item_factors())
        .expect("item factors are n_items × k");
    let implicit = model.meta().implicit;
    // A small batch (a request of a few users) needs only as many rows.
    let rows = users.len().min(BLOCK);
    users
        .par_chunks(BLOCK)
        .map_init(
            || Array2::<f32>::zeros((rows, ni)),
            |scores, block| {
                let mut ub = Array2::<f32>::zeros((block.len(), k));
                for (mut row, &u) in ub.rows_mut().into_iter().zip(block) {
                    row.as_slice_mut()
                        .expect("standard layout")
                        .copy_from_slice(model.user_vector(u));
                }
                let mut out = scores.slice_mut(s![..block.len(), ..]);
                general_mat_mul(1.0, &ub, &items.t(), 0.0, &mut out);
                block
                    .iter()
                    .zip(out.rows_mut())
                    .map(|(&u, mut row)| {
                        let row = row.as_slice_mut().expect("standard layout");
                        for (s, a) in row.iter_mut().zip(add) {
                            *s += a;
                        }
                        if filters.exclude_seen {
                            for &i in model.seen(u) {
                                row[i as usize] = f32::NEG_INFINITY;
                            }
                        }
                        let base = if implicit {
                            0.0
                        } else {
                            model.global_mean() + model.user_bias()[u as usize]
                        };
                        let picks = top_n(
                            row.iter()
                                .enumerate()
                                .filter(|(_, v)| **v > f32::NEG_INFINITY)
                                .map(|(i, &v)| (i as u32, v + base)),
                            n,
                        );
                        (u, picks)
                    })
                    .collect::<Vec<_>>()
            },
        )
        .flatten_iter()
        .collect()
}

/// Where [`write_all`] writes the rows `user,rank,item,score`.
pub enum AllSink<'a> {
    /// CSV to a stream (stdout, a socket).
    Csv(&'a mut dyn Write),
    /// A file, replaced only when complete: Parquet for `.parquet`/`.pq`
    /// (streamed as row groups), CSV otherwise.
    File(&'a Path),
}

/// Recommend-all for every user of `model`, streamed to `sink` in user
/// order. Returns the number of users.
pub fn write_all(model: &Model, n: usize, filters: &Filters, sink: AllSink) -> Result<usize> {
    let model = model.lists();
    let users: Vec<u32> = (0..model.n_users() as u32).collect();
    match sink {
        AllSink::Csv(w) => {
            let io = |e| Error::io("stdout", e);
            writeln!(w, "user,rank,item,score").map_err(io)?;
            recommend_all(model, &users, n, filters, &mut |recs| {
                write_csv_rows(w, model, recs).map_err(io)
            })?;
            w.flush().map_err(io)?;
        }
        AllSink::File(path)
            if path
                .extension()
                .is_some_and(|e| e == "parquet" || e == "pq") =>
        {
            write_parquet(model, &users, n, filters, path)?
        }
        AllSink::File(path) => {
            crate::util::atomic_write(path, |w| {
                writeln!(w, "user,rank,item,score").map_err(|e| Error::io(path, e))?;
                recommend_all(model, &users, n, filters, &mut |recs| {
                    write_csv_rows(w, model, recs).map_err(|e| Error::io(path, e))
                })
            })?;
        }
    }
    Ok(users.len())
}

fn write_csv_rows(w: &mut dyn Write, model: &Model, recs: &[UserRecs]) -> std::io::Result<()> {
    for (u, picks) in recs {
        let uk = model.user_ids().key(*u).to_string();
        for (r, &(i, s)) in picks.iter().enumerate() {
            writeln!(w, "{uk},{},{},{s:.6}", r + 1, model.item_ids().key(i))?;
        }
    }
    Ok(())
}

/// Streamed as row groups into a temp file, renamed when complete.
fn write_parquet(
    model: &Model,
    users: &[u32],
    n: usize,
    filters: &Filters,
    path: &Path,
) -> Result<()> {
    use polars::prelude::{Column, DataFrame, DataType, Field, ParquetWriter, Schema};
    let pe = |e| Error::Polars {
        path: path.to_path_buf(),
        source: e,
    };
    let tmp = crate::util::temp_path(path);
    let result = (|| -> Result<()> {
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let schema = Schema::from_iter([
            Field::new("user".into(), DataType::String),
            Field::new("rank".into(), DataType::UInt32),
            Field::new("item".into(), DataType::String),
            Field::new("score".into(), DataType::Float32),
        ]);
        let mut w = ParquetWriter::new(file).batched(&schema).map_err(pe)?;
        recommend_all(model, users, n, filters, &mut |recs| {
            let (mut us, mut rk, mut its, mut sc) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (u, picks) in recs {
                for (r, &(i, s)) in picks.iter().enumerate() {
                    us.push(model.user_ids().key(*u).to_string());
                    rk.push(r as u32 + 1);
                    its.push(model.item_ids().key(i).to_string());
                    sc.push(s);
                }
            }
            DataFrame::new_infer_height(vec![
                Column::new("user".into(), us),
                Column::new("rank".into(), rk),
                Column::new("item".into(), its),
                Column::new("score".into(), sc),
            ])
            .and_then(|df| w.write_batch(&df))
            .map_err(pe)
        })?;
        w.finish().map_err(pe)?;
        Ok(())
    })();
    match result {
        Ok(()) => crate::util::commit_temp(&tmp, path),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
