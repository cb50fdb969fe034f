//! What every trainer shares, written once: the parameter checks, the
//! consuming setters, the check before a fit, its thread pool, and the end of
//! a fit (which epoch is kept, the metadata, the model).

use std::ops::RangeInclusive;

use super::{EarlyStop, EpochReport, Validation};
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::model::{Model, ModelMeta, ModelParts, WarmStartInfo};

/// Consuming setters, one per listed field, so params chain:
/// `SgdParams::default().factors(32).epochs(5).check()`.
macro_rules! setters {
    ($t:ty { $($field:ident: $ty:ty),* $(,)? }) => {
        impl $t {
            $(
                #[doc = concat!("Sets `", stringify!($field), "` (see the table on the type).")]
                pub fn $field(mut self, v: $ty) -> Self {
                    self.$field = v;
                    self
                }
            )*
        }
    };
}
pub(crate) use setters;

/// `v` within `range`, e.g. factors in 1..=4096.
pub(crate) fn check_in(name: &'static str, v: usize, range: RangeInclusive<usize>) -> Result<()> {
    if range.contains(&v) {
        return Ok(());
    }
    let reason = format!("must be in {}..={}", range.start(), range.end());
    Err(Error::param(name, v, reason))
}

/// A step size in (0, 1].
pub(crate) fn check_unit(name: &'static str, v: f32) -> Result<()> {
    if v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        Err(Error::param(name, v, "must be in (0, 1]"))
    }
}

/// A penalty or a spread: finite and ≥ 0.
pub(crate) fn check_non_negative(name: &'static str, v: f32) -> Result<()> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::param(name, v, "must be a finite number ≥ 0"))
    }
}

/// A scale: finite and > 0.
pub(crate) fn check_positive(name: &'static str, v: f32) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::param(name, v, "must be a finite number > 0"))
    }
}

/// The run settings every trainer has: threads and patience, when set, ≥ 1.
pub(crate) fn check_run(threads: Option<usize>, patience: Option<usize>) -> Result<()> {
    if threads == Some(0) {
        return Err(Error::param("threads", 0, "must be ≥ 1"));
    }
    if patience == Some(0) {
        return Err(Error::param("patience", 0, "must be ≥ 1"));
    }
    Ok(())
}

/// What every trainer checks before fitting: there is data, and early
/// stopping has validation data to watch.
pub(crate) fn check_fit(
    train: &Interactions,
    valid: Option<&Validation>,
    patience: Option<usize>,
) -> Result<()> {
    if train.is_empty() {
        return Err(Error::Other(
            "no training data: every entry was filtered out or held out".into(),
        ));
    }
    if let Some(p) = patience {
        if valid.is_none_or(|v| v.is_empty()) {
            return Err(Error::param(
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
) -> Result<T> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        b = b.num_threads(t);
    }
    let pool = b
        .build()
        .map_err(|e| Error::Other(format!("cannot start the thread pool: {e}")))?;
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

/// (min, max) of the training values, (0, 0) when there are none: rating
/// models clip their predictions to it.
pub(crate) fn value_range(v: &[f32]) -> (f32, f32) {
    let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 0.0)
    }
}

/// A finished fit, in the training data's index order: what
/// [`into_model`](Self::into_model) turns into a model with its metadata.
pub(crate) struct Fitted<'a> {
    /// The name stored in the metadata (`sgd`, `als`, `als-implicit`, `bpr`).
    pub algorithm: &'static str,
    pub implicit: bool,
    pub factors: usize,
    /// The parameters as stored in the metadata.
    pub params: serde_json::Value,
    pub history: Vec<EpochReport>,
    pub stop: EarlyStop,
    pub rating_range: (f32, f32),
    pub warm: Option<WarmStartInfo>,
    pub user_factors: Vec<f32>,
    pub item_factors: Vec<f32>,
    pub user_bias: Vec<f32>,
    pub item_bias: Vec<f32>,
    pub global_mean: f32,
    pub train: &'a Interactions,
}

impl Fitted<'_> {
    pub(crate) fn into_model(self) -> Model {
        let best_epoch = self.stop.kept_epoch(self.history.len());
        let mut meta = ModelMeta::new(
            self.algorithm,
            self.implicit,
            self.factors,
            self.params,
            self.history,
            best_epoch,
            self.rating_range,
        );
        meta.warm_start = self.warm;
        Model::from_parts(ModelParts {
            user_factors: self.user_factors,
            item_factors: self.item_factors,
            user_bias: self.user_bias,
            item_bias: self.item_bias,
            global_mean: self.global_mean,
            train: self.train,
            meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_parameter_and_the_bound() {
        let e = check_in("factors", 0, 1..=4096).unwrap_err().to_string();
        assert!(e.contains("factors") && e.contains("1..=4096"), "{e}");
        assert!(check_unit("learning_rate", 1.0).is_ok());
        assert!(check_unit("learning_rate", 0.0).is_err());
        assert!(check_non_negative("reg", 0.0).is_ok());
        assert!(check_non_negative("reg", f32::INFINITY).is_err());
        assert!(check_positive("alpha", 0.0).is_err());
        assert!(check_run(Some(1), Some(0)).is_err());
        assert_eq!(value_range(&[]), (0.0, 0.0));
        assert_eq!(value_range(&[3.0, 1.0, 5.0]), (1.0, 5.0));
    }
}
