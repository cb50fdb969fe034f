//! The SGD trainer's maths: one block's updates and the validation RMSE.

use rayon::prelude::*;

use crate::linalg::{dot, sgd_pair_update};
use crate::train::strata::Entry;
use crate::train::Validation;

/// One epoch's step: the constants of every update.
#[derive(Clone, Copy)]
pub(super) struct Step {
    pub k: usize,
    pub mu: f32,
    pub lr: f32,
    pub reg_f: f32,
    pub reg_b: f32,
}

/// One block's pass; returns the sum of squared errors seen.
pub(super) fn sgd_block(
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
pub(super) fn rmse_of(
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
