//! Unit tests of the SGD trainer.

use std::sync::Arc;

use super::maths::{sgd_block, sgd_block_general, Extra, Step, SIDE};
use super::SgdParams;
use crate::interactions::{IdMap, Interactions};
use crate::train::strata::Entry;
use crate::train::Validation;

fn tiny(nu: u32, ni: u32) -> Interactions {
    let mut users = Vec::new();
    let mut items = Vec::new();
    let mut values = Vec::new();
    for u in 0..nu {
        for i in 0..ni {
            if (u * 31 + i * 17) % 3 != 0 {
                users.push(u);
                items.push(i);
                values.push(1.0 + ((u % 4) as f32 + (i % 5) as f32) * 0.5);
            }
        }
    }
    Interactions {
        users,
        items,
        values,
        times: None,
        user_ids: Arc::new(IdMap::from_ints((0..nu as i64).collect())),
        item_ids: Arc::new(IdMap::from_ints((0..ni as i64).collect())),
    }
}

/// The SGD step against a slow, obviously-correct reference written with
/// plain loops in f64.
#[test]
fn block_step_matches_a_slow_reference() {
    let k = 5;
    let entries = vec![
        Entry { u: 0, i: 1, r: 4.0 },
        Entry { u: 1, i: 0, r: 2.0 },
        Entry { u: 0, i: 0, r: 3.5 },
    ];
    let mut uf: Vec<f32> = (0..2 * k).map(|j| (j as f32 * 0.3).sin() * 0.2).collect();
    let mut itf: Vec<f32> = (0..2 * k).map(|j| (j as f32 * 0.7).cos() * 0.2).collect();
    let mut bu = vec![0.1f32, -0.2];
    let mut bi = vec![0.05f32, 0.3];
    let s = Step {
        k,
        mu: 3.0,
        lr: 0.05,
        reg_f: 0.1,
        reg_b: 0.02,
    };
    let (mut ruf, mut ritf): (Vec<f64>, Vec<f64>) = (
        uf.iter().map(|&x| x as f64).collect(),
        itf.iter().map(|&x| x as f64).collect(),
    );
    let (mut rbu, mut rbi): (Vec<f64>, Vec<f64>) = (
        bu.iter().map(|&x| x as f64).collect(),
        bi.iter().map(|&x| x as f64).collect(),
    );
    for e in &entries {
        let (u, i) = (e.u as usize, e.i as usize);
        let mut pred = 3.0 + rbu[u] + rbi[i];
        for j in 0..k {
            pred += ruf[u * k + j] * ritf[i * k + j];
        }
        let err = e.r as f64 - pred;
        rbu[u] += 0.05 * (err - 0.02 * rbu[u]);
        rbi[i] += 0.05 * (err - 0.02 * rbi[i]);
        for j in 0..k {
            let (pu, qi) = (ruf[u * k + j], ritf[i * k + j]);
            ruf[u * k + j] = pu + 0.05 * (err * qi - 0.1 * pu);
            ritf[i * k + j] = qi + 0.05 * (err * pu - 0.1 * qi);
        }
    }
    sgd_block(&entries, &mut uf, &mut bu, &mut itf, &mut bi, s);
    for (a, b) in uf
        .iter()
        .zip(&ruf)
        .chain(itf.iter().zip(&ritf))
        .chain(bu.iter().zip(&rbu))
        .chain(bi.iter().zip(&rbi))
    {
        assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn same_seed_and_threads_give_identical_models() {
    let x = tiny(40, 30);
    let p = SgdParams::default()
        .factors(8)
        .epochs(5)
        .threads(Some(2))
        .check()
        .unwrap();
    let a = p.fit(&x, None, &mut |_| {}).unwrap();
    let b = p.fit(&x, None, &mut |_| {}).unwrap();
    assert_eq!(a.user_factors(), b.user_factors());
    assert_eq!(a.item_bias(), b.item_bias());
    let c = SgdParams::default()
        .factors(8)
        .epochs(5)
        .threads(Some(2))
        .seed(7)
        .check()
        .unwrap()
        .fit(&x, None, &mut |_| {})
        .unwrap();
    assert_ne!(a.user_factors(), c.user_factors());
}

#[test]
fn training_lowers_the_error_and_early_stopping_stops() {
    let x = tiny(60, 40);
    let mut reports = Vec::new();
    let v = Validation {
        users: x.users[..50].to_vec(),
        items: x.items[..50].to_vec(),
        values: x.values[..50].to_vec(),
    };
    SgdParams::default()
        .factors(8)
        .epochs(30)
        .learning_rate(0.05)
        .patience(Some(2))
        .threads(Some(2))
        .check()
        .unwrap()
        .fit(&x, Some(&v), &mut |r| reports.push(r.clone()))
        .unwrap();
    assert!(reports.last().unwrap().train_rmse < reports[0].train_rmse);
    assert!(reports.iter().all(|r| r.valid_rmse.is_some()));
}

#[test]
fn bad_params_name_the_parameter() {
    let e = SgdParams::default()
        .learning_rate(-0.1)
        .check()
        .unwrap_err()
        .to_string();
    assert!(e.contains("learning_rate"), "{e}");
    assert!(SgdParams::default().factors(0).check().is_err());
    assert!(SgdParams::default().threads(Some(0)).check().is_err());
}

/// The general kernel (AdaGrad, two groups of factors, optional biases)
/// against a slow reference in f64, in each of its modes.
#[test]
fn general_step_matches_a_slow_reference() {
    let k = 6;
    let entries = vec![
        Entry { u: 0, i: 1, r: 4.0 },
        Entry { u: 1, i: 0, r: 2.0 },
        Entry { u: 0, i: 0, r: 3.5 },
        Entry { u: 1, i: 1, r: 1.0 },
        Entry { u: 0, i: 1, r: 5.0 },
    ];
    let s = Step {
        k,
        mu: 3.0,
        lr: 0.1,
        reg_f: 0.1,
        reg_b: 0.02,
    };
    for (biases, adagrad, lead, lead_only) in [
        (false, true, 2, true),
        (false, true, 2, false),
        (true, true, 4, false),
        (true, false, 0, false),
        (false, false, 3, true),
    ] {
        let x = Extra {
            biases,
            adagrad,
            lead,
            lead_only,
        };
        let mut uf: Vec<f32> = (0..2 * k).map(|j| (j as f32 * 0.3).sin() * 0.4).collect();
        let mut itf: Vec<f32> = (0..2 * k).map(|j| (j as f32 * 0.7).cos() * 0.4).collect();
        // [bias, sum of the lead group, sum of the rest] per row.
        let mut su = vec![0.1f32, 1.0, 1.0, -0.2, 1.0, 1.0];
        let mut si = vec![0.05f32, 1.0, 1.0, 0.3, 1.0, 1.0];
        let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let (mut rp, mut rq, mut rsu, mut rsi) = (f64s(&uf), f64s(&itf), f64s(&su), f64s(&si));
        let groups: Vec<(usize, usize)> = if lead == 0 {
            vec![(0, k)]
        } else if lead_only {
            vec![(0, lead)]
        } else {
            vec![(0, lead), (lead, k)]
        };
        for e in &entries {
            let (u, i) = (e.u as usize, e.i as usize);
            let mut pred = if biases {
                3.0 + rsu[u * SIDE] + rsi[i * SIDE]
            } else {
                0.0
            };
            for j in 0..k {
                pred += rp[u * k + j] * rq[i * k + j];
            }
            let err = e.r as f64 - pred;
            let mut first = (0.1, 0.1);
            for (g, &(lo, hi)) in groups.iter().enumerate() {
                let (ep, eq) = if adagrad {
                    (
                        0.1 / rsu[u * SIDE + 1 + g].sqrt(),
                        0.1 / rsi[i * SIDE + 1 + g].sqrt(),
                    )
                } else {
                    (0.1, 0.1)
                };
                if g == 0 {
                    first = (ep, eq);
                }
                let (mut gp2, mut gq2) = (0.0, 0.0);
                for j in lo..hi {
                    let (pu, qi) = (rp[u * k + j], rq[i * k + j]);
                    let (gp, gq) = (0.1 * pu - err * qi, 0.1 * qi - err * pu);
                    gp2 += gp * gp;
                    gq2 += gq * gq;
                    rp[u * k + j] = pu - ep * gp;
                    rq[i * k + j] = qi - eq * gq;
                }
                if adagrad {
                    rsu[u * SIDE + 1 + g] += gp2 / (hi - lo) as f64;
                    rsi[i * SIDE + 1 + g] += gq2 / (hi - lo) as f64;
                }
            }
            if biases {
                rsu[u * SIDE] += first.0 * (err - 0.02 * rsu[u * SIDE]);
                rsi[i * SIDE] += first.1 * (err - 0.02 * rsi[i * SIDE]);
            }
        }
        let before = (uf.clone(), itf.clone());
        sgd_block_general(&entries, &mut uf, &mut su, &mut itf, &mut si, s, x);
        for (a, b) in uf
            .iter()
            .zip(&rp)
            .chain(itf.iter().zip(&rq))
            .chain(su.iter().zip(&rsu))
            .chain(si.iter().zip(&rsi))
        {
            assert!(
                (*a as f64 - b).abs() < 1e-5,
                "{biases} {adagrad} {lead} {lead_only}: {a} vs {b}"
            );
        }
        if lead_only {
            // The factors past the lead group did not move.
            for r in 0..2 {
                assert_eq!(
                    uf[r * k + lead..(r + 1) * k],
                    before.0[r * k + lead..(r + 1) * k]
                );
                assert_eq!(
                    itf[r * k + lead..(r + 1) * k],
                    before.1[r * k + lead..(r + 1) * k]
                );
            }
        }
        if !biases {
            assert_eq!((su[0], si[3]), (0.1, 0.3), "biases stay as they were");
        }
    }
}

#[test]
fn the_general_kernel_is_deterministic_and_learns() {
    let x = tiny(40, 30);
    let p = SgdParams::default()
        .factors(8)
        .epochs(8)
        .threads(Some(2))
        .biases(false)
        .adagrad(true)
        .lead_factors(3)
        .learning_rate(0.1)
        .lr_decay(1.0)
        .reg_factors(0.05)
        .check()
        .unwrap();
    let mut reports = Vec::new();
    let a = p.fit(&x, None, &mut |r| reports.push(r.clone())).unwrap();
    let b = p.fit(&x, None, &mut |_| {}).unwrap();
    assert_eq!(a.user_factors(), b.user_factors());
    assert_eq!(a.item_factors(), b.item_factors());
    // No biases: μ and every bias are zero, the factors carry the values.
    assert_eq!(a.global_mean(), 0.0);
    assert!(a.user_bias().iter().chain(a.item_bias()).all(|&v| v == 0.0));
    let (first, last) = (
        reports[0].train_rmse.unwrap(),
        reports.last().unwrap().train_rmse.unwrap(),
    );
    assert!(last < 0.5 * first, "{first} → {last}");
}

#[test]
fn new_params_are_checked_and_old_parameter_files_still_read() {
    let e = SgdParams::default()
        .factors(8)
        .lead_factors(9)
        .check()
        .unwrap_err()
        .to_string();
    assert!(e.contains("lead_factors"), "{e}");
    let mut old = serde_json::to_value(SgdParams::default()).unwrap();
    for f in ["biases", "adagrad", "lead_factors"] {
        old.as_object_mut().unwrap().remove(f);
    }
    let back: SgdParams = serde_json::from_value(old).unwrap();
    assert_eq!(back, SgdParams::default());
}
