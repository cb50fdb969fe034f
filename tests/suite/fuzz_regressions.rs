//! Replays the fuzz targets' kept inputs through the same code the targets
//! run (fuzz/src/lib.rs): the seed corpora in `fuzz/seeds/<target>/` and every
//! input that once found a bug, in `fuzz/regressions/<target>/`.

use std::path::Path;

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use harness::RowFormat;

/// Runs `f` on every file kept for `target`; there must be at least one.
fn replay(target: &str, f: impl Fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            // Name the input if it fails again.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&bytes)));
            assert!(r.is_ok(), "{} fails again", file.display());
            n += 1;
        }
    }
    assert!(n > 0, "no kept inputs for {target}");
}

#[test]
fn model_file() {
    replay("model_file", harness::model_file);
}

#[test]
fn http_request() {
    replay("http_request", harness::http_request);
}

#[test]
fn rows_csv() {
    replay("rows_csv", |d| harness::rows(RowFormat::Csv, d));
}

#[test]
fn rows_tsv() {
    replay("rows_tsv", |d| harness::rows(RowFormat::Tsv, d));
}

#[test]
fn rows_ml100k() {
    replay("rows_ml100k", |d| harness::rows(RowFormat::Ml100k, d));
}

#[test]
fn rows_ml1m() {
    replay("rows_ml1m", |d| harness::rows(RowFormat::Ml1m, d));
}

#[test]
fn rows_adjacency() {
    replay("rows_adjacency", |d| harness::rows(RowFormat::Adjacency, d));
}

#[test]
fn rows_parquet() {
    replay("rows_parquet", |d| harness::rows(RowFormat::Parquet, d));
}
