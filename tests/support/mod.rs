//! Shared test harness: the application over the fixture storages, driven in-process.

#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aiida_rest::http::{self, AppState, Settings};
use aiida_rest::storage;
use aiida_rest::storage::db::DbLimits;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn archive_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.aiida")
}

pub fn profile_path() -> PathBuf {
    fixtures().join("ref-profile")
}

/// Which storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Archive,
    Profile,
    /// The fixture loaded into PostgreSQL ([`pg::shared`]; check it is there first).
    Postgres,
}

pub async fn app(backend: Backend) -> Router {
    app_with(backend, Settings::default()).await
}

pub async fn app_with(backend: Backend, settings: Settings) -> Router {
    let storage = match backend {
        Backend::Archive => storage::open_path(&archive_path(), DbLimits::default()).await,
        Backend::Profile => storage::open_path(&profile_path(), DbLimits::default()).await,
        Backend::Postgres => {
            let url = pg::shared().expect("PostgreSQL is available");
            storage::open_postgres(url, &profile_path().join("container"), DbLimits::default()).await
        }
    }
    .expect("fixture opens");
    http::router(AppState { storage: Arc::new(storage), settings: Arc::new(settings) })
}

pub struct Answer {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or_default().to_string())
    }
}

pub async fn request(app: &Router, method: &str, uri: &str, body: Option<&str>) -> Answer {
    let uri = aiida_rest::http::listener::encode_request_target(uri);
    let mut builder = Request::builder().method(method).uri(uri).header("host", "127.0.0.1:5000");
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let req = builder.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
    let response: Response<Body> = app.clone().oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

pub async fn get(app: &Router, uri: &str) -> Answer {
    request(app, "GET", uri, None).await
}
