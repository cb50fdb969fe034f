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
