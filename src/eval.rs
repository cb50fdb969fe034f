//! Quality metrics on held-out data.
//!
//! Ratings: RMSE and MAE; rows whose user or item the model does not know are
//! scored with the fallback (global mean plus the known bias), not dropped,
//! and counted.
//!
//! Ranking, per user with at least one held-out positive, the user's training
//! items excluded from the ranking, then averaged over users (definitions:
//! docs/training.md, "Ranking metrics"):
//! P@k = hits/k; R@k = hits/|test|; nDCG@k with binary gains and the ideal
//! DCG over min(k, |test|) positives; MAP@k = AP@k with denominator
//! min(k, |test|); AUC = the probability that a held-out positive scores
//! above a random non-training, non-positive item (ties count one half);
//! coverage@k = distinct items in all top-k lists / catalogue size.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::interactions::Interactions;
use crate::linalg::row_dots;
use crate::model::Model;
use crate::score::top_n;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RatingMetrics {
    pub rmse: f64,
    pub mae: f64,
    /// Test rows scored.
    pub n: usize,
    /// Rows whose user the model does not know.
    pub unknown_users: usize,
    /// Rows whose item the model does not know.
    pub unknown_items: usize,
}

/// RMSE/MAE of `model` on `test` (matched to the model by external ids).
pub fn rating_metrics(model: &Model, test: &Interactions) -> RatingMetrics {
    let um = test.user_ids.translate_to(model.user_ids());
    let im = test.item_ids.translate_to(model.item_ids());
    const CHUNK: usize = 8192;
    let idx: Vec<usize> = (0..test.len()).collect();
    // Fixed chunks summed in order: the result does not depend on scheduling.
    let parts: Vec<(f64, f64, usize, usize)> = idx
        .par_chunks(CHUNK)
        .map(|c| {
            let (mut se, mut ae, mut uu, mut ui) = (0f64, 0f64, 0usize, 0usize);
            for &n in c {
                let u = um[test.users[n] as usize];
                let i = im[test.items[n] as usize];
                uu += u.is_none() as usize;
                ui += i.is_none() as usize;
                let e = (test.values[n] - model.predict_partial(u, i)) as f64;
                se += e * e;
                ae += e.abs();
            }
            (se, ae, uu, ui)
        })
        .collect();
    let n = test.len();
    let (se, ae, uu, ui) = parts.iter().fold((0.0, 0.0, 0, 0), |a, p| {
        (a.0 + p.0, a.1 + p.1, a.2 + p.2, a.3 + p.3)
    });
    RatingMetrics {
        rmse: if n > 0 {
            (se / n as f64).sqrt()
        } else {
            f64::NAN
        },
        mae: if n > 0 { ae / n as f64 } else { f64::NAN },
        n,
        unknown_users: uu,
        unknown_items: ui,
    }
}

/// Scores all items for a user from raw factor arrays (what a trainer has
/// mid-training, or a loaded model): `p_u · q_i (+ b_i)`.
pub struct Scorer<'a> {
    pub k: usize,
    pub user_factors: &'a [f32],
    pub item_factors: &'a [f32],
    pub item_bias: Option<&'a [f32]>,
}

impl Scorer<'_> {
    pub fn n_items(&self) -> usize {
        self.item_factors.len() / self.k.max(1)
    }

    pub fn score_all(&self, u: u32, out: &mut Vec<f32>) {
        let k = self.k;
        let p = &self.user_factors[u as usize * k..(u as usize + 1) * k];
        out.clear();
        out.resize(self.n_items(), 0.0);
        row_dots(self.item_factors, p, out);
        if let Some(b) = self.item_bias {
            out.iter_mut().zip(b).for_each(|(s, b)| *s += b);
        }
    }
}

/// One user's held-out positives: the ones the model knows (sorted dense
/// indices) and how many there are in all (unknown items count as misses).
#[derive(Clone, Debug)]
pub struct UserTruth {
    pub user: u32,
    pub items: Vec<u32>,
    pub n_relevant: usize,
}

/// Ranking metrics; `values` has keys like `precision@10`, `ndcg@20`, `auc`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RankingMetrics {
    /// Users evaluated (known to the model, with ≥ 1 held-out positive).
    pub users: usize,
    /// Held-out users the model does not know (not evaluated).
    pub unknown_users: usize,
    /// Held-out positives whose item the model does not know (always misses).
    pub unknown_items: usize,
    #[serde(flatten)]
    pub values: BTreeMap<String, f64>,
}

/// Metrics of one ranked list against a user's positives, for each k.
/// Returns (precision, recall, ndcg, ap) per k.
pub fn list_metrics(
    top: &[u32],
    relevant: &[u32],
    n_relevant: usize,
    ks: &[usize],
) -> Vec<[f64; 4]> {
    ks.iter()
        .map(|&k| {
            let (mut hits, mut dcg, mut ap) = (0usize, 0f64, 0f64);
            for (r, i) in top.iter().take(k).enumerate() {
                if relevant.binary_search(i).is_ok() {
                    hits += 1;
                    dcg += 1.0 / (r as f64 + 2.0).log2();
                    ap += hits as f64 / (r + 1) as f64;
                }
            }
            let m = k.min(n_relevant);
            let idcg: f64 = (0..m).map(|r| 1.0 / (r as f64 + 2.0).log2()).sum();
            let prec = hits as f64 / k as f64;
            let rec = if n_relevant > 0 {
                hits as f64 / n_relevant as f64
            } else {
                0.0
            };
            let ndcg = if idcg > 0.0 { dcg / idcg } else { 0.0 };
            let apk = if m > 0 { ap / m as f64 } else { 0.0 };
            [prec, rec, ndcg, apk]
        })
        .collect()
}

/// Per-user AUC over the candidate items (those not in `seen`): one pass
/// over the candidates, each compared with the (few, sorted) positives.
fn user_auc(scores: &[f32], seen: &[u32], relevant: &[u32], pos: &mut Vec<f32>) -> Option<f64> {
    pos.clear();
    pos.extend(
        relevant
            .iter()
            .filter(|i| seen.binary_search(i).is_err())
            .map(|&i| scores[i as usize]),
    );
    if pos.is_empty() {
        return None;
    }
    pos.sort_unstable_by(f32::total_cmp);
    let (mut wins, mut negatives) = (0f64, 0usize);
    let (mut next_seen, mut next_rel) = (0usize, 0usize);
    for (i, &s) in scores.iter().enumerate() {
        let i = i as u32;
        while next_seen < seen.len() && seen[next_seen] < i {
            next_seen += 1;
        }
        while next_rel < relevant.len() && relevant[next_rel] < i {
            next_rel += 1;
        }
        if seen.get(next_seen) == Some(&i) || relevant.get(next_rel) == Some(&i) {
            continue;
        }
        negatives += 1;
        // Positives above this negative win; equal ones count one half.
        let le = pos.partition_point(|&p| p <= s);
        let lt = pos.partition_point(|&p| p < s);
        wins += (pos.len() - le) as f64 + 0.5 * (le - lt) as f64;
    }
    (negatives > 0).then(|| wins / (pos.len() as f64 * negatives as f64))
}

/// One user's (metrics per k, AUC, top list).
type UserResult = (Vec<[f64; 4]>, Option<f64>, Vec<u32>);

/// Ranking metrics for `truth` users; `seen(u)` gives each user's sorted
/// training items, excluded from the ranking. Parallel over users; sums are
/// taken in user order, so results do not depend on the thread count.
pub fn rank_eval(
    sc: &Scorer<'_>,
    seen: &(dyn Fn(u32) -> Vec<u32> + Sync),
    truth: &[UserTruth],
    ks: &[usize],
    with_auc: bool,
) -> RankingMetrics {
    let kmax = ks.iter().copied().max().unwrap_or(10);
    let k = sc.k;
    let ni = sc.n_items();
    let items =
        ndarray::ArrayView2::from_shape((ni, k), sc.item_factors).expect("item factors are n × k");
    // Users in blocks of 64: one matrix product scores a whole block
    // (ndarray's GEMM), far faster than one dot product per (user, item).
    const BLOCK: usize = 64;
    let per_user: Vec<UserResult> = truth
        .par_chunks(BLOCK)
        .flat_map_iter(|chunk| {
            let mut ub = ndarray::Array2::<f32>::zeros((chunk.len(), k));
            for (mut row, t) in ub.rows_mut().into_iter().zip(chunk) {
                let u = t.user as usize;
                row.as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(&sc.user_factors[u * k..(u + 1) * k]);
            }
            let scores = ub.dot(&items.t());
            let mut pos = Vec::new();
            let mut out = Vec::with_capacity(chunk.len());
            for (srow, t) in scores.rows().into_iter().zip(chunk) {
                let mut row: Vec<f32> = srow.to_vec();
                if let Some(b) = sc.item_bias {
                    row.iter_mut().zip(b).for_each(|(s, b)| *s += b);
                }
                let s = seen(t.user);
                for &i in &s {
                    row[i as usize] = f32::NEG_INFINITY;
                }
                let top: Vec<u32> = top_n(
                    row.iter()
                        .enumerate()
                        .filter(|(_, v)| **v > f32::NEG_INFINITY)
                        .map(|(i, &v)| (i as u32, v)),
                    kmax,
                )
                .into_iter()
                .map(|(i, _)| i)
                .collect();
                // A held-out positive that is also a training item cannot be
                // ranked: it counts for no metric (as for AUC).
                let rel: Vec<u32> = t
                    .items
                    .iter()
                    .copied()
                    .filter(|i| s.binary_search(i).is_err())
                    .collect();
                let n_rel = t.n_relevant - (t.items.len() - rel.len());
                if n_rel == 0 {
                    continue;
                }
                let m = list_metrics(&top, &rel, n_rel, ks);
                let auc = if with_auc {
                    user_auc(&row, &s, &rel, &mut pos)
                } else {
                    None
                };
                out.push((m, auc, top));
            }
            out
        })
        .collect();
    let n = per_user.len().max(1) as f64;
    let mut values = BTreeMap::new();
    for (j, &k) in ks.iter().enumerate() {
        for (c, name) in ["precision", "recall", "ndcg", "map"].iter().enumerate() {
            let sum: f64 = per_user.iter().map(|p| p.0[j][c]).sum();
            values.insert(format!("{name}@{k}"), sum / n);
        }
        let mut hit = vec![false; sc.n_items()];
        for p in &per_user {
            for &i in p.2.iter().take(k) {
                hit[i as usize] = true;
            }
        }
        let covered = hit.iter().filter(|&&h| h).count();
        values.insert(
            format!("coverage@{k}"),
            covered as f64 / sc.n_items().max(1) as f64,
        );
    }
    if with_auc {
        let aucs: Vec<f64> = per_user.iter().filter_map(|p| p.1).collect();
        if !aucs.is_empty() {
            values.insert("auc".into(), aucs.iter().sum::<f64>() / aucs.len() as f64);
        }
    }
    RankingMetrics {
        users: per_user.len(),
        values,
        ..Default::default()
    }
}

/// The held-out positives of `test` per user, matched to `model` by
/// external id; rows below `threshold` (when given) are not positives.
/// Returns (truth, unknown users, unknown items).
pub fn truth_for(
    user_ids: &crate::interactions::IdMap,
    item_ids: &crate::interactions::IdMap,
    test: &Interactions,
    threshold: Option<f32>,
) -> (Vec<UserTruth>, usize, usize) {
    let um = test.user_ids.translate_to(user_ids);
    let im = test.item_ids.translate_to(item_ids);
    let mut per: BTreeMap<u32, UserTruth> = BTreeMap::new();
    let mut unknown_users = std::collections::BTreeSet::new();
    let mut unknown_items = 0;
    for n in 0..test.len() {
        if threshold.is_some_and(|t| test.values[n] < t) {
            continue;
        }
        let Some(u) = um[test.users[n] as usize] else {
            unknown_users.insert(test.users[n]);
            continue;
        };
        let t = per.entry(u).or_insert(UserTruth {
            user: u,
            items: Vec::new(),
            n_relevant: 0,
        });
        t.n_relevant += 1;
        match im[test.items[n] as usize] {
            Some(i) => t.items.push(i),
            None => unknown_items += 1,
        }
    }
    let mut truth: Vec<UserTruth> = per.into_values().collect();
    for t in &mut truth {
        t.items.sort_unstable();
        t.items.dedup();
    }
    (truth, unknown_users.len(), unknown_items)
}

/// Ranking metrics of a model on held-out data (see the module docs).
pub fn ranking_metrics(
    model: &Model,
    test: &Interactions,
    ks: &[usize],
    threshold: Option<f32>,
) -> RankingMetrics {
    // A model's lists come from its list head when it has one.
    let model = model.lists();
    let (truth, uu, ui) = truth_for(model.user_ids(), model.item_ids(), test, threshold);
    let sc = Scorer {
        k: model.factors(),
        user_factors: model.user_factors(),
        item_factors: model.scoring_item_factors(),
        // Explicit models rank by predicted rating, in which b_i matters.
        item_bias: Some(model.item_bias()),
    };
    let mut m = rank_eval(&sc, &|u| model.seen(u).to_vec(), &truth, ks, true);
    m.unknown_users = uu;
    m.unknown_items = ui;
    m
}

/// The figures `recsys eval --format json` prints, by name: a rating
/// model's rating metrics (`rmse`, `mae`, `n`, unknown users and items),
/// then `ranking_users`, `ranking_unknown_users`, `ranking_unknown_items`
/// and each ranking metric at each cut-off in `ks` (`precision@10`, …).
pub fn report(
    model: &Model,
    test: &Interactions,
    ks: &[usize],
    threshold: Option<f32>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    if !model.meta().implicit {
        if let Ok(serde_json::Value::Object(o)) = serde_json::to_value(rating_metrics(model, test))
        {
            out.extend(o);
        }
    }
    let r = ranking_metrics(model, test, ks, threshold);
    out.insert("ranking_users".into(), r.users.into());
    out.insert("ranking_unknown_users".into(), r.unknown_users.into());
    out.insert("ranking_unknown_items".into(), r.unknown_items.into());
    for (k, v) in r.values {
        out.insert(k, v.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slow, obviously-correct reference: full sort, then the textbook
    /// formulas.
    fn reference(scores: &[f32], seen: &[u32], rel: &[u32], k: usize) -> [f64; 4] {
        let mut cand: Vec<(u32, f32)> = (0..scores.len() as u32)
            .filter(|i| !seen.contains(i))
            .map(|i| (i, scores[i as usize]))
            .collect();
        cand.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
        let top: Vec<u32> = cand.iter().take(k).map(|c| c.0).collect();
        let hits: Vec<bool> = top.iter().map(|i| rel.contains(i)).collect();
        let nh = hits.iter().filter(|&&h| h).count() as f64;
        let dcg: f64 = hits
            .iter()
            .enumerate()
            .filter(|(_, &h)| h)
            .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
            .sum();
        let idcg: f64 = (0..k.min(rel.len()))
            .map(|r| 1.0 / ((r + 2) as f64).log2())
            .sum();
        let mut ap = 0.0;
        let mut h = 0.0;
        for (r, &x) in hits.iter().enumerate() {
            if x {
                h += 1.0;
                ap += h / (r + 1) as f64;
            }
        }
        [
            nh / k as f64,
            nh / rel.len() as f64,
            dcg / idcg,
            ap / k.min(rel.len()) as f64,
        ]
    }

    #[test]
    fn ranking_metrics_match_a_slow_reference() {
        let k = 4;
        let (nu, ni) = (30usize, 50usize);
        // Irregular values: no near-ties, so any exact summation order ranks alike.
        let uf: Vec<f32> = (0..nu * k).map(|j| (j as f32 * 0.737).sin()).collect();
        let itf: Vec<f32> = (0..ni * k).map(|j| (j as f32 * 1.913).cos()).collect();
        let sc = Scorer {
            k,
            user_factors: &uf,
            item_factors: &itf,
            item_bias: None,
        };
        let seen = |u: u32| -> Vec<u32> {
            (0..ni as u32)
                .filter(|i| (i + u).is_multiple_of(7))
                .collect()
        };
        let truth: Vec<UserTruth> = (0..nu as u32)
            .map(|u| {
                let items: Vec<u32> = (0..ni as u32)
                    .filter(|i| (i * 3 + u) % 5 == 0 && (i + u) % 7 != 0)
                    .collect();
                UserTruth {
                    user: u,
                    n_relevant: items.len(),
                    items,
                }
            })
            .collect();
        let ks = [1usize, 5, 10];
        let got = rank_eval(&sc, &seen, &truth, &ks, true);
        for (j, &kk) in ks.iter().enumerate() {
            let mut sums = [0f64; 4];
            for t in &truth {
                let mut scores = Vec::new();
                sc.score_all(t.user, &mut scores);
                let r = reference(&scores, &seen(t.user), &t.items, kk);
                for c in 0..4 {
                    sums[c] += r[c];
                }
            }
            for (c, name) in ["precision", "recall", "ndcg", "map"].iter().enumerate() {
                let want = sums[c] / truth.len() as f64;
                let have = got.values[&format!("{name}@{kk}")];
                assert!((want - have).abs() < 1e-12, "{name}@{kk}: {have} vs {want}");
            }
            let _ = j;
        }
        // AUC against a pairwise count.
        let mut auc_sum = 0.0;
        for t in &truth {
            let mut scores = Vec::new();
            sc.score_all(t.user, &mut scores);
            let s = seen(t.user);
            let negs: Vec<f32> = (0..ni as u32)
                .filter(|i| !s.contains(i) && !t.items.contains(i))
                .map(|i| scores[i as usize])
                .collect();
            let mut w = 0.0;
            for &p in &t.items {
                for &n in &negs {
                    let sp = scores[p as usize];
                    w += if sp > n {
                        1.0
                    } else if sp == n {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
            auc_sum += w / (t.items.len() * negs.len()) as f64;
        }
        assert!((got.values["auc"] - auc_sum / truth.len() as f64).abs() < 1e-12);
    }

    #[test]
    fn perfect_and_empty_lists() {
        let m = list_metrics(&[3, 1, 2], &[1, 2, 3], 3, &[3]);
        assert_eq!(m[0], [1.0, 1.0, 1.0, 1.0]);
        let m = list_metrics(&[7, 8], &[1], 2, &[2]);
        assert_eq!(m[0], [0.0, 0.0, 0.0, 0.0]);
    }
}
