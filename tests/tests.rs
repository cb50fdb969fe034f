//! End-to-end tests: the real `recsys` binary on the real data sets in
//! `../shared/data` and the peer splits in `../shared/bench/splits`.

#[path = "suite/browser.rs"]
mod browser;
#[path = "suite/cli.rs"]
mod cli;
#[path = "suite/fuzz_regressions.rs"]
mod fuzz_regressions;
#[path = "suite/implicit.rs"]
mod implicit;
#[path = "suite/layers.rs"]
mod layers;
#[path = "suite/model_file.rs"]
mod model_file;
#[path = "suite/properties.rs"]
mod properties;
#[path = "suite/quality.rs"]
mod quality;
#[path = "suite/retrain.rs"]
mod retrain;
#[path = "suite/scoring.rs"]
mod scoring;
#[path = "suite/spark.rs"]
mod spark;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join(rel)
}

pub fn data(rel: &str) -> String {
    shared(&format!("data/{rel}"))
        .to_string_lossy()
        .into_owned()
}

pub fn split(rel: &str) -> String {
    shared(&format!("bench/splits/{rel}"))
        .to_string_lossy()
        .into_owned()
}

pub fn recsys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recsys"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running recsys")
}

pub fn ok(args: &[&str]) -> String {
    let out = recsys(args);
    assert!(
        out.status.success(),
        "recsys {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with exit code 2; returns its stderr.
pub fn fails(args: &[&str]) -> String {
    let out = recsys(args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "recsys {args:?} should fail with 2; stdout {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn p(d: &tempfile::TempDir, name: &str) -> String {
    d.path().join(name).to_string_lossy().into_owned()
}
