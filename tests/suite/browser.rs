//! The HTML report and the serve console, looked at in headless Chromium.
//!
//! Chromium is driven over the DevTools protocol: a WebSocket on loopback
//! (`--remote-debugging-port`), spoken by the small client below, so no
//! Node, driver or extra crate is needed. The test types into the console
//! the way a person does (focus, insert text, press Enter, click) and reads
//! the lists back from the page. Screenshots go to `target/test-artifacts/`.
//!
//! Without Chromium the browser test fails under `CI=true` (`.ci/run`
//! installs it) and is skipped, saying so, elsewhere.

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long to wait for a page, a process or a port before failing.
const WAIT: Duration = Duration::from_secs(60);

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RECSYS_CHROMIUM") {
        return Some(p.into());
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Chromium's path; `None` (skip) outside CI when it is missing.
fn need_chromium() -> Option<PathBuf> {
    match chromium() {
        Some(p) => Some(p),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "chromium is missing but CI=true: .ci/run installs it (apt-get install chromium)"
            )
        }
        None => {
            eprintln!(
                "SKIPPED: browser test needs chromium (apt-get install chromium, or set RECSYS_CHROMIUM)"
            );
            None
        }
    }
}

/// A child process, killed and reaped when dropped (also when a test fails).
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn artifacts() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A plain HTTP/1.1 GET on loopback: (status, body). The body is read by
/// its Content-Length (Chromium's DevTools server keeps the connection open).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(WAIT))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            s.read_exact(&mut body)?;
        }
        None => {
            s.read_to_end(&mut body)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A minimal WebSocket client (RFC 6455): text frames, masked as a client
/// must; fragmented answers are joined; pings are answered.
struct Ws(TcpStream);

impl Ws {
    fn connect(url: &str) -> Ws {
        let rest = url.strip_prefix("ws://").expect("a ws:// URL");
        let (host, path) = rest.split_at(rest.find('/').expect("a path"));
        let mut s = TcpStream::connect(host).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "WebSocket upgrade refused: {}",
            String::from_utf8_lossy(&head)
        );
        Ws(s)
    }

    fn frame(&mut self, op: u8, payload: &[u8]) {
        let mut f = vec![0x80 | op];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 1 << 16 => {
                f.push(0x80 | 126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        let mask = [0x5a, 0x17, 0xc3, 0x8e];
        f.extend(mask);
        f.extend(payload.iter().enumerate().map(|(i, &b)| b ^ mask[i % 4]));
        self.0.write_all(&f).unwrap();
    }

    fn send(&mut self, text: &str) {
        self.frame(0x1, text.as_bytes());
    }

    fn recv(&mut self) -> String {
        let mut msg = Vec::new();
        loop {
            let mut h = [0u8; 2];
            self.0.read_exact(&mut h).unwrap();
            let (fin, op) = (h[0] & 0x80 != 0, h[0] & 0x0f);
            let mut len = (h[1] & 0x7f) as u64;
            if len == 126 {
                let mut l = [0u8; 2];
                self.0.read_exact(&mut l).unwrap();
                len = u16::from_be_bytes(l) as u64;
            } else if len == 127 {
                let mut l = [0u8; 8];
                self.0.read_exact(&mut l).unwrap();
                len = u64::from_be_bytes(l);
            }
            let mut mask = [0u8; 4];
            if h[1] & 0x80 != 0 {
                self.0.read_exact(&mut mask).unwrap();
            }
            let mut data = vec![0u8; len as usize];
            self.0.read_exact(&mut data).unwrap();
            if h[1] & 0x80 != 0 {
                data.iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b ^= mask[i % 4]);
            }
            match op {
                0x8 => panic!("the browser closed the DevTools connection"),
                0x9 => self.frame(0xA, &data),
                0xA => {}
                _ => {
                    msg.extend(data);
                    if fin {
                        return String::from_utf8(msg).unwrap();
                    }
                }
            }
        }
    }
}

/// A DevTools session with one page; events seen while waiting for answers
/// are kept (script errors are checked from them).
struct Page {
    ws: Ws,
    next: u64,
    events: Vec<Value>,
}

impl Page {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.ws
            .send(&json!({"id": id, "method": method, "params": params}).to_string());
        loop {
            let v: Value = serde_json::from_str(&self.ws.recv()).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` until it gives something other than null/false.
    fn wait_for(&mut self, expr: &str, what: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let v = self.eval(expr);
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
            assert!(t0.elapsed() < WAIT, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for(
            &format!(
                "location.href === {} && document.readyState === 'complete'",
                json!(url)
            ),
            url,
        );
    }

    fn press_enter(&mut self) {
        for t in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": t, "key": "Enter", "code": "Enter",
                       "windowsVirtualKeyCode": 13, "text": "\r"}),
            );
        }
    }

    /// Focuses `selector`, then types `text` into it and presses Enter.
    fn type_into(&mut self, selector: &str, text: &str) {
        let sel = json!(selector);
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); e.value = ''; e.focus(); }})()"
        ));
        self.call("Input.insertText", json!({ "text": text }));
        self.press_enter();
    }

    /// A left click in the middle of the first element matching `selector`.
    fn click(&mut self, selector: &str) {
        let sel = json!(selector);
        let xy = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); e.scrollIntoView(); \
             const r = e.getBoundingClientRect(); return [r.x + Math.min(20, r.width / 2), r.y + r.height / 2]; }})()"
        ));
        for t in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": t, "x": xy[0], "y": xy[1], "button": "left", "clickCount": 1}),
            );
        }
    }

    /// The whole page as a PNG file.
    fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let h = self
            .eval("Math.min(document.documentElement.scrollHeight, 8000)")
            .as_f64()
            .unwrap_or(900.0);
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": h as u64, "deviceScaleFactor": 1, "mobile": false}),
        );
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        self.call("Emulation.clearDeviceMetricsOverride", json!({}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).unwrap();
    }

    /// Script errors and console errors seen so far.
    fn errors(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| {
                e["method"] == "Runtime.exceptionThrown"
                    || (e["method"] == "Runtime.consoleAPICalled" && e["params"]["type"] == "error")
            })
            .collect()
    }
}

/// Starts headless Chromium with a fresh profile and attaches to its page.
fn browser(chrome: &Path, profile: &Path) -> (Kill, Page) {
    let child = std::process::Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let child = Kill(child);
    // Chromium writes the port it picked to DevToolsActivePort in the profile.
    let t0 = Instant::now();
    let port: u16 = loop {
        let text = std::fs::read_to_string(profile.join("DevToolsActivePort")).unwrap_or_default();
        if let Some(p) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
            if text.lines().count() >= 2 {
                break p;
            }
        }
        assert!(
            t0.elapsed() < WAIT,
            "chromium did not open its DevTools port"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (_, list) = http_get(port, "/json/list").unwrap();
    let list: Value = serde_json::from_str(&list).unwrap();
    let url = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .expect("a page target")
        .to_string();
    let mut page = Page {
        ws: Ws::connect(&url),
        next: 0,
        events: Vec::new(),
    };
    page.call("Runtime.enable", json!({}));
    page.call("Page.enable", json!({}));
    (child, page)
}

/// The items user `u` rated in an ml-100k file.
fn rated(file: &str, u: &str) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| l.split('\t').next() == Some(u))
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["item"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn report_and_console_in_headless_chromium() {
    let Some(chrome) = need_chromium() else {
        return;
    };
    let d = tmp();
    let m = p(&d, "m.safetensors");
    let base = data("ml-100k/u1.base");
    let test = data("ml-100k/u1.test");
    let items = data("ml-100k/u.item");
    let titles = recsys::data::titles::read_titles(Path::new(&items)).unwrap();
    ok(&[
        "train",
        "-q",
        "--data",
        &base,
        "--validation",
        "0.05",
        "--epochs",
        "12",
        "--out",
        &m,
    ]);
    let report = p(&d, "report.html");
    ok(&[
        "report", &m, "--test", &test, "--titles", &items, "--out", &report,
    ]);
    let html = std::fs::read_to_string(&report).unwrap();
    for external in ["<script", "<link", " src=", "url(", "@import"] {
        assert!(!html.contains(external), "report refers out: {external}");
    }

    let profile = tmp();
    let (_chrome, mut page) = browser(&chrome, profile.path());

    // The report: curves, metrics with the baseline, coverage, users.
    page.navigate(&format!("file://{report}"));
    let r = page.eval(
        r#"(() => ({
        curveCharts: document.querySelectorAll('#curves svg').length,
        curveText: document.querySelector('#curves').textContent,
        metrics: Object.fromEntries([...document.querySelectorAll('#metrics-table tbody tr')]
            .map(tr => [tr.dataset.metric, [...tr.cells].slice(1, 3).map(c => parseFloat(c.textContent))])),
        coverage: parseFloat(document.querySelector('#coverage-value').textContent),
        coverageCharts: document.querySelectorAll('#coverage svg').length,
        users: [...document.querySelectorAll('#users .user')].map(u => ({
            user: u.dataset.user,
            recs: [...u.querySelectorAll('ol.recs li')].map(li => ({item: li.dataset.item, text: li.textContent})),
            history: u.querySelectorAll('ul.history li').length})),
        svgWidth: document.querySelector('#curves svg').getBoundingClientRect().width,
        resources: performance.getEntriesByType('resource').length,
    }))()"#,
    );
    assert!(r["curveCharts"].as_u64().unwrap() >= 2, "{r}");
    for label in ["train RMSE", "validation RMSE", "Time per epoch"] {
        assert!(r["curveText"].as_str().unwrap().contains(label), "{label}");
    }
    assert!(r["svgWidth"].as_f64().unwrap() > 300.0, "charts are drawn");
    assert_eq!(r["resources"], 0, "the report loads nothing");
    // The numbers are eval's, next to a baseline.
    let ev = json(&ok(&[
        "eval", "--model", &m, "--test", &test, "--format", "json",
    ]));
    for key in ["rmse", "precision@10", "ndcg@10", "coverage@10"] {
        let row = &r["metrics"][key];
        let shown = row[0].as_f64().unwrap_or_else(|| panic!("{key}: {r}"));
        assert!((shown - ev[key].as_f64().unwrap()).abs() < 1e-4, "{key}");
        assert!(row[1].as_f64().is_some(), "{key} has a baseline");
    }
    let cov = r["coverage"].as_f64().unwrap();
    assert!(cov > 0.0 && cov <= 100.0, "{cov}");
    assert_eq!(r["coverageCharts"], 1);
    let users = r["users"].as_array().unwrap();
    assert_eq!(users.len(), 6);
    for u in users {
        let recs = u["recs"].as_array().unwrap();
        assert_eq!(recs.len(), 10, "{u}");
        assert!(u["history"].as_u64().unwrap() > 0);
        let seen = rated(&base, u["user"].as_str().unwrap());
        for it in recs {
            let id = it["item"].as_str().unwrap();
            assert!(!seen.iter().any(|s| s == id), "a training item recommended");
            assert!(
                it["text"].as_str().unwrap().contains(&titles[id]),
                "title of {id}"
            );
        }
    }
    page.screenshot(&artifacts().join("report.png"));

    // The console, against a running service.
    // Port 0: the kernel picks a free port and serve says which.
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_recsys"))
        .args(["serve", "--model", &m, "--titles", &items, "--addr"])
        .arg("127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = serve_addr(&mut serve).port();
    let _serve = Kill(serve);
    let t0 = Instant::now();
    while !http_get(port, "/readyz").is_ok_and(|(s, _)| s == 200) {
        assert!(t0.elapsed() < WAIT, "recsys serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let api = |path: &str| -> Value {
        let (s, body) = http_get(port, path).unwrap();
        assert_eq!(s, 200, "{path}: {body}");
        json(&body)
    };
    page.navigate(&format!("http://127.0.0.1:{port}/"));
    page.wait_for(
        "document.querySelector('#model-version').textContent === 'm.safetensors'",
        "the model's version",
    );

    // Type a user id, press Enter, read the list back.
    page.type_into("#user", "196");
    let read_list = |sel: &str| {
        format!(
            "(() => {{ const l = [...document.querySelectorAll('{sel} li')]; \
             return l.length === 10 ? l.map(li => ({{item: li.dataset.item, \
             title: li.querySelector('.name').textContent}})) : null; }})()"
        )
    };
    let shown = page.wait_for(&read_list("#recs"), "the recommendations");
    let want = api("/v1/users/196/recommendations?n=10");
    assert_eq!(ids(&shown), ids(&want["items"]), "the list the API gives");
    let seen = rated(&base, "196");
    for it in shown.as_array().unwrap() {
        let id = it["item"].as_str().unwrap();
        assert_eq!(it["title"].as_str().unwrap(), titles[id], "title of {id}");
        assert!(!seen.iter().any(|s| s == id), "training item {id} shown");
    }
    assert_eq!(
        page.eval("document.querySelector('#recs-source').textContent"),
        "source: model"
    );

    // Click the first recommendation: its similar items appear.
    let first = shown[0]["item"].as_str().unwrap().to_string();
    page.click("#recs li");
    let sim = page.wait_for(&read_list("#similar"), "the similar items");
    let want = api(&format!("/v1/items/{first}/similar?n=10"));
    assert_eq!(ids(&sim), ids(&want["items"]));
    let heading = page.eval("document.querySelector('#similar-title').textContent");
    assert_eq!(heading, format!("Similar to {}", titles[&first]));
    page.screenshot(&artifacts().join("console.png"));

    // A new user given by a few items (fold-in).
    page.type_into("#items", "50, 172, 133");
    page.wait_for(
        "document.querySelector('#recs-source').textContent === 'source: fold_in' \
         && document.querySelectorAll('#recs li').length === 10",
        "the fold-in list",
    );
    // Only unknown items: the page says the list is the popular items.
    page.type_into("#items", "no-such-item");
    page.wait_for(
        "document.querySelector('#recs-source').textContent.endsWith('popularity')",
        "the popularity fallback",
    );
    // A request the service refuses (more items than it takes): the page
    // shows the service's own message; the next good request clears it.
    let many: Vec<String> = (1..=1001).map(|i| i.to_string()).collect();
    page.type_into("#items", &many.join(","));
    page.wait_for(
        "document.querySelector('#error').textContent.includes('items: at most 1000 entries, got 1001')",
        "the service's error message",
    );
    page.type_into("#user", "196");
    page.wait_for(
        "document.querySelector('#error').textContent === '' \
         && document.querySelector('#recs-source').textContent === 'source: model'",
        "the error cleared by a good request",
    );
    assert!(
        page.errors().is_empty(),
        "script errors: {:?}",
        page.errors()
    );
}

#[test]
fn report_of_an_implicit_model_and_bad_input() {
    let d = tmp();
    let m = p(&d, "als.safetensors");
    ok(&[
        "train",
        "-q",
        "--data",
        &data("ml-100k/u1.base"),
        "--positive-threshold",
        "4",
        "--validation",
        "0.1",
        "--epochs",
        "5",
        "--out",
        &m,
    ]);
    // The history holds a loss, ranking validation and times for every epoch.
    let meta = json(&ok(&["info", &m, "--json"]));
    let hist = meta["history"].as_array().unwrap();
    assert_eq!(hist.len(), 5);
    for h in hist {
        for key in [
            "train_loss",
            "valid_precision",
            "valid_ndcg",
            "seconds",
            "elapsed_seconds",
        ] {
            assert!(h[key].as_f64().is_some(), "{key} missing: {h}");
        }
    }
    let losses: Vec<f64> = hist
        .iter()
        .map(|h| h["train_loss"].as_f64().unwrap())
        .collect();
    assert!(losses[4] < losses[0], "ALS lowers its loss: {losses:?}");
    let out = p(&d, "r.html");
    let said = ok(&["report", &m, "--out", &out, "--user", "1", "--user", "13"]);
    assert!(said.contains("coverage@10"), "{said}");
    let html = std::fs::read_to_string(&out).unwrap();
    for part in [
        "Training loss per epoch",
        "Ranking quality per epoch",
        "data-user=\"1\"",
        "data-user=\"13\"",
        "--test PATH",
    ] {
        assert!(html.contains(part), "{part}");
    }
    // Bad input: a clear error and status 2, and no file left behind.
    let bad = p(&d, "bad.html");
    assert!(
        fails(&["report", &p(&d, "missing.safetensors"), "--out", &bad])
            .contains("missing.safetensors")
    );
    assert!(fails(&["report", &m, "--out", &bad, "--user", "nobody"]).contains("nobody"));
    assert!(fails(&["report", &m, "--out", &bad, "-n", "0"]).contains("n"));
    assert!(
        fails(&["report", &m, "--out", &bad, "--test", &p(&d, "nope.csv")]).contains("nope.csv")
    );
    assert!(!Path::new(&bad).exists());
}
