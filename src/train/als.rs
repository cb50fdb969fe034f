//! Alternating least squares, for implicit feedback (Hu, Koren & Volinsky,
//! ICDM 2008) and for ratings (weighted-λ regularization, as Spark).
//!
//! Each sweep solves every user row given the item factors, then every item
//! row given the user factors; rows are independent least-squares problems,
//! solved in parallel (`par_chunks_mut`, per-thread scratch), so the result
//! does not depend on the thread count.
//!
//! Implicit: row u minimizes Σ_i c_ui (p_ui − x_u·y_i)² + λ_u |x_u|² with
//! c_ui = 1 + conf(r_ui) for observed entries and 1 elsewhere. The normal
//! equations are (YᵀY + Σ_{i∈u} conf_i y_i y_iᵀ + λ_u I) x_u = Σ_{i∈u} c_ui y_i;
//! YᵀY is computed once per sweep (ndarray's matrix product), so a row costs
//! O(k² + n_u k) per conjugate-gradient step (Takács et al., RecSys 2011),
//! warm-started from the previous sweep. `Cholesky` solves exactly (the
//! reference). Explicit: (Σ_{i∈u} y_i y_iᵀ + λ_u I) x_u = Σ_{i∈u} (r_ui − μ) y_i.
//! With `scale_reg` (default), λ_u = reg · n_u as in Spark's ALS.

use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{with_threads, EarlyStop, EpochReport, RankCheck, Validation};
use crate::error::{Error, Result};
use crate::interactions::{Csr, Interactions};
use crate::linalg::{
    axpy, axpy_m, cholesky_solve, dot, dot_m, gram, weighted_row_sum_m, Fused, Madd, Plain,
};
pub use crate::model::Confidence;
use crate::model::FoldInRule;
use crate::model::{Model, ModelMeta, ModelParts};

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    Cholesky,
    Cg,
}

/// Parameters of the ALS trainer.
///
/// | Name | Default | Purpose | Range |
/// |---|---|---|---|
/// | factors | 128 | latent dimensions k | 1..=1024 |
/// | epochs | 15 | sweeps (users then items) | 1..=10000 |
/// | implicit | true | implicit feedback (confidence-weighted) or ratings | |
/// | reg | 0.1 | L2 penalty λ (per entry of the row with `scale_reg`) | ≥ 0 |
/// | scale_reg | true | λ_u = reg · n_u (Spark's weighted-λ) | |
/// | alpha | 1.0 | confidence scale | > 0 |
/// | confidence | linear | `linear` 1 + αr or `log` 1 + α ln(1 + r/ε) | |
/// | eps | 1.0 | ε of the log confidence | > 0 |
/// | solver | cg | `cg` (implicit only) or `cholesky` (exact) | |
/// | cg_steps | 2 | conjugate-gradient steps per row and sweep (warm-started, so 2 suffice: P@10 0.2706 vs 0.2714 with 3 on ml-1m) | 1..=64 |
/// | init_std | 0.01 | std-dev of the initial factors | ≥ 0 |
/// | seed | 42 | RNG seed | any |
/// | threads | all cores | worker threads | ≥ 1 |
/// | patience | none | early stopping on the validation metric | ≥ 1 |
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AlsParams {
    pub factors: usize,
    pub epochs: usize,
    pub implicit: bool,
    pub reg: f32,
    pub scale_reg: bool,
    pub alpha: f32,
    pub confidence: Confidence,
    pub eps: f32,
    pub solver: Solver,
    pub cg_steps: usize,
    pub init_std: f32,
    pub seed: u64,
    pub threads: Option<usize>,
    pub patience: Option<usize>,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 128,
            epochs: 15,
            implicit: true,
            // The confidence and λ defaults are fold-in's rule, so a model
            // and its fold-in agree by construction.
            reg: FoldInRule::DEFAULT.reg,
            scale_reg: FoldInRule::DEFAULT.scale_reg,
            alpha: FoldInRule::DEFAULT.alpha,
            confidence: FoldInRule::DEFAULT.confidence,
            eps: FoldInRule::DEFAULT.eps,
            solver: Solver::Cg,
            cg_steps: 2,
            init_std: 0.01,
            seed: 42,
            threads: None,
            patience: None,
        }
    }
}

/// [`AlsParams`] that passed [`AlsParams::check`].
#[derive(Clone, Debug)]
pub struct AlsValidParams(AlsParams);

impl AlsParams {
    /// The defaults for ratings (explicit ALS): exact row solves with
    /// biases; a small k and a firmer λ suit them. Factors drawn at 0.1 leave
    /// the near-zero saddle in the first sweeps (test RMSE, ml-100k u1 /
    /// ml-1m 80-20: λ 0.15 0.9289 / 0.8869; λ 0.11 with init 0.1 0.9294 /
    /// 0.8632).
    ///
    /// | Name | Default for ratings |
    /// |---|---|
    /// | factors | 16 |
    /// | epochs | 10 |
    /// | reg | 0.11 |
    /// | solver | cholesky |
    /// | init_std | 0.1 |
    pub fn explicit() -> AlsParams {
        AlsParams {
            implicit: false,
            solver: Solver::Cholesky,
            factors: 16,
            reg: 0.11,
            epochs: 10,
            init_std: 0.1,
            ..Default::default()
        }
    }

    /// The defaults for implicit feedback or for ratings.
    pub fn for_feedback(implicit: bool) -> AlsParams {
        if implicit {
            AlsParams::default()
        } else {
            AlsParams::explicit()
        }
    }

    pub fn check(self) -> Result<AlsValidParams> {
        let p = &self;
        if !(1..=1024).contains(&p.factors) {
            return Err(Error::param("factors", p.factors, "must be in 1..=1024"));
        }
        if !(1..=10_000).contains(&p.epochs) {
            return Err(Error::param("epochs", p.epochs, "must be in 1..=10000"));
        }
        if !(p.reg >= 0.0 && p.reg.is_finite()) {
            return Err(Error::param("reg", p.reg, "must be a finite number ≥ 0"));
        }
        if !(p.alpha > 0.0 && p.alpha.is_finite()) {
            return Err(Error::param(
                "alpha",
                p.alpha,
                "must be a finite number > 0",
            ));
        }
        if !(p.eps > 0.0 && p.eps.is_finite()) {
            return Err(Error::param("eps", p.eps, "must be a finite number > 0"));
        }
        if !(1..=64).contains(&p.cg_steps) {
            return Err(Error::param("cg_steps", p.cg_steps, "must be in 1..=64"));
        }
        if !(p.init_std >= 0.0 && p.init_std.is_finite()) {
            return Err(Error::param(
                "init_std",
                p.init_std,
                "must be a finite number ≥ 0",
            ));
        }
        if p.threads == Some(0) {
            return Err(Error::param("threads", 0, "must be ≥ 1"));
        }
        if p.patience == Some(0) {
            return Err(Error::param("patience", 0, "must be ≥ 1"));
        }
        if !p.implicit && p.solver == Solver::Cg {
            return Err(Error::param(
                "solver",
                "cg",
                "cg is for implicit feedback; explicit ALS solves each row exactly (cholesky)",
            ));
        }
        if !p.implicit && p.reg <= 0.0 {
            // Σ y yᵀ is singular for rows with fewer than k entries.
            return Err(Error::param("reg", p.reg, "explicit ALS needs reg > 0"));
        }
        Ok(AlsValidParams(self))
    }
}

impl AlsValidParams {
    pub fn params(&self) -> &AlsParams {
        &self.0
    }

    /// Trains on `train` (values are counts/weights for implicit models,
    /// ratings otherwise). With `valid`: per-epoch validation (nDCG@10 for
    /// implicit models, RMSE otherwise) and, with `patience`, early stopping.
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
        with_threads(self.0.threads, || {
            self.fit_inner(train, valid, prev, progress)
        })?
    }

    fn fit_inner(
        &self,
        train: &Interactions,
        valid: Option<&Validation>,
        prev: Option<&Model>,
        progress: &mut (dyn FnMut(&EpochReport) + Send),
    ) -> Result<Model> {
        let p = &self.0;
        let k = p.factors;
        let mu = if p.implicit {
            0.0
        } else {
            train.mean_value() as f32
        };
        // Row values: extra confidence conf(r) (implicit) or r − μ (explicit).
        let conf = |r: f32| match p.confidence {
            Confidence::Linear => p.alpha * r,
            Confidence::Log => p.alpha * (1.0 + r / p.eps).ln(),
        };
        let mut by_user = train.by_user();
        let mut by_item = train.by_item();
        for c in [&mut by_user, &mut by_item] {
            c.values.iter_mut().for_each(|v| {
                *v = if p.implicit {
                    conf(*v).max(0.0)
                } else {
                    *v - mu
                }
            });
        }
        let start = super::warm::start(train, k, p.init_std, p.seed, p.implicit, mu, prev)?;
        let warm = start.info;
        let (mut uf, mut itf) = (start.uf, start.itf);
        let (rmin, rmax) = super::sgd::value_range(&train.values);

        let valid = valid.filter(|v| !v.is_empty());
        let rank_check = if p.implicit {
            valid.and_then(|v| RankCheck::new(train, v, p.seed))
        } else {
            None
        };
        let mut history = Vec::with_capacity(p.epochs);
        let mut stop = EarlyStop::new(p.patience);
        let mut best: Option<[Vec<f32>; 2]> = None;
        let solve = Solve {
            k,
            reg: p.reg,
            scale_reg: p.scale_reg,
            implicit: p.implicit,
            solver: p.solver,
            cg_steps: p.cg_steps,
        };
        // Explicit ALS learns user and item biases with the factors.
        let (mut ub, mut ib) = (start.bu, start.bi);
        let began = Instant::now();
        for epoch in 1..=p.epochs {
            let t0 = Instant::now();
            if p.implicit {
                solve.sweep(&mut uf, &itf, &by_user);
                solve.sweep(&mut itf, &uf, &by_item);
            } else {
                solve.sweep_biased(&mut uf, &mut ub, &itf, &ib, &by_user);
                solve.sweep_biased(&mut itf, &mut ib, &uf, &ub, &by_item);
            }
            let seconds = t0.elapsed().as_secs_f64();
            let mut report = EpochReport {
                epoch,
                seconds,
                entries_per_second: train.len() as f64 / seconds.max(1e-12),
                ..Default::default()
            };
            if !p.implicit {
                report.train_rmse = Some(rmse_rows(&by_user, &uf, &itf, &ub, &ib, k));
                report.valid_rmse = valid.map(|v| {
                    let se: f64 = (0..v.users.len())
                        .map(|n| {
                            let (u, i) = (v.users[n] as usize, v.items[n] as usize);
                            let pred = (mu
                                + ub[u]
                                + ib[i]
                                + dot(&uf[u * k..(u + 1) * k], &itf[i * k..(i + 1) * k]))
                            .clamp(rmin, rmax);
                            ((v.values[n] - pred) as f64).powi(2)
                        })
                        .sum();
                    (se / v.users.len() as f64).sqrt()
                });
            } else {
                // The loss costs about a quarter of a CG sweep, so it is
                // paid only when per-epoch monitoring was asked for.
                if valid.is_some() {
                    report.train_loss = Some(implicit_loss(&uf, &itf, &by_user, &by_item, &solve));
                }
                if let Some(rc) = &rank_check {
                    let (pr, nd) = rc.measure(k, &uf, &itf, None);
                    report.valid_precision = Some(pr);
                    report.valid_ndcg = Some(nd);
                }
            }
            report.elapsed_seconds = Some(began.elapsed().as_secs_f64());
            progress(&report);
            let metric = report.valid_ndcg.map(|v| -v).or(report.valid_rmse);
            history.push(report);
            if let Some(m) = metric {
                if stop.observe_keeping(epoch, m, p.epochs, &mut best, || [uf.clone(), itf.clone()])
                {
                    break;
                }
            }
        }
        if let Some([a, b]) = best {
            (uf, itf) = (a, b);
        }
        let has_metric = history
            .iter()
            .any(|h: &EpochReport| h.valid_ndcg.is_some() || h.valid_rmse.is_some());
        // The epoch whose factors are kept: the best one only when
        // early stopping restored it, else the last.
        let best_epoch = if has_metric && p.patience.is_some() {
            stop.best_epoch()
        } else {
            history.len()
        };
        let algo = if p.implicit { "als-implicit" } else { "als" };
        let range = if p.implicit { (0.0, 0.0) } else { (rmin, rmax) };
        let mut meta = ModelMeta::new(
            algo,
            p.implicit,
            k,
            serde_json::to_value(p).unwrap_or_default(),
            history,
            best_epoch,
            range,
        );
        meta.warm_start = warm;
        // The model is built from `train`; the rows are no longer needed.
        drop((by_user, by_item));
        Ok(Model::from_parts(ModelParts {
            user_factors: uf,
            item_factors: itf,
            user_bias: ub,
            item_bias: ib,
            global_mean: mu,
            train,
            meta,
        }))
    }
}

/// Training RMSE of an explicit model (predictions unclipped, centred values).
fn rmse_rows(rows: &Csr, uf: &[f32], itf: &[f32], ub: &[f32], ib: &[f32], k: usize) -> f64 {
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

#[derive(Clone, Copy)]
struct Solve {
    k: usize,
    reg: f32,
    scale_reg: bool,
    implicit: bool,
    solver: Solver,
    cg_steps: usize,
}

/// Per-thread scratch, allocated once per sweep and thread.
impl Scratch {
    /// The k × k buffers are only sized when a Cholesky solve needs them.
    fn new(k: usize) -> Scratch {
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

struct Scratch {
    ys: Vec<f32>,
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    l: Vec<f64>,
}

impl Solve {
    /// Solves every row of `target` given `other`; `rows` holds each row's
    /// (index into `other`, value) pairs.
    /// Explicit rows with a bias: row r solves for [x_r, b_r] with features
    /// [y_i, 1] and targets v − b_i (v already centred on μ), λ on both.
    fn sweep_biased(
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

    fn sweep(&self, target: &mut [f32], other: &[f32], rows: &Csr) {
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
fn implicit_loss(uf: &[f32], itf: &[f32], by_user: &Csr, by_item: &Csr, s: &Solve) -> f64 {
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
fn cg_row<M: Madd>(
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
fn cholesky_row(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::IdMap;
    use std::sync::Arc;

    #[test]
    fn implicit_loss_matches_the_sum_over_all_pairs() {
        let (nu, ni, k) = (7usize, 9usize, 3usize);
        let uf: Vec<f32> = (0..nu * k).map(|j| (j as f32 * 0.37).sin()).collect();
        let itf: Vec<f32> = (0..ni * k).map(|j| (j as f32 * 0.91).cos()).collect();
        let (mut rows, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
        for u in 0..nu as u32 {
            for i in 0..ni as u32 {
                if (u * 5 + i * 3) % 4 == 0 {
                    rows.push(u);
                    cols.push(i);
                    vals.push(1.0 + (u + i) as f32 * 0.5);
                }
            }
        }
        let by_user = Csr::build(nu, &rows, &cols, Some(&vals));
        let by_item = Csr::build(ni, &cols, &rows, Some(&vals));
        for scale_reg in [false, true] {
            let s = Solve {
                k,
                reg: 0.3,
                scale_reg,
                implicit: true,
                solver: Solver::Cg,
                cg_steps: 2,
            };
            let (mut loss, mut conf) = (0f64, 0f64);
            for u in 0..nu {
                for i in 0..ni {
                    let sc: f64 = (0..k)
                        .map(|d| uf[u * k + d] as f64 * itf[i * k + d] as f64)
                        .sum();
                    let e = (0..rows.len())
                        .find(|&n| rows[n] as usize == u && cols[n] as usize == i)
                        .map(|n| vals[n] as f64);
                    let (c, p) = e.map_or((1.0, 0.0), |e| (1.0 + e, 1.0));
                    loss += c * (p - sc).powi(2);
                    conf += c;
                }
            }
            let sq = |m: &[f32], r: usize| -> f64 {
                m[r * k..(r + 1) * k].iter().map(|&v| (v * v) as f64).sum()
            };
            for u in 0..nu {
                let n = if scale_reg {
                    by_user.row(u).len().max(1)
                } else {
                    1
                };
                loss += 0.3 * n as f64 * sq(&uf, u);
            }
            for i in 0..ni {
                let n = if scale_reg {
                    by_item.row(i).len().max(1)
                } else {
                    1
                };
                loss += 0.3 * n as f64 * sq(&itf, i);
            }
            let got = implicit_loss(&uf, &itf, &by_user, &by_item, &s);
            let want = loss / conf;
            assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
        }
    }

    /// Dense Gaussian elimination with partial pivoting, in f64: the slow,
    /// obviously-correct reference for both solvers.
    #[allow(clippy::needless_range_loop)]
    fn dense_solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
        let n = b.len();
        for c in 0..n {
            let piv = (c..n)
                .max_by(|&i, &j| a[i][c].abs().partial_cmp(&a[j][c].abs()).unwrap())
                .unwrap();
            a.swap(c, piv);
            b.swap(c, piv);
            for r in c + 1..n {
                let f = a[r][c] / a[c][c];
                for cc in c..n {
                    a[r][cc] -= f * a[c][cc];
                }
                b[r] -= f * b[c];
            }
        }
        let mut x = vec![0.0; n];
        for r in (0..n).rev() {
            x[r] = (b[r] - (r + 1..n).map(|c| a[r][c] * x[c]).sum::<f64>()) / a[r][r];
        }
        x
    }

    fn problem(k: usize, n_other: usize) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
        let y: Vec<f32> = (0..n_other * k)
            .map(|j| ((j * 7919 % 211) as f32 / 105.0) - 1.0)
            .collect();
        let idx: Vec<u32> = (0..n_other as u32).filter(|i| i % 3 != 1).collect();
        let conf: Vec<f32> = idx.iter().map(|&i| 1.0 + (i % 4) as f32).collect();
        (y, idx, conf)
    }

    fn reference_implicit(y: &[f32], idx: &[u32], conf: &[f32], k: usize, lambda: f64) -> Vec<f64> {
        let n = y.len() / k;
        let mut a = vec![vec![0.0f64; k]; k];
        let mut b = vec![0.0f64; k];
        for i in 0..n {
            let c = idx
                .iter()
                .position(|&j| j as usize == i)
                .map_or(0.0, |p| conf[p] as f64);
            let pref = if c > 0.0 { 1.0 } else { 0.0 };
            for r in 0..k {
                for cc in 0..k {
                    a[r][cc] += (1.0 + c) * y[i * k + r] as f64 * y[i * k + cc] as f64;
                }
                b[r] += (1.0 + c) * pref * y[i * k + r] as f64;
            }
        }
        for (r, row) in a.iter_mut().enumerate() {
            row[r] += lambda;
        }
        dense_solve(a, b)
    }

    #[test]
    fn implicit_solvers_match_a_dense_reference() {
        let k = 6;
        let (y, idx, conf) = problem(k, 20);
        let want = reference_implicit(&y, &idx, &conf, k, 0.5);
        let g = gram(&y, k);
        let mut s = Scratch::new(k);
        let mut x = vec![0.0f32; k];
        cholesky_row(&mut x, &y, &idx, &conf, Some(&g), 0.5, &mut s);
        for (a, b) in x.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-4, "cholesky {a} vs {b}");
        }
        // CG with k steps from zero is exact in exact arithmetic.
        let mut x = vec![0.0f32; k];
        cg_row::<Plain>(&mut x, &y, &idx, &conf, &g, 0.5, k, &mut s);
        for (a, b) in x.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-3, "cg {a} vs {b}");
        }
    }

    #[test]
    fn explicit_solve_matches_a_dense_reference() {
        let k = 5;
        let (y, idx, vals) = problem(k, 15);
        let mut a = vec![vec![0.0f64; k]; k];
        let mut b = vec![0.0f64; k];
        for (&i, &v) in idx.iter().zip(&vals) {
            for r in 0..k {
                for c in 0..k {
                    a[r][c] += y[i as usize * k + r] as f64 * y[i as usize * k + c] as f64;
                }
                b[r] += v as f64 * y[i as usize * k + r] as f64;
            }
        }
        for (r, row) in a.iter_mut().enumerate() {
            row[r] += 0.3;
        }
        let want = dense_solve(a, b);
        let mut s = Scratch::new(k);
        let mut x = vec![0.0f32; k];
        cholesky_row(&mut x, &y, &idx, &vals, None, 0.3, &mut s);
        for (a, b) in x.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    fn blocks() -> Interactions {
        // Two groups of users who like two disjoint groups of items.
        let mut users = Vec::new();
        let mut items = Vec::new();
        for u in 0..40u32 {
            for i in 0..30u32 {
                if (u < 20) == (i < 15) && (u + i) % 3 != 0 {
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
            user_ids: Arc::new(IdMap::from_ints((0..40).collect())),
            item_ids: Arc::new(IdMap::from_ints((0..30).collect())),
        }
    }

    #[test]
    fn implicit_als_learns_the_block_structure_and_is_deterministic() {
        let x = blocks();
        for solver in [Solver::Cg, Solver::Cholesky] {
            let p = AlsParams {
                factors: 4,
                epochs: 8,
                solver,
                threads: Some(2),
                ..Default::default()
            }
            .check()
            .unwrap();
            let m = p.fit(&x, None, &mut |_| {}).unwrap();
            // User 0 (group A) scores an unseen group-A item above every group-B item.
            let a_item = (0..15u32).find(|&i| !m.seen(0).contains(&i)).unwrap();
            for b_item in 15..30u32 {
                assert!(m.predict(0, a_item) > m.predict(0, b_item), "{solver:?}");
            }
            let p1 = AlsParams {
                factors: 4,
                epochs: 8,
                solver,
                threads: Some(1),
                ..Default::default()
            }
            .check()
            .unwrap();
            let m1 = p1.fit(&x, None, &mut |_| {}).unwrap();
            assert_eq!(
                m.user_factors(),
                m1.user_factors(),
                "thread count changed the result"
            );
        }
    }

    /// With as many CG steps as dimensions, each row solve is exact, so a
    /// whole fit matches the Cholesky fit factor for factor.
    #[test]
    fn cg_with_k_steps_gives_the_cholesky_factors() {
        let x = blocks();
        let fit = |solver, cg_steps| {
            AlsParams {
                factors: 4,
                epochs: 5,
                solver,
                cg_steps,
                threads: Some(1),
                ..Default::default()
            }
            .check()
            .unwrap()
            .fit(&x, None, &mut |_| {})
            .unwrap()
        };
        let (a, b) = (fit(Solver::Cg, 4), fit(Solver::Cholesky, 4));
        for (p, q) in a
            .user_factors()
            .iter()
            .zip(b.user_factors())
            .chain(a.item_factors().iter().zip(b.item_factors()))
        {
            assert!((p - q).abs() < 1e-4, "{p} vs {q}");
        }
    }

    #[test]
    fn bad_params_are_refused() {
        assert!(AlsParams {
            alpha: 0.0,
            ..Default::default()
        }
        .check()
        .is_err());
        assert!(AlsParams {
            cg_steps: 0,
            ..Default::default()
        }
        .check()
        .is_err());
    }
}
