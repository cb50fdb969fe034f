//! The training pipeline: load → positives → test side → validation
//! carve-out → adapt defaults to the data → fit (cold or warm) → evaluate →
//! metadata → save. [`run`] is the whole of it for one configuration (what
//! `recsys train` does); its stages are public so retraining composes the
//! same steps with its own holdout, skips and gate. Nothing here prints:
//! the caller hears of each stage through [`Event`]s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::Trainer;
use crate::data::{self, split::SplitSpec, LoadOptions, LoadReport};
use crate::error::{Error, Result};
use crate::eval::{self, RankingMetrics, RatingMetrics};
use crate::interactions::Interactions;
use crate::model::{EpochReport, Model};
use crate::train::Validation;

/// Where a run's test side comes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum TestSide {
    /// No test side: nothing is evaluated at the end.
    #[default]
    None,
    /// Files of held-out interactions, loaded with the training options.
    Files(Vec<String>),
    /// A seeded split of the loaded data.
    Split(SplitSpec),
}

pub use super::trainer::SetByUser;

/// One training run, checked: built by a front (CLI, Python) from its own
/// inputs before any file is opened.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub sources: Vec<String>,
    pub load: LoadOptions,
    pub test: TestSide,
    /// Fraction of the training side held out for per-epoch validation
    /// (per user for implicit feedback, at random for ratings).
    pub validation: Option<f64>,
    pub trainer: Trainer,
    /// For a rating model: the trainer of its list head, which answers its
    /// top-N lists ([`super::heads`]). `None`: the model answers both.
    pub list_head: Option<Trainer>,
    /// `None`: adapt nothing to the data (a tuned or stored setting).
    pub adapt: Option<SetByUser>,
    /// Entries with value ≥ this are the positives: the whole data of an
    /// implicit model, the relevant items of a rating model's lists.
    pub positive_threshold: Option<f32>,
    /// A rating model's relevant test items are those rated ≥ this (default:
    /// the positive threshold, else every held-out item).
    pub relevant_min: Option<f32>,
    /// Cut-offs of the ranking metrics on the test side.
    pub eval_k: Vec<usize>,
    /// Seed of the test split and the validation carve-out.
    pub seed: u64,
    /// Where the model is written; `None` keeps it in memory only.
    pub out: Option<PathBuf>,
}

impl TrainConfig {
    /// The checks that need no data: they fail before anything is read.
    pub fn check(&self) -> Result<()> {
        if let Some(v) = self.validation {
            if !(v > 0.0 && v < 1.0) {
                return Err(Error::param(
                    "validation",
                    v,
                    "must be strictly between 0 and 1",
                ));
            }
        }
        if self.eval_k.contains(&0) {
            return Err(Error::param("eval_k", 0, "cut-offs must be ≥ 1"));
        }
        if self.sources.is_empty() {
            return Err(Error::Other("no data sources given".into()));
        }
        if let Some(h) = &self.list_head {
            if self.trainer.implicit() || !h.implicit() {
                return Err(Error::Other(
                    "a list head is an implicit model added to a rating model".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What the pipeline tells its caller as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// `what` ("data", "test") was read.
    Loaded {
        what: &'a str,
        report: &'a LoadReport,
        seconds: f64,
    },
    /// An implicit model keeps the entries with value ≥ `threshold`.
    Positives {
        threshold: f32,
        count: usize,
    },
    /// The trainer is about to run this many epochs.
    Fitting {
        epochs: usize,
    },
    /// The list head is about to run this many epochs (its epochs follow
    /// as [`Event::Epoch`]s).
    FittingListHead {
        epochs: usize,
    },
    Epoch(&'a EpochReport),
}

/// A model's figures on a test side or holdout: rating metrics for rating
/// models, ranking metrics for every model (a rating model's relevant items
/// are all its held-out items, or those ≥ a threshold).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Evaluation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<RatingMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking: Option<RankingMetrics>,
}

impl Evaluation {
    /// The figures by name (`rmse`, `mae`, `precision@10`, …, `ranking_users`),
    /// as the gate reads them and model metadata stores them.
    pub fn flat(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        if let Some(r) = &self.rating {
            out.insert("rmse".into(), r.rmse);
            out.insert("mae".into(), r.mae);
        }
        if let Some(r) = &self.ranking {
            out.extend(r.values.clone());
            out.insert("ranking_users".into(), r.users as f64);
        }
        out
    }
}

/// The record of a [`run`].
#[derive(Debug)]
pub struct TrainRun {
    pub model: Model,
    pub load: LoadReport,
    /// Entries the model was fitted on (after the test and validation sides).
    pub train_rows: usize,
    pub load_seconds: f64,
    pub train_seconds: f64,
    pub test: Option<Evaluation>,
}

impl TrainRun {
    /// Mean seconds per epoch of the gradient passes.
    pub fn seconds_per_epoch(&self) -> f64 {
        let h = &self.model.meta().history;
        h.iter().map(|r| r.seconds).sum::<f64>() / h.len().max(1) as f64
    }
}

/// Loads `sources`; for an implicit model with a threshold, keeps the
/// positives only (as value-1 entries). For implicit feedback without a
/// threshold, repeated (user, item) rows add up unless `opts.aggregate`
/// says otherwise (each row of an event log is one event), and entries
/// whose sum is ≤ 0 (returns, cancellations) are dropped.
pub fn load(
    sources: &[String],
    opts: &LoadOptions,
    implicit: bool,
    threshold: Option<f32>,
    what: &str,
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<(Interactions, LoadReport)> {
    prepared(opts, implicit, threshold, what, events, |opts| {
        data::load(sources, opts)
            .map_err(|e| e.context(format!("loading {what} {}", sources.join(", "))))
    })
}

/// [`load`] for columns already in memory ([`data::Columns`]), named
/// `source` in errors: the same rules for implicit feedback, duplicates and
/// positives as for files.
pub fn load_columns(
    columns: data::Columns,
    source: &str,
    opts: &LoadOptions,
    implicit: bool,
    threshold: Option<f32>,
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<(Interactions, LoadReport)> {
    prepared(opts, implicit, threshold, "data", events, |opts| {
        data::from_columns(columns, opts, source)
    })
}

/// The load options of implicit feedback around `read`, then the positives.
fn prepared(
    opts: &LoadOptions,
    implicit: bool,
    threshold: Option<f32>,
    what: &str,
    events: &mut (dyn FnMut(Event) + Send),
    read: impl FnOnce(&LoadOptions) -> Result<(Interactions, LoadReport)>,
) -> Result<(Interactions, LoadReport)> {
    let t0 = Instant::now();
    let mut opts = opts.clone();
    if implicit && threshold.is_none() {
        opts.aggregate.get_or_insert(data::Aggregate::Sum);
        opts.drop_non_positive = true;
    }
    let (mut x, report) = read(&opts)?;
    if let (Some(t), true) = (threshold, implicit) {
        x = x.positives(t);
        if what == "data" {
            x = x.compact();
            events(Event::Positives {
                threshold: t,
                count: x.len(),
            });
        }
    }
    events(Event::Loaded {
        what,
        report: &report,
        seconds: t0.elapsed().as_secs_f64(),
    });
    Ok((x, report))
}

/// Holds out `fraction` of `train` for per-epoch validation: per user for
/// implicit feedback, at random for ratings.
pub fn carve_validation(
    train: Interactions,
    fraction: f64,
    implicit: bool,
    seed: u64,
) -> Result<(Interactions, Validation)> {
    let spec = if implicit {
        SplitSpec::User(fraction)
    } else {
        SplitSpec::Random(fraction)
    };
    let (tr, va) = data::split::split(&train, spec, seed ^ 0x5eed)?;
    let tr = tr.compact();
    let v = Validation::from_heldout(&tr, &va);
    Ok((tr, v))
}

/// The trainers of one fit: the model's own and, for a rating model, its
/// list head's; `adapt_head` applies the data-following implicit defaults
/// to the head.
#[derive(Clone, Copy, Debug)]
pub struct Fit<'a> {
    pub trainer: &'a Trainer,
    pub list_head: Option<&'a Trainer>,
    pub adapt_head: bool,
}

/// Fits `train` (warm from `prev` when given), then the list head if any,
/// and records the run's sources and training time in the model's metadata.
pub fn fit(
    f: Fit<'_>,
    train: &Interactions,
    valid: Option<&Validation>,
    prev: Option<&Model>,
    test: Option<&Interactions>,
    sources: &[String],
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<(Model, f64)> {
    events(Event::Fitting {
        epochs: f.trainer.epochs(),
    });
    let t = Instant::now();
    let mut model = f
        .trainer
        .fit_with(train, valid, prev, test, &mut |r| events(Event::Epoch(r)))?;
    if let Some(h) = f.list_head {
        let th = Instant::now();
        model = super::heads::attach_list_head(model, h, train, prev, f.adapt_head, events)?;
        model
            .meta_mut()
            .metrics
            .insert("list_head_seconds".into(), th.elapsed().as_secs_f64());
    }
    let secs = t.elapsed().as_secs_f64();
    model.meta_mut().data.sources = sources.to_vec();
    model
        .meta_mut()
        .metrics
        .insert("train_seconds".into(), secs);
    Ok((model, secs))
}

/// `model` on `test` (matched by external ids). `ks` are the ranking
/// cut-offs; with `threshold`, a rating model's relevant items are its
/// held-out ratings ≥ threshold (else all of them).
pub fn evaluate(
    model: &Model,
    test: &Interactions,
    ks: &[usize],
    threshold: Option<f32>,
) -> Evaluation {
    let implicit = model.meta().implicit;
    let t = if implicit { None } else { threshold };
    Evaluation {
        rating: (!implicit).then(|| eval::rating_metrics(model, test)),
        ranking: Some(eval::ranking_metrics(model, test, ks, t)),
    }
}

/// The fit of [`run`] on data already loaded and split: the validation
/// carve-out, the defaults that follow the data, the fit (and the list
/// head), and the validation rows added to the model's seen items. Returns
/// the model, the training seconds and the entries fitted on.
pub fn train_on(
    cfg: &TrainConfig,
    train: Interactions,
    test: Option<&Interactions>,
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<(Model, f64, usize)> {
    cfg.check()?;
    let implicit = cfg.trainer.implicit();
    let (train, valid) = match cfg.validation {
        Some(f) => {
            let (tr, v) = carve_validation(train, f, implicit, cfg.seed)?;
            (tr, Some(v))
        }
        None => (train, None),
    };
    let (trainer, defaults) = match cfg.adapt {
        Some(set) => cfg.trainer.clone().adapt_to_data(&train, set)?,
        None => (cfg.trainer.clone(), None),
    };
    let fits = Fit {
        trainer: &trainer,
        list_head: cfg.list_head.as_ref(),
        adapt_head: cfg.adapt.is_some(),
    };
    let (mut model, train_seconds) = fit(
        fits,
        &train,
        valid.as_ref(),
        None,
        test,
        &cfg.sources,
        events,
    )?;
    model.meta_mut().data.defaults = defaults;
    // The validation rows are the user's too: lists must not offer them
    // back (the test side stays out, as it is what the lists are scored on).
    if let Some(v) = &valid {
        model.add_seen(&v.users, &v.items);
    }
    Ok((model, train_seconds, train.len()))
}

/// The whole pipeline for one configuration.
pub fn run(cfg: &TrainConfig, events: &mut (dyn FnMut(Event) + Send)) -> Result<TrainRun> {
    cfg.check()?;
    let implicit = cfg.trainer.implicit();
    let threshold = cfg.positive_threshold;
    let t0 = Instant::now();
    let (all, report) = load(&cfg.sources, &cfg.load, implicit, threshold, "data", events)?;
    let load_seconds = t0.elapsed().as_secs_f64();
    let (train, test) = match &cfg.test {
        TestSide::Split(spec) => {
            let (tr, te) = data::split::split(&all, *spec, cfg.seed)?;
            (tr.compact(), Some(te))
        }
        TestSide::Files(files) => {
            let mut topts = cfg.load.clone();
            // The minimum counts prune the training data, not the test side.
            topts.min_user_count = 0;
            topts.min_item_count = 0;
            let (te, _) = load(files, &topts, implicit, threshold, "test", events)?;
            (all, Some(te))
        }
        TestSide::None => (all, None),
    };
    let (mut model, train_seconds, train_rows) = train_on(cfg, train, test.as_ref(), events)?;
    let evaluation = test.as_ref().map(|te| {
        let e = evaluate(&model, te, &cfg.eval_k, cfg.relevant_min.or(threshold));
        let metrics = &mut model.meta_mut().metrics;
        if let Some(r) = &e.rating {
            metrics.insert("test_rmse".into(), r.rmse);
            metrics.insert("test_mae".into(), r.mae);
            metrics.insert("test_n".into(), r.n as f64);
        }
        if let Some(r) = &e.ranking {
            for (k, v) in &r.values {
                metrics.insert(format!("test_{k}"), *v);
            }
        }
        e
    });
    if let Some(out) = &cfg.out {
        model
            .save(out)
            .map_err(|e| e.context(format!("writing model {}", out.display())))?;
    }
    Ok(TrainRun {
        model,
        load: report,
        train_rows,
        load_seconds,
        train_seconds,
        test: evaluation,
    })
}
