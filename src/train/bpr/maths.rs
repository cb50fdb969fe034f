//! The BPR trainer's maths: one block's negative sampling and updates.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::interactions::Csr;
use crate::linalg::dot;
use crate::train::strata::Entry;

/// One SGD step's constants.
#[derive(Clone, Copy)]
pub(super) struct Step {
    pub k: usize,
    pub lr: f32,
    pub reg: f32,
}

/// What a block's worker reads besides its rows: every user's positives (in
/// the internal item order), where the block's user and item ranges start,
/// and the block's RNG seed.
pub(super) struct BlockCtx<'a> {
    pub pos: &'a Csr,
    pub user0: usize,
    pub item0: usize,
    pub seed: u64,
}

pub(super) fn bpr_block(
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
pub(super) fn two_rows(m: &mut [f32], a: usize, b: usize, k: usize) -> (&mut [f32], &mut [f32]) {
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
