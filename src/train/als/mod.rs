//! Alternating least squares, for implicit feedback (Hu, Koren & Volinsky,
//! ICDM 2008) and for ratings (weighted-λ regularization, as Spark).
//!
//! Each sweep solves every user row given the item factors, then every item
//! row given the user factors; rows are independent least-squares problems,
//! solved in parallel (`par_chunks_mut`, per-thread scratch), so the result
//! does not depend on the thread count.
//!
//! Implicit: row u minimizes Σ_i c_ui (p_ui − x_u·y_i)² + λ_u |x_u|² with
//! c_ui = 1 + conf(r_ui) for observed entries and 1 elsewhere. The normal
//! equations are (YᵀY + Σ_{i∈u} conf_i y_i y_iᵀ + λ_u I) x_u = Σ_{i∈u} c_ui y_i;
//! YᵀY is computed once per sweep (ndarray's matrix product), so a row costs
//! O(k² + n_u k) per conjugate-gradient step (Takács et al., RecSys 2011),
//! warm-started from the previous sweep. `Cholesky` solves exactly (the
//! reference). Explicit: (Σ_{i∈u} y_i y_iᵀ + λ_u I) x_u = Σ_{i∈u} (r_ui − μ) y_i.
//! With `scale_reg` (default), λ_u = reg · n_u as in Spark's ALS.
//!
//! Implicit ALS's objective options (all off by default): the
//! frequency-scaled λ = reg·(n_u + α₀·|I|)^ν of Rendle et al. (RecSys 2022),
//! unobserved entries weighted by item popularity (eALS, He et al., SIGIR
//! 2016: a weighted Gramian), a score rescale by item degree d_i^β stored in
//! the model, and first item factors from a randomised SVD of the
//! degree-normalised matrix. From k = 128 on, CG runs on blocks of rows with
//! the Gramian products as GEMMs.
//!
//! Files: `params` (the parameters and their checks), `fit` (the sweep
//! loop), `maths` (the row solvers, the sweeps and the losses), `svd` (the
//! SVD start).

mod fit;
mod maths;
mod params;
mod svd;
#[cfg(test)]
mod tests;

pub use crate::model::Confidence;
pub use params::{AlsParams, AlsValidParams, Init, Solver};
