//! REST API v4, as served by aiida-core's `verdi restapi`.
//!
//! [`V4`] is the API one database is served through; [`crate::http::App::nest`] mounts it
//! under a prefix (`/api/v4`). Below the prefix the paths are v4's own: [`routes::parse`] turns
//! them into a [`Route`] (the rules are those the reference lists in `available_endpoints`),
//! and `handle` checks the method and calls the endpoint with the database of its state.

pub mod collection;
pub mod node;
pub mod properties;
mod qb_respond;
pub mod querybuilder;
pub mod routes;
pub mod server;
pub mod types;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::http::body::{MAX_BODY_BYTES, too_large as body_too_large};
use crate::http::error::{ApiError, ApiResult};
use crate::http::request::unquote;
use crate::http::{Api, AppState, Ctx, Responder, params};
use routes::{Resource, Route, RouteError};

/// REST API v4 over one database: `App::new().nest("/api/v4", V4::new(state))`. Mount one per
/// database to serve several (each with its own [`AppState`]).
pub struct V4 {
    state: AppState,
}

impl V4 {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl Api for V4 {
    fn service(self, prefix: &str) -> Responder {
        Responder::new(Mounted { state: self.state, prefix: prefix.into() }, handle)
    }

    fn endpoints(&self, prefix: &str) -> Vec<String> {
        routes::available_endpoints(prefix, self.state.settings.posting)
    }

    fn storage(&self) -> Option<Arc<crate::storage::Storage>> {
        Some(self.state.storage.clone())
    }
}

/// The state of one mounted v4: the database it serves, and where it is mounted (answers
/// echo the prefix and list the endpoints under it).
#[derive(Clone)]
struct Mounted {
    state: AppState,
    prefix: Arc<str>,
}

impl Mounted {
    fn unknown_route(&self) -> ApiError {
        ApiError::UnknownRoute(routes::available_endpoints(&self.prefix, self.state.settings.posting))
    }
}

/// Every request below the prefix; `uri` is relative to it.
async fn handle(api: Mounted, ctx: Ctx, uri: Uri, body: Body) -> Response {
    answer(&api, &ctx, &unquote(uri.path()), body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn answer(api: &Mounted, ctx: &Ctx, below: &str, body: Body) -> ApiResult<Response> {
    let route = resolve(api, below)?;
    if let Some(answer) = check_method(&route, &ctx.method)? {
        return Ok(answer);
    }
    call(api, ctx, route, body).await
}

/// The route of a decoded path below the prefix, or the 404 to answer.
fn resolve(api: &Mounted, below: &str) -> ApiResult<Route> {
    routes::parse(below, api.state.settings.posting).map_err(|err| match err {
        RouteError::Unknown => api.unknown_route(),
        RouteError::BadId { resource, id } => ApiError::not_found(format!(
            "'{id}' is not a valid identifier of {}: {}",
            resource.name(),
            if resource == Resource::Users {
                "users are identified by their integer id"
            } else {
                "use a UUID or the start of one (hexadecimal digits, with the dashes at their places)"
            }
        )),
    })
}

/// GET on every route, POST on `/querybuilder`; OPTIONS lists them, anything else is a 405.
/// `Some` is the answer to give instead of calling the endpoint.
fn check_method(route: &Route, method: &Method) -> ApiResult<Option<Response>> {
    let allow = if *route == Route::QueryBuilder { "GET, HEAD, OPTIONS, POST" } else { "GET, HEAD, OPTIONS" };
    match *method {
        Method::GET => Ok(None),
        Method::POST if *route == Route::QueryBuilder => Ok(None),
        Method::OPTIONS => {
            let mut response = StatusCode::OK.into_response();
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            Ok(Some(response))
        }
        _ => Err(ApiError::MethodNotAllowed(allow)),
    }
}

/// Runs the endpoint of `route` on the database of the state.
///
/// Each endpoint's future is boxed. Unboxed, the future of [`handle`] would be as large as the
/// largest endpoint's (7.6 KB), and every request, `/server` included, would pay for moving it
/// through the router's layers several times; a box costs one allocation of the endpoint's own
/// size.
async fn call(api: &Mounted, ctx: &Ctx, route: Route, body: Body) -> ApiResult<Response> {
    let storage = &api.state.storage;
    let settings = &api.state.settings;
    let (db, max_rows) = (&storage.db, settings.max_rows);
    match route {
        Route::ServerInfo => Ok(server::info(ctx, &api.prefix)),
        Route::ServerEndpoints => Ok(server::endpoints(ctx, &api.prefix, settings.posting)),
        Route::List { resource, page } => Box::pin(collection::list(db, ctx, resource, None, page, max_rows)).await,
        Route::Detail { resource, id } => {
            Box::pin(collection::list(db, ctx, resource, Some(&id), None, max_rows)).await
        }
        Route::ProjectableProperties(resource) => properties::projectable_properties(ctx, resource),
        Route::QueryBuilder if ctx.method == Method::POST => Box::pin(post_querybuilder(db, ctx, body, max_rows)).await,
        Route::QueryBuilder => Ok(querybuilder::method_not_allowed(ctx)),
        Route::Statistics => Box::pin(types::statistics(db, ctx)).await,
        Route::FullTypes => Box::pin(types::full_types(db, ctx, false)).await,
        Route::FullTypesCount => Box::pin(types::full_types(db, ctx, true)).await,
        Route::DownloadFormats => Box::pin(types::download_formats(ctx)).await,
        Route::Node { id, part, page } => {
            Box::pin(node::node_part(db, &storage.repo, ctx, &id, part, page, max_rows)).await
        }
        Route::ProcessReport { id } => Box::pin(node::process_report(db, ctx, &id, max_rows)).await,
        Route::CalcjobFiles { id, outputs } => {
            Box::pin(node::calcjob_files(db, ctx, ctx.raw_query.as_deref(), &id, outputs)).await
        }
    }
}

async fn post_querybuilder(db: &crate::storage::db::Db, ctx: &Ctx, body: Body, max_rows: i64) -> ApiResult<Response> {
    // Already read whole by `http::body::limit`; bounded here all the same.
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Ok(body_too_large());
    };
    params::Params::parse(&ctx.query)?;
    querybuilder::post(db, ctx, &body, max_rows).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The future of every request is moved through the router's layers: it must not grow
    /// with the endpoints (see [`call`]).
    #[test]
    fn the_future_of_a_request_stays_small() {
        crate::http::assert_small_future(|api, ctx, uri| handle(api, ctx, uri, Body::empty()));
    }
}
