//! Hyperparameter search (`recsys tune`): successive halving over epochs on
//! a validation side carved from the training data (per user for implicit
//! feedback, at random for ratings) or given as files. No test side exists
//! here: a search cannot look at one.
//!
//! Trial 0 is the defaults `recsys train` would use on this data (or
//! `start`) with their own epochs, so the result is never worse on
//! validation than not searching. Then brackets of nine configurations are
//! trained at a short schedule (the first bracket's first one is the
//! defaults again); the best third go on at three times the epochs, and the
//! best third of those again (η = 3, three rungs). Trials run
//! `parallel` at a time with one thread each, so a trial's result does not
//! depend on how the others are scheduled; the same seed and the same
//! trials give the same leaderboard. The budget is kept by estimating each
//! trial's time from the ones before it (seconds per epoch and factor of
//! its algorithm, plus the evaluation): a trial that would end past the
//! deadline is not started, and when no trial fits any more the search ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::pipeline;
use super::{SetByUser, Trainer};
use crate::data::split::SplitSpec;
use crate::data::{self, LoadOptions, LoadReport};
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::train::als::AlsParams;
use crate::train::bpr::BprParams;
use crate::train::sgd::SgdParams;

/// The algorithms a search can try.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Sgd,
    Als,
    Bpr,
}

impl Family {
    /// Epochs (ALS: sweeps) of the three rungs.
    fn rungs(self) -> [usize; 3] {
        match self {
            Family::Sgd => [4, 12, 36],
            Family::Als => [3, 8, 20],
            Family::Bpr => [10, 30, 90],
        }
    }
}

/// What the search optimises on the validation side: `rmse` or `mae`
/// (lower is better) or a ranking metric `precision|recall|ndcg|map@k`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: String,
    pub k: Option<usize>,
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        if s == "rmse" || s == "mae" {
            return Ok(Metric { name: s, k: None });
        }
        if let Some((m, k)) = s.split_once('@') {
            if ["precision", "recall", "ndcg", "map"].contains(&m) {
                if let Ok(k @ 1..) = k.parse::<usize>() {
                    return Ok(Metric {
                        name: format!("{m}@{k}"),
                        k: Some(k),
                    });
                }
            }
        }
        Err(format!(
            "`{s}` is not a metric: give rmse, mae, or precision|recall|ndcg|map@k (e.g. ndcg@10)"
        ))
    }
}

impl Metric {
    pub fn lower_is_better(&self) -> bool {
        self.k.is_none()
    }

    /// `a` is better than `b`.
    fn better(&self, a: f64, b: f64) -> bool {
        if self.lower_is_better() {
            a < b
        } else {
            a > b
        }
    }
}

/// Where the validation side comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ValidationSide {
    /// This fraction of the training data (per user for implicit feedback,
    /// at random for ratings), seeded as `train --validation` carves it.
    Carve(f64),
    /// Files of held-out interactions, loaded with the training options.
    Files(Vec<String>),
}

/// One search, checked before any file is opened.
#[derive(Clone, Debug)]
pub struct TuneConfig {
    pub sources: Vec<String>,
    pub load: LoadOptions,
    pub implicit: bool,
    /// Entries with value ≥ this are the positives (implicit feedback).
    pub positive_threshold: Option<f32>,
    pub families: Vec<Family>,
    pub metric: Metric,
    /// From the call of [`run`], loading included.
    pub budget: Duration,
    /// Stop after this many trials even with time left.
    pub max_trials: Option<usize>,
    pub validation: ValidationSide,
    pub seed: u64,
    /// Trials at a time (each on one thread).
    pub parallel: usize,
    /// The first trial, instead of the defaults of the first family.
    pub start: Option<Trainer>,
}

impl TuneConfig {
    pub fn check(&self) -> Result<()> {
        if self.families.is_empty() {
            return Err(Error::Other("no algorithm to search".into()));
        }
        if self.implicit && self.families.contains(&Family::Sgd) {
            return Err(Error::param(
                "algo",
                "sgd",
                "fits ratings; for implicit feedback search als or bpr",
            ));
        }
        if self.metric.lower_is_better() && self.implicit {
            return Err(Error::param(
                "metric",
                &self.metric.name,
                "is a rating metric; implicit feedback is judged by a ranking metric such as ndcg@10",
            ));
        }
        if self.metric.lower_is_better() && self.families.contains(&Family::Bpr) {
            return Err(Error::param(
                "metric",
                &self.metric.name,
                "BPR predicts no ratings; search it on a ranking metric such as ndcg@10",
            ));
        }
        if self.budget.is_zero() {
            return Err(Error::param("budget", "0", "must be positive"));
        }
        if self.max_trials == Some(0) {
            return Err(Error::param("trials", 0, "must be ≥ 1"));
        }
        if self.parallel == 0 {
            return Err(Error::param("parallel", 0, "must be ≥ 1"));
        }
        if let ValidationSide::Carve(f) = self.validation {
            if !(f > 0.0 && f < 1.0) {
                return Err(Error::param(
                    "validation",
                    f,
                    "must be strictly between 0 and 1",
                ));
            }
        }
        if self.sources.is_empty() {
            return Err(Error::Other("no data sources given".into()));
        }
        Ok(())
    }
}

/// One trained and scored configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    pub id: usize,
    pub bracket: usize,
    pub rung: usize,
    pub algorithm: String,
    pub params: serde_json::Value,
    pub epochs: usize,
    pub value: f64,
    pub seconds: f64,
}

/// The best parameters, as `recsys train --params` and `retrain --params`
/// read them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BestParams {
    pub algorithm: String,
    pub params: serde_json::Value,
    pub metric: String,
    pub value: f64,
    pub trials: usize,
    pub seconds: f64,
    pub seed: u64,
    pub validation: String,
    pub data: Vec<String>,
}

impl BestParams {
    /// The trainer these parameters describe, checked; `threads` replaces
    /// the stored thread count (tuning trials run on one thread each).
    pub fn trainer(&self, threads: Option<usize>) -> Result<Trainer> {
        let mut p = self.params.clone();
        if let serde_json::Value::Object(o) = &mut p {
            o.insert("threads".into(), threads.into());
        }
        Trainer::from_parts(&self.algorithm, &p)
    }

    /// Reads a file written by [`BestParams::save`], naming it on error.
    pub fn load(path: &std::path::Path) -> Result<BestParams> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: format!("not a parameters file from `recsys tune`: {e}"),
        })
    }

    /// Writes the file atomically (temp file, fsync, rename).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Other(format!("encoding the parameters: {e}")))?;
        crate::util::atomic_write(path, |w| {
            std::io::Write::write_all(w, text.as_bytes()).map_err(|e| Error::io(path, e))
        })
    }
}

/// The record of a search.
#[derive(Debug)]
pub struct TuneRun {
    /// Every trial in the order it ran.
    pub trials: Vec<Trial>,
    pub best: Trial,
    pub best_params: BestParams,
    pub seconds: f64,
    pub load: LoadReport,
    pub train_rows: usize,
    pub validation_rows: usize,
    /// Why the search ended: `budget` or `trials`.
    pub stopped: &'static str,
}

impl TuneRun {
    /// The trials best first (ties: the earlier trial).
    pub fn leaderboard(&self, metric: &Metric) -> Vec<&Trial> {
        let mut v: Vec<&Trial> = self.trials.iter().collect();
        // Trials without a finite value (a diverged fit) go last.
        v.sort_by(|a, b| {
            let o = a.value.total_cmp(&b.value);
            let o = if metric.lower_is_better() {
                o
            } else {
                o.reverse()
            };
            (!a.value.is_finite())
                .cmp(&!b.value.is_finite())
                .then(o)
                .then(a.id.cmp(&b.id))
        });
        v
    }
}

/// A configuration waiting to be trained at a rung.
#[derive(Clone, Debug)]
struct Candidate {
    id: usize,
    family: Family,
    /// Checked parameters (as JSON) before the rung's epochs are set.
    params: serde_json::Value,
    algorithm: &'static str,
}

/// Seconds per unit (epoch × (factors + 8)) of fitting, per family, and of
/// one evaluation: what the budget is kept with.
#[derive(Default)]
struct Costs {
    fit: BTreeMap<&'static str, (f64, f64)>,
    eval: (f64, usize),
}

impl Costs {
    fn units(c: &Candidate, epochs: usize) -> f64 {
        let k = c.params["factors"].as_f64().unwrap_or(64.0);
        // An ALS sweep also multiplies every row by the k × k Gramian, which
        // is most of its cost from k = 256 on.
        let gramian = if c.algorithm.starts_with("als") {
            k * k / 64.0
        } else {
            0.0
        };
        epochs as f64 * (k + 8.0 + gramian)
    }

    /// The expected seconds of a trial, `None` before this algorithm ran
    /// once.
    fn estimate(&self, c: &Candidate, epochs: usize) -> Option<f64> {
        let (secs, units) = self.fit.get(c.algorithm)?;
        let eval = if self.eval.1 > 0 {
            self.eval.0 / self.eval.1 as f64
        } else {
            0.0
        };
        // 20% over the mean: a trial that runs long must not break the budget.
        Some(1.2 * (secs / units.max(1e-9) * Self::units(c, epochs) + eval))
    }

    fn record(&mut self, c: &Candidate, epochs: usize, fit_s: f64, eval_s: f64) {
        let e = self.fit.entry(c.algorithm).or_default();
        e.0 += fit_s;
        e.1 += Self::units(c, epochs);
        self.eval.0 += eval_s;
        self.eval.1 += 1;
    }
}

/// The search. `progress` hears of each trial as it ends.
pub fn run(cfg: &TuneConfig, progress: &mut (dyn FnMut(&Trial) + Send)) -> Result<TuneRun> {
    cfg.check()?;
    let t0 = Instant::now();
    let deadline = t0 + cfg.budget;
    let mut quiet = |_: pipeline::Event| {};
    let (all, load) = pipeline::load(
        &cfg.sources,
        &cfg.load,
        cfg.implicit,
        cfg.positive_threshold,
        "data",
        &mut quiet,
    )?;
    let (train, valid) = match &cfg.validation {
        ValidationSide::Carve(f) => {
            let spec = if cfg.implicit {
                SplitSpec::User(*f)
            } else {
                SplitSpec::Random(*f)
            };
            // The carve `train --validation` makes for the same seed.
            let (tr, va) = data::split::split(&all, spec, cfg.seed ^ 0x5eed)?;
            (tr.compact(), va)
        }
        ValidationSide::Files(files) => {
            let mut opts = cfg.load.clone();
            opts.min_user_count = 0;
            opts.min_item_count = 0;
            let (va, _) = pipeline::load(
                files,
                &opts,
                cfg.implicit,
                cfg.positive_threshold,
                "validation",
                &mut quiet,
            )?;
            (all, va)
        }
    };
    if train.is_empty() || valid.is_empty() {
        return Err(Error::Other(
            "the training or validation side is empty: nothing to search on".into(),
        ));
    }
    let bases: Vec<(Family, Trainer)> = cfg
        .families
        .iter()
        .map(|&f| Ok((f, base_trainer(f, cfg, &train)?)))
        .collect::<Result<_>>()?;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut costs = Costs::default();
    let mut trials: Vec<Trial> = Vec::new();
    let mut next_id = 0;
    let mut stopped = "budget";
    // Trial 0: the defaults `recsys train` would use on this data (or the
    // start), with their own epochs, so the search never ends worse than
    // not searching.
    let (first_family, first_base) = &bases[0];
    let reference = cfg.start.clone().unwrap_or_else(|| first_base.clone());
    let reference = Candidate {
        id: 0,
        family: *first_family,
        params: reference.params_json(),
        algorithm: algorithm_of(&reference),
    };
    let ref_epochs = reference.params["epochs"].as_u64().unwrap_or(1) as usize;
    // It alone may run past the deadline uncounted, so it stops at the
    // epoch boundary from which another epoch would end past it.
    let Some((fit_s, eval_s, value)) = run_batch(
        std::slice::from_ref(&reference),
        None,
        Some(deadline),
        &train,
        &valid,
        cfg,
    )?
    .remove(0) else {
        return Err(Error::Other(format!(
            "the first trial ({} with {} epochs) cannot finish within the budget of {:.0?}: \
             give a larger --budget",
            reference.algorithm, ref_epochs, cfg.budget
        )));
    };
    costs.record(&reference, ref_epochs, fit_s, eval_s);
    let t = Trial {
        id: 0,
        bracket: 0,
        rung: 0,
        algorithm: reference.algorithm.to_string(),
        params: reference.params.clone(),
        epochs: ref_epochs,
        value,
        seconds: fit_s + eval_s,
    };
    progress(&t);
    trials.push(t);
    next_id += 1;
    'search: for bracket in 0.. {
        // Nine configurations, the families taking turns.
        let mut cands = Vec::new();
        for j in 0..9 {
            let (fam, base) = &bases[j % bases.len()];
            // The first bracket starts from the defaults (or the start) on
            // the ladder's schedule.
            let trainer = if bracket == 0 && j == 0 {
                cfg.start.clone().unwrap_or_else(|| base.clone())
            } else {
                sample(*fam, base, &train, cfg.implicit, &mut rng)?
            };
            cands.push(Candidate {
                id: next_id + j,
                family: *fam,
                params: trainer.params_json(),
                algorithm: algorithm_of(&trainer),
            });
        }
        next_id += cands.len();
        let mut started_any = false;
        for rung in 0..3 {
            let mut results: Vec<(f64, Candidate)> = Vec::new();
            let mut queue = cands.clone();
            while !queue.is_empty() {
                if cfg.max_trials.is_some_and(|m| trials.len() >= m) {
                    stopped = "trials";
                    break 'search;
                }
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .as_secs_f64();
                // A batch of trials that fit in the time left; a trial of an
                // algorithm not timed yet runs alone, to be timed.
                let room = cfg
                    .max_trials
                    .map_or(cfg.parallel, |m| cfg.parallel.min(m - trials.len()));
                let (mut batch, mut keep, mut alone) = (Vec::new(), Vec::new(), false);
                for c in std::mem::take(&mut queue) {
                    let epochs = c.family.rungs()[rung];
                    if alone || batch.len() >= room {
                        keep.push(c);
                        continue;
                    }
                    match costs.estimate(&c, epochs) {
                        Some(s) if s <= left => batch.push(c),
                        Some(_) => {} // cannot end before the deadline: dropped
                        None if batch.is_empty() && left > 0.0 => {
                            batch.push(c);
                            alone = true;
                        }
                        None => keep.push(c),
                    }
                }
                queue = keep;
                if batch.is_empty() {
                    break;
                }
                started_any = true;
                // Timed trials fit in the time left by their estimates.
                let done = run_batch(&batch, Some(rung), None, &train, &valid, cfg)?;
                for (c, r) in batch.into_iter().zip(done) {
                    let Some((model_s, eval_s, value)) = r else {
                        continue;
                    };
                    let epochs = c.family.rungs()[rung];
                    costs.record(&c, epochs, model_s, eval_s);
                    let mut params = c.params.clone();
                    params["epochs"] = epochs.into();
                    let t = Trial {
                        id: c.id,
                        bracket,
                        rung,
                        algorithm: c.algorithm.to_string(),
                        params,
                        epochs,
                        value,
                        seconds: model_s + eval_s,
                    };
                    progress(&t);
                    trials.push(t);
                    if value.is_finite() {
                        results.push((value, c));
                    }
                }
            }
            // The best third go on.
            results.sort_by(|a, b| {
                let o = a.0.total_cmp(&b.0);
                let o = if cfg.metric.lower_is_better() {
                    o
                } else {
                    o.reverse()
                };
                o.then(a.1.id.cmp(&b.1.id))
            });
            cands = results
                .into_iter()
                .take(cands.len().div_ceil(3).max(1))
                .map(|r| r.1)
                .collect();
            if cands.is_empty() || rung == 2 {
                break;
            }
        }
        if !started_any {
            break;
        }
    }
    let best = trials
        .iter()
        .filter(|t| t.value.is_finite())
        .fold(None::<&Trial>, |b, t| match b {
            Some(b) if !cfg.metric.better(t.value, b.value) => Some(b),
            _ => Some(t),
        })
        .cloned()
        .ok_or_else(|| {
            Error::Other(format!(
                "no trial finished within the budget of {:.0?}: give a larger --budget",
                cfg.budget
            ))
        })?;
    let mut params = best.params.clone();
    if let serde_json::Value::Object(o) = &mut params {
        o.remove("threads");
    }
    let seconds = t0.elapsed().as_secs_f64();
    let best_params = BestParams {
        algorithm: best.algorithm.clone(),
        params,
        metric: cfg.metric.name.clone(),
        value: best.value,
        trials: trials.len(),
        seconds,
        seed: cfg.seed,
        validation: match &cfg.validation {
            ValidationSide::Carve(f) => format!(
                "{f} of the training data, {} (seed {})",
                if cfg.implicit {
                    "per user"
                } else {
                    "at random"
                },
                cfg.seed
            ),
            ValidationSide::Files(f) => f.join(", "),
        },
        data: cfg.sources.clone(),
    };
    Ok(TuneRun {
        trials,
        best,
        best_params,
        seconds,
        load,
        train_rows: train.len(),
        validation_rows: valid.len(),
        stopped,
    })
}

fn algorithm_of(t: &Trainer) -> &'static str {
    match t {
        Trainer::Sgd(_) => "sgd",
        Trainer::Als(p) | Trainer::Spark(p, ..) if p.params().implicit => "als-implicit",
        Trainer::Als(_) | Trainer::Spark(..) => "als",
        Trainer::Bpr(_) => "bpr",
    }
}

/// The defaults `recsys train` would use for this family on this data
/// (implicit ALS: adapted to the data), on one thread.
fn base_trainer(f: Family, cfg: &TuneConfig, train: &Interactions) -> Result<Trainer> {
    Ok(match f {
        Family::Sgd => Trainer::Sgd(
            SgdParams {
                seed: cfg.seed,
                threads: Some(1),
                ..SgdParams::default()
            }
            .check()?,
        ),
        Family::Als => {
            let t = Trainer::Als(
                AlsParams {
                    seed: cfg.seed,
                    threads: Some(1),
                    ..AlsParams::for_feedback(cfg.implicit)
                }
                .check()?,
            );
            t.adapt_to_data(train, SetByUser::default())?.0
        }
        Family::Bpr => Trainer::Bpr(
            BprParams {
                seed: cfg.seed,
                threads: Some(1),
                ..BprParams::default()
            }
            .check()?,
        ),
    })
}

/// A random configuration around `base`: factors from a ladder,
/// regularisation, step sizes and confidence scales log-uniform around the
/// defaults.
fn sample(
    f: Family,
    base: &Trainer,
    train: &Interactions,
    implicit: bool,
    rng: &mut StdRng,
) -> Result<Trainer> {
    fn around(rng: &mut StdRng, v: f64, decades_down: f64, decades_up: f64) -> f64 {
        v * 10f64.powf(rng.gen_range(-decades_down..=decades_up))
    }
    let p = base.params_json();
    let num = |k: &str| p[k].as_f64().unwrap_or(0.0);
    let mut edits: Vec<(&str, serde_json::Value)> = Vec::new();
    match f {
        Family::Sgd if rng.gen_bool(0.5) => {
            // The other regime: no biases, AdaGrad steps and a first epoch
            // on a few lead factors, which on data of low planted rank beats
            // the biased model (docs/training.md). AdaGrad's steps shrink by
            // themselves, so no decay; its η is larger than plain SGD's.
            edits.push(("biases", false.into()));
            edits.push(("adagrad", true.into()));
            edits.push(("lead_factors", [4, 8, 16][rng.gen_range(0..3)].into()));
            edits.push(("learning_rate", around(rng, 0.1, 0.3, 0.3).min(1.0).into()));
            edits.push(("lr_decay", 1.0.into()));
            edits.push(("reg_factors", around(rng, 0.1, 0.3, 0.3).into()));
        }
        Family::Sgd => {
            edits.push((
                "learning_rate",
                around(rng, num("learning_rate"), 0.7, 0.3).into(),
            ));
            edits.push((
                "reg_factors",
                around(rng, num("reg_factors"), 0.7, 0.5).into(),
            ));
            edits.push(("reg_bias", around(rng, num("reg_bias"), 1.0, 1.0).into()));
            // A slower decay keeps the steps long enough for sparse rows.
            edits.push(("lr_decay", rng.gen_range(0.85..=1.0f64).into()));
        }
        Family::Als if implicit => {
            // The confidence first: α's scale depends on it.
            let log = rng.gen_bool(0.5);
            // The adapted defaults when the base already has log
            // confidence; else the rules `adapt_to_data` applies.
            let (alpha, eps) = match (log, p["confidence"] == "log") {
                (true, true) => (num("alpha"), p["eps"].as_f64().unwrap_or(1.0)),
                (true, false) => (super::trainer::log_alpha(train, 1.0), 1.0),
                (false, _) => (super::trainer::density_alpha(train), 1.0),
            };
            let alpha = around(rng, alpha, 1.0, 1.0);
            edits.push(("confidence", if log { "log" } else { "linear" }.into()));
            edits.push(("eps", eps.into()));
            edits.push(("alpha", alpha.into()));
            // The objective options, each left at its plain value half the
            // time so the plain objective stays in the race:
            // - the frequency-scaled λ = reg·(n + α₀·N)^ν: reg is carried
            //   over so that λ stays the same for a row of the mean count n̄
            //   (α₀·N drawn as a share of n̄), which keeps the λ draw
            //   around the defaults meaningful for any ν;
            // - popularity-weighted unobserved entries, ω;
            // - the score rescale by item degree, β;
            // - the SVD start, which makes the short rungs count more.
            let mean_n = (train.len() as f64 / train.n_users().max(1) as f64).max(1.0);
            let (mut nu, mut offset) = (1.0, 0.0);
            if rng.gen_bool(0.5) {
                nu = rng.gen_range(0.5..=1.0f64);
                if rng.gen_bool(0.5) {
                    offset = around(rng, mean_n, 1.5, 0.5);
                }
                edits.push(("reg_exponent", nu.into()));
                edits.push((
                    "reg_unobserved",
                    (offset / train.n_items().max(1) as f64).into(),
                ));
            }
            let reg = around(rng, super::trainer::default_reg(alpha), 1.0, 0.7) * mean_n
                / (mean_n + offset).powf(nu);
            edits.push(("reg", reg.into()));
            if rng.gen_bool(0.5) {
                edits.push(("unobserved_exponent", rng.gen_range(-0.3..=0.8f64).into()));
            }
            if rng.gen_bool(0.5) {
                edits.push(("item_degree_beta", rng.gen_range(-0.2..=0.6f64).into()));
            }
            if rng.gen_bool(0.5) {
                edits.push(("init", "svd".into()));
            }
        }
        Family::Als => {
            edits.push(("reg", around(rng, num("reg"), 0.6, 0.6).into()));
        }
        Family::Bpr => {
            edits.push((
                "learning_rate",
                around(rng, num("learning_rate"), 0.7, 0.3).into(),
            ));
            edits.push(("reg", around(rng, num("reg"), 1.0, 1.0).into()));
        }
    }
    let ladder: &[usize] = match f {
        Family::Sgd => &[16, 32, 64, 128],
        // 512 pays on sparse logs (Gowalla's valid.txt recall@20: 0.2026 at
        // 256, 0.2171 at 512) at about four times the sweep.
        Family::Als if implicit => &[64, 128, 256, 512],
        Family::Als => &[8, 16, 32, 64],
        Family::Bpr => &[32, 64, 128],
    };
    let k = ladder[rng.gen_range(0..ladder.len())];
    base.with_params(|o| {
        o.insert("factors".into(), k.into());
        for (name, v) in edits {
            o.insert(name.into(), v);
        }
    })
}

/// Trains and scores `batch` at `rung` (`None`: with their own epochs), one
/// thread per trial: (fit seconds, evaluation seconds, metric value) per
/// trial, in order.
/// What a trial's epoch callback unwinds with when the trial is stopped at
/// its deadline (the trainers' callback cannot return an error).
struct PastDeadline;

/// Runs the trials of `batch` in parallel: (fit seconds, evaluation
/// seconds, metric) each, or `None` for a trial stopped because another
/// epoch would have ended past `stop_at`.
fn run_batch(
    batch: &[Candidate],
    rung: Option<usize>,
    stop_at: Option<Instant>,
    train: &Interactions,
    valid: &Interactions,
    cfg: &TuneConfig,
) -> Result<Vec<Option<(f64, f64, f64)>>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .iter()
            .map(|c| {
                s.spawn(move || -> Result<Option<(f64, f64, f64)>> {
                    let mut p = c.params.clone();
                    if let Some(r) = rung {
                        p["epochs"] = c.family.rungs()[r].into();
                    }
                    let epochs = p["epochs"].as_u64().unwrap_or(1).max(1) as u32;
                    let t = Trainer::from_parts(c.algorithm, &p)?;
                    let t0 = Instant::now();
                    let mut done = 0u32;
                    let mut watch = |_: &crate::model::EpochReport| {
                        done += 1;
                        let Some(d) = stop_at else { return };
                        let now = Instant::now();
                        let next = now + now.duration_since(t0) / done;
                        if (done < epochs && next > d) || now > d {
                            // Not a panic: the hook stays silent, and the
                            // join below turns it into `None`.
                            std::panic::resume_unwind(Box::new(PastDeadline));
                        }
                    };
                    let fit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        t.fit_with(train, None, None, None, &mut watch)
                    }));
                    let model = match fit {
                        Ok(m) => m?,
                        Err(payload) if payload.is::<PastDeadline>() => return Ok(None),
                        Err(payload) => std::panic::resume_unwind(payload),
                    };
                    let fit_s = t0.elapsed().as_secs_f64();
                    let t1 = Instant::now();
                    let value = match cfg.metric.k {
                        None => {
                            let r = crate::eval::rating_metrics(&model, valid);
                            if cfg.metric.name == "mae" {
                                r.mae
                            } else {
                                r.rmse
                            }
                        }
                        Some(k) => {
                            let t = if model.meta().implicit {
                                None
                            } else {
                                cfg.positive_threshold
                            };
                            let r = crate::eval::ranking_metrics(&model, valid, &[k], t);
                            r.values.get(&cfg.metric.name).copied().unwrap_or(f64::NAN)
                        }
                    };
                    Ok(Some((fit_s, t1.elapsed().as_secs_f64(), value)))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Other("a tuning trial panicked".into())))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_parse_and_know_their_direction() {
        let m: Metric = "nDCG@10".parse().unwrap();
        assert_eq!(
            (m.name.as_str(), m.k, m.lower_is_better()),
            ("ndcg@10", Some(10), false)
        );
        assert!("rmse".parse::<Metric>().unwrap().lower_is_better());
        for bad in ["ndcg@0", "ndcg", "hits@10", "recall@x"] {
            assert!(bad.parse::<Metric>().is_err(), "{bad}");
        }
    }

    #[test]
    fn best_params_round_trip_through_their_file() {
        let t = Trainer::Als(AlsParams::default().check().unwrap());
        let b = BestParams {
            algorithm: "als-implicit".into(),
            params: t.params_json(),
            metric: "ndcg@10".into(),
            value: 0.5,
            trials: 3,
            seconds: 1.0,
            seed: 42,
            validation: "0.2".into(),
            data: vec!["x.csv".into()],
        };
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("best.json");
        b.save(&f).unwrap();
        let back = BestParams::load(&f).unwrap();
        assert_eq!(back, b);
        let Trainer::Als(p) = back.trainer(Some(3)).unwrap() else {
            panic!("not ALS")
        };
        assert_eq!(p.params().threads, Some(3));
        std::fs::write(&f, "{}").unwrap();
        let e = BestParams::load(&f).unwrap_err().to_string();
        assert!(e.contains("best.json") && e.contains("recsys tune"), "{e}");
    }
}
