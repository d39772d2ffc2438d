//! The HTTP layer: the application's router, its middleware, the error mapping, the
//! query-string grammar and parameters shared by API versions, and the APIs (`v4/`).
//!
//! # How a request travels
//!
//! [`App::into_responder`] stacks, outermost first (`edge` orders these steps; each is a
//! function of its module):
//! 1. `head`: HEAD is handled as GET and answered without the body.
//! 2. `path`: routing sees the percent-decoded path, as Werkzeug's does; the
//!    received URI stays available (`path::ReceivedUri`, read by [`Ctx::of`]).
//! 3. `compress::layer` and `compress::memo`: JSON and text answers of 1 KiB or more are
//!    gzip- or brotli-encoded when `Accept-Encoding` asks for it (`Vary: Accept-Encoding`);
//!    the compressed text of answers of 256 KiB or more is kept, for when they are asked again.
//! 4. `etag`: GET answers get a weak `ETag` (a hash of the body) and `Cache-Control`
//!    (`public` for a storage that cannot change, `no-cache` otherwise); a matching
//!    `If-None-Match` gets 304.
//! 5. `cors`: under the mounted prefixes (`path::Prefixes`), preflights are
//!    answered and CORS headers added, as Flask-Cors does for the reference.
//! 6. `body`: under the mounted prefixes, POST bodies are read whole (413 above
//!    4 MiB).
//! 7. The routes: one axum [`Router`] nests each API under its prefix; an API is a
//!    [`Responder`], most often one function that parses the path below the prefix. A path
//!    under no prefix gets the 404 that lists the endpoints of every mounted API.
//!
//! # Adding an API (`/optimade/v1`, ...)
//!
//! Write a module with a type implementing [`Api`]: its [`Responder`] answers the paths
//! relative to the prefix (one function with the API's state, or a `Router` of its own); its
//! handlers take the storage from that state (never from a global) and a [`Ctx`] for what the
//! answer echoes. Then add one [`FrontDoor`] to [`FRONT_DOORS`]: its
//! prefix and how to build it over one database. Every application mounts the whole table:
//! [`router`] (the tests' one database), the one-storage command line (`src/main.rs`, with
//! [`App::front_doors`]) and [`databases`] (each database under `/<name>`, the default one at
//! the door's own prefix). HEAD, CORS, path decoding, the body limit and the unknown-URL 404
//! come with the mount. No v4 file changes; the `tests` module below mounts a small API beside
//! v4 to show it.
//!
//! # Several databases
//!
//! An API instance serves the database of its [`AppState`]; serving several is mounting one
//! instance per database. [`databases`] does so lazily for the `--database`/`--config` command
//! line: each database's front doors are mounted under `/<name>`, and the storage is opened
//! by the first request, closed when idle, and reopened on demand; `databases::Switch` swaps
//! the whole application on a reload. `/health` and `/ready` are mounted beside them.

pub mod base;
mod body;
pub mod compress;
pub mod cors;
pub mod databases;
pub mod deadline;
mod edge;
pub mod error;
pub mod etag;
mod head;
pub mod landing;
pub mod listener;
pub mod observe;
pub mod openapi;
pub mod optimade;
mod params;
mod path;
pub mod querystring;
pub(crate) mod render;
mod request;
mod responder;
pub mod serve;
pub mod v2;
pub mod v4;

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use crate::storage::Storage;

pub use request::Ctx;
pub(crate) use request::json_response;
pub use responder::Responder;

/// Server settings that shape the API.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether `POST /querybuilder` is served.
    pub posting: bool,
    /// The most rows any one answer holds, whatever the request asks for.
    pub max_rows: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { posting: true, max_rows: 10_000 }
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
    /// What answers the API's requests, their paths relative to the prefix: one function
    /// ([`Responder::new`]), or a `Router` of the API's own ([`Responder::from_service`]).
    /// `prefix` is where it is mounted, for the answers that echo it.
    fn service(self, prefix: &str) -> Responder;

    /// Its lines of `available_endpoints`, which the 404 for an unknown URL lists.
    fn endpoints(&self, prefix: &str) -> Vec<String>;

    /// The storage it serves, if one: its answers may be cached by proxies when it cannot
    /// change (see [`etag`]).
    fn storage(&self) -> Option<Arc<Storage>> {
        None
    }
}

/// An API that every database is served through, under its own prefix: one entry of
/// [`FRONT_DOORS`].
pub struct FrontDoor {
    /// Where it is mounted (`/api/v4`), and the prefix its answers name (`API_prefix`,
    /// `available_endpoints`) wherever it is mounted: a database under `/<name>` is the API
    /// served below a sub-path, as the reference is behind a proxy or mod_wsgi.
    pub prefix: &'static str,
    /// Whether a `?profile=NAME` query selects the database (v4, as aiida-core).
    pub profile_parameter: bool,
    /// The API over one database, mounted at `prefix` ([`Api::service`]).
    pub service: fn(AppState, &str) -> Responder,
    /// Its `available_endpoints` lines under `prefix` ([`Api::endpoints`]), from the
    /// settings alone (no database needs to be open).
    pub endpoints: fn(&Settings, &str) -> Vec<String>,
    /// Its OpenAPI document when mounted at `prefix` ([`openapi`]), served beside it as
    /// `<prefix>/openapi.json` and `<prefix>/docs`.
    pub openapi: Option<fn(&Settings, &str) -> openapi::Spec>,
}

/// The front doors, in the order the 404 of an unknown URL lists their endpoints. A new API
/// is one entry here.
pub static FRONT_DOORS: &[FrontDoor] = &[
    FrontDoor {
        prefix: "/api/v4",
        profile_parameter: true,
        service: |state, prefix| v4::V4::new(state).service(prefix),
        endpoints: |settings, prefix| v4::routes::available_endpoints(prefix, settings.posting),
        openapi: Some(|settings, prefix| openapi::Spec::v4(prefix, settings.posting)),
    },
    FrontDoor {
        prefix: "/api/v2",
        profile_parameter: false,
        service: |state, prefix| v2::V2::new(state).service(prefix),
        endpoints: |_, prefix| v2::routes::available_endpoints(prefix),
        openapi: Some(|_, prefix| openapi::Spec::v2(prefix)),
    },
    FrontDoor {
        prefix: "/optimade",
        profile_parameter: false,
        service: |state, prefix| optimade::Optimade::new(state).service(prefix),
        endpoints: |_, prefix| optimade::endpoints(prefix),
        // OPTIMADE publishes its own description (`/info`, `/info/structures`).
        openapi: None,
    },
];

/// A front door over one open database, as an [`Api`] to mount.
struct Door {
    door: &'static FrontDoor,
    state: AppState,
}

impl Api for Door {
    fn service(self, prefix: &str) -> Responder {
        (self.door.service)(self.state, prefix)
    }

    fn endpoints(&self, prefix: &str) -> Vec<String> {
        (self.door.endpoints)(&self.state.settings, prefix)
    }

    fn storage(&self) -> Option<Arc<Storage>> {
        Some(self.state.storage.clone())
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
    observer: Option<observe::Observer>,
    request_timeout: Option<std::time::Duration>,
    base: Option<String>,
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
        self.routes = self.routes.nest_service(prefix, api.service(prefix));
        self
    }

    /// Mounts every front door ([`FRONT_DOORS`]) over the database of `state`, each at its
    /// own prefix, with its OpenAPI document.
    pub fn front_doors(self, state: &AppState) -> Self {
        let app = FRONT_DOORS.iter().fold(self, |app, door| app.nest(door.prefix, Door { door, state: state.clone() }));
        let specs = FRONT_DOORS.iter().filter_map(|door| Some(door.openapi?(&state.settings, door.prefix)));
        openapi::mount(app, specs.collect::<Vec<_>>())
    }

    /// Counts the requests and logs them as `observer` says ([`observe`]), and serves
    /// `/metrics` if it keeps metrics.
    pub fn observe(mut self, observer: &observe::Observer) -> Self {
        if observer.metrics() {
            self = self.nest("/metrics", observer.endpoint());
        }
        self.observer = Some(observer.clone());
        self
    }

    /// Answers a request not answered within `limit` with a 503, dropping its work
    /// ([`deadline`]); `None`: no limit.
    pub fn request_timeout(mut self, limit: Option<std::time::Duration>) -> Self {
        self.request_timeout = limit;
        self
    }

    /// Serves the whole application below `base` (`/aiida`, see [`base`]); `None`: at `/`.
    pub fn base_path(mut self, base: Option<String>) -> Self {
        self.base = base;
        self
    }

    /// Serves `page` at `/` itself (the landing page); the paths below keep their answers.
    pub fn root(mut self, page: axum::routing::MethodRouter) -> Self {
        self.routes = self.routes.route("/", page);
        self
    }

    /// The origins CORS lets read the APIs (any by default).
    pub fn cors_origins(mut self, origins: cors::Origins) -> Self {
        self.cors = origins;
        self
    }

    /// The application, ready for [`serve`] (or `oneshot` in tests).
    pub fn into_responder(self) -> Responder {
        let endpoints: Arc<[String]> = self.endpoints.into();
        let base = self.base.map(|base| base::Base { base: base.into(), endpoints: endpoints.clone() });
        let routes = self.routes.fallback(move || unknown_route(endpoints.clone()));
        let observe = self.observer.filter(|o| o.is_on()).map(|o| {
            let base = base.as_ref().map_or("", |b| &*b.base);
            o.layer(base, &self.prefixes.iter().map(|p| format!("{base}{p}")).collect::<Vec<_>>())
        });
        let config = edge::Config {
            prefixes: path::Prefixes(self.prefixes.into()),
            cors: self.cors,
            policy: etag::Policy::new(self.storages),
        };
        // The middleware runs before routing (path decoding must); the options' layers run
        // first, outermost `observe`.
        let layered = tower::ServiceBuilder::new()
            .option_layer(observe)
            .option_layer(base)
            .option_layer(self.request_timeout.map(|limit| deadline::Deadline { limit }))
            .service(edge::wrap(routes, config));
        Responder::from_service(layered)
    }
}

/// The application for one database: its front doors ([`FRONT_DOORS`]) and the landing page.
pub fn router(state: AppState) -> Responder {
    App::new()
        .front_doors(&state)
        .root(landing::page(vec![landing::Listed::single(state.storage, "/api/v4", "/api/v2")]))
        .into_responder()
}

async fn unknown_route(endpoints: Arc<[String]>) -> Response {
    ApiError::UnknownRoute(endpoints.to_vec()).into_response()
}

/// For the front doors' tests: the future of `handler` (a request handler of three arguments)
/// stays under 1 KiB. Every request's future is moved through the router's layers, so one as
/// large as the largest endpoint's would cost every request the copies (see `v4::call`).
#[cfg(test)]
pub(crate) fn assert_small_future<A, B, C, R>(_handler: impl Fn(A, B, C) -> R) {
    let size = std::mem::size_of::<R>();
    assert!(size <= 1024, "the future of a request is {size} bytes");
}

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
        fn service(self, _prefix: &str) -> Responder {
            let hello = async |State(state): State<AppState>, ctx: Ctx| {
                let data = json!({ "serving": state.storage.description });
                json_response(StatusCode::OK, &ctx.envelope("hello", None, data), Some(1), None)
            };
            Responder::from_service(Router::new().route("/hello", get(hello)).with_state(self.0))
        }

        fn endpoints(&self, prefix: &str) -> Vec<String> {
            vec![format!("{:<15} {:<20} {prefix}/hello/", "hello", "GET,HEAD,OPTIONS")]
        }
    }

    async fn send(app: &Responder, method: &str, uri: &str, body: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let request = Request::builder().method(method).uri(uri).body(Body::from(body.to_string())).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A database cannot be named like the first segment of a front door: `/<name>/...` and
    /// the default database's doors would overlap.
    #[test]
    fn front_door_segments_are_reserved_names() {
        for door in FRONT_DOORS {
            let first = door.prefix.trim_start_matches('/').split('/').next().unwrap();
            assert!(crate::storage::catalog::RESERVED_NAMES.contains(&first), "{}", door.prefix);
            assert!(!door.prefix.ends_with('/'), "{}", door.prefix);
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_api_beside_v4() {
        let storage = crate::storage::open(&crate::storage::Source::Demo, DbLimits::default()).await.unwrap();
        let state = AppState { storage: Arc::new(storage), settings: Arc::new(Settings::default()) };
        let app = App::new().nest("/api/v4", v4::V4::new(state.clone())).nest("/api/v2", Hello(state)).into_responder();

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
