//! Biased matrix factorization by stochastic gradient descent:
//! r̂ = μ + b_u + b_i + p_u·q_i.
//!
//! Parallel without data races by stratification (DSGD, Gemulla et al. 2011;
//! FPSGD/LibMF): users and items are shuffled into `B` ranges each; block
//! (a, c) holds the entries of user range a and item range c. A stratum is B
//! blocks that share no range, so each worker owns `&mut` slices of the user
//! and item factors for its block. Within a block entries are processed in a
//! fixed (seeded, shuffled) order, so a run is bit-identical for the same
//! seed and thread count, whatever the scheduling.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::strata::{block_count, Entry, Strata};
use super::{with_threads, EarlyStop, EpochReport, Validation};
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::linalg::{dot, sgd_pair_update};
use crate::model::{Model, ModelMeta, ModelParts};

/// Parameters of the SGD trainer.
///
/// | Name | Default | Purpose | Range |
/// |---|---|---|---|
/// | factors | 64 | latent dimensions k | 1..=4096 |
/// | epochs | 20 | passes over the data | 1..=10000 |
/// | learning_rate | 0.05 | step size of the first epoch | (0, 1] |
/// | lr_decay | 0.9 | step size multiplier per epoch | (0, 1] |
/// | reg_factors | 0.06 | L2 penalty on p_u and q_i | ≥ 0 |
/// | reg_bias | 0.01 | L2 penalty on b_u and b_i | ≥ 0 |
/// | init_std | 0.01 | std-dev of the normal initial factors | ≥ 0 |
/// | seed | 42 | RNG seed (shuffles and initial factors) | any |
/// | threads | all cores | worker threads | ≥ 1 |
/// | patience | none | stop after this many epochs without a better validation RMSE (needs validation data); the best epoch's factors are kept | ≥ 1 |
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SgdParams {
    pub factors: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    pub lr_decay: f32,
    pub reg_factors: f32,
    pub reg_bias: f32,
    pub init_std: f32,
    pub seed: u64,
    pub threads: Option<usize>,
    pub patience: Option<usize>,
}

impl Default for SgdParams {
    fn default() -> Self {
        SgdParams {
            factors: 64,
            epochs: 20,
            learning_rate: 0.05,
            lr_decay: 0.9,
            reg_factors: 0.06,
            reg_bias: 0.01,
            init_std: 0.01,
            seed: 42,
            threads: None,
            patience: None,
        }
    }
}

/// [`SgdParams`] that passed [`SgdParams::check`]; only these can fit.
#[derive(Clone, Debug)]
pub struct SgdValidParams(SgdParams);

impl SgdParams {
    pub fn factors(mut self, k: usize) -> Self {
        self.factors = k;
        self
    }
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    pub fn learning_rate(mut self, v: f32) -> Self {
        self.learning_rate = v;
        self
    }
    pub fn lr_decay(mut self, v: f32) -> Self {
        self.lr_decay = v;
        self
    }
    pub fn reg_factors(mut self, v: f32) -> Self {
        self.reg_factors = v;
        self
    }
    pub fn reg_bias(mut self, v: f32) -> Self {
        self.reg_bias = v;
        self
    }
    pub fn init_std(mut self, v: f32) -> Self {
        self.init_std = v;
        self
    }
    pub fn seed(mut self, v: u64) -> Self {
        self.seed = v;
        self
    }
    pub fn threads(mut self, v: Option<usize>) -> Self {
        self.threads = v;
        self
    }
    pub fn patience(mut self, v: Option<usize>) -> Self {
        self.patience = v;
        self
    }

    /// Validates every parameter, naming the first bad one.
    pub fn check(self) -> Result<SgdValidParams> {
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
        if !(p.lr_decay > 0.0 && p.lr_decay <= 1.0) {
            return Err(Error::param("lr_decay", p.lr_decay, "must be in (0, 1]"));
        }
        for (name, v) in [
            ("reg_factors", p.reg_factors),
            ("reg_bias", p.reg_bias),
            ("init_std", p.init_std),
        ] {
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
        Ok(SgdValidParams(self))
    }
}

impl SgdValidParams {
    pub fn params(&self) -> &SgdParams {
        &self.0
    }

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
    /// users and items it knows (see [`super::warm`]).
    pub fn fit_with(
        &self,
        train: &Interactions,
        valid: Option<&Validation>,
        prev: Option<&Model>,
        progress: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> Result<Model> {
        super::check_fit(train, valid, self.0.patience)?;
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
        let nb = st.nb;
        let (uinv, iinv) = (&st.uinv, &st.iinv);

        let mu = train.mean_value() as f32;
        let start = super::warm::start(train, k, p.init_std, p.seed, false, mu, prev)?;
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
            for &s in &order {
                let sums = st.run(
                    s,
                    k,
                    &mut uf,
                    &mut bu,
                    &mut itf,
                    &mut bi,
                    |_, entries, uf, bu, itf, bi| sgd_block(entries, uf, bu, itf, bi, step),
                );
                sq += sums.iter().sum::<f64>();
            }
            let seconds = t0.elapsed().as_secs_f64();
            let valid_rmse = valid_int
                .as_ref()
                .map(|v| rmse_of(v, &uf, &itf, &bu, &bi, k, mu, rmin, rmax));
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

        // The epoch whose factors are kept: the best one only when
        // early stopping restored it, else the last.
        let best_epoch = if valid_int.is_some() && p.patience.is_some() {
            stop.best_epoch()
        } else {
            history.len()
        };
        let mut meta = ModelMeta::new(
            "sgd",
            false,
            k,
            serde_json::to_value(p).unwrap_or_default(),
            history,
            best_epoch,
            (rmin, rmax),
        );
        meta.warm_start = warm;
        st.release_entries();
        Ok(Model::from_parts(ModelParts {
            user_factors: st.users_out(&uf, k),
            item_factors: st.items_out(&itf, k),
            user_bias: st.users_out(&bu, 1),
            item_bias: st.items_out(&bi, 1),
            global_mean: mu,
            train,
            meta,
        }))
    }
}

#[derive(Clone, Copy)]
struct Step {
    k: usize,
    mu: f32,
    lr: f32,
    reg_f: f32,
    reg_b: f32,
}

pub(crate) fn value_range(v: &[f32]) -> (f32, f32) {
    let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 0.0)
    }
}

/// One block's pass; returns the sum of squared errors seen.
fn sgd_block(
    entries: &[Entry],
    uf: &mut [f32],
    bu: &mut [f32],
    itf: &mut [f32],
    bi: &mut [f32],
    s: Step,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: `sgd_block_avx2` only requires the AVX2 and FMA instruction
        // sets, and the CPU was just checked to support both.
        return unsafe { sgd_block_avx2(entries, uf, bu, itf, bi, s) };
    }
    sgd_block_generic(entries, uf, bu, itf, bi, s)
}

/// The same code compiled for AVX2 (8-wide vectors). The arithmetic and its
/// order are unchanged, so results equal the generic path bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sgd_block_avx2(
    entries: &[Entry],
    uf: &mut [f32],
    bu: &mut [f32],
    itf: &mut [f32],
    bi: &mut [f32],
    s: Step,
) -> f64 {
    sgd_block_generic(entries, uf, bu, itf, bi, s)
}

#[inline(always)]
fn sgd_block_generic(
    entries: &[Entry],
    uf: &mut [f32],
    bu: &mut [f32],
    itf: &mut [f32],
    bi: &mut [f32],
    s: Step,
) -> f64 {
    let k = s.k;
    let mut sq = 0f64;
    for e in entries {
        let (u, i) = (e.u as usize, e.i as usize);
        let p = &mut uf[u * k..(u + 1) * k];
        let q = &mut itf[i * k..(i + 1) * k];
        let err = e.r - (s.mu + bu[u] + bi[i] + dot(p, q));
        sq += (err * err) as f64;
        bu[u] += s.lr * (err - s.reg_b * bu[u]);
        bi[i] += s.lr * (err - s.reg_b * bi[i]);
        sgd_pair_update(p, q, err, s.lr, s.reg_f, s.reg_f);
    }
    sq
}

/// Validation RMSE with predictions clipped to the training range, summed
/// in fixed chunks so the value is deterministic.
#[allow(clippy::too_many_arguments)]
fn rmse_of(
    v: &Validation,
    uf: &[f32],
    itf: &[f32],
    bu: &[f32],
    bi: &[f32],
    k: usize,
    mu: f32,
    lo: f32,
    hi: f32,
) -> f64 {
    const CHUNK: usize = 8192;
    let idx: Vec<usize> = (0..v.users.len()).collect();
    let sums: Vec<f64> = idx
        .par_chunks(CHUNK)
        .map(|c| {
            c.iter()
                .map(|&n| {
                    let (u, i) = (v.users[n] as usize, v.items[n] as usize);
                    let pred = (mu
                        + bu[u]
                        + bi[i]
                        + dot(&uf[u * k..(u + 1) * k], &itf[i * k..(i + 1) * k]))
                    .clamp(lo, hi);
                    let e = (v.values[n] - pred) as f64;
                    e * e
                })
                .sum::<f64>()
        })
        .collect();
    (sums.iter().sum::<f64>() / v.users.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::IdMap;
    use std::sync::Arc;

    fn tiny(nu: u32, ni: u32) -> Interactions {
        let mut users = Vec::new();
        let mut items = Vec::new();
        let mut values = Vec::new();
        for u in 0..nu {
            for i in 0..ni {
                if (u * 31 + i * 17) % 3 != 0 {
                    users.push(u);
                    items.push(i);
                    values.push(1.0 + ((u % 4) as f32 + (i % 5) as f32) * 0.5);
                }
            }
        }
        Interactions {
            users,
            items,
            values,
            times: None,
            user_ids: Arc::new(IdMap::from_ints((0..nu as i64).collect())),
            item_ids: Arc::new(IdMap::from_ints((0..ni as i64).collect())),
        }
    }

    /// The SGD step against a slow, obviously-correct reference written with
    /// plain loops in f64.
    #[test]
    fn block_step_matches_a_slow_reference() {
        let k = 5;
        let entries = vec![
            Entry { u: 0, i: 1, r: 4.0 },
            Entry { u: 1, i: 0, r: 2.0 },
            Entry { u: 0, i: 0, r: 3.5 },
        ];
        let mut uf: Vec<f32> = (0..2 * k).map(|j| (j as f32 * 0.3).sin() * 0.2).collect();
        let mut itf: Vec<f32> = (0..2 * k).map(|j| (j as f32 * 0.7).cos() * 0.2).collect();
        let mut bu = vec![0.1f32, -0.2];
        let mut bi = vec![0.05f32, 0.3];
        let s = Step {
            k,
            mu: 3.0,
            lr: 0.05,
            reg_f: 0.1,
            reg_b: 0.02,
        };
        let (mut ruf, mut ritf): (Vec<f64>, Vec<f64>) = (
            uf.iter().map(|&x| x as f64).collect(),
            itf.iter().map(|&x| x as f64).collect(),
        );
        let (mut rbu, mut rbi): (Vec<f64>, Vec<f64>) = (
            bu.iter().map(|&x| x as f64).collect(),
            bi.iter().map(|&x| x as f64).collect(),
        );
        for e in &entries {
            let (u, i) = (e.u as usize, e.i as usize);
            let mut pred = 3.0 + rbu[u] + rbi[i];
            for j in 0..k {
                pred += ruf[u * k + j] * ritf[i * k + j];
            }
            let err = e.r as f64 - pred;
            rbu[u] += 0.05 * (err - 0.02 * rbu[u]);
            rbi[i] += 0.05 * (err - 0.02 * rbi[i]);
            for j in 0..k {
                let (pu, qi) = (ruf[u * k + j], ritf[i * k + j]);
                ruf[u * k + j] = pu + 0.05 * (err * qi - 0.1 * pu);
                ritf[i * k + j] = qi + 0.05 * (err * pu - 0.1 * qi);
            }
        }
        sgd_block(&entries, &mut uf, &mut bu, &mut itf, &mut bi, s);
        for (a, b) in uf
            .iter()
            .zip(&ruf)
            .chain(itf.iter().zip(&ritf))
            .chain(bu.iter().zip(&rbu))
            .chain(bi.iter().zip(&rbi))
        {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn same_seed_and_threads_give_identical_models() {
        let x = tiny(40, 30);
        let p = SgdParams::default()
            .factors(8)
            .epochs(5)
            .threads(Some(2))
            .check()
            .unwrap();
        let a = p.fit(&x, None, &mut |_| {}).unwrap();
        let b = p.fit(&x, None, &mut |_| {}).unwrap();
        assert_eq!(a.user_factors(), b.user_factors());
        assert_eq!(a.item_bias(), b.item_bias());
        let c = SgdParams::default()
            .factors(8)
            .epochs(5)
            .threads(Some(2))
            .seed(7)
            .check()
            .unwrap()
            .fit(&x, None, &mut |_| {})
            .unwrap();
        assert_ne!(a.user_factors(), c.user_factors());
    }

    #[test]
    fn training_lowers_the_error_and_early_stopping_stops() {
        let x = tiny(60, 40);
        let mut reports = Vec::new();
        let v = Validation {
            users: x.users[..50].to_vec(),
            items: x.items[..50].to_vec(),
            values: x.values[..50].to_vec(),
        };
        SgdParams::default()
            .factors(8)
            .epochs(30)
            .learning_rate(0.05)
            .patience(Some(2))
            .threads(Some(2))
            .check()
            .unwrap()
            .fit(&x, Some(&v), &mut |r| reports.push(r.clone()))
            .unwrap();
        assert!(reports.last().unwrap().train_rmse < reports[0].train_rmse);
        assert!(reports.iter().all(|r| r.valid_rmse.is_some()));
    }

    #[test]
    fn bad_params_name_the_parameter() {
        let e = SgdParams::default()
            .learning_rate(-0.1)
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("learning_rate"), "{e}");
        assert!(SgdParams::default().factors(0).check().is_err());
        assert!(SgdParams::default().threads(Some(0)).check().is_err());
    }
}
