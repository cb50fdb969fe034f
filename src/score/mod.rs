//! Scoring: what a recommender returns for a request. Every list is ranked
//! by [`Model::lists`] (a rating model's list head when it has one), which
//! each public entry point takes first.
//!
//! - [`recommend`]: top-N for a known user, with filters that compose
//!   ([`Filters`]: the user's training items, an exclusion list, an allow
//!   list, the available items); a popularity fallback (recent when the
//!   model has timestamps) for unknown users and short histories.
//! - [`similar::similar_items`]: cosine neighbours of an item.
//! - [`foldin::fold_in`]: a vector for a new user from a few items, without retraining.
//! - [`batch::recommend_all`]: every user, blocked matrix products, streamed out.
//!
//! Top-N is a partial selection (a bounded min-heap, O(I log n)), never a
//! full sort. Ties break toward the lower item index, so results are stable.
//!
//! The request and result types are in `request.rs`, the IVF-backed
//! variants in `approx.rs`.

mod approx;
pub mod batch;
pub mod foldin;
pub mod ivf;
mod request;
pub mod similar;

pub use approx::{ivf_path, load_ivf, recommend_index_ivf, recommend_ivf};
pub use request::{Fallback, Filters, ItemList, RecList, RecommendOptions, Scored, Source};

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::error::{Error, Result};
use crate::interactions::IdKey;
use crate::linalg::{dot, row_dots};
use crate::model::Model;

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
    let mut t = TopN::new(n);
    for (i, s) in scores {
        t.offer(i, s);
    }
    t.finish()
}

/// [`top_n`] of `scores[i]` for every index `i`, NaN meaning "not a
/// candidate". Equal to `top_n(scores.iter().enumerate() …)`; it is faster
/// because once `n` are kept most blocks of 16 scores hold nothing at or
/// above the worst kept one, which one vectorised comparison per block
/// shows, and such a block is passed over whole.
pub fn top_n_slice(scores: &[f32], n: usize) -> Vec<(u32, f32)> {
    const BLOCK: usize = 16;
    let mut t = TopN::new(n);
    for (b, chunk) in scores.chunks(BLOCK).enumerate() {
        let floor = t.floor;
        // `|` rather than `any`: no early exit, so the loop vectorises. NaN
        // compares false and so never makes a block a candidate.
        if chunk.iter().fold(false, |a, &x| a | (x >= floor)) {
            for (j, &x) in chunk.iter().enumerate() {
                t.offer((b * BLOCK + j) as u32, x);
            }
        }
    }
    t.finish()
}

/// A bounded min-heap of the best `n` candidates so far.
struct TopN {
    heap: BinaryHeap<std::cmp::Reverse<Cand>>,
    n: usize,
    /// Score of the worst kept candidate once `n` are kept: most items fall
    /// below it and are rejected by one float comparison.
    floor: f32,
}

impl TopN {
    fn new(n: usize) -> TopN {
        TopN {
            heap: BinaryHeap::with_capacity(n.min(4096) + 1),
            n,
            floor: f32::NEG_INFINITY,
        }
    }

    #[inline]
    fn offer(&mut self, i: u32, s: f32) {
        if self.n == 0 || s < self.floor || s.is_nan() {
            return;
        }
        if self.heap.len() < self.n {
            self.heap.push(std::cmp::Reverse(Cand(s, i)));
            if self.heap.len() == self.n {
                self.floor = self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0);
            }
        } else if let Some(worst) = self.heap.peek() {
            if Cand(s, i) > worst.0 {
                self.heap.pop();
                self.heap.push(std::cmp::Reverse(Cand(s, i)));
                self.floor = self.heap.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0);
            }
        }
    }

    fn finish(self) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = self.heap.into_iter().map(|r| (r.0 .1, r.0 .0)).collect();
        out.sort_by_key(|&(i, s)| std::cmp::Reverse(Cand(s, i)));
        out
    }
}

/// Top-`n` for user `user` (an external id). See [`RecommendOptions`].
pub fn recommend(model: &Model, user: &str, o: &RecommendOptions) -> Result<RecList> {
    let model = model.lists();
    let known = model.user_ids().get(user);
    let (source, picks, seen) = match known {
        Some(u) if model.history_len(u) >= o.min_history => (
            Source::Model,
            recommend_index(model, u, o.n, &o.filters),
            model.seen(u),
        ),
        None if o.strict => return Err(Error::UnknownUser(user.to_string())),
        Some(u) => {
            // A short history: popular items, still without the user's own.
            let (src, picks) = popular(
                model,
                o.n,
                &o.filters,
                o.fallback,
                if o.filters.exclude_seen {
                    model.seen(u)
                } else {
                    &[]
                },
            );
            (src, picks, model.seen(u))
        }
        None => {
            let (src, picks) = popular(model, o.n, &o.filters, o.fallback, &[]);
            (src, picks, &[][..])
        }
    };
    Ok(RecList {
        user: user.to_string(),
        source,
        items: to_scored(model, &picks, seen, o.explain),
    })
}

/// [`recommend`] for many users at once: one answer per user, in order.
///
/// The users the model answers itself are scored together, by the blocked
/// matrix products of [`batch::recommend_users`], which for more than a few
/// users is several times cheaper than one matrix–vector product each; the
/// rest (unknown users, short histories) take [`recommend`]'s fallback. The
/// lists equal [`recommend`]'s up to rounding: the product sums in another
/// order, so scores may differ in the last bits and exact ties may swap.
pub fn recommend_many(model: &Model, users: &[&str], o: &RecommendOptions) -> Vec<Result<RecList>> {
    let model = model.lists();
    let mut out: Vec<Option<Result<RecList>>> = Vec::with_capacity(users.len());
    // (position in `users`, user index) of the users the model ranks for.
    let mut direct: Vec<(usize, u32)> = Vec::new();
    for (pos, user) in users.iter().enumerate() {
        match model.user_ids().get(user) {
            Some(u) if model.history_len(u) >= o.min_history => {
                direct.push((pos, u));
                out.push(None);
            }
            _ => out.push(Some(recommend(model, user, o))),
        }
    }
    let idx: Vec<u32> = direct.iter().map(|&(_, u)| u).collect();
    let lists = batch::recommend_users(model, &idx, o.n, &o.filters);
    for (&(pos, u), (_, picks)) in direct.iter().zip(lists) {
        out[pos] = Some(Ok(RecList {
            user: users[pos].to_string(),
            source: Source::Model,
            items: to_scored(model, &picks, model.seen(u), o.explain),
        }));
    }
    out.into_iter()
        .map(|r| r.expect("every user was answered"))
        .collect()
}

/// External ids (and explanations) for dense picks.
pub fn to_scored(
    model: &Model,
    picks: &[(u32, f32)],
    history: &[u32],
    explain: usize,
) -> Vec<Scored> {
    let model = model.lists();
    picks
        .iter()
        .map(|&(i, s)| Scored {
            item: model.item_ids().key(i).to_string(),
            score: s,
            because: if explain > 0 {
                explain_item(model, i, history, explain)
                    .into_iter()
                    .map(|j| model.item_ids().key(j).to_string())
                    .collect()
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// The `m` items of `history` whose factors are most similar (cosine) to
/// item `i`'s: the user's items that contributed most to recommending it.
pub fn explain_item(model: &Model, i: u32, history: &[u32], m: usize) -> Vec<u32> {
    let model = model.lists();
    let norms = model.item_norms();
    let q = model.item_vector(i);
    let ni = norms[i as usize].max(f32::MIN_POSITIVE);
    top_n(
        history.iter().filter(|&&j| j != i).map(|&j| {
            (
                j,
                dot(q, model.item_vector(j)) / (ni * norms[j as usize].max(f32::MIN_POSITIVE)),
            )
        }),
        m,
    )
    .into_iter()
    .map(|(j, _)| j)
    .collect()
}

/// Top-`n` for a known user index.
pub fn recommend_index(model: &Model, u: u32, n: usize, filters: &Filters) -> Vec<(u32, f32)> {
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
    recommend_vector(model, model.user_vector(u), base, n, filters, seen)
}

/// Top-`n` for any user vector `p` (a known user's, or folded in): scores
/// `base + b_i + p·q_i`, skipping `skip` (sorted) and blocked items. All
/// items are scored by one matrix–vector product into a reused buffer;
/// skipped and blocked items are then marked NaN (which [`top_n`] passes
/// over) instead of being tested item by item.
pub fn recommend_vector(
    model: &Model,
    p: &[f32],
    base: f32,
    n: usize,
    filters: &Filters,
    skip: &[u32],
) -> Vec<(u32, f32)> {
    thread_local! {
        static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let model = model.lists();
    let ib = model.item_bias();
    SCORES.with(|buf| {
        let mut s = buf.borrow_mut();
        s.resize(model.n_items(), 0.0);
        row_dots(model.scoring_item_factors(), p, &mut s);
        for (x, &b) in s.iter_mut().zip(ib) {
            *x += base + b;
        }
        for &i in skip {
            if let Some(x) = s.get_mut(i as usize) {
                *x = f32::NAN;
            }
        }
        if let Some(m) = &filters.blocked {
            for (x, &b) in s.iter_mut().zip(m.iter()) {
                *x = if b { f32::NAN } else { *x };
            }
        }
        top_n_slice(&s, n)
    })
}

/// The `n` most popular items that pass the filters and are not in `skip`
/// (sorted), from the recent list when asked for and available.
pub fn popular(
    model: &Model,
    n: usize,
    filters: &Filters,
    fallback: Fallback,
    skip: &[u32],
) -> (Source, Vec<(u32, f32)>) {
    let (src, pop) = match (fallback, model.item_recent_popularity()) {
        (Fallback::Recent, Some(r)) => (Source::RecentPopularity, r),
        _ => (Source::Popularity, model.item_popularity()),
    };
    let picks = top_n(
        (0..model.n_items() as u32)
            .filter(|&i| !filters.blocks(i) && skip.binary_search(&i).is_err())
            .map(|i| (i, pop[i as usize])),
        n,
    );
    (src, picks)
}

/// External item id of a dense index (for callers outside the library).
pub fn item_key(model: &Model, i: u32) -> IdKey {
    model.item_ids().key(i)
}

/// Reads an id list: one id per line, or comma-separated; `#` starts a
/// comment; blank lines are skipped; a CSV header named `item`/`item_id`/
/// `movieId` is skipped.
pub fn read_id_list(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        for id in line.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            out.push(id.to_string());
        }
    }
    if let Some(first) = out.first() {
        if ["item", "item_id", "itemid", "movieid"].contains(&first.to_ascii_lowercase().as_str()) {
            out.remove(0);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
            assert_eq!(top_n_slice(&scores, n), full, "slice, n={n}");
        }
    }

    #[test]
    fn top_n_slice_equals_top_n_with_nans_ties_and_ragged_ends() {
        // A small LCG: many equal scores (ties break by index), NaNs (never
        // returned), infinities, lengths around the block size.
        let mut x = 12345u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u32
        };
        for len in [0usize, 1, 15, 16, 17, 100, 3494] {
            let scores: Vec<f32> = (0..len)
                .map(|_| match next() % 20 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    2 => f32::INFINITY,
                    v => (v % 7) as f32 - 3.0,
                })
                .collect();
            for n in [0usize, 1, 3, 10, 50, len, len + 5] {
                let want = top_n(scores.iter().enumerate().map(|(i, &s)| (i as u32, s)), n);
                let got = top_n_slice(&scores, n);
                assert_eq!(got.len(), want.len(), "len {len} n {n}");
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        g.0 == w.0 && g.1.to_bits() == w.1.to_bits(),
                        "len {len} n {n}"
                    );
                    assert!(!g.1.is_nan());
                }
            }
        }
    }

    use crate::interactions::{IdMap, Interactions};
    use crate::train::als::AlsParams;

    fn small_model(with_times: bool) -> Model {
        let mut users = Vec::new();
        let mut items = Vec::new();
        for u in 0..50u32 {
            for i in 0..40u32 {
                if (u < 25) == (i < 20) && (u * 7 + i * 3) % 4 != 0 || (i == 39 && u % 2 == 0) {
                    users.push(u);
                    items.push(i);
                }
            }
        }
        let n = users.len();
        let x = Interactions {
            users,
            items,
            values: vec![1.0; n],
            // Item 5 is the most frequent in the newest tenth.
            times: with_times.then(|| (0..n as i64).collect()),
            user_ids: Arc::new(IdMap::from_ints((0..50).collect())),
            item_ids: Arc::new(IdMap::from_ints((0..40).collect())),
        };
        AlsParams {
            factors: 6,
            epochs: 6,
            threads: Some(1),
            ..Default::default()
        }
        .check()
        .unwrap()
        .fit(&x, None, &mut |_| {})
        .unwrap()
    }

    #[test]
    fn filters_compose() {
        let m = small_model(false);
        let base = RecommendOptions {
            n: 40,
            ..Default::default()
        };
        let all = recommend(&m, "0", &base).unwrap();
        let seen: Vec<String> = m
            .seen(0)
            .iter()
            .map(|&i| m.item_ids().key(i).to_string())
            .collect();
        assert!(
            all.items.iter().all(|s| !seen.contains(&s.item)),
            "seen items excluded"
        );
        assert_eq!(all.items.len(), 40 - seen.len());
        let top = all.items[0].item.clone();
        // Exclusion list.
        let mut o = base.clone();
        o.filters.exclude_items(&m, [top.as_str()]);
        assert!(recommend(&m, "0", &o)
            .unwrap()
            .items
            .iter()
            .all(|s| s.item != top));
        // Allow list, then availability on top of it: the intersection.
        let mut o = base.clone();
        let allow = ItemList::resolve(&m, ["30", "31", "32", "33", top.as_str()]);
        o.filters.only(&m, &allow.items);
        let got: Vec<String> = recommend(&m, "0", &o)
            .unwrap()
            .items
            .into_iter()
            .map(|s| s.item)
            .collect();
        assert!(
            got.iter()
                .all(|i| ["30", "31", "32", "33", top.as_str()].contains(&i.as_str())),
            "{got:?}"
        );
        let avail = ItemList::resolve(&m, ["31", "33"]);
        o.filters.only(&m, &avail.items);
        let got: Vec<String> = recommend(&m, "0", &o)
            .unwrap()
            .items
            .into_iter()
            .map(|s| s.item)
            .collect();
        assert!(
            got.iter().all(|i| i == "31" || i == "33") && !got.is_empty(),
            "{got:?}"
        );
        // Including seen items.
        let mut o = base.clone();
        o.filters.exclude_seen = false;
        assert_eq!(recommend(&m, "0", &o).unwrap().items.len(), 40);
        // The fallback respects the filters too.
        let mut o = base.clone();
        o.filters.exclude_items(&m, ["39"]);
        let pop = recommend(&m, "stranger", &o).unwrap();
        assert_eq!(pop.source, Source::Popularity);
        assert!(pop.items.iter().all(|s| s.item != "39"));
        // Strict mode and short histories.
        assert!(recommend(
            &m,
            "stranger",
            &RecommendOptions {
                strict: true,
                ..base.clone()
            }
        )
        .is_err());
        let short = recommend(
            &m,
            "0",
            &RecommendOptions {
                min_history: 1000,
                ..base.clone()
            },
        )
        .unwrap();
        assert_eq!(short.source, Source::Popularity);
        assert!(short.items.iter().all(|s| !seen.contains(&s.item)));
    }

    #[test]
    fn recent_popularity_needs_timestamps() {
        let m = small_model(true);
        let r = recommend(&m, "stranger", &RecommendOptions::default()).unwrap();
        assert_eq!(r.source, Source::RecentPopularity);
        let r = recommend(
            &m,
            "stranger",
            &RecommendOptions {
                fallback: Fallback::Overall,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.source, Source::Popularity);
        assert_eq!(
            r.items[0].item, "39",
            "item 39 is the most frequent overall"
        );
        let m = small_model(false);
        assert_eq!(
            recommend(&m, "stranger", &RecommendOptions::default())
                .unwrap()
                .source,
            Source::Popularity
        );
    }

    #[test]
    fn recommend_many_answers_as_recommend_does_user_by_user() {
        let m = small_model(false);
        let mut o = RecommendOptions {
            n: 6,
            min_history: 3,
            ..Default::default()
        };
        o.filters.exclude_items(&m, ["5"]);
        let mut users: Vec<String> = (0..m.n_users())
            .map(|u| m.user_ids().key(u as u32).to_string())
            .collect();
        users.insert(3, "stranger".into());
        let ids: Vec<&str> = users.iter().map(String::as_str).collect();
        let many = recommend_many(&m, &ids, &o);
        assert_eq!(many.len(), ids.len());
        let mut fallbacks = 0;
        for (user, got) in ids.iter().zip(&many) {
            let got = got.as_ref().unwrap();
            let want = recommend(&m, user, &o).unwrap();
            assert_eq!((&got.user, got.source), (&want.user, want.source), "{user}");
            fallbacks += usize::from(want.source != Source::Model);
            assert_eq!(got.items.len(), want.items.len(), "{user}");
            for (a, b) in got.items.iter().zip(&want.items) {
                assert!(
                    (a.score - b.score).abs() < 1e-5,
                    "{user}: {got:?} vs {want:?}"
                );
                assert_ne!(a.item, "5");
            }
        }
        assert!(fallbacks >= 1, "the unknown user takes the fallback");
        // Strict mode: the unknown user is an error in its place, the rest answer.
        o.strict = true;
        let many = recommend_many(&m, &ids, &o);
        assert!(many[3].is_err() && many[0].is_ok() && many[4].is_ok());
    }

    #[test]
    fn recommend_all_equals_the_single_user_path() {
        let m = small_model(false);
        let mut f = Filters {
            exclude_seen: true,
            blocked: None,
        };
        f.exclude_items(&m, ["3", "4"]);
        let users: Vec<u32> = (0..m.n_users() as u32).collect();
        let mut got = Vec::new();
        batch::recommend_all(&m, &users, 7, &f, &mut |r| {
            got.extend_from_slice(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), users.len());
        for (u, picks) in got {
            let single = recommend_index(&m, u, 7, &f);
            assert_eq!(picks.len(), single.len());
            // Same scores rank by rank; items may swap only within ties
            // (the matrix product sums in another order than the dot product).
            for (a, b) in picks.iter().zip(&single) {
                assert!(
                    (a.1 - b.1).abs() < 1e-5,
                    "user {u}: {picks:?} vs {single:?}"
                );
                let direct = m.global_mean() * 0.0
                    + m.item_bias()[a.0 as usize]
                    + dot(m.user_vector(u), m.item_vector(a.0));
                assert!(
                    (direct - a.1).abs() < 1e-5,
                    "user {u}: item {} scored {} but is {direct}",
                    a.0,
                    a.1
                );
                assert!(!m.seen(u).contains(&a.0) && !f.blocks(a.0));
            }
        }
    }

    #[test]
    fn similar_items_are_cosine_neighbours() {
        let m = small_model(false);
        let got = similar::similar_items(&m, "0", 5, &Filters::default()).unwrap();
        assert!(got.iter().all(|&(j, s)| j != 0 && s <= 1.0 + 1e-6));
        // Items of the same group are the nearest.
        assert!(
            got.iter()
                .all(|&(j, _)| m.item_ids().key(j).to_string().parse::<u32>().unwrap() < 20),
            "{got:?}"
        );
        assert!(similar::similar_items(&m, "nope", 5, &Filters::default()).is_err());
        let why = explain_item(&m, 1, m.seen(0), 3);
        assert!(why.len() <= 3 && why.iter().all(|j| m.seen(0).contains(j)));
    }

    #[test]
    fn id_lists_read_lines_commas_and_comments() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ids.txt");
        std::fs::write(&p, "item\n1\n2, 3 # sale\n\n# all gone\nx\n").unwrap();
        assert_eq!(read_id_list(&p).unwrap(), vec!["1", "2", "3", "x"]);
        assert!(read_id_list(&d.path().join("missing")).is_err());
    }

    #[test]
    fn nan_scores_are_skipped() {
        let got = top_n([(0, f32::NAN), (1, 1.0), (2, 2.0)].into_iter(), 3);
        assert_eq!(got, vec![(2, 2.0), (1, 1.0)]);
    }
}
