//! The scoring commands end to end: filters from files, similar items,
//! fold-in, recommend-all to CSV and Parquet, the IVF index.

use super::*;

fn ml100k_model(d: &tempfile::TempDir) -> String {
    let m = p(d, "m.safetensors");
    ok(&[
        "train",
        "-q",
        "--implicit",
        "--data",
        &split("ml-100k_implicit_train.csv"),
        "--out",
        &m,
    ]);
    m
}

fn items_of(out: &str) -> Vec<String> {
    json(out)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn filter_files_similar_and_fold_in() {
    let d = tmp();
    let m = ml100k_model(&d);
    let base = items_of(&ok(&[
        "recommend",
        "-m",
        &m,
        "--user",
        "1",
        "-n",
        "5",
        "--format",
        "json",
    ]));
    assert_eq!(base.len(), 5);
    // --exclude drops the top item; --only restricts; --available intersects.
    let ex = p(&d, "ex.txt");
    std::fs::write(&ex, format!("# sold out\n{}\n", base[0])).unwrap();
    let got = items_of(&ok(&[
        "recommend",
        "-m",
        &m,
        "--user",
        "1",
        "-n",
        "5",
        "--exclude",
        &ex,
        "--format",
        "json",
    ]));
    assert!(!got.contains(&base[0]) && got[0] == base[1], "{got:?}");
    let only = p(&d, "only.txt");
    std::fs::write(&only, "50,100,181,258,9999\n").unwrap();
    let got = items_of(&ok(&[
        "recommend",
        "-m",
        &m,
        "--user",
        "1",
        "-n",
        "10",
        "--only",
        &only,
        "--format",
        "json",
    ]));
    assert!(
        got.iter()
            .all(|i| ["50", "100", "181", "258"].contains(&i.as_str())),
        "{got:?}"
    );
    let avail = p(&d, "avail.txt");
    std::fs::write(&avail, "100\n258\n").unwrap();
    let got = items_of(&ok(&[
        "recommend",
        "-m",
        &m,
        "--user",
        "1",
        "-n",
        "10",
        "--only",
        &only,
        "--available",
        &avail,
        "--format",
        "json",
    ]));
    assert!(got.iter().all(|i| i == "100" || i == "258"), "{got:?}");
    // Similar items, with titles.
    let sim = json(&ok(&[
        "similar",
        "-m",
        &m,
        "--item",
        "50",
        "-n",
        "3",
        "--titles",
        &data("ml-100k/u.item"),
        "--format",
        "json",
    ]));
    assert_eq!(sim["items"].as_array().unwrap().len(), 3);
    assert!(sim["items"][0]["title"].is_string());
    assert!(fails(&["similar", "-m", &m, "--item", "no-such-item"]).contains("unknown item"));
    // A new user folded in; explanations name the user's own items.
    let f = json(&ok(&[
        "recommend",
        "-m",
        &m,
        "--items",
        "50,172,181",
        "-n",
        "5",
        "--explain",
        "--format",
        "json",
    ]));
    assert_eq!(f["source"], "fold_in");
    assert!(f["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| !["50", "172", "181"].contains(&i["item"].as_str().unwrap())));
    let why: Vec<&str> = f["items"][0]["because"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        !why.is_empty() && why.iter().all(|w| ["50", "172", "181"].contains(w)),
        "{why:?}"
    );
    // Cold start.
    let c = json(&ok(&[
        "recommend",
        "-m",
        &m,
        "--user",
        "1",
        "--min-history",
        "100000",
        "--format",
        "json",
    ]));
    assert_eq!(c["source"], "popularity");
    assert!(fails(&["recommend", "-m", &m, "--items", "1:abc"]).contains("ID:VALUE"));
    // `--items` takes ids only; the same history from a file goes to --items-file.
    let hist = p(&d, "history.txt");
    std::fs::write(&hist, "50\n172\n181\n").unwrap();
    let e = fails(&["recommend", "-m", &m, "--items", &hist]);
    assert!(e.contains("--items-file"), "{e}");
    let from_file = json(&ok(&[
        "recommend",
        "-m",
        &m,
        "--items-file",
        &hist,
        "-n",
        "5",
        "--format",
        "json",
    ]));
    let from_ids = json(&ok(&[
        "recommend",
        "-m",
        &m,
        "--items",
        "50,172,181",
        "-n",
        "5",
        "--format",
        "json",
    ]));
    assert_eq!(from_file["items"], from_ids["items"]);
}

#[test]
fn recommend_all_matches_single_users_and_writes_parquet() {
    let d = tmp();
    let m = ml100k_model(&d);
    let csv = p(&d, "recs.csv");
    ok(&["recommend", "-m", &m, "--all", "-n", "5", "--out", &csv]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "user,rank,item,score");
    for user in ["1", "500", "943"] {
        let single = items_of(&ok(&[
            "recommend",
            "-m",
            &m,
            "--user",
            user,
            "-n",
            "5",
            "--format",
            "json",
        ]));
        let batch: Vec<String> = lines
            .iter()
            .filter(|l| l.split(',').next() == Some(user))
            .map(|l| l.split(',').nth(2).unwrap().to_string())
            .collect();
        assert_eq!(batch, single, "user {user}");
    }
    let pq = p(&d, "recs.parquet");
    ok(&["recommend", "-m", &m, "--all", "-n", "5", "--out", &pq]);
    let info = json(&ok(&["inspect", "--data", &pq, "--rating-col", "score"]));
    assert_eq!(info["rows"].as_u64().unwrap() as usize, lines.len() - 1);
}

#[test]
fn ivf_index_recalls_the_exact_top_n() {
    let d = tmp();
    let m = ml100k_model(&d);
    let built = ok(&["index", "-m", &m]);
    assert!(built.contains("lists over"), "{built}");
    let (mut hit, mut total) = (0, 0);
    for user in ["1", "2", "3", "10", "100", "200", "300", "400"] {
        let exact = items_of(&ok(&[
            "recommend",
            "-m",
            &m,
            "--user",
            user,
            "--format",
            "json",
        ]));
        let approx = items_of(&ok(&[
            "recommend",
            "-m",
            &m,
            "--user",
            user,
            "--index",
            "ivf",
            "--probe",
            "60",
            "--format",
            "json",
        ]));
        hit += approx.iter().filter(|i| exact.contains(i)).count();
        total += exact.len();
    }
    assert!(hit as f64 / total as f64 >= 0.9, "recall {hit}/{total}");
    // An index from another model is refused.
    let other = p(&d, "other.safetensors");
    ok(&[
        "train",
        "-q",
        "--implicit",
        "--epochs",
        "2",
        "--data",
        &split("ml-100k_implicit_test.csv"),
        "--out",
        &other,
    ]);
    std::fs::copy(format!("{m}.ivf"), format!("{other}.ivf")).unwrap();
    let err = fails(&["recommend", "-m", &other, "--user", "1", "--index", "ivf"]);
    assert!(err.contains("index"), "{err}");
}
