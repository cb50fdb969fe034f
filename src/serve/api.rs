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
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use axum::extract::rejection::JsonRejection;
use utoipa::openapi::schema::{
    AdditionalProperties, Array, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Ref, Schema,
    SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};

use super::state::Served;
use super::{MAX_BATCH, MAX_LIST, MAX_N, MAX_UNAVAILABLE};
use crate::error::Error;
use crate::score::{self, Fallback, Filters, ItemList, RecommendOptions, Scored, Source};

/// Item id → title.
pub type Titles = HashMap<String, String>;

// ---- errors ----

/// A refused or failed request: a status and a message, sent as
/// `{"error": …}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

/// The body of every 4xx and 5xx answer of the JSON routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What was wrong, naming the parameter or field.
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

    /// A body axum could not read: too large (413) and a missing JSON
    /// content type (415) keep their status, anything else the client
    /// sent wrong is a 400, as for query strings.
    pub fn body(e: JsonRejection) -> ApiError {
        let status = match e.status() {
            s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError(status, e.body_text())
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

// ---- schemas of ids ----

/// The schema of an [`Id`]: integers of 64 bits, signed or not, as
/// [`Id`] reads them (both bounds are exact in a JSON number).
fn id_schema() -> Schema {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(ID_MIN))
                .exclusive_maximum(Some(ID_END)),
        )
        .description(Some("an id: a string, or an integer taken as its digits"))
        .into()
}

fn id_list(max: usize) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(RefOr::T(id_schema()))
        .max_items(Some(max))
}

/// An optional list of a body: `null` reads as absent.
fn nullable(a: ArrayBuilder) -> Array {
    a.schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .build()
}

fn users_schema() -> Array {
    nullable(id_list(MAX_BATCH))
}

fn id_list_schema() -> Array {
    nullable(id_list(MAX_LIST))
}

fn unavailable_schema() -> Array {
    id_list(MAX_UNAVAILABLE).build()
}

fn given_items_schema() -> Array {
    nullable(
        ArrayBuilder::new()
            .items(RefOr::Ref(Ref::from_schema_name("GivenItem")))
            .max_items(Some(MAX_N)),
    )
}

/// Where a list came from: the names [`Source`] serializes to.
fn source_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(SOURCES.iter().map(|s| s.name())))
        .description(Some(
            "model: the user's factors; fold_in: the items given; popularity / \
             recent_popularity: the cold-start fallback",
        ))
        .build()
}

/// Every [`Source`], for the schema (a test checks they serialize to their names).
pub const SOURCES: [Source; 4] = [
    Source::Model,
    Source::FoldIn,
    Source::Popularity,
    Source::RecentPopularity,
];

/// Counts the ids of a list given to a route, refusing one past `max`.
fn check_len(what: &str, len: usize, max: usize) -> Result<(), ApiError> {
    if len > max {
        return Err(ApiError::bad(format!(
            "{what}: at most {max} ids, got {len}"
        )));
    }
    Ok(())
}

// ---- ids and lists as they come in ----

/// An id as JSON gives it: a string, or an integer taken as its digits.
/// Read by its own visitor, so anything else (a float, an object) is
/// refused as it is parsed, before it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Id(pub String);

/// −2⁶³ and 2⁶⁴: the integer ids are those in `ID_MIN..ID_END`.
const ID_MIN: f64 = -9_223_372_036_854_775_808.0;
const ID_END: f64 = 18_446_744_073_709_551_616.0;

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id (a string or an integer)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Id, E> {
                Ok(Id(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            /// An integer written as `597.0`, or past 64 bits where JSON
            /// parsers fall back to a float: JSON Schema counts both as
            /// integers, so they are read as the integer they are.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
                // Both ends exclusive: a float at −2⁶³ may be the rounding
                // of a literal below it (an exact −2⁶³ comes as an i64).
                if v.fract() == 0.0 && v > ID_MIN && v < ID_END {
                    // Integral and in range: the cast is exact.
                    Ok(Id((v as i128).to_string()))
                } else {
                    Err(E::invalid_type(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON array of at most `MAX` entries: entries past it are counted
/// for the message but never built, so what a list may make the server
/// allocate is bounded while it is parsed, not after.
#[derive(Debug)]
pub struct Capped<T, const MAX: usize>(pub Vec<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Capped<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const MAX: usize>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for V<T, MAX> {
            type Value = Capped<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an array of at most {MAX} entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    if v.len() == MAX {
                        // Counted, not kept: the message says how many.
                        let mut n = MAX + 1;
                        while seq.next_element::<de::IgnoredAny>()?.is_some() {
                            n += 1;
                        }
                        return Err(de::Error::custom(format!("at most {MAX} entries, got {n}")));
                    }
                    v.push(x);
                }
                Ok(Capped(v))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A count in a JSON body (`n`, `min_history`): a non-negative integer,
/// also when written as `233.0` or past 64 bits (`1e300`), as JSON
/// Schema's `integer` allows; a count too large for `usize` saturates.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a non-negative integer")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(usize::try_from(v).unwrap_or(usize::MAX)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
                .and_then(|v| self.visit_u64(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.fract() == 0.0 && v >= 0.0 {
                // `as` saturates.
                Ok(Some(v as usize))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(V)
}

fn texts(ids: Vec<Id>) -> Vec<String> {
    ids.into_iter().map(|Id(s)| s).collect()
}

// ---- requests ----

/// The popularity a fallback list is drawn from.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FallbackRule {
    /// Popular among the newest 10% of training interactions.
    Recent,
    /// Popular over all of the training data.
    Overall,
}

/// Filters and options accepted by the recommendation routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecQuery {
    /// How many items (default 10).
    #[param(minimum = 1, maximum = 1000)]
    pub n: Option<usize>,
    /// Leave out the user's training items (default true).
    pub exclude_seen: Option<bool>,
    /// Comma-separated item ids never to return (at most 10000).
    pub exclude: Option<String>,
    /// Comma-separated item ids to choose from, an allow list (at most 10000).
    pub only: Option<String>,
    /// Users with fewer training items get the fallback (default 0).
    pub min_history: Option<usize>,
    /// The fallback's popularity (default recent).
    #[param(inline)]
    pub fallback: Option<FallbackRule>,
    /// Say which of the user's items each recommendation is like.
    pub explain: Option<bool>,
    /// Unknown users get 404 instead of popular items (default: the
    /// service's `--strict`).
    pub strict: Option<bool>,
}

fn split_ids(what: &str, s: &Option<String>) -> Result<Vec<String>, ApiError> {
    let ids: Vec<String> = s
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    check_len(what, ids.len(), MAX_LIST)?;
    Ok(ids)
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
        let fallback = match self.fallback {
            None | Some(FallbackRule::Recent) => Fallback::Recent,
            Some(FallbackRule::Overall) => Fallback::Overall,
        };
        let mut filters = Filters {
            exclude_seen: self.exclude_seen.unwrap_or(true),
            blocked: served.blocked.clone(),
        };
        let m = &served.model;
        let exclude = split_ids("exclude", &self.exclude)?;
        if !exclude.is_empty() {
            filters.exclude_items(m, exclude.iter().map(String::as_str));
        }
        if self.only.is_some() {
            let only = split_ids("only", &self.only)?;
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

/// An item given for fold-in: an id, or `{"item": id, "value": v}` with a
/// value (a rating, or a count or weight for implicit models).
#[derive(Debug)]
pub struct GivenItem {
    pub item: String,
    pub value: Option<f32>,
}

impl<'de> Deserialize<'de> for GivenItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GivenItem, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GivenItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"an item: an id, or {"item": id, "value": number}"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GivenItem, E> {
                Ok(GivenItem {
                    item: v.to_owned(),
                    value: None,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GivenItem, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GivenItem, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<GivenItem, A::Error> {
                let (mut item, mut value) = (None, None);
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "item" if item.is_none() => item = Some(m.next_value::<Id>()?.0),
                        "value" if value.is_none() => value = Some(m.next_value::<Option<f32>>()?),
                        "item" | "value" => {
                            return Err(de::Error::duplicate_field("item or value"))
                        }
                        other => return Err(de::Error::unknown_field(other, &["item", "value"])),
                    }
                }
                Ok(GivenItem {
                    item: item.ok_or_else(|| de::Error::missing_field("item"))?,
                    value: value.flatten(),
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl utoipa::PartialSchema for GivenItem {
    fn schema() -> RefOr<Schema> {
        let with_value = ObjectBuilder::new()
            .property("item", id_schema())
            .required("item")
            .property(
                "value",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
                    .description(Some("finite")),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Integer))
            .item(with_value)
            .description(Some(
                "an item given for fold-in: an id, or an id with a value (a rating, a count)",
            ))
            .into()
    }
}

impl ToSchema for GivenItem {}

/// `POST /v1/recommendations`: exactly one of `users` (known users, one
/// list each) and `items` (a new user given by items, folded in), with the
/// options of the query string (lists as arrays).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Known users: one list each (at most 1000, and users × n at most 100000).
    #[schema(schema_with = users_schema)]
    pub users: Option<Capped<Id, MAX_BATCH>>,
    /// An anonymous user given by items (fold-in; at most 1000).
    #[schema(schema_with = given_items_schema)]
    pub items: Option<Capped<GivenItem, MAX_N>>,
    /// How many items per list (default 10).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "count")]
    pub n: Option<usize>,
    pub exclude_seen: Option<bool>,
    /// Item ids never to return.
    #[schema(schema_with = id_list_schema)]
    pub exclude: Option<Capped<Id, MAX_LIST>>,
    /// Item ids to choose from (an allow list).
    #[schema(schema_with = id_list_schema)]
    pub only: Option<Capped<Id, MAX_LIST>>,
    #[serde(default, deserialize_with = "count")]
    pub min_history: Option<usize>,
    pub fallback: Option<FallbackRule>,
    pub explain: Option<bool>,
    pub strict: Option<bool>,
}

impl BatchRequest {
    /// The same options as a query string would give.
    pub fn to_query(&self) -> Result<RecQuery, ApiError> {
        Ok(RecQuery {
            n: self.n,
            exclude_seen: self.exclude_seen,
            exclude: joined_ids(&self.exclude),
            only: joined_ids(&self.only),
            min_history: self.min_history,
            fallback: self.fallback,
            explain: self.explain,
            strict: self.strict,
        })
    }
}

/// The options of `GET /v1/items/{id}/similar`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SimilarQuery {
    /// How many items (default 10).
    #[param(minimum = 1, maximum = 1000)]
    pub n: Option<usize>,
    /// Comma-separated item ids never to return (at most 10000).
    pub exclude: Option<String>,
    /// Comma-separated item ids to choose from (at most 10000).
    pub only: Option<String>,
}

/// `PUT /v1/availability`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    /// The items that may not be returned (replaces the previous set; at
    /// most 1000000).
    #[schema(schema_with = unavailable_schema)]
    pub unavailable: Capped<Id, MAX_UNAVAILABLE>,
}

impl Availability {
    pub fn ids(self) -> Vec<String> {
        texts(self.unavailable.0)
    }
}

impl BatchRequest {
    /// The users of a batch, as id texts.
    pub fn user_ids(users: Capped<Id, MAX_BATCH>) -> Vec<String> {
        texts(users.0)
    }
}

fn joined_ids<const MAX: usize>(v: &Option<Capped<Id, MAX>>) -> Option<String> {
    v.as_ref().map(|l| {
        l.0.iter()
            .map(|Id(s)| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
}

// ---- answers ----

fn title_of(titles: Option<&Titles>, item: &str) -> Option<String> {
    titles.and_then(|t| t.get(item)).cloned()
}

/// One item of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Item {
    /// With `explain=true`: the user's items most like this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct RecList {
    pub items: Vec<Item>,
    #[schema(schema_with = source_schema)]
    pub source: Source,
    /// The user's id; empty for a folded-in user.
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
#[derive(Debug, Serialize, ToSchema)]
pub struct UserError {
    pub error: String,
    pub user: String,
}

/// One user's part of a batch answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchEntry {
    List(RecList),
    Error(UserError),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchEntry>,
}

/// What `POST /v1/recommendations` answers: one entry per user for
/// `users`, one list for `items`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchAnswer {
    Users(BatchResponse),
    FoldIn(RecList),
}

/// The items most similar to `item`.
#[derive(Debug, Serialize, ToSchema)]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityResult {
    pub unavailable: usize,
    pub unknown_ids: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    pub file: String,
    pub loaded_at: String,
    /// The model's metadata as a JSON value: sorted keys and widened
    /// floats, as this answer always had.
    #[schema(value_type = Object)]
    pub meta: Value,
    pub version: String,
}

/// One item: its training popularity and, with titles, its title.
#[derive(Debug, Serialize, ToSchema)]
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
