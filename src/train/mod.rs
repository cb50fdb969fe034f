//! Training. One folder per algorithm (`sgd`, `als`, `bpr`), each of the
//! same shape: `params.rs` holds the `*Params` type (a table of every
//! parameter, consuming setters) and its `check()`, which returns the
//! validated `*ValidParams`; `fit.rs` holds that type's one entry point,
//! `fit_with(train, valid, prev, progress)` (`fit` is its `prev = None`
//! case), which turns interactions into a [`Model`](crate::model::Model);
//! `maths.rs` holds the per-row or per-block updates; `tests.rs` their unit
//! tests. What the three share (parameter checks, the pre-fit check, the
//! thread pool, the end of a fit) is written once in `common.rs`.
//!
//! Progress goes through a callback; this module never prints or reads
//! files. Picking an algorithm at run time (and Spark) is
//! [`crate::engine`]'s job, a layer above.

pub mod als;
pub mod bpr;
mod common;
pub mod sgd;
mod strata;
pub mod warm;

pub use crate::model::EpochReport;
pub use common::effective_threads;

/// Validation data in the trainer's index space: (user, item, value).
#[derive(Clone, Debug, Default)]
pub struct Validation {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    pub values: Vec<f32>,
}

impl Validation {
    /// Keeps the entries of `held` whose user and item are known to `train`
    /// (others cannot guide the factors).
    pub fn from_heldout(
        train: &crate::interactions::Interactions,
        held: &crate::interactions::Interactions,
    ) -> Validation {
        let um = held.user_ids.translate_to(&train.user_ids);
        let im = held.item_ids.translate_to(&train.item_ids);
        let mut v = Validation::default();
        for n in 0..held.len() {
            if let (Some(u), Some(i)) = (um[held.users[n] as usize], im[held.items[n] as usize]) {
                v.users.push(u);
                v.items.push(i);
                v.values.push(held.values[n]);
            }
        }
        v
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Early stopping on a validation metric where lower is better.
#[derive(Clone, Debug)]
pub(crate) struct EarlyStop {
    patience: Option<usize>,
    best: f64,
    best_epoch: usize,
    /// Whether any epoch had a metric to watch.
    observed: bool,
}

impl EarlyStop {
    pub(crate) fn new(patience: Option<usize>) -> Self {
        EarlyStop {
            patience,
            best: f64::INFINITY,
            best_epoch: 0,
            observed: false,
        }
    }

    /// Records an epoch's metric; returns (improved, stop now).
    pub(crate) fn observe(&mut self, epoch: usize, metric: f64) -> (bool, bool) {
        self.observed = true;
        let improved = metric < self.best;
        if improved {
            self.best = metric;
            self.best_epoch = epoch;
        }
        let stop = self.patience.is_some_and(|p| epoch >= self.best_epoch + p);
        (improved, stop)
    }

    /// [`observe`](Self::observe), keeping in `best` a `snapshot()` of the
    /// best epoch's factors while stopping early could still restore them
    /// (not for the last epoch, whose factors are kept anyway). Returns
    /// whether to stop now.
    pub(crate) fn observe_keeping<T>(
        &mut self,
        epoch: usize,
        metric: f64,
        last_epoch: usize,
        best: &mut Option<T>,
        snapshot: impl FnOnce() -> T,
    ) -> bool {
        let (improved, stop) = self.observe(epoch, metric);
        if improved {
            *best = (self.patience.is_some() && epoch < last_epoch).then(snapshot);
        }
        stop
    }

    pub(crate) fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    /// The epoch whose factors a fit of `epochs_run` epochs keeps: the best
    /// one only when early stopping watched a metric (and restored its
    /// factors), else the last.
    pub(crate) fn kept_epoch(&self, epochs_run: usize) -> usize {
        if self.observed && self.patience.is_some() {
            self.best_epoch()
        } else {
            epochs_run
        }
    }
}

/// Per-epoch ranking validation for implicit models: P@10 and nDCG@10 on a
/// seeded sample of the validation users, training items excluded.
pub(crate) struct RankCheck {
    truth: Vec<crate::eval::UserTruth>,
    seen: crate::interactions::Csr,
}

impl RankCheck {
    /// At most this many users are ranked per epoch, so validation stays cheap.
    pub(crate) const MAX_USERS: usize = 2000;

    pub(crate) fn new(
        train: &crate::interactions::Interactions,
        v: &Validation,
        seed: u64,
    ) -> Option<RankCheck> {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut per: std::collections::BTreeMap<u32, Vec<u32>> = std::collections::BTreeMap::new();
        for (&u, &i) in v.users.iter().zip(&v.items) {
            per.entry(u).or_default().push(i);
        }
        let mut truth: Vec<crate::eval::UserTruth> = per
            .into_iter()
            .map(|(user, mut items)| {
                items.sort_unstable();
                items.dedup();
                crate::eval::UserTruth {
                    user,
                    n_relevant: items.len(),
                    items,
                }
            })
            .collect();
        if truth.is_empty() {
            return None;
        }
        if truth.len() > Self::MAX_USERS {
            truth.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x7a11));
            truth.truncate(Self::MAX_USERS);
            truth.sort_by_key(|t| t.user);
        }
        Some(RankCheck {
            truth,
            seen: train.seen_by_user(),
        })
    }

    /// (P@10, nDCG@10) for factors in the training index order.
    pub(crate) fn measure(
        &self,
        k: usize,
        uf: &[f32],
        itf: &[f32],
        ib: Option<&[f32]>,
    ) -> (f64, f64) {
        let sc = crate::eval::Scorer {
            k,
            user_factors: uf,
            item_factors: itf,
            item_bias: ib,
        };
        let m = crate::eval::rank_eval(
            &sc,
            &|u| self.seen.row(u as usize).to_vec(),
            &self.truth,
            &[10],
            false,
        );
        (m.values["precision@10"], m.values["ndcg@10"])
    }
}

/// `n × k` factors drawn from N(0, std²) with ndarray-rand, in parallel
/// chunks of rows, each from its own RNG seeded by (seed, stream, chunk):
/// the values depend on those only, not on the thread count.
pub(crate) fn init_factors(n: usize, k: usize, std: f32, seed: u64, stream: u64) -> Vec<f32> {
    use ndarray::Array2;
    use ndarray_rand::rand_distr::Normal;
    use ndarray_rand::RandomExt;
    use rand::SeedableRng;
    use rayon::prelude::*;
    const ROWS: usize = 1024;
    let mut out = vec![0f32; n * k];
    if std <= 0.0 || k == 0 {
        return out;
    }
    let Ok(normal) = Normal::new(0.0f32, std) else {
        return out;
    };
    out.par_chunks_mut(ROWS * k)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mix = seed
                ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (c as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let mut rng = rand::rngs::StdRng::seed_from_u64(mix);
            let a = Array2::random_using((chunk.len() / k, k), normal, &mut rng);
            chunk.copy_from_slice(a.as_slice().expect("a new array is in standard layout"));
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_reports_of_older_files_still_load() {
        // A history entry as the first format wrote it, without the later fields.
        let old = r#"{"epoch":3,"train_rmse":0.9,"valid_rmse":null,"valid_precision":null,
                      "valid_ndcg":null,"seconds":0.01,"entries_per_second":8e6}"#;
        let r: EpochReport = serde_json::from_str(old).unwrap();
        assert_eq!((r.epoch, r.train_loss, r.elapsed_seconds), (3, None, None));
        // Unset new fields are not written, so older readers see the old shape.
        let back = serde_json::to_value(&r).unwrap();
        assert!(back.get("train_loss").is_none() && back.get("elapsed_seconds").is_none());
    }

    #[test]
    fn early_stop_waits_for_patience() {
        let mut e = EarlyStop::new(Some(2));
        assert_eq!(e.observe(1, 1.0), (true, false));
        assert_eq!(e.observe(2, 0.9), (true, false));
        assert_eq!(e.observe(3, 0.95), (false, false));
        assert_eq!(e.observe(4, 0.91), (false, true));
        assert_eq!(e.best_epoch(), 2);
    }
}
