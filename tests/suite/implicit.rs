//! Implicit feedback: ALS, BPR, ranking metrics, the adjacency format.

use super::*;

fn ranking(out: &str) -> serde_json::Value {
    json(out)["test"].clone()
}

#[test]
fn implicit_als_reaches_sparks_quality_on_ml1m_with_defaults() {
    let d = tmp();
    let m = p(&d, "als.st");
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--implicit",
        "--data",
        &split("ml-1m_implicit_train.csv"),
        "--test",
        &split("ml-1m_implicit_test.csv"),
        "--out",
        &m,
    ]);
    let t = ranking(&out);
    let (p10, n10) = (
        t["precision@10"].as_f64().unwrap(),
        t["ndcg@10"].as_f64().unwrap(),
    );
    assert!(
        p10 >= 0.256 && n10 >= 0.315,
        "P@10 {p10}, nDCG@10 {n10} (Spark: 0.256 / 0.315)"
    );
    // eval on the saved model: same numbers, JSON keys per cut-off.
    let e = json(&ok(&[
        "eval",
        "--model",
        &m,
        "--test",
        &split("ml-1m_implicit_test.csv"),
        "--k",
        "10,20",
        "--format",
        "json",
    ]));
    assert!((e["precision@10"].as_f64().unwrap() - p10).abs() < 1e-12);
    for key in ["recall@20", "ndcg@20", "map@10", "coverage@20", "auc"] {
        assert!(
            e[key].as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)),
            "{key}: {e}"
        );
    }
    assert!(e.get("rmse").is_none(), "implicit models have no RMSE");
    let info = json(&ok(&["info", &m, "--json"]));
    assert_eq!(info["algorithm"], "als-implicit");
    assert_eq!(info["implicit"], true);
}

#[test]
fn bpr_beats_implicits_bpr_on_ml1m() {
    let d = tmp();
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--algo",
        "bpr",
        "--data",
        &split("ml-1m_implicit_train.csv"),
        "--test",
        &split("ml-1m_implicit_test.csv"),
        "--out",
        &p(&d, "bpr.st"),
    ]);
    let p10 = ranking(&out)["precision@10"].as_f64().unwrap();
    assert!(p10 > 0.146, "BPR P@10 {p10} (implicit's BPR: 0.146)");
}

#[test]
fn cholesky_and_cg_agree_and_validation_stops_early() {
    let d = tmp();
    let (tr, te) = (
        split("ml-100k_implicit_train.csv"),
        split("ml-100k_implicit_test.csv"),
    );
    let p10 = |solver: &str| {
        let m = p(&d, &format!("{solver}.st"));
        let out = ok(&[
            "train",
            "-q",
            "--json",
            "--implicit",
            "--data",
            &tr,
            "--test",
            &te,
            "--solver",
            solver,
            "--out",
            &m,
        ]);
        ranking(&out)["precision@10"].as_f64().unwrap()
    };
    let (cg, ch) = (p10("cg"), p10("cholesky"));
    assert!((cg - ch).abs() < 0.01, "cg {cg} vs cholesky {ch}");
    // Per-epoch ranking validation and early stopping, ALS and BPR.
    for algo in ["als", "bpr"] {
        let m = p(&d, "v.st");
        ok(&[
            "train",
            "-q",
            "--implicit",
            "--algo",
            algo,
            "--data",
            &split("ml-100k_implicit_train.csv"),
            "--validation",
            "0.1",
            "--patience",
            "2",
            "--epochs",
            "60",
            "--out",
            &m,
        ]);
        let meta = json(&ok(&["info", &m, "--json"]));
        let hist = meta["history"].as_array().unwrap();
        assert!(
            hist.iter().all(|h| h["valid_ndcg"].as_f64().is_some()),
            "{algo}"
        );
        let best = meta["best_epoch"].as_u64().unwrap() as usize;
        assert!(
            hist.len() < 60 && hist.len() >= best + 2 || hist.len() == 60,
            "{algo}: {} epochs, best {best}",
            hist.len()
        );
    }
}

#[test]
fn ratings_become_positives_and_explicit_als_works() {
    let d = tmp();
    let m = p(&d, "m.st");
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--positive-threshold",
        "4",
        "--data",
        &data("ml-100k/u1.base"),
        "--test",
        &data("ml-100k/u1.test"),
        "--out",
        &m,
    ]);
    let t = ranking(&out);
    assert!(t["precision@10"].as_f64().unwrap() > 0.2, "{t}");
    // Explicit ALS (weighted-λ, with biases) on ratings, defaults.
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--algo",
        "als",
        "--data",
        &data("ml-100k/u1.base"),
        "--test",
        &data("ml-100k/u1.test"),
        "--out",
        &m,
    ]);
    let rmse = json(&out)["test"]["rmse"].as_f64().unwrap();
    assert!(
        rmse <= 0.9305,
        "explicit ALS RMSE {rmse} (Spark ALS rank 50: 0.9305)"
    );
    // Flags that make no sense together are refused before loading.
    let err = fails(&[
        "train",
        "--implicit",
        "--algo",
        "sgd",
        "--data",
        "/no/such/file",
    ]);
    assert!(err.contains("implicit"), "{err}");
    let err = fails(&[
        "train",
        "--algo",
        "als",
        "--solver",
        "cg",
        "--data",
        "/no/such/file",
    ]);
    assert!(err.contains("cg"), "{err}");
}

#[test]
fn lightgcn_adjacency_lists_load() {
    let g = |f: &str| data(&format!("gowalla-lightgcn/{f}"));
    let out = json(&ok(&[
        "inspect",
        "--data",
        &g("train.txt"),
        "--data",
        &g("valid.txt"),
        "--data",
        &g("test.txt"),
    ]));
    assert_eq!(out["rows"], 1_027_370);
    assert_eq!(out["users"], 29_858);
    assert_eq!(out["items"], 40_981);
    let d = tmp();
    let bad = p(&d, "adj.txt");
    std::fs::write(&bad, "0 1 2 3 4 5\n1 7 x 9\n").unwrap();
    let err = fails(&["inspect", "--data", &bad]);
    assert!(err.contains("adj.txt:2") && err.contains("item 2"), "{err}");
}

#[test]
fn gowalla_with_defaults_reaches_recall_016() {
    let g = |f: &str| data(&format!("gowalla-lightgcn/{f}"));
    let d = tmp();
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--implicit",
        "--data",
        &g("train.txt"),
        "--data",
        &g("valid.txt"),
        "--test",
        &g("test.txt"),
        "--eval-k",
        "20",
        "--out",
        &p(&d, "gw.st"),
    ]);
    let t = ranking(&out);
    let r20 = t["recall@20"].as_f64().unwrap();
    assert!(
        r20 >= 0.16,
        "Gowalla recall@20 {r20} with defaults (MF-BPR 0.1291, LightGCN 0.1830)"
    );
}
