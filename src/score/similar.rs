//! Similar items: cosine similarity of item factors, with the same filters
//! as recommendations.

use super::{top_n, Filters};
use crate::error::{Error, Result};
use crate::linalg::dot;
use crate::model::Model;

/// The `n` items most similar to `item` (an external id), best first, the
/// item itself excluded.
pub fn similar_items(
    model: &Model,
    item: &str,
    n: usize,
    filters: &Filters,
) -> Result<Vec<(u32, f32)>> {
    let model = model.lists();
    let i = model
        .item_ids()
        .get(item)
        .ok_or_else(|| Error::UnknownItem(item.to_string()))?;
    Ok(similar_index(model, i, n, filters))
}

/// [`similar_items`] for a dense item index.
pub fn similar_index(model: &Model, i: u32, n: usize, filters: &Filters) -> Vec<(u32, f32)> {
    let model = model.lists();
    let norms = model.item_norms();
    let q = model.item_vector(i);
    let qi = norms[i as usize];
    if qi == 0.0 {
        return Vec::new();
    }
    let scores = (0..model.n_items() as u32)
        .filter(|&j| j != i && !filters.blocks(j) && norms[j as usize] > 0.0)
        .map(|j| (j, dot(q, model.item_vector(j)) / (qi * norms[j as usize])));
    top_n(scores, n)
}
