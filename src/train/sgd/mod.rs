//! Biased matrix factorization by stochastic gradient descent:
//! r̂ = μ + b_u + b_i + p_u·q_i.
//!
//! Parallel without data races by stratification (DSGD, Gemulla et al. 2011;
//! FPSGD/LibMF): users and items are shuffled into `B` ranges each; block
//! (a, c) holds the entries of user range a and item range c. A stratum is B
//! blocks that share no range, so each worker owns `&mut` slices of the user
//! and item factors for its block. Within a block entries are processed in a
//! fixed (seeded, shuffled) order, so a run is bit-identical for the same
//! seed and thread count, whatever the scheduling.
//!
//! Files: `params` (the parameters and their checks), `fit` (the epoch
//! loop), `maths` (one block's updates and the validation RMSE).

mod fit;
mod maths;
mod params;
#[cfg(test)]
mod tests;

pub use params::{SgdParams, SgdValidParams};
