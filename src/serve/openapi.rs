//! The service's OpenAPI 3 document: derived by `utoipa` from the
//! handlers' `#[utoipa::path]` attributes in [`super::routes`] and the
//! wire types of [`super::api`], never written by hand. [`ApiDoc`] is the
//! document; [`json`] is what `GET /openapi.json` and `recsys serve
//! --print-openapi` give; [`markdown`] is the reference section of
//! docs/http-api.md, which a test keeps equal to it.
//!
//! What no single handler declares is added here once, as the middleware
//! adds it to every route: 414 for a request target over [`MAX_URI`] and
//! 503 with `Retry-After` when the concurrency limit sheds a request or it
//! times out.

use std::fmt::Write;
use std::sync::OnceLock;

use serde_json::Value;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::api::{
    Availability, AvailabilityResult, BatchAnswer, BatchEntry, BatchRequest, BatchResponse,
    ErrorBody, FallbackRule, GivenItem, Item, ItemInfo, ModelInfo, RecList, SimilarItems,
    UserError,
};
use super::routes;
#[cfg(doc)]
use super::MAX_URI;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "recsys",
        description = "Top-N recommendations from a matrix-factorization model. Every 4xx and \
                       5xx answer of the JSON routes is `{\"error\": \"...\"}`."
    ),
    paths(
        routes::user_recommendations,
        routes::batch_recommendations,
        routes::similar_items,
        routes::item_info,
        routes::put_availability,
        routes::model_info,
        routes::console,
        routes::healthz,
        routes::readyz,
        routes::metrics_text,
        routes::openapi_json,
    ),
    components(schemas(
        ErrorBody,
        GivenItem,
        FallbackRule,
        BatchRequest,
        Availability,
        Item,
        RecList,
        UserError,
        BatchEntry,
        BatchResponse,
        BatchAnswer,
        SimilarItems,
        AvailabilityResult,
        ModelInfo,
        ItemInfo,
    )),
    modifiers(&Common),
    tags(
        (name = "recommendations", description = "lists for users, known or given by items"),
        (name = "items", description = "similar items, item details"),
        (name = "admin", description = "needs `Authorization: Bearer` with the admin token"),
        (name = "service", description = "model, health, metrics, console, this document"),
    )
)]
pub struct ApiDoc;

/// What applies to every route, and what a derive cannot say.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let comps = doc.components.get_or_insert_with(Default::default);
        comps.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Exactly one of `users` and `items`, given as an array (`null`
        // reads as absent): a struct of two options cannot say so, the
        // schema can.
        if let Some(s) = comps.schemas.remove("BatchRequest") {
            let given = |field: &str| {
                ObjectBuilder::new()
                    .property(field, ArrayBuilder::new())
                    .required(field)
            };
            let one_of = OneOfBuilder::new()
                .item(given("users"))
                .item(given("items"));
            let all: Schema = AllOfBuilder::new().item(s).item(one_of).into();
            comps.schemas.insert("BatchRequest".into(), RefOr::T(all));
        }
        let error = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build()
        };
        comps.responses.insert(
            "Unavailable".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "shed by the concurrency limit (--max-concurrency) or over the \
                         per-request timeout (--timeout-ms); retry after the header's seconds",
                    )
                    .content("application/json", error())
                    .header(
                        "Retry-After",
                        HeaderBuilder::new()
                            .schema(ObjectBuilder::new().schema_type(Type::Integer))
                            .description(Some("seconds to wait before retrying"))
                            .build(),
                    )
                    .build(),
            ),
        );
        comps.responses.insert(
            "UriTooLong".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("path and query string over 8192 bytes")
                    .content("application/json", error())
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let r = &mut op.responses.responses;
                r.entry("414".into())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("UriTooLong")));
                r.entry("503".into())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Unavailable")));
            }
        }
    }
}

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    })
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The last part of a `$ref`, or a short type for an inline schema.
fn type_name(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        return alts.iter().map(type_name).collect::<Vec<_>>().join(" or ");
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .map(|v| format!("`{}`", v.as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let ty = match s.get("type") {
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        Some(Value::String(t)) => t.clone(),
        _ => String::new(),
    };
    if ty == "array" {
        let inner = s.get("items").map(type_name).unwrap_or_default();
        let max = s
            .get("maxItems")
            .and_then(Value::as_u64)
            .map(|m| format!(", ≤ {m}"))
            .unwrap_or_default();
        return format!("array of {inner}{max}");
    }
    let mut range = String::new();
    if let (Some(lo), Some(hi)) = (s.get("minimum"), s.get("maximum")) {
        range = format!(" {lo}–{hi}");
    }
    if ty.is_empty() {
        "any".into()
    } else {
        ty + &range
    }
}

/// The reference section of docs/http-api.md, from the document: each
/// operation with its parameters and answers, then each schema's fields.
pub fn markdown() -> String {
    let doc: Value = serde_json::from_str(json()).unwrap_or(Value::Null);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| route | parameters | body | answers |\n|---|---|---|---|"
    );
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch"] {
            let Some(op) = item.get(method) else {
                continue;
            };
            let params: Vec<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let ty = type_name(&p["schema"]);
                            format!("`{}` ({}, {ty})", text(p, "name"), text(p, "in"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let body = op["requestBody"]["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .map(|c| format!("`{}`", type_name(&c["schema"])))
                .unwrap_or_else(|| "—".into());
            let answers: Vec<String> = op["responses"]
                .as_object()
                .map(|rs| {
                    rs.iter()
                        .map(|(code, r)| {
                            let r = match r.get("$ref").and_then(Value::as_str) {
                                Some(name) => {
                                    &doc["components"]["responses"]
                                        [name.rsplit('/').next().unwrap_or("")]
                                }
                                None => r,
                            };
                            let ty = r["content"]
                                .as_object()
                                .and_then(|c| c.iter().next())
                                .map(|(ct, c)| {
                                    if ct == "application/json" {
                                        format!(" `{}`", type_name(&c["schema"]))
                                    } else {
                                        format!(" {ct}")
                                    }
                                })
                                .unwrap_or_default();
                            let retry = if r["headers"].get("Retry-After").is_some() {
                                " + `Retry-After`"
                            } else {
                                ""
                            };
                            format!("{code}{ty}{retry}")
                        })
                        .collect()
                })
                .unwrap_or_default();
            let auth = if op.get("security").is_some() {
                " (bearer token)"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "| `{} {path}`{auth} | {} | {body} | {} |",
                method.to_uppercase(),
                if params.is_empty() {
                    "—".to_string()
                } else {
                    params.join(", ")
                },
                answers.join("; ")
            );
        }
    }
    let _ = writeln!(s, "\n| schema | fields (* required) |\n|---|---|");
    let schemas = doc["components"]["schemas"].as_object().unwrap_or(&empty);
    for (name, sch) in schemas {
        // BatchRequest is the fields and a oneOf of which are required.
        let obj = sch["allOf"].get(0).unwrap_or(sch);
        let fields = if let Some(props) = obj["properties"].as_object() {
            let req: Vec<&str> = obj["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            props
                .iter()
                .map(|(f, p)| {
                    let star = if req.contains(&f.as_str()) { "*" } else { "" };
                    format!("`{f}`{star} ({})", type_name(p))
                })
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            type_name(sch)
        };
        let one_of = if sch.get("allOf").is_some() {
            " — exactly one of `users` and `items`"
        } else {
            ""
        };
        let _ = writeln!(s, "| `{name}` | {fields}{one_of} |");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        serde_json::from_str(json()).unwrap()
    }

    #[test]
    fn every_route_of_the_app_is_in_the_document_and_back() {
        // The routes as app() declares them, read from its source.
        let src = include_str!("routes.rs");
        let mut declared: Vec<String> = src
            .split(".route(\"")
            .skip(1)
            .filter_map(|r| r.split('"').next())
            .map(String::from)
            .collect();
        declared.sort();
        let d = doc();
        let mut documented: Vec<String> = d["paths"].as_object().unwrap().keys().cloned().collect();
        documented.sort();
        assert_eq!(declared, documented);
    }

    #[test]
    fn every_json_route_declares_the_error_body_and_503_with_retry_after() {
        let d = doc();
        let retry = &d["components"]["responses"]["Unavailable"];
        assert!(retry["headers"]["Retry-After"].is_object(), "{retry}");
        assert_eq!(
            retry["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let rs = op["responses"].as_object().unwrap();
                assert!(rs.contains_key("503"), "{method} {path}");
                assert!(rs.contains_key("414"), "{method} {path}");
                for (code, r) in rs {
                    if code.starts_with('4') && r.get("$ref").is_none() {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {code}"
                        );
                    }
                }
            }
        }
        let put = &d["paths"]["/v1/availability"]["put"];
        assert!(put["security"].is_array(), "{put}");
        assert!(put["responses"]["401"].is_object());
    }

    #[test]
    fn the_limits_in_the_document_are_the_enforced_ones() {
        let d = doc();
        let q = d["paths"]["/v1/users/{id}/recommendations"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let n = q.iter().find(|p| p["name"] == "n").unwrap();
        assert_eq!(n["schema"]["maximum"], super::super::MAX_N as u64);
        assert_eq!(n["schema"]["minimum"], 1);
        let b = &d["components"]["schemas"]["BatchRequest"]["allOf"][0]["properties"];
        assert_eq!(b["users"]["maxItems"], super::super::MAX_BATCH as u64);
        assert_eq!(b["items"]["maxItems"], super::super::MAX_N as u64);
        assert_eq!(b["exclude"]["maxItems"], super::super::MAX_LIST as u64);
        assert_eq!(b["n"]["maximum"], super::super::MAX_N as u64);
        let a = &d["components"]["schemas"]["Availability"]["properties"]["unavailable"];
        assert_eq!(a["maxItems"], super::super::MAX_UNAVAILABLE as u64);
        let src = d["components"]["schemas"]["RecList"]["properties"]["source"]["enum"].clone();
        let names: Vec<Value> = super::super::api::SOURCES
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect();
        assert_eq!(src, Value::Array(names));
    }

    /// docs/http-api.md carries [`markdown`] between two markers;
    /// `RECSYS_BLESS=1` writes it there.
    #[test]
    fn the_http_api_doc_has_the_generated_reference() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/http-api.md");
        let md = std::fs::read_to_string(&path).unwrap();
        let (begin, end) = ("<!-- openapi:begin -->\n", "<!-- openapi:end -->");
        let a = md.find(begin).expect("the begin marker") + begin.len();
        let b = md.find(end).expect("the end marker");
        let want = markdown();
        if md[a..b] != want {
            if std::env::var_os("RECSYS_BLESS").is_some() {
                let new = format!("{}{want}{}", &md[..a], &md[b..]);
                std::fs::write(&path, new).unwrap();
            } else {
                panic!(
                    "docs/http-api.md's reference differs from the OpenAPI document; \
                     run RECSYS_BLESS=1 cargo test --release the_http_api_doc to write it:\n{want}"
                );
            }
        }
    }
}
