//! Scoring: top-N recommendations with filters, and the popularity fallback
//! for users the model does not know.
//!
//! Top-N is a partial selection (a bounded min-heap, O(I log n)), never a
//! full sort. Ties break toward the lower item index, so results are stable.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::interactions::IdKey;
use crate::model::Model;
use crate::train::kernels::dot;

/// Where a list of recommendations came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The user's factors.
    Model,
    /// Most popular items overall: the user is unknown to the model.
    Popularity,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    pub item: String,
    pub score: f32,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecList {
    pub user: String,
    pub source: Source,
    pub items: Vec<Scored>,
}

/// Which items may not be returned.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// Leave out the user's training items (stored in the model).
    pub exclude_seen: bool,
    /// Items never to return, as dense indices (a mask over the catalogue).
    pub excluded: Option<Vec<bool>>,
}

impl Filters {
    /// Adds external item ids to the exclusion mask; ids the model does not
    /// know are ignored (they could never be returned anyway).
    pub fn exclude_items<'a>(&mut self, model: &Model, ids: impl IntoIterator<Item = &'a str>) {
        let mask = self
            .excluded
            .get_or_insert_with(|| vec![false; model.n_items()]);
        for id in ids {
            if let Some(i) = model.item_ids().get(id) {
                mask[i as usize] = true;
            }
        }
    }

    fn blocks(&self, i: u32) -> bool {
        self.excluded.as_ref().is_some_and(|m| m[i as usize])
    }
}

#[derive(PartialEq)]
struct Cand(f32, u32);
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    /// "Greater" means better: higher score, then lower index.
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(o.1.cmp(&self.1))
    }
}

/// The `n` best (index, score) pairs, best first.
pub fn top_n(scores: impl Iterator<Item = (u32, f32)>, n: usize) -> Vec<(u32, f32)> {
    if n == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<std::cmp::Reverse<Cand>> = BinaryHeap::with_capacity(n + 1);
    for (i, s) in scores {
        if s.is_nan() {
            continue;
        }
        if heap.len() < n {
            heap.push(std::cmp::Reverse(Cand(s, i)));
        } else if let Some(worst) = heap.peek() {
            if Cand(s, i) > worst.0 {
                heap.pop();
                heap.push(std::cmp::Reverse(Cand(s, i)));
            }
        }
    }
    let mut out: Vec<(u32, f32)> = heap.into_iter().map(|r| (r.0 .1, r.0 .0)).collect();
    out.sort_by_key(|&(i, s)| std::cmp::Reverse(Cand(s, i)));
    out
}

/// Top-`n` for user `user` (an external id). An unknown user gets the most
/// popular items (marked [`Source::Popularity`]) unless `strict`.
pub fn recommend(
    model: &Model,
    user: &str,
    n: usize,
    filters: &Filters,
    strict: bool,
) -> Result<RecList> {
    let (source, picks) = match model.user_ids().get(user) {
        Some(u) => (Source::Model, recommend_index(model, u, n, filters)),
        None if strict => return Err(Error::UnknownUser(user.to_string())),
        None => (Source::Popularity, popular(model, n, filters)),
    };
    Ok(RecList {
        user: user.to_string(),
        source,
        items: picks
            .into_iter()
            .map(|(i, s)| Scored {
                item: model.item_ids().key(i).to_string(),
                score: s,
            })
            .collect(),
    })
}

/// Top-`n` for a known user index.
pub fn recommend_index(model: &Model, u: u32, n: usize, filters: &Filters) -> Vec<(u32, f32)> {
    let seen = if filters.exclude_seen {
        model.seen(u)
    } else {
        &[]
    };
    let p = model.user_vector(u);
    let base = if model.meta().implicit {
        0.0
    } else {
        model.global_mean() + model.user_bias()[u as usize]
    };
    let ib = model.item_bias();
    let mut next_seen = 0usize;
    let scores = (0..model.n_items() as u32).filter_map(move |i| {
        // `seen` is sorted: walk it alongside the items.
        while next_seen < seen.len() && seen[next_seen] < i {
            next_seen += 1;
        }
        if next_seen < seen.len() && seen[next_seen] == i {
            return None;
        }
        if filters.blocks(i) {
            return None;
        }
        let s = dot(p, model.item_vector(i));
        Some((i, base + ib[i as usize] + s))
    });
    top_n(scores, n)
}

/// The `n` most popular items that pass the exclusion mask.
pub fn popular(model: &Model, n: usize, filters: &Filters) -> Vec<(u32, f32)> {
    let pop = model.item_popularity();
    top_n(
        (0..model.n_items() as u32)
            .filter(|&i| !filters.blocks(i))
            .map(|i| (i, pop[i as usize])),
        n,
    )
}

/// External item id of a dense index (for callers outside the library).
pub fn item_key(model: &Model, i: u32) -> IdKey {
    model.item_ids().key(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_n_equals_a_full_sort() {
        let scores: Vec<f32> = (0..500u32)
            .map(|i| ((i * 7919) % 211) as f32 * 0.5)
            .collect();
        for n in [0usize, 1, 5, 37, 500, 600] {
            let got = top_n(scores.iter().enumerate().map(|(i, &s)| (i as u32, s)), n);
            let mut full: Vec<(u32, f32)> = scores
                .iter()
                .enumerate()
                .map(|(i, &s)| (i as u32, s))
                .collect();
            full.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
            full.truncate(n);
            assert_eq!(got, full, "n={n}");
        }
    }

    #[test]
    fn nan_scores_are_skipped() {
        let got = top_n([(0, f32::NAN), (1, 1.0), (2, 2.0)].into_iter(), 3);
        assert_eq!(got, vec![(2, 2.0), (1, 1.0)]);
    }
}
