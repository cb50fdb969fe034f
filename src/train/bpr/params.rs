//! The BPR trainer's parameters and their checks.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::train::common::{check_in, check_non_negative, check_run, check_unit, setters};

/// Parameters of the BPR trainer.
///
/// | Name | Default | Purpose | Range |
/// |---|---|---|---|
/// | factors | 64 | latent dimensions k | 1..=4096 |
/// | epochs | 100 | passes over the positives | 1..=10000 |
/// | learning_rate | 0.05 | SGD step size | (0, 1] |
/// | reg | 0.002 | L2 penalty on factors and item biases | ≥ 0 |
/// | init_std | 0.1 | std-dev of the initial factors | ≥ 0 |
/// | seed | 42 | RNG seed | any |
/// | threads | all cores | worker threads | ≥ 1 |
/// | patience | none | early stopping on validation nDCG@10 | ≥ 1 |
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BprParams {
    pub factors: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    pub reg: f32,
    pub init_std: f32,
    pub seed: u64,
    pub threads: Option<usize>,
    pub patience: Option<usize>,
}

impl Default for BprParams {
    fn default() -> Self {
        BprParams {
            factors: 64,
            epochs: 100,
            learning_rate: 0.05,
            reg: 0.002,
            init_std: 0.1,
            seed: 42,
            threads: None,
            patience: None,
        }
    }
}

setters!(BprParams {
    factors: usize,
    epochs: usize,
    learning_rate: f32,
    reg: f32,
    init_std: f32,
    seed: u64,
    threads: Option<usize>,
    patience: Option<usize>,
});

/// [`BprParams`] that passed [`BprParams::check`]; only these can fit.
#[derive(Clone, Debug)]
pub struct BprValidParams(BprParams);

impl BprParams {
    /// Validates every parameter, naming the first bad one.
    pub fn check(self) -> Result<BprValidParams> {
        let p = &self;
        check_in("factors", p.factors, 1..=4096)?;
        check_in("epochs", p.epochs, 1..=10_000)?;
        check_unit("learning_rate", p.learning_rate)?;
        check_non_negative("reg", p.reg)?;
        check_non_negative("init_std", p.init_std)?;
        check_run(p.threads, p.patience)?;
        Ok(BprValidParams(self))
    }
}

impl BprValidParams {
    pub fn params(&self) -> &BprParams {
        &self.0
    }
}
