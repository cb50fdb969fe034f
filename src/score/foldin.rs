//! Fold-in: a vector for a user the model has not seen, from the items (and
//! optionally ratings) given with the request, without retraining.
//!
//! Implicit models (ALS, BPR): the closed-form implicit-ALS solve of the user
//! row given the item factors, x = (YᵀY + Σ c_i y_i y_iᵀ + λI)⁻¹ Σ (1 + c_i) y_i,
//! with the model's own α, confidence and λ (scaled by the number of items
//! when the model was trained that way); BPR models use the ALS defaults.
//! Explicit models: the exact ridge solve of the user's factors and bias
//! given the item factors and biases (one ALS half-step, which is what a few
//! SGD epochs on this user alone converge to), λ as in training. Explicit
//! items given without a rating count as the top rating.

use super::{popular, recommend_vector, to_scored, RecList, RecommendOptions, Source};
use crate::error::{Error, Result};
use crate::linalg::cholesky_solve;
use crate::model::Model;

/// A folded-in user.
#[derive(Clone, Debug)]
pub struct FoldIn {
    pub vector: Vec<f32>,
    /// The user bias (explicit models with biases), else 0.
    pub bias: f32,
    /// The known items given (sorted dense indices).
    pub items: Vec<u32>,
    /// Items given that the model does not know.
    pub unknown: usize,
}

/// Solves for a new user's vector from `(item id, value)` pairs.
pub fn fold_in(model: &Model, given: &[(String, Option<f32>)]) -> Result<FoldIn> {
    let model = model.lists();
    let k = model.factors();
    let meta = model.meta();
    let mut pairs: Vec<(u32, Option<f32>)> = Vec::new();
    let mut unknown = 0;
    for (id, v) in given {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(Error::Other(format!(
                "item {id}: the value must be a finite number"
            )));
        }
        match model.item_ids().get(id) {
            Some(i) => pairs.push((i, *v)),
            None => unknown += 1,
        }
    }
    pairs.sort_unstable_by_key(|p| p.0);
    pairs.dedup_by_key(|p| p.0);
    let items: Vec<u32> = pairs.iter().map(|p| p.0).collect();
    if pairs.is_empty() {
        return Ok(FoldIn {
            vector: vec![0.0; k],
            bias: 0.0,
            items,
            unknown,
        });
    }
    let n = pairs.len() as f32;
    let param = |name: &str| {
        meta.params
            .get(name)
            .and_then(|v| v.as_f64())
            .map(|v| v as f32)
    };
    let (vector, bias) = if meta.implicit {
        let rule = crate::model::FoldInRule::of(meta);
        let conf = |r: f32| rule.confidence_of(r);
        let lambda = rule.lambda(n);
        let mut a: Vec<f64> = model.item_gram().iter().map(|&v| v as f64).collect();
        let mut b = vec![0f32; k];
        // The weight an observed entry has on top of its confidence: 1, or
        // the item's unobserved weight when the model was trained with them.
        let w = model.unobserved_weights();
        for &(i, v) in &pairs {
            let c = conf(v.unwrap_or(1.0));
            let base = w.map_or(1.0, |w| w[i as usize]);
            let y = model.item_vector(i);
            for r in 0..k {
                let w = (c * y[r]) as f64;
                for (col, &yc) in y.iter().enumerate() {
                    a[r * k + col] += w * yc as f64;
                }
                b[r] += (base + c) * y[r];
            }
        }
        for j in 0..k {
            a[j * k + j] += lambda as f64;
        }
        let x = cholesky_solve(&mut a, &b, k)
            .ok_or_else(|| Error::Other("fold-in: the system is not positive definite".into()))?;
        (x.into_iter().map(|v| v as f32).collect(), 0.0)
    } else {
        // Unknowns: the factors, plus the user bias when the model has biases.
        let with_bias = meta.algorithm == "sgd";
        let m = k + with_bias as usize;
        let (reg_f, reg_b) = if with_bias {
            (
                param("reg_factors").unwrap_or(0.06) * n,
                param("reg_bias").unwrap_or(0.01) * n,
            )
        } else {
            let reg = param("reg").unwrap_or(0.1);
            let scale = meta
                .params
                .get("scale_reg")
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            (if scale { reg * n } else { reg }, 0.0)
        };
        let mut a = vec![0f64; m * m];
        let mut b = vec![0f32; m];
        let mut z = vec![0f32; m];
        for &(i, v) in &pairs {
            let r = v.unwrap_or(meta.rating_max);
            let t = r - model.global_mean() - model.item_bias()[i as usize];
            z[..k].copy_from_slice(model.item_vector(i));
            if with_bias {
                z[k] = 1.0;
            }
            for row in 0..m {
                for col in 0..m {
                    a[row * m + col] += (z[row] * z[col]) as f64;
                }
                b[row] += t * z[row];
            }
        }
        for j in 0..k {
            a[j * m + j] += reg_f as f64;
        }
        if with_bias {
            a[k * m + k] += reg_b.max(1e-6) as f64;
        }
        let x = cholesky_solve(&mut a, &b, m)
            .ok_or_else(|| Error::Other("fold-in: the system is not positive definite".into()))?;
        let bias = if with_bias { x[k] as f32 } else { 0.0 };
        (x[..k].iter().map(|&v| v as f32).collect(), bias)
    };
    Ok(FoldIn {
        vector,
        bias,
        items,
        unknown,
    })
}

/// Recommendations for an anonymous user given by a few items. With no
/// known item (or fewer than `min_history`), the popularity fallback.
pub fn recommend_items(
    model: &Model,
    given: &[(String, Option<f32>)],
    o: &RecommendOptions,
) -> Result<RecList> {
    let model = model.lists();
    let f = fold_in(model, given)?;
    let skip: &[u32] = if o.filters.exclude_seen {
        &f.items
    } else {
        &[]
    };
    let (source, picks) = if f.items.is_empty() || f.items.len() < o.min_history {
        popular(model, o.n, &o.filters, o.fallback, skip)
    } else {
        let base = if model.meta().implicit {
            0.0
        } else {
            model.global_mean() + f.bias
        };
        (
            Source::FoldIn,
            recommend_vector(model, &f.vector, base, o.n, &o.filters, skip),
        )
    };
    Ok(RecList {
        user: String::new(),
        source,
        items: to_scored(model, &picks, &f.items, o.explain),
    })
}

/// Parses `50,172:4.5,133` into (id, optional value) pairs.
pub fn parse_items(s: &str) -> Result<Vec<(String, Option<f32>)>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| match t.rsplit_once(':') {
            Some((id, v)) => v
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| (id.to_string(), Some(v)))
                .ok_or_else(|| {
                    Error::Other(format!(
                        "--items: {t:?} should be ID or ID:VALUE with a number"
                    ))
                }),
            None => Ok((t.to_string(), None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth::{generate, SynthParams};
    use crate::interactions::{IdMap, Interactions};
    use crate::train::als::AlsParams;
    use crate::train::sgd::SgdParams;
    use std::sync::Arc;

    fn synth(users: usize) -> Interactions {
        let s = generate(&SynthParams {
            users,
            items: 150,
            ratings: users * 40,
            seed: 3,
            ..Default::default()
        })
        .unwrap();
        Interactions {
            users: s.users,
            items: s.items,
            values: s.ratings,
            times: None,
            user_ids: Arc::new(IdMap::from_ints((0..users as i64).collect())),
            item_ids: Arc::new(IdMap::from_ints((0..150).collect())),
        }
        .compact()
    }

    fn correlation(a: &[f32], b: &[f32]) -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (
            a.iter().map(|&v| v as f64).sum::<f64>() / n,
            b.iter().map(|&v| v as f64).sum::<f64>() / n,
        );
        let cov: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - ma) * (y as f64 - mb))
            .sum();
        let va: f64 = a.iter().map(|&x| (x as f64 - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|&y| (y as f64 - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    }

    /// Fold-in of a user left out of training against a full retrain that
    /// includes the user: the two score vectors over all items agree closely.
    #[test]
    fn fold_in_matches_a_full_retrain() {
        let all = synth(300);
        let target = all.user_ids.get("7").unwrap();
        let keep: Vec<usize> = (0..all.len()).filter(|&n| all.users[n] != target).collect();
        let without = all.subset(&keep).compact();
        let given: Vec<(String, Option<f32>)> = (0..all.len())
            .filter(|&n| all.users[n] == target)
            .map(|n| {
                (
                    all.item_ids.key(all.items[n]).to_string(),
                    Some(all.values[n]),
                )
            })
            .collect();
        // Implicit ALS, solved exactly.
        let p = AlsParams {
            factors: 16,
            epochs: 30,
            solver: crate::train::als::Solver::Cholesky,
            threads: Some(2),
            ..Default::default()
        }
        .check()
        .unwrap();
        let full = p.fit(&all, None, &mut |_| {}).unwrap();
        let part = p.fit(&without, None, &mut |_| {}).unwrap();
        let f = fold_in(&part, &given).unwrap();
        let score = |m: &Model, v: &[f32]| -> Vec<f32> {
            (0..150)
                .map(|i| {
                    m.item_ids()
                        .get(&i.to_string())
                        .map_or(0.0, |j| crate::linalg::dot(v, m.item_vector(j)))
                })
                .collect()
        };
        let r = correlation(
            &score(&full, full.user_vector(full.user_ids().get("7").unwrap())),
            &score(&part, &f.vector),
        );
        assert!(r > 0.9, "implicit fold-in vs retrain correlation {r}");
        // Folding a trained user back in reproduces the trained vector's scores.
        let f = fold_in(&full, &given).unwrap();
        let own = full.user_vector(full.user_ids().get("7").unwrap());
        let r = correlation(&score(&full, own), &score(&full, &f.vector));
        assert!(r > 0.99, "fold-in of a trained user: correlation {r}");
        // Explicit SGD: predicted ratings from the fold-in track the retrain.
        let sp = SgdParams::default()
            .factors(16)
            .epochs(30)
            .threads(Some(2))
            .check()
            .unwrap();
        let full = sp.fit(&all, None, &mut |_| {}).unwrap();
        let part = sp.fit(&without, None, &mut |_| {}).unwrap();
        let f = fold_in(&part, &given).unwrap();
        let u = full.user_ids().get("7").unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..150 {
            if let (Some(fi), Some(pi)) = (
                full.item_ids().get(&i.to_string()),
                part.item_ids().get(&i.to_string()),
            ) {
                a.push(full.predict(u, fi));
                b.push(
                    part.global_mean()
                        + f.bias
                        + part.item_bias()[pi as usize]
                        + crate::linalg::dot(&f.vector, part.item_vector(pi)),
                );
            }
        }
        let r = correlation(&a, &b);
        assert!(r > 0.9, "explicit fold-in vs retrain correlation {r}");
    }

    #[test]
    fn parse_items_reads_ids_and_values() {
        let v = parse_items("50, 172:4.5,133").unwrap();
        assert_eq!(
            v,
            vec![
                ("50".into(), None),
                ("172".into(), Some(4.5)),
                ("133".into(), None)
            ]
        );
        assert!(parse_items("1:abc").is_err());
        assert!(parse_items("1:inf").is_err());
    }

    #[test]
    fn unknown_items_fall_back_to_popularity() {
        let all = synth(100);
        let m = AlsParams {
            factors: 8,
            epochs: 3,
            threads: Some(1),
            ..Default::default()
        }
        .check()
        .unwrap()
        .fit(&all, None, &mut |_| {})
        .unwrap();
        let r =
            recommend_items(&m, &[("nope".into(), None)], &RecommendOptions::default()).unwrap();
        assert_eq!(r.source, Source::Popularity);
        let known = m.item_ids().key(0).to_string();
        let r =
            recommend_items(&m, &[(known.clone(), None)], &RecommendOptions::default()).unwrap();
        assert_eq!(r.source, Source::FoldIn);
        assert!(
            r.items.iter().all(|s| s.item != known),
            "given items are not recommended back"
        );
    }
}
