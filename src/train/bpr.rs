//! Bayesian personalized ranking (Rendle et al., UAI 2009) by parallel
//! stratified SGD: the blocks of [`strata`](super::strata), as in the rating
//! SGD trainer, so updates are race-free in safe Rust.
//!
//! Each epoch visits every (user, positive item) once. The negative item is
//! drawn uniformly from the positive's item range (the block's items: the
//! only item rows this worker may write), re-drawn if it is a positive of
//! the user. Over the strata of an epoch each user meets every item range, so
//! negatives cover the catalogue. The score is p_u·q_i + b_i; each sample
//! ascends ln σ(x_ui − x_uj) with L2 penalties. Every block has its own RNG
//! seeded from (seed, epoch, block): runs repeat bit for bit.

use std::time::Instant;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::strata::{block_count, Entry, Strata};
use super::{with_threads, EarlyStop, EpochReport, RankCheck, Validation};
use crate::error::{Error, Result};
use crate::interactions::{Csr, Interactions};
use crate::linalg::dot;
use crate::model::{Model, ModelMeta, ModelParts};

/// Parameters of the BPR trainer.
///
/// | Name | Default | Purpose | Range |
/// |---|---|---|---|
/// | factors | 64 | latent dimensions k | 1..=4096 |
/// | epochs | 100 | passes over the positives | 1..=10000 |
/// | learning_rate | 0.05 | SGD step size | (0, 1] |
/// | reg | 0.002 | L2 penalty on factors and item biases | ≥ 0 |
/// | init_std | 0.1 | std-dev of the initial factors | ≥ 0 |
/// | seed | 42 | RNG seed | any |
/// | threads | all cores | worker threads | ≥ 1 |
/// | patience | none | early stopping on validation nDCG@10 | ≥ 1 |
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BprParams {
    pub factors: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    pub reg: f32,
    pub init_std: f32,
    pub seed: u64,
    pub threads: Option<usize>,
    pub patience: Option<usize>,
}

impl Default for BprParams {
    fn default() -> Self {
        BprParams {
            factors: 64,
            epochs: 100,
            learning_rate: 0.05,
            reg: 0.002,
            init_std: 0.1,
            seed: 42,
            threads: None,
            patience: None,
        }
    }
}

/// [`BprParams`] that passed [`BprParams::check`].
#[derive(Clone, Debug)]
pub struct BprValidParams(BprParams);

impl BprParams {
    pub fn check(self) -> Result<BprValidParams> {
        let p = &self;
        if !(1..=4096).contains(&p.factors) {
            return Err(Error::param("factors", p.factors, "must be in 1..=4096"));
        }
        if !(1..=10_000).contains(&p.epochs) {
            return Err(Error::param("epochs", p.epochs, "must be in 1..=10000"));
        }
        if !(p.learning_rate > 0.0 && p.learning_rate <= 1.0) {
            return Err(Error::param(
                "learning_rate",
                p.learning_rate,
                "must be in (0, 1]",
            ));
        }
        for (name, v) in [("reg", p.reg), ("init_std", p.init_std)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::param(name, v, "must be a finite number ≥ 0"));
            }
        }
        if p.threads == Some(0) {
            return Err(Error::param("threads", 0, "must be ≥ 1"));
        }
        if p.patience == Some(0) {
            return Err(Error::param("patience", 0, "must be ≥ 1"));
        }
        Ok(BprValidParams(self))
    }
}

#[derive(Clone, Copy)]
struct Step {
    k: usize,
    lr: f32,
    reg: f32,
}

impl BprValidParams {
    pub fn params(&self) -> &BprParams {
        &self.0
    }

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
    /// the users and items it knows (see [`super::warm`]).
    pub fn fit_with(
        &self,
        train: &Interactions,
        valid: Option<&Validation>,
        prev: Option<&Model>,
        progress: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> Result<Model> {
        super::check_fit(train, valid, self.0.patience)?;
        if train.n_items() < 2 {
            return Err(Error::Other("BPR needs at least two items".into()));
        }
        let threads = super::effective_threads(self.0.threads);
        with_threads(Some(threads), || {
            self.fit_inner(train, valid, prev, threads, progress)
        })?
    }

    fn fit_inner(
        &self,
        train: &Interactions,
        valid: Option<&Validation>,
        prev: Option<&Model>,
        threads: usize,
        progress: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> Result<Model> {
        let p = &self.0;
        let k = p.factors;
        let (nu, ni) = (train.n_users(), train.n_items());
        let mut rng = StdRng::seed_from_u64(p.seed);
        let mut st = Strata::new(train, block_count(threads, nu, ni), &mut rng);
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
        let start = super::warm::start(train, k, p.init_std, p.seed, true, 0.0, prev)?;
        let warm = start.info;
        // A cold start's random rows need no reordering; warm rows move to the
        // strata's internal order.
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
        // The epoch whose factors are kept: the best one only when
        // early stopping restored it, else the last.
        let best_epoch = if rank_check.is_some() && p.patience.is_some() {
            stop.best_epoch()
        } else {
            history.len()
        };
        let mut meta = ModelMeta::new(
            "bpr",
            true,
            k,
            serde_json::to_value(p).unwrap_or_default(),
            history,
            best_epoch,
            (0.0, 0.0),
        );
        meta.warm_start = warm;
        st.release_entries();
        drop(pos);
        Ok(Model::from_parts(ModelParts {
            user_factors: st.users_out(&uf, k),
            item_factors: st.items_out(&itf, k),
            user_bias: vec![0.0; nu],
            item_bias: st.items_out(&bi, 1),
            global_mean: 0.0,
            train,
            meta,
        }))
    }
}

struct BlockCtx<'a> {
    pos: &'a Csr,
    user0: usize,
    item0: usize,
    seed: u64,
}

fn bpr_block(
    entries: &[Entry],
    uf: &mut [f32],
    itf: &mut [f32],
    bi: &mut [f32],
    ctx: &BlockCtx<'_>,
    s: Step,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: `bpr_block_avx2` only requires AVX2 and FMA, and the CPU
        // was just checked to support both.
        return unsafe { bpr_block_avx2(entries, uf, itf, bi, ctx, s) };
    }
    bpr_block_generic(entries, uf, itf, bi, ctx, s)
}

/// The same code compiled for AVX2; arithmetic and order are unchanged.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn bpr_block_avx2(
    entries: &[Entry],
    uf: &mut [f32],
    itf: &mut [f32],
    bi: &mut [f32],
    ctx: &BlockCtx<'_>,
    s: Step,
) -> f64 {
    bpr_block_generic(entries, uf, itf, bi, ctx, s)
}

/// Two distinct rows of a row-major matrix, both mutable.
#[inline(always)]
fn two_rows(m: &mut [f32], a: usize, b: usize, k: usize) -> (&mut [f32], &mut [f32]) {
    if a < b {
        let (lo, hi) = m.split_at_mut(b * k);
        (&mut lo[a * k..(a + 1) * k], &mut hi[..k])
    } else {
        let (lo, hi) = m.split_at_mut(a * k);
        (&mut hi[..k], &mut lo[b * k..(b + 1) * k])
    }
}

#[inline(always)]
fn bpr_block_generic(
    entries: &[Entry],
    uf: &mut [f32],
    itf: &mut [f32],
    bi: &mut [f32],
    ctx: &BlockCtx<'_>,
    s: Step,
) -> f64 {
    let k = s.k;
    let n_items = bi.len();
    let mut rng = SmallRng::seed_from_u64(ctx.seed);
    let mut correct = 0f64;
    for e in entries {
        let (u, i) = (e.u as usize, e.i as usize);
        let seen = ctx.pos.row(ctx.user0 + u);
        // Uniform negative from this block's items, not a positive of u.
        let mut j = usize::MAX;
        for _ in 0..8 {
            let c = rng.gen_range(0..n_items);
            if seen.binary_search(&((ctx.item0 + c) as u32)).is_err() {
                j = c;
                break;
            }
        }
        if j == usize::MAX {
            continue;
        }
        let p = &mut uf[u * k..(u + 1) * k];
        let (qi, qj) = two_rows(itf, i, j, k);
        let x = dot(p, qi) - dot(p, qj) + bi[i] - bi[j];
        correct += (x > 0.0) as u8 as f64;
        // d/dx ln σ(x) = σ(−x)
        let z = 1.0 / (1.0 + x.exp());
        for d in 0..k {
            let (pu, a, b) = (p[d], qi[d], qj[d]);
            p[d] = pu + s.lr * (z * (a - b) - s.reg * pu);
            qi[d] = a + s.lr * (z * pu - s.reg * a);
            qj[d] = b + s.lr * (-z * pu - s.reg * b);
        }
        bi[i] += s.lr * (z - s.reg * bi[i]);
        bi[j] += s.lr * (-z - s.reg * bi[j]);
    }
    correct
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::IdMap;
    use std::sync::Arc;

    fn blocks() -> Interactions {
        let mut users = Vec::new();
        let mut items = Vec::new();
        for u in 0..60u32 {
            for i in 0..40u32 {
                if (u < 30) == (i < 20) && (u + i) % 3 != 0 {
                    users.push(u);
                    items.push(i);
                }
            }
        }
        let n = users.len();
        Interactions {
            users,
            items,
            values: vec![1.0; n],
            times: None,
            user_ids: Arc::new(IdMap::from_ints((0..60).collect())),
            item_ids: Arc::new(IdMap::from_ints((0..40).collect())),
        }
    }

    #[test]
    fn bpr_ranks_the_users_group_first_and_repeats_bit_for_bit() {
        let x = blocks();
        let p = BprParams {
            factors: 8,
            epochs: 40,
            threads: Some(2),
            ..Default::default()
        }
        .check()
        .unwrap();
        let m = p.fit(&x, None, &mut |_| {}).unwrap();
        let unseen_a = (0..20u32).find(|&i| !m.seen(0).contains(&i)).unwrap();
        let better = (20..40u32)
            .filter(|&b| m.predict(0, unseen_a) > m.predict(0, b))
            .count();
        assert!(
            better >= 18,
            "only {better} of 20 group-B items ranked below"
        );
        let m2 = p.fit(&x, None, &mut |_| {}).unwrap();
        assert_eq!(m.user_factors(), m2.user_factors());
        assert_eq!(m.item_bias(), m2.item_bias());
    }

    #[test]
    fn two_rows_are_the_right_rows() {
        let mut m: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let (a, b) = two_rows(&mut m, 2, 0, 3);
        assert_eq!(
            (&a[..], &b[..]),
            (&[6.0, 7.0, 8.0][..], &[0.0, 1.0, 2.0][..])
        );
        let (a, b) = two_rows(&mut m, 1, 3, 3);
        assert_eq!(
            (&a[..], &b[..]),
            (&[3.0, 4.0, 5.0][..], &[9.0, 10.0, 11.0][..])
        );
    }
}
