//! What each fuzz target does with its input, shared with `cargo test`
//! (tests/suite/fuzz_regressions.rs replays the kept inputs through these
//! same functions). Every function takes arbitrary bytes and must return
//! normally: bad input is an error value or a 4xx, and a panic or a failed
//! assertion here is a bug in recsys.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request};
use recsys::data::{self, Format, LoadOptions};
use recsys::interactions::{IdMap, Interactions};
use recsys::model::Model;
use recsys::score::{self, foldin, similar, RecommendOptions};
use recsys::serve::{app, AppState, ServeOptions};
use tower::ServiceExt;

/// The model reader: bytes either load as a model that can be scored, or
/// are refused with an error.
pub fn model_file(data: &[u8]) {
    let Ok(m) = Model::from_bytes(data) else {
        return;
    };
    // The loader's checks promise that later indexing stays in bounds:
    // use every array once.
    let o = RecommendOptions {
        explain: 2,
        ..Default::default()
    };
    if m.n_users() > 0 {
        let u = m.user_ids().key(0).to_string();
        score::recommend(&m, &u, &o).expect("a known user scores");
    }
    score::recommend(&m, "\u{1}not-a-user", &o).expect("an unknown user gets the fallback");
    if m.n_items() > 0 {
        let i = m.item_ids().key(0).to_string();
        let _ = similar::similar_items(&m, &i, 5, &o.filters);
        let _ = foldin::recommend_items(&m, &[(i, Some(1.0))], &o);
    }
}

/// The input formats, each read through the real loader from a file whose
/// name carries the format's usual extension.
#[derive(Clone, Copy, Debug)]
pub enum RowFormat {
    Csv,
    Tsv,
    Ml100k,
    Ml1m,
    Adjacency,
    Parquet,
}

impl RowFormat {
    fn file_name(self) -> &'static str {
        match self {
            RowFormat::Csv => "ratings.csv",
            RowFormat::Tsv => "ratings.tsv",
            RowFormat::Ml100k => "u.data",
            RowFormat::Ml1m => "ratings.dat",
            RowFormat::Adjacency => "train.txt",
            RowFormat::Parquet => "ratings.parquet",
        }
    }
    fn format(self) -> Format {
        match self {
            RowFormat::Csv => Format::Csv,
            RowFormat::Tsv => Format::Tsv,
            RowFormat::Ml100k => Format::Ml100k,
            RowFormat::Ml1m => Format::Ml1m,
            RowFormat::Adjacency => Format::Adjacency,
            RowFormat::Parquet => Format::Parquet,
        }
    }
}

/// The row parser of one format. The first byte holds options (bit 0: force
/// the format instead of detecting it; bit 1: skip bad rows; bit 2: minimum
/// counts of 2); the rest is the file. What loads must be consistent.
pub fn rows(fmt: RowFormat, data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    tolerate_reader_panics();
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = dir.path().join(fmt.file_name());
    std::fs::write(&path, body).expect("writing the scratch file");
    let min = if flags & 4 != 0 { 2 } else { 0 };
    let opts = LoadOptions {
        format: (flags & 1 != 0).then_some(fmt.format()),
        skip_bad_rows: flags & 2 != 0,
        min_user_count: min,
        min_item_count: min,
        ..Default::default()
    };
    let Ok((x, report)) = data::load(&[path.to_string_lossy().into_owned()], &opts) else {
        return;
    };
    let n = x.len();
    assert!(x.items.len() == n && x.values.len() == n);
    assert!(x.times.as_ref().is_none_or(|t| t.len() == n));
    assert!(x.users.iter().all(|&u| (u as usize) < x.n_users()));
    assert!(x.items.iter().all(|&i| (i as usize) < x.n_items()));
    assert!(x.values.iter().all(|v| v.is_finite()), "ratings are finite");
    assert_eq!(
        (report.rows, report.users, report.items),
        (n, x.n_users(), x.n_items())
    );
}

/// polars' readers panic on some malformed files (a corrupt Parquet footer);
/// `data::load` catches that and returns an error, which is what is tested.
/// libFuzzer's panic hook aborts on any panic, caught or not, so panics
/// raised inside polars are let through to be caught; all others still
/// count as crashes.
fn tolerate_reader_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info
                .location()
                .is_some_and(|l| l.file().contains("/polars-"))
            {
                hook(info)
            }
        }));
    });
}

/// A model file for the HTTP target, written once per process.
fn served_model() -> &'static PathBuf {
    static MODEL: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &MODEL
        .get_or_init(|| {
            let (mut users, mut items) = (Vec::new(), Vec::new());
            for u in 0..30u32 {
                for i in 0..20u32 {
                    if (u < 15) == (i < 10) && (u + i) % 3 != 0 {
                        users.push(u);
                        items.push(i);
                    }
                }
            }
            let n = users.len();
            let x = Interactions {
                users,
                items,
                values: vec![1.0; n],
                times: None,
                user_ids: Arc::new(IdMap::from_strings(
                    (0..30).map(|u| format!("u{u}")).collect(),
                )),
                item_ids: Arc::new(IdMap::from_ints((100..120).collect())),
            };
            let m = recsys::train::als::AlsParams {
                factors: 4,
                epochs: 2,
                threads: Some(1),
                ..Default::default()
            }
            .check()
            .expect("valid params")
            .fit(&x, None, &mut |_| {})
            .expect("training the fixture");
            let dir = tempfile::tempdir().expect("a scratch directory");
            let p = dir.path().join("m.safetensors");
            m.save(&p).expect("saving the fixture");
            (dir, p)
        })
        .1
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Bytes outside what a URI may hold, percent-encoded (`keep` are also left as they are).
fn encode(raw: &[u8], keep: &[u8]) -> String {
    let mut s = String::with_capacity(raw.len());
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The HTTP request types, through the real router: the first byte picks the
/// route and headers; the rest is `path segment \n query \n body`. Any request
/// gets a non-5xx answer, and a 4xx carries a JSON `error`.
pub fn http_request(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == b'\n');
    let seg = encode(parts.next().unwrap_or_default(), b"");
    let query = encode(parts.next().unwrap_or_default(), b"=&,%+");
    let body = parts.next().unwrap_or_default().to_vec();
    let (method, uri) = match sel % 4 {
        0 => ("GET", format!("/v1/users/{seg}/recommendations?{query}")),
        1 => ("POST", format!("/v1/recommendations?{query}")),
        2 => ("GET", format!("/v1/items/{seg}/similar?{query}")),
        _ => ("PUT", "/v1/availability".to_string()),
    };
    let mut req = Request::builder().method(method).uri(&uri);
    if sel & 0x10 == 0 {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    if sel & 0x20 == 0 {
        req = req.header(header::AUTHORIZATION, "Bearer t0ken");
    }
    let Ok(req) = req.body(Body::from(body)) else {
        return;
    };
    let st = AppState::new(ServeOptions {
        model_path: served_model().clone(),
        admin_token: Some("t0ken".into()),
        // A slow fuzzing build must not turn into a 503: libFuzzer's own
        // timeout catches hangs.
        timeout: Duration::from_secs(600),
        ..Default::default()
    })
    .expect("the fixture model loads");
    runtime().block_on(async move {
        let resp = app(st)
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("reading the response");
        assert!(
            !status.is_server_error(),
            "{method} {uri} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        if status.is_client_error() {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{method} {uri} answered {status} without a JSON body: {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert!(v["error"].is_string(), "{method} {uri}: {v}");
        }
    });
}
