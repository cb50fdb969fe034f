//! The service's routes end to end (through `app()`, no socket unless
//! named), reload and the limits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::*;
use crate::interactions::{IdMap, Interactions};
use crate::train::als::AlsParams;

fn write_model(dir: &Path, name: &str, seed: u64) -> PathBuf {
    let mut users = Vec::new();
    let mut items = Vec::new();
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
        user_ids: Arc::new(IdMap::from_ints((0..30).collect())),
        item_ids: Arc::new(IdMap::from_ints((100..120).collect())),
    };
    let m = AlsParams {
        factors: 4,
        epochs: 3,
        seed,
        threads: Some(1),
        ..Default::default()
    }
    .check()
    .unwrap()
    .fit(&x, None, &mut |_| {})
    .unwrap();
    let p = dir.join(name);
    m.save(&p).unwrap();
    p
}

fn point(dir: &Path, name: &str) -> PathBuf {
    let cur = dir.join("current");
    crate::util::atomic_write(&cur, |w| {
        std::io::Write::write_all(w, name.as_bytes()).map_err(|e| crate::Error::io("current", e))
    })
    .unwrap();
    cur
}

fn state(dir: &Path, token: Option<&str>, limit: usize) -> Arc<AppState> {
    write_model(dir, "a.safetensors", 1);
    let cur = point(dir, "a.safetensors");
    AppState::new(ServeOptions {
        model_path: cur,
        admin_token: token.map(String::from),
        max_concurrency: limit,
        ..Default::default()
    })
    .unwrap()
}

async fn call(
    st: &Arc<AppState>,
    method: &str,
    uri: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = b.body(Body::from(body.unwrap_or("").to_string())).unwrap();
    let resp = app(Arc::clone(st)).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, v)
}

#[tokio::test]
async fn routes_answer_and_bad_requests_get_json_4xx() {
    let d = tempfile::tempdir().unwrap();
    let st = state(d.path(), Some("s3cret"), 64);
    let (s, _, v) = call(&st, "GET", "/v1/users/1/recommendations?n=5", None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 5);
    assert_eq!(v["source"], "model");
    for uri in [
        "/v1/users/1/recommendations?n=0",
        "/v1/users/1/recommendations?n=abc",
        "/v1/users/1/recommendations?bogus=1",
        "/v1/users/1/recommendations?fallback=x",
    ] {
        let (s, _, v) = call(&st, "GET", uri, None, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
        assert!(v["error"].is_string(), "{uri}: {v}");
    }
    let (s, _, v) = call(&st, "GET", "/v1/users/nobody/recommendations", None, None).await;
    assert_eq!(
        (s, v["source"].as_str()),
        (StatusCode::OK, Some("popularity"))
    );
    let (s, _, _) = call(
        &st,
        "GET",
        "/v1/users/nobody/recommendations?strict=true",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Batch and fold-in.
    let (s, _, v) = call(
        &st,
        "POST",
        "/v1/recommendations",
        Some(r#"{"users": ["1", 2, "nobody"], "n": 3}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    let (s, _, v) = call(
        &st,
        "POST",
        "/v1/recommendations",
        Some(r#"{"items": ["100", {"item": 101, "value": 2.0}], "n": 3}"#),
        None,
    )
    .await;
    assert_eq!(
        (s, v["source"].as_str()),
        (StatusCode::OK, Some("fold_in")),
        "{v}"
    );
    for body in [
        "{not json",
        r#"{"users": ["1"], "items": ["100"]}"#,
        r#"{"users": [1.5]}"#,
        r#"{"nope": 1}"#,
        "{}",
    ] {
        let (s, _, v) = call(&st, "POST", "/v1/recommendations", Some(body), None).await;
        assert!(s.is_client_error(), "{body}: {s}");
        assert!(v["error"].is_string(), "{body}: {v}");
    }
    // Similar items.
    let (s, _, v) = call(&st, "GET", "/v1/items/100/similar?n=3", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
    let (s, _, _) = call(&st, "GET", "/v1/items/999/similar", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Model info, health, metrics, unknown routes.
    let (s, _, v) = call(&st, "GET", "/v1/model", None, None).await;
    assert_eq!(
        (s, v["version"].as_str()),
        (StatusCode::OK, Some("a.safetensors"))
    );
    assert_eq!(
        call(&st, "GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&st, "GET", "/readyz", None, None).await.0,
        StatusCode::OK
    );
    let (_, _, m) = call(&st, "GET", "/metrics", None, None).await;
    let m = m.as_str().unwrap().to_string();
    assert!(
        m.contains(
            "recsys_requests_total{route=\"/v1/users/{id}/recommendations\",status=\"200\"}"
        ),
        "{m}"
    );
    assert!(m.contains("recsys_request_duration_seconds_bucket"));
    assert_eq!(
        call(&st, "GET", "/nope", None, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn console_titles_and_the_item_route() {
    let d = tempfile::tempdir().unwrap();
    let plain = state(d.path(), None, 64);
    let titles: HashMap<String, String> = (100..120)
        .map(|i| (i.to_string(), format!("Film {i}")))
        .collect();
    let st = AppState::new(ServeOptions {
        model_path: d.path().join("current"),
        titles: Some(Arc::new(titles)),
        ..Default::default()
    })
    .unwrap();
    let (s, h, v) = call(&st, "GET", "/", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = v.as_str().unwrap();
    assert!(page.contains("recsys console") && page.contains("/v1/model"));
    // With titles: each item carries one; without: the answers are as before.
    let (_, _, v) = call(&st, "GET", "/v1/users/1/recommendations?n=3", None, None).await;
    for it in v["items"].as_array().unwrap() {
        let id = it["item"].as_str().unwrap();
        assert_eq!(it["title"], format!("Film {id}"));
    }
    let (_, _, v) = call(&plain, "GET", "/v1/users/1/recommendations?n=3", None, None).await;
    assert!(v["items"][0].get("title").is_none(), "{v}");
    let (_, _, v) = call(&st, "GET", "/v1/items/100/similar?n=2", None, None).await;
    assert_eq!(
        (v["title"].as_str(), v["items"][0]["title"].is_string()),
        (Some("Film 100"), true)
    );
    let (_, _, v) = call(
        &st,
        "POST",
        "/v1/recommendations",
        Some(r#"{"users": ["1"], "n": 2}"#),
        None,
    )
    .await;
    assert!(v["results"][0]["items"][0]["title"].is_string(), "{v}");
    let (s, _, v) = call(&st, "GET", "/v1/items/101", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["title"], "Film 101");
    assert!(v["popularity"].as_f64().unwrap() > 0.0);
    assert_eq!(
        call(&st, "GET", "/v1/items/999", None, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn similar_items_errors_keep_their_cause() {
    let d = tempfile::tempdir().unwrap();
    let st = state(d.path(), None, 64);
    // Not there: 404, saying which item.
    let (s, _, v) = call(&st, "GET", "/v1/items/999/similar?n=3", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"], "unknown item \"999\"");
    // A bad parameter is the client's mistake, whether or not the item exists.
    for uri in [
        "/v1/items/100/similar?n=0",
        "/v1/items/100/similar?n=1001",
        "/v1/items/100/similar?n=abc",
        "/v1/items/100/similar?n=-1",
        "/v1/items/100/similar?bogus=1",
        "/v1/items/999/similar?n=0",
    ] {
        let (s, _, v) = call(&st, "GET", uri, None, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        let msg = v["error"].as_str().unwrap_or_else(|| panic!("{uri}: {v}"));
        assert!(!msg.contains("unknown item"), "{uri}: {v}");
    }
    let (s, _, v) = call(&st, "GET", "/v1/items/100/similar?n=0", None, None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("n must be in 1..=1000, got 0")
        )
    );
}

#[test]
fn library_errors_map_to_their_status() {
    use crate::Error;
    let invalid = || Error::InvalidParam {
        name: "n",
        value: "0".into(),
        reason: "must be ≥ 1".into(),
    };
    for (e, want) in [
        (Error::UnknownItem("x".into()), StatusCode::NOT_FOUND),
        (Error::UnknownUser("x".into()), StatusCode::NOT_FOUND),
        (invalid(), StatusCode::BAD_REQUEST),
        (invalid().context("scoring"), StatusCode::BAD_REQUEST),
        (
            Error::UnknownItem("x".into()).context("similar items"),
            StatusCode::NOT_FOUND,
        ),
        (
            Error::Other("broken".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    ] {
        let msg = e.to_string();
        let ApiError(s, m) = ApiError::from(e);
        assert_eq!((s, m.as_str()), (want, msg.as_str()));
    }
}

#[tokio::test]
async fn metrics_label_each_route_by_its_pattern() {
    let d = tempfile::tempdir().unwrap();
    let st = state(d.path(), None, 64);
    for uri in [
        "/v1/items/100",
        "/v1/items/101",
        "/v1/items/100/similar?n=2",
        "/v1/users/1/recommendations?n=2",
        "/v1/model",
        "/",
        "/healthz",
        "/readyz",
        "/nope",
        "/v1/items/100/similar/more",
    ] {
        call(&st, "GET", uri, None, None).await;
    }
    // A known path with the wrong method keeps its route's label.
    let (s, _, _) = call(&st, "POST", "/v1/model", Some("{}"), None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (_, _, m) = call(&st, "GET", "/metrics", None, None).await;
    let m = m.as_str().unwrap().to_string();
    for line in [
        r#"recsys_requests_total{route="/v1/items/{id}",status="200"} 2"#,
        r#"recsys_requests_total{route="/v1/items/{id}/similar",status="200"} 1"#,
        r#"recsys_requests_total{route="/v1/users/{id}/recommendations",status="200"} 1"#,
        r#"recsys_requests_total{route="/v1/model",status="200"} 1"#,
        r#"recsys_requests_total{route="/v1/model",status="405"} 1"#,
        r#"recsys_requests_total{route="/",status="200"} 1"#,
        r#"recsys_requests_total{route="/healthz",status="200"} 1"#,
        r#"recsys_requests_total{route="/readyz",status="200"} 1"#,
        r#"recsys_requests_total{route="other",status="404"} 2"#,
    ] {
        assert!(m.lines().any(|l| l == line), "no {line} in\n{m}");
    }
    // Raw paths never become labels.
    assert!(!m.contains("/v1/items/100") && !m.contains("/nope"), "{m}");
}

#[tokio::test]
async fn availability_needs_the_token_and_filters_everything() {
    let d = tempfile::tempdir().unwrap();
    let st = state(d.path(), Some("s3cret"), 64);
    let body = r#"{"unavailable": ["100", "101", "102", "103", "104", "105", "106", "107", "108", "zzz"]}"#;
    assert_eq!(
        call(&st, "PUT", "/v1/availability", Some(body), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&st, "PUT", "/v1/availability", Some(body), Some("wrong"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _, v) = call(&st, "PUT", "/v1/availability", Some(body), Some("s3cret")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["unavailable"].as_u64(), v["unknown_ids"].as_u64()),
        (Some(9), Some(1))
    );
    for uri in [
        "/v1/users/1/recommendations?n=20&exclude_seen=false",
        "/v1/users/nobody/recommendations?n=20",
        "/v1/items/109/similar?n=20",
    ] {
        let (_, _, v) = call(&st, "GET", uri, None, None).await;
        for it in v["items"].as_array().unwrap() {
            let id: u32 = it["item"].as_str().unwrap().parse().unwrap();
            assert!(id > 108, "{uri} returned unavailable item {id}");
        }
    }
    // Without a configured token the admin routes are off.
    let d2 = tempfile::tempdir().unwrap();
    let st2 = state(d2.path(), None, 64);
    assert_eq!(
        call(&st2, "PUT", "/v1/availability", Some(body), Some("x"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn reloads_swap_good_models_and_refuse_bad_ones() {
    let d = tempfile::tempdir().unwrap();
    let st = state(d.path(), None, 64);
    assert!(!st.reload(false).await.unwrap(), "nothing changed");
    write_model(d.path(), "b.safetensors", 2);
    point(d.path(), "b.safetensors");
    assert!(st.reload(false).await.unwrap());
    assert_eq!(st.current.load().version, "b.safetensors");
    // A corrupt model is refused; b keeps serving.
    std::fs::write(d.path().join("c.safetensors"), b"not a model at all").unwrap();
    point(d.path(), "c.safetensors");
    assert!(st.reload(false).await.is_err());
    assert_eq!(st.current.load().version, "b.safetensors");
    let (s, _, _) = call(&st, "GET", "/v1/users/1/recommendations", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(st.metrics.reload_failures.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn titles_are_read_again_with_a_new_model() {
    let d = tempfile::tempdir().unwrap();
    state(d.path(), None, 64);
    let tp = d.path().join("u.item");
    std::fs::write(&tp, "100|Old title|01-Jan-1995||\n").unwrap();
    let st = AppState::new(ServeOptions {
        model_path: d.path().join("current"),
        titles: Some(Arc::new(crate::data::titles::read_titles(&tp).unwrap())),
        titles_path: Some(tp.clone()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        call(&st, "GET", "/v1/items/100", None, None).await.2["title"],
        "Old title"
    );
    std::fs::write(&tp, "100|New title|01-Jan-1995||\n").unwrap();
    write_model(d.path(), "b.safetensors", 2);
    point(d.path(), "b.safetensors");
    assert!(st.reload(false).await.unwrap());
    assert_eq!(
        call(&st, "GET", "/v1/items/100", None, None).await.2["title"],
        "New title"
    );
    // A titles file that no longer reads keeps the old titles.
    std::fs::remove_file(&tp).unwrap();
    write_model(d.path(), "c.safetensors", 3);
    point(d.path(), "c.safetensors");
    assert!(st.reload(false).await.unwrap());
    assert_eq!(
        call(&st, "GET", "/v1/items/100", None, None).await.2["title"],
        "New title"
    );
}

#[tokio::test]
async fn overload_answers_503_with_retry_after() {
    let d = tempfile::tempdir().unwrap();
    let st = state(d.path(), None, 1);
    let held = Arc::clone(&st.limit).try_acquire_owned().unwrap();
    let (s, h, v) = call(&st, "GET", "/v1/users/1/recommendations", None, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h.get(header::RETRY_AFTER).unwrap(), "1");
    assert!(v["error"].is_string());
    drop(held);
    assert_eq!(
        call(&st, "GET", "/v1/users/1/recommendations", None, None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_tcp_with_the_load_generator() {
    let d = tempfile::tempdir().unwrap();
    let st = state(d.path(), None, 4096);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(st)).await });
    // A fixed count of requests, with a deadline only as a backstop: on
    // a busy machine a time window may hold few requests, and a count
    // says how many must have succeeded.
    const REQUESTS: u64 = 2000;
    let r = crate::loadtest::run(crate::loadtest::LoadOptions {
        addr,
        connections: 8,
        duration: Duration::from_secs(60),
        rate: None,
        max_requests: REQUESTS,
        users: (0..30).map(|u| u.to_string()).collect(),
        query: "n=5".into(),
        reload_every: None,
        reload_path: None,
        seed: 1,
    })
    .await
    .unwrap();
    assert_eq!(
        (r.requests, r.non_2xx, r.errors),
        (REQUESTS, 0, 0),
        "every request answered 2xx: {r:?}"
    );
    assert!(
        crate::loadtest::run(crate::loadtest::LoadOptions {
            addr: "10.1.2.3:80".parse().unwrap(),
            connections: 1,
            duration: Duration::from_millis(10),
            rate: None,
            max_requests: 1,
            users: vec!["1".into()],
            query: String::new(),
            reload_every: None,
            reload_path: None,
            seed: 1
        })
        .await
        .is_err(),
        "only loopback"
    );
    server.abort();
}

/// Sends a request as built, with whatever headers it has.
async fn send(st: &Arc<AppState>, req: Request) -> (StatusCode, HeaderMap, Value) {
    let resp = app(Arc::clone(st)).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, v)
}

fn ids(n: usize) -> String {
    let v: Vec<String> = (0..n).map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", v.join(","))
}

/// Each limit of docs/security.md: refused with its status and the JSON
/// error body naming what was too large, and the largest allowed passes.
#[tokio::test]
async fn every_limit_is_enforced_with_the_json_error_body() {
    let d = tempfile::tempdir().unwrap();
    let st = state(d.path(), Some("s3cret"), 64);
    let post = |body: String| {
        let st = Arc::clone(&st);
        async move { call(&st, "POST", "/v1/recommendations", Some(&body), None).await }
    };
    let refused = |(s, h, v): (StatusCode, HeaderMap, Value), want: StatusCode, says: &str| {
        assert_eq!(s, want, "{v}");
        assert_eq!(
            h.get(header::CONTENT_TYPE).unwrap(),
            "application/json",
            "{v}"
        );
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{says:?} not in {msg:?}");
    };
    // n.
    let r = call(&st, "GET", "/v1/users/1/recommendations?n=1001", None, None).await;
    refused(r, StatusCode::BAD_REQUEST, "n must be in 1..=1000");
    let r = call(&st, "GET", "/v1/users/1/recommendations?n=1000", None, None).await;
    assert_eq!(r.0, StatusCode::OK);
    // Users per batch, and users × n.
    refused(
        post(format!(r#"{{"users": {}}}"#, ids(MAX_BATCH + 1))).await,
        StatusCode::BAD_REQUEST,
        "users: at most 1000 entries",
    );
    refused(
        post(format!(r#"{{"users": {}, "n": 1000}}"#, ids(101))).await,
        StatusCode::BAD_REQUEST,
        "users × n must be at most 100000",
    );
    let r = post(format!(r#"{{"users": {}, "n": 1000}}"#, ids(100))).await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.2);
    // Items to fold in.
    refused(
        post(format!(r#"{{"items": {}}}"#, ids(MAX_N + 1))).await,
        StatusCode::BAD_REQUEST,
        "items: at most 1000 entries, got 1001",
    );
    // exclude / only lists.
    for list in ["exclude", "only"] {
        refused(
            post(format!(
                r#"{{"users": ["1"], "{list}": {}}}"#,
                ids(MAX_LIST + 1)
            ))
            .await,
            StatusCode::BAD_REQUEST,
            &format!("{list}: at most 10000 entries"),
        );
        let r = post(format!(
            r#"{{"users": ["1"], "{list}": {}}}"#,
            ids(MAX_LIST)
        ))
        .await;
        assert_eq!(r.0, StatusCode::OK, "{}", r.2);
    }
    // The request target.
    let long = format!("/v1/users/1/recommendations?exclude={}", "1,".repeat(4096));
    refused(
        call(&st, "GET", &long, None, None).await,
        StatusCode::URI_TOO_LONG,
        "at most 8192 bytes",
    );
    let path = format!("/v1/items/{}", "x".repeat(MAX_URI - "/v1/items/".len()));
    refused(
        call(&st, "GET", &path, None, None).await,
        StatusCode::NOT_FOUND,
        "unknown item",
    );
    // The body: size and content type.
    refused(
        post(format!(r#"{{"users": {}}}"#, ids(200_000))).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "length limit exceeded",
    );
    let req = Request::builder()
        .method("POST")
        .uri("/v1/recommendations")
        .body(Body::from(r#"{"users": ["1"]}"#))
        .unwrap();
    refused(
        send(&st, req).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Content-Type",
    );
    // Another method on a known path: 405, Allow kept, the error body.
    let (s, h, v) = call(&st, "DELETE", "/v1/model", None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(h.get(header::ALLOW).is_some(), "{h:?}");
    assert!(v["error"].is_string(), "{v}");
    // A path segment that does not decode to UTF-8.
    let r = call(&st, "GET", "/v1/items/%FF", None, None).await;
    refused(r, StatusCode::BAD_REQUEST, "");
}

#[tokio::test]
async fn the_unavailable_list_is_bounded_and_read_only_with_the_token() {
    let d = tempfile::tempdir().unwrap();
    write_model(d.path(), "a.safetensors", 1);
    let st = AppState::new(ServeOptions {
        model_path: point(d.path(), "a.safetensors"),
        admin_token: Some("s3cret".into()),
        body_limit: 64 << 20,
        ..Default::default()
    })
    .unwrap();
    let put = |body: String, token: Option<&'static str>| {
        let st = Arc::clone(&st);
        async move { call(&st, "PUT", "/v1/availability", Some(&body), token).await }
    };
    let (s, _, v) = put(
        format!(r#"{{"unavailable": {}}}"#, ids(MAX_UNAVAILABLE + 1)),
        Some("s3cret"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unavailable: at most 1000000 entries"),
        "{v}"
    );
    let (s, _, v) = put(
        format!(r#"{{"unavailable": {}}}"#, ids(MAX_UNAVAILABLE)),
        Some("s3cret"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Without the token the body is not even parsed: garbage is a 401.
    let (s, _, v) = put("{not json".into(), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // The scheme's name in any case.
    let req = Request::builder()
        .method("PUT")
        .uri("/v1/availability")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, "bearer s3cret")
        .body(Body::from(r#"{"unavailable": []}"#))
        .unwrap();
    assert_eq!(send(&st, req).await.0, StatusCode::OK);
}

#[test]
fn tokens_match_only_when_equal_whatever_the_lengths() {
    use super::routes::tokens_match;
    let t = "0123456789abcdef";
    assert!(tokens_match(t, t));
    for other in [
        "",
        "0",
        "0123456789abcde",
        "0123456789abcdeF",
        "0123456789abcdef0",
    ] {
        assert!(!tokens_match(other, t), "{other}");
    }
}

#[test]
fn every_source_serializes_to_its_name() {
    for s in super::api::SOURCES {
        assert_eq!(serde_json::to_value(s).unwrap(), s.name());
    }
}

#[tokio::test]
async fn a_request_past_its_timeout_is_503_with_retry_after() {
    let d = tempfile::tempdir().unwrap();
    write_model(d.path(), "a.safetensors", 1);
    let st = AppState::new(ServeOptions {
        model_path: point(d.path(), "a.safetensors"),
        timeout: Duration::from_nanos(1),
        ..Default::default()
    })
    .unwrap();
    // The batch route runs on a blocking thread: past the deadline either
    // the guard's timeout or the batch's own check answers.
    let (s, h, v) = call(
        &st,
        "POST",
        "/v1/recommendations",
        Some(r#"{"users": ["1", "2"]}"#),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(h.get(header::RETRY_AFTER).unwrap(), "1");
    assert!(v["error"].as_str().unwrap().contains("timed out"), "{v}");
}

/// What JSON Schema's `integer` allows, the body reads: `5.0`, ids up to
/// 64 bits; what it does not is refused.
#[tokio::test]
async fn integers_in_bodies_read_as_the_schema_says() {
    let d = tempfile::tempdir().unwrap();
    let st = state(d.path(), None, 64);
    for body in [
        r#"{"users": ["1"], "n": 3.0}"#,
        r#"{"users": ["1"], "n": 3, "min_history": 2.0}"#,
        r#"{"users": [18446744073709551615, -9223372036854775808], "n": 3}"#,
        r#"{"users": [-597.0, 1.0e19], "min_history": 1e300}"#,
        r#"{"items": ["100", {"item": 101.0}], "n": null}"#,
    ] {
        let (s, _, v) = call(&st, "POST", "/v1/recommendations", Some(body), None).await;
        assert_eq!(s, StatusCode::OK, "{body}: {v}");
    }
    for body in [
        r#"{"users": ["1"], "n": 3.5}"#,
        r#"{"users": ["1"], "n": -3}"#,
        r#"{"users": [18446744073709551616]}"#,
        r#"{"users": [-9223372036854775809]}"#,
        r#"{"users": [1.5]}"#,
        r#"{"users": ["1"], "n": 1e300}"#,
        r#"{"users": ["1"], "min_history": -1.0}"#,
    ] {
        let (s, _, v) = call(&st, "POST", "/v1/recommendations", Some(body), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_lag_monitor_flags_a_runtime_whose_tasks_wait() {
    let d = tempfile::tempdir().unwrap();
    write_model(d.path(), "a.safetensors", 1);
    // Threshold: a quarter of 40 ms.
    let st = AppState::new(ServeOptions {
        model_path: point(d.path(), "a.safetensors"),
        timeout: Duration::from_millis(40),
        ..Default::default()
    })
    .unwrap();
    super::spawn_lag_monitor(Arc::clone(&st));
    let lagging = |st: &AppState| st.lagging.load(std::sync::atomic::Ordering::Relaxed);
    // Let it run once on an idle runtime.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!lagging(&st));
    // Hold the only worker far past the monitor's due time: it wakes late.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !lagging(&st) {
        assert!(std::time::Instant::now() < deadline, "never flagged");
        std::thread::sleep(Duration::from_millis(50));
        tokio::task::yield_now().await;
    }
    // The reading is on /metrics: late by more than the threshold.
    let text = call(&st, "GET", "/metrics", None, None).await.2;
    let lag: f64 = text
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("recsys_scheduler_lag_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(lag > 0.01, "{lag}");
    // Free again: the flag clears once the monitor runs on time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while lagging(&st) {
        assert!(std::time::Instant::now() < deadline, "never cleared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
