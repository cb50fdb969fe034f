//! Retraining: registry, warm start, gate, skip, rollback, the lock, kills
//! at every stage, and a running service picking up a promoted model.

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A data folder with ml-100k's u1.base as the first day's file.
fn setup() -> (tempfile::TempDir, String, String) {
    let d = tmp();
    let dir = p(&d, "logs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(data("ml-100k/u1.base"), format!("{dir}/day1.base")).unwrap();
    let models = p(&d, "models");
    (d, dir, models)
}

fn current(models: &str) -> String {
    std::fs::read_to_string(format!("{models}/current"))
        .unwrap()
        .trim()
        .to_string()
}

fn history(models: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(format!("{models}/history.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(json)
        .collect()
}

fn retrain(args: &[&str]) -> Output {
    recsys(&[&["retrain", "-q"], args].concat())
}

/// Writes `rows` of ml-100k's u.data as a new day's file, with ratings
/// turned upside down (6 − r) when `corrupt`.
fn add_day(dir: &str, name: &str, src: &str, corrupt: bool) {
    let text = std::fs::read_to_string(data(src)).unwrap();
    let mut out = String::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let r: i32 = f[2].parse().unwrap();
        let r = if corrupt { 6 - r } else { r };
        out += &format!("{}\t{}\t{}\t{}\n", f[0], f[1], r, f[3]);
    }
    std::fs::write(format!("{dir}/{name}"), out).unwrap();
}

#[test]
fn first_run_promotes_then_skips_then_warm_starts_and_rolls_back() {
    let (_d, dir, models) = setup();
    let out = retrain(&["--data", &dir, "--models", &models, "--once"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("promoted: "), "{s}");
    assert!(s.contains("cold start"), "{s}");
    let first = current(&models);
    assert!(first.ends_with(".safetensors"), "{first}");
    ok(&["info", &format!("{models}/current")]);

    // Same data: skipped without training.
    let s = ok(&["retrain", "-q", "--data", &dir, "--models", &models]);
    assert!(s.starts_with("skipped"), "{s}");
    assert_eq!(current(&models), first);

    // A new day's file beside the old one: warm start from the current model.
    add_day(&dir, "day2.base", "ml-100k/u1.test", false);
    let s = ok(&[
        "retrain",
        "--data",
        &dir,
        "--models",
        &models,
        "--gate",
        "rmse <= 1.05 * current",
        "--json",
    ]);
    let rec = json(s.lines().last().unwrap());
    assert_eq!(rec["decision"], "promoted", "{rec}");
    assert_eq!(
        rec["previous"].as_str().unwrap(),
        first.trim_end_matches(".safetensors")
    );
    let w = &rec["details"]["warm_start"];
    assert!(w["users_kept"].as_u64().unwrap() > 400, "{w}");
    // Warm runs take a quarter of SGD's 20 epochs.
    assert_eq!(rec["details"]["epochs"], 5, "{rec}");
    let cand = rec["details"]["metrics"]["candidate"]["rmse"]
        .as_f64()
        .unwrap();
    let cur = rec["details"]["metrics"]["current"]["rmse"]
        .as_f64()
        .unwrap();
    assert!(
        cand <= 1.05 * cur && cand < 1.1,
        "candidate {cand}, current {cur}"
    );
    let second = current(&models);
    assert_ne!(second, first);

    let list = ok(&["models", "--models", &models, "list"]);
    assert_eq!(
        list.lines().filter(|l| l.starts_with('*')).count(),
        1,
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with('*') && second.starts_with(l[2..].split(' ').next().unwrap())),
        "{list}"
    );

    // Rollback returns to the first model, and says so in the history.
    let s = ok(&["models", "--models", &models, "rollback"]);
    assert!(s.contains("rolled back"), "{s}");
    assert_eq!(current(&models), first);
    let e = fails(&["models", "--models", &models, "rollback"]);
    assert!(e.contains("nothing to roll back to"), "{e}");
    ok(&[
        "models",
        "--models",
        &models,
        "promote",
        second.trim_end_matches(".safetensors"),
    ]);
    assert_eq!(current(&models), second);
    let events: Vec<String> = history(&models)
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["event"].as_str().unwrap(),
                r["decision"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            "retrain/promoted",
            "retrain/skipped",
            "retrain/promoted",
            "rollback/",
            "promote/"
        ]
    );
    let e = fails(&["models", "--models", &models, "promote", "../etc/passwd"]);
    assert!(e.contains("not a model id"), "{e}");
}

#[test]
fn gate_rejects_a_candidate_trained_on_corrupted_data() {
    let (_d, dir, models) = setup();
    let holdout = data("ml-100k/u1.test");
    ok(&[
        "retrain",
        "-q",
        "--data",
        &dir,
        "--models",
        &models,
        "--holdout",
        &holdout,
    ]);
    let before = current(&models);
    // Every rating of the new day upside down (5 ↔ 1).
    add_day(&dir, "day2.base", "ml-100k/u2.test", true);
    let out = retrain(&["--data", &dir, "--models", &models, "--holdout", &holdout]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("rejected: "), "{s}");
    assert_eq!(current(&models), before, "current must not move");
    let last = history(&models).pop().unwrap();
    assert_eq!(last["decision"], "rejected");
    assert!(last["reason"]
        .as_str()
        .unwrap()
        .contains("rmse <= 1.005 * current"));
    // The rejected candidate stays in the registry for inspection.
    let list = ok(&["models", "--models", &models, "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
}

#[test]
fn bad_flags_fail_before_reading_data() {
    for (args, want) in [
        (vec!["--gate", "loss <= current"], "unknown metric"),
        (vec!["--every", "soon"], "--every"),
        (vec!["--cron", "61 * * * *"], "--cron"),
        (vec!["--holdout-fraction", "0.9"], "--holdout-fraction"),
        (vec!["--keep", "0"], "--keep 0"),
        (
            vec!["--every", "1m", "--cron", "* * * * *"],
            "cannot be used with",
        ),
    ] {
        let e = fails(&[&["retrain", "--data", "/nonexistent/x.csv"], &args[..]].concat());
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let d = tmp();
    let e = fails(&[
        "retrain",
        "--data",
        "/nonexistent/x.csv",
        "--models",
        &p(&d, "m"),
    ]);
    assert!(e.contains("/nonexistent/x.csv"), "{e}");
}

fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_recsys"));
    c.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.spawn().expect("starting recsys")
}

/// Reads the child's stderr until it contains `what`.
fn wait_for_stderr(child: &mut Child, what: &str) -> String {
    read_stderr_until(child, &format!("{what:?}"), |seen| {
        seen.contains(what).then(|| seen.to_string())
    })
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs the fault-injection feature: cargo test --release --features fault-injection"
)]
fn kill_at_every_stage_leaves_current_valid_and_the_next_run_recovers() {
    let (_d, dir, models) = setup();
    ok(&["retrain", "-q", "--data", &dir, "--models", &models]);
    let mut good = current(&models);
    for (n, stage) in ["loading", "training", "writing", "promoting"]
        .iter()
        .enumerate()
    {
        // Each day brings new users, so the data (and its fingerprint) changes.
        let text = std::fs::read_to_string(data("ml-100k/u1.test")).unwrap();
        let day: String = text
            .lines()
            .map(|l| format!("{}0000{l}\n", n + 1))
            .collect();
        std::fs::write(format!("{dir}/day{}.base", n + 2), day).unwrap();
        let mut child = spawn(
            &[
                "retrain",
                "--data",
                &dir,
                "--models",
                &models,
                "--gate",
                "rmse <= 2 * current",
            ],
            &[("RECSYS_FAULT_AT", stage)],
        );
        wait_for_stderr(&mut child, &format!("stalled at {stage}"));
        // While it holds the lock, a second run refuses to start.
        let e = fails(&["retrain", "--data", &dir, "--models", &models]);
        assert!(e.contains("another retrain is running"), "{stage}: {e}");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(current(&models), good, "{stage}: current moved");
        ok(&["info", &format!("{models}/current")]);
        // The next run takes over the dead run's lock, cleans its temp
        // files and promotes normally.
        let out = retrain(&[
            "--data",
            &dir,
            "--models",
            &models,
            "--gate",
            "rmse <= 2 * current",
        ]);
        assert!(
            out.status.success(),
            "{stage}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = ok(&[
            "retrain",
            "--data",
            &dir,
            "--models",
            &models,
            "--force",
            "--gate",
            "rmse <= 2 * current",
        ]);
        assert!(s.contains("promoted"), "{stage}: {s}");
        let leftovers: Vec<_> = std::fs::read_dir(&models)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "{stage}: {leftovers:?}");
        let now = current(&models);
        assert_ne!(now, good, "{stage}");
        ok(&["info", &format!("{models}/current")]);
        good = now;
    }
    let h = history(&models);
    assert_eq!(h.iter().filter(|r| r["decision"] == "promoted").count(), 9);
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn service_picks_up_a_scheduled_retrain_without_a_failed_request() {
    let (_d, dir, models) = setup();
    ok(&["retrain", "-q", "--data", &dir, "--models", &models]);
    let first = current(&models);
    // Port 0: the kernel picks a free port and serve says which; probing
    // for a free port first could race with another test taking it.
    let mut server = spawn(
        &[
            "serve",
            "--model",
            &format!("{models}/current"),
            "--addr",
            "127.0.0.1:0",
            "--watch-ms",
            "100",
        ],
        &[],
    );
    let port = serve_addr(&mut server).port();
    let version = |body: &str| json(body)["version"].as_str().unwrap().to_string();
    assert_eq!(version(&http_get(port, "/v1/model").1), first);

    let mut sched = spawn(
        &[
            "retrain",
            "-q",
            "--data",
            &dir,
            "--models",
            &models,
            "--every",
            "1s",
            "--gate",
            "rmse <= 1.05 * current",
        ],
        &[],
    );
    // Requests all along; a new day's file arrives meanwhile. The client
    // counts what it sent, so the test waits for requests, not for time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let (mut ok_n, mut bad) = (0usize, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (s, b) = http_get(port, "/v1/users/1/recommendations?n=5");
                if s == 200 {
                    ok_n += 1;
                } else {
                    bad.push((s, b));
                }
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            (ok_n, bad)
        })
    };
    let sent_now = || sent.load(std::sync::atomic::Ordering::Relaxed);
    wait_until("requests before the new data", || sent_now() >= 20);
    add_day(&dir, "day2.base", "ml-100k/u1.test", false);
    let t0 = Instant::now();
    let new_version = loop {
        let v = version(&http_get(port, "/v1/model").1);
        if v != first {
            break v;
        }
        assert!(
            t0.elapsed() < DEADLINE,
            "the service never reported a new model"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Requests after the swap too: the new model must answer them.
    let at_swap = sent_now();
    wait_until("requests after the swap", || sent_now() >= at_swap + 20);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok_n, bad) = client.join().unwrap();
    let _ = sched.kill();
    let _ = server.kill();
    let _ = sched.wait();
    let _ = server.wait();
    assert_eq!(new_version, current(&models));
    assert!(ok_n > 10, "only {ok_n} requests");
    assert!(bad.is_empty(), "failed requests: {bad:?}");
}
