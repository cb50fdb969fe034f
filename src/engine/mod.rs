//! The one training pipeline and the trainer dispatch, above `train` and
//! `spark` and below every front (CLI, retraining, tuning, Python). Main
//! types: [`Trainer`] (any algorithm, native or on Spark) and the pipeline
//! in [`pipeline`].

pub mod heads;
pub mod pipeline;
mod trainer;
pub mod tune;

pub use trainer::{SetByUser, Trainer};
