//! The SGD trainer's maths: one block's updates and the validation RMSE.

use rayon::prelude::*;

use crate::linalg::{dot, sgd_pair_step, sgd_pair_update};
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

/// What the general kernel does beyond the plain step (see `SgdParams`).
#[derive(Clone, Copy)]
pub(super) struct Extra {
    pub biases: bool,
    pub adagrad: bool,
    /// Factors `0..lead` form the first group, `lead..k` the second.
    pub lead: usize,
    /// Train the first group alone (the first epoch with `lead_factors`).
    pub lead_only: bool,
}

/// Floats of per-row state beside the factors in the general kernel: the
/// bias, then the AdaGrad sums of the two groups (starting at 1).
pub(super) const SIDE: usize = 3;

/// One block's pass of the general kernel; `su`/`si` hold [`SIDE`] floats
/// per row. Returns the sum of squared errors seen.
#[allow(clippy::too_many_arguments)]
pub(super) fn sgd_block_general(
    entries: &[Entry],
    uf: &mut [f32],
    su: &mut [f32],
    itf: &mut [f32],
    si: &mut [f32],
    s: Step,
    x: Extra,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: `general_avx2` only requires the AVX2 and FMA instruction
        // sets, and the CPU was just checked to support both.
        return unsafe { general_avx2(entries, uf, su, itf, si, s, x) };
    }
    general_body(entries, uf, su, itf, si, s, x)
}

/// The same code compiled for AVX2; results equal the generic path's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn general_avx2(
    entries: &[Entry],
    uf: &mut [f32],
    su: &mut [f32],
    itf: &mut [f32],
    si: &mut [f32],
    s: Step,
    x: Extra,
) -> f64 {
    general_body(entries, uf, su, itf, si, s, x)
}

#[inline(always)]
fn general_body(
    entries: &[Entry],
    uf: &mut [f32],
    su: &mut [f32],
    itf: &mut [f32],
    si: &mut [f32],
    s: Step,
    x: Extra,
) -> f64 {
    let k = s.k;
    let lead = if x.lead == 0 { k } else { x.lead.min(k) };
    let mut sq = 0f64;
    for e in entries {
        let (u, i) = (e.u as usize, e.i as usize);
        let p = &mut uf[u * k..(u + 1) * k];
        let q = &mut itf[i * k..(i + 1) * k];
        let (gu, gi) = (
            &mut su[u * SIDE..(u + 1) * SIDE],
            &mut si[i * SIDE..(i + 1) * SIDE],
        );
        let base = if x.biases { s.mu + gu[0] + gi[0] } else { 0.0 };
        let err = e.r - (base + dot(p, q));
        sq += (err * err) as f64;
        // The biases take the first group's steps.
        let mut first = (s.lr, s.lr);
        for (g, (lo, hi)) in [(0, lead), (lead, k)].into_iter().enumerate() {
            if lo == hi || (g == 1 && x.lead_only) {
                continue;
            }
            let (ep, eq) = if x.adagrad {
                (s.lr / gu[1 + g].sqrt(), s.lr / gi[1 + g].sqrt())
            } else {
                (s.lr, s.lr)
            };
            if g == 0 {
                first = (ep, eq);
            }
            let (gp2, gq2) = sgd_pair_step(&mut p[lo..hi], &mut q[lo..hi], err, ep, eq, s.reg_f);
            if x.adagrad {
                let w = (hi - lo) as f32;
                gu[1 + g] += gp2 / w;
                gi[1 + g] += gq2 / w;
            }
        }
        if x.biases {
            gu[0] += first.0 * (err - s.reg_b * gu[0]);
            gi[0] += first.1 * (err - s.reg_b * gi[0]);
        }
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
    bias_stride: usize,
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
                        + bu[u * bias_stride]
                        + bi[i * bias_stride]
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
