//! recsys: matrix-factorization recommenders on user–item interaction data.
//!
//! # Module map
//!
//! Every top-level module, grouped by layer, bottom to top (the order of the
//! layer table in `tests/suite/layers.rs`). A module uses only modules of
//! lower layers; the rule, the few same-layer uses it allows and each
//! module's job are in `docs/architecture.md`.
//!
//! | layer | module | what it holds |
//! |---|---|---|
//! | 1 | [`error`] | the error type and [`Result`]: what went wrong and where |
//! | 1 | [`linalg`] | dense kernels: dot, axpy, Gramian, Cholesky solve |
//! | 1 | `util` | crate-private helpers: crash-safe file writes, the fault-injection hook |
//! | 2 | [`interactions`] | the in-memory interaction matrix (dense ids, CSR/CSC) and the id maps |
//! | 2 | [`data`] | reading files (polars), splits, synthetic data, titles, the export layout |
//! | 3 | [`model`] | [`model::Model`], its metadata and the safetensors model file |
//! | 4 | [`score`] | top-N with filters, similar items, fold-in, fallback, batch, IVF index |
//! | 4 | [`eval`] | rating and ranking metrics on held-out data |
//! | 5 | [`train`] | one module per algorithm (SGD, ALS and implicit ALS, BPR), early stopping, warm start |
//! | 6 | [`spark`] | training on Apache Spark's ALS: the export handed over, the factors imported |
//! | 7 | [`engine`] | the one training pipeline and the trainer dispatch (native or Spark) |
//! | 8 | [`retrain`] | scheduled retraining: registry, quality gate, atomic promotion |
//! | 8 | [`report`] | the HTML report on a model |
//! | 8 | [`loadtest`] | the load generator of `recsys loadtest` |
//! | 9 | [`serve`] | the HTTP JSON service (axum) |
//! | 10 | [`cli`] | the command line: raw args → checked config → one library call → output |
//! | 11 | `lib.rs`, `main.rs` | this crate root; the binary |
//!
//! Data flows one way, up the layers:
//! data → interactions → train → model → score → serve. In detail:
//! files → [`data::load`] → [`interactions::Interactions`] → [`data::split`] →
//! [`train`] → [`model::Model`] → model file (safetensors) → [`score`] / [`eval`]
//! → [`serve`]. [`engine`] (the pipeline: load → split → fit → evaluate →
//! save) sits above [`train`] and [`spark`] and runs either; [`retrain`] and
//! [`cli`] are at the top and call into it.
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
