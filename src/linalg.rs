//! Dense linear algebra, the bottom layer (no crate imports): dot, axpy and
//! weighted row sums on `f32` slices, the Gramian YᵀY and a Cholesky solve.
//! Kernels are written in fixed-width chunks so the
//! compiler vectorizes them. The summation order is fixed (8 lanes, then a
//! fixed reduction), so results do not depend on the instruction set.
//!
//! Each hot loop that wants AVX2 has its own `#[target_feature]` wrapper
//! around an `#[inline(always)]` body (`sgd_block_avx2`, `bpr_block_avx2`,
//! `solve_row_avx2`). A shared wrapper taking a closure does not work: the
//! closure body is compiled without the features (measured: implicit ALS went
//! from 0.020 to 0.59 s per sweep, its fused multiply-adds turned into calls).

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

const LANES: usize = 8;
/// Four vectors of accumulators: enough independent add chains to hide the
/// latency of vector adds (one 8-lane accumulator alone is latency-bound).
const WIDE: usize = 4 * LANES;

/// Dot product with 32 independent accumulators, then 8, then a fixed
/// reduction tree.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_m::<Plain>(a, b)
}

/// `out[n] = rows[n]·p` for `rows` (row-major, `p.len()` columns): every
/// item's score for one user. Each product is [`dot`] (same order, same
/// roundings, so equal to it bit for bit); on CPUs with AVX2 the loop runs
/// in an AVX2 build of the same code, 8 lanes per instruction instead of 4.
pub fn row_dots(rows: &[f32], p: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `row_dots_avx2` only requires AVX2, just checked.
        return unsafe { row_dots_avx2(rows, p, out) };
    }
    row_dots_body(rows, p, out)
}

/// [`dot_m`]`::<Plain>` per row, written with 8-lane AVX vectors (the
/// compiler left the generic body in 4-lane halves with shuffles): the same
/// products, the same four 8-lane accumulators, the same reduction tree,
/// multiply and add rounded separately as in [`Plain`], so the results are
/// equal bit for bit.
///
/// Rows go two at a time, so each load of `p` serves both (loads, not
/// arithmetic, were the limit), and eight at a time through the reduction:
/// the eight rows' 8-lane sums are reduced together by lane shuffles and
/// horizontal adds that pair the lanes exactly as `dot_m`'s tree does,
/// instead of each row's lanes going through memory and seven scalar adds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn row_dots_avx2(rows: &[f32], p: &[f32], out: &mut [f32]) {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_hadd_ps, _mm256_loadu_ps, _mm256_permute2f128_ps,
        _mm256_permutevar8x32_ps, _mm256_setr_epi32, _mm256_storeu_ps,
    };
    let k = p.len();
    if k == 0 {
        out.fill(0.0);
        return;
    }
    let n = out.len().min(rows.len() / k);
    let split = k / WIDE * WIDE;
    let split8 = split + (k - split) / LANES * LANES;
    let tail = |r: usize| {
        let mut t = 0f32;
        for j in split8..k {
            t += rows[r * k + j] * p[j];
        }
        t
    };
    let (rp, pp) = (rows.as_ptr(), p.as_ptr());
    let mut r = 0;
    while r + 8 <= n {
        // SAFETY: rows r..r+8 are inside `rows` (r + 8 ≤ n ≤ rows.len() / k),
        // `p` is k long and split8 ≤ k, as `acc_pair` requires; the store
        // writes out[r..r + 8], inside `out` (n ≤ out.len()).
        unsafe {
            let row = |j: usize| rp.add((r + j) * k);
            let (x0, x1) = acc_pair(row(0), row(1), pp, split, split8);
            let (x2, x3) = acc_pair(row(2), row(3), pp, split, split8);
            let (x4, x5) = acc_pair(row(4), row(5), pp, split, split8);
            let (x6, x7) = acc_pair(row(6), row(7), pp, split, split8);
            // [x.lo + x.hi | y.lo + y.hi]: lanes j + (j + 4) of two rows,
            // the tree's first level.
            let halves = |x, y| {
                _mm256_add_ps(
                    _mm256_permute2f128_ps::<0x20>(x, y),
                    _mm256_permute2f128_ps::<0x31>(x, y),
                )
            };
            // Two levels of horizontal adds finish the tree; the sums come
            // out as rows 0 2 4 6 | 1 3 5 7.
            let f = _mm256_hadd_ps(
                _mm256_hadd_ps(halves(x0, x1), halves(x2, x3)),
                _mm256_hadd_ps(halves(x4, x5), halves(x6, x7)),
            );
            let f = _mm256_permutevar8x32_ps(f, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            // `dot_m` adds its scalar tail last, 0 when k is a multiple of 8
            // (which also turns a -0 sum into +0, as here).
            let mut t = [0f32; LANES];
            if split8 < k {
                for (j, tj) in t.iter_mut().enumerate() {
                    *tj = tail(r + j);
                }
            }
            let v = _mm256_add_ps(f, _mm256_loadu_ps(t.as_ptr()));
            _mm256_storeu_ps(out.as_mut_ptr().add(r), v);
        }
        r += 8;
    }
    while r < n {
        // SAFETY: row r is inside `rows` (r < n), `p` is k long, split8 ≤ k;
        // the store writes an 8-float array.
        let l = unsafe {
            let x = rp.add(r * k);
            let (acc, _) = acc_pair(x, x, pp, split, split8);
            let mut l = [0f32; LANES];
            _mm256_storeu_ps(l.as_mut_ptr(), acc);
            l
        };
        out[r] = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7])) + tail(r);
        r += 1;
    }
}

/// The 8-lane sums of two rows `x` and `y` against `p` over columns
/// `..split8`, as [`dot_m`] forms them: four accumulators over blocks of 32
/// columns, joined as (a0 + a1) + (a2 + a3), then one accumulator over
/// blocks of 8.
///
/// # Safety
/// AVX2 must be available; `x`, `y` and `p` must each point to at least
/// `split8` readable floats; `split` ≤ `split8` must both be multiples of 8,
/// `split` of 32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn acc_pair(
    x: *const f32,
    y: *const f32,
    p: *const f32,
    split: usize,
    split8: usize,
) -> (std::arch::x86_64::__m256, std::arch::x86_64::__m256) {
    use std::arch::x86_64::{_mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps};
    let z = _mm256_setzero_ps();
    let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
    let (mut b0, mut b1, mut b2, mut b3) = (z, z, z, z);
    let mut c = 0;
    // SAFETY (all loads): offsets c + off + 8 ≤ split8, inside the k floats
    // the caller vouches for.
    while c < split {
        let q0 = _mm256_loadu_ps(p.add(c));
        a0 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x.add(c)), q0), a0);
        b0 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(y.add(c)), q0), b0);
        let q1 = _mm256_loadu_ps(p.add(c + LANES));
        a1 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x.add(c + LANES)), q1), a1);
        b1 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(y.add(c + LANES)), q1), b1);
        let q2 = _mm256_loadu_ps(p.add(c + 2 * LANES));
        a2 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x.add(c + 2 * LANES)), q2), a2);
        b2 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(y.add(c + 2 * LANES)), q2), b2);
        let q3 = _mm256_loadu_ps(p.add(c + 3 * LANES));
        a3 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x.add(c + 3 * LANES)), q3), a3);
        b3 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(y.add(c + 3 * LANES)), q3), b3);
        c += WIDE;
    }
    let mut a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    let mut b = _mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3));
    while c < split8 {
        let q = _mm256_loadu_ps(p.add(c));
        a = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x.add(c)), q), a);
        b = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(y.add(c)), q), b);
        c += LANES;
    }
    (a, b)
}

#[inline(always)]
fn row_dots_body(rows: &[f32], p: &[f32], out: &mut [f32]) {
    let k = p.len();
    if k == 0 {
        out.fill(0.0);
        return;
    }
    for (o, r) in out.iter_mut().zip(rows.chunks_exact(k)) {
        *o = dot_m::<Plain>(r, p);
    }
}

/// `y += alpha * x`.
#[inline(always)]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    axpy_m::<Plain>(alpha, x, y)
}

/// `out = Σ_n w[n] · rows[n]` for `rows` stored row-major with `out.len()`
/// columns. Columns are done in blocks of 32 held in registers across all
/// rows, so `out` is written once instead of once per row.
#[inline(always)]
pub fn weighted_row_sum(rows: &[f32], w: &[f32], out: &mut [f32]) {
    weighted_row_sum_m::<Plain>(rows, w, out)
}

/// The simultaneous SGD step of biased MF for one entry with error `e`:
/// `p += lr (e q − reg_p p)`, `q += lr (e p − reg_q q)`, both from old values.
#[inline(always)]
pub fn sgd_pair_update(p: &mut [f32], q: &mut [f32], e: f32, lr: f32, reg_p: f32, reg_q: f32) {
    for (pj, qj) in p.iter_mut().zip(q.iter_mut()) {
        let (a, b) = (*pj, *qj);
        *pj = a + lr * (e * b - reg_p * a);
        *qj = b + lr * (e * a - reg_q * b);
    }
}

/// One SGD step on a factor pair with a step size per side (AdaGrad's
/// per-row steps): `g_p = reg p − e q`, `g_q = reg q − e p`, then
/// `p −= lr_p g_p`, `q −= lr_q g_q`, both from old values. Returns the sums
/// of squared gradients `(Σ g_p², Σ g_q²)` that AdaGrad accumulates.
#[inline(always)]
pub fn sgd_pair_step(
    p: &mut [f32],
    q: &mut [f32],
    e: f32,
    lr_p: f32,
    lr_q: f32,
    reg: f32,
) -> (f32, f32) {
    let (mut gp2, mut gq2) = (0f32, 0f32);
    for (pj, qj) in p.iter_mut().zip(q.iter_mut()) {
        let (a, b) = (*pj, *qj);
        let (gp, gq) = (reg * a - e * b, reg * b - e * a);
        gp2 += gp * gp;
        gq2 += gq * gq;
        *pj = a - lr_p * gp;
        *qj = b - lr_q * gq;
    }
    (gp2, gq2)
}

/// Multiply-add, either as two roundings (`Plain`, any CPU) or fused into one
/// instruction (`Fused`, only inside functions compiled with FMA enabled;
/// elsewhere `mul_add` would be a slow library call).
pub trait Madd {
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

pub struct Plain;
pub struct Fused;

impl Madd for Plain {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// [`dot`] with a chosen multiply-add.
#[inline(always)]
pub fn dot_m<M: Madd>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut wide = [0f32; WIDE];
    let split = n / WIDE * WIDE;
    for (x, y) in a[..split]
        .chunks_exact(WIDE)
        .zip(b[..split].chunks_exact(WIDE))
    {
        for j in 0..WIDE {
            wide[j] = M::madd(x[j], y[j], wide[j]);
        }
    }
    let mut acc = [0f32; LANES];
    for j in 0..LANES {
        acc[j] = (wide[j] + wide[j + LANES]) + (wide[j + 2 * LANES] + wide[j + 3 * LANES]);
    }
    let (a, b) = (&a[split..], &b[split..]);
    let split = a.len() / LANES * LANES;
    for (x, y) in a[..split]
        .chunks_exact(LANES)
        .zip(b[..split].chunks_exact(LANES))
    {
        for j in 0..LANES {
            acc[j] = M::madd(x[j], y[j], acc[j]);
        }
    }
    let mut tail = 0f32;
    for (x, y) in a[split..].iter().zip(&b[split..]) {
        tail = M::madd(*x, *y, tail);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// [`axpy`] with a chosen multiply-add.
#[inline(always)]
pub fn axpy_m<M: Madd>(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yj, xj) in y.iter_mut().zip(x) {
        *yj = M::madd(alpha, *xj, *yj);
    }
}

/// [`weighted_row_sum`] with a chosen multiply-add.
#[inline(always)]
pub fn weighted_row_sum_m<M: Madd>(rows: &[f32], w: &[f32], out: &mut [f32]) {
    let k = out.len();
    if k == 0 {
        return;
    }
    let mut c0 = 0;
    while c0 + WIDE <= k {
        let mut acc = [0f32; WIDE];
        for (r, &wn) in rows.chunks_exact(k).zip(w) {
            let seg = &r[c0..c0 + WIDE];
            for j in 0..WIDE {
                acc[j] = M::madd(wn, seg[j], acc[j]);
            }
        }
        out[c0..c0 + WIDE].copy_from_slice(&acc);
        c0 += WIDE;
    }
    if c0 < k {
        out[c0..].fill(0.0);
        for (r, &wn) in rows.chunks_exact(k).zip(w) {
            for (o, &v) in out[c0..].iter_mut().zip(&r[c0..]) {
                *o = M::madd(wn, v, *o);
            }
        }
    }
}

/// YᵀY for `y` (n × k, row-major), summed over parallel row chunks.
pub fn gram(y: &[f32], k: usize) -> Vec<f32> {
    const CHUNK: usize = 2048;
    let parts: Vec<Array2<f32>> = y
        .par_chunks(CHUNK * k)
        .map(|c| {
            let v = ArrayView2::from_shape((c.len() / k, k), c).expect("rows of k");
            v.t().dot(&v)
        })
        .collect();
    let mut g = Array2::<f32>::zeros((k, k));
    for part in parts {
        g += &part;
    }
    g.into_raw_vec_and_offset().0
}

/// Overwrites the lower triangle of symmetric A (k × k, row-major, f64)
/// with its Cholesky factor L (A = L Lᵀ). `None` if a pivot is at most
/// `min_pivot` or not finite (A not positive definite, or too close to it).
pub fn cholesky_factor(a: &mut [f64], k: usize, min_pivot: f64) -> Option<()> {
    for j in 0..k {
        let mut d = a[j * k + j];
        for m in 0..j {
            d -= a[j * k + m] * a[j * k + m];
        }
        if d <= min_pivot || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j * k + j] = d;
        for i in j + 1..k {
            let mut v = a[i * k + j];
            for m in 0..j {
                v -= a[i * k + m] * a[j * k + m];
            }
            a[i * k + j] = v / d;
        }
    }
    Some(())
}

/// Solves A z = b for symmetric positive-definite A (k × k, row-major, f64,
/// overwritten by its Cholesky factor). `None` if A is not positive definite.
pub fn cholesky_solve(a: &mut [f64], b: &[f32], k: usize) -> Option<Vec<f64>> {
    cholesky_factor(a, k, 0.0)?;
    // Forward then back substitution with L and Lᵀ.
    let mut z: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    for i in 0..k {
        for m in 0..i {
            z[i] -= a[i * k + m] * z[m];
        }
        z[i] /= a[i * k + i];
    }
    for i in (0..k).rev() {
        for m in i + 1..k {
            z[i] -= a[m * k + i] * z[m];
        }
        z[i] /= a[i * k + i];
    }
    Some(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_dots_equal_dot_row_by_row() {
        // Odd widths (not multiples of 8 or 32) and a NaN row.
        for k in [1usize, 7, 8, 31, 32, 33, 64, 100] {
            let n = 37;
            let rows: Vec<f32> = (0..n * k)
                .map(|v| ((v * 37 % 101) as f32 - 50.0) / 17.0)
                .collect();
            let mut rows_nan = rows.clone();
            rows_nan[5 * k] = f32::NAN;
            let p: Vec<f32> = (0..k)
                .map(|v| ((v * 13 % 29) as f32 - 14.0) / 7.0)
                .collect();
            for rows in [&rows, &rows_nan] {
                let mut out = vec![0f32; n];
                row_dots(rows, &p, &mut out);
                for (j, r) in rows.chunks_exact(k).enumerate() {
                    let want = dot(r, &p);
                    // The slow reference: a plain left-to-right sum in f64.
                    let slow: f64 = r
                        .iter()
                        .zip(&p)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    if want.is_nan() {
                        assert!(out[j].is_nan() && j == 5 && rows[5 * k].is_nan());
                    } else {
                        assert_eq!(out[j].to_bits(), want.to_bits(), "k {k} row {j}");
                        assert!((f64::from(out[j]) - slow).abs() < 1e-3 * (1.0 + slow.abs()));
                    }
                }
            }
        }
    }

    #[test]
    fn dot_matches_a_plain_sum() {
        for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 40, 64, 100] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - plain).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn weighted_row_sum_matches_loops() {
        for k in [1usize, 5, 32, 40, 64, 70] {
            let n = 9;
            let rows: Vec<f32> = (0..n * k).map(|j| (j as f32 * 0.13).sin()).collect();
            let w: Vec<f32> = (0..n).map(|j| j as f32 - 3.0).collect();
            let mut out = vec![7.0; k];
            weighted_row_sum(&rows, &w, &mut out);
            for c in 0..k {
                let want: f64 = (0..n).map(|r| w[r] as f64 * rows[r * k + c] as f64).sum();
                assert!((out[c] as f64 - want).abs() < 1e-4, "k={k} c={c}");
            }
        }
    }

    #[test]
    fn pair_update_uses_old_values() {
        let mut p = vec![1.0, 2.0];
        let mut q = vec![3.0, -1.0];
        sgd_pair_update(&mut p, &mut q, 0.5, 0.1, 0.0, 0.0);
        assert_eq!(p, vec![1.0 + 0.1 * 0.5 * 3.0, 2.0 - 0.1 * 0.5]);
        assert_eq!(q, vec![3.0 + 0.1 * 0.5 * 1.0, -1.0 + 0.1 * 0.5 * 2.0]);
    }
}
