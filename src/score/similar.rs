//! Similar items: cosine similarity of item factors, with the same filters
//! as recommendations.

use super::{top_n, Filters};
use crate::error::{Error, Result};
use crate::linalg::row_dots;
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
    // One matrix–vector product, then the cosine and the filters per item.
    let mut dots = vec![0f32; model.n_items()];
    row_dots(model.item_factors(), q, &mut dots);
    let scores = dots
        .iter()
        .zip(norms)
        .enumerate()
        .filter(|&(j, (_, &nj))| j != i as usize && !filters.blocks(j as u32) && nj > 0.0)
        .map(|(j, (&d, &nj))| (j as u32, d / (qi * nj)));
    top_n(scores, n)
}
