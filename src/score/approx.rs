//! Recommendations through the approximate IVF index beside a model
//! ([`ivf`]), with [`recommend`] for everyone the index does not serve.

use super::{ivf, recommend, to_scored, Filters, RecList, RecommendOptions, Source};
use crate::error::Result;
use crate::model::Model;

/// [`recommend_index`](super::recommend_index) through an approximate IVF
/// index: only the items of the `probe` clusters nearest to the user's
/// vector are scored.
pub fn recommend_index_ivf(
    model: &Model,
    index: &ivf::IvfIndex,
    u: u32,
    n: usize,
    filters: &Filters,
    probe: usize,
) -> Vec<(u32, f32)> {
    let model = model.lists();
    let seen = if filters.exclude_seen {
        model.seen(u)
    } else {
        &[]
    };
    let base = if model.meta().implicit {
        0.0
    } else {
        model.global_mean() + model.user_bias()[u as usize]
    };
    let skip = |i: u32| filters.blocks(i) || seen.binary_search(&i).is_ok();
    let mut picks = index.search(
        model.user_vector(u),
        model.scoring_item_factors(),
        Some(model.item_bias()),
        n,
        probe,
        &skip,
    );
    for p in &mut picks {
        p.1 += base;
    }
    picks
}

/// [`recommend`] through the IVF index beside the model: a known user with
/// enough history gets the approximate top-N of the `probe` nearest
/// clusters; anyone else gets what [`recommend`] gives (fold-back, fallback).
pub fn recommend_ivf(
    model: &Model,
    index: &ivf::IvfIndex,
    user: &str,
    o: &RecommendOptions,
    probe: usize,
) -> Result<RecList> {
    let model = model.lists();
    match model
        .user_ids()
        .get(user)
        .filter(|&u| model.history_len(u) >= o.min_history)
    {
        Some(u) => {
            let picks = recommend_index_ivf(model, index, u, o.n, &o.filters, probe);
            Ok(RecList {
                user: user.to_string(),
                source: Source::Model,
                items: to_scored(model, &picks, model.seen(u), o.explain),
            })
        }
        None => recommend(model, user, o),
    }
}

/// The IVF index beside `model_file`, checked against `model`.
pub fn load_ivf(model_file: &std::path::Path, model: &Model) -> Result<ivf::IvfIndex> {
    let model = model.lists();
    let path = ivf_path(model_file);
    ivf::IvfIndex::load(
        &path,
        model.n_items(),
        model.factors(),
        &model.meta().data.fingerprint,
    )
    .map_err(|e| {
        e.context(format!(
            "loading index {} (build it with `recsys index`)",
            path.display()
        ))
    })
}

/// Where a model's IVF index lives: beside the model file, `<model>.ivf`.
pub fn ivf_path(model_file: &std::path::Path) -> std::path::PathBuf {
    let mut s = model_file.as_os_str().to_owned();
    s.push(".ivf");
    std::path::PathBuf::from(s)
}
