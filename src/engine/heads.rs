//! The list head: what `recsys train` adds to a model trained on ratings so
//! that its top-N lists are good as well as its rating predictions.
//!
//! A model fitted to ratings by squared error predicts ratings well and
//! ranks badly: whether a user rates an item at all carries most of what a
//! top-N list needs, and an RMSE objective never sees it; rarely rated items
//! with a lucky few ratings float to the top. So a rating model gets a
//! second model, implicit ALS on the same ratings taken as confidences,
//! that answers every list (recommend, similar items, fold-in, the index,
//! ranking metrics) while the rating model answers predictions. Measured on
//! validation carve-outs of the ml-100k and ml-1m training sides (see
//! docs/training.md): rating-model lists P@10 0.04–0.05, SGD with item
//! shrinkage at most 0.11, popularity 0.12–0.14, BPR 0.16–0.18, implicit ALS
//! 0.20–0.25 (log confidence, k = 64 the best of those tried on both).

use super::pipeline::Event;
use super::Trainer;
use crate::error::Result;
use crate::interactions::Interactions;
use crate::model::Model;
use crate::train::als::{AlsParams, Confidence};

/// The list head's parameters: the implicit ALS defaults with log
/// confidence (ratings 1–5 become confidences 1.7–2.8 at α = 1, so one
/// rating counts about as much as another and whether it exists counts
/// most) and k = 64.
pub fn list_head_params(seed: u64, threads: Option<usize>) -> AlsParams {
    AlsParams {
        factors: 64,
        confidence: Confidence::Log,
        seed,
        threads,
        ..AlsParams::default()
    }
}

/// The list head's trainer, checked.
pub fn list_head_trainer(seed: u64, threads: Option<usize>) -> Result<Trainer> {
    Ok(Trainer::Als(list_head_params(seed, threads).check()?))
}

/// Fits the list head on a rating model's training data and attaches it.
/// Warm from `prev`'s list head when it has one of the same size; the
/// implicit ALS defaults that follow the data (α, λ) are applied unless
/// `adapt` is false (a stored or tuned setting).
pub fn attach_list_head(
    model: Model,
    head: &Trainer,
    train: &Interactions,
    prev: Option<&Model>,
    adapt: bool,
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<Model> {
    let head = if adapt {
        head.clone()
            .adapt_to_data(
                train,
                super::SetByUser {
                    confidence: true,
                    eps: true,
                    ..Default::default()
                },
            )?
            .0
    } else {
        head.clone()
    };
    let warm = prev
        .and_then(Model::list_head)
        .filter(|p| p.factors() == head.factors() && head.warm_starts());
    events(Event::FittingListHead {
        epochs: head.epochs(),
    });
    let fitted = head.fit_with(train, None, warm, None, &mut |r| events(Event::Epoch(r)))?;
    model.with_list_head(fitted)
}
