//! The HTTP layer: the application's router, its middleware, the error mapping, the
//! query-string grammar and parameters shared by API versions, and the APIs (`v4/`).
//!
//! # How a request travels
//!
//! [`App::into_router`] stacks, outermost first:
//! 1. `head::head`: HEAD is handled as GET and answered without the body.
//! 2. `path::decode`: routing sees the percent-decoded path, as Werkzeug's does; the
//!    received URI stays available (`path::ReceivedUri`, read by the [`Ctx`] extractor).
//! 3. `compress::layer` and `compress::memo`: JSON and text answers of 1 KiB or more are
//!    gzip- or brotli-encoded when `Accept-Encoding` asks for it (`Vary: Accept-Encoding`);
//!    the compressed text of answers of 256 KiB or more is kept, for when they are asked again.
//! 4. `etag::etag`: GET answers get a weak `ETag` (a hash of the body) and `Cache-Control`
//!    (`public` for a storage that cannot change, `no-cache` otherwise); a matching
//!    `If-None-Match` gets 304.
//! 5. `cors::cors`: under the mounted prefixes (`path::Prefixes`), preflights are
//!    answered and CORS headers added, as Flask-Cors does for the reference.
//! 6. `body::limit`: under the mounted prefixes, POST bodies are read whole (413 above
//!    4 MiB).
//! 7. The routes: each API is a [`Router`] nested under its prefix. A path under no prefix
//!    gets the 404 that lists the endpoints of every mounted API.
//!
//! # Adding an API (`/api/v2`, `/optimade/v1`, `/health`)
//!
//! Write a module with a type implementing [`Api`]: its [`Router`] has paths relative to the
//! prefix, its handlers take the storage from their `State` (never from a global) and a
//! [`Ctx`] for what the answer echoes. Then mount it with one more line where the application
//! is built (`src/main.rs`, and [`router`] if the tests should see it):
//! `App::new().nest("/api/v4", V4::new(state.clone())).nest("/api/v2", V2::new(state))`.
//! HEAD, CORS, path decoding, the body limit and the unknown-URL 404 come with the mount. No
//! v4 file changes; the `tests` module below mounts a small API beside v4 to show it.
//!
//! # Several databases
//!
//! An API instance serves the database of its [`AppState`]; serving several is mounting one
//! instance per database, e.g. `.nest(&format!("/{name}/api/v4"), V4::new(state_of(name)))`.
//! [`databases`] does so lazily for the `--database`/`--config` command line: each database's
//! v4 and v2 are mounted under `/<name>`, and the storage is opened by the first request,
//! closed when idle, and reopened on demand; `databases::Switch` swaps the whole application on
//! a reload. `/health` and `/ready` are mounted the same way.

mod body;
pub mod compress;
pub mod cors;
pub mod databases;
pub mod error;
pub mod etag;
mod head;
pub mod listener;
pub mod optimade;
mod params;
mod path;
pub mod querystring;
pub(crate) mod render;
mod request;
pub mod serve;
pub mod v2;
pub mod v4;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::any_service;

use crate::http::error::ApiError;
use crate::storage::Storage;

pub use request::Ctx;
pub(crate) use request::json_response;

/// Server settings that shape the API.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where [`router`] (and the `aiida-rest` command) mounts REST API v4, `/api/v4`.
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

/// What one mounted API serves: one database (storage), and the settings of its answers.
#[derive(Clone)]
pub struct AppState {
    pub storage: Arc<Storage>,
    pub settings: Arc<Settings>,
}

/// An API that [`App::nest`] can mount under a prefix.
pub trait Api {
    /// The API's routes, their paths relative to the prefix. `prefix` is where it is mounted,
    /// for the answers that echo it.
    fn router(self, prefix: &str) -> Router;

    /// Its lines of `available_endpoints`, which the 404 for an unknown URL lists.
    fn endpoints(&self, prefix: &str) -> Vec<String>;

    /// The storage it serves, if one: its answers may be cached by proxies when it cannot
    /// change (see [`etag`]).
    fn storage(&self) -> Option<Arc<Storage>> {
        None
    }
}

/// The application being built: the APIs and where they are mounted.
#[derive(Default)]
pub struct App {
    routes: Router,
    prefixes: Vec<String>,
    endpoints: Vec<String>,
    cors: cors::Origins,
    storages: Vec<(String, Arc<Storage>)>,
}

impl App {
    pub fn new() -> Self {
        Self::default()
    }

    /// Mounts `api` under `prefix` (e.g. `/api/v4`, no trailing slash): it answers that path,
    /// with or without a trailing slash, and every path below it; `/api/v4x` is not below it.
    pub fn nest(mut self, prefix: &str, api: impl Api) -> Self {
        self.endpoints.extend(api.endpoints(prefix));
        self.storages.extend(api.storage().map(|storage| (prefix.to_string(), storage)));
        self.prefixes.push(prefix.to_string());
        self.routes = self.routes.nest_service(prefix, api.router(prefix));
        self
    }

    /// The origins CORS lets read the APIs (any by default).
    pub fn cors_origins(mut self, origins: cors::Origins) -> Self {
        self.cors = origins;
        self
    }

    /// The application, ready for `axum::serve` (or `oneshot` in tests).
    pub fn into_router(self) -> Router {
        let endpoints: Arc<[String]> = self.endpoints.into();
        let routes = self.routes.fallback(move || unknown_route(endpoints.clone()));
        let prefixes = path::Prefixes(self.prefixes.into());
        // The layers wrap the routes as one service, so that they run before routing (path
        // decoding must); the last layer added runs first. As a method router, the stack
        // also gets axum's finishing touch on every answer (`Content-Length` when known).
        let layered = any_service(routes)
            .layer(from_fn_with_state(prefixes.clone(), body::limit))
            .layer(from_fn_with_state((prefixes, self.cors), cors::cors))
            .layer(from_fn_with_state(etag::Policy::new(self.storages), etag::etag))
            .layer::<_, Infallible>(from_fn(compress::memo))
            .layer::<_, Infallible>(compress::layer())
            .layer(from_fn(path::decode))
            .layer(from_fn(head::head));
        Router::new().fallback_service(layered)
    }
}

/// The application for one database: REST API v4 under `settings.prefix`.
pub fn router(state: AppState) -> Router {
    let prefix = state.settings.prefix.clone();
    App::new()
        .nest(&prefix, v4::V4::new(state.clone()))
        .nest("/api/v2", v2::V2::new(state.clone()))
        .nest("/optimade", optimade::Optimade::new(state))
        .into_router()
}

async fn unknown_route(endpoints: Arc<[String]>) -> Response {
    ApiError::UnknownRoute(endpoints.to_vec()).into_response()
}

/// A second API mounted beside v4, as `/api/v2` or `/optimade/v1` will be: one `nest` line,
/// no v4 file touched.
#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::State;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::storage::db::DbLimits;

    /// `GET /hello`: the description of the database it serves, in the envelope v4 uses.
    struct Hello(AppState);

    impl Api for Hello {
        fn router(self, _prefix: &str) -> Router {
            let hello = async |State(state): State<AppState>, ctx: Ctx| {
                let data = json!({ "serving": state.storage.description });
                json_response(StatusCode::OK, &ctx.envelope("hello", None, data), Some(1), None)
            };
            Router::new().route("/hello", get(hello)).with_state(self.0)
        }

        fn endpoints(&self, prefix: &str) -> Vec<String> {
            vec![format!("{:<15} {:<20} {prefix}/hello/", "hello", "GET,HEAD,OPTIONS")]
        }
    }

    async fn send(app: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let request = Request::builder().method(method).uri(uri).body(Body::from(body.to_string())).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_api_beside_v4() {
        let storage = crate::storage::open(&crate::storage::Source::Demo, DbLimits::default()).await.unwrap();
        let state = AppState { storage: Arc::new(storage), settings: Arc::new(Settings::default()) };
        let app = App::new().nest("/api/v4", v4::V4::new(state.clone())).nest("/api/v2", Hello(state)).into_router();

        // The new API, with what every mount brings: decoding, CORS, HEAD.
        let (status, headers, body) = send(&app, "GET", "/api/v2/h%65llo", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["path"], "/api/v2/hello");
        assert!(body["data"]["serving"].is_string());
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert_eq!(headers["access-control-expose-headers"], "X-Total-Count");
        let (status, headers, body) = send(&app, "HEAD", "/api/v2/hello", "").await;
        assert_eq!((status, body), (StatusCode::OK, Value::Null));
        assert!(headers["content-length"].to_str().unwrap().parse::<u64>().unwrap() > 0);
        let (status, ..) = send(&app, "POST", "/api/v2/hello", &"x".repeat(5 << 20)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

        // v4 unchanged beside it.
        let (status, _, body) = send(&app, "GET", "/api/v4/server", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["API_prefix"], "/api/v4");
        let (status, _, body) = send(&app, "GET", "/api/v4/nothing", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["available_endpoints"].as_array().unwrap().len(), 46);

        // Outside every prefix: the 404 lists both APIs; `/api/v2x` is not under `/api/v2`.
        for uri in ["/api/v2x/hello", "/other"] {
            let (status, _, body) = send(&app, "GET", uri, "").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            let endpoints = body["available_endpoints"].as_array().unwrap();
            assert_eq!(endpoints.len(), 47, "{uri}");
            assert_eq!(endpoints[46], "hello           GET,HEAD,OPTIONS     /api/v2/hello/");
        }
    }
}
