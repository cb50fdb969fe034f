//! recsys: matrix-factorization recommenders on user–item interaction data.
//!
//! Data flows one way (see `README.md`):
//! files → [`data::load`] → [`interactions::Interactions`] → [`data::split`] →
//! [`train`] → [`model::Model`] → model file (safetensors) → [`score`] / [`eval`].
//!
//! Dense user/item indices (`u32`) are an implementation detail; the public API
//! speaks in external ids ([`interactions::IdKey`]).

pub mod cli;
pub mod data;
pub mod engine;
pub mod error;
pub mod eval;
pub mod interactions;
pub mod linalg;
pub mod loadtest;
pub mod model;
pub mod report;
pub mod retrain;
pub mod score;
pub mod serve;
pub mod spark;
pub mod train;
mod util;

pub use error::{Error, Result};
