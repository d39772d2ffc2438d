//! Running the server in production: Prometheus metrics, access logs with request ids, the
//! request timeout, serving under a base path, PostgreSQL with several hosts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aiida_rest::http::Responder;
use aiida_rest::http::databases::{Database, Databases, Options};
use aiida_rest::http::observe::{LogFormat, Observer};
use aiida_rest::http::{Api, App, AppState, Settings};
use aiida_rest::storage::Source;
use aiida_rest::storage::db::{Db, PgPool, SqlitePool};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;

use crate::harness::{self, Backend, DbLimits, pg};
use crate::several_databases::Server;

/// The value of the sample `name{labels}` in an OpenMetrics text (labels as written).
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_by_route_template() {
    let storage = Arc::new(harness::open(Backend::Archive, DbLimits::default()).await.unwrap());
    let state = AppState { storage: storage.clone(), settings: Arc::new(Settings::default()) };
    let observer = Observer::new(true, None);
    observer.set_databases(storage);
    let app = App::new().observe(&observer).front_doors(&state).into_responder();

    for _ in 0..3 {
        assert_eq!(harness::get(&app, "/api/v4/nodes?limit=1").await.status, 200);
    }
    assert_eq!(harness::get(&app, "/api/v4/nodes/page/2").await.status, 200);
    assert_eq!(harness::get(&app, "/api/v2/computers").await.status, 200);
    for _ in 0..2 {
        assert_eq!(harness::get(&app, "/api/v4/nodes/statistics").await.status, 200);
    }
    // Paths under no mount all share one series, whatever they are: the number of series
    // stays bounded.
    for i in 0..50 {
        assert_eq!(harness::get(&app, &format!("/random/{i}")).await.status, 404);
    }
    assert_eq!(harness::get(&app, "/api/v4/nodes/x/y/z").await.status, 404);

    let answer = harness::get(&app, "/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let text = String::from_utf8(answer.body).unwrap();
    let requests = |labels: &str| sample(&text, &format!("aiida_rest_http_requests_total{{{labels}}}"));
    assert_eq!(requests(r#"route="/api/v4/nodes/",database="default",status="2xx""#), Some(3.0), "{text}");
    assert_eq!(requests(r#"route="/api/v4/nodes/page/<int:page>/",database="default",status="2xx""#), Some(1.0));
    assert_eq!(requests(r#"route="/api/v2/computers/",database="default",status="2xx""#), Some(1.0));
    assert_eq!(requests(r#"route="/api/v4/nodes/statistics/",database="default",status="2xx""#), Some(2.0));
    assert_eq!(requests(r#"route="<unknown>",database="",status="4xx""#), Some(50.0));
    assert_eq!(requests(r#"route="/api/v4/<unknown>",database="default",status="4xx""#), Some(1.0));
    let series = text.lines().filter(|l| l.starts_with("aiida_rest_http_requests_total")).count();
    assert_eq!(series, 6, "{text}");
    let count = r#"aiida_rest_http_request_duration_seconds_count{route="/api/v4/nodes/",database="default"}"#;
    assert_eq!(sample(&text, count), Some(3.0));
    let inf = r#"aiida_rest_http_request_duration_seconds_bucket{le="+Inf",route="/api/v4/nodes/",database="default"}"#;
    assert_eq!(sample(&text, inf), Some(3.0), "{text}");
    assert_eq!(sample(&text, "aiida_rest_databases_open"), Some(1.0));
    assert_eq!(sample(&text, r#"aiida_rest_pool_connections_max{database="default"}"#), Some(8.0));
    assert_eq!(sample(&text, r#"aiida_rest_pool_connections_in_use{database="default"}"#), Some(0.0));
    // The second statistics request is answered from the result cache.
    assert!(sample(&text, r#"aiida_rest_cache_hits_total{database="default"}"#).unwrap() >= 1.0, "{text}");
    assert!(text.ends_with("# EOF\n"));

    // `/metrics` only reports: HEAD as GET, anything else a JSON 405.
    assert_eq!(harness::request(&app, "HEAD", "/metrics", None).await.status, 200);
    for method in ["POST", "DELETE", "OPTIONS"] {
        let refused = harness::request(&app, method, "/metrics", Some("")).await;
        assert_eq!((refused.status, refused.header("allow")), (405, Some("GET, HEAD".into())), "{method}");
        assert!(refused.json()["message"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_of_several_databases() {
    let database = |name: &str| Database {
        name: name.into(),
        source: Source::Path(harness::archive_path()),
        default: false,
        settings: Settings::default(),
        limits: DbLimits::default(),
    };
    let databases = Databases::new(Options::default());
    databases.configure(vec![database("one"), database("two")]);
    let observer = Observer::new(true, None);
    observer.set_databases(databases.clone());
    let app = databases.router(App::new().observe(&observer));
    assert_eq!(harness::get(&app, "/one/api/v4/users").await.status, 200);
    assert_eq!(harness::get(&app, "/one/api/v4/users/1").await.status, 200);
    assert_eq!(harness::get(&app, "/two/api/v4/nonsense").await.status, 404);
    let text = String::from_utf8(harness::get(&app, "/metrics").await.body).unwrap();
    let requests = |labels: &str| sample(&text, &format!("aiida_rest_http_requests_total{{{labels}}}"));
    assert_eq!(requests(r#"route="/api/v4/users/",database="one",status="2xx""#), Some(1.0), "{text}");
    assert_eq!(requests(r#"route="/api/v4/users/<id>/",database="one",status="2xx""#), Some(1.0));
    assert_eq!(requests(r#"route="/api/v4/<unknown>",database="two",status="4xx""#), Some(1.0));
    assert_eq!(sample(&text, "aiida_rest_databases_configured"), Some(2.0));
    assert_eq!(sample(&text, "aiida_rest_databases_open"), Some(2.0));
    assert_eq!(sample(&text, r#"aiida_rest_database_open{database="one"}"#), Some(1.0));
    // A reload builds a new application: the counts go on.
    let app = databases.router(App::new().observe(&observer));
    assert_eq!(harness::get(&app, "/one/api/v4/users").await.status, 200);
    let text = String::from_utf8(harness::get(&app, "/metrics").await.body).unwrap();
    let labels = r#"aiida_rest_http_requests_total{route="/api/v4/users/",database="one",status="2xx"}"#;
    assert_eq!(sample(&text, labels), Some(2.0));
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn access_log_lines_carry_the_request_id() {
    let archive = harness::archive_path();
    let archive = archive.to_str().unwrap();
    let server = Server::start(&["--access-log", "--log-format", "json", archive]);
    let (status, head, _) = server.get_with("/api/v4/server?x=1", "X-Request-Id: client-id-7\r\n");
    assert_eq!(status, 200);
    assert_eq!(header(&head, "x-request-id"), Some("client-id-7"));
    let line = server.stdout_line(Duration::from_secs(10)).expect("an access-log line");
    let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(entry["request_id"], "client-id-7");
    assert_eq!((entry["method"].as_str(), entry["path"].as_str()), (Some("GET"), Some("/api/v4/server?x=1")));
    assert_eq!((entry["status"].as_u64(), entry["route"].as_str()), (Some(200), Some("/api/v4/server/")));
    assert!(entry["bytes"].as_u64().unwrap() > 0 && entry["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
    // Without one (or with one not fit for a log), the server makes one.
    for extra in ["", "X-Request-Id: two words\r\n"] {
        let (_, head, _) = server.get_with("/api/v4/nodes/nothing/here", extra);
        let made = header(&head, "x-request-id").expect("a request id").to_string();
        let entry: Value = serde_json::from_str(&server.stdout_line(Duration::from_secs(10)).unwrap()).unwrap();
        assert_eq!(entry["request_id"], made.as_str());
        assert_eq!(entry["status"], 404);
    }
    drop(server);

    // Text lines, set by the environment; metrics off by the environment too.
    let env = [("AIIDA_REST_ACCESS_LOG", "true"), ("AIIDA_REST_LOG_FORMAT", "text"), ("AIIDA_REST_NO_METRICS", "1")];
    let server = Server::start_env(&["serve", "-H", "127.0.0.1", "-P", "0", archive], &env);
    assert_eq!(server.get("/metrics").0, 404);
    let line = server.stdout_line(Duration::from_secs(10)).unwrap();
    assert!(line.contains(r#" "GET /metrics" 404 "#), "{line}");
    drop(server);

    // Off (the default): nothing on standard output, the client's id still echoed.
    let server = Server::start(&[archive]);
    let (_, head, _) = server.get_with("/api/v4/server", "X-Request-Id: abc\r\n");
    assert_eq!(header(&head, "x-request-id"), Some("abc"));
    let (_, head, _) = server.get_with("/api/v4/server", "");
    assert_eq!(header(&head, "x-request-id"), None);
    assert_eq!(server.stdout_line(Duration::from_millis(300)), None);
    assert_eq!(server.get("/metrics").0, 200);
}

#[test]
fn observing_options_from_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aiida-rest.toml");
    let text = format!(
        "access_log = true\nlog_format = \"json\"\nmetrics = false\n[[database]]\nname = \"a\"\nstorage = \"{}\"\n",
        harness::archive_path().display()
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(server.get("/a/api/v4/users").0, 200);
    let entry: Value = serde_json::from_str(&server.stdout_line(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!((entry["database"].as_str(), entry["route"].as_str()), (Some("a"), Some("/api/v4/users/")));
    assert_eq!(server.get("/metrics").0, 404);
    // `metrics` is not a database name.
    let bad = format!("[[database]]\nname = \"metrics\"\nstorage = \"{}\"\n", harness::archive_path().display());
    std::fs::write(&config, bad).unwrap();
    let out = crate::harness::server_command().args(["serve", "--config"]).arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'metrics'"));
}

#[test]
fn log_format_is_text_or_json() {
    assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
    assert!("xml".parse::<LogFormat>().is_err());
}

/// An API whose one endpoint runs a query until it is stopped.
struct Slow(Db, &'static str);

impl Api for Slow {
    fn service(self, _prefix: &str) -> Responder {
        let (db, sql) = (self.0, self.1);
        Responder::from_fn(move |_| {
            let db = db.clone();
            async move {
                let mut query = db.query();
                query.push(sql);
                match db.fetch_all(query).await {
                    Ok(_) => StatusCode::OK.into_response(),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        })
    }

    fn endpoints(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }
}

/// A request over its time gets a 503 at the time, and its SQLite query is interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_over_its_time_is_stopped_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    rusqlite::Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    let limits = DbLimits { max_connections: 1, statement_timeout: Duration::from_secs(60) };
    let db = Db::Sqlite(SqlitePool::open(&path, false, limits).unwrap());
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c";
    let observer = Observer::new(true, None);
    let app = App::new()
        .observe(&observer)
        .request_timeout(Some(Duration::from_millis(400)))
        .nest("/slow", Slow(db.clone(), endless))
        .into_responder();
    let started = Instant::now();
    let answer = harness::get(&app, "/slow").await;
    let took = started.elapsed();
    assert_eq!(answer.status, 503);
    assert!(answer.json()["message"].as_str().unwrap().contains("time limit (0.4 s)"), "{:?}", answer.json());
    assert!(took >= Duration::from_millis(400) && took < Duration::from_secs(5), "{took:?}");
    let db2 = db.clone();
    assert!(
        harness::eventually(Duration::from_secs(10), async || db2.cancelled_queries() == 1).await,
        "not interrupted"
    );
    // The one connection is free again at once.
    let cheap = async {
        let mut q = db.query();
        q.push("SELECT count(*) FROM t");
        db.fetch_all(q).await
    };
    assert!(tokio::time::timeout(Duration::from_secs(5), cheap).await.unwrap().is_ok());
    // The 503 is counted.
    let text = String::from_utf8(harness::get(&app, "/metrics").await.body).unwrap();
    assert_eq!(sample(&text, r#"aiida_rest_http_requests_total{route="/slow",database="",status="5xx"}"#), Some(1.0));
}

/// On PostgreSQL the statement of a request over its time is cancelled on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_over_its_time_is_stopped_postgres() {
    let Some(url) = harness::pg::shared() else { return };
    let limits = DbLimits { max_connections: 2, statement_timeout: Duration::from_secs(60) };
    let db = Db::Postgres(PgPool::connect(url.parse().unwrap(), limits).await.unwrap());
    let app = App::new()
        .request_timeout(Some(Duration::from_millis(500)))
        .nest("/slow", Slow(db.clone(), "SELECT pg_sleep(19.75)"))
        .into_responder();
    let answer = harness::get(&app, "/slow").await;
    assert_eq!(answer.status, 503);
    let admin = harness::pg::connect(url).await.unwrap();
    let running = async || -> i64 {
        let sql =
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(19.75)%' AND state = 'active'";
        admin.query_one(sql, &[]).await.unwrap().get(0)
    };
    assert!(harness::eventually(Duration::from_secs(10), async || running().await == 0).await, "still running");
    assert_eq!(db.cancelled_queries(), 1);
}

/// The option, from the command line, the environment and the configuration file; requests
/// within the time are answered as without it.
#[test]
fn the_request_timeout_option() {
    let archive = harness::archive_path();
    let archive = archive.to_str().unwrap();
    let server = Server::start(&["--request-timeout", "30", archive]);
    assert_eq!(server.get("/api/v4/nodes?limit=2").0, 200);
    drop(server);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aiida-rest.toml");
    std::fs::write(&config, format!("request_timeout = 20\n[[database]]\nname = \"a\"\nstorage = \"{archive}\"\n"))
        .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(server.get("/a/api/v4/users").0, 200);
    drop(server);
    let out = crate::harness::server_command()
        .args(["serve", archive])
        .env("AIIDA_REST_REQUEST_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Under `--base-url /aiida` every mount moves below it; the answers are the reference's
/// behind a proxy that keeps the path (WSGI's `SCRIPT_NAME`): `path`, `API_prefix` and
/// `available_endpoints` below the base, `url`, `url_root` and `Link` with it.
#[tokio::test(flavor = "multi_thread")]
async fn serving_below_a_base_path() {
    let storage = Arc::new(harness::open(Backend::Archive, DbLimits::default()).await.unwrap());
    let state = AppState { storage, settings: Arc::new(Settings::default()) };
    let observer = Observer::new(true, None);
    let app = App::new()
        .observe(&observer)
        .base_path(Some("/aiida".into()))
        .front_doors(&state)
        .nest("/health", aiida_rest::http::databases::Health)
        .into_responder();
    let answer = harness::get(&app, "/aiida/api/v4/server").await;
    assert_eq!(answer.status, 200);
    let json = answer.json();
    assert_eq!(json["data"]["API_prefix"], "/api/v4");
    assert_eq!(json["path"], "/api/v4/server");
    assert_eq!(json["url"], "http://127.0.0.1:5000/aiida/api/v4/server");
    assert_eq!(json["url_root"], "http://127.0.0.1:5000/aiida/");
    let answer = harness::get(&app, "/aiida/api/v4/nodes/page/1?perpage=2").await;
    let link = answer.header("link").unwrap();
    assert!(link.contains("<http://127.0.0.1:5000/aiida/api/v4/nodes/page/2?perpage=2>; rel=\"next\""), "{link}");
    assert_eq!(harness::get(&app, "/aiida/health").await.status, 200);
    assert_eq!(harness::get(&app, "/aiida/metrics").await.status, 200);
    for outside in ["/api/v4/server", "/health", "/aiidax/api/v4/server", "/"] {
        let answer = harness::get(&app, outside).await;
        assert_eq!(answer.status, 404, "{outside}");
        assert!(answer.json()["available_endpoints"].as_array().unwrap().len() > 40);
    }
    let answer = harness::get(&app, "/aiida/nothing").await;
    assert_eq!(answer.status, 404);
    for line in answer.json()["available_endpoints"].as_array().unwrap() {
        let path = line.as_str().unwrap().split_whitespace().last().unwrap();
        assert!(path.starts_with("/api/v") || path.starts_with("/optimade/"), "{line}");
    }
    // Counted under the route template, whatever the base.
    let text = String::from_utf8(harness::get(&app, "/aiida/metrics").await.body).unwrap();
    let labels = r#"aiida_rest_http_requests_total{route="/api/v4/server/",database="default",status="2xx"}"#;
    assert_eq!(sample(&text, labels), Some(1.0), "{text}");

    // The golden answers, under the base.
    for file in ["v4.jsonl", "querybuilder.jsonl"] {
        let (passed, failures) = crate::several_databases::replay_under(&app, "aiida", file).await;
        for failure in &failures {
            eprintln!("FAIL [/aiida] {failure}");
        }
        assert!(failures.is_empty(), "golden answers under /aiida differ ({file})");
        assert!(passed > 200, "{passed}");
    }

    // Several databases below the base.
    let database = |name: &str, default: bool| Database {
        name: name.into(),
        source: Source::Path(harness::archive_path()),
        default,
        settings: Settings::default(),
        limits: DbLimits::default(),
    };
    let databases = Databases::new(Options::default());
    databases.configure(vec![database("django", true), database("sqlalchemy", false)]);
    let app = databases.router(App::new().base_path(Some("/aiida".into())));
    let answer = harness::get(&app, "/aiida/sqlalchemy/api/v2/computers").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["url_root"], "http://127.0.0.1:5000/aiida/");
    assert_eq!(harness::get(&app, "/aiida/django/api/v4/computers").await.status, 200);
    assert_eq!(harness::get(&app, "/aiida/api/v4/computers").await.status, 200);
    assert_eq!(harness::get(&app, "/aiida/ready").await.status, 200);
    assert_eq!(harness::get(&app, "/django/api/v4/computers").await.status, 404);
}

/// `--base-url` from the command line, the environment and the configuration file, with
/// `--public-url` giving the origin.
#[test]
fn the_base_url_option() {
    let archive = harness::archive_path();
    let archive = archive.to_str().unwrap();
    let server = Server::start(&["--base-url", "/aiida/", "--public-url", "https://example.org", archive]);
    let (status, body) = server.get("/aiida/api/v4/server");
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["url_root"], "https://example.org/aiida/");
    assert_eq!(server.get("/aiida/health").0, 200);
    assert_eq!(server.get("/health").0, 404);
    drop(server);
    let server =
        Server::start_env(&["serve", "-H", "127.0.0.1", "-P", "0", archive], &[("AIIDA_REST_BASE_URL", "/x/y")]);
    assert_eq!(server.get("/x/y/api/v4/users").0, 200);
    drop(server);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aiida-rest.toml");
    std::fs::write(&config, format!("base_url = \"/aiida\"\n[[database]]\nname = \"a\"\nstorage = \"{archive}\"\n"))
        .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(server.get("/aiida/a/api/v4/users").0, 200);
    assert_eq!(server.get("/a/api/v4/users").0, 404);
    drop(server);
    let out = crate::harness::server_command().args(["serve", "--base-url", "/a b", archive]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A PostgreSQL URL naming two hosts (libpq's syntax): sessions go to the first that answers;
/// when it goes away under load, the requests go on on the second, a few failing during the
/// switch (those whose session was on the stopped server).
#[tokio::test(flavor = "multi_thread")]
async fn postgresql_with_two_hosts_fails_over() {
    let (first, second) = match (pg::Cluster::start(), pg::Cluster::start()) {
        (Ok(a), Ok(b)) => (Arc::new(a), Arc::new(b)),
        (Err(why), _) | (_, Err(why)) => return pg::unavailable(&why),
    };
    // The same database (same name, same rows) on both: a primary and its replica, as a
    // read-only server sees them.
    let url = pg::load_fixture(&first.admin_url(), false).expect("fixture loads");
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    let other = pg::load_fixture(&second.admin_url(), false).expect("fixture loads");
    let other_name = other.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    let admin = pg::connect(&second.admin_url()).await.unwrap();
    admin.batch_execute(&format!("ALTER DATABASE {other_name} RENAME TO {name}")).await.unwrap();
    let both = format!(
        "postgresql://postgres@127.0.0.1:{},127.0.0.1:{}/{name}?target_session_attrs=any&connect_timeout=3",
        first.port, second.port
    );
    let limits = DbLimits { max_connections: 3, statement_timeout: Duration::from_secs(10) };
    let app = harness::build(harness::Source::postgres(&both), Settings::default(), limits).await;
    let uri = "/api/v4/nodes?limit=3&orderby=-id";
    let answer = harness::get(&app, uri).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["data"]["nodes"][0]["id"], 459);

    // Load from 4 clients; the first host stops meanwhile.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && statuses.len() < 50_000 {
                    let answer = harness::get(&app, uri).await;
                    if answer.status == 200 {
                        assert_eq!(answer.json()["data"]["nodes"][0]["id"], 459);
                    }
                    statuses.push((Instant::now(), answer.status));
                }
                statuses
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stopped = Instant::now();
    let c = first.clone();
    tokio::task::spawn_blocking(move || c.stop()).await.unwrap().expect("pg_ctl stop");
    let stop_took = stopped.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut statuses = Vec::new();
    for client in clients {
        statuses.extend(client.await.unwrap());
    }
    let failed: Vec<_> = statuses.iter().filter(|(_, s)| *s != 200).collect();
    let after: Vec<_> =
        statuses.iter().filter(|(t, _)| *t > stopped + stop_took + Duration::from_millis(300)).collect();
    eprintln!(
        "two hosts, the first stopped under load: {} requests, {} failed ({:?}), {} answered after the switch",
        statuses.len(),
        failed.len(),
        failed.iter().map(|(_, s)| s).collect::<std::collections::BTreeSet<_>>(),
        after.len()
    );
    assert!(failed.iter().all(|(_, s)| *s == 503), "failures are 503s");
    // At most one failure per pooled session (3) and client (4) in the switch.
    assert!(failed.len() <= 12, "{} failed", failed.len());
    assert!(after.len() > 20 && after.iter().all(|(_, s)| *s == 200), "after the switch every request succeeds");
    // With the first host down from the start, the database still opens.
    let app = harness::build(harness::Source::postgres(&both), Settings::default(), limits).await;
    assert_eq!(harness::get(&app, uri).await.status, 200);
    drop(admin);
}
