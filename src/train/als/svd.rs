//! First item factors from a truncated randomised SVD (Halko, Martinsson &
//! Tropp, SIAM Review 2011) of the degree-normalised matrix
//! M = D_U^-½ R D_I^-½ (R the 0/1 pattern of the training entries, D the
//! row and column counts): the subspace of its top k right singular vectors,
//! which is what normalised item–item filters (GF-CF) rank with, so the
//! first sweeps start from a useful item space instead of noise.
//!
//! One power iteration: Q = orth(Mᵀ M Ω) for a seeded Gaussian Ω (I × k),
//! orthonormalised by Cholesky-QR (twice, for stability). No rotation
//! within the subspace is needed: the ALS objective is invariant under
//! X → XQ, Y → YQ for orthogonal Q. The rows are then scaled to the norm a
//! random start of `init_std` has, so λ and the CG steps see the same scale.

use rayon::prelude::*;

use crate::interactions::Csr;
use crate::linalg::{cholesky_factor, gram};

/// Item factors (I × k) spanning the top-k right singular subspace of M, or
/// `None` when the subspace is rank-deficient (fewer items or users than
/// k, or an empty matrix): the caller keeps the random start.
pub(super) fn item_start(
    by_user: &Csr,
    by_item: &Csr,
    k: usize,
    init_std: f32,
    seed: u64,
) -> Option<Vec<f32>> {
    let (nu, ni) = (by_user.n_rows(), by_item.n_rows());
    if nu < k || ni < k || by_user.nnz() == 0 {
        return None;
    }
    let inv_sqrt = |c: &Csr| -> Vec<f32> {
        (0..c.n_rows())
            .map(|r| 1.0 / (c.row(r).len().max(1) as f32).sqrt())
            .collect()
    };
    let (du, di) = (inv_sqrt(by_user), inv_sqrt(by_item));
    let omega = crate::train::init_factors(ni, k, 1.0, seed, 3);
    let a = multiply(by_user, &du, &di, &omega, k);
    let mut b = multiply(by_item, &di, &du, &a, k);
    for _ in 0..2 {
        orthonormalise(&mut b, k)?;
    }
    let s = init_std * (ni as f32).sqrt();
    b.iter_mut().for_each(|v| *v *= s);
    Some(b)
}

/// out[r] = row_scale[r] · Σ_{c ∈ row r} col_scale[c] · x[c]: one side of
/// M (or Mᵀ) times a dense matrix with k columns.
fn multiply(rows: &Csr, row_scale: &[f32], col_scale: &[f32], x: &[f32], k: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows.n_rows() * k];
    out.par_chunks_mut(k).enumerate().for_each(|(r, o)| {
        for &c in rows.row(r) {
            let w = col_scale[c as usize];
            for (oj, xj) in o.iter_mut().zip(&x[c as usize * k..(c as usize + 1) * k]) {
                *oj += w * xj;
            }
        }
        o.iter_mut().for_each(|v| *v *= row_scale[r]);
    });
    out
}

/// a ← a L⁻ᵀ with L Lᵀ = aᵀa: orthonormal columns (Cholesky-QR). `None`
/// if aᵀa is not positive definite.
fn orthonormalise(a: &mut [f32], k: usize) -> Option<()> {
    let g = gram(a, k);
    let mut l: Vec<f64> = g.iter().map(|&v| v as f64).collect();
    // A (near) rank deficit: a pivot under 1e-12 of L's first diagonal entry.
    let min_pivot = 1e-12 * l.first().map_or(0.0, |v| v.abs().sqrt()).max(1e-30);
    cholesky_factor(&mut l, k, min_pivot)?;
    // Each row q solves L qᵀ = aᵀ (forward substitution).
    a.par_chunks_mut(k).for_each_init(
        || vec![0f64; k],
        |z, row| {
            for i in 0..k {
                let mut v = row[i] as f64;
                for m in 0..i {
                    v -= l[i * k + m] * z[m];
                }
                z[i] = v / l[i * k + i];
            }
            for (r, &v) in row.iter_mut().zip(z.iter()) {
                *r = v as f32;
            }
        },
    );
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the dense matrix built from its definition: on a matrix of
    /// exact rank k (k groups of users, each with its own group of items),
    /// the columns are orthonormal and span every row of M, i.e. the whole
    /// right singular subspace.
    #[test]
    fn spans_the_top_subspace_of_the_normalised_matrix() {
        let (nu, ni, k) = (30usize, 24usize, 3usize);
        let (mut rows, mut cols) = (Vec::new(), Vec::new());
        for u in 0..nu as u32 {
            for i in 0..ni as u32 {
                // Group g = u % 3 takes items i % 3 == g; users of a group
                // take all its items, so M has rank 3 exactly.
                if u % 3 == i % 3 {
                    rows.push(u);
                    cols.push(i);
                }
            }
        }
        let by_user = Csr::build(nu, &rows, &cols, None);
        let by_item = Csr::build(ni, &cols, &rows, None);
        let q = item_start(&by_user, &by_item, k, 1.0 / (ni as f32).sqrt(), 7).unwrap();
        // QᵀQ = I (the scale makes the norms 1 here).
        for a in 0..k {
            for b in 0..k {
                let d: f64 = (0..ni)
                    .map(|i| q[i * k + a] as f64 * q[i * k + b] as f64)
                    .sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-4, "QᵀQ[{a},{b}] = {d}");
            }
        }
        // Each dense row m_u of M (m_ui = 1/√(d_u d_i)) is in the span:
        // |m_u − Q Qᵀ m_u| ≈ 0.
        let du = |u: usize| rows.iter().filter(|&&r| r as usize == u).count() as f64;
        let di = |i: usize| cols.iter().filter(|&&c| c as usize == i).count() as f64;
        for u in 0..nu {
            let m: Vec<f64> = (0..ni)
                .map(|i| {
                    if u % 3 == i % 3 {
                        1.0 / (du(u) * di(i)).sqrt()
                    } else {
                        0.0
                    }
                })
                .collect();
            let proj: Vec<f64> = (0..k)
                .map(|a| (0..ni).map(|i| q[i * k + a] as f64 * m[i]).sum())
                .collect();
            let resid: f64 = (0..ni)
                .map(|i| {
                    let back: f64 = (0..k).map(|a| q[i * k + a] as f64 * proj[a]).sum();
                    (m[i] - back).powi(2)
                })
                .sum::<f64>()
                .sqrt();
            assert!(resid < 1e-4, "user {u}: residual {resid}");
        }
        // Too few items for k: no start.
        assert!(item_start(&by_user, &by_item, 25, 0.01, 7).is_none());
    }
}
