//! Bayesian personalized ranking (Rendle et al., UAI 2009) by parallel
//! stratified SGD: the blocks of `train::strata`, as in the rating SGD
//! trainer, so updates are race-free in safe Rust.
//!
//! Each epoch visits every (user, positive item) once. The negative item is
//! drawn uniformly from the positive's item range (the block's items: the
//! only item rows this worker may write), re-drawn if it is a positive of
//! the user. Over the strata of an epoch each user meets every item range, so
//! negatives cover the catalogue. The score is p_u·q_i + b_i; each sample
//! ascends ln σ(x_ui − x_uj) with L2 penalties. Every block has its own RNG
//! seeded from (seed, epoch, block): runs repeat bit for bit.
//!
//! Files: `params` (the parameters and their checks), `fit` (the epoch
//! loop), `maths` (one block's sampling and updates).

mod fit;
mod maths;
mod params;
#[cfg(test)]
mod tests;

pub use params::{BprParams, BprValidParams};
