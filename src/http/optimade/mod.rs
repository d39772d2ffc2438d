//! OPTIMADE (specification v1.2): every StructureData of the database as a `structures` entry,
//! searchable with the OPTIMADE filter language. Mounted beside the REST APIs with
//! `App::new().nest("/optimade", Optimade::new(state))`; it answers the unversioned base URL
//! (`/optimade/info`, `/optimade/versions`) and the versioned ones (`/optimade/v1/...`, also
//! `v1.2` and `v1.2.0`): `info`, `info/structures`, `links`, `structures`,
//! `structures/<id>`, `versions` (unversioned only, `text/csv`).
//!
//! The entries come from the query layer's in-memory index (`query::optimade`), built once per
//! storage; this module parses the request (`filter.rs` holds the grammar), checks the
//! parameters, and writes the JSON:API envelope and errors (`Content-Type:
//! application/vnd.api+json`).

pub mod filter;

use std::sync::Arc;

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::http::request::unquote;
use crate::http::{Api, AppState, Ctx, Responder};
use crate::query::QueryError;
use crate::query::optimade::entry::{self as props, Entry};
use crate::query::optimade::filter::{FilterError, check};
use crate::query::optimade::{Index, PROPERTIES, SortKey, StructureIndex, check_sort};

/// The version of the specification the answers follow.
pub const API_VERSION: &str = "1.2.0";
/// The major versions served (`/versions`).
const MAJOR: &str = "1";
/// The versioned path segments accepted after the base URL.
const VERSIONS: [&str; 3] = ["v1", "v1.2", "v1.2.0"];
const SCHEMA: &str = "https://schemas.optimade.org/openapi/v1.2/optimade.json";
const JSON_API: &str = "application/vnd.api+json";
/// Entries per page when `page_limit` is not given.
pub const DEFAULT_PAGE_LIMIT: usize = 20;
/// The largest `page_limit` (a larger one is 403, as the reference implementation answers), or
/// the server's `max_rows` if smaller.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// OPTIMADE over one database.
pub struct Optimade {
    state: AppState,
    index: Arc<StructureIndex>,
}

impl Optimade {
    pub fn new(state: AppState) -> Self {
        Self { state, index: Arc::new(StructureIndex::new()) }
    }
}

/// The lines of `available_endpoints` for OPTIMADE mounted at `prefix`.
pub fn endpoints(prefix: &str) -> Vec<String> {
    ["info", "info/structures", "links", "structures", "structures/<id>"]
        .iter()
        .map(|e| format!("{:<15} {:<20} {prefix}/v1/{e}", "optimade", "GET,HEAD,OPTIONS"))
        .chain(std::iter::once(format!("{:<15} {:<20} {prefix}/versions", "optimade", "GET,HEAD,OPTIONS")))
        .collect()
}

impl Api for Optimade {
    fn service(self, _prefix: &str) -> Responder {
        Responder::new(Mounted { state: self.state, index: self.index }, |api, ctx, uri, _| handle(api, ctx, uri))
    }

    fn endpoints(&self, prefix: &str) -> Vec<String> {
        endpoints(prefix)
    }

    fn storage(&self) -> Option<Arc<crate::storage::Storage>> {
        Some(self.state.storage.clone())
    }
}

#[derive(Clone)]
struct Mounted {
    state: AppState,
    index: Arc<StructureIndex>,
}

/// An error as OPTIMADE answers it: a JSON:API error object.
#[derive(Debug)]
struct Error {
    status: StatusCode,
    detail: String,
}

impl Error {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into() }
    }
    fn bad(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
}

impl From<QueryError> for Error {
    fn from(err: QueryError) -> Self {
        let api = crate::http::error::ApiError::from(err);
        let status = api.status();
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            crate::storage::ratelog::server_error(500, &api);
            "Internal server error; the details are in the server log.".to_string()
        } else {
            api.to_string()
        };
        Self { status, detail }
    }
}

impl From<FilterError> for Error {
    fn from(err: FilterError) -> Self {
        match err {
            FilterError::Bad(msg) => Self::bad(msg),
            FilterError::NotImplemented(msg) => Self::new(StatusCode::NOT_IMPLEMENTED, msg),
        }
    }
}

/// Where the request is: the base URL it was sent to and the path below it.
struct Place {
    /// `scheme://host/.../optimade`, the unversioned base URL.
    base: String,
    /// The version segment used (`v1`), if any.
    version: Option<String>,
    /// The path below the (versioned) base URL, without leading `/`.
    rest: String,
}

impl Place {
    fn versioned_base(&self) -> String {
        format!("{}/v{MAJOR}", self.base)
    }
}

async fn handle(api: Mounted, ctx: Ctx, uri: Uri) -> Response {
    let below = unquote(uri.path());
    let mount = ctx.path.strip_suffix(below.as_str()).unwrap_or(&ctx.path).trim_end_matches('/');
    let trimmed = below.trim_matches('/');
    let (first, after) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let (version, rest) = if VERSIONS.contains(&first) {
        (Some(first.to_string()), after.to_string())
    } else {
        (None, trimmed.to_string())
    };
    let place = Place { base: format!("{}{mount}", ctx.origin), version, rest };
    let answer = match ctx.method {
        Method::GET => answer(&api, &ctx, &place).await,
        Method::OPTIONS => {
            let mut response = StatusCode::OK.into_response();
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return response;
        }
        _ => Err(Error::new(StatusCode::METHOD_NOT_ALLOWED, "OPTIMADE answers GET (and HEAD, OPTIONS) only.")),
    };
    match answer {
        Ok(response) => response,
        Err(err) => {
            let mut response = error_response(&ctx, &place, err.status, &err.detail);
            if err.status == StatusCode::METHOD_NOT_ALLOWED {
                response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            }
            response
        }
    }
}

async fn answer(api: &Mounted, ctx: &Ctx, place: &Place) -> Result<Response, Error> {
    let max = MAX_PAGE_LIMIT.min(usize::try_from(api.state.settings.max_rows).unwrap_or(0).max(1));
    let params = Params::parse(ctx.raw_query.as_deref().unwrap_or(""), max)?;
    let rest = place.rest.as_str();
    if place.version.is_none() {
        if rest == "versions" {
            let mut response = format!("version\n{MAJOR}\n").into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; header=present"));
            return Ok(response);
        }
        let first = rest.split('/').next().unwrap_or("");
        if first.len() > 1 && first.starts_with('v') && first[1..].chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(Error::new(
                StatusCode::from_u16(553).expect("553 is a status code"),
                format!(
                    "Version '{first}' is not served; the versions served are at /versions (major version {MAJOR})."
                ),
            ));
        }
    }
    let (resource, id) = match rest.split_once('/') {
        Some((resource, id)) => (resource, Some(id)),
        None => (rest, None),
    };
    match (resource, id) {
        ("info", None) => Ok(respond(base_info(ctx, place))),
        ("info", Some("structures")) => Ok(respond(entry_info(ctx, place))),
        ("links", None) => Ok(respond(envelope(ctx, place, json!([]), Some((0, 0, false)), Vec::new()))),
        // Boxed, as v4's endpoints are (see `v4::call`): the request's future stays small.
        ("structures", None) => Box::pin(structures(api, ctx, place, &params)).await,
        ("structures", Some(id)) if !id.is_empty() && !id.contains('/') => {
            Box::pin(single(api, ctx, place, &params, id)).await
        }
        _ => Err(Error::new(
            StatusCode::NOT_FOUND,
            format!(
                "Not found: {}. The endpoints are info, info/structures, links, structures, structures/<id> (and versions at the unversioned base URL).",
                ctx.path
            ),
        )),
    }
}

/// The query parameters of OPTIMADE (others are ignored, as the specification asks).
#[derive(Debug, Default)]
struct Params {
    filter: Option<String>,
    page_limit: Option<usize>,
    page_offset: Option<usize>,
    page_number: Option<usize>,
    sort: Vec<SortKey>,
    response_fields: Option<Vec<String>>,
    /// The fields as received (still percent-encoded), in order, for `links.next`.
    raw: Vec<(String, String)>,
    /// The largest page.
    max: usize,
}

fn form_decode(text: &str) -> String {
    unquote(&text.replace('+', " "))
}

fn count(name: &str, value: &str) -> Result<usize, Error> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| Error::bad(format!("{name} must be a non-negative integer, not '{value}'.")))
}

impl Params {
    /// The parameters of `query`; `max` is the largest `page_limit`.
    fn parse(query: &str, max: usize) -> Result<Params, Error> {
        let mut p = Params { max, ..Params::default() };
        for field in query.split('&').filter(|f| !f.is_empty()) {
            let (key, value) = field.split_once('=').unwrap_or((field, ""));
            p.raw.push((key.to_string(), value.to_string()));
            let (key, value) = (form_decode(key), form_decode(value));
            match key.as_str() {
                "filter" => p.filter = Some(value),
                "page_limit" => p.page_limit = Some(count("page_limit", &value)?),
                "page_offset" => p.page_offset = Some(count("page_offset", &value)?),
                "page_number" => p.page_number = Some(count("page_number", &value)?),
                "response_format" if value != "json" => {
                    return Err(Error::bad(format!("response_format '{value}' is not served; the format is 'json'.")));
                }
                "sort" => {
                    p.sort = value
                        .split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(|k| match k.strip_prefix('-') {
                            Some(name) => SortKey { property: name.to_string(), descending: true },
                            None => SortKey { property: k.to_string(), descending: false },
                        })
                        .collect();
                    check_sort(&p.sort)?;
                }
                "response_fields" => {
                    p.response_fields =
                        Some(value.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_string).collect());
                }
                "page_cursor" | "page_above" | "page_below" => {
                    return Err(Error::new(
                        StatusCode::NOT_IMPLEMENTED,
                        format!("{key} is not supported; page with page_offset or page_number."),
                    ));
                }
                _ => {}
            }
        }
        if p.page_limit.is_some_and(|l| l > max) {
            return Err(Error::new(StatusCode::FORBIDDEN, format!("page_limit may be at most {max}.")));
        }
        if p.page_limit == Some(0) {
            return Err(Error::bad("page_limit must be at least 1."));
        }
        if p.page_offset.is_some() && p.page_number.is_some() {
            return Err(Error::bad("Give page_offset or page_number, not both."));
        }
        if p.page_number == Some(0) {
            return Err(Error::bad("page_number starts at 1."));
        }
        Ok(p)
    }

    fn limit(&self) -> usize {
        self.page_limit.unwrap_or(DEFAULT_PAGE_LIMIT).min(self.max)
    }

    fn offset(&self) -> usize {
        match (self.page_offset, self.page_number) {
            (Some(offset), _) => offset,
            (None, Some(n)) => (n - 1).saturating_mul(self.limit()),
            _ => 0,
        }
    }

    /// The query of the same request starting at `offset`.
    fn query_at(&self, offset: usize) -> String {
        let mut fields: Vec<String> = self
            .raw
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "page_offset" | "page_number"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        fields.push(format!("page_offset={offset}"));
        fields.join("&")
    }
}

fn respond(body: Value) -> Response {
    json_api(StatusCode::OK, &body)
}

fn json_api(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, serde_json::to_string(body).unwrap_or_default()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_API));
    response
}

fn provider() -> Value {
    json!({
        "name": "aiida-rest",
        "description": "The structures of an AiiDA database, served read-only by aiida-rest",
        "prefix": "aiida",
        "homepage": "https://www.aiida.net",
    })
}

/// The `meta` of every answer; `counts` is `(returned, available, more)` for entry lists.
fn meta(ctx: &Ctx, place: &Place, counts: Option<(usize, usize, bool)>, warnings: Vec<String>) -> Value {
    let below = match place.version {
        Some(_) => format!("/{}", place.rest),
        None => format!("/{}", place.rest),
    };
    let representation = match ctx.raw_query.as_deref() {
        Some(q) if !q.is_empty() => format!("{below}?{q}"),
        _ => below,
    };
    let mut m = Map::new();
    m.insert("query".into(), json!({ "representation": representation }));
    m.insert("api_version".into(), json!(API_VERSION));
    m.insert("time_stamp".into(), json!(props::timestamp_text(chrono::Utc::now())));
    m.insert("provider".into(), provider());
    m.insert("schema".into(), json!(SCHEMA));
    m.insert(
        "implementation".into(),
        json!({ "name": "aiida-rest", "version": env!("CARGO_PKG_VERSION"), "homepage": "https://www.aiida.net" }),
    );
    let (returned, available, more) = counts.unwrap_or((0, 0, false));
    m.insert("more_data_available".into(), json!(more));
    if counts.is_some() {
        m.insert("data_returned".into(), json!(returned));
        m.insert("data_available".into(), json!(available));
    }
    if !warnings.is_empty() {
        let list: Vec<Value> = warnings
            .into_iter()
            .map(|detail| json!({ "type": "warning", "title": "Warning", "detail": detail }))
            .collect();
        m.insert("warnings".into(), Value::Array(list));
    }
    Value::Object(m)
}

fn envelope(
    ctx: &Ctx,
    place: &Place,
    data: Value,
    counts: Option<(usize, usize, bool)>,
    warnings: Vec<String>,
) -> Value {
    json!({ "data": data, "meta": meta(ctx, place, counts, warnings) })
}

fn error_response(ctx: &Ctx, place: &Place, status: StatusCode, detail: &str) -> Response {
    let title =
        status.canonical_reason().unwrap_or(if status.as_u16() == 553 { "Version Not Supported" } else { "Error" });
    let body = json!({
        "errors": [{ "status": status.as_u16().to_string(), "title": title, "detail": detail }],
        "meta": meta(ctx, place, None, Vec::new()),
    });
    json_api(status, &body)
}

fn base_info(ctx: &Ctx, place: &Place) -> Value {
    let data = json!({
        "type": "info",
        "id": "/",
        "attributes": {
            "api_version": API_VERSION,
            "available_api_versions": [{ "url": place.versioned_base(), "version": API_VERSION }],
            "formats": ["json"],
            "entry_types_by_format": { "json": ["structures"] },
            "available_endpoints": ["info", "links", "structures"],
            "is_index": false,
        },
    });
    envelope(ctx, place, data, None, Vec::new())
}

fn entry_info(ctx: &Ctx, place: &Place) -> Value {
    let mut properties = Map::new();
    for p in PROPERTIES {
        let mut d = Map::new();
        d.insert("description".into(), json!(p.description));
        d.insert("type".into(), json!(p.kind.name()));
        d.insert("sortable".into(), json!(p.sortable));
        if let Some(unit) = p.unit {
            d.insert("unit".into(), json!(unit));
        }
        properties.insert(p.name.into(), Value::Object(d));
    }
    let data = json!({
        "id": "structures",
        "type": "info",
        "description": "The StructureData nodes of the AiiDA database.",
        "properties": properties,
        "formats": ["json"],
        "output_fields_by_format": { "json": PROPERTIES.iter().map(|p| p.name).collect::<Vec<_>>() },
    });
    envelope(ctx, place, data, None, Vec::new())
}

/// The names that `response_fields` asks for, or every property.
fn fields(params: &Params) -> Vec<&str> {
    match &params.response_fields {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => PROPERTIES.iter().map(|p| p.name).collect(),
    }
}

fn resource(entry: &Entry, fields: &[&str]) -> Value {
    let mut attributes = Map::new();
    for &name in fields {
        if name != "id" && name != "type" {
            attributes.insert(name.to_string(), entry.json(name));
        }
    }
    json!({ "id": entry.node.uuid, "type": "structures", "attributes": attributes })
}

async fn index(api: &Mounted) -> Result<Arc<Index>, Error> {
    Ok(api.index.get(&api.state.storage.db).await?)
}

async fn structures(api: &Mounted, ctx: &Ctx, place: &Place, params: &Params) -> Result<Response, Error> {
    let filter = match params.filter.as_deref() {
        Some(text) => filter::parse(text).map_err(Error::bad)?,
        None => None,
    };
    let mut warnings = Vec::new();
    if let Some(f) = &filter {
        let checked = check(f)?;
        for name in checked.foreign {
            warnings.push(format!(
                "The property '{name}' is another provider's: unknown here, so comparisons on it are false."
            ));
        }
    }
    let index = index(api).await?;
    let found = index.search(filter.as_ref(), &params.sort);
    let (offset, limit) = (params.offset(), params.limit());
    let page: Vec<Value> = {
        let wanted = fields(params);
        found.iter().skip(offset).take(limit).map(|&i| resource(&index.entries[i], &wanted)).collect()
    };
    let end = offset.saturating_add(page.len());
    let more = end < found.len();
    let next = if more {
        let below = match &place.version {
            Some(v) => format!("{}/{v}/structures", place.base),
            None => format!("{}/structures", place.base),
        };
        Value::String(format!("{below}?{}", params.query_at(end)))
    } else {
        Value::Null
    };
    let mut body = envelope(ctx, place, Value::Array(page), Some((found.len(), index.entries.len(), more)), warnings);
    body["links"] = json!({ "next": next });
    Ok(respond(body))
}

async fn single(api: &Mounted, ctx: &Ctx, place: &Place, params: &Params, id: &str) -> Result<Response, Error> {
    if params.filter.is_some() {
        return Err(Error::bad("A single entry takes no filter."));
    }
    let index = index(api).await?;
    let entry =
        index.entry(id).ok_or_else(|| Error::new(StatusCode::NOT_FOUND, format!("No structure with id '{id}'.")))?;
    let data = resource(entry, &fields(params));
    let total = index.entries.len();
    Ok(respond(envelope(ctx, place, data, Some((1, total, false)), Vec::new())))
}

#[cfg(test)]
mod future_size {
    use super::*;

    /// See `v4`'s test of the same name.
    #[test]
    fn the_future_of_a_request_stays_small() {
        crate::http::assert_small_future(handle);
    }
}
