//! The trainer dispatch: one validated trainer of any algorithm, native or
//! on Spark, for callers (the pipeline, retraining, tuning) that pick the
//! algorithm at run time. It sits above both [`crate::train`] and
//! [`crate::spark`], so neither knows the other.

use crate::data::feedback::{self, FeedbackKind};
use crate::interactions::Interactions;
use crate::model::{Confidence, EpochReport, Model, ModelMeta};
use crate::train::{als, bpr, sgd, Validation};

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
                let mut p = de::<als::AlsParams>(algorithm, params)?;
                // Files imported from Spark before explicit ALS refused `cg`
                // stored it for ratings; the solver never ran there.
                if !p.implicit {
                    p.solver = als::Solver::Cholesky;
                }
                let p = p.check()?;
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

    /// Fits `x`, warm-started from `prev` when given: the one entry point
    /// for every trainer. The native trainers ignore `test`; Spark's job
    /// scores it and its figures land in the metadata
    /// (`params.spark.evaluation`). A Spark trainer cannot warm-start: given
    /// `prev` it trains from scratch and records why in the model's
    /// `params.spark.cold_start` (`warm_start` stays unset); it also ignores
    /// `valid` (no per-epoch validation on Spark).
    pub fn fit_with(
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
    /// caller did not set (`set`), and what was decided and why (for the
    /// model's metadata). The kind of feedback is read off the values
    /// ([`feedback::detect`]):
    /// - counts and weights get log confidence 1 + α ln(1 + r/ε), with ε = 1
    ///   for counts and the median for weights: a few huge counts must not
    ///   drown every other entry, as linear confidence lets them;
    /// - binary data and ratings keep the linear confidence.
    ///
    /// α = 0.022 / density, within 1..=100, keeps the share of confidence on
    /// the positives about the same from dense to sparse logs (α ≈ 1 on
    /// ml-1m, ≈ 33 on Gowalla); where this switched to log confidence it is
    /// divided by the mean log term, so the positives weigh the same in
    /// total. λ = [`default_reg`]`(α)` grows with the data term it balances.
    pub fn adapt_to_data(
        self,
        x: &Interactions,
        set: SetByUser,
    ) -> crate::Result<(Trainer, Option<String>)> {
        let (Trainer::Als(p) | Trainer::Spark(p, ..)) = &self else {
            return Ok((self, None));
        };
        if !p.params().implicit || x.is_empty() {
            return Ok((self, None));
        }
        let mut q = p.params().clone();
        let fb = feedback::detect(&x.values);
        let mut why = vec![fb.reason.clone()];
        let to_log =
            !set.confidence && matches!(fb.kind, FeedbackKind::Counts | FeedbackKind::Weights);
        if to_log {
            q.confidence = Confidence::Log;
            if !set.eps {
                q.eps = if fb.kind == FeedbackKind::Weights && fb.stats.p50 > 0.0 {
                    fb.stats.p50 as f32
                } else {
                    1.0
                };
            }
            why.push(format!("log confidence with ε = {}", q.eps));
        }
        let density = x.len() as f64 / (x.n_users() as f64 * x.n_items() as f64);
        if !set.alpha {
            let a = if to_log {
                log_alpha(x, f64::from(q.eps))
            } else {
                density_alpha(x)
            };
            q.alpha = a as f32;
            why.push(format!("α = {:.3} from density {density:.2e}", q.alpha));
        }
        if !set.reg {
            q.reg = default_reg(f64::from(q.alpha)) as f32;
            why.push(format!("λ = {:.3} = 0.05·(3 + α)", q.reg));
        }
        let note = Some(why.join("; "));
        Ok((
            match self {
                Trainer::Spark(_, o, k) => Trainer::Spark(q.check()?, o, k),
                _ => Trainer::Als(q.check()?),
            },
            note,
        ))
    }
}

/// Implicit ALS's λ for confidence scale α: 0.05·(3 + α), per entry of the
/// row (scaled by n_u). It grows with the data term it balances; the floor
/// of 0.15 (at α → 0) was chosen on validation carves of the training sides
/// only (Online Retail, ml-1m ratings ≥ 4, Gowalla's valid.txt; see
/// docs/training.md): 0.05·(1 + α) left the small-α sets under-regularised.
pub(crate) fn default_reg(alpha: f64) -> f64 {
    0.05 * (3.0 + alpha)
}

/// α of linear confidence that follows the data: 0.022 / density, within
/// 1..=100 (see [`Trainer::adapt_to_data`]).
pub(super) fn density_alpha(x: &Interactions) -> f64 {
    let density = x.len() as f64 / (x.n_users() as f64 * x.n_items() as f64);
    (0.022 / density).clamp(1.0, 100.0)
}

/// α of log confidence with this ε: [`density_alpha`] over the mean of
/// ln(1 + r/ε), so the positives weigh the same in total, within 0.05..=100.
pub(super) fn log_alpha(x: &Interactions, eps: f64) -> f64 {
    let a = density_alpha(x);
    let mean_log = x
        .values
        .iter()
        .map(|&r| (1.0 + f64::from(r.max(0.0)) / eps).ln())
        .sum::<f64>()
        / x.len() as f64;
    if mean_log > 0.0 {
        (a / mean_log).clamp(0.05, 100.0)
    } else {
        a
    }
}

/// Which implicit ALS parameters the caller set itself; the others follow
/// the data ([`Trainer::adapt_to_data`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SetByUser {
    pub alpha: bool,
    pub reg: bool,
    pub confidence: bool,
    pub eps: bool,
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
}
