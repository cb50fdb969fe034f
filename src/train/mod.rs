//! Training. One file per algorithm (`sgd`; ALS and BPR follow the same
//! shape): a `*Params` type with consuming setters and a `check()` that
//! returns the validated `*ValidParams`, whose `fit` turns interactions into a
//! [`Model`](crate::model::Model). Progress goes through a callback; this
//! module never prints.

pub mod als;
pub mod bpr;
pub mod kernels;
pub mod sgd;
mod strata;
pub mod warm;

use serde::{Deserialize, Serialize};

use crate::interactions::Interactions;
use crate::model::{Model, ModelMeta};

/// A validated trainer of any algorithm, for callers (the CLI, retraining)
/// that pick the algorithm at run time.
#[derive(Clone, Debug)]
pub enum Trainer {
    Sgd(sgd::SgdValidParams),
    Als(als::AlsValidParams),
    Bpr(bpr::BprValidParams),
    /// ALS on Apache Spark (see [`crate::spark`]): how to reach Spark, and
    /// the ranking cut-off of the job's own evaluation of a test side.
    Spark(als::AlsValidParams, crate::spark::SparkOptions, usize),
}

impl Trainer {
    pub fn implicit(&self) -> bool {
        match self {
            Trainer::Sgd(_) => false,
            Trainer::Als(p) | Trainer::Spark(p, ..) => p.params().implicit,
            Trainer::Bpr(_) => true,
        }
    }

    pub fn epochs(&self) -> usize {
        match self {
            Trainer::Sgd(p) => p.params().epochs,
            Trainer::Als(p) | Trainer::Spark(p, ..) => p.params().epochs,
            Trainer::Bpr(p) => p.params().epochs,
        }
    }

    pub fn factors(&self) -> usize {
        match self {
            Trainer::Sgd(p) => p.params().factors,
            Trainer::Als(p) | Trainer::Spark(p, ..) => p.params().factors,
            Trainer::Bpr(p) => p.params().factors,
        }
    }

    /// Whether [`Self::fit_with`] can start from a previous model's factors
    /// (Spark's ALS cannot: it always starts from random factors).
    pub fn warm_starts(&self) -> bool {
        !matches!(self, Trainer::Spark(..))
    }

    /// The parameters as stored in a model's metadata; a Spark trainer's
    /// carry `"engine": "spark"`, as the models it makes do.
    pub fn params_json(&self) -> serde_json::Value {
        let mut v = match self {
            Trainer::Sgd(p) => serde_json::to_value(p.params()),
            Trainer::Als(p) | Trainer::Spark(p, ..) => serde_json::to_value(p.params()),
            Trainer::Bpr(p) => serde_json::to_value(p.params()),
        }
        .unwrap_or_default();
        if let (Trainer::Spark(..), serde_json::Value::Object(o)) = (self, &mut v) {
            o.insert("engine".into(), "spark".into());
        }
        v
    }

    /// The trainer that made a model, from the algorithm and parameters in
    /// its metadata.
    pub fn from_meta(meta: &ModelMeta) -> crate::Result<Trainer> {
        Self::from_parts(&meta.algorithm, &meta.params)
    }

    /// A trainer from an algorithm name (`sgd`, `als`, `als-implicit`, `bpr`)
    /// and its parameters as JSON. ALS parameters with `"engine": "spark"`
    /// (a model trained on Spark) give a Spark trainer with the default
    /// [`SparkOptions`](crate::spark::SparkOptions); the caller supplies its own.
    pub fn from_parts(algorithm: &str, params: &serde_json::Value) -> crate::Result<Trainer> {
        fn de<T: serde::de::DeserializeOwned>(
            algo: &str,
            v: &serde_json::Value,
        ) -> crate::Result<T> {
            serde_json::from_value(v.clone()).map_err(|e| {
                crate::Error::Other(format!("the stored `{algo}` parameters do not parse: {e}"))
            })
        }
        Ok(match algorithm {
            "sgd" => Trainer::Sgd(de::<sgd::SgdParams>(algorithm, params)?.check()?),
            "als" | "als-implicit" => {
                let p = de::<als::AlsParams>(algorithm, params)?.check()?;
                if params.get("engine").and_then(|e| e.as_str()) == Some("spark") {
                    Trainer::Spark(p, crate::spark::SparkOptions::default(), 10)
                } else {
                    Trainer::Als(p)
                }
            }
            "bpr" => Trainer::Bpr(de::<bpr::BprParams>(algorithm, params)?.check()?),
            other => {
                return Err(crate::Error::Other(format!(
                    "algorithm `{other}` cannot be retrained here"
                )))
            }
        })
    }

    /// The same trainer with its parameters edited as JSON (a field per
    /// parameter, as stored in model metadata), checked again. A Spark
    /// trainer keeps its options.
    pub fn with_params(
        &self,
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> crate::Result<Trainer> {
        let mut v = self.params_json();
        if let serde_json::Value::Object(o) = &mut v {
            edit(o);
        }
        let t = Self::from_parts(self.algorithm_name(), &v)?;
        Ok(match (t, self) {
            (Trainer::Spark(p, ..), Trainer::Spark(_, o, k)) => Trainer::Spark(p, o.clone(), *k),
            (t, _) => t,
        })
    }

    /// This trainer moved to Spark with `opts` (a Spark trainer gets the new
    /// options). Only ALS runs there; early stopping is dropped, as Spark
    /// has no per-epoch validation.
    pub fn on_spark(&self, opts: crate::spark::SparkOptions) -> crate::Result<Trainer> {
        let (Trainer::Als(p) | Trainer::Spark(p, ..)) = self else {
            return Err(crate::Error::Other(format!(
                "the Spark engine trains ALS; this model's algorithm is `{}` \
                 (start over with --cold --algo als)",
                self.algorithm_name()
            )));
        };
        let k = match self {
            Trainer::Spark(_, _, k) => *k,
            _ => 10,
        };
        let mut q = p.params().clone();
        q.patience = None;
        crate::spark::check_params(&q)?;
        Ok(Trainer::Spark(q.check()?, opts, k))
    }

    fn algorithm_name(&self) -> &'static str {
        match self {
            Trainer::Sgd(_) => "sgd",
            Trainer::Als(_) | Trainer::Spark(..) => "als",
            Trainer::Bpr(_) => "bpr",
        }
    }

    /// Fits `x`, warm-started from `prev` when given. A Spark trainer
    /// cannot warm-start: given `prev` it trains from scratch and records
    /// why in the model's `params.spark.cold_start` (`warm_start` stays
    /// unset); it also ignores `valid` (no per-epoch validation on Spark).
    pub fn fit_with(
        &self,
        x: &Interactions,
        valid: Option<&Validation>,
        prev: Option<&Model>,
        cb: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> crate::Result<Model> {
        self.fit_full(x, valid, prev, None, cb)
    }

    /// [`Self::fit_with`], with a test side for trainers that evaluate it
    /// themselves: Spark's job scores `test` and its figures land in the
    /// metadata (`params.spark.evaluation`). The native trainers ignore it.
    pub fn fit_full(
        &self,
        x: &Interactions,
        valid: Option<&Validation>,
        prev: Option<&Model>,
        test: Option<&Interactions>,
        cb: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> crate::Result<Model> {
        match self {
            Trainer::Sgd(p) => p.fit_with(x, valid, prev, cb),
            Trainer::Als(p) => p.fit_with(x, valid, prev, cb),
            Trainer::Bpr(p) => p.fit_with(x, valid, prev, cb),
            Trainer::Spark(p, o, k) => {
                let mut m = crate::spark::fit(p.params(), o, x, test, *k)?;
                if prev.is_some() {
                    if let Some(s) = m.meta_mut().params.get_mut("spark") {
                        s["cold_start"] = crate::spark::NO_WARM_START.into();
                    }
                }
                Ok(m)
            }
        }
    }

    /// Implicit ALS defaults that follow the data, for the parameters the
    /// caller did not set (`alpha_set`, `reg_set`): α = 0.022 / density,
    /// within 1..=100, keeps the share of confidence on the positives about
    /// the same from dense to sparse logs (α ≈ 1 on ml-1m, ≈ 33 on Gowalla);
    /// λ = 0.05·(1 + α) grows with the data term it balances.
    pub fn adapt_to_data(
        self,
        x: &Interactions,
        alpha_set: bool,
        reg_set: bool,
    ) -> crate::Result<Trainer> {
        let (Trainer::Als(p) | Trainer::Spark(p, ..)) = &self else {
            return Ok(self);
        };
        if !p.params().implicit || x.is_empty() {
            return Ok(self);
        }
        let mut q = p.params().clone();
        let density = x.len() as f64 / (x.n_users() as f64 * x.n_items() as f64);
        if !alpha_set {
            q.alpha = (0.022 / density).clamp(1.0, 100.0) as f32;
        }
        if !reg_set {
            q.reg = 0.05 * (1.0 + q.alpha);
        }
        Ok(match self {
            Trainer::Spark(_, o, k) => Trainer::Spark(q.check()?, o, k),
            _ => Trainer::Als(q.check()?),
        })
    }
}

/// What happened in one epoch, as reported to the progress callback and
/// stored in the model's metadata (`history`). Fields added after the first
/// file format are optional with a default, so older files still load and
/// older readers ignore them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EpochReport {
    pub epoch: usize,
    /// RMSE of the training entries as seen during the pass (before each
    /// update) for SGD, after the sweep for explicit ALS.
    pub train_rmse: Option<f64>,
    /// Implicit ALS with validation data: the weighted squared loss with its
    /// L2 terms after the sweep, per unit of confidence (as `implicit` reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    /// BPR: share of the sampled (positive, negative) pairs already ranked
    /// right before their update, an estimate of the training AUC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_auc: Option<f64>,
    pub valid_rmse: Option<f64>,
    /// Ranking validation (implicit models): P@10 and nDCG@10 on a sample of users.
    pub valid_precision: Option<f64>,
    pub valid_ndcg: Option<f64>,
    /// Seconds spent in the gradient pass (without validation).
    pub seconds: f64,
    /// Training entries processed per second in the gradient pass.
    pub entries_per_second: f64,
    /// Wall-clock seconds since training began, at the end of this epoch
    /// (validation and loss included): the x axis of a learning curve in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<f64>,
}

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
}

impl EarlyStop {
    pub(crate) fn new(patience: Option<usize>) -> Self {
        EarlyStop {
            patience,
            best: f64::INFINITY,
            best_epoch: 0,
        }
    }

    /// Records an epoch's metric; returns (improved, stop now).
    pub(crate) fn observe(&mut self, epoch: usize, metric: f64) -> (bool, bool) {
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
}

/// What every trainer checks before fitting: there is data, and early
/// stopping has validation data to watch.
pub(crate) fn check_fit(
    train: &crate::interactions::Interactions,
    valid: Option<&Validation>,
    patience: Option<usize>,
) -> crate::Result<()> {
    if train.is_empty() {
        return Err(crate::Error::Other(
            "no training data: every entry was filtered out or held out".into(),
        ));
    }
    if let Some(p) = patience {
        if valid.is_none_or(|v| v.is_empty()) {
            return Err(crate::Error::param(
                "patience",
                p,
                "early stopping needs validation data (--validation F)",
            ));
        }
    }
    Ok(())
}

/// Runs `f` on a rayon pool of `threads` threads (all cores when `None`).
pub(crate) fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> T + Send,
) -> crate::Result<T> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        b = b.num_threads(t);
    }
    let pool = b
        .build()
        .map_err(|e| crate::Error::Other(format!("cannot start the thread pool: {e}")))?;
    Ok(pool.install(f))
}

/// The thread count a run will use.
pub fn effective_threads(threads: Option<usize>) -> usize {
    threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
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
    fn a_spark_trainer_round_trips_through_its_parameters_and_keeps_its_options() {
        let opts = crate::spark::SparkOptions {
            master: "yarn".into(),
            submit_args: vec!["--queue=ml".into()],
            ..Default::default()
        };
        let als = Trainer::Als(als::AlsParams::default().check().unwrap());
        let spark = als.on_spark(opts.clone()).unwrap();
        assert!(!spark.warm_starts() && als.warm_starts());
        // The stored parameters say Spark, so a model's metadata gives Spark back.
        let v = spark.params_json();
        assert_eq!(v["engine"], "spark");
        assert!(matches!(
            Trainer::from_parts("als-implicit", &v).unwrap(),
            Trainer::Spark(..)
        ));
        assert!(matches!(
            Trainer::from_parts("als", &als.params_json()).unwrap(),
            Trainer::Als(..)
        ));
        // Editing parameters keeps the options; a changed epoch count shows.
        let t = spark
            .with_params(|o| {
                o.insert("epochs".into(), 3.into());
            })
            .unwrap();
        let Trainer::Spark(p, o, _) = &t else {
            panic!("not Spark: {t:?}")
        };
        assert_eq!((p.params().epochs, o), (3, &opts));
        // Only ALS moves to Spark; early stopping is dropped, not refused.
        let sgd = Trainer::Sgd(sgd::SgdParams::default().check().unwrap());
        assert!(sgd
            .on_spark(opts.clone())
            .unwrap_err()
            .to_string()
            .contains("ALS"));
        let patient = Trainer::Als(
            als::AlsParams {
                patience: Some(2),
                ..Default::default()
            }
            .check()
            .unwrap(),
        );
        let Trainer::Spark(p, ..) = patient.on_spark(opts).unwrap() else {
            panic!("not Spark")
        };
        assert_eq!(p.params().patience, None);
    }

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
