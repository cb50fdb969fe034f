//! Unit tests of the ALS trainer.

use std::sync::Arc;

use super::maths::{
    cg_block, cg_row, cholesky_row, implicit_loss, BlockScratch, Row, Scratch, Solve, Unobserved,
    GEMM_MIN_K,
};
use super::{AlsParams, Solver};
use crate::interactions::{Csr, IdMap, Interactions};
use crate::linalg::{gram, Plain};

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
            reg_exponent: 1.0,
            reg_unobserved: 0.0,
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
        let got = implicit_loss(&uf, &itf, &by_user, &by_item, &s, None);
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

/// A row with uniform unobserved weights.
fn plain<'a>(idx: &'a [u32], vals: &'a [f32], lambda: f32) -> Row<'a> {
    Row {
        idx,
        vals,
        lambda,
        base: None,
        gs: 1.0,
    }
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
    cholesky_row(&mut x, &y, plain(&idx, &conf, 0.5), Some(&g), &mut s);
    for (a, b) in x.iter().zip(&want) {
        assert!((*a as f64 - b).abs() < 1e-4, "cholesky {a} vs {b}");
    }
    // CG with k steps from zero is exact in exact arithmetic.
    let mut x = vec![0.0f32; k];
    cg_row::<Plain>(&mut x, &y, plain(&idx, &conf, 0.5), &g, k, &mut s);
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
    cholesky_row(&mut x, &y, plain(&idx, &vals, 0.3), None, &mut s);
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

#[test]
fn setters_match_the_fields() {
    let a = AlsParams::default()
        .factors(8)
        .implicit(false)
        .solver(Solver::Cholesky)
        .scale_reg(false)
        .threads(Some(2));
    let b = AlsParams {
        factors: 8,
        implicit: false,
        solver: Solver::Cholesky,
        scale_reg: false,
        threads: Some(2),
        ..Default::default()
    };
    assert_eq!(a, b);
    assert!(a.solver(Solver::Cg).check().is_err());
}

/// A small implicit problem with every objective option, and the slow,
/// obviously-correct dense form of the loss it minimises:
/// Σ_ui W_ui (P_ui − x_u·y_i)² + Σ_u λ_u|x_u|² + Σ_i λ_i|y_i|², with
/// W_ui = w_i + e_ui observed, w_i unobserved (w ∝ f_i^ω, mean 1) and
/// λ = reg·(n + α₀·N)^ν, N the other side's count.
struct Dense {
    nu: usize,
    ni: usize,
    k: usize,
    /// Extra confidence e_ui, or None where unobserved.
    e: Vec<Option<f64>>,
    w: Vec<f64>,
    lu: Vec<f64>,
    li: Vec<f64>,
}

impl Dense {
    fn new(by_user: &Csr, by_item: &Csr, k: usize, s: &Solve, omega: f32) -> Dense {
        let (nu, ni) = (by_user.n_rows(), by_item.n_rows());
        let mut e = vec![None; nu * ni];
        for u in 0..nu {
            for (&i, &v) in by_user.row(u).iter().zip(by_user.row_values(u)) {
                e[u * ni + i as usize] = Some(v as f64);
            }
        }
        let f: Vec<f64> = (0..ni)
            .map(|i| by_item.row(i).len().max(1) as f64)
            .collect();
        let raw: Vec<f64> = f.iter().map(|f| f.powf(omega as f64)).collect();
        let mean = raw.iter().sum::<f64>() / ni as f64;
        let lam = |n: usize, other: usize| {
            s.reg as f64
                * (n.max(1) as f64 + s.reg_unobserved as f64 * other as f64)
                    .powf(s.reg_exponent as f64)
        };
        Dense {
            nu,
            ni,
            k,
            e,
            w: raw.iter().map(|r| r / mean).collect(),
            lu: (0..nu).map(|u| lam(by_user.row(u).len(), ni)).collect(),
            li: (0..ni).map(|i| lam(by_item.row(i).len(), nu)).collect(),
        }
    }

    fn weight(&self, u: usize, i: usize) -> (f64, f64) {
        match self.e[u * self.ni + i] {
            Some(e) => (self.w[i] + e, 1.0),
            None => (self.w[i], 0.0),
        }
    }

    fn score(&self, uf: &[f32], itf: &[f32], u: usize, i: usize) -> f64 {
        let k = self.k;
        (0..k)
            .map(|d| uf[u * k + d] as f64 * itf[i * k + d] as f64)
            .sum()
    }

    /// (loss, total weight) by brute force over every pair.
    fn loss(&self, uf: &[f32], itf: &[f32]) -> (f64, f64) {
        let k = self.k;
        let (mut loss, mut total) = (0f64, 0f64);
        for u in 0..self.nu {
            for i in 0..self.ni {
                let (c, p) = self.weight(u, i);
                loss += c * (p - self.score(uf, itf, u, i)).powi(2);
                total += c;
            }
        }
        let sq = |m: &[f32], r: usize| -> f64 {
            m[r * k..(r + 1) * k]
                .iter()
                .map(|&v| v as f64 * v as f64)
                .sum()
        };
        loss += (0..self.nu).map(|u| self.lu[u] * sq(uf, u)).sum::<f64>();
        loss += (0..self.ni).map(|i| self.li[i] * sq(itf, i)).sum::<f64>();
        (loss, total)
    }

    /// The loss's gradient in user u's row (`users`) or item u's row.
    fn gradient(&self, uf: &[f32], itf: &[f32], users: bool, r: usize) -> Vec<f64> {
        let k = self.k;
        let mut g = vec![0f64; k];
        let others = if users { self.ni } else { self.nu };
        for o in 0..others {
            let (u, i) = if users { (r, o) } else { (o, r) };
            let (c, p) = self.weight(u, i);
            let err = p - self.score(uf, itf, u, i);
            let v = if users { &itf[i * k..] } else { &uf[u * k..] };
            for d in 0..k {
                g[d] -= 2.0 * c * err * v[d] as f64;
            }
        }
        let (x, l) = if users {
            (&uf[r * k..], self.lu[r])
        } else {
            (&itf[r * k..], self.li[r])
        };
        for d in 0..k {
            g[d] += 2.0 * l * x[d] as f64;
        }
        g
    }
}

fn options_problem() -> (Csr, Csr, Vec<f32>, Vec<f32>, usize) {
    let (nu, ni, k) = (9usize, 11usize, 3usize);
    let (mut rows, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    for u in 0..nu as u32 {
        for i in 0..ni as u32 {
            // Uneven item degrees, so popularity weights differ.
            if (u * 5 + i * 3) % 4 == 0 || (i < 3 && u % 2 == 0) {
                rows.push(u);
                cols.push(i);
                vals.push(0.5 + (u + i) as f32 * 0.25);
            }
        }
    }
    let by_user = Csr::build(nu, &rows, &cols, Some(&vals));
    let by_item = Csr::build(ni, &cols, &rows, Some(&vals));
    let uf: Vec<f32> = (0..nu * k).map(|j| (j as f32 * 0.37).sin() * 0.5).collect();
    let itf: Vec<f32> = (0..ni * k).map(|j| (j as f32 * 0.91).cos() * 0.5).collect();
    (by_user, by_item, uf, itf, k)
}

fn solve_with(k: usize, solver: Solver, nu_exp: f32, a0: f32) -> Solve {
    Solve {
        k,
        reg: 0.2,
        scale_reg: true,
        implicit: true,
        solver,
        cg_steps: k,
        reg_exponent: nu_exp,
        reg_unobserved: a0,
    }
}

/// Each objective option (frequency-scaled λ, popularity-weighted
/// unobserved entries) against the dense brute-force loss: the loss the
/// trainer reports is that loss, and an exact half-sweep lands every row
/// where the dense gradient vanishes (the row's minimiser), for users and
/// items, with Cholesky and with k CG steps.
#[test]
fn objective_options_minimise_the_dense_loss() {
    let (by_user, by_item, uf0, itf0, k) = options_problem();
    let ni = by_item.n_rows();
    for (nu_exp, a0, omega) in [
        (1.0, 0.0, 0.0),
        (0.5, 0.0, 0.0),
        (0.7, 0.05, 0.0),
        (1.0, 0.0, 0.6),
        (0.8, 0.02, -0.4),
    ] {
        let counts: Vec<f32> = (0..ni).map(|i| by_item.row(i).len() as f32).collect();
        let w = crate::model::unobserved_weights(&counts, omega);
        assert_eq!(w.is_some(), omega != 0.0);
        let (us, is) = Unobserved::sides(w.as_deref());
        for solver in [Solver::Cholesky, Solver::Cg] {
            let s = solve_with(k, solver, nu_exp, a0);
            let d = Dense::new(&by_user, &by_item, k, &s, omega);
            let (want, total) = d.loss(&uf0, &itf0);
            let got = implicit_loss(&uf0, &itf0, &by_user, &by_item, &s, w.as_deref());
            assert!(
                (got - want / total).abs() < 1e-5 * got.abs(),
                "ν {nu_exp} α₀ {a0} ω {omega}: loss {got} vs {}",
                want / total
            );
            let (mut uf, mut itf) = (uf0.clone(), itf0.clone());
            s.sweep(&mut uf, &itf, &by_user, us);
            let after_users = d.loss(&uf, &itf).0;
            assert!(after_users <= want + 1e-9, "{after_users} > {want}");
            s.sweep(&mut itf, &uf, &by_item, is);
            assert!(d.loss(&uf, &itf).0 <= after_users + 1e-9);
            // Item rows are exact for these user factors; user rows were
            // exact for the old item factors: solve the users once more.
            let mut uf2 = uf.clone();
            s.sweep(&mut uf2, &itf, &by_user, us);
            for (users, f, r) in [(true, &uf2, by_user.n_rows()), (false, &uf, ni)] {
                let itf_used = &itf;
                for row in 0..r {
                    let g = d.gradient(f, itf_used, users, row);
                    let norm: f64 = g.iter().map(|v| v * v).sum::<f64>().sqrt();
                    assert!(
                        norm < 2e-3,
                        "{solver:?} ν {nu_exp} α₀ {a0} ω {omega}: {} row {row} gradient {norm}",
                        if users { "user" } else { "item" }
                    );
                }
            }
        }
    }
}

/// The default objective is the plain one: ν = 1, α₀ = 0, ω = 0, β = 0
/// give bit-identical factors to a fit that never heard of the options.
#[test]
fn plain_options_leave_the_fit_unchanged() {
    let x = blocks();
    let base = AlsParams {
        factors: 4,
        epochs: 3,
        threads: Some(1),
        ..Default::default()
    };
    let a = base
        .clone()
        .check()
        .unwrap()
        .fit(&x, None, &mut |_| {})
        .unwrap();
    let b = AlsParams {
        reg_exponent: 0.999,
        ..base.clone()
    }
    .check()
    .unwrap()
    .fit(&x, None, &mut |_| {})
    .unwrap();
    assert_eq!(a.meta().item_degree_beta, None);
    assert_ne!(a.user_factors(), b.user_factors(), "ν is read");
    let json = serde_json::to_value(&base).unwrap();
    let mut old = json.clone();
    for f in [
        "reg_exponent",
        "reg_unobserved",
        "unobserved_exponent",
        "item_degree_beta",
        "init",
    ] {
        old.as_object_mut().unwrap().remove(f);
    }
    // Parameters stored before the options existed read as the plain ones.
    let back: AlsParams = serde_json::from_value(old).unwrap();
    assert_eq!(back, base);
}

/// The score rescale: every scoring path ranks by (p·q_i)·d_i^β, d_i the
/// training count, checked against a brute-force ranking; it survives a
/// save and load, and β = 0 scores as before.
#[test]
fn item_degree_rescale_reaches_every_scoring_path() {
    let x = blocks();
    let beta = 0.7f32;
    let m = AlsParams {
        factors: 4,
        epochs: 4,
        threads: Some(1),
        item_degree_beta: beta,
        ..Default::default()
    }
    .check()
    .unwrap()
    .fit(&x, None, &mut |_| {})
    .unwrap();
    assert_eq!(m.meta().item_degree_beta, Some(beta));
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("m.safetensors");
    m.save(&path).unwrap();
    let loaded = crate::model::Model::load(&path).unwrap();
    let counts = x.item_counts();
    for model in [&m, &loaded] {
        assert_eq!(model.meta().item_degree_beta, Some(beta));
        let f = crate::score::Filters {
            exclude_seen: true,
            ..Default::default()
        };
        let mut all = Vec::new();
        let users: Vec<u32> = (0..model.n_users() as u32).collect();
        crate::score::batch::recommend_all(model, &users, 5, &f, &mut |b| {
            all.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        for (u, batch) in all {
            let mut want: Vec<(u32, f64)> = (0..model.n_items() as u32)
                .filter(|i| !model.seen(u).contains(i))
                .map(|i| {
                    let s: f64 = model
                        .user_vector(u)
                        .iter()
                        .zip(model.item_vector(i))
                        .map(|(a, b)| *a as f64 * *b as f64)
                        .sum();
                    (i, s * (counts[i as usize].max(1) as f64).powf(beta as f64))
                })
                .collect();
            want.sort_by(|a, b| b.1.total_cmp(&a.1));
            let single = crate::score::recommend_index(model, u, 5, &f);
            for (got, w) in [(&batch, &want), (&single, &want)] {
                for (g, w) in got.iter().zip(w.iter()) {
                    assert!(
                        (g.1 as f64 - w.1).abs() < 1e-4,
                        "user {u}: {got:?} vs {w:?}"
                    );
                }
            }
        }
    }
    // Evaluation ranks with the rescale too: with a huge β the most
    // popular unseen items win, so its metrics differ from β = 0's.
    let plain = AlsParams {
        factors: 4,
        epochs: 4,
        threads: Some(1),
        ..Default::default()
    }
    .check()
    .unwrap()
    .fit(&x, None, &mut |_| {})
    .unwrap();
    assert_eq!(plain.scoring_item_factors(), plain.item_factors());
    assert_ne!(m.scoring_item_factors(), m.item_factors());
}

/// Fold-in solves the training objective's user row: with every option
/// set, folding in a user's own items gives the exact user solve.
#[test]
fn fold_in_solves_the_options_objective() {
    let x = blocks();
    let p = AlsParams {
        factors: 4,
        epochs: 4,
        threads: Some(1),
        solver: Solver::Cholesky,
        reg_exponent: 0.7,
        reg_unobserved: 0.05,
        unobserved_exponent: 0.5,
        ..Default::default()
    };
    let m = p
        .clone()
        .check()
        .unwrap()
        .fit(&x, None, &mut |_| {})
        .unwrap();
    let by_user = x.by_user();
    let mut by_user_conf = by_user.clone();
    by_user_conf.values.iter_mut().for_each(|v| *v *= p.alpha);
    let counts: Vec<f32> = x.item_counts().into_iter().map(|c| c as f32).collect();
    let w = crate::model::unobserved_weights(&counts, p.unobserved_exponent);
    let s = Solve {
        k: 4,
        reg: p.reg,
        scale_reg: true,
        implicit: true,
        solver: Solver::Cholesky,
        cg_steps: 4,
        reg_exponent: p.reg_exponent,
        reg_unobserved: p.reg_unobserved,
    };
    let mut uf = m.user_factors().to_vec();
    s.sweep(
        &mut uf,
        m.item_factors(),
        &by_user_conf,
        Unobserved::sides(w.as_deref()).0,
    );
    for u in [0u32, 7, 25] {
        let given: Vec<(String, Option<f32>)> = by_user
            .row(u as usize)
            .iter()
            .zip(by_user.row_values(u as usize))
            .map(|(&i, &v)| (m.item_ids().key(i).to_string(), Some(v)))
            .collect();
        let f = crate::score::foldin::fold_in(&m, &given).unwrap();
        for (a, b) in f
            .vector
            .iter()
            .zip(&uf[u as usize * 4..(u as usize + 1) * 4])
        {
            assert!(
                (a - b).abs() < 1e-4,
                "user {u}: {:?} vs {:?}",
                f.vector,
                &uf[u as usize * 4..]
            );
        }
    }
}

/// The blocked CG (Gramian products as a GEMM) takes the same steps as the
/// row-by-row CG: rows of different lengths, weights and Gramian scales,
/// one that starts converged, after 1, 2 and k steps.
#[test]
fn blocked_cg_matches_the_row_solver() {
    let k = 8;
    let (y, idx, conf) = problem(k, 30);
    let g = gram(&y, k);
    let w: Vec<f32> = (0..30).map(|i| 0.5 + (i % 5) as f32 * 0.3).collect();
    let rows: Vec<Row<'_>> = (0..7)
        .map(|j| {
            let n = 3 + j * 3;
            Row {
                idx: &idx[..n.min(idx.len())],
                vals: &conf[..n.min(idx.len())],
                lambda: 0.2 + j as f32 * 0.1,
                base: (j % 2 == 1).then(|| &w[..n.min(idx.len())]),
                gs: if j % 3 == 2 { 0.7 } else { 1.0 },
            }
        })
        .collect();
    for steps in [1, 2, k] {
        let mut xs: Vec<f32> = (0..rows.len() * k)
            .map(|j| (j as f32 * 0.3).sin() * 0.1)
            .collect();
        // Row 0 at its solution already (from k steps): it must stay put.
        let mut s = Scratch::new(k);
        cg_row::<Plain>(&mut xs[..k], &y, rows[0], &g, 64, &mut s);
        let mut want = xs.clone();
        for (j, row) in rows.iter().enumerate() {
            cg_row::<Plain>(&mut want[j * k..(j + 1) * k], &y, *row, &g, steps, &mut s);
        }
        cg_block(&mut xs, &y, &rows, &g, steps, &mut BlockScratch::default());
        for (a, b) in xs.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "{steps} steps: {a} vs {b}");
        }
    }
    // A fit at k = GEMM_MIN_K takes the blocked path and still learns.
    let x = blocks();
    let m = AlsParams {
        factors: GEMM_MIN_K,
        epochs: 3,
        threads: Some(1),
        ..Default::default()
    }
    .check()
    .unwrap()
    .fit(&x, None, &mut |_| {})
    .unwrap();
    let a_item = (0..15u32).find(|&i| !m.seen(0).contains(&i)).unwrap();
    for b_item in 15..30u32 {
        assert!(m.predict(0, a_item) > m.predict(0, b_item));
    }
}
