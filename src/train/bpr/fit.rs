//! The BPR trainer's epoch loop.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};

use super::maths::{bpr_block, BlockCtx, Step};
use super::BprValidParams;
use crate::error::{Error, Result};
use crate::interactions::{Csr, Interactions};
use crate::model::Model;
use crate::train::common::{check_fit, effective_threads, with_threads, Fitted};
use crate::train::strata::{block_count, Order, Strata};
use crate::train::{warm, EarlyStop, EpochReport, RankCheck, Validation};

impl BprValidParams {
    /// Trains on the positives of `train` (values are ignored).
    pub fn fit(
        &self,
        train: &Interactions,
        valid: Option<&Validation>,
        progress: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> Result<Model> {
        self.fit_with(train, valid, None, progress)
    }

    /// [`fit`](Self::fit), starting from `prev`'s factors and item biases for
    /// the users and items it knows (see [`warm`]).
    pub fn fit_with(
        &self,
        train: &Interactions,
        valid: Option<&Validation>,
        prev: Option<&Model>,
        progress: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> Result<Model> {
        let p = self.params();
        check_fit(train, valid, p.patience)?;
        if train.n_items() < 2 {
            return Err(Error::Other("BPR needs at least two items".into()));
        }
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
                Order::Shuffled,
                &mut rng,
            );
            // Each user's positives in the internal item order, for rejection.
            let pos = Csr::build(
                nu,
                &train
                    .users
                    .iter()
                    .map(|&u| st.uinv[u as usize])
                    .collect::<Vec<_>>(),
                &train
                    .items
                    .iter()
                    .map(|&i| st.iinv[i as usize])
                    .collect::<Vec<_>>(),
                None,
            );
            let start = warm::start(train, k, p.init_std, p.seed, true, 0.0, prev)?;
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
            let rank_check = valid
                .filter(|v| !v.is_empty())
                .and_then(|v| RankCheck::new(train, v, p.seed));

            let mut history = Vec::with_capacity(p.epochs);
            let mut stop = EarlyStop::new(p.patience);
            let mut best: Option<[Vec<f32>; 3]> = None;
            let mut order: Vec<usize> = (0..st.nb).collect();
            let step = Step {
                k,
                lr: p.learning_rate,
                reg: p.reg,
            };
            let began = Instant::now();
            for epoch in 1..=p.epochs {
                order.shuffle(&mut rng);
                let t0 = Instant::now();
                let mut correct = 0f64;
                for &s in &order {
                    let sums = st.run(
                        s,
                        k,
                        1,
                        &mut uf,
                        &mut bu,
                        &mut itf,
                        &mut bi,
                        |b, entries, uf, _, itf, bi| {
                            let (a, c) = (b / st.nb, b % st.nb);
                            let seed = p.seed
                                ^ ((epoch as u64) << 32)
                                ^ (b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                            let ctx = BlockCtx {
                                pos: &pos,
                                user0: st.ubounds[a],
                                item0: st.ibounds[c],
                                seed,
                            };
                            bpr_block(entries, uf, itf, bi, &ctx, step)
                        },
                    );
                    correct += sums.iter().sum::<f64>();
                }
                let seconds = t0.elapsed().as_secs_f64();
                let mut report = EpochReport {
                    epoch,
                    seconds,
                    entries_per_second: train.len() as f64 / seconds.max(1e-12),
                    ..Default::default()
                };
                // Share of sampled pairs already ranked right, before the update.
                report.train_auc = Some(correct / train.len().max(1) as f64);
                if let Some(rc) = &rank_check {
                    let (pr, nd) = rc.measure(
                        k,
                        &st.users_out(&uf, k),
                        &st.items_out(&itf, k),
                        Some(&st.items_out(&bi, 1)),
                    );
                    report.valid_precision = Some(pr);
                    report.valid_ndcg = Some(nd);
                }
                report.elapsed_seconds = Some(began.elapsed().as_secs_f64());
                progress(&report);
                let metric = report.valid_ndcg.map(|v| -v);
                history.push(report);
                if let Some(m) = metric {
                    if stop.observe_keeping(epoch, m, p.epochs, &mut best, || {
                        [uf.clone(), itf.clone(), bi.clone()]
                    }) {
                        break;
                    }
                }
            }
            if let Some([a, b, c]) = best {
                (uf, itf, bi) = (a, b, c);
            }
            st.release_entries();
            drop(pos);
            Ok(Fitted {
                algorithm: "bpr",
                implicit: true,
                factors: k,
                params: serde_json::to_value(p).unwrap_or_default(),
                history,
                stop,
                rating_range: (0.0, 0.0),
                warm,
                user_factors: st.users_out(&uf, k),
                item_factors: st.items_out(&itf, k),
                user_bias: vec![0.0; nu],
                item_bias: st.items_out(&bi, 1),
                global_mean: 0.0,
                train,
            }
            .into_model())
        })?
    }
}
