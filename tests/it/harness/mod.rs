//! The harness of every integration test: the application over a storage, driven in-process.
//!
//! [`open`] is the one place that opens a storage and [`build`] the one place that builds the
//! router over it; every test gets its application from them (directly, or through [`app`] and
//! [`app_with`] for the fixture storages), so a change of the app-building API is fixed here.

pub mod pg;

// The knobs of an application, named here so that tests do not depend on where they live.
pub use aiida_rest::http::Settings;
pub use aiida_rest::storage::db::DbLimits;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aiida_rest::http::Responder;
use aiida_rest::http::{self, AppState};
use aiida_rest::storage::{self, Storage, StorageError};
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

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the fixture profile folder in `dir`, for tests that change or damage it.
pub fn profile_copy(dir: &Path) -> PathBuf {
    let root = dir.join("profile");
    copy_tree(&profile_path(), &root);
    // Side files of an earlier writer are not part of the fixture.
    for side in ["database.sqlite-wal", "database.sqlite-shm", "container/packs.idx-wal", "container/packs.idx-shm"] {
        let _ = std::fs::remove_file(root.join(side));
    }
    root
}

pub fn profile_path() -> PathBuf {
    fixtures().join("ref-profile")
}

/// `tests/fixtures/fixture2.aiida`, the second fixture (every Data class; made by
/// `tests/fixtures/make_fixture2.py`).
pub fn fixture2_archive_path() -> PathBuf {
    fixtures().join("fixture2.aiida")
}

/// `tests/fixtures/fixture2-profile`, the second fixture's archive imported into a profile folder.
pub fn fixture2_profile_path() -> PathBuf {
    fixtures().join("fixture2-profile")
}

/// Which fixture: the first (`examples/demo.aiida`, `tests/fixtures/ref-profile`) or the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fixture {
    First,
    Second,
}

/// Which fixture storage a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Backend {
    /// `examples/demo.aiida`.
    Archive,
    /// `tests/fixtures/ref-profile`, a `core.sqlite_dos` profile folder.
    Profile,
    /// The fixture loaded into PostgreSQL ([`pg::shared`]; check it is there first), with the
    /// profile folder's file repository.
    Postgres,
}

/// Where the storage of an application comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// One of the fixture storages.
    Fixture(Backend),
    /// One of the second fixture's storages.
    Fixture2(Backend),
    /// An archive file or a profile folder of the test's own (a modified copy of a fixture).
    Path(PathBuf),
    /// A PostgreSQL database by URL, with the folder of its file repository.
    Postgres { url: String, repository: PathBuf },
}

impl Source {
    /// A PostgreSQL database holding the fixture rows, with the fixture's file repository.
    pub fn postgres(url: &str) -> Source {
        Source::Postgres { url: url.to_string(), repository: profile_path().join("container") }
    }
}

impl From<Backend> for Source {
    fn from(backend: Backend) -> Source {
        Source::Fixture(backend)
    }
}

impl From<&Path> for Source {
    fn from(path: &Path) -> Source {
        Source::Path(path.to_path_buf())
    }
}

/// Opens the storage of `source` (read-only, as the server does).
pub async fn open(source: impl Into<Source>, limits: DbLimits) -> Result<Storage, StorageError> {
    match source.into() {
        Source::Fixture(Backend::Archive) => storage::open_path(&archive_path(), limits).await,
        Source::Fixture(Backend::Profile) => storage::open_path(&profile_path(), limits).await,
        Source::Fixture(Backend::Postgres) => {
            let url = pg::shared().expect("PostgreSQL is available");
            storage::open_postgres(url, &profile_path().join("container"), limits).await
        }
        Source::Fixture2(Backend::Archive) => storage::open_path(&fixture2_archive_path(), limits).await,
        Source::Fixture2(Backend::Profile) => storage::open_path(&fixture2_profile_path(), limits).await,
        Source::Fixture2(Backend::Postgres) => {
            let url = pg::shared2().expect("PostgreSQL is available");
            storage::open_postgres(url, &fixture2_profile_path().join("container"), limits).await
        }
        Source::Path(path) => storage::open_path(&path, limits).await,
        Source::Postgres { url, repository } => storage::open_postgres(&url, &repository, limits).await,
    }
}

/// The application over `source`, with `settings` and the database `limits`.
pub async fn build(source: impl Into<Source>, settings: Settings, limits: DbLimits) -> Responder {
    let source = source.into();
    let storage = open(source.clone(), limits).await.unwrap_or_else(|e| panic!("{source:?} opens: {e}"));
    http::router(AppState { storage: Arc::new(storage), settings: Arc::new(settings) })
}

/// The application over a fixture storage with the default settings.
pub async fn app(backend: Backend) -> Responder {
    build(backend, Settings::default(), DbLimits::default()).await
}

/// The application over a storage of `fixture` with the default settings.
pub async fn app_of(fixture: Fixture, backend: Backend) -> Responder {
    let source = match fixture {
        Fixture::First => Source::Fixture(backend),
        Fixture::Second => Source::Fixture2(backend),
    };
    build(source, Settings::default(), DbLimits::default()).await
}

/// Whether the PostgreSQL storage of `fixture` is there (after a notice when not; a failure in
/// CI).
pub fn postgres_available(fixture: Fixture) -> bool {
    match fixture {
        Fixture::First => pg::shared().is_some(),
        Fixture::Second => pg::shared2().is_some(),
    }
}

/// The application over a fixture storage with `settings`.
pub async fn app_with(backend: Backend, settings: Settings) -> Responder {
    build(backend, settings, DbLimits::default()).await
}

/// For a test that measures the whole process (such as its peak memory): runs the test named
/// `name` (its path in this binary, as `cargo test` lists it) alone in a child process of this
/// test binary and waits for it. Returns `true` in the child, where the test does its work, and
/// `false` in the parent, which has then checked that the child passed.
pub fn alone(name: &str) -> bool {
    const VAR: &str = "AIIDA_REST_TEST_ALONE";
    if std::env::var(VAR).is_ok_and(|v| v == name) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, name)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    assert!(out.status.success() && stdout.contains("1 passed"), "{name} alone: {}\n{stdout}", out.status);
    false
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

pub async fn request(app: &Responder, method: &str, uri: &str, body: Option<&str>) -> Answer {
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

pub async fn get(app: &Responder, uri: &str) -> Answer {
    request(app, "GET", uri, None).await
}

/// Waits up to `within` for `done`, asking every 50 ms.
pub async fn eventually(within: std::time::Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if done().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    done().await
}

/// The server binary as a command, with its statistics cache turned off: `--cache-dir`
/// defaults to a folder in the user's home, where tests must not write.
pub fn server_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_aiida-rest"));
    command.env("AIIDA_REST_NO_CACHE_DIR", "1");
    command
}
