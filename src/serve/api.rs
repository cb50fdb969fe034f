//! The wire types of the HTTP API: what requests may carry, what answers
//! look like ([docs/http-api.md](../../docs/http-api.md)), and how an error
//! becomes a status code.
//!
//! Answers are typed structs. Their fields are declared in alphabetical
//! order and scores are `f64`: the answers used to be built as untyped
//! `serde_json::Value`s, whose objects sort their keys and which widen an
//! `f32` to `f64`, and the bytes on the wire stay as they were.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::Served;
use super::MAX_N;
use crate::error::Error;
use crate::score::{self, Fallback, Filters, ItemList, RecommendOptions, Scored, Source};

/// Item id → title.
pub type Titles = HashMap<String, String>;

// ---- errors ----

/// A refused or failed request: a status and a message, sent as
/// `{"error": …}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl ApiError {
    pub fn bad(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
    }
}

/// The status an error of the library stands for: what the client asked
/// for does not exist (404), the client's parameter is wrong (400), or the
/// service failed (500).
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::UnknownUser(_) | Error::UnknownItem(_) => StatusCode::NOT_FOUND,
        Error::InvalidParam { .. } => StatusCode::BAD_REQUEST,
        // The context only says what was being done; the cause decides.
        Error::Context { source, .. } => status_of(source),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        ApiError(status_of(&e), e.to_string())
    }
}

// ---- requests ----

/// Filters and options accepted by the recommendation routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecQuery {
    pub n: Option<usize>,
    pub exclude_seen: Option<bool>,
    /// Comma-separated item ids never to return.
    pub exclude: Option<String>,
    /// Comma-separated item ids to choose from (an allow list).
    pub only: Option<String>,
    pub min_history: Option<usize>,
    /// `recent` or `overall`.
    pub fallback: Option<String>,
    pub explain: Option<bool>,
    pub strict: Option<bool>,
}

fn split_ids(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

impl RecQuery {
    /// The scorer's options for this query against the served model.
    pub fn options(
        &self,
        served: &Served,
        strict_default: bool,
    ) -> Result<RecommendOptions, ApiError> {
        let n = self.n.unwrap_or(10);
        if n == 0 || n > MAX_N {
            return Err(ApiError::bad(format!("n must be in 1..={MAX_N}, got {n}")));
        }
        let fallback = match self.fallback.as_deref() {
            None | Some("recent") => Fallback::Recent,
            Some("overall") => Fallback::Overall,
            Some(o) => {
                return Err(ApiError::bad(format!(
                    "fallback must be recent or overall, got {o:?}"
                )))
            }
        };
        let mut filters = Filters {
            exclude_seen: self.exclude_seen.unwrap_or(true),
            blocked: served.blocked.clone(),
        };
        let m = &served.model;
        let exclude = split_ids(&self.exclude);
        if !exclude.is_empty() {
            filters.exclude_items(m, exclude.iter().map(String::as_str));
        }
        if self.only.is_some() {
            let only = split_ids(&self.only);
            filters.only(
                m,
                &ItemList::resolve(m, only.iter().map(String::as_str)).items,
            );
        }
        Ok(RecommendOptions {
            n,
            filters,
            strict: self.strict.unwrap_or(strict_default),
            min_history: self.min_history.unwrap_or(0),
            fallback,
            explain: if self.explain.unwrap_or(false) { 3 } else { 0 },
        })
    }
}

/// An item given for fold-in: an id, or an id with a value.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum GivenItem {
    Id(String),
    Num(i64),
    WithValue { item: Value, value: Option<f32> },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Known users: one list each.
    pub users: Option<Vec<Value>>,
    /// An anonymous user given by items (fold-in).
    pub items: Option<Vec<GivenItem>>,
    #[serde(flatten)]
    pub query: BatchQuery,
}

/// The options of [`RecQuery`] in a JSON body (lists as arrays).
#[derive(Debug, Default, Deserialize)]
pub struct BatchQuery {
    pub n: Option<usize>,
    pub exclude_seen: Option<bool>,
    pub exclude: Option<Vec<Value>>,
    pub only: Option<Vec<Value>>,
    pub min_history: Option<usize>,
    pub fallback: Option<String>,
    pub explain: Option<bool>,
    pub strict: Option<bool>,
}

impl BatchQuery {
    /// The same options as a query string would give.
    pub fn to_query(&self) -> Result<RecQuery, ApiError> {
        Ok(RecQuery {
            n: self.n,
            exclude_seen: self.exclude_seen,
            exclude: id_list(&self.exclude)?,
            only: id_list(&self.only)?,
            min_history: self.min_history,
            fallback: self.fallback.clone(),
            explain: self.explain,
            strict: self.strict,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilarQuery {
    pub n: Option<usize>,
    pub exclude: Option<String>,
    pub only: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    /// The items that may not be returned (replaces the previous set).
    pub unavailable: Vec<Value>,
}

/// An id given in JSON: a string, or an integer taken as its digits.
pub fn id_text(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(ApiError::bad(format!(
            "ids must be strings or integers, got {other}"
        ))),
    }
}

fn id_list(v: &Option<Vec<Value>>) -> Result<Option<String>, ApiError> {
    v.as_ref()
        .map(|l| {
            l.iter()
                .map(id_text)
                .collect::<Result<Vec<_>, _>>()
                .map(|ids| ids.join(","))
        })
        .transpose()
}

// ---- answers ----

fn title_of(titles: Option<&Titles>, item: &str) -> Option<String> {
    titles.and_then(|t| t.get(item)).cloned()
}

/// One item of a list.
#[derive(Debug, Serialize)]
pub struct Item {
    /// With `explain=true`: the user's items most like this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub because: Vec<String>,
    pub item: String,
    pub score: f64,
    /// With titles loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl Item {
    fn new(s: Scored, titles: Option<&Titles>) -> Item {
        Item {
            title: title_of(titles, &s.item),
            because: s.because,
            item: s.item,
            score: f64::from(s.score),
        }
    }

    fn list(items: Vec<Scored>, titles: Option<&Titles>) -> Vec<Item> {
        items.into_iter().map(|s| Item::new(s, titles)).collect()
    }
}

/// A user's recommendations (or a folded-in user's).
#[derive(Debug, Serialize)]
pub struct RecList {
    pub items: Vec<Item>,
    pub source: Source,
    pub user: String,
}

impl RecList {
    pub fn new(r: score::RecList, titles: Option<&Titles>) -> RecList {
        RecList {
            items: Item::list(r.items, titles),
            source: r.source,
            user: r.user,
        }
    }
}

/// A user of a batch whose list could not be made.
#[derive(Debug, Serialize)]
pub struct UserError {
    pub error: String,
    pub user: String,
}

/// One user's part of a batch answer.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum BatchEntry {
    List(RecList),
    Error(UserError),
}

#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub results: Vec<BatchEntry>,
}

/// The items most similar to `item`.
#[derive(Debug, Serialize)]
pub struct SimilarItems {
    pub item: String,
    pub items: Vec<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl SimilarItems {
    pub fn new(item: String, items: Vec<Scored>, titles: Option<&Titles>) -> SimilarItems {
        SimilarItems {
            title: title_of(titles, &item),
            items: Item::list(items, titles),
            item,
        }
    }
}

/// What `PUT /v1/availability` did: items now unavailable, ids unknown.
#[derive(Debug, Serialize)]
pub struct AvailabilityResult {
    pub unavailable: usize,
    pub unknown_ids: usize,
}

#[derive(Debug, Serialize)]
pub struct ModelInfo {
    pub file: String,
    pub loaded_at: String,
    /// The model's metadata as a JSON value: sorted keys and widened
    /// floats, as this answer always had.
    pub meta: Value,
    pub version: String,
}

/// One item: its training popularity and, with titles, its title.
#[derive(Debug, Serialize)]
pub struct ItemInfo {
    pub item: String,
    pub popularity: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl ItemInfo {
    pub fn new(item: String, popularity: f32, titles: Option<&Titles>) -> ItemInfo {
        ItemInfo {
            title: title_of(titles, &item),
            popularity: f64::from(popularity),
            item,
        }
    }
}
