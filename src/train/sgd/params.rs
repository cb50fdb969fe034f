//! The SGD trainer's parameters and their checks.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::train::common::{check_in, check_non_negative, check_run, check_unit, setters};

/// Parameters of the SGD trainer.
///
/// | Name | Default | Purpose | Range |
/// |---|---|---|---|
/// | factors | 64 | latent dimensions k | 1..=4096 |
/// | epochs | 20 | passes over the data | 1..=10000 |
/// | learning_rate | 0.05 | step size of the first epoch | (0, 1] |
/// | lr_decay | 0.9 | step size multiplier per epoch | (0, 1] |
/// | reg_factors | 0.06 | L2 penalty on p_u and q_i | ≥ 0 |
/// | reg_bias | 0.01 | L2 penalty on b_u and b_i | ≥ 0 |
/// | init_std | 0.01 | std-dev of the normal initial factors | ≥ 0 |
/// | seed | 42 | RNG seed (shuffles and initial factors) | any |
/// | threads | all cores | worker threads | ≥ 1 |
/// | patience | none | stop after this many epochs without a better validation RMSE (needs validation data); the best epoch's factors are kept | ≥ 1 |
/// | biases | true | learn μ, b_u and b_i; without them r̂ = p_u·q_i on the raw values | |
/// | adagrad | false | per-row AdaGrad steps: `learning_rate` / √(1 + Σ mean squared gradient) per row and group of factors | |
/// | lead_factors | 0 | the first epoch trains only the first this many factors; the rest join from the second epoch (with AdaGrad, the two groups keep separate sums); 0: all from the start | 0..=factors |
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SgdParams {
    pub factors: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    pub lr_decay: f32,
    pub reg_factors: f32,
    pub reg_bias: f32,
    pub init_std: f32,
    pub seed: u64,
    pub threads: Option<usize>,
    pub patience: Option<usize>,
    // Later additions: parameter files written before them still read.
    #[serde(default = "yes")]
    pub biases: bool,
    #[serde(default)]
    pub adagrad: bool,
    #[serde(default)]
    pub lead_factors: usize,
}

fn yes() -> bool {
    true
}

impl Default for SgdParams {
    fn default() -> Self {
        SgdParams {
            factors: 64,
            epochs: 20,
            learning_rate: 0.05,
            lr_decay: 0.9,
            reg_factors: 0.06,
            reg_bias: 0.01,
            init_std: 0.01,
            seed: 42,
            threads: None,
            patience: None,
            biases: true,
            adagrad: false,
            lead_factors: 0,
        }
    }
}

setters!(SgdParams {
    factors: usize,
    epochs: usize,
    learning_rate: f32,
    lr_decay: f32,
    reg_factors: f32,
    reg_bias: f32,
    init_std: f32,
    seed: u64,
    threads: Option<usize>,
    patience: Option<usize>,
    biases: bool,
    adagrad: bool,
    lead_factors: usize,
});

/// [`SgdParams`] that passed [`SgdParams::check`]; only these can fit.
#[derive(Clone, Debug)]
pub struct SgdValidParams(SgdParams);

impl SgdParams {
    /// Validates every parameter, naming the first bad one.
    pub fn check(self) -> Result<SgdValidParams> {
        let p = &self;
        check_in("factors", p.factors, 1..=4096)?;
        check_in("epochs", p.epochs, 1..=10_000)?;
        check_unit("learning_rate", p.learning_rate)?;
        check_unit("lr_decay", p.lr_decay)?;
        check_non_negative("reg_factors", p.reg_factors)?;
        check_non_negative("reg_bias", p.reg_bias)?;
        check_non_negative("init_std", p.init_std)?;
        check_in("lead_factors", p.lead_factors, 0..=p.factors)?;
        check_run(p.threads, p.patience)?;
        Ok(SgdValidParams(self))
    }
}

impl SgdValidParams {
    pub fn params(&self) -> &SgdParams {
        &self.0
    }

    /// Whether the run needs the general kernel: the defaults take the
    /// plain one, whose models are bit-identical to earlier releases'.
    pub(super) fn plain(&self) -> bool {
        let p = &self.0;
        p.biases && !p.adagrad && (p.lead_factors == 0 || p.lead_factors == p.factors)
    }
}
