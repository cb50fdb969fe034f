//! Unit tests of the ALS trainer.

use std::sync::Arc;

use super::maths::{cg_row, cholesky_row, implicit_loss, Scratch, Solve};
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
