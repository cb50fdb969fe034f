//! The SGD trainer's epoch loop.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};

use super::maths::{rmse_of, sgd_block, sgd_block_general, Extra, Step, SIDE};
use super::SgdValidParams;
use crate::error::Result;
use crate::interactions::Interactions;
use crate::model::Model;
use crate::train::common::{check_fit, effective_threads, value_range, with_threads, Fitted};
use crate::train::strata::{block_count, Order, Strata};
use crate::train::{warm, EarlyStop, EpochReport, Validation};

impl SgdValidParams {
    /// Trains on `train`. With `valid`, reports validation RMSE per epoch and,
    /// with `patience`, stops early and keeps the best epoch.
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
        // The block count follows the thread count, so the pool gets the
        // same count the blocks were cut for.
        let threads = effective_threads(p.threads);
        with_threads(Some(threads), || -> Result<Model> {
            let k = p.factors;
            let (nu, ni) = (train.n_users(), train.n_items());
            let mut rng = StdRng::seed_from_u64(p.seed);
            let mut st = Strata::new(
                train,
                block_count(threads, nu, ni, k, train.len()),
                Order::Sorted,
                &mut rng,
            );
            let nb = st.nb;
            let (uinv, iinv) = (&st.uinv, &st.iinv);

            let plain = self.plain();
            // Without biases the factors model the raw values.
            let mu = if p.biases {
                train.mean_value() as f32
            } else {
                0.0
            };
            let start = warm::start(train, k, p.init_std, p.seed, false, mu, prev)?;
            let warm = start.info;
            // A cold start's random rows need no reordering; warm rows move
            // to the strata's internal order.
            let (mut uf, mut itf, mut bu, mut bi) = if warm.is_some() {
                (
                    st.users_in(&start.uf, k),
                    st.items_in(&start.itf, k),
                    st.users_in(&start.bu, 1),
                    st.items_in(&start.bi, 1),
                )
            } else {
                (start.uf, start.itf, start.bu, start.bi)
            };
            if !p.biases {
                bu.fill(0.0);
                bi.fill(0.0);
            }
            // The general kernel keeps [bias, AdaGrad sum of the lead
            // factors, of the rest] per row, the sums starting at 1.
            let w = if plain { 1 } else { SIDE };
            if !plain {
                let side = |b: &[f32]| b.iter().flat_map(|&x| [x, 1.0, 1.0]).collect::<Vec<f32>>();
                (bu, bi) = (side(&bu), side(&bi));
            }
            let (rmin, rmax) = value_range(&train.values);

            let valid_int = valid.filter(|v| !v.is_empty()).map(|v| Validation {
                users: v.users.iter().map(|&u| uinv[u as usize]).collect(),
                items: v.items.iter().map(|&i| iinv[i as usize]).collect(),
                values: v.values.clone(),
            });

            let mut history = Vec::with_capacity(p.epochs);
            let mut stop = EarlyStop::new(p.patience);
            // Factors and biases of the best validation epoch so far.
            let mut best: Option<[Vec<f32>; 4]> = None;
            let mut order: Vec<usize> = (0..nb).collect();
            let began = Instant::now();
            for epoch in 1..=p.epochs {
                let lr = p.learning_rate * p.lr_decay.powi(epoch as i32 - 1);
                order.shuffle(&mut rng);
                let t0 = Instant::now();
                let mut sq = 0f64;
                let step = Step {
                    k,
                    mu,
                    lr,
                    reg_f: p.reg_factors,
                    reg_b: p.reg_bias,
                };
                let extra = Extra {
                    biases: p.biases,
                    adagrad: p.adagrad,
                    lead: p.lead_factors,
                    lead_only: epoch == 1 && p.lead_factors > 0,
                };
                for &s in &order {
                    let sums = st.run(
                        s,
                        k,
                        w,
                        &mut uf,
                        &mut bu,
                        &mut itf,
                        &mut bi,
                        |_, entries, uf, bu, itf, bi| {
                            if plain {
                                sgd_block(entries, uf, bu, itf, bi, step)
                            } else {
                                sgd_block_general(entries, uf, bu, itf, bi, step, extra)
                            }
                        },
                    );
                    sq += sums.iter().sum::<f64>();
                }
                let seconds = t0.elapsed().as_secs_f64();
                let valid_rmse = valid_int
                    .as_ref()
                    .map(|v| rmse_of(v, &uf, &itf, &bu, &bi, k, mu, rmin, rmax, w));
                let report = EpochReport {
                    epoch,
                    train_rmse: Some((sq / train.len() as f64).sqrt()),
                    valid_precision: None,
                    valid_ndcg: None,
                    valid_rmse,
                    seconds,
                    entries_per_second: train.len() as f64 / seconds.max(1e-12),
                    elapsed_seconds: Some(began.elapsed().as_secs_f64()),
                    ..Default::default()
                };
                progress(&report);
                history.push(report);
                if let Some(v) = valid_rmse {
                    if stop.observe_keeping(epoch, v, p.epochs, &mut best, || {
                        [uf.clone(), itf.clone(), bu.clone(), bi.clone()]
                    }) {
                        break;
                    }
                }
            }
            if let Some([a, b, c, d]) = best {
                (uf, itf, bu, bi) = (a, b, c, d);
            }
            if !plain {
                let bias = |b: &[f32]| b.iter().step_by(SIDE).copied().collect::<Vec<f32>>();
                (bu, bi) = (bias(&bu), bias(&bi));
            }
            st.release_entries();
            Ok(Fitted {
                algorithm: "sgd",
                implicit: false,
                factors: k,
                params: serde_json::to_value(p).unwrap_or_default(),
                history,
                stop,
                rating_range: (rmin, rmax),
                warm,
                user_factors: st.users_out(&uf, k),
                item_factors: st.items_out(&itf, k),
                user_bias: st.users_out(&bu, 1),
                item_bias: st.items_out(&bi, 1),
                global_mean: mu,
                train,
            }
            .into_model())
        })?
    }
}
