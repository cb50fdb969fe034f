//! The commands end to end, and bad input.

use super::*;

#[test]
fn default_job_on_the_bundled_data() {
    let d = tmp();
    let m = p(&d, "m.st");
    let out = ok(&["train", "-q", "--split", "user:0.2", "--out", &m]);
    assert!(out.contains("test: RMSE"), "{out}");
    let recs = ok(&["recommend", "--model", &m, "--user", "u1"]);
    assert_eq!(recs.lines().count(), 10, "{recs}");
    assert!(recs.lines().all(|l| l.contains(" i")), "{recs}");
}

#[test]
fn recommend_formats_titles_and_fallback() {
    let d = tmp();
    let m = p(&d, "m.st");
    ok(&[
        "train",
        "-q",
        "--data",
        &data("ml-100k/u.data"),
        "--epochs",
        "5",
        "--out",
        &m,
    ]);
    let j = json(&ok(&[
        "recommend",
        "--model",
        &m,
        "--user",
        "196",
        "-n",
        "5",
        "--format",
        "json",
        "--titles",
        &data("ml-100k/u.item"),
    ]));
    assert_eq!(j["source"], "model");
    assert_eq!(j["items"].as_array().unwrap().len(), 5);
    assert!(j["items"][0]["title"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    // Training items are excluded by default.
    let seen: Vec<String> = std::fs::read_to_string(data("ml-100k/u.data"))
        .unwrap()
        .lines()
        .filter(|l| l.split('\t').next() == Some("196"))
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect();
    let all = json(&ok(&[
        "recommend",
        "--model",
        &m,
        "--user",
        "196",
        "-n",
        "200",
        "--format",
        "json",
    ]));
    for it in all["items"].as_array().unwrap() {
        assert!(!seen.contains(&it["item"].as_str().unwrap().to_string()));
    }
    let csv = ok(&[
        "recommend",
        "--model",
        &m,
        "--user",
        "196",
        "--format",
        "csv",
    ]);
    assert!(csv.starts_with("rank,item,score,source\n"), "{csv}");
    // Unknown user: popularity, and said so; --strict makes it an error.
    let pop = ok(&["recommend", "--model", &m, "--user", "no-such-user"]);
    assert!(pop.contains("popularity"), "{pop}");
    let err = fails(&[
        "recommend",
        "--model",
        &m,
        "--user",
        "no-such-user",
        "--strict",
    ]);
    assert!(err.contains("unknown user \"no-such-user\""), "{err}");
}

#[test]
fn eval_json_and_info() {
    let d = tmp();
    let m = p(&d, "m.st");
    ok(&[
        "train",
        "-q",
        "--data",
        &data("ml-100k/u1.base"),
        "--epochs",
        "3",
        "--out",
        &m,
    ]);
    let e = json(&ok(&[
        "eval",
        "--model",
        &m,
        "--test",
        &data("ml-100k/u1.test"),
        "--format",
        "json",
    ]));
    // Both metric families: the rating head's and the lists'.
    for k in [
        "rmse",
        "mae",
        "n",
        "unknown_users",
        "unknown_items",
        "precision@10",
        "recall@10",
        "ndcg@10",
        "map@10",
    ] {
        assert!(e.get(k).is_some(), "missing {k}: {e}");
    }
    assert_eq!(e["unknown_items"], 32);
    let table = ok(&["eval", "--model", &m, "--test", &data("ml-100k/u1.test")]);
    assert!(table.contains("RMSE") && table.contains("P@10"), "{table}");
    let info = ok(&["info", &m]);
    assert!(
        info.contains("algorithm    sgd") && info.contains("fingerprint"),
        "{info}"
    );
    assert!(info.contains("list head    als-implicit"), "{info}");
    let meta = json(&ok(&["info", &m, "--json"]));
    assert_eq!(meta["format_version"], 2);
    assert_eq!(meta["answers"]["ratings"], "sgd");
    assert_eq!(meta["answers"]["lists"], "als-implicit");
    assert_eq!(meta["history"].as_array().unwrap().len(), 3);
}

#[test]
fn formats_globs_folders_and_splits() {
    let d = tmp();
    let m = p(&d, "m.st");
    // ml-1m `::` format, no timestamps.
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--data",
        &data("ml-1m/ratings_notimestamp.dat"),
        "--epochs",
        "1",
        "--out",
        &m,
    ]);
    assert_eq!(json(&out)["train_rows"], 1_000_209);
    // A glob and a repeated --data: u1.base + u1.test = u.data.
    let g = data("ml-100k/u1.*");
    let out = ok(&[
        "train", "-q", "--json", "--data", &g, "--epochs", "1", "--out", &m,
    ]);
    assert_eq!(json(&out)["train_rows"], 100_000);
    // Time split needs timestamps; ml-100k has them.
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--data",
        &data("ml-100k/u.data"),
        "--split",
        "time:0.1",
        "--epochs",
        "2",
        "--out",
        &m,
    ]);
    assert_eq!(json(&out)["test"]["n"], 10_000);
    let err = fails(&[
        "train",
        "-q",
        "--data",
        &data("ml-1m/ratings_notimestamp.dat"),
        "--split",
        "time:0.1",
        "--out",
        &m,
    ]);
    assert!(err.contains("timestamp"), "{err}");
    // A folder of generic CSVs with string ids, duplicates and a header.
    std::fs::write(
        d.path().join("a.csv"),
        "user_id,item_id,score,ts\nann,x,1,10\nbob,y,2,10\nann,x,5,20\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("b.csv"),
        "user_id,item_id,score,ts\nann,x,3,15\ncid,z,4,1\n",
    )
    .unwrap();
    let dir = d.path().to_string_lossy().into_owned();
    let out = recsys(&[
        "train", "-q", "--json", "--data", &dir, "--epochs", "1", "--out", &m,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 duplicated"), "{err}");
    assert_eq!(json(&String::from_utf8_lossy(&out.stdout))["train_rows"], 3);
    let j = json(&ok(&[
        "recommend",
        "--model",
        &m,
        "--user",
        "ann",
        "--format",
        "json",
        "--include-seen",
        "-n",
        "1",
    ]));
    assert_eq!(j["source"], "model");
    // min counts
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--data",
        &data("ml-100k/u.data"),
        "--min-user-count",
        "100",
        "--min-item-count",
        "50",
        "--epochs",
        "1",
        "--out",
        &m,
    ]);
    assert!(json(&out)["users"].as_u64().unwrap() < 943);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let d = tmp();
    let m = p(&d, "m.st");
    // Missing file.
    let err = fails(&["train", "--data", "/no/such/file.csv", "--out", &m]);
    assert!(
        err.contains("/no/such/file.csv") && err.contains("no such file"),
        "{err}"
    );
    // Malformed row: file, line and field named.
    let bad = p(&d, "bad.csv");
    std::fs::write(&bad, "user,item,rating\n1,2,4\n\n1,3,five\n2,2,3\n").unwrap();
    let err = fails(&["train", "--data", &bad, "--out", &m]);
    assert!(
        err.contains("bad.csv:4") && err.contains("rating") && err.contains("five"),
        "{err}"
    );
    let out = ok(&[
        "train",
        "-q",
        "--json",
        "--data",
        &bad,
        "--skip-bad-rows",
        "--epochs",
        "1",
        "--out",
        &m,
    ]);
    assert_eq!(json(&out)["train_rows"], 2);
    // Missing field.
    std::fs::write(&bad, "1\t2\t3\t4\n5\n").unwrap();
    let err = fails(&["train", "--data", &bad, "--out", &m]);
    assert!(err.contains(":2") && err.contains("missing"), "{err}");
    // Bad flags fail before any data is read.
    let err = fails(&[
        "train",
        "--factors",
        "0",
        "--data",
        "/no/such/file",
        "--out",
        &m,
    ]);
    assert!(err.contains("factors"), "{err}");
    let err = fails(&["train", "--learning-rate=-1", "--out", &m]);
    assert!(err.contains("learning_rate"), "{err}");
    let err = fails(&["train", "--no-such-flag"]);
    assert!(err.contains("--no-such-flag"), "{err}");
    let err = fails(&["train", "--split", "sideways:0.2"]);
    assert!(err.contains("split"), "{err}");
    // A failed train leaves an existing model untouched.
    ok(&["train", "-q", "--epochs", "1", "--out", &m]);
    let before = std::fs::read(&m).unwrap();
    fails(&["train", "--data", &bad, "--out", &m]);
    assert_eq!(std::fs::read(&m).unwrap(), before);
}

#[test]
fn lists_leave_out_the_rows_held_for_validation() {
    // The validation rows are not fitted, but they are the user's: a list
    // that offers them back recommends what the user already rated.
    let d = tmp();
    let m = p(&d, "m.st");
    let base = data("ml-100k/u1.base");
    ok(&[
        "train",
        "-q",
        "--data",
        &base,
        "--validation",
        "0.2",
        "--epochs",
        "5",
        "--out",
        &m,
    ]);
    let text = std::fs::read_to_string(&base).unwrap();
    for user in ["13", "405", "655"] {
        let rated: std::collections::HashSet<&str> = text
            .lines()
            .filter(|l| l.split('\t').next() == Some(user))
            .map(|l| l.split('\t').nth(1).unwrap())
            .collect();
        let j = json(&ok(&[
            "recommend",
            "--model",
            &m,
            "--user",
            user,
            "-n",
            "100",
            "--format",
            "json",
        ]));
        let items = j["items"].as_array().unwrap();
        assert_eq!(items.len(), 100);
        for it in items {
            let id = it["item"].as_str().unwrap();
            assert!(
                !rated.contains(id),
                "user {user} rated {id} and got it back"
            );
        }
    }
}
