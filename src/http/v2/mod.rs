//! REST API v2, the API of aiida-core 0.x that the seed document describes, served beside v4
//! over the same query layer: `App::new().nest("/api/v2", V2::new(state))`.
//!
//! [`routes::parse`] turns a path below the prefix into a [`Route`]; the handlers translate v2's
//! names (resources restricted to a class, `type`, `name`, `state`, ...) into the query layer's
//! typed queries, the same ones v4 runs, and answer in v2's envelope (`data.<resource>`, `pk`
//! and `id`, `X-Total-Count`, `Link`). Status codes follow the seed: 400 for a bad request
//! (filter, id, ambiguous prefix, page), 404 for an unknown URL or object, 405 for a method
//! other than GET/HEAD/OPTIONS, 501 for what v2 did not offer; always JSON.

pub mod collection;
pub mod node;
pub mod params;
pub mod routes;

use std::sync::Arc;

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::error::{ApiError, ApiResult};
use crate::http::request::{json_response, unquote};
use crate::http::{Api, AppState, Ctx, Responder};
use routes::{Route, RouteError};

/// The aiida-core version whose data model the answers describe (that of v4's answers).
pub use crate::http::v4::server::AIIDA_VERSION;

/// REST API v2 over one database.
pub struct V2 {
    state: AppState,
}

impl V2 {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl Api for V2 {
    fn service(self, prefix: &str) -> Responder {
        Responder::new(Mounted { state: self.state, prefix: prefix.into() }, |api, ctx, uri, _| handle(api, ctx, uri))
    }

    fn endpoints(&self, prefix: &str) -> Vec<String> {
        routes::available_endpoints(prefix)
    }

    fn storage(&self) -> Option<Arc<crate::storage::Storage>> {
        Some(self.state.storage.clone())
    }
}

#[derive(Clone)]
struct Mounted {
    state: AppState,
    prefix: Arc<str>,
}

async fn handle(api: Mounted, ctx: Ctx, uri: Uri) -> Response {
    answer(&api, &ctx, &unquote(uri.path())).await.unwrap_or_else(IntoResponse::into_response)
}

async fn answer(api: &Mounted, ctx: &Ctx, below: &str) -> ApiResult<Response> {
    let route = routes::parse(below).map_err(|err| match err {
        RouteError::Unknown => ApiError::UnknownRoute(routes::available_endpoints(&api.prefix)),
        RouteError::BadId(msg) => ApiError::BadRequest(msg),
    })?;
    match ctx.method {
        Method::GET => {}
        Method::OPTIONS => {
            let mut response = StatusCode::OK.into_response();
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return Ok(response);
        }
        _ => return Err(ApiError::MethodNotAllowed("GET, HEAD, OPTIONS")),
    }
    let storage = &api.state.storage;
    let (db, max_rows) = (&storage.db, api.state.settings.max_rows);
    match route {
        Route::Endpoints => {
            let data = json!({ "available_endpoints": routes::available_endpoints(&api.prefix) });
            Ok(respond(&info_envelope(ctx, data), Some(1), None))
        }
        Route::ServerInfo => {
            let data = json!([
                "REST API version: v2",
                format!("REST API Prefix: {}", api.prefix),
                format!("AiiDA=={AIIDA_VERSION}"),
            ]);
            Ok(respond(&info_envelope(ctx, data), Some(1), None))
        }
        // Boxed, as v4's endpoints are (see `v4::call`): the request's future stays small.
        Route::List { resource, page } => Box::pin(collection::list(db, ctx, resource, None, page, max_rows)).await,
        Route::Detail { resource, id } => {
            Box::pin(collection::list(db, ctx, resource, Some(&id), None, max_rows)).await
        }
        Route::Schema(resource) => collection::schema(ctx, resource),
        Route::Statistics(resource) => Box::pin(collection::statistics(db, ctx, resource)).await,
        Route::Types(resource) => Box::pin(collection::types(db, ctx, resource)).await,
        Route::Node { resource, id, part, page } => {
            Box::pin(node::node_part(db, &storage.repo, ctx, resource, &id, part, page, max_rows)).await
        }
    }
}

fn info_envelope(ctx: &Ctx, data: Value) -> Value {
    collection::envelope(ctx, "Info", None, None, data)
}

/// A JSON answer (200) with v4's headers.
pub(crate) fn respond(body: &Value, total: Option<i64>, link: Option<String>) -> Response {
    json_response(StatusCode::OK, body, total, link)
}

/// v4's paging errors as v2 gives them: a page out of range is a bad request (400), as every
/// validation error of v2 was.
pub(crate) fn v2_error(err: ApiError) -> ApiError {
    match err {
        ApiError::NotFound(msg) => ApiError::BadRequest(msg),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// See `v4`'s test of the same name.
    #[test]
    fn the_future_of_a_request_stays_small() {
        crate::http::assert_small_future(handle);
    }
}
