//! The trained model: factors, biases, id maps, each user's training items,
//! item popularity, and self-describing metadata ([`ModelMeta`]).
//!
//! A [`Model`] either owns its arrays (fresh from training) or views them in a
//! memory-mapped model file ([`file`]), so loading a large model costs a
//! header parse and a few checks, not a copy.

pub mod file;
pub mod meta;

use std::sync::Arc;

use crate::interactions::{Csr, IdMap, Interactions};
use crate::linalg::dot;
pub use file::Buf;
pub use meta::{
    frequency_lambda, unobserved_weights, Confidence, DataInfo, EpochReport, FoldInRule, ModelMeta,
    WarmStartInfo,
};

/// The `format` field every model file carries.
pub const FORMAT: &str = "recsys-model";
/// Bumped on any incompatible change to the file layout. Version 2 added
/// the list head (a reader of version 1 would ignore it and rank by the
/// rating head); version 1 files are still read.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads.
pub const FORMAT_VERSION_MIN: u32 = 1;

/// The model file a path designates: the path itself, or, when it is a
/// small text file (a registry's `current`), the file it names, relative to
/// its folder. Model files are binary (they start with a length), so the two
/// cannot be confused.
pub fn resolve_model_path(path: &std::path::Path) -> crate::Result<std::path::PathBuf> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| crate::Error::io(path, e))?;
    let mut head = Vec::new();
    f.take(4097)
        .read_to_end(&mut head)
        .map_err(|e| crate::Error::io(path, e))?;
    let text = match std::str::from_utf8(&head) {
        Ok(t) if head.len() <= 4096 && !t.contains('\0') => t.trim(),
        _ => return Ok(path.to_path_buf()),
    };
    if text.is_empty() || text.contains('\n') || text.starts_with('{') {
        return Ok(path.to_path_buf());
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let target = dir.join(text);
    if !target.exists() {
        return Err(crate::Error::BadModel {
            path: path.to_path_buf(),
            reason: format!(
                "nor a registry pointer to one (it would name {}, which does not exist)",
                target.display()
            ),
        });
    }
    Ok(target)
}

/// Item counts over the newest 10% of entries by timestamp (ties broken by
/// position), or `None` without timestamps.
fn recent_popularity(t: &Interactions) -> Option<Vec<f32>> {
    let times = t.times.as_ref()?;
    if t.is_empty() {
        return None;
    }
    // The newest `take` entries (ties: the later row) are a partition, not a
    // sort: O(n), and u32 positions halve the scratch memory (4 B per entry).
    let take = t.len().div_ceil(10);
    let mut c = vec![0f32; t.n_items()];
    let cut = t.len() - take;
    if t.len() <= u32::MAX as usize {
        let mut idx: Vec<u32> = (0..t.len() as u32).collect();
        idx.select_nth_unstable_by_key(cut, |&n| (times[n as usize], n));
        for &n in &idx[cut..] {
            c[t.items[n as usize] as usize] += 1.0;
        }
    } else {
        let mut idx: Vec<usize> = (0..t.len()).collect();
        idx.select_nth_unstable_by_key(cut, |&n| (times[n], n));
        for &n in &idx[cut..] {
            c[t.items[n] as usize] += 1.0;
        }
    }
    Some(c)
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, H. Hinnant).
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// What a trainer hands over to build a [`Model`]; arrays in `train`'s index order.
pub struct ModelParts<'a> {
    pub user_factors: Vec<f32>,
    pub item_factors: Vec<f32>,
    pub user_bias: Vec<f32>,
    pub item_bias: Vec<f32>,
    pub global_mean: f32,
    pub train: &'a Interactions,
    pub meta: ModelMeta,
}

/// A trained model. See the module docs.
#[derive(Debug)]
pub struct Model {
    pub(crate) meta: ModelMeta,
    pub(crate) k: usize,
    pub(crate) user_factors: Buf<f32>,
    pub(crate) item_factors: Buf<f32>,
    pub(crate) user_bias: Buf<f32>,
    pub(crate) item_bias: Buf<f32>,
    pub(crate) item_popularity: Buf<f32>,
    /// Popularity over the newest 10% of training interactions (when the
    /// data had timestamps): the "recent" cold-start fallback.
    pub(crate) item_recent_popularity: Option<Buf<f32>>,
    pub(crate) global_mean: f32,
    pub(crate) user_ids: Arc<IdMap>,
    pub(crate) item_ids: Arc<IdMap>,
    pub(crate) seen_indptr: Buf<u64>,
    pub(crate) seen_items: Buf<u32>,
    /// Derived arrays computed on first use (YᵀY for fold-in, item norms for
    /// cosine similarity), shared by all requests.
    pub(crate) cache: Cache,
    /// A rating model's second head, trained on the same data for its
    /// lists (see [`Model::lists`]). It shares this model's ids, training
    /// items and popularity arrays, and has no list head of its own.
    pub(crate) list_head: Option<Box<Model>>,
}

#[derive(Debug, Default)]
pub(crate) struct Cache {
    pub gram: std::sync::OnceLock<Vec<f32>>,
    pub item_norms: std::sync::OnceLock<Vec<f32>>,
    pub unobserved: std::sync::OnceLock<Option<Vec<f32>>>,
    pub scoring: std::sync::OnceLock<Option<Vec<f32>>>,
}

impl Model {
    pub fn from_parts(p: ModelParts<'_>) -> Model {
        let t = p.train;
        let mut meta = p.meta;
        meta.n_users = t.n_users();
        meta.n_items = t.n_items();
        meta.data.rows = t.len();
        meta.data.fingerprint = t.fingerprint();
        let seen: Csr = t.seen_by_user();
        Model {
            k: meta.factors,
            meta,
            user_factors: Buf::Owned(p.user_factors),
            item_factors: Buf::Owned(p.item_factors),
            user_bias: Buf::Owned(p.user_bias),
            item_bias: Buf::Owned(p.item_bias),
            item_popularity: Buf::Owned(t.item_counts().into_iter().map(|c| c as f32).collect()),
            item_recent_popularity: recent_popularity(t).map(Buf::Owned),
            global_mean: p.global_mean,
            user_ids: Arc::clone(&t.user_ids),
            item_ids: Arc::clone(&t.item_ids),
            seen_indptr: Buf::Owned(seen.indptr),
            seen_items: Buf::Owned(seen.indices),
            cache: Cache::default(),
            list_head: None,
        }
    }

    /// The model that ranks this model's lists (recommend, similar items,
    /// fold-in, the IVF index, ranking metrics): the list head when there is
    /// one, else the model itself. Ratings (`predict`, RMSE) always come
    /// from the model itself.
    pub fn lists(&self) -> &Model {
        self.list_head.as_deref().unwrap_or(self)
    }

    /// The list head, when this rating model has one.
    pub fn list_head(&self) -> Option<&Model> {
        self.list_head.as_deref()
    }

    /// This model with `head` answering its lists. `head` must have been
    /// trained on the same data (the same users and items in the same
    /// order); it then shares this model's training items and popularity
    /// arrays instead of holding copies.
    pub fn with_list_head(mut self, mut head: Model) -> crate::Result<Model> {
        let same = |a: &Arc<IdMap>, b: &Arc<IdMap>| Arc::ptr_eq(a, b) || a.ids_equal(b);
        if !same(&self.user_ids, &head.user_ids) || !same(&self.item_ids, &head.item_ids) {
            return Err(crate::Error::Other(
                "a list head must be trained on the same users and items as the model".into(),
            ));
        }
        if !head.meta.implicit {
            return Err(crate::Error::Other(
                "a list head ranks by p·q: it must be an implicit-feedback model".into(),
            ));
        }
        head.list_head = None;
        head.user_ids = Arc::clone(&self.user_ids);
        head.item_ids = Arc::clone(&self.item_ids);
        head.seen_indptr = self.seen_indptr.share();
        head.seen_items = self.seen_items.share();
        head.item_popularity = self.item_popularity.share();
        head.item_recent_popularity = self.item_recent_popularity.as_mut().map(Buf::share);
        self.list_head = Some(Box::new(head));
        Ok(self)
    }

    /// Adds (user, item) pairs to the training items that lists leave out:
    /// rows held out for validation are the user's as much as the fitted
    /// ones, so a list must not offer them back. Shared with the list head.
    pub fn add_seen(&mut self, users: &[u32], items: &[u32]) {
        let nu = self.n_users();
        let mut rows: Vec<Vec<u32>> = (0..nu as u32).map(|u| self.seen(u).to_vec()).collect();
        for (&u, &i) in users.iter().zip(items) {
            rows[u as usize].push(i);
        }
        let mut indptr = Vec::with_capacity(nu + 1);
        let mut indices = Vec::new();
        indptr.push(0u64);
        for mut r in rows {
            r.sort_unstable();
            r.dedup();
            indices.extend_from_slice(&r);
            indptr.push(indices.len() as u64);
        }
        self.seen_indptr = Buf::Owned(indptr);
        self.seen_items = Buf::Owned(indices);
        if let Some(h) = self.list_head.as_deref_mut() {
            h.seen_indptr = self.seen_indptr.share();
            h.seen_items = self.seen_items.share();
        }
    }

    pub fn list_head_mut(&mut self) -> Option<&mut Model> {
        self.list_head.as_deref_mut()
    }

    /// Drops the list head: the model then answers lists by itself.
    pub fn without_list_head(mut self) -> Model {
        self.list_head = None;
        self
    }

    /// The metadata as `recsys info --json` prints it: every field, the
    /// list head's metadata when there is one, and which model answers
    /// ratings and which answers lists.
    pub fn info_json(&self) -> serde_json::Value {
        let m = self.meta();
        let mut v = serde_json::to_value(m).unwrap_or_default();
        if let Some(h) = self.list_head() {
            v["list_head"] = serde_json::to_value(h.meta()).unwrap_or_default();
        }
        v["answers"] = serde_json::json!({
            "ratings": (!m.implicit).then(|| m.algorithm.clone()),
            "lists": self.lists().meta().algorithm,
        });
        v
    }

    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }
    pub fn meta_mut(&mut self) -> &mut ModelMeta {
        &mut self.meta
    }
    pub fn factors(&self) -> usize {
        self.k
    }
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }
    pub fn user_ids(&self) -> &IdMap {
        &self.user_ids
    }
    pub fn item_ids(&self) -> &IdMap {
        &self.item_ids
    }
    pub fn user_factors(&self) -> &[f32] {
        &self.user_factors
    }
    pub fn item_factors(&self) -> &[f32] {
        &self.item_factors
    }
    pub fn user_bias(&self) -> &[f32] {
        &self.user_bias
    }
    pub fn item_bias(&self) -> &[f32] {
        &self.item_bias
    }
    pub fn global_mean(&self) -> f32 {
        self.global_mean
    }
    pub fn item_popularity(&self) -> &[f32] {
        &self.item_popularity
    }
    pub fn item_recent_popularity(&self) -> Option<&[f32]> {
        self.item_recent_popularity.as_deref()
    }
    /// Number of training items of user `u`.
    pub fn history_len(&self, u: u32) -> usize {
        (self.seen_indptr[u as usize + 1] - self.seen_indptr[u as usize]) as usize
    }

    /// YᵀY of the item factors (k × k), computed once: fold-in's Gramian,
    /// so it is Σ_i w_i y_i y_iᵀ for a model trained with popularity-weighted
    /// unobserved entries (see [`Self::unobserved_weights`]).
    pub fn item_gram(&self) -> &[f32] {
        self.cache
            .gram
            .get_or_init(|| match self.unobserved_weights() {
                None => crate::linalg::gram(&self.item_factors, self.k),
                Some(w) => {
                    let mut scaled = self.item_factors.to_vec();
                    for (row, &wi) in scaled.chunks_exact_mut(self.k).zip(w) {
                        let r = wi.sqrt();
                        row.iter_mut().for_each(|v| *v *= r);
                    }
                    crate::linalg::gram(&scaled, self.k)
                }
            })
    }

    /// The weights w_i of the unobserved entries this model was trained with
    /// (eALS), from its training counts; `None` for uniform weights.
    pub fn unobserved_weights(&self) -> Option<&[f32]> {
        self.cache
            .unobserved
            .get_or_init(|| {
                let omega = FoldInRule::of(&self.meta).unobserved_exponent;
                unobserved_weights(&self.item_popularity, omega)
            })
            .as_deref()
    }

    /// The item factors that lists rank with: q_i · d_i^β when the model
    /// has a score rescale by item degree (`item_degree_beta`, d_i the
    /// training count, at least 1), else the item factors themselves. As
    /// d_i^β > 0, ranking by p·(d_i^β q_i) is ranking by (p·q_i)·d_i^β, so
    /// recommend, serve, eval, recommend-all and the IVF index all apply the
    /// rescale by reading these. Similar items and fold-in use the raw factors.
    pub fn scoring_item_factors(&self) -> &[f32] {
        let beta = self.meta.item_degree_beta.unwrap_or(0.0);
        if beta == 0.0 {
            return &self.item_factors;
        }
        self.cache
            .scoring
            .get_or_init(|| {
                let mut q = self.item_factors.to_vec();
                for (row, &d) in q.chunks_exact_mut(self.k).zip(self.item_popularity.iter()) {
                    let s = d.max(1.0).powf(beta);
                    row.iter_mut().for_each(|v| *v *= s);
                }
                Some(q)
            })
            .as_deref()
            .unwrap_or(&self.item_factors)
    }

    /// Euclidean norm of each item vector, computed once.
    pub fn item_norms(&self) -> &[f32] {
        self.cache.item_norms.get_or_init(|| {
            self.item_factors
                .chunks_exact(self.k)
                .map(|q| dot(q, q).sqrt())
                .collect()
        })
    }
    pub fn user_vector(&self, u: u32) -> &[f32] {
        &self.user_factors[u as usize * self.k..(u as usize + 1) * self.k]
    }
    pub fn item_vector(&self, i: u32) -> &[f32] {
        &self.item_factors[i as usize * self.k..(i as usize + 1) * self.k]
    }

    /// The items user `u` had in training, sorted.
    pub fn seen(&self, u: u32) -> &[u32] {
        let (a, b) = (
            self.seen_indptr[u as usize] as usize,
            self.seen_indptr[u as usize + 1] as usize,
        );
        &self.seen_items[a..b]
    }

    /// Predicted value for known (u, i): a rating clipped to the training
    /// range for explicit models, the ranking score p·q + b_i for implicit ones.
    pub fn predict(&self, u: u32, i: u32) -> f32 {
        let s = dot(self.user_vector(u), self.item_vector(i));
        if self.meta.implicit {
            // Ranking score; b_i is zero for ALS and learned by BPR.
            return s + self.item_bias[i as usize];
        }
        let r = self.global_mean + self.user_bias[u as usize] + self.item_bias[i as usize] + s;
        self.clip(r)
    }

    /// The fallback prediction when the user or the item is unknown: the
    /// baseline terms that are known (global mean plus known biases).
    pub fn predict_partial(&self, u: Option<u32>, i: Option<u32>) -> f32 {
        match (u, i) {
            (Some(u), Some(i)) => self.predict(u, i),
            _ => {
                let r = self.global_mean
                    + u.map_or(0.0, |u| self.user_bias[u as usize])
                    + i.map_or(0.0, |i| self.item_bias[i as usize]);
                self.clip(r)
            }
        }
    }

    fn clip(&self, r: f32) -> f32 {
        if self.meta.rating_min < self.meta.rating_max {
            r.clamp(self.meta.rating_min, self.meta.rating_max)
        } else {
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_072_000), "2025-11-25T12:00:00Z");
    }

    #[test]
    fn recent_popularity_matches_a_full_sort() {
        // Many equal timestamps, so the tie rule (the later row) decides.
        let n = 1003usize;
        let t = Interactions {
            users: vec![0; n],
            items: (0..n as u32).map(|v| (v * 7) % 13).collect(),
            values: vec![1.0; n],
            times: Some((0..n as i64).map(|v| (v * 31) % 17).collect()),
            user_ids: Arc::new(IdMap::from_ints(vec![0])),
            item_ids: Arc::new(IdMap::from_ints((0..13).collect())),
        };
        let times = t.times.as_ref().unwrap();
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by_key(|&k| (times[k], k));
        let mut want = vec![0f32; 13];
        for &k in &idx[n - n.div_ceil(10)..] {
            want[t.items[k] as usize] += 1.0;
        }
        assert_eq!(recent_popularity(&t), Some(want));
    }
}
