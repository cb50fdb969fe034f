//! The ALS trainer's parameters and their checks.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Confidence, FoldInRule};
use crate::train::common::{check_in, check_non_negative, check_positive, check_run, setters};

/// How each row's least-squares problem is solved.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    Cholesky,
    Cg,
}

/// How a cold fit's first item factors are drawn.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Seeded normal draws of std `init_std`.
    #[default]
    Random,
    /// The top-k right singular subspace of D_U^-½ R D_I^-½ (randomised
    /// SVD), at the norm of the random start (implicit only).
    Svd,
}

/// Parameters of the ALS trainer.
///
/// | Name | Default | Purpose | Range |
/// |---|---|---|---|
/// | factors | 256 | latent dimensions k | 1..=1024 |
/// | epochs | 15 | sweeps (users then items) | 1..=10000 |
/// | implicit | true | implicit feedback (confidence-weighted) or ratings | |
/// | reg | 0.1 | L2 penalty λ (per entry of the row with `scale_reg`) | ≥ 0 |
/// | scale_reg | true | λ_u = reg · n_u (Spark's weighted-λ) | |
/// | alpha | 1.0 | confidence scale | > 0 |
/// | confidence | linear | `linear` 1 + αr or `log` 1 + α ln(1 + r/ε) | |
/// | eps | 1.0 | ε of the log confidence | > 0 |
/// | solver | cg | `cg` (implicit only) or `cholesky` (exact) | |
/// | reg_exponent | 1 | ν of the frequency-scaled λ = reg · (n + α₀·N)^ν (Rendle et al., RecSys 2022; N the other side's count) | 0..=2 |
/// | reg_unobserved | 0 | α₀ of that λ | ≥ 0 |
/// | unobserved_exponent | 0 | ω: unobserved entries weigh w_i ∝ f_i^ω, mean 1 (eALS, He et al., SIGIR 2016) | -1..=2 |
/// | item_degree_beta | 0 | β: lists rank by (p·q_i)·d_i^β, stored in the model | -2..=2 |
/// | init | random | `random` or `svd`: first item factors from a randomised SVD of D_U^-½ R D_I^-½ (implicit) | |
/// | cg_steps | 2 | conjugate-gradient steps per row and sweep (warm-started, so 2 suffice: P@10 0.2706 vs 0.2714 with 3 on ml-1m) | 1..=64 |
/// | init_std | 0.01 | std-dev of the initial factors | ≥ 0 |
/// | seed | 42 | RNG seed | any |
/// | threads | all cores | worker threads | ≥ 1 |
/// | patience | none | early stopping on the validation metric | ≥ 1 |
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlsParams {
    pub factors: usize,
    pub epochs: usize,
    pub implicit: bool,
    pub reg: f32,
    pub scale_reg: bool,
    pub alpha: f32,
    pub confidence: Confidence,
    pub eps: f32,
    pub solver: Solver,
    pub cg_steps: usize,
    pub init_std: f32,
    pub seed: u64,
    pub threads: Option<usize>,
    pub patience: Option<usize>,
    // The objective options below came later: absent from older parameter
    // files and models, they default to plain implicit ALS.
    #[serde(default = "one")]
    pub reg_exponent: f32,
    #[serde(default)]
    pub reg_unobserved: f32,
    #[serde(default)]
    pub unobserved_exponent: f32,
    #[serde(default)]
    pub item_degree_beta: f32,
    #[serde(default)]
    pub init: Init,
}

fn one() -> f32 {
    1.0
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            // 256 rather than 128: on validation carves (Gowalla valid.txt
            // recall@20 0.2027 vs 0.1831, Online Retail P@10 +5%) it wins,
            // on ml-1m ratings ≥ 4 it ties; the sweep costs ~2.5×.
            factors: 256,
            epochs: 15,
            implicit: true,
            // The confidence and λ defaults are fold-in's rule, so a model
            // and its fold-in agree by construction.
            reg: FoldInRule::DEFAULT.reg,
            scale_reg: FoldInRule::DEFAULT.scale_reg,
            alpha: FoldInRule::DEFAULT.alpha,
            confidence: FoldInRule::DEFAULT.confidence,
            eps: FoldInRule::DEFAULT.eps,
            solver: Solver::Cg,
            cg_steps: 2,
            init_std: 0.01,
            seed: 42,
            threads: None,
            patience: None,
            reg_exponent: 1.0,
            reg_unobserved: 0.0,
            unobserved_exponent: 0.0,
            item_degree_beta: 0.0,
            init: Init::Random,
        }
    }
}

setters!(AlsParams {
    factors: usize,
    epochs: usize,
    implicit: bool,
    reg: f32,
    scale_reg: bool,
    alpha: f32,
    confidence: Confidence,
    eps: f32,
    solver: Solver,
    cg_steps: usize,
    init_std: f32,
    seed: u64,
    threads: Option<usize>,
    patience: Option<usize>,
    reg_exponent: f32,
    reg_unobserved: f32,
    unobserved_exponent: f32,
    item_degree_beta: f32,
    init: Init,
});

/// [`AlsParams`] that passed [`AlsParams::check`]; only these can fit.
#[derive(Clone, Debug)]
pub struct AlsValidParams(AlsParams);

impl AlsParams {
    /// The defaults for ratings (explicit ALS): exact row solves with
    /// biases; a small k and a firmer λ suit them. Factors drawn at 0.1 leave
    /// the near-zero saddle in the first sweeps (test RMSE, ml-100k u1 /
    /// ml-1m 80-20: λ 0.15 0.9289 / 0.8869; λ 0.11 with init 0.1 0.9294 /
    /// 0.8632).
    ///
    /// | Name | Default for ratings |
    /// |---|---|
    /// | factors | 16 |
    /// | epochs | 10 |
    /// | reg | 0.11 |
    /// | solver | cholesky |
    /// | init_std | 0.1 |
    pub fn explicit() -> AlsParams {
        AlsParams {
            implicit: false,
            solver: Solver::Cholesky,
            factors: 16,
            reg: 0.11,
            epochs: 10,
            init_std: 0.1,
            ..Default::default()
        }
    }

    /// The defaults for implicit feedback or for ratings.
    pub fn for_feedback(implicit: bool) -> AlsParams {
        if implicit {
            AlsParams::default()
        } else {
            AlsParams::explicit()
        }
    }

    /// Validates every parameter, naming the first bad one.
    pub fn check(self) -> Result<AlsValidParams> {
        let p = &self;
        check_in("factors", p.factors, 1..=1024)?;
        check_in("epochs", p.epochs, 1..=10_000)?;
        check_non_negative("reg", p.reg)?;
        check_positive("alpha", p.alpha)?;
        check_positive("eps", p.eps)?;
        check_in("cg_steps", p.cg_steps, 1..=64)?;
        check_non_negative("init_std", p.init_std)?;
        check_run(p.threads, p.patience)?;
        check_range("reg_exponent", p.reg_exponent, 0.0, 2.0)?;
        check_non_negative("reg_unobserved", p.reg_unobserved)?;
        check_range("unobserved_exponent", p.unobserved_exponent, -1.0, 2.0)?;
        check_range("item_degree_beta", p.item_degree_beta, -2.0, 2.0)?;
        let plain = p.reg_exponent == 1.0
            && p.reg_unobserved == 0.0
            && p.unobserved_exponent == 0.0
            && p.item_degree_beta == 0.0
            && p.init == Init::Random;
        if !p.implicit && !plain {
            return Err(Error::param(
                "reg_exponent",
                p.reg_exponent,
                "the objective options (reg_exponent, reg_unobserved, unobserved_exponent, \
                 item_degree_beta, init) are for implicit ALS",
            ));
        }
        if !p.implicit && p.solver == Solver::Cg {
            return Err(Error::param(
                "solver",
                "cg",
                "cg is for implicit feedback; explicit ALS solves each row exactly (cholesky)",
            ));
        }
        if !p.implicit && p.reg <= 0.0 {
            // Σ y yᵀ is singular for rows with fewer than k entries.
            return Err(Error::param("reg", p.reg, "explicit ALS needs reg > 0"));
        }
        Ok(AlsValidParams(self))
    }
}

impl AlsValidParams {
    pub fn params(&self) -> &AlsParams {
        &self.0
    }
}

/// `v` within `lo..=hi` (and finite), else an error naming the parameter.
fn check_range(name: &'static str, v: f32, lo: f32, hi: f32) -> Result<()> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Error::param(name, v, format!("must be within {lo}..={hi}")))
    }
}
