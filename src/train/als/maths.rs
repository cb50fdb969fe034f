//! The ALS trainer's maths: the row solvers (conjugate gradient and
//! Cholesky), the sweeps that run them over every row, and the losses.

use ndarray::{linalg::general_mat_mul, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

use super::Solver;
use crate::interactions::Csr;
use crate::linalg::{
    axpy, axpy_m, cholesky_solve, dot, dot_m, gram, weighted_row_sum_m, Fused, Madd, Plain,
};
use crate::model::frequency_lambda;
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
    /// ν and α₀ of the frequency-scaled λ (1 and 0: reg · n).
    pub reg_exponent: f32,
    pub reg_unobserved: f32,
}

/// The weights of the unobserved entries of the rows being solved (eALS).
#[derive(Clone, Copy)]
pub(super) enum Unobserved<'a> {
    /// Every unobserved entry weighs 1: plain implicit ALS.
    Uniform,
    /// Solving users: entry (u, i) weighs w[i], i the other side's index.
    ByColumn(&'a [f32]),
    /// Solving items: every entry of row i weighs w[i].
    ByRow(&'a [f32]),
}

impl<'a> Unobserved<'a> {
    /// The two sides' weights for item weights `w` (`None`: uniform).
    pub(super) fn sides(w: Option<&'a [f32]>) -> (Unobserved<'a>, Unobserved<'a>) {
        match w {
            None => (Unobserved::Uniform, Unobserved::Uniform),
            Some(w) => (Unobserved::ByColumn(w), Unobserved::ByRow(w)),
        }
    }
}

/// Σ_i w_i y_i y_iᵀ: the Gramian of the rows scaled by √w_i.
pub(super) fn weighted_gram(y: &[f32], k: usize, w: &[f32]) -> Vec<f32> {
    let mut scaled = y.to_vec();
    for (row, &wi) in scaled.chunks_exact_mut(k).zip(w) {
        let r = wi.max(0.0).sqrt();
        row.iter_mut().for_each(|v| *v *= r);
    }
    gram(&scaled, k)
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
    /// λ of a row of `n` entries, `n_other` the other side's row count:
    /// reg · (n + α₀ · n_other)^ν with `scale_reg` (reg · n at the defaults).
    pub(super) fn lambda(&self, n: usize, n_other: usize) -> f32 {
        frequency_lambda(
            self.reg,
            self.scale_reg,
            self.reg_exponent,
            self.reg_unobserved * n_other as f32,
            n.max(1) as f32,
        )
    }

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
    /// (index into `other`, value) pairs, `unobserved` the weights of the
    /// entries not in them (implicit).
    pub(super) fn sweep(
        &self,
        target: &mut [f32],
        other: &[f32],
        rows: &Csr,
        unobserved: Unobserved<'_>,
    ) {
        let k = self.k;
        let gram = match (self.implicit, unobserved) {
            (false, _) => None,
            (true, Unobserved::ByColumn(w)) => Some(weighted_gram(other, k, w)),
            (true, _) => Some(gram(other, k)),
        };
        let gram = gram.as_deref();
        let n_other = other.len() / k.max(1);
        if let (Some(g), Solver::Cg, true) = (gram, self.solver, k >= GEMM_MIN_K) {
            return self.sweep_blocks(target, other, rows, unobserved, g, n_other);
        }
        target
            .par_chunks_mut(k)
            .with_min_len(64)
            .enumerate()
            .for_each_init(
                || (Scratch::new(k), Vec::new()),
                |(s, w), (r, x)| {
                    let (idx, vals) = (rows.row(r), rows.row_values(r));
                    let lambda = self.lambda(idx.len(), n_other);
                    // Each entry's unobserved weight, which its confidence
                    // comes on top of; the Gramian's scale for this row.
                    let (base, gs) = match unobserved {
                        Unobserved::Uniform => (None, 1.0),
                        Unobserved::ByColumn(wc) => {
                            w.clear();
                            w.extend(idx.iter().map(|&i| wc[i as usize]));
                            (Some(&w[..]), 1.0)
                        }
                        Unobserved::ByRow(wr) => {
                            w.clear();
                            w.resize(idx.len(), wr[r]);
                            (Some(&w[..]), wr[r])
                        }
                    };
                    let row = Row {
                        idx,
                        vals,
                        lambda,
                        base,
                        gs,
                    };
                    solve_row(x, other, row, gram, self, s);
                },
            );
    }
}

/// Rows per block of the blocked CG solve.
const BLOCK: usize = 64;
/// From this k on, CG runs on blocks of rows so that the products of the
/// search directions with the k × k Gramian are one GEMM per block and step
/// instead of one GEMV per row: at large k those products are most of a
/// sweep, and a GEMM reads G once per block rather than once per row.
pub(super) const GEMM_MIN_K: usize = 128;

impl Solve {
    /// [`Self::sweep`] for implicit CG, [`BLOCK`] rows at a time.
    fn sweep_blocks(
        &self,
        target: &mut [f32],
        other: &[f32],
        rows: &Csr,
        unobserved: Unobserved<'_>,
        g: &[f32],
        n_other: usize,
    ) {
        let k = self.k;
        target.par_chunks_mut(k * BLOCK).enumerate().for_each_init(
            || (BlockScratch::default(), Vec::new()),
            |(s, w), (b, xs)| {
                let first = b * BLOCK;
                let n = xs.len() / k;
                // Every row's unobserved weights, one after another.
                w.clear();
                for r in first..first + n {
                    match unobserved {
                        Unobserved::Uniform => {}
                        Unobserved::ByColumn(wc) => {
                            w.extend(rows.row(r).iter().map(|&i| wc[i as usize]))
                        }
                        Unobserved::ByRow(wr) => {
                            w.extend(std::iter::repeat_n(wr[r], rows.row(r).len()))
                        }
                    }
                }
                let mut at = 0;
                let block: Vec<Row<'_>> = (first..first + n)
                    .map(|r| {
                        let (idx, vals) = (rows.row(r), rows.row_values(r));
                        let (base, gs) = match unobserved {
                            Unobserved::Uniform => (None, 1.0),
                            Unobserved::ByColumn(_) => (Some(&w[at..at + idx.len()]), 1.0),
                            Unobserved::ByRow(wr) => (Some(&w[at..at + idx.len()]), wr[r]),
                        };
                        if base.is_some() {
                            at += idx.len();
                        }
                        Row {
                            idx,
                            vals,
                            lambda: self.lambda(idx.len(), n_other),
                            base,
                            gs,
                        }
                    })
                    .collect();
                cg_block(xs, other, &block, g, self.cg_steps, s);
            },
        );
    }
}

/// Scratch of the blocked CG solve: per block, the gathered factor rows
/// and the k-vectors of every row.
#[derive(Default)]
pub(super) struct BlockScratch {
    ys: Vec<f32>,
    off: Vec<usize>,
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    rs: Vec<f32>,
    active: Vec<bool>,
}

pub(super) fn cg_block(
    xs: &mut [f32],
    y: &[f32],
    rows: &[Row<'_>],
    g: &[f32],
    steps: usize,
    s: &mut BlockScratch,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: `cg_block_avx2` only requires AVX2 and FMA, and the CPU
        // was just checked to support both.
        return unsafe { cg_block_avx2(xs, y, rows, g, steps, s) };
    }
    cg_block_generic::<Plain>(xs, y, rows, g, steps, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn cg_block_avx2(
    xs: &mut [f32],
    y: &[f32],
    rows: &[Row<'_>],
    g: &[f32],
    steps: usize,
    s: &mut BlockScratch,
) {
    cg_block_generic::<Fused>(xs, y, rows, g, steps, s)
}

/// out = a G for the rows of `a` (n × k) and the symmetric k × k G.
fn gemm_gram(a: &[f32], g: &[f32], out: &mut [f32], k: usize) {
    let n = a.len() / k;
    let a = ArrayView2::from_shape((n, k), a).expect("rows of k");
    let g = ArrayView2::from_shape((k, k), g).expect("k × k");
    let mut o = ArrayViewMut2::from_shape((n, k), out).expect("rows of k");
    general_mat_mul(1.0, &a, &g, 0.0, &mut o);
}

/// [`cg_row`] on a block of rows in lockstep: the same steps for each row
/// (a row that converges or breaks down stops, as there), with the
/// products by the Gramian done for the whole block at once.
#[inline(always)]
fn cg_block_generic<M: Madd>(
    xs: &mut [f32],
    y: &[f32],
    rows: &[Row<'_>],
    g: &[f32],
    steps: usize,
    s: &mut BlockScratch,
) {
    let n = rows.len();
    let k = xs.len() / n.max(1);
    s.ys.clear();
    s.off.clear();
    for row in rows {
        s.off.push(s.ys.len());
        for &i in row.idx {
            s.ys.extend_from_slice(&y[i as usize * k..(i as usize + 1) * k]);
        }
    }
    s.off.push(s.ys.len());
    for v in [&mut s.r, &mut s.p, &mut s.ap] {
        v.clear();
        v.resize(n * k, 0.0);
    }
    s.rs.clear();
    s.rs.resize(n, 0.0);
    s.active.clear();
    s.active.resize(n, true);
    // R = B − A X, row by row: Σ (w + c − c (y·x)) y − (gs·G + λI) x.
    gemm_gram(xs, g, &mut s.r, k);
    for (j, row) in rows.iter().enumerate() {
        let x = &xs[j * k..(j + 1) * k];
        let r = &mut s.r[j * k..(j + 1) * k];
        for (rj, xj) in r.iter_mut().zip(x) {
            *rj = -row.gs * *rj - row.lambda * xj;
        }
        let ys = s.ys[s.off[j]..s.off[j + 1]].chunks_exact(k);
        match row.base {
            None => {
                for (yi, &c) in ys.zip(row.vals) {
                    axpy_m::<M>(1.0 + c - c * dot_m::<M>(yi, x), yi, r);
                }
            }
            Some(w) => {
                for ((yi, &c), &wi) in ys.zip(row.vals).zip(w) {
                    axpy_m::<M>(wi + c - c * dot_m::<M>(yi, x), yi, r);
                }
            }
        }
        s.rs[j] = dot_m::<M>(r, r);
        s.active[j] = s.rs[j] >= 1e-20;
    }
    s.p.copy_from_slice(&s.r);
    for _ in 0..steps {
        if !s.active.iter().any(|&a| a) {
            break;
        }
        gemm_gram(&s.p, g, &mut s.ap, k);
        for (j, row) in rows.iter().enumerate() {
            if !s.active[j] {
                continue;
            }
            let p = &mut s.p[j * k..(j + 1) * k];
            let ap = &mut s.ap[j * k..(j + 1) * k];
            if row.gs != 1.0 {
                ap.iter_mut().for_each(|v| *v *= row.gs);
            }
            axpy_m::<M>(row.lambda, p, ap);
            for (yi, &c) in s.ys[s.off[j]..s.off[j + 1]].chunks_exact(k).zip(row.vals) {
                axpy_m::<M>(c * dot_m::<M>(yi, p), yi, ap);
            }
            let pap = dot_m::<M>(p, ap);
            if pap <= 0.0 || !pap.is_finite() {
                s.active[j] = false;
                continue;
            }
            let alpha = s.rs[j] / pap;
            let r = &mut s.r[j * k..(j + 1) * k];
            axpy_m::<M>(alpha, p, &mut xs[j * k..(j + 1) * k]);
            axpy_m::<M>(-alpha, ap, r);
            let rs_new = dot_m::<M>(r, r);
            if rs_new < 1e-20 {
                s.active[j] = false;
                continue;
            }
            let beta = rs_new / s.rs[j];
            for (pj, rj) in p.iter_mut().zip(r.iter()) {
                *pj = rj + beta * *pj;
            }
            s.rs[j] = rs_new;
        }
    }
}

/// One row's problem: its entries, its λ, and (eALS) each entry's
/// unobserved weight and the scale of the Gramian.
#[derive(Clone, Copy)]
pub(super) struct Row<'a> {
    pub idx: &'a [u32],
    pub vals: &'a [f32],
    pub lambda: f32,
    pub base: Option<&'a [f32]>,
    pub gs: f32,
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
        (Some(g), Solver::Cg) => cg_row::<M>(x, y, row, g, how.cg_steps, s),
        _ => cholesky_row(x, y, row, gram, s),
    }
}

/// The implicit-feedback objective per unit of confidence, as `implicit`
/// reports it: (Σ_ui c_ui (p_ui − x_u·y_i)² + Σ_u λ_u|x_u|² + Σ_i λ_i|y_i|²)
/// / Σ_ui c_ui, with p_ui = 1 and c_ui = w_i + e_ui on observed entries (e the
/// extra confidence stored in `by_user`), p = 0 and c = w_i elsewhere (w the
/// unobserved weights, 1 without them). The sum over all U·I pairs is
/// x_uᵀ(Σ w_i y_i y_iᵀ)x_u plus a correction per observed entry, so the cost
/// is O(nnz·k + U·k²). Sums are taken in row order.
pub(super) fn implicit_loss(
    uf: &[f32],
    itf: &[f32],
    by_user: &Csr,
    by_item: &Csr,
    s: &Solve,
    w: Option<&[f32]>,
) -> f64 {
    let k = s.k;
    let g = match w {
        Some(w) => weighted_gram(itf, k, w),
        None => gram(itf, k),
    };
    let (nu, ni) = (uf.len() / k.max(1), itf.len() / k.max(1));
    let lambda = |n: usize, n_other: usize| s.lambda(n, n_other) as f64;
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
                let wi = w.map_or(1.0, |w| w[i as usize] as f64);
                let c = wi + e as f64;
                obs += c * (1.0 - sc).powi(2) - wi * sc * sc;
                conf += e as f64;
            }
            let reg = lambda(idx.len(), ni) * dot(x, x) as f64;
            (all + obs + reg, conf)
        })
        .collect();
    let item_reg: f64 = itf
        .chunks_exact(k)
        .enumerate()
        .map(|(i, y)| lambda(by_item.row(i).len(), nu) * dot(y, y) as f64)
        .sum();
    let (loss, extra) = per_user
        .iter()
        .fold((item_reg, 0f64), |a, p| (a.0 + p.0, a.1 + p.1));
    let w_sum = w.map_or(ni as f64, |w| w.iter().map(|&v| v as f64).sum());
    let pairs = nu as f64 * w_sum;
    loss / (pairs + extra).max(1.0)
}

/// out = G x for a symmetric k × k row-major G, as Σ_j x_j G[j,:].
#[inline(always)]
fn gemv<M: Madd>(g: &[f32], x: &[f32], out: &mut [f32]) {
    weighted_row_sum_m::<M>(g, x, out);
}

/// A few conjugate-gradient steps on the implicit normal equations of one
/// row, starting from the current `x` (as implicit's `_solve_cg`):
/// (gs·G + Σ c y yᵀ + λI) x = Σ (w + c) y, w each entry's unobserved weight
/// (1 without them), gs the Gramian's scale (1 but for eALS item rows).
#[inline(always)]
pub(super) fn cg_row<M: Madd>(
    x: &mut [f32],
    y: &[f32],
    row: Row<'_>,
    g: &[f32],
    steps: usize,
    s: &mut Scratch,
) {
    let Row {
        idx,
        vals: conf,
        lambda,
        base,
        gs,
    } = row;
    let k = x.len();
    // The row's factor rows, gathered once: the passes below then stream
    // through contiguous memory instead of jumping around `y` four times.
    s.ys.clear();
    for &i in idx {
        s.ys.extend_from_slice(&y[i as usize * k..(i as usize + 1) * k]);
    }
    let ys = &s.ys[..];
    // r = b − A x = Σ (w + c − c (y·x)) y − (gs·G + λI) x
    gemv::<M>(g, x, &mut s.r);
    for (rj, xj) in s.r.iter_mut().zip(x.iter()) {
        *rj = -gs * *rj - lambda * xj;
    }
    match base {
        None => {
            for (yi, &c) in ys.chunks_exact(k).zip(conf) {
                axpy_m::<M>(1.0 + c - c * dot_m::<M>(yi, x), yi, &mut s.r);
            }
        }
        Some(w) => {
            for ((yi, &c), &wi) in ys.chunks_exact(k).zip(conf).zip(w) {
                axpy_m::<M>(wi + c - c * dot_m::<M>(yi, x), yi, &mut s.r);
            }
        }
    }
    s.p.copy_from_slice(&s.r);
    let mut rs_old = dot_m::<M>(&s.r, &s.r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..steps {
        // Ap = (gs·G + λI) p + Σ c (y·p) y
        gemv::<M>(g, &s.p, &mut s.ap);
        if gs != 1.0 {
            s.ap.iter_mut().for_each(|v| *v *= gs);
        }
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
/// (implicit): A = gs·G + Σ c y yᵀ + λI, b = Σ (w + c) y (w, gs as in
/// [`cg_row`]); without (explicit): A = Σ y yᵀ + λI, b = Σ v y.
pub(super) fn cholesky_row(
    x: &mut [f32],
    y: &[f32],
    row: Row<'_>,
    gram: Option<&[f32]>,
    s: &mut Scratch,
) {
    let Row {
        idx,
        vals,
        lambda,
        base,
        gs,
    } = row;
    let k = x.len();
    s.a.resize(k * k, 0.0);
    s.l.resize(k * k, 0.0);
    match gram {
        Some(g) => {
            for (a, &gv) in s.a.iter_mut().zip(g) {
                *a = gs * gv;
            }
        }
        None => s.a.fill(0.0),
    }
    s.b.fill(0.0);
    for (j, (&i, &v)) in idx.iter().zip(vals).enumerate() {
        let yi = &y[i as usize * k..(i as usize + 1) * k];
        let (w, rhs) = if gram.is_some() {
            (v, base.map_or(1.0, |b| b[j]) + v)
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
