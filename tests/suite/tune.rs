//! `recsys tune`: it finds better settings than a bad start on validation
//! data it carves or is given, reads no test side, and its parameters file
//! round-trips through `train --params`.

use super::*;

/// A deliberately bad SGD setting: two factors and a step size 100× too
/// small to get anywhere in the epochs of a rung.
fn bad_start(d: &tempfile::TempDir) -> String {
    let f = p(d, "bad.json");
    let params = serde_json::json!({
        "algorithm": "sgd",
        "params": {
            "factors": 2, "epochs": 20, "learning_rate": 0.0005, "lr_decay": 0.9,
            "reg_factors": 0.06, "reg_bias": 0.01, "init_std": 0.01, "seed": 42,
            "threads": null, "patience": null
        },
        "metric": "rmse", "value": 0.0, "trials": 0, "seconds": 0.0, "seed": 42,
        "validation": "hand-made", "data": []
    });
    std::fs::write(&f, params.to_string()).unwrap();
    f
}

#[test]
fn tune_beats_a_bad_start_on_validation_and_reads_only_the_training_data() {
    let d = tmp();
    let best = p(&d, "best.json");
    let base = data("ml-100k/u1.base");
    let out = json(&ok(&[
        "tune",
        "-q",
        "--data",
        &base,
        "--start",
        &bad_start(&d),
        "--trials",
        "8",
        "--budget",
        "120s",
        "--format",
        "json",
        "--out",
        &best,
    ]));
    assert_eq!(out["metric"], "rmse");
    assert_eq!(out["trials"], 8, "{out}");
    // The only file read is the training data: tune has no test side, and
    // its validation side was carved from that file.
    assert_eq!(out["files"], serde_json::json!([base]), "{out}");
    let board = out["leaderboard"].as_array().unwrap();
    let start = board.iter().find(|t| t["id"] == 0).unwrap();
    let top = &board[0];
    let (s, b) = (
        start["value"].as_f64().unwrap(),
        top["value"].as_f64().unwrap(),
    );
    assert!(b < s - 0.05, "best RMSE {b} vs the bad start's {s}");
    assert_eq!(top["value"], out["best"]["value"]);
    // Leaderboard order: best first.
    assert!(board
        .windows(2)
        .all(|w| w[0]["value"].as_f64() <= w[1]["value"].as_f64()));
    let file = json(&std::fs::read_to_string(&best).unwrap());
    assert_eq!(file, out["best"]);
}

#[test]
fn tuned_parameters_round_trip_and_reproduce_their_validation_metric() {
    let d = tmp();
    let best = p(&d, "best.json");
    let (base, valid) = (data("ml-100k/u1.base"), data("ml-100k/u1.test"));
    let out = json(&ok(&[
        "tune",
        "-q",
        "--data",
        &base,
        "--validation",
        &valid,
        "--trials",
        "4",
        "--budget",
        "120s",
        "--format",
        "json",
        "--out",
        &best,
    ]));
    let value = out["best"]["value"].as_f64().unwrap();
    // Trials run on one thread; so does this run, and it scores the same
    // file as its test side.
    let m = p(&d, "m.st");
    let train = ok(&[
        "train", "-q", "--json", "--params", &best, "--data", &base, "--test", &valid, "-t", "1",
        "--out", &m,
    ]);
    let rmse = json(&train)["test"]["rmse"].as_f64().unwrap();
    assert!(
        (rmse - value).abs() < 1e-9,
        "train --params: {rmse}, tune: {value}"
    );
    let info = json(&ok(&["info", &m, "--json"]));
    for (k, v) in out["best"]["params"].as_object().unwrap() {
        assert_eq!(&info["params"][k], v, "{k}");
    }
    // A registry's first model trains with them too.
    let reg = p(&d, "models");
    ok(&[
        "retrain",
        "-q",
        "--data",
        &base,
        "--holdout",
        &valid,
        "--models",
        &reg,
        "--once",
        "--params",
        &best,
    ]);
    let info = json(&ok(&["info", &format!("{reg}/current"), "--json"]));
    for (k, v) in out["best"]["params"].as_object().unwrap() {
        assert_eq!(&info["params"][k], v, "retrain: {k}");
    }
    // The file sets every parameter: a parameter flag beside it is refused,
    // as is a file for the other kind of feedback.
    let e = fails(&["train", "--params", &best, "--factors", "8", "--out", &m]);
    assert!(e.contains("--factors") && e.contains("--params"), "{e}");
    let e = fails(&["train", "--params", &best, "--implicit", "--out", &m]);
    assert!(e.contains("ratings"), "{e}");
    std::fs::write(&best, "not json").unwrap();
    let e = fails(&["train", "--params", &best, "--out", &m]);
    assert!(e.contains("best.json") && e.contains("recsys tune"), "{e}");
}

#[test]
fn bad_tune_flags_fail_before_reading_data() {
    let e = fails(&["tune", "--data", "/no/such", "--metric", "hits@3"]);
    assert!(e.contains("--metric") && e.contains("hits@3"), "{e}");
    let e = fails(&["tune", "--data", "/no/such", "--implicit", "--algo", "sgd"]);
    assert!(e.contains("--algo") && e.contains("sgd"), "{e}");
    let e = fails(&[
        "tune",
        "--data",
        "/no/such",
        "--implicit",
        "--metric",
        "rmse",
    ]);
    assert!(e.contains("--metric") && e.contains("ranking"), "{e}");
    let e = fails(&["tune", "--data", "/no/such", "--budget", "soon"]);
    assert!(e.contains("--budget"), "{e}");
}

#[test]
fn a_first_trial_that_cannot_finish_in_the_budget_stops_there_and_says_so() {
    // The start: 10,000 epochs at k = 128, which no machine fits in one
    // second. Before the first trial was bounded, tune ran it whole and then
    // reported it.
    let d = tmp();
    let start = p(&d, "long.json");
    let mut params = json(&std::fs::read_to_string(bad_start(&d)).unwrap());
    params["params"]["epochs"] = 10_000.into();
    params["params"]["factors"] = 128.into();
    std::fs::write(&start, params.to_string()).unwrap();
    let e = fails(&[
        "tune",
        "-q",
        "--data",
        &data("ml-100k/u1.base"),
        "--start",
        &start,
        "--budget",
        "1s",
        "--out",
        &p(&d, "best.json"),
    ]);
    assert!(
        e.contains("cannot finish within the budget") && e.contains("--budget"),
        "{e}"
    );
    assert!(!std::path::Path::new(&p(&d, "best.json")).exists());
}
