//! The ALS trainer's sweep loop.

use std::time::Instant;

use super::maths::{implicit_loss, rmse_rows, valid_rmse, Solve, Unobserved};
use super::{AlsValidParams, Confidence, Init};
use crate::error::Result;
use crate::interactions::Interactions;
use crate::model::{unobserved_weights, Model};
use crate::train::common::{check_fit, value_range, with_threads, Fitted};
use crate::train::{warm, EarlyStop, EpochReport, RankCheck, Validation};

impl AlsValidParams {
    /// Trains on `train` (values are counts/weights for implicit models,
    /// ratings otherwise). With `valid`: per-epoch validation (nDCG@10 for
    /// implicit models, RMSE otherwise) and, with `patience`, early stopping.
    pub fn fit(
        &self,
        train: &Interactions,
        valid: Option<&Validation>,
        progress: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> Result<Model> {
        self.fit_with(train, valid, None, progress)
    }

    /// [`fit`](Self::fit), starting from `prev`'s factors and biases for the
    /// users and items it knows (see [`warm`]).
    pub fn fit_with(
        &self,
        train: &Interactions,
        valid: Option<&Validation>,
        prev: Option<&Model>,
        progress: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> Result<Model> {
        let p = self.params();
        check_fit(train, valid, p.patience)?;
        // Rows are solved independently, so the result does not depend on
        // the pool's size: unset threads leave it to rayon.
        with_threads(p.threads, || -> Result<Model> {
            let k = p.factors;
            let mu = if p.implicit {
                0.0
            } else {
                train.mean_value() as f32
            };
            // Row values: extra confidence conf(r) (implicit) or r − μ (explicit).
            let conf = |r: f32| match p.confidence {
                Confidence::Linear => p.alpha * r,
                Confidence::Log => p.alpha * (1.0 + r / p.eps).ln(),
            };
            let mut by_user = train.by_user();
            let mut by_item = train.by_item();
            for c in [&mut by_user, &mut by_item] {
                c.values.iter_mut().for_each(|v| {
                    *v = if p.implicit {
                        conf(*v).max(0.0)
                    } else {
                        *v - mu
                    }
                });
            }
            let start = warm::start(train, k, p.init_std, p.seed, p.implicit, mu, prev)?;
            let warm = start.info;
            let (mut uf, mut itf) = (start.uf, start.itf);
            // A cold start may take its item factors from the SVD of the
            // normalised matrix; a warm start keeps what it carried over.
            if p.implicit && p.init == Init::Svd && prev.is_none() {
                if let Some(y) = super::svd::item_start(&by_user, &by_item, k, p.init_std, p.seed) {
                    itf = y;
                }
            }
            let range = value_range(&train.values);

            let valid = valid.filter(|v| !v.is_empty());
            let rank_check = if p.implicit {
                valid.and_then(|v| RankCheck::new(train, v, p.seed))
            } else {
                None
            };
            let mut history = Vec::with_capacity(p.epochs);
            let mut stop = EarlyStop::new(p.patience);
            let mut best: Option<[Vec<f32>; 2]> = None;
            let solve = Solve {
                k,
                reg: p.reg,
                scale_reg: p.scale_reg,
                implicit: p.implicit,
                solver: p.solver,
                cg_steps: p.cg_steps,
                reg_exponent: p.reg_exponent,
                reg_unobserved: p.reg_unobserved,
            };
            // eALS: the unobserved entries weighted by item popularity.
            let counts: Vec<f32> = train.item_counts().into_iter().map(|c| c as f32).collect();
            let weights = if p.implicit {
                unobserved_weights(&counts, p.unobserved_exponent)
            } else {
                None
            };
            let (user_side, item_side) = Unobserved::sides(weights.as_deref());
            // Explicit ALS learns user and item biases with the factors.
            let (mut ub, mut ib) = (start.bu, start.bi);
            let began = Instant::now();
            for epoch in 1..=p.epochs {
                let t0 = Instant::now();
                if p.implicit {
                    solve.sweep(&mut uf, &itf, &by_user, user_side);
                    solve.sweep(&mut itf, &uf, &by_item, item_side);
                } else {
                    solve.sweep_biased(&mut uf, &mut ub, &itf, &ib, &by_user);
                    solve.sweep_biased(&mut itf, &mut ib, &uf, &ub, &by_item);
                }
                let seconds = t0.elapsed().as_secs_f64();
                let mut report = EpochReport {
                    epoch,
                    seconds,
                    entries_per_second: train.len() as f64 / seconds.max(1e-12),
                    ..Default::default()
                };
                if !p.implicit {
                    report.train_rmse = Some(rmse_rows(&by_user, &uf, &itf, &ub, &ib, k));
                    report.valid_rmse =
                        valid.map(|v| valid_rmse(v, &uf, &itf, &ub, &ib, k, mu, range));
                } else {
                    // The loss costs about a quarter of a CG sweep, so it is
                    // paid only when per-epoch monitoring was asked for.
                    if valid.is_some() {
                        report.train_loss = Some(implicit_loss(
                            &uf,
                            &itf,
                            &by_user,
                            &by_item,
                            &solve,
                            weights.as_deref(),
                        ));
                    }
                    if let Some(rc) = &rank_check {
                        let (pr, nd) = rc.measure(k, &uf, &itf, None);
                        report.valid_precision = Some(pr);
                        report.valid_ndcg = Some(nd);
                    }
                }
                report.elapsed_seconds = Some(began.elapsed().as_secs_f64());
                progress(&report);
                let metric = report.valid_ndcg.map(|v| -v).or(report.valid_rmse);
                history.push(report);
                if let Some(m) = metric {
                    if stop.observe_keeping(epoch, m, p.epochs, &mut best, || {
                        [uf.clone(), itf.clone()]
                    }) {
                        break;
                    }
                }
            }
            if let Some([a, b]) = best {
                (uf, itf) = (a, b);
            }
            // The model is built from `train`; the rows are no longer needed.
            drop((by_user, by_item));
            let beta = p.item_degree_beta;
            let mut model = Fitted {
                algorithm: if p.implicit { "als-implicit" } else { "als" },
                implicit: p.implicit,
                factors: k,
                params: serde_json::to_value(p).unwrap_or_default(),
                history,
                stop,
                rating_range: if p.implicit { (0.0, 0.0) } else { range },
                warm,
                user_factors: uf,
                item_factors: itf,
                user_bias: ub,
                item_bias: ib,
                global_mean: mu,
                train,
            }
            .into_model();
            // The score rescale lives in the metadata, where every scoring
            // path reads it.
            model.meta_mut().item_degree_beta = (p.implicit && beta != 0.0).then_some(beta);
            Ok(model)
        })?
    }
}
