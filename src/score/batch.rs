//! Recommend-all: top-N for every user (or a list of users), in parallel.
//!
//! Users are scored in blocks of [`BLOCK`] with one matrix product per block
//! (ndarray's GEMM into a per-thread buffer), then each row is masked (the
//! user's training items, blocked items) and cut to the top N by partial
//! selection. Results go to a sink one batch of users at a time, in user
//! order, so memory stays flat however many users there are.

use ndarray::{linalg::general_mat_mul, s, Array2, ArrayView2};
use rayon::prelude::*;

use super::{top_n, Filters};
use crate::error::Result;
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
    let k = model.factors();
    let ni = model.n_items();
    let items = ArrayView2::from_shape((ni, k), model.item_factors())
        .expect("item factors are n_items × k");
    let implicit = model.meta().implicit;
    // Per-item addend: the item bias, or −∞ for a blocked item, so blocking
    // costs nothing per user.
    let add: Vec<f32> = (0..ni as u32)
        .map(|i| {
            if filters.blocks(i) {
                f32::NEG_INFINITY
            } else {
                model.item_bias()[i as usize]
            }
        })
        .collect();
    for batch in users.chunks(BATCH) {
        let recs: Vec<UserRecs> = batch
            .par_chunks(BLOCK)
            .map_init(
                || Array2::<f32>::zeros((BLOCK, ni)),
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
                            for (s, a) in row.iter_mut().zip(&add) {
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
            .collect();
        sink(&recs)?;
    }
    Ok(())
}
