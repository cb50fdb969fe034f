//! The quality bars of the vertical slice, with default parameters.

use super::*;

#[test]
fn ml100k_u1_rmse_with_defaults() {
    let d = tmp();
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--data",
        &data("ml-100k/u1.base"),
        "--test",
        &data("ml-100k/u1.test"),
        "--out",
        &p(&d, "m.st"),
    ]);
    let v = json(&out);
    let rmse = v["test"]["rmse"].as_f64().unwrap();
    assert_eq!(v["test"]["n"], 20000);
    assert!(rmse <= 0.920, "ml-100k u1 RMSE {rmse} > 0.920");
}

#[test]
fn ml1m_split_rmse_with_defaults() {
    let d = tmp();
    let m = p(&d, "m.st");
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--data",
        &split("ml-1m_explicit_train.csv"),
        "--test",
        &split("ml-1m_explicit_test.csv"),
        "--out",
        &m,
    ]);
    let rmse = json(&out)["test"]["rmse"].as_f64().unwrap();
    assert!(rmse <= 0.855, "ml-1m RMSE {rmse} > 0.855");
    // `eval` on the saved model agrees with what `train` printed.
    let e = json(&ok(&[
        "eval",
        "--model",
        &m,
        "--test",
        &split("ml-1m_explicit_test.csv"),
        "--format",
        "json",
    ]));
    assert!((e["rmse"].as_f64().unwrap() - rmse).abs() < 1e-9);
    assert_eq!(e["n"], 200042);
    assert_eq!(e["unknown_items"], 45);
}

/// Explicit ALS with its defaults against Spark ALS on the same splits
/// (../shared/bench: rank 50 on ml-100k u1 0.9305; rank 10 on ml-1m
/// 0.8627–0.8662 depending on its blocks).
#[test]
fn explicit_als_rmse_with_defaults() {
    let d = tmp();
    for (train, test, bar, n) in [
        (
            data("ml-100k/u1.base"),
            data("ml-100k/u1.test"),
            0.9305,
            20000,
        ),
        (
            split("ml-1m_explicit_train.csv"),
            split("ml-1m_explicit_test.csv"),
            0.866,
            200042,
        ),
    ] {
        let out = ok(&[
            "train",
            "-q",
            "--json",
            "--algo",
            "als",
            "--data",
            &train,
            "--test",
            &test,
            "--out",
            &p(&d, "als.st"),
        ]);
        let v = json(&out);
        let rmse = v["test"]["rmse"].as_f64().unwrap();
        assert_eq!(v["test"]["n"], n);
        assert!(rmse <= bar, "{train}: explicit ALS RMSE {rmse} > {bar}");
    }
}

/// Popularity P@10 on a train/test pair of `user,item,...` rows: the ten
/// most-rated training items each user has not rated, against the user's
/// held-out items (users with ≥ 1 held-out item).
fn popularity_p10(train: &[(String, String)], test: &[(String, String)]) -> f64 {
    use std::collections::{HashMap, HashSet};
    let mut count: HashMap<&str, usize> = HashMap::new();
    let mut seen: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (u, i) in train {
        *count.entry(i).or_default() += 1;
        seen.entry(u).or_default().insert(i);
    }
    let mut by_pop: Vec<(&str, usize)> = count.into_iter().collect();
    by_pop.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut truth: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (u, i) in test {
        truth.entry(u).or_default().insert(i);
    }
    let empty = HashSet::new();
    let p: Vec<f64> = truth
        .iter()
        .map(|(u, t)| {
            let s = seen.get(u).unwrap_or(&empty);
            let hits = by_pop
                .iter()
                .filter(|(i, _)| !s.contains(i))
                .take(10)
                .filter(|(i, _)| t.contains(i))
                .count();
            hits as f64 / 10.0
        })
        .collect();
    p.iter().sum::<f64>() / p.len() as f64
}

#[test]
fn default_lists_on_ratings_beat_popularity_on_planted_structure() {
    // Planted structure with a known answer: 6 groups of 50 users, each
    // rating 15 of its own group's 40 items (plus 2 anywhere), with ratings
    // that carry no signal. A user's held-out items are in its group's
    // block; "most popular" cannot know the block, a good list model must.
    let d = tmp();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let (mut tr, mut te) = (
        vec!["user,item,rating".to_string()],
        vec!["user,item,rating".to_string()],
    );
    let (mut trp, mut tep) = (Vec::new(), Vec::new());
    for u in 0..300u64 {
        let g = u % 6;
        let mut items = std::collections::BTreeSet::new();
        while items.len() < 15 {
            items.insert(g * 40 + next(40));
        }
        while items.len() < 17 {
            items.insert(next(240));
        }
        for (n, i) in items.into_iter().enumerate() {
            let line = format!("{u},{i},{}", 1 + next(5));
            let pair = (u.to_string(), i.to_string());
            if n % 5 == 0 {
                te.push(line);
                tep.push(pair);
            } else {
                tr.push(line);
                trp.push(pair);
            }
        }
    }
    let (trf, tef) = (p(&d, "train.csv"), p(&d, "test.csv"));
    std::fs::write(&trf, tr.join("\n")).unwrap();
    std::fs::write(&tef, te.join("\n")).unwrap();
    let p10 = |extra: &[&str]| {
        let m = p(&d, "m.st");
        let mut args = vec!["train", "-q", "--data", &trf, "--out", &m];
        args.extend_from_slice(extra);
        ok(&args);
        let e = json(&ok(&["eval", "-m", &m, "--test", &tef, "--format", "json"]));
        e["precision@10"].as_f64().unwrap()
    };
    let pop = popularity_p10(&trp, &tep);
    let default = p10(&[]);
    let rating_head = p10(&["--list-head", "none"]);
    assert!(
        default > 1.5 * pop,
        "default P@10 {default} vs popularity {pop}"
    );
    assert!(
        default > rating_head,
        "default {default} vs rating head alone {rating_head}"
    );
}
