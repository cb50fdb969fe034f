//! Warm start (linfa's `FitWith` shape): a fit's first factors and biases
//! come from a previous model for the users and items it knows, and new ones
//! are drawn exactly as a cold start draws them. A retrain on grown data then
//! needs a few epochs instead of a full run.

use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::model::Model;
pub use crate::model::WarmStartInfo;

/// First factors and biases of a fit, in the training data's index order.
pub(crate) struct Start {
    pub uf: Vec<f32>,
    pub itf: Vec<f32>,
    pub bu: Vec<f32>,
    pub bi: Vec<f32>,
    pub info: Option<WarmStartInfo>,
}

/// The cold start (seeded normal factors, zero biases), with the rows of
/// users and items `prev` knows replaced by its factors and biases. `mu` is
/// the new global mean: item biases absorb the shift from the old one, so the
/// old model's predictions are unchanged at the start.
pub(crate) fn start(
    train: &Interactions,
    k: usize,
    init_std: f32,
    seed: u64,
    implicit: bool,
    mu: f32,
    prev: Option<&Model>,
) -> Result<Start> {
    let (nu, ni) = (train.n_users(), train.n_items());
    let mut s = Start {
        uf: super::init_factors(nu, k, init_std, seed, 1),
        itf: super::init_factors(ni, k, init_std, seed, 2),
        bu: vec![0f32; nu],
        bi: vec![0f32; ni],
        info: None,
    };
    let Some(prev) = prev else {
        return Ok(s);
    };
    if prev.factors() != k {
        return Err(Error::param(
            "factors",
            k,
            format!(
                "a warm start keeps the previous model's factors, which have k = {}",
                prev.factors()
            ),
        ));
    }
    if prev.meta().implicit != implicit {
        return Err(Error::Other(format!(
            "cannot warm-start an {} model from an {} one",
            if implicit { "implicit" } else { "explicit" },
            if prev.meta().implicit {
                "implicit"
            } else {
                "explicit"
            }
        )));
    }
    let shift = if implicit {
        0.0
    } else {
        prev.global_mean() - mu
    };
    let mut info = WarmStartInfo {
        from_fingerprint: prev.meta().data.fingerprint.clone(),
        ..Default::default()
    };
    for (u, old) in train
        .user_ids
        .translate_to(prev.user_ids())
        .into_iter()
        .enumerate()
    {
        match old {
            Some(o) => {
                s.uf[u * k..(u + 1) * k].copy_from_slice(prev.user_vector(o));
                s.bu[u] = prev.user_bias()[o as usize];
                info.users_kept += 1;
            }
            None => info.users_new += 1,
        }
    }
    for (i, old) in train
        .item_ids
        .translate_to(prev.item_ids())
        .into_iter()
        .enumerate()
    {
        match old {
            Some(o) => {
                s.itf[i * k..(i + 1) * k].copy_from_slice(prev.item_vector(o));
                s.bi[i] = prev.item_bias()[o as usize] + shift;
                info.items_kept += 1;
            }
            None => info.items_new += 1,
        }
    }
    s.info = Some(info);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::IdMap;
    use std::sync::Arc;

    /// Ratings of users `users` (external ids) on items 0..ni, in shuffled id
    /// order so dense indices differ from external ids.
    fn data(users: &[i64], ni: i64) -> Interactions {
        let (mut u, mut it, mut v) = (Vec::new(), Vec::new(), Vec::new());
        for (du, &eu) in users.iter().enumerate() {
            for i in 0..ni {
                if (eu * 31 + i * 17) % 3 != 0 {
                    u.push(du as u32);
                    it.push((ni - 1 - i) as u32);
                    v.push(1.0 + ((eu % 4) as f32 + (i % 5) as f32) * 0.5);
                }
            }
        }
        Interactions {
            users: u,
            items: it,
            values: v,
            times: None,
            user_ids: Arc::new(IdMap::from_ints(users.to_vec())),
            item_ids: Arc::new(IdMap::from_ints((0..ni).rev().collect())),
        }
    }

    type Fit = Box<dyn Fn(&Interactions, Option<&Model>) -> Model>;

    /// A fit (warm from the model given) of SGD and of explicit ALS.
    fn trainers() -> Vec<Fit> {
        let sgd: crate::train::sgd::SgdParams = serde_json::from_str(
            r#"{"factors":4,"epochs":10,"learning_rate":0.05,"lr_decay":0.9,"reg_factors":0.05,"reg_bias":0.01,"init_std":0.1,"seed":3,"threads":2,"patience":null}"#,
        )
        .unwrap();
        let sgd = sgd.check().unwrap();
        let als = crate::train::als::AlsParams {
            factors: 4,
            epochs: 3,
            implicit: false,
            solver: crate::train::als::Solver::Cholesky,
            ..Default::default()
        }
        .check()
        .unwrap();
        vec![
            Box::new(move |x, prev| sgd.fit_with(x, None, prev, &mut |_| {}).unwrap()),
            Box::new(move |x, prev| als.fit_with(x, None, prev, &mut |_| {}).unwrap()),
        ]
    }

    /// A warm start from a model on the same data predicts what the model
    /// predicts (known rows copied, the mean shift absorbed), and new users
    /// and items start as a cold start would.
    #[test]
    fn warm_start_carries_known_rows_and_predictions() {
        for t in trainers() {
            let old = data(&[10, 11, 12, 13, 14, 15], 8);
            let prev = t(&old, None);
            // Grown data: a new user (99) first, so every dense index moves.
            let new = data(&[99, 15, 14, 13, 12, 11, 10], 8);
            let mu = new.mean_value() as f32 + 0.25;
            let s = start(&new, 4, 0.1, 3, false, mu, Some(&prev)).unwrap();
            let info = s.info.clone().unwrap();
            assert_eq!((info.users_kept, info.users_new), (6, 1));
            assert_eq!((info.items_kept, info.items_new), (8, 0));
            for du in 1..7u32 {
                let ext = new.user_ids.key(du).to_string();
                let pu = prev.user_ids().get(&ext).unwrap();
                assert_eq!(
                    &s.uf[du as usize * 4..du as usize * 4 + 4],
                    prev.user_vector(pu)
                );
                for di in 0..8u32 {
                    let pi = prev
                        .item_ids()
                        .get(&new.item_ids.key(di).to_string())
                        .unwrap();
                    let q = &s.itf[di as usize * 4..di as usize * 4 + 4];
                    let p = &s.uf[du as usize * 4..du as usize * 4 + 4];
                    let warm =
                        mu + s.bu[du as usize] + s.bi[di as usize] + crate::linalg::dot(p, q);
                    let want = prev.global_mean()
                        + prev.user_bias()[pu as usize]
                        + prev.item_bias()[pi as usize]
                        + crate::linalg::dot(prev.user_vector(pu), prev.item_vector(pi));
                    assert!((warm - want).abs() < 1e-5, "{warm} vs {want}");
                }
            }
            // The new user's row is the cold start's row.
            let cold = start(&new, 4, 0.1, 3, false, mu, None).unwrap();
            assert_eq!(&s.uf[..4], &cold.uf[..4]);
            // A warm fit records where it started from.
            let m = t(&new, Some(&prev));
            assert_eq!(m.meta().warm_start.as_ref().unwrap().users_new, 1);
        }
    }

    #[test]
    fn warm_start_refuses_another_k_or_kind() {
        let t = &trainers()[0];
        let x = data(&[1, 2, 3], 5);
        let prev = t(&x, None);
        let e = start(&x, 8, 0.1, 1, false, 3.0, Some(&prev)).err().unwrap();
        assert!(e.to_string().contains("k = 4"), "{e}");
        let e = start(&x, 4, 0.1, 1, true, 0.0, Some(&prev)).err().unwrap();
        assert!(e.to_string().contains("implicit"), "{e}");
    }
}
