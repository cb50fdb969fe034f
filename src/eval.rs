//! Quality metrics on held-out data: RMSE and MAE for ratings.
//!
//! Rows whose user or item the model does not know are scored with the
//! fallback (global mean plus the known bias), not dropped, and counted.

use rayon::prelude::*;
use serde::Serialize;

use crate::interactions::Interactions;
use crate::model::Model;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RatingMetrics {
    pub rmse: f64,
    pub mae: f64,
    /// Test rows scored.
    pub n: usize,
    /// Rows whose user the model does not know.
    pub unknown_users: usize,
    /// Rows whose item the model does not know.
    pub unknown_items: usize,
}

/// RMSE/MAE of `model` on `test` (matched to the model by external ids).
pub fn rating_metrics(model: &Model, test: &Interactions) -> RatingMetrics {
    let um = test.user_ids.translate_to(model.user_ids());
    let im = test.item_ids.translate_to(model.item_ids());
    const CHUNK: usize = 8192;
    let idx: Vec<usize> = (0..test.len()).collect();
    // Fixed chunks summed in order: the result does not depend on scheduling.
    let parts: Vec<(f64, f64, usize, usize)> = idx
        .par_chunks(CHUNK)
        .map(|c| {
            let (mut se, mut ae, mut uu, mut ui) = (0f64, 0f64, 0usize, 0usize);
            for &n in c {
                let u = um[test.users[n] as usize];
                let i = im[test.items[n] as usize];
                uu += u.is_none() as usize;
                ui += i.is_none() as usize;
                let e = (test.values[n] - model.predict_partial(u, i)) as f64;
                se += e * e;
                ae += e.abs();
            }
            (se, ae, uu, ui)
        })
        .collect();
    let n = test.len();
    let (se, ae, uu, ui) = parts.iter().fold((0.0, 0.0, 0, 0), |a, p| {
        (a.0 + p.0, a.1 + p.1, a.2 + p.2, a.3 + p.3)
    });
    RatingMetrics {
        rmse: if n > 0 {
            (se / n as f64).sqrt()
        } else {
            f64::NAN
        },
        mae: if n > 0 { ae / n as f64 } else { f64::NAN },
        n,
        unknown_users: uu,
        unknown_items: ui,
    }
}
