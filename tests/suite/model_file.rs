//! The model file: round trip, refusal of bad files, numpy interop.

use super::*;
use recsys::model::Model;

fn trained(d: &tempfile::TempDir) -> String {
    let m = p(d, "m.safetensors");
    ok(&[
        "train",
        "-q",
        "--data",
        &data("ml-100k/u1.base"),
        "--epochs",
        "3",
        "-k",
        "16",
        "--out",
        &m,
    ]);
    m
}

#[test]
fn saved_and_loaded_models_score_identically() {
    let d = tmp();
    let m = trained(&d);
    let a = Model::load(Path::new(&m)).unwrap();
    let again = p(&d, "again.safetensors");
    a.save(Path::new(&again)).unwrap();
    let b = Model::load(Path::new(&again)).unwrap();
    assert_eq!(a.user_factors(), b.user_factors());
    assert_eq!(a.item_factors(), b.item_factors());
    assert_eq!(a.meta(), b.meta());
    for u in [0u32, 5, 900] {
        assert_eq!(a.seen(u), b.seen(u));
        for i in [0u32, 17, 1000] {
            assert_eq!(a.predict(u, i).to_bits(), b.predict(u, i).to_bits());
        }
    }
}

#[test]
fn same_seed_same_threads_same_model() {
    let d = tmp();
    let (a, b) = (p(&d, "a.st"), p(&d, "b.st"));
    for out in [&a, &b] {
        ok(&[
            "train",
            "-q",
            "--data",
            &data("ml-100k/u1.base"),
            "--epochs",
            "4",
            "--threads",
            "2",
            "--seed",
            "9",
            "--out",
            out,
        ]);
    }
    let (a, b) = (
        Model::load(Path::new(&a)).unwrap(),
        Model::load(Path::new(&b)).unwrap(),
    );
    assert_eq!(a.user_factors(), b.user_factors());
    assert_eq!(a.item_factors(), b.item_factors());
    assert_eq!(a.item_bias(), b.item_bias());
}

#[test]
fn bad_model_files_are_refused() {
    let d = tmp();
    let m = trained(&d);
    let bytes = std::fs::read(&m).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("tiny", b"abc".to_vec()),
        ("text", b"user,item,rating\n1,2,3\n".to_vec()),
        ("huge-header", {
            let mut v = u64::MAX.to_le_bytes().to_vec();
            v.extend_from_slice(&bytes[8..]);
            v
        }),
        ("garbled-header", {
            let mut v = bytes.clone();
            for b in &mut v[8..40] {
                *b = b'#';
            }
            v
        }),
        ("wrong-version", {
            // The header's own version entry, edited in place (same length).
            let pat = b"\"format_version\":\"2\"";
            let mut v = bytes.clone();
            let at = v
                .windows(pat.len())
                .position(|w| w == pat)
                .expect("the header names its format version");
            v[at + pat.len() - 2] = b'9';
            v
        }),
    ];
    for (name, content) in cases {
        let f = p(&d, name);
        std::fs::write(&f, &content).unwrap();
        let err = fails(&["recommend", "--model", &f, "--user", "1"]);
        assert!(err.contains("not a valid recsys model"), "{name}: {err}");
        if name == "wrong-version" {
            assert!(err.contains("format version 9 is not supported"), "{err}");
        }
        assert!(Model::load(Path::new(&f)).is_err());
    }
    let err = fails(&["info", "/no/such/model"]);
    assert!(err.contains("/no/such/model"), "{err}");
}

#[test]
fn numpy_reads_the_model_file() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import numpy, safetensors.numpy"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED numpy_reads_the_model_file: python3 with numpy and safetensors is not installed");
        return;
    }
    let d = tmp();
    let m = trained(&d);
    let script = "import sys; from safetensors.numpy import load_file; t = load_file(sys.argv[1]); \
                  print(t['user_factors'].shape, t['item_factors'].shape, sorted(t['user_ids'].tolist()) == list(range(1, 944)), t['seen_indptr'][-1])";
    let out = std::process::Command::new("python3")
        .args(["-c", script, &m])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("(943, 16) (1650, 16) True 80000"),
        "{text}"
    );
}

#[test]
fn version_1_model_files_load_and_answer_as_before() {
    let fx = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let want = |name: &str| json(&std::fs::read_to_string(fx(name)).unwrap());
    for algo in ["sgd", "als"] {
        let m = fx(&format!("v1-{algo}.safetensors"));
        let meta = json(&ok(&["info", &m, "--json"]));
        assert_eq!(meta["format_version"], 1, "{algo}");
        assert!(meta.get("list_head").is_none(), "{algo}");
        let got = json(&ok(&[
            "recommend",
            "-m",
            &m,
            "--user",
            "3",
            "-n",
            "5",
            "--format",
            "json",
        ]));
        assert_eq!(got, want(&format!("v1-{algo}.recommend.json")), "{algo}");
        let e = json(&ok(&[
            "eval",
            "-m",
            &m,
            "--test",
            &fx("v1-ratings.csv"),
            "--format",
            "json",
        ]));
        let before = want(&format!("v1-{algo}.eval.json"));
        for k in ["rmse", "mae", "n"] {
            assert_eq!(e.get(k), before.get(k), "{algo} {k}");
        }
    }
    let sgd = fx("v1-sgd.safetensors");
    let got = json(&ok(&[
        "recommend",
        "-m",
        &sgd,
        "--items",
        "2,22:5,7",
        "-n",
        "5",
        "--format",
        "json",
    ]));
    assert_eq!(got, want("v1-sgd.foldin.json"));
    let got = json(&ok(&[
        "similar",
        "-m",
        &fx("v1-als.safetensors"),
        "--item",
        "5",
        "-n",
        "5",
        "--format",
        "json",
    ]));
    assert_eq!(got, want("v1-als.similar.json"));
}
