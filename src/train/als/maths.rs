//! The ALS trainer's maths: the row solvers (conjugate gradient and
//! Cholesky), the sweeps that run them over every row, and the losses.

use rayon::prelude::*;

use super::Solver;
use crate::interactions::Csr;
use crate::linalg::{
    axpy, axpy_m, cholesky_solve, dot, dot_m, gram, weighted_row_sum_m, Fused, Madd, Plain,
};
use crate::train::Validation;

/// Validation RMSE of an explicit model, predictions clipped to the
/// training range, summed in validation order.
#[allow(clippy::too_many_arguments)]
pub(super) fn valid_rmse(
    v: &Validation,
    uf: &[f32],
    itf: &[f32],
    ub: &[f32],
    ib: &[f32],
    k: usize,
    mu: f32,
    (rmin, rmax): (f32, f32),
) -> f64 {
    let se: f64 = (0..v.users.len())
        .map(|n| {
            let (u, i) = (v.users[n] as usize, v.items[n] as usize);
            let pred =
                (mu + ub[u] + ib[i] + dot(&uf[u * k..(u + 1) * k], &itf[i * k..(i + 1) * k]))
                    .clamp(rmin, rmax);
            ((v.values[n] - pred) as f64).powi(2)
        })
        .sum();
    (se / v.users.len() as f64).sqrt()
}

/// Training RMSE of an explicit model (predictions unclipped, centred values).
pub(super) fn rmse_rows(
    rows: &Csr,
    uf: &[f32],
    itf: &[f32],
    ub: &[f32],
    ib: &[f32],
    k: usize,
) -> f64 {
    let se: f64 = (0..rows.n_rows())
        .into_par_iter()
        .map(|u| {
            let x = &uf[u * k..(u + 1) * k];
            rows.row(u)
                .iter()
                .zip(rows.row_values(u))
                .map(|(&i, &r)| {
                    ((r - ub[u]
                        - ib[i as usize]
                        - dot(x, &itf[i as usize * k..(i as usize + 1) * k]))
                        as f64)
                        .powi(2)
                })
                .sum::<f64>()
        })
        .collect::<Vec<f64>>()
        .iter()
        .sum();
    (se / rows.nnz().max(1) as f64).sqrt()
}

/// How rows are solved: the parameters the solvers read.
#[derive(Clone, Copy)]
pub(super) struct Solve {
    pub k: usize,
    pub reg: f32,
    pub scale_reg: bool,
    pub implicit: bool,
    pub solver: Solver,
    pub cg_steps: usize,
}

impl Scratch {
    /// The k × k buffers are only sized when a Cholesky solve needs them.
    pub(super) fn new(k: usize) -> Scratch {
        Scratch {
            ys: Vec::new(),
            r: vec![0.0; k],
            p: vec![0.0; k],
            ap: vec![0.0; k],
            a: Vec::new(),
            b: vec![0.0; k],
            l: Vec::new(),
        }
    }
}

/// Per-thread scratch, allocated once per sweep and thread.
pub(super) struct Scratch {
    ys: Vec<f32>,
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    l: Vec<f64>,
}

impl Solve {
    /// Explicit rows with a bias: row r solves for [x_r, b_r] with features
    /// [y_i, 1] and targets v − b_i (v already centred on μ), λ on both.
    pub(super) fn sweep_biased(
        &self,
        target: &mut [f32],
        bias: &mut [f32],
        other: &[f32],
        other_bias: &[f32],
        rows: &Csr,
    ) {
        let k = self.k;
        let m = k + 1;
        target
            .par_chunks_mut(k)
            .zip(bias.par_iter_mut())
            .enumerate()
            .with_min_len(64)
            .for_each_init(
                || (vec![0f64; m * m], vec![0f32; m]),
                |(a, b), (row, (x, bx))| {
                    let (idx, vals) = (rows.row(row), rows.row_values(row));
                    let lambda = if self.scale_reg {
                        self.reg * idx.len().max(1) as f32
                    } else {
                        self.reg
                    } as f64;
                    a.fill(0.0);
                    b.fill(0.0);
                    for (&i, &v) in idx.iter().zip(vals) {
                        let y = &other[i as usize * k..(i as usize + 1) * k];
                        let t = v - other_bias[i as usize];
                        for r in 0..m {
                            let fr = if r < k { y[r] } else { 1.0 } as f64;
                            for c in 0..=r {
                                let fc = if c < k { y[c] } else { 1.0 } as f64;
                                a[r * m + c] += fr * fc;
                            }
                            b[r] += t * fr as f32;
                        }
                    }
                    for r in 0..m {
                        for c in 0..r {
                            a[c * m + r] = a[r * m + c];
                        }
                        a[r * m + r] += lambda;
                    }
                    if let Some(z) = cholesky_solve(a, b, m) {
                        for (xj, v) in x.iter_mut().zip(&z) {
                            *xj = *v as f32;
                        }
                        *bx = z[k] as f32;
                    }
                },
            );
    }

    /// Solves every row of `target` given `other`; `rows` holds each row's
    /// (index into `other`, value) pairs.
    pub(super) fn sweep(&self, target: &mut [f32], other: &[f32], rows: &Csr) {
        let k = self.k;
        let gram = if self.implicit {
            Some(gram(other, k))
        } else {
            None
        };
        let gram = gram.as_deref();
        target
            .par_chunks_mut(k)
            .with_min_len(64)
            .enumerate()
            .for_each_init(
                || Scratch::new(k),
                |s, (row, x)| {
                    let (idx, vals) = (rows.row(row), rows.row_values(row));
                    let lambda = if self.scale_reg {
                        self.reg * idx.len().max(1) as f32
                    } else {
                        self.reg
                    };
                    let row = Row { idx, vals, lambda };
                    solve_row(x, other, row, gram, self, s);
                },
            );
    }
}

/// One row's problem: its entries and its λ.
#[derive(Clone, Copy)]
struct Row<'a> {
    idx: &'a [u32],
    vals: &'a [f32],
    lambda: f32,
}

fn solve_row(
    x: &mut [f32],
    y: &[f32],
    row: Row<'_>,
    gram: Option<&[f32]>,
    how: &Solve,
    s: &mut Scratch,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: `solve_row_avx2` only requires AVX2 and FMA, and the CPU
        // was just checked to support both.
        return unsafe { solve_row_avx2(x, y, row, gram, how, s) };
    }
    solve_row_generic::<Plain>(x, y, row, gram, how, s)
}

/// The same code compiled for AVX2 with fused multiply-adds: on a CPU with
/// them, results differ from the generic path in the last bits (a given
/// machine still repeats itself exactly).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn solve_row_avx2(
    x: &mut [f32],
    y: &[f32],
    row: Row<'_>,
    gram: Option<&[f32]>,
    how: &Solve,
    s: &mut Scratch,
) {
    solve_row_generic::<Fused>(x, y, row, gram, how, s)
}

#[inline(always)]
fn solve_row_generic<M: Madd>(
    x: &mut [f32],
    y: &[f32],
    row: Row<'_>,
    gram: Option<&[f32]>,
    how: &Solve,
    s: &mut Scratch,
) {
    match (gram, how.solver) {
        (Some(g), Solver::Cg) => {
            cg_row::<M>(x, y, row.idx, row.vals, g, row.lambda, how.cg_steps, s)
        }
        _ => cholesky_row(x, y, row.idx, row.vals, gram, row.lambda, s),
    }
}

/// The implicit-feedback objective per unit of confidence, as `implicit`
/// reports it: (Σ_ui c_ui (p_ui − x_u·y_i)² + Σ_u λ_u|x_u|² + Σ_i λ_i|y_i|²)
/// / Σ_ui c_ui, with p_ui = 1 and c_ui = 1 + e_ui on observed entries (e the
/// extra confidence stored in `by_user`), p = 0 and c = 1 elsewhere. The sum
/// over all U·I pairs is x_uᵀ(YᵀY)x_u plus a correction per observed entry,
/// so the cost is O(nnz·k + U·k²). Sums are taken in row order.
pub(super) fn implicit_loss(
    uf: &[f32],
    itf: &[f32],
    by_user: &Csr,
    by_item: &Csr,
    s: &Solve,
) -> f64 {
    let k = s.k;
    let g = gram(itf, k);
    let lambda = |n: usize| {
        (if s.scale_reg {
            s.reg * n.max(1) as f32
        } else {
            s.reg
        }) as f64
    };
    let per_user: Vec<(f64, f64)> = uf
        .par_chunks(k)
        .enumerate()
        .map(|(u, x)| {
            let (idx, extra) = (by_user.row(u), by_user.row_values(u));
            // xᵀ G x: every item's predicted score squared, at weight 1.
            let mut all = 0f64;
            for (r, xr) in x.iter().enumerate() {
                all += *xr as f64 * dot(&g[r * k..(r + 1) * k], x) as f64;
            }
            let mut obs = 0f64;
            let mut conf = 0f64;
            for (&i, &e) in idx.iter().zip(extra) {
                let sc = dot(x, &itf[i as usize * k..(i as usize + 1) * k]) as f64;
                let c = 1.0 + e as f64;
                obs += c * (1.0 - sc).powi(2) - sc * sc;
                conf += e as f64;
            }
            let reg = lambda(idx.len()) * dot(x, x) as f64;
            (all + obs + reg, conf)
        })
        .collect();
    let item_reg: f64 = itf
        .chunks_exact(k)
        .enumerate()
        .map(|(i, y)| lambda(by_item.row(i).len()) * dot(y, y) as f64)
        .sum();
    let (loss, extra) = per_user
        .iter()
        .fold((item_reg, 0f64), |a, p| (a.0 + p.0, a.1 + p.1));
    let pairs = (uf.len() / k.max(1)) as f64 * (itf.len() / k.max(1)) as f64;
    loss / (pairs + extra).max(1.0)
}

/// out = G x for a symmetric k × k row-major G, as Σ_j x_j G[j,:].
#[inline(always)]
fn gemv<M: Madd>(g: &[f32], x: &[f32], out: &mut [f32]) {
    weighted_row_sum_m::<M>(g, x, out);
}

/// A few conjugate-gradient steps on the implicit normal equations of one
/// row, starting from the current `x` (as implicit's `_solve_cg`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn cg_row<M: Madd>(
    x: &mut [f32],
    y: &[f32],
    idx: &[u32],
    conf: &[f32],
    g: &[f32],
    lambda: f32,
    steps: usize,
    s: &mut Scratch,
) {
    let k = x.len();
    // The row's factor rows, gathered once: the passes below then stream
    // through contiguous memory instead of jumping around `y` four times.
    s.ys.clear();
    for &i in idx {
        s.ys.extend_from_slice(&y[i as usize * k..(i as usize + 1) * k]);
    }
    let ys = &s.ys[..];
    // r = b − A x = Σ (1 + c − c (y·x)) y − (G + λI) x
    gemv::<M>(g, x, &mut s.r);
    for (rj, xj) in s.r.iter_mut().zip(x.iter()) {
        *rj = -*rj - lambda * xj;
    }
    for (yi, &c) in ys.chunks_exact(k).zip(conf) {
        axpy_m::<M>(1.0 + c - c * dot_m::<M>(yi, x), yi, &mut s.r);
    }
    s.p.copy_from_slice(&s.r);
    let mut rs_old = dot_m::<M>(&s.r, &s.r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..steps {
        // Ap = (G + λI) p + Σ c (y·p) y
        gemv::<M>(g, &s.p, &mut s.ap);
        axpy_m::<M>(lambda, &s.p, &mut s.ap);
        for (yi, &c) in ys.chunks_exact(k).zip(conf) {
            axpy_m::<M>(c * dot_m::<M>(yi, &s.p), yi, &mut s.ap);
        }
        let pap = dot_m::<M>(&s.p, &s.ap);
        if pap <= 0.0 || !pap.is_finite() {
            break;
        }
        let alpha = rs_old / pap;
        axpy_m::<M>(alpha, &s.p, x);
        axpy_m::<M>(-alpha, &s.ap, &mut s.r);
        let rs_new = dot_m::<M>(&s.r, &s.r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        for (pj, rj) in s.p.iter_mut().zip(&s.r) {
            *pj = rj + beta * *pj;
        }
        rs_old = rs_new;
    }
}

/// The exact solve of one row's normal equations by Cholesky. With `gram`
/// (implicit): A = G + Σ c y yᵀ + λI, b = Σ (1 + c) y; without (explicit):
/// A = Σ y yᵀ + λI, b = Σ v y.
pub(super) fn cholesky_row(
    x: &mut [f32],
    y: &[f32],
    idx: &[u32],
    vals: &[f32],
    gram: Option<&[f32]>,
    lambda: f32,
    s: &mut Scratch,
) {
    let k = x.len();
    s.a.resize(k * k, 0.0);
    s.l.resize(k * k, 0.0);
    match gram {
        Some(g) => s.a.copy_from_slice(g),
        None => s.a.fill(0.0),
    }
    s.b.fill(0.0);
    for (&i, &v) in idx.iter().zip(vals) {
        let yi = &y[i as usize * k..(i as usize + 1) * k];
        let (w, rhs) = if gram.is_some() {
            (v, 1.0 + v)
        } else {
            (1.0, v)
        };
        for (r, &yr) in yi.iter().enumerate() {
            axpy(w * yr, yi, &mut s.a[r * k..(r + 1) * k]);
        }
        axpy(rhs, yi, &mut s.b);
    }
    for j in 0..k {
        s.a[j * k + j] += lambda;
    }
    for (l, &a) in s.l.iter_mut().zip(&s.a) {
        *l = a as f64;
    }
    if let Some(sol) = cholesky_solve(&mut s.l, &s.b, k) {
        for (xj, v) in x.iter_mut().zip(sol) {
            *xj = v as f32;
        }
    }
}
