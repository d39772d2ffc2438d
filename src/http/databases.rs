//! Several databases in one process, opened when first asked for.
//!
//! [`Databases`] holds one slot per configured database. A slot opens its storage on the first
//! request (concurrent first requests wait for the same opening), keeps it while it is used,
//! and closes it after [`Options::idle_timeout`] without a request ([`Databases::close_idle`]);
//! the next request opens it again. A database that cannot open answers 503 with a JSON
//! message naming it (and is tried again after [`Options::retry_after`]); the others are not
//! affected. The PostgreSQL sessions of all open databases together stay under
//! [`Options::pg_sessions`]: a PostgreSQL database reserves its pool size from that budget
//! while it is open.
//!
//! [`Databases::router`] mounts each database's front doors ([`FRONT_DOORS`]: REST API v4
//! and v2) under `/<name>` (`/<name>/api/v4`, `/<name>/api/v2`), the default database's also
//! at their own prefixes (`/api/v4`, `/api/v2`), and `/health` and `/ready`. [`Switch`] serves the latest router: a reload ([`Databases::configure`] then a
//! new router) keeps the open storages of unchanged entries, and requests under way finish on
//! the router and storage they started with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::http::error::ApiError;
use crate::http::params::PROFILE_SWITCHING;
use crate::http::querystring;
use crate::http::{Api, App, AppState, FRONT_DOORS, FrontDoor, Responder, Settings, json_response, landing, openapi};
use crate::storage::aiida_config::{self, ProfileStorage};
use crate::storage::db::DbLimits;
use crate::storage::{self, Source};

/// How databases are opened and closed.
#[derive(Debug, Clone)]
pub struct Options {
    /// Close a database after this long without a request (`None`: keep it open).
    pub idle_timeout: Option<Duration>,
    /// Most PostgreSQL sessions of all databases together.
    pub pg_sessions: usize,
    /// After a failed opening, answer 503 at once for this long before trying again.
    pub retry_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { idle_timeout: Some(Duration::from_secs(600)), pg_sessions: 64, retry_after: Duration::from_secs(5) }
    }
}

/// One configured database.
#[derive(Debug, Clone)]
pub struct Database {
    /// Its URLs start with `/<name>`.
    pub name: String,
    pub source: Source,
    /// Also served under `/api/v4` and `/api/v2`.
    pub default: bool,
    pub settings: Settings,
    pub limits: DbLimits,
}

impl Database {
    /// What makes two configurations of a database the same (a reload keeps it open).
    fn key(&self) -> String {
        format!("{:?}|{:?}|{}|{}", self.source, self.limits, self.settings.posting, self.settings.max_rows)
    }
}

struct Opened {
    state: AppState,
    /// The services of the front doors over this storage (by index in [`FRONT_DOORS`]), built
    /// on first use.
    services: Vec<OnceLock<Responder>>,
    /// The PostgreSQL sessions reserved from the budget, given back when the last request
    /// using this storage is done.
    _sessions: Option<OwnedSemaphorePermit>,
}

impl Opened {
    /// The service of front door `index`: the API names its own prefix wherever it is mounted
    /// (see [`FrontDoor::prefix`]).
    fn service(&self, index: usize) -> Responder {
        let door = &FRONT_DOORS[index];
        self.services[index].get_or_init(|| (door.service)(self.state.clone(), door.prefix)).clone()
    }
}

struct Slot {
    database: Database,
    key: String,
    open: Mutex<Option<Arc<Opened>>>,
    /// Held while opening (later requests wait for it); the last failure and when it was.
    opening: tokio::sync::Mutex<Option<(Instant, String)>>,
    last_used: Mutex<Instant>,
    budget: Arc<Semaphore>,
    pg_sessions: usize,
    retry_after: Duration,
}

impl Slot {
    fn new(database: Database, budget: Arc<Semaphore>, options: &Options) -> Self {
        Slot {
            key: database.key(),
            database,
            open: Mutex::new(None),
            opening: tokio::sync::Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            budget,
            pg_sessions: options.pg_sessions,
            retry_after: options.retry_after,
        }
    }

    fn current(&self) -> Option<Arc<Opened>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn is_open(&self) -> bool {
        self.current().is_some()
    }

    /// The open storage, opening it if needed.
    async fn get(&self) -> Result<Arc<Opened>, String> {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        if let Some(opened) = self.current() {
            return Ok(opened);
        }
        let mut failure = self.opening.lock().await;
        if let Some(opened) = self.current() {
            return Ok(opened);
        }
        if let Some((at, message)) = failure.as_ref()
            && at.elapsed() < self.retry_after
        {
            return Err(message.clone());
        }
        match self.open_storage().await {
            Ok(opened) => {
                let opened = Arc::new(opened);
                *self.open.lock().unwrap_or_else(|e| e.into_inner()) = Some(opened.clone());
                *failure = None;
                tracing::info!("database '{}': opened {}", self.database.name, opened.state.storage.description);
                Ok(opened)
            }
            Err(message) => {
                tracing::warn!("database '{}' cannot be opened: {message}", self.database.name);
                *failure = Some((Instant::now(), message.clone()));
                Err(message)
            }
        }
    }

    async fn open_storage(&self) -> Result<Opened, String> {
        let database = &self.database;
        let mut limits = database.limits;
        let postgres = match &database.source {
            Source::Postgres { .. } => true,
            Source::Profile(name) => matches!(aiida_config::find_profile(name), Ok(ProfileStorage::PsqlDos(_))),
            _ => false,
        };
        let sessions = if postgres {
            let wanted = limits.max_connections.clamp(1, self.budget_size()) as u32;
            let permit = self.budget.clone().try_acquire_many_owned(wanted).map_err(|_| {
                format!(
                    "the PostgreSQL sessions of this server ({} in all) are taken by the other open databases",
                    self.budget_size()
                )
            })?;
            limits.max_connections = wanted as usize;
            Some(permit)
        } else {
            None
        };
        let storage = storage::open(&database.source, limits).await.map_err(|e| e.to_string())?;
        Ok(Opened {
            state: AppState { storage: Arc::new(storage), settings: Arc::new(database.settings.clone()) },
            services: FRONT_DOORS.iter().map(|_| OnceLock::new()).collect(),
            _sessions: sessions,
        })
    }

    fn budget_size(&self) -> usize {
        self.pg_sessions.max(1)
    }
}

/// The configured databases and their open storages.
pub struct Databases {
    options: Options,
    budget: Arc<Semaphore>,
    slots: RwLock<Vec<Arc<Slot>>>,
}

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Databases {
    pub fn new(options: Options) -> Arc<Self> {
        let budget = Arc::new(Semaphore::new(options.pg_sessions.max(1)));
        Arc::new(Databases { options, budget, slots: RwLock::new(Vec::new()) })
    }

    /// Sets the databases: an entry whose configuration did not change keeps its slot (and its
    /// open storage); the others are new. Storages of removed or changed entries close when the
    /// requests using them are done.
    pub fn configure(&self, databases: Vec<Database>) -> Changes {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let mut changes = Changes::default();
        let mut old: HashMap<String, Arc<Slot>> = slots.drain(..).map(|s| (s.database.name.clone(), s)).collect();
        for database in databases {
            let name = database.name.clone();
            let slot = match old.remove(&name) {
                Some(slot) if slot.key == database.key() && slot.database.default == database.default => slot,
                Some(_) => {
                    changes.changed.push(name);
                    Arc::new(Slot::new(database, self.budget.clone(), &self.options))
                }
                None => {
                    changes.added.push(name);
                    Arc::new(Slot::new(database, self.budget.clone(), &self.options))
                }
            };
            slots.push(slot);
        }
        changes.removed = old.into_keys().collect();
        changes.removed.sort();
        changes
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The names of the configured databases, and whether each is open now.
    pub fn status(&self) -> Vec<(String, bool)> {
        self.slots().iter().map(|s| (s.database.name.clone(), s.is_open())).collect()
    }

    /// Closes the databases idle for longer than the idle timeout; returns how many.
    pub fn close_idle(&self) -> usize {
        let Some(idle) = self.options.idle_timeout else { return 0 };
        let mut closed = 0;
        for slot in self.slots() {
            let last = *slot.last_used.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= idle && slot.open.lock().unwrap_or_else(|e| e.into_inner()).take().is_some() {
                tracing::info!("database '{}': closed after {}s without a request", slot.database.name, idle.as_secs());
                closed += 1;
            }
        }
        closed
    }

    /// Runs [`Self::close_idle`] in the background, as often as the idle timeout needs.
    pub fn spawn_closer(self: &Arc<Self>) {
        let Some(idle) = self.options.idle_timeout else { return };
        let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(databases) = weak.upgrade() else { return };
                databases.close_idle();
            }
        });
    }

    /// The application over the databases configured now: the front doors of each under
    /// `/<name>` (`/<name>/api/v4`), the default one's also at their own prefixes (`/api/v4`),
    /// `/health` and `/ready`. `app` is the application builder to mount them on (with its CORS setting).
    pub fn router(&self, mut app: App) -> Responder {
        let slots = self.slots();
        let all: Arc<HashMap<String, Arc<Slot>>> =
            Arc::new(slots.iter().map(|s| (s.database.name.clone(), s.clone())).collect());
        let lazy =
            |slot: &Arc<Slot>, door: usize, listed: bool| Lazy { slot: slot.clone(), all: all.clone(), door, listed };
        if let Some(default) = slots.iter().find(|s| s.database.default) {
            for (index, door) in FRONT_DOORS.iter().enumerate() {
                app = app.nest(door.prefix, lazy(default, index, true));
            }
            app = openapi_of(app, default, "");
        }
        for slot in &slots {
            let name = &slot.database.name;
            for (index, door) in FRONT_DOORS.iter().enumerate() {
                app = app.nest(&format!("/{name}{}", door.prefix), lazy(slot, index, false));
            }
            app = openapi_of(app, slot, &format!("/{name}"));
        }
        let listed = slots.iter().map(landing_entry).collect();
        app.nest("/health", Health).nest("/ready", Ready(slots)).root(landing::page(listed)).into_responder()
    }
}

impl crate::http::observe::DatabaseStats for Databases {
    fn database_stats(&self) -> Vec<crate::http::observe::DatabaseStat> {
        self.slots()
            .iter()
            .map(|slot| crate::http::observe::DatabaseStat {
                name: slot.database.name.clone(),
                usage: slot.current().map(|opened| opened.state.storage.db.usage()),
            })
            .collect()
    }
}

/// The OpenAPI documents and documentation pages of a database's APIs under `mount`.
fn openapi_of(app: App, slot: &Slot, mount: &str) -> App {
    let settings = &slot.database.settings;
    let specs = FRONT_DOORS
        .iter()
        .filter_map(|door| Some(door.openapi?(settings, &format!("{mount}{}", door.prefix)).among_several()));
    openapi::mount(app, specs.collect::<Vec<_>>())
}

/// A database on the landing page: opened (if it is not open) when the page is viewed.
fn landing_entry(slot: &Arc<Slot>) -> landing::Listed {
    let (name, default) = (slot.database.name.clone(), slot.database.default);
    let slot = slot.clone();
    let open: landing::Opener = Arc::new(move || {
        let slot = slot.clone();
        Box::pin(async move { slot.get().await.map(|opened| opened.state.storage.clone()) })
    });
    landing::Listed { v4: format!("/{name}/api/v4"), v2: format!("/{name}/api/v2"), name: Some(name), default, open }
}

/// One API of one database, opened on the first request.
struct Lazy {
    slot: Arc<Slot>,
    /// Every database by name, for v4's `?profile=NAME`.
    all: Arc<HashMap<String, Arc<Slot>>>,
    /// Which front door (its index in [`FRONT_DOORS`]).
    door: usize,
    /// Whether the 404 of an unknown URL lists its endpoints (the default database's do).
    listed: bool,
}

impl Api for Lazy {
    fn service(self, _mounted_at: &str) -> Responder {
        let (slot, all, index) = (self.slot, self.all, self.door);
        let door: &FrontDoor = &FRONT_DOORS[index];
        Responder::from_fn(move |request: Request| {
            let (mut slot, all) = (slot.clone(), all.clone());
            async move {
                // `?profile=NAME` (v4): the request runs on that database, as aiida-core loads
                // the profile the parameter names; the URL it echoes stays as received.
                let chosen = if door.profile_parameter { profile_parameter(&request) } else { None };
                if let Some(name) = &chosen {
                    match all.get(name) {
                        Some(other) => slot = other.clone(),
                        None => {
                            let mut names: Vec<&str> = all.keys().map(String::as_str).collect();
                            names.sort();
                            let served = names.join(", ");
                            return ApiError::not_found(format!(
                                "The profile '{name}' is not served here (served: {served})."
                            ))
                            .into_response();
                        }
                    }
                }
                match slot.get().await {
                    Ok(opened) => {
                        let service = opened.service(index);
                        let response = PROFILE_SWITCHING
                            .scope(chosen.is_some(), service.oneshot(request))
                            .await
                            .unwrap_or_else(|e| match e {});
                        drop(opened);
                        response
                    }
                    Err(message) => unavailable(&slot.database.name, &message),
                }
            }
        })
    }

    fn endpoints(&self, prefix: &str) -> Vec<String> {
        if self.listed { (FRONT_DOORS[self.door].endpoints)(&self.slot.database.settings, prefix) } else { Vec::new() }
    }
}

/// The value of a `profile=NAME` field of the query, when there is exactly one (other
/// spellings are left for v4 to reject).
fn profile_parameter(request: &Request) -> Option<String> {
    let query = super::request::unquote(request.uri().query()?);
    if !query.contains("profile") {
        return None;
    }
    let fields = querystring::parse(&query).ok()?;
    let mut found = fields.iter().filter(|f| f.key == "profile");
    let field = found.next()?;
    if found.next().is_some() || field.op != querystring::Op::Eq {
        return None;
    }
    match &field.value {
        querystring::Value::Str(name) => Some(name.clone()),
        querystring::Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn unavailable(name: &str, message: &str) -> Response {
    ApiError::Unavailable(format!("The database '{name}' is not available: {message}")).into_response()
}

/// `/health`: the process is alive.
pub struct Health;

impl Api for Health {
    fn service(self, _prefix: &str) -> Responder {
        Responder::from_fn(|request: Request| async move {
            match ApiError::unless_get(request.method()) {
                Some(refused) => refused.into_response(),
                None => json_response(StatusCode::OK, &json!({"status": "ok"}), None, None),
            }
        })
    }

    fn endpoints(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }
}

/// `/ready`: every configured database opens and answers a query (200), or which do not (503).
struct Ready(Vec<Arc<Slot>>);

impl Api for Ready {
    fn service(self, _prefix: &str) -> Responder {
        let slots = Arc::new(self.0);
        Responder::from_fn(move |request: Request| {
            let slots = slots.clone();
            async move {
                if let Some(refused) = ApiError::unless_get(request.method()) {
                    return refused.into_response();
                }
                let check = async |slot: &Arc<Slot>| match slot.get().await {
                    Ok(opened) => opened.state.storage.ping().await,
                    Err(message) => Err(message),
                };
                let results = futures_util::future::join_all(slots.iter().map(check)).await;
                let mut databases = Map::new();
                let mut ready = true;
                for (slot, result) in slots.iter().zip(results) {
                    let value = match result {
                        Ok(_) => json!({"ready": true}),
                        Err(message) => {
                            ready = false;
                            json!({"ready": false, "message": message})
                        }
                    };
                    databases.insert(slot.database.name.clone(), value);
                }
                let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                let body = json!({"status": if ready { "ready" } else { "unavailable" }, "databases": Value::Object(databases)});
                json_response(status, &body, None, None)
            }
        })
    }

    fn endpoints(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }
}

/// `/ready` of a server of one storage: its database answers a query (200), or not (503).
pub struct ReadyOne(pub Arc<crate::storage::Storage>);

impl Api for ReadyOne {
    fn service(self, _prefix: &str) -> Responder {
        let storage = self.0;
        Responder::from_fn(move |request: Request| {
            let storage = storage.clone();
            async move {
                if let Some(refused) = ApiError::unless_get(request.method()) {
                    return refused.into_response();
                }
                let (status, body) = match storage.ping().await {
                    Ok(()) => (StatusCode::OK, json!({"status": "ready"})),
                    Err(e) => (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "unavailable", "message": e})),
                };
                json_response(status, &body, None, None)
            }
        })
    }

    fn endpoints(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }
}

/// The application that a reload replaces: requests go to the router current when they
/// arrive, and finish on it.
#[derive(Clone)]
pub struct Switch(Arc<RwLock<Responder>>);

impl Switch {
    pub fn new(router: Responder) -> Self {
        Switch(Arc::new(RwLock::new(router)))
    }

    pub fn set(&self, router: Responder) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = router;
    }

    /// The router to serve: it hands each request to the current application.
    pub fn router(&self) -> Responder {
        let switch = self.clone();
        Responder::from_fn(move |request: Request| {
            let current = switch.0.read().unwrap_or_else(|e| e.into_inner()).clone();
            async move { current.oneshot(request).await.unwrap_or_else(|e| match e {}) }
        })
    }
}
