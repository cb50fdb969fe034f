//! End-to-end tests: the real `recsys` binary on the real data sets in
//! `../shared/data` and the peer splits in `../shared/bench/splits`.

#[path = "suite/browser.rs"]
mod browser;
#[path = "suite/cli.rs"]
mod cli;
#[path = "suite/contract.rs"]
mod contract;
#[path = "suite/event_logs.rs"]
mod event_logs;
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
#[path = "suite/tune.rs"]
mod tune;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

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

/// How long a test waits for a process or the service before failing:
/// generous, since other builds share the machine's cores.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Reads the child's stderr until `done` finds what it looks for in all
/// of it so far, and returns that. A thread keeps draining the pipe
/// afterwards: a closed pipe would make the child's next write to stderr
/// fail. Panics after [`DEADLINE`] without new output.
pub fn read_stderr_until<T>(child: &mut Child, what: &str, done: impl Fn(&str) -> Option<T>) -> T {
    let mut err = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Reads to the end even when nobody listens any more.
        while let Ok(n @ 1..) = err.read(&mut buf) {
            let _ = tx.send(buf[..n].to_vec());
        }
    });
    let mut seen = String::new();
    loop {
        if let Some(t) = done(&seen) {
            return t;
        }
        match rx.recv_timeout(DEADLINE) {
            Ok(b) => seen += &String::from_utf8_lossy(&b),
            Err(_) => panic!("no {what} in {seen:?} (the process ended or stalled elsewhere)"),
        }
    }
}

/// The address a `recsys serve --addr 127.0.0.1:0` child bound, from the
/// line it prints once listening (its stderr must be piped).
pub fn serve_addr(child: &mut Child) -> SocketAddr {
    let marker = recsys::serve::LISTENING;
    read_stderr_until(child, "listening line", |seen| {
        let rest = &seen[seen.find(marker)? + marker.len()..];
        // Only a whole line: the port may arrive in a later read.
        rest.split_once('\n')?.0.trim().parse().ok()
    })
}

/// Polls `ready` until it holds; panics after [`DEADLINE`].
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ready() {
        assert!(t0.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
