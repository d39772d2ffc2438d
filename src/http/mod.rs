//! The HTTP layer: one entry point that routes every request under the prefix, the CORS
//! rules of the reference, and the JSON error answers.

pub mod error;
pub mod listener;
mod params;
pub mod querystring;
pub(crate) mod render;
mod request;
pub mod v4;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::error::{ApiError, ApiResult};
use crate::storage::Storage;

pub use request::Ctx;
pub(crate) use request::json_response;
use v4::routes::{self, Route, RouteError};
use v4::{collection, node, properties, server, types};

/// Server settings that shape the API.
#[derive(Debug, Clone)]
pub struct Settings {
    /// URL prefix of every route, `/api/v4`.
    pub prefix: String,
    /// Whether `POST /querybuilder` is served.
    pub posting: bool,
    /// The most rows any one answer holds, whatever the request asks for.
    pub max_rows: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { prefix: "/api/v4".into(), posting: true, max_rows: 10_000 }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<Storage>,
    pub settings: Arc<Settings>,
}

/// The application: every request goes through [`handle`].
pub fn router(state: AppState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Largest request body read (only `POST /querybuilder` has one).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = if parts.method == Method::POST {
        axum::body::to_bytes(body, MAX_BODY_BYTES).await.ok()
    } else {
        Some(axum::body::Bytes::new())
    };
    let prefix = state.settings.prefix.as_str();
    // Routing sees the decoded path, as Werkzeug's does (`/api/v4/n%6Fdes` is `/nodes`).
    let path = request::unquote(parts.uri.path());
    let under_prefix = path.starts_with(prefix);
    let mut response = if !under_prefix {
        unknown_route(&state)
    } else if parts.method == Method::OPTIONS && parts.headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        preflight(&parts.headers)
    } else if body.is_none() {
        let message = format!("The request body could not be read or is larger than {} MiB.", MAX_BODY_BYTES >> 20);
        json_response(StatusCode::PAYLOAD_TOO_LARGE, &serde_json::json!({ "message": message }), None, None)
    } else {
        let ctx = Ctx::new(parts.method.clone(), &parts.uri, &parts.headers);
        let below = &path[prefix.len()..];
        // `/api/v4x` shares the prefix text but is not under it.
        if !below.is_empty() && !below.starts_with('/') {
            unknown_route(&state)
        } else {
            match dispatch(&state, &ctx, below, body.as_deref().unwrap_or_default()).await {
                Ok(response) => response,
                Err(err) => err.into_response(),
            }
        }
    };
    if under_prefix {
        add_cors(response.headers_mut(), &parts.headers);
    }
    if parts.method == Method::HEAD {
        response = strip_body(response);
    }
    response
}

fn unknown_route(state: &AppState) -> Response {
    ApiError::UnknownRoute(routes::available_endpoints(&state.settings.prefix, state.settings.posting)).into_response()
}

async fn dispatch(state: &AppState, ctx: &Ctx, below: &str, body: &[u8]) -> ApiResult<Response> {
    let settings = &state.settings;
    let route = match routes::parse(below, settings.posting) {
        Ok(route) => route,
        Err(RouteError::Unknown) => {
            return Err(ApiError::UnknownRoute(routes::available_endpoints(&settings.prefix, settings.posting)));
        }
        Err(RouteError::BadId { resource, id }) => {
            return Err(ApiError::not_found(format!(
                "'{id}' is not a valid identifier of {}: {}",
                resource.name(),
                if resource == routes::Resource::Users {
                    "users are identified by their integer id"
                } else {
                    "use a UUID or the start of one (hexadecimal digits, with the dashes at their places)"
                }
            )));
        }
    };
    let allow = if route == Route::QueryBuilder { "GET, HEAD, OPTIONS, POST" } else { "GET, HEAD, OPTIONS" };
    match ctx.method {
        Method::GET | Method::HEAD => {}
        Method::POST if route == Route::QueryBuilder => {}
        Method::OPTIONS => {
            let mut response = StatusCode::OK.into_response();
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            return Ok(response);
        }
        _ => return Err(ApiError::MethodNotAllowed(allow)),
    }
    let db = &state.storage.db;
    match route {
        Route::ServerInfo => Ok(server::info(ctx, &settings.prefix)),
        Route::ServerEndpoints => Ok(server::endpoints(ctx, &settings.prefix, settings.posting)),
        Route::List { resource, page } => collection::list(db, ctx, resource, None, page, settings.max_rows).await,
        Route::Detail { resource, id } => collection::list(db, ctx, resource, Some(&id), None, settings.max_rows).await,
        Route::ProjectableProperties(resource) => properties::projectable_properties(ctx, resource),
        Route::QueryBuilder if ctx.method == Method::POST => {
            params::Params::parse(&ctx.query)?;
            v4::querybuilder::post(db, ctx, body, settings.max_rows).await
        }
        Route::QueryBuilder => Ok(v4::querybuilder::method_not_allowed(ctx)),
        Route::Statistics => types::statistics(db, ctx).await,
        Route::FullTypes => types::full_types(db, ctx, false).await,
        Route::FullTypesCount => types::full_types(db, ctx, true).await,
        Route::DownloadFormats => types::download_formats(ctx).await,
        Route::Node { id, part, page } => {
            node::node_part(db, &state.storage.repo, ctx, &id, part, page, settings.max_rows).await
        }
        Route::ProcessReport { id } => node::process_report(db, ctx, &id, settings.max_rows).await,
        Route::CalcjobFiles { id, outputs } => {
            node::calcjob_files(db, ctx, ctx.raw_query.as_deref(), &id, outputs).await
        }
    }
}

/// Answers a CORS preflight the way Flask-Cors does: everything is allowed.
fn preflight(headers: &HeaderMap) -> Response {
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"),
    );
    if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    response
}

/// Any origin may read the API: `*`, or the caller's origin echoed (with `Vary: Origin`).
fn add_cors(out: &mut HeaderMap, request: &HeaderMap) {
    match request.get(header::ORIGIN) {
        Some(origin) => {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            out.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        None => {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
    }
}

/// HEAD: the headers of GET, including the length of the body that is not sent.
fn strip_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    if !parts.headers.contains_key(header::CONTENT_LENGTH)
        && let Some(len) = axum::body::HttpBody::size_hint(&body).exact()
    {
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, Body::empty())
}
