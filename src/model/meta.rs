//! A model's metadata: everything but its arrays, stored as JSON in the
//! safetensors header. Main types: [`ModelMeta`], [`EpochReport`] (a fit's
//! history), [`WarmStartInfo`], and [`FoldInRule`], the typed rule by which
//! a new user's items become a vector (read by fold-in, written by training).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{rfc3339, FORMAT, FORMAT_VERSION};

/// Where the training data came from.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DataInfo {
    /// xxh3 digest of the training interactions and id maps.
    pub fingerprint: String,
    pub sources: Vec<String>,
    pub rows: usize,
    /// The defaults that followed the data, and why (the kind of feedback
    /// read off the values, the confidence, α, λ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<String>,
}

/// Everything about a model but its arrays; stored as JSON in the
/// safetensors header (`__metadata__["recsys"]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    pub format: String,
    pub format_version: u32,
    pub recsys_version: String,
    pub algorithm: String,
    /// Implicit-feedback models score by p·q only; explicit ones predict ratings.
    pub implicit: bool,
    pub factors: usize,
    pub n_users: usize,
    pub n_items: usize,
    pub params: serde_json::Value,
    pub rating_min: f32,
    pub rating_max: f32,
    pub created_unix: u64,
    pub created: String,
    pub data: DataInfo,
    pub metrics: BTreeMap<String, f64>,
    pub history: Vec<EpochReport>,
    pub best_epoch: usize,
    /// Set when the fit started from a previous model's factors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<WarmStartInfo>,
    /// For a warm-started model: the algorithm and cold parameters its
    /// run's shortened schedule was derived from (`{"algorithm", "params"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_base: Option<serde_json::Value>,
    /// Lists rank item i by (p·q_i)·d_i^β, d_i its training count: a score
    /// rescale by item degree that every scoring path applies
    /// ([`Model::scoring_item_factors`](super::Model::scoring_item_factors)).
    /// Unset (or 0): plain p·q_i.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_degree_beta: Option<f32>,
}

impl ModelMeta {
    pub fn new(
        algorithm: &str,
        implicit: bool,
        factors: usize,
        params: serde_json::Value,
        history: Vec<EpochReport>,
        best_epoch: usize,
        (rating_min, rating_max): (f32, f32),
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        ModelMeta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            recsys_version: env!("CARGO_PKG_VERSION").into(),
            algorithm: algorithm.into(),
            implicit,
            factors,
            n_users: 0,
            n_items: 0,
            params,
            rating_min,
            rating_max,
            created_unix: now,
            created: rfc3339(now),
            data: DataInfo::default(),
            metrics: BTreeMap::new(),
            history,
            best_epoch,
            warm_start: None,
            params_base: None,
            item_degree_beta: None,
        }
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

/// What a warm-started fit carried over; stored in the model's metadata.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WarmStartInfo {
    /// Fingerprint of the training data of the model started from.
    pub from_fingerprint: String,
    pub users_kept: usize,
    pub users_new: usize,
    pub items_kept: usize,
    pub items_new: usize,
}

/// How an interaction value r becomes extra confidence (c = 1 + conf(r)).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// conf = alpha · r
    Linear,
    /// conf = alpha · ln(1 + r / eps)
    Log,
}

/// How fold-in turns a new user's items into a factor vector: one row of the
/// implicit ALS normal equations, with this confidence and λ. Implicit ALS
/// models carry their own; other implicit models (BPR) use [`Self::DEFAULT`],
/// which is also where implicit ALS takes its defaults from, so the two agree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FoldInRule {
    pub reg: f32,
    /// λ_u = reg · n_u (Spark's weighted-λ) rather than reg.
    pub scale_reg: bool,
    pub alpha: f32,
    pub confidence: Confidence,
    /// ε of the log confidence.
    pub eps: f32,
    /// ν of the frequency-scaled λ: reg · (n + offset)^ν (with `scale_reg`).
    pub reg_exponent: f32,
    /// α₀ · |I|: the unobserved mass added to a user's count n.
    pub reg_offset: f32,
    /// ω of the popularity-weighted unobserved entries (see [`unobserved_weights`]).
    pub unobserved_exponent: f32,
}

/// Weights of the unobserved entries by item popularity (eALS, He et al.,
/// SIGIR 2016): w_i ∝ f_i^ω over training counts f_i, scaled to mean 1 so
/// ω = 0 is plain implicit ALS (every w_i = 1). Items without training
/// entries count as 1. `None` when ω = 0: callers then take the plain path.
pub fn unobserved_weights(counts: &[f32], omega: f32) -> Option<Vec<f32>> {
    if omega == 0.0 || counts.is_empty() {
        return None;
    }
    let mut w: Vec<f64> = counts
        .iter()
        .map(|&f| f64::from(f.max(1.0)).powf(f64::from(omega)))
        .collect();
    let mean = w.iter().sum::<f64>() / w.len() as f64;
    w.iter_mut().for_each(|v| *v /= mean);
    Some(w.into_iter().map(|v| v as f32).collect())
}

impl FoldInRule {
    pub const DEFAULT: FoldInRule = FoldInRule {
        reg: 0.1,
        scale_reg: true,
        alpha: 1.0,
        confidence: Confidence::Linear,
        eps: 1.0,
        reg_exponent: 1.0,
        reg_offset: 0.0,
        unobserved_exponent: 0.0,
    };

    /// The rule stored in `meta`: an implicit ALS model's own parameters
    /// (each missing one at its default), else the default.
    pub fn of(meta: &ModelMeta) -> FoldInRule {
        let d = Self::DEFAULT;
        if meta.algorithm != "als-implicit" {
            return d;
        }
        let p = &meta.params;
        let num = |name: &str, dflt: f32| {
            p.get(name)
                .and_then(|v| v.as_f64())
                .map_or(dflt, |v| v as f32)
        };
        FoldInRule {
            reg: num("reg", d.reg),
            scale_reg: p
                .get("scale_reg")
                .and_then(|v| v.as_bool())
                .unwrap_or(d.scale_reg),
            alpha: num("alpha", d.alpha),
            confidence: p
                .get("confidence")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or(d.confidence),
            eps: num("eps", d.eps),
            reg_exponent: num("reg_exponent", d.reg_exponent),
            reg_offset: num("reg_unobserved", 0.0) * meta.n_items as f32,
            unobserved_exponent: num("unobserved_exponent", d.unobserved_exponent),
        }
    }

    /// The extra confidence of an entry of value `r` (c = 1 + this), never negative.
    pub fn confidence_of(&self, r: f32) -> f32 {
        match self.confidence {
            Confidence::Linear => self.alpha * r,
            Confidence::Log => self.alpha * (1.0 + r / self.eps).ln(),
        }
        .max(0.0)
    }

    /// λ for a row of `n` entries: reg · (n + offset)^ν with `scale_reg`
    /// (Rendle et al., RecSys 2022), reg · n at the defaults.
    pub fn lambda(&self, n: f32) -> f32 {
        frequency_lambda(
            self.reg,
            self.scale_reg,
            self.reg_exponent,
            self.reg_offset,
            n,
        )
    }
}

/// The frequency-scaled λ of a row of `n` entries, shared by training and
/// fold-in so the two agree: reg · (n + offset)^ν when scaled, else reg.
/// ν = 1 with no offset is reg · n exactly (no `powf`, the plain path).
pub fn frequency_lambda(reg: f32, scaled: bool, nu: f32, offset: f32, n: f32) -> f32 {
    if !scaled {
        reg
    } else if nu == 1.0 && offset == 0.0 {
        reg * n
    } else {
        reg * (n + offset).powf(nu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_in_rule_reads_implicit_als_params_and_defaults_the_rest() {
        let mut m = ModelMeta::new(
            "als-implicit",
            true,
            4,
            serde_json::json!({"reg": 0.5, "alpha": 3.0, "confidence": "log", "eps": 2.0,
                               "scale_reg": false}),
            vec![],
            0,
            (0.0, 1.0),
        );
        let r = FoldInRule::of(&m);
        assert_eq!((r.reg, r.alpha, r.eps, r.scale_reg), (0.5, 3.0, 2.0, false));
        assert_eq!(r.confidence, Confidence::Log);
        assert!((r.confidence_of(2.0) - 3.0 * 2f32.ln()).abs() < 1e-6);
        assert_eq!(r.lambda(10.0), 0.5);
        // Another algorithm's parameters are not a confidence rule.
        m.algorithm = "bpr".into();
        assert_eq!(FoldInRule::of(&m), FoldInRule::DEFAULT);
        assert_eq!(FoldInRule::DEFAULT.confidence_of(-1.0), 0.0);
    }
}
