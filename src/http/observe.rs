//! Watching the server work: Prometheus metrics (`/metrics`) and access logs, in one tower
//! layer ([`Observe`]) around the whole application.
//!
//! Per request the layer costs two clock readings, a few relaxed atomic additions, and (with
//! the access log on) one line written to standard output. Nothing is locked and nothing is
//! allocated for the metrics: a request is counted in the series of its *route template*
//! (`/api/v4/nodes/<id>/links/incoming/`, from the front door's `available_endpoints`) and its
//! database (`/<name>`, or `default` for the doors at their own prefix), never of its raw
//! path, so the number of series is bounded by the templates and the configured databases;
//! every path under no mount shares the one `<unknown>` series. Each series is looked up once
//! per built application and kept in a slot ([`OnceLock`]) of its mount.
//!
//! What `/metrics` shows ([`Observer::render`], the OpenMetrics text of `prometheus-client`):
//! `aiida_rest_http_requests_total{route,database,status}` (status classes `2xx`...),
//! `aiida_rest_http_request_duration_seconds{route,database}` (a histogram of the time to the
//! answer's head), and, read when scraped, the databases (`aiida_rest_databases_configured`,
//! `aiida_rest_databases_open`, `aiida_rest_database_open{database}`) and for each open one its
//! pool (`aiida_rest_pool_connections_in_use`, `aiida_rest_pool_connections_max`), its result
//! cache (`aiida_rest_cache_hits_total`, `aiida_rest_cache_misses_total`) and its cancelled
//! queries (`aiida_rest_cancelled_queries_total`).
//!
//! The access log ([`LogFormat`]) is one line per answered request on standard output, text or
//! JSON, with the request id: the client's `X-Request-Id` when it sent a sensible one, else one
//! made here; the answer carries it back in `X-Request-Id`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tower::{Layer, Service};

use crate::http::{Api, FRONT_DOORS, Responder, Settings};
use crate::storage::db::DbUsage;

/// The request id header, echoed or made.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The label of the database served at the doors' own prefixes (`/api/v4`).
pub const DEFAULT_DATABASE: &str = "default";

/// Upper bounds of the latency histogram's buckets, in microseconds (then `+Inf`).
const BUCKETS_MICROS: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// How access-log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-12-06T16:40:01.123Z 3f2a9c41-1 "GET /api/v4/nodes?limit=3" 200 1187 0.412ms`
    Text,
    /// One JSON object per line: `time`, `request_id`, `method`, `path`, `status`, `bytes`,
    /// `duration_ms`, `route`, `database`.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("'{other}': expected text or json")),
        }
    }
}

/// The counts of one route template of one database.
struct Series {
    route: Box<str>,
    database: Box<str>,
    /// Answers by status class (1xx to 5xx).
    classes: [AtomicU64; 5],
    /// Answers by latency bucket ([`BUCKETS_MICROS`], then `+Inf`), not cumulated.
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Series {
    fn new(route: &str, database: &str) -> Self {
        Series {
            route: route.into(),
            database: database.into(),
            classes: Default::default(),
            buckets: Default::default(),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn record(&self, status: StatusCode, micros: u64) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.classes[class].fetch_add(1, Relaxed);
        let bucket = BUCKETS_MICROS.iter().position(|&bound| micros <= bound).unwrap_or(BUCKETS_MICROS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }
}

/// One database as `/metrics` shows it.
#[derive(Debug, Clone)]
pub struct DatabaseStat {
    pub name: String,
    /// Its use, when it is open.
    pub usage: Option<DbUsage>,
}

/// Where `/metrics` reads the databases from when scraped.
pub trait DatabaseStats: Send + Sync {
    fn database_stats(&self) -> Vec<DatabaseStat>;
}

impl DatabaseStats for crate::storage::Storage {
    fn database_stats(&self) -> Vec<DatabaseStat> {
        vec![DatabaseStat { name: DEFAULT_DATABASE.into(), usage: Some(self.db.usage()) }]
    }
}

/// A series' route and database.
type SeriesKey = (Box<str>, Box<str>);

struct Shared {
    metrics: bool,
    log: Option<LogFormat>,
    /// Every series made so far, by (route, database): reloads find theirs again.
    series: Mutex<HashMap<SeriesKey, Arc<Series>>>,
    unknown: Arc<Series>,
    databases: Mutex<Option<Arc<dyn DatabaseStats>>>,
    /// The start of the ids this process makes.
    id_base: u32,
    next_id: AtomicU64,
}

/// What the server observes: the metrics kept across reloads and the access-log setting.
/// [`crate::http::App::observe`] puts its layer around an application.
#[derive(Clone)]
pub struct Observer(Arc<Shared>);

impl Observer {
    /// `metrics`: count requests and serve `/metrics`; `log`: write access-log lines.
    pub fn new(metrics: bool, log: Option<LogFormat>) -> Self {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let id_base = (seed as u32) ^ std::process::id().rotate_left(16);
        Observer(Arc::new(Shared {
            metrics,
            log,
            series: Mutex::default(),
            unknown: Arc::new(Series::new("<unknown>", "")),
            databases: Mutex::new(None),
            id_base,
            next_id: AtomicU64::new(1),
        }))
    }

    /// Whether it does anything (else no layer is needed).
    pub fn is_on(&self) -> bool {
        self.0.metrics || self.0.log.is_some()
    }

    pub fn metrics(&self) -> bool {
        self.0.metrics
    }

    /// Where `/metrics` finds the databases and their use.
    pub fn set_databases(&self, source: Arc<dyn DatabaseStats>) {
        *self.0.databases.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// The layer over an application whose mounts are `prefixes` (under `base`, the
    /// `--base-url` path, `""` for none).
    pub fn layer(&self, base: &str, prefixes: &[String]) -> Observe {
        let mut mounts = Vec::new();
        let mut by_first: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        for prefix in prefixes {
            let Some(below_base) = strip_segments(prefix, base) else { continue };
            let door = FRONT_DOORS
                .iter()
                .position(|d| below_base.strip_suffix(d.prefix).is_some_and(|db| db.is_empty() || db.starts_with('/')));
            let (database, templates) = match door {
                Some(index) => {
                    let db = below_base[..below_base.len() - FRONT_DOORS[index].prefix.len()].trim_matches('/');
                    (if db.is_empty() { DEFAULT_DATABASE } else { db }, Some(templates(index)))
                }
                None => ("", None),
            };
            let slots = templates.map_or(1, |t| t.all.len() + 1);
            let first = below_base.trim_start_matches('/').split('/').next().unwrap_or("");
            by_first.entry(first.into()).or_default().push(mounts.len());
            mounts.push(Mount {
                prefix: prefix.as_str().into(),
                door: door.map(|index| (FRONT_DOORS[index].prefix, templates.expect("a door's templates"))),
                database: database.into(),
                slots: (0..slots).map(|_| OnceLock::new()).collect(),
            });
        }
        // The longest prefix first where two share their first segment.
        for list in by_first.values_mut() {
            list.sort_by_key(|&i| std::cmp::Reverse(mounts[i].prefix.len()));
        }
        Observe { table: Arc::new(Table { shared: self.0.clone(), base: base.into(), mounts, by_first }) }
    }

    fn series(&self, route: &str, database: &str) -> Arc<Series> {
        let mut all = self.0.series.lock().unwrap_or_else(|e| e.into_inner());
        all.entry((route.into(), database.into())).or_insert_with(|| Arc::new(Series::new(route, database))).clone()
    }

    /// The OpenMetrics text of `/metrics`.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("aiida_rest");
        registry.register_collector(Box::new(Snapshot(self.0.clone())));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("writing to a String");
        text
    }

    /// `/metrics`, as an API to mount.
    pub fn endpoint(&self) -> MetricsApi {
        MetricsApi(self.clone())
    }
}

/// `s` below the path `base` (segment-wise), `None` when it is not under it.
fn strip_segments<'a>(s: &'a str, base: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(base)?;
    (rest.is_empty() || rest.starts_with('/') || base.is_empty()).then_some(rest)
}

/// The route templates of front door `index` (the rules of its `available_endpoints`).
fn templates(index: usize) -> &'static Templates {
    static ALL: OnceLock<Vec<Templates>> = OnceLock::new();
    &ALL.get_or_init(|| {
        FRONT_DOORS
            .iter()
            .map(|door| {
                let settings = Settings { posting: true, ..Settings::default() };
                let mut rules: Vec<String> = (door.endpoints)(&settings, "")
                    .iter()
                    .filter_map(|line| line.split_whitespace().last().map(str::to_string))
                    .collect();
                rules.sort();
                rules.dedup();
                let all: Vec<Template> = rules
                    .into_iter()
                    .map(|rule| Template {
                        segments: rule.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                        label: format!("{}{rule}", door.prefix),
                    })
                    .collect();
                let mut by_length = vec![Vec::new(); MAX_SEGMENTS + 1];
                for (i, template) in all.iter().enumerate() {
                    by_length[template.segments.len()].push(i);
                }
                Templates { all, by_length }
            })
            .collect()
    })[index]
}

/// The route templates of one front door.
struct Templates {
    all: Vec<Template>,
    /// The indexes in `all` of the templates of each number of segments (0 to
    /// [`MAX_SEGMENTS`]).
    by_length: Vec<Vec<usize>>,
}

struct Template {
    /// `<...>` matches any one segment.
    segments: Vec<String>,
    /// `/api/v4/nodes/<id>/`
    label: String,
}

impl Template {
    /// How well a path of these `segments` (below the door's prefix) fits: `None` if not,
    /// else the number of literal segments (`/nodes/page` is `/nodes/page/`, not
    /// `/nodes/<id>/`).
    fn fit(&self, segments: &[&str]) -> Option<usize> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut literal = 0;
        for (segment, given) in self.segments.iter().zip(segments) {
            if segment.starts_with('<') {
                continue;
            }
            if given != segment {
                return None;
            }
            literal += 1;
        }
        Some(literal)
    }
}

/// The non-empty segments of `path`, read once per request without allocating; `None` when
/// there are more than any template has.
fn segments_of(path: &str) -> Option<([&str; MAX_SEGMENTS], usize)> {
    let mut out = [""; MAX_SEGMENTS];
    let mut n = 0;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        *out.get_mut(n)? = segment;
        n += 1;
    }
    Some((out, n))
}

/// More segments than the deepest route template (`/nodes/<id>/links/tree`...).
const MAX_SEGMENTS: usize = 8;

struct Mount {
    prefix: Box<str>,
    /// The door's prefix and templates, for a front door.
    door: Option<(&'static str, &'static Templates)>,
    database: Box<str>,
    /// The series of each template, then that of paths no template fits.
    slots: Box<[OnceLock<Arc<Series>>]>,
}

struct Table {
    shared: Arc<Shared>,
    base: Box<str>,
    mounts: Vec<Mount>,
    /// The mounts by their first segment below the base.
    by_first: HashMap<Box<str>, Vec<usize>>,
}

impl Table {
    /// The series of `path`, and its mount (`None`: under no mount).
    fn series(&self, path: &str) -> (&Arc<Series>, Option<&Mount>) {
        let Some(below_base) = strip_segments(path, &self.base) else { return (&self.shared.unknown, None) };
        let first = below_base.trim_start_matches('/').split('/').next().unwrap_or("");
        let Some(candidates) = self.by_first.get(first) else { return (&self.shared.unknown, None) };
        for &index in candidates {
            let mount = &self.mounts[index];
            let Some(below) = strip_segments(path, &mount.prefix) else { continue };
            let slot = match mount.door {
                None => 0,
                Some((_, templates)) => {
                    let mut best: Option<(usize, usize)> = None;
                    // A path deeper than every template fits none; only the templates of as
                    // many segments can fit (a few of the door's dozens: every request passes
                    // here).
                    if let Some((parts, n)) = segments_of(below) {
                        for &i in &templates.by_length[n] {
                            if let Some(fit) = templates.all[i].fit(&parts[..n])
                                && best.is_none_or(|(_, f)| fit > f)
                            {
                                best = Some((i, fit));
                            }
                        }
                    }
                    best.map_or(templates.all.len(), |(i, _)| i)
                }
            };
            let series = mount.slots[slot].get_or_init(|| {
                let observer = Observer(self.shared.clone());
                match mount.door {
                    Some((door, templates)) => match templates.all.get(slot) {
                        Some(template) => observer.series(&template.label, &mount.database),
                        None => observer.series(&format!("{door}/<unknown>"), &mount.database),
                    },
                    None => observer.series(&mount.prefix[self.base.len()..], &mount.database),
                }
            });
            return (series, Some(mount));
        }
        (&self.shared.unknown, None)
    }
}

/// The tower layer of [`Observer::layer`].
#[derive(Clone)]
pub struct Observe {
    table: Arc<Table>,
}

impl<S> Layer<S> for Observe {
    type Service = ObserveService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ObserveService { inner, table: self.table.clone() }
    }
}

#[derive(Clone)]
pub struct ObserveService<S> {
    inner: S,
    table: Arc<Table>,
}

/// What the access log needs of the request.
struct Seen {
    method: Method,
    uri: Uri,
}

impl<S> Service<Request> for ObserveService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let shared = &self.table.shared;
        let series = shared.metrics.then(|| self.table.series(request.uri().path()).0.clone());
        let given = request.headers().get(&X_REQUEST_ID).filter(|v| sensible_id(v.as_bytes())).cloned();
        let (id, seen) = match shared.log {
            None => (given, None),
            Some(_) => {
                let id = given.unwrap_or_else(|| make_id(shared));
                (Some(id), Some(Box::new(Seen { method: request.method().clone(), uri: request.uri().clone() })))
            }
        };
        ObserveFuture { inner: self.inner.call(request), started, series, id, seen, table: self.table.clone() }
    }
}

/// At most this long, visible ASCII: a client's id goes into logs and headers as it is.
fn sensible_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= 128 && id.iter().all(|b| b.is_ascii_graphic())
}

fn make_id(shared: &Shared) -> HeaderValue {
    let n = shared.next_id.fetch_add(1, Relaxed);
    let mut buf = [0u8; 8 + 1 + 16];
    let hex = |value: u64, digits: usize, out: &mut [u8]| {
        for (i, slot) in out[..digits].iter_mut().enumerate() {
            *slot = b"0123456789abcdef"[((value >> (4 * (digits - 1 - i))) & 0xf) as usize];
        }
    };
    hex(u64::from(shared.id_base), 8, &mut buf);
    buf[8] = b'-';
    let digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(1);
    hex(n, digits, &mut buf[9..]);
    let len = 9 + digits;
    HeaderValue::from_bytes(&buf[..len]).expect("hex digits")
}

pin_project_lite::pin_project! {
    /// The answer of the inner service, counted and logged when it is ready.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        series: Option<Arc<Series>>,
        id: Option<HeaderValue>,
        seen: Option<Box<Seen>>,
        table: Arc<Table>,
    }
}

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = std::task::ready!(this.inner.poll(cx));
        let micros = u64::try_from(this.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Some(series) = this.series.take() {
            series.record(response.status(), micros);
        }
        if let Some(id) = this.id.take() {
            if let (Some(seen), Some(format)) = (this.seen.take(), this.table.shared.log) {
                write_log(format, &seen, &id, &response, micros, this.table);
            }
            response.headers_mut().insert(X_REQUEST_ID.clone(), id);
        }
        Poll::Ready(Ok(response))
    }
}

fn write_log(format: LogFormat, seen: &Seen, id: &HeaderValue, response: &Response, micros: u64, table: &Table) {
    thread_local! {
        static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let id = std::str::from_utf8(id.as_bytes()).unwrap_or("-");
    let target = seen.uri.path_and_query().map_or("/", |p| p.as_str());
    let bytes = response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    let status = response.status().as_u16();
    let ms = micros as f64 / 1000.0;
    LINE.with_borrow_mut(|line| {
        line.clear();
        match format {
            LogFormat::Text => {
                let _ = writeln!(
                    line,
                    "{time} {id} \"{} {}\" {status} {} {ms:.3}ms",
                    seen.method,
                    target.escape_debug(),
                    bytes.unwrap_or("-")
                );
            }
            LogFormat::Json => {
                let (series, _) = table.series(seen.uri.path());
                let text = |s: &str| serde_json::Value::from(s).to_string();
                let _ = writeln!(
                    line,
                    "{{\"time\":\"{time}\",\"request_id\":{},\"method\":{},\"path\":{},\"status\":{status},\"bytes\":{},\"duration_ms\":{ms:.3},\"route\":{},\"database\":{}}}",
                    text(id),
                    text(seen.method.as_str()),
                    text(target),
                    bytes.unwrap_or("null"),
                    text(&series.route),
                    text(&series.database),
                );
            }
        }
        write_stdout(line.as_bytes());
    });
}

/// One `write` per line (no lock in this process; lines of under 4 KiB stay whole on a pipe).
fn write_stdout(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid buffer of that length to the process's standard output.
        let n = unsafe { libc::write(1, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// The metrics as `prometheus-client` encodes them, read when scraped.
struct Snapshot(Arc<Shared>);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Snapshot")
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut series: Vec<Arc<Series>> =
            self.0.series.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        series.push(self.0.unknown.clone());
        series.sort_by(|a, b| (&a.database, &a.route).cmp(&(&b.database, &b.route)));
        {
            let help = "Requests answered, by route template, database and status class";
            let mut metric = encoder.encode_descriptor("http_requests", help, None, MetricType::Counter)?;
            for s in &series {
                for (class, count) in CLASSES.iter().zip(&s.classes) {
                    let count = count.load(Relaxed);
                    if count > 0 {
                        let labels = [("route", &*s.route), ("database", &*s.database), ("status", class)];
                        metric.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&count, None)?;
                    }
                }
            }
        }
        {
            let help = "Time to the answer's head, by route template and database";
            let unit = Unit::Seconds;
            let mut metric =
                encoder.encode_descriptor("http_request_duration", help, Some(&unit), MetricType::Histogram)?;
            for s in series.iter().filter(|s| s.buckets.iter().any(|b| b.load(Relaxed) > 0)) {
                // Per bucket: the encoder adds them up.
                let buckets: Vec<(f64, u64)> = s
                    .buckets
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (BUCKETS_MICROS.get(i).map_or(f64::INFINITY, |&m| m as f64 / 1e6), b.load(Relaxed)))
                    .collect();
                let count = buckets.iter().map(|(_, n)| n).sum();
                let sum = s.sum_micros.load(Relaxed) as f64 / 1e6;
                let labels = [("route", &*s.route), ("database", &*s.database)];
                metric.encode_family(&labels)?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }
        let source = self.0.databases.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let stats = source.map(|s| s.database_stats()).unwrap_or_default();
        let open = stats.iter().filter(|s| s.usage.is_some()).count();
        let gauge = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64| {
            encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)
        };
        gauge(&mut encoder, "databases_configured", "Databases this server serves", stats.len() as i64)?;
        gauge(&mut encoder, "databases_open", "Databases open now", open as i64)?;
        type Read = fn(&DbUsage) -> u64;
        let per_database: [(&str, &str, MetricType, Read); 5] = [
            ("pool_connections_in_use", "Database connections running a query", MetricType::Gauge, |u| {
                u.connections_in_use as u64
            }),
            ("pool_connections_max", "Most database connections", MetricType::Gauge, |u| u.max_connections as u64),
            ("cache_hits", "Counts and statistics answered from the result cache", MetricType::Counter, |u| {
                u.cache_hits
            }),
            ("cache_misses", "Counts and statistics computed", MetricType::Counter, |u| u.cache_misses),
            ("cancelled_queries", "Queries stopped because their request went away", MetricType::Counter, |u| {
                u.cancelled_queries
            }),
        ];
        {
            let mut metric =
                encoder.encode_descriptor("database_open", "Whether the database is open", None, MetricType::Gauge)?;
            for stat in &stats {
                let labels = [("database", stat.name.as_str())];
                metric.encode_family(&labels)?.encode_gauge(&i64::from(stat.usage.is_some()))?;
            }
        }
        for (name, help, kind, read) in per_database {
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for stat in &stats {
                let Some(usage) = &stat.usage else { continue };
                let labels = [("database", stat.name.as_str())];
                let mut family = metric.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => family.encode_counter::<NoLabelSet, _, u64>(&read(usage), None)?,
                    _ => family.encode_gauge(&(read(usage) as i64))?,
                }
            }
        }
        Ok(())
    }
}

/// `GET /metrics`: the OpenMetrics text.
pub struct MetricsApi(Observer);

impl Api for MetricsApi {
    fn service(self, _prefix: &str) -> Responder {
        let observer = self.0;
        Responder::from_fn(move |request: Request| {
            let refused = crate::http::error::ApiError::unless_get(request.method());
            let text = if refused.is_none() { observer.render() } else { String::new() };
            async move {
                if let Some(refused) = refused {
                    return refused.into_response();
                }
                let kind = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
                let mut response = Body::from(text).into_response();
                response.headers_mut().insert(CONTENT_TYPE, kind);
                response
            }
        })
    }

    fn endpoints(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_within_the_segment_bound() {
        for index in 0..FRONT_DOORS.len() {
            for template in &templates(index).all {
                assert!(template.segments.len() < MAX_SEGMENTS, "{}", template.label);
            }
        }
        assert_eq!(segments_of("/a//b/").map(|(_, n)| n), Some(2));
        assert!(segments_of(&"/x".repeat(MAX_SEGMENTS + 1)).is_none());
    }

    #[test]
    fn paths_count_under_their_templates() {
        let observer = Observer::new(true, None);
        let prefixes: Vec<String> =
            ["/api/v4", "/api/v2", "/db1/api/v4", "/db1/api/v2", "/health"].iter().map(|s| s.to_string()).collect();
        let layer = observer.layer("", &prefixes);
        let label = |path: &str| {
            let (series, _) = layer.table.series(path);
            (series.route.to_string(), series.database.to_string())
        };
        let pair = |r: &str, d: &str| (r.to_string(), d.to_string());
        assert_eq!(
            label("/api/v4/nodes/12/links/incoming/page/3"),
            pair("/api/v4/nodes/<id>/links/incoming/page/<int:page>/", "default")
        );
        assert_eq!(label("/api/v4/nodes/page"), pair("/api/v4/nodes/page/", "default"));
        assert_eq!(label("/api/v4/nodes/abc"), pair("/api/v4/nodes/<id>/", "default"));
        assert_eq!(label("/api/v4"), pair("/api/v4/", "default"));
        assert_eq!(label("/api/v4/server/"), pair("/api/v4/server/", "default"));
        assert_eq!(label("/db1/api/v4/nodes"), pair("/api/v4/nodes/", "db1"));
        assert_eq!(label("/db1/api/v2/computers"), pair("/api/v2/computers/", "db1"));
        assert_eq!(label("/db1/api/v4/no/such/thing"), pair("/api/v4/<unknown>", "db1"));
        assert_eq!(label("/health"), pair("/health", ""));
        for unknown in ["/", "/nothing", "/db2/api/v4/nodes", "/api/v4x", "/healthy"] {
            assert_eq!(label(unknown), pair("<unknown>", ""), "{unknown}");
        }
        // Under a base path, only what is below it counts.
        let based: Vec<String> = prefixes.iter().map(|p| format!("/aiida{p}")).collect();
        let layer = observer.layer("/aiida", &based);
        assert_eq!(layer.table.series("/aiida/db1/api/v4/users/2").0.route.as_ref(), "/api/v4/users/<id>/");
        assert_eq!(layer.table.series("/aiida/db1/api/v4/users/2").0.database.as_ref(), "db1");
        assert_eq!(layer.table.series("/db1/api/v4/users/2").0.route.as_ref(), "<unknown>");
    }

    #[test]
    fn made_ids_are_distinct_and_given_ones_checked() {
        let observer = Observer::new(false, Some(LogFormat::Text));
        let (a, b) = (make_id(&observer.0), make_id(&observer.0));
        assert_ne!(a, b);
        assert_eq!(a.len(), 10, "{a:?}");
        assert!(sensible_id(b"abc-123"));
        assert!(!sensible_id(b""));
        assert!(!sensible_id(b"with space"));
        assert!(!sensible_id(&[b'x'; 129]));
    }

    #[test]
    fn the_exposition_is_openmetrics_text() {
        let observer = Observer::new(true, None);
        let layer = observer.layer("", &["/api/v4".to_string()]);
        let (series, _) = layer.table.series("/api/v4/nodes");
        series.record(StatusCode::OK, 700);
        series.record(StatusCode::NOT_FOUND, 20);
        let text = observer.render();
        assert!(
            text.contains(
                "aiida_rest_http_requests_total{route=\"/api/v4/nodes/\",database=\"default\",status=\"2xx\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "aiida_rest_http_requests_total{route=\"/api/v4/nodes/\",database=\"default\",status=\"4xx\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("aiida_rest_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/api/v4/nodes/\",database=\"default\"} 1") || text.contains("aiida_rest_http_request_duration_seconds_bucket{route=\"/api/v4/nodes/\",database=\"default\",le=\"0.0005\"} 1"), "{text}");
        assert!(text.contains("aiida_rest_databases_open 0"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
