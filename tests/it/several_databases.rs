//! Several databases in one process (`--database`, `--config`): each under its own prefix,
//! opened on first use, closed when idle, a broken one answering 503 beside the others, a
//! reload on SIGHUP, and the resident memory of a process serving 100 archives.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use aiida_rest::http::Responder;
use aiida_rest::http::databases::{Database, Databases, Options};
use aiida_rest::http::{App, Settings};
use aiida_rest::storage::Source;
use serde_json::Value;

use crate::harness::{self, DbLimits};

fn database(name: &str, source: Source, default: bool) -> Database {
    Database { name: name.into(), source, default, settings: Settings::default(), limits: DbLimits::default() }
}

fn app(databases: &Databases) -> Responder {
    databases.router(App::new())
}

/// Replays the golden `file` on the database mounted under `/<name>`, as `golden.py compare
/// --mount` does: each request goes under the mount, and the mount is taken out of the echoed
/// paths, URLs and `Link` targets before the comparison (what the API itself names, such as
/// `available_endpoints` and `API_prefix`, is the unmounted API's).
pub(crate) async fn replay_under(app: &Responder, name: &str, file: &str) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(harness::fixtures().join(file)).unwrap();
    let mount = format!("/{name}");
    let (mut passed, mut failures) = (0, Vec::new());
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap();
        let (method, path) = (entry["method"].as_str().unwrap(), entry["path"].as_str().unwrap());
        let mut answer = harness::request(app, method, &format!("{mount}{path}"), entry["body"].as_str()).await;
        unmount(&mut answer, &mount);
        match crate::golden::check(&entry, &answer) {
            None => passed += 1,
            Some(why) => failures.push(format!("{file}:{} {method} {path}: {why}", index + 1)),
        }
    }
    (passed, failures)
}

/// Takes `mount` out of the strings of a JSON answer that start with it (after an optional
/// `scheme://host`) and out of its `Link` targets.
fn unmount(answer: &mut harness::Answer, mount: &str) {
    fn strip(value: &mut Value, mount: &str) {
        match value {
            Value::Object(map) => map.values_mut().for_each(|v| strip(v, mount)),
            Value::Array(items) => items.iter_mut().for_each(|v| strip(v, mount)),
            Value::String(text) => {
                let host_end = text.find("://").and_then(|s| text[s + 3..].find('/').map(|p| s + 3 + p)).unwrap_or(0);
                let rest = &text[host_end..];
                if rest == mount || rest.starts_with(&format!("{mount}/")) {
                    *text = format!("{}{}", &text[..host_end], &rest[mount.len()..]);
                }
            }
            _ => {}
        }
    }
    let is_json = answer.header("content-type").is_some_and(|t| t.starts_with("application/json"));
    if is_json && let Ok(mut json) = serde_json::from_slice::<Value>(&answer.body) {
        strip(&mut json, mount);
        answer.body = serde_json::to_vec(&json).unwrap();
    }
    if let Some(link) = answer.header("link") {
        let link = link.replace(&format!("{mount}/api/"), "/api/");
        answer.headers.insert("link", link.parse().unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_backends_under_their_prefixes() {
    let mut list = vec![
        database("archive", Source::Path(harness::archive_path()), true),
        database("profile", Source::Path(harness::profile_path()), false),
        database("django", Source::Path(harness::archive_path()), false),
        database("sqlalchemy", Source::Path(harness::profile_path()), false),
    ];
    let postgres = harness::pg::shared();
    if let Some(url) = postgres {
        let repository = harness::profile_path().join("container");
        list.push(database("postgres", Source::Postgres { url: url.into(), repository }, false));
    }
    let databases = Databases::new(Options::default());
    databases.configure(list);
    let app = app(&databases);
    // Nothing is open before the first request.
    assert!(databases.status().iter().all(|(_, open)| !open));

    // The seed's two example URLs.
    for name in ["django", "sqlalchemy"] {
        let answer = harness::get(&app, &format!("/{name}/api/v2/computers")).await;
        assert_eq!(answer.status, 200, "{name}: {}", String::from_utf8_lossy(&answer.body));
        let answer = harness::get(&app, &format!("/{name}/api/v4/computers")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["path"], format!("/{name}/api/v4/computers"));
    }
    // The default database, also at /api/v4.
    let answer = harness::get(&app, "/api/v4/server").await;
    assert_eq!((answer.status, answer.json()["data"]["API_prefix"].clone()), (200, "/api/v4".into()));
    let answer = harness::get(&app, "/profile/api/v4/server").await;
    // A database under /<name> is the API served below a sub-path: it names itself as such.
    assert_eq!(answer.json()["data"]["API_prefix"], "/api/v4");
    let answer = harness::get(&app, "/nowhere/api/v4/nodes").await;
    assert_eq!(answer.status, 404);

    let mut names = vec!["archive", "profile"];
    if postgres.is_some() {
        names.push("postgres");
    }
    for name in names {
        let mut total = 0;
        for file in ["v4.jsonl", "querybuilder.jsonl"] {
            let (passed, failures) = replay_under(&app, name, file).await;
            for failure in &failures {
                eprintln!("FAIL [/{name}] {failure}");
            }
            assert!(failures.is_empty(), "golden answers under /{name} differ ({file})");
            total += passed;
        }
        eprintln!("golden under /{name}/api/v4: {total} passed");
        assert!(total > 1000, "{total}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_database_answers_503_and_the_others_serve() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.aiida");
    std::fs::write(&broken, b"not a zip").unwrap();
    let databases = Databases::new(Options::default());
    databases.configure(vec![
        database("good", Source::Path(harness::archive_path()), false),
        database("broken", Source::Path(broken), false),
        database("gone", Source::Path(dir.path().join("missing.aiida")), false),
    ]);
    let app = app(&databases);
    for name in ["broken", "gone"] {
        let answer = harness::get(&app, &format!("/{name}/api/v4/computers")).await;
        assert_eq!(answer.status, 503, "{name}");
        let message = answer.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(&format!("'{name}'")), "{message}");
    }
    assert_eq!(harness::get(&app, "/good/api/v4/computers").await.status, 200);
    assert_eq!(harness::get(&app, "/good/api/v2/computers").await.status, 200);

    // v4's `?profile=NAME` runs the request on that database, and echoes the URL as received.
    let answer = harness::get(&app, "/good/api/v4/computers?profile=broken").await;
    assert_eq!(answer.status, 503);
    assert!(answer.json()["message"].as_str().unwrap().contains("'broken'"));
    let answer = harness::get(&app, "/broken/api/v4/computers?profile=good").await;
    assert_eq!(answer.status, 200);
    assert!(answer.json()["url"].as_str().unwrap().ends_with("/broken/api/v4/computers?profile=good"));
    let answer = harness::get(&app, "/good/api/v4/computers?profile=other").await;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["message"].as_str().unwrap().contains("'other'"));
    assert_eq!(harness::get(&app, "/good/api/v4/computers?profile=good&profile=good").await.status, 400);
    assert_eq!(harness::get(&app, "/good/api/v4/computers?profile>good").await.status, 400);

    let health = harness::get(&app, "/health").await;
    assert_eq!((health.status, health.json()["status"].clone()), (200, "ok".into()));
    let ready = harness::get(&app, "/ready").await;
    assert_eq!(ready.status, 503);
    let body = ready.json();
    assert_eq!(body["databases"]["good"]["ready"], true);
    assert_eq!(body["databases"]["broken"]["ready"], false);
    assert!(body["databases"]["gone"]["message"].is_string());
    for uri in ["/health", "/ready"] {
        let refused = harness::request(&app, "POST", uri, Some("")).await;
        assert_eq!((refused.status, refused.header("allow")), (405, Some("GET, HEAD".into())), "{uri}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn opened_on_demand_closed_when_idle() {
    let options = Options { idle_timeout: Some(Duration::from_millis(200)), ..Options::default() };
    let databases = Databases::new(options);
    databases.configure(vec![database("a", Source::Path(harness::archive_path()), false)]);
    let app = app(&databases);
    // Concurrent first requests share one opening.
    let answers = futures_util::future::join_all((0..8).map(|_| harness::get(&app, "/a/api/v4/nodes?limit=1"))).await;
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(databases.status(), [("a".to_string(), true)]);
    assert_eq!(databases.close_idle(), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(databases.close_idle(), 1);
    assert_eq!(databases.status(), [("a".to_string(), false)]);
    assert_eq!(harness::get(&app, "/a/api/v4/nodes?limit=1").await.status, 200);
    assert_eq!(databases.status(), [("a".to_string(), true)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_keeps_unchanged_databases_open() {
    let databases = Databases::new(Options::default());
    databases.configure(vec![
        database("a", Source::Path(harness::archive_path()), false),
        database("b", Source::Path(harness::archive_path()), false),
    ]);
    let before = app(&databases);
    assert_eq!(harness::get(&before, "/a/api/v4/computers").await.status, 200);
    assert_eq!(harness::get(&before, "/b/api/v4/computers").await.status, 200);
    let changes = databases.configure(vec![
        database("a", Source::Path(harness::archive_path()), false),
        database("b", Source::Path(harness::profile_path()), false),
        database("c", Source::Path(harness::profile_path()), true),
    ]);
    assert_eq!((changes.added, changes.removed, changes.changed), (vec!["c".into()], vec![], vec!["b".into()]));
    assert_eq!(databases.status(), [("a".into(), true), ("b".into(), false), ("c".into(), false)]);
    let after = app(&databases);
    assert_eq!(harness::get(&after, "/c/api/v4/computers").await.status, 200);
    assert_eq!(harness::get(&after, "/api/v4/computers").await.status, 200);
    // The application of before the reload still answers the requests it got.
    assert_eq!(harness::get(&before, "/a/api/v4/computers").await.status, 200);
    let changes = databases.configure(vec![database("c", Source::Path(harness::profile_path()), true)]);
    assert_eq!(changes.removed, ["a", "b"]);
    assert_eq!(harness::get(&app(&databases), "/a/api/v4/computers").await.status, 404);
}

/// The `aiida-rest` process, with its address read from its first lines.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
    /// The lines it writes to standard output (the access log).
    stdout: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
}

impl Server {
    pub(crate) fn start(args: &[&str]) -> Server {
        Server::start_with(&[&["serve", "--host", "127.0.0.1", "--port", "0"], args].concat())
    }

    /// With the whole command line.
    pub(crate) fn start_with(args: &[&str]) -> Server {
        Server::start_env(args, &[])
    }

    /// With the whole command line and environment variables.
    pub(crate) fn start_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = crate::harness::server_command()
            .args(args)
            .env("RUST_LOG", "aiida_rest=warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix(" * REST API running on http://") {
                    let end = rest.find('/').unwrap_or(rest.len());
                    let _ = tx.send(rest[..end].parse::<SocketAddr>().unwrap());
                } else {
                    eprintln!("server: {line}");
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("the server starts");
        Server { child, addr, stdout: std::sync::Mutex::new(out_rx) }
    }

    /// `GET path`: the status and the body.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.get_with(path, "");
        (status, body)
    }

    /// `GET path` with more header lines (each ending in `\r\n`): the status, the head and
    /// the body.
    pub(crate) fn get_with(&self, path: &str, headers: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (status, head.to_string(), body.to_string())
    }

    /// The next line of its standard output, waiting at most `wait`.
    pub(crate) fn stdout_line(&self, wait: Duration) -> Option<String> {
        self.stdout.lock().unwrap().recv_timeout(wait).ok()
    }

    /// Resident memory, in MiB.
    pub(crate) fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kib / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(path: &Path, top: &str, entries: &[(&str, &Path)]) {
    let mut text = format!("idle_timeout = 0\n{top}");
    for (name, storage) in entries {
        text.push_str(&format!("[[database]]\nname = \"{name}\"\nstorage = \"{}\"\n", storage.display()));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn sighup_reloads_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aiida-rest.toml");
    let (archive, profile): (PathBuf, PathBuf) = (harness::archive_path(), harness::profile_path());
    write_config(&config, "", &[("a", &archive), ("b", &archive)]);
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(server.get("/a/api/v4/computers").0, 200);
    assert_eq!(server.get("/b/api/v4/computers").0, 200);
    assert_eq!(server.get("/c/api/v4/computers").0, 404);
    assert_eq!(server.get("/b/api/v4/querybuilder").0, 405);

    // Added, removed and changed entries, and a changed option of the top level.
    write_config(&config, "posting = false\n", &[("b", &profile), ("c", &archive)]);
    // SAFETY: kill(2) on the child this test started.
    assert_eq!(unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) }, 0);
    let start = Instant::now();
    while server.get("/c/api/v4/computers").0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(20), "the reload did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.get("/a/api/v4/computers").0, 404);
    let (status, body) = server.get("/b/api/v4/server");
    assert_eq!(status, 200);
    assert!(body.contains("/b/api/v4"), "{body}");
    assert_eq!(server.get("/c/api/v4/querybuilder").0, 404);
    // A broken file keeps the previous configuration.
    std::fs::write(&config, "[[database]\n").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.get("/c/api/v4/computers").0, 200);
    assert_eq!(server.get("/health").0, 200);
}

#[test]
fn a_hundred_archives_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..100 {
        // Links: each is opened as an archive of its own, as a copy would be.
        std::os::unix::fs::symlink(harness::archive_path(), dir.path().join(format!("db{i:03}.aiida"))).unwrap();
    }
    // One --database naming the folder: one database per file.
    let spec = format!("all={}", dir.path().display());
    let server = Server::start(&["--database", &spec, "--idle-timeout", "0"]);
    let rss_before = server.rss_mib();
    for i in 0..100 {
        let (status, body) = server.get(&format!("/db{i:03}/api/v4/nodes?limit=1"));
        assert_eq!(status, 200, "db{i:03}: {body}");
        assert!(body.contains(&format!("/db{i:03}/api/v4/nodes")), "{body}");
    }
    // Every one answers again, now open.
    for i in 0..100 {
        assert_eq!(server.get(&format!("/db{i:03}/api/v4/computers")).0, 200);
    }
    let (status, body) = server.get("/ready");
    assert_eq!(status, 200, "{body}");
    let rss = server.rss_mib();
    eprintln!(
        "100 archives open in one process: resident memory {rss:.1} MiB (before the first request {rss_before:.1} MiB)"
    );
    assert!(rss < 300.0, "{rss:.1} MiB resident");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_sessions_stay_under_the_budget() {
    let Some(url) = harness::pg::shared() else { return };
    let options =
        Options { pg_sessions: 3, idle_timeout: Some(Duration::from_millis(100)), retry_after: Duration::ZERO };
    let databases = Databases::new(options);
    let pg = |name: &str| {
        let repository = harness::profile_path().join("container");
        let mut database = database(name, Source::Postgres { url: url.into(), repository }, false);
        database.limits.max_connections = 2;
        database
    };
    databases.configure(vec![pg("one"), pg("two")]);
    let app = app(&databases);
    assert_eq!(harness::get(&app, "/one/api/v4/computers").await.status, 200);
    // Two of the three sessions are reserved by `one`: `two` cannot have its two.
    let answer = harness::get(&app, "/two/api/v4/computers").await;
    assert_eq!(answer.status, 503);
    assert!(answer.json()["message"].as_str().unwrap().contains("PostgreSQL sessions"));
    // Once `one` is idle and closed, `two` opens.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(databases.close_idle(), 1);
    assert_eq!(harness::get(&app, "/two/api/v4/computers").await.status, 200);
}

#[test]
fn health_and_ready_of_one_storage() {
    let server = Server::start(&[harness::archive_path().to_str().unwrap()]);
    let (status, body) = server.get("/health");
    assert_eq!((status, body.contains("\"ok\"")), (200, true), "{body}");
    let (status, body) = server.get("/ready");
    assert_eq!((status, body.contains("\"ready\"")), (200, true), "{body}");
    // The options of `verdi restapi` are accepted too.
    drop(server);
    let archive = harness::archive_path();
    let args = ["serve", "-H", "127.0.0.1", "-P", "0", "--no-posting", "--posting", archive.to_str().unwrap()];
    let server = Server::start_with(&args);
    assert_eq!(server.get("/api/v4/server").0, 200);
    drop(server);
    let server = Server::start_with(&[
        "serve",
        "--hostname",
        "127.0.0.1",
        "--port",
        "0",
        "--no-posting",
        archive.to_str().unwrap(),
    ]);
    let (status, body) = server.get("/api/v4/querybuilder");
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_origins_can_be_restricted() {
    use aiida_rest::http::cors::Origins;
    use axum::body::Body;
    use tower::ServiceExt;

    let databases = Databases::new(Options::default());
    databases.configure(vec![database("a", Source::Path(harness::archive_path()), true)]);
    let ask = async |app: &Responder, origin: &str| {
        let request = axum::http::Request::get("/a/api/v4/computers").header("origin", origin).body(Body::empty());
        let response = app.clone().oneshot(request.unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string())
    };
    let any = databases.router(App::new());
    assert_eq!(ask(&any, "https://x.org").await.as_deref(), Some("https://x.org"));
    let listed = databases.router(App::new().cors_origins(Origins::from_list(&["https://a.org, https://b.org/"])));
    assert_eq!(ask(&listed, "https://b.org").await.as_deref(), Some("https://b.org"));
    assert_eq!(ask(&listed, "https://x.org").await, None);
    assert!(matches!(Origins::from_list(&["https://a.org", "*"]), Origins::Any));
}

#[test]
fn options_from_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aiida-rest.toml");
    let archive = harness::archive_path();
    let text = format!(
        "posting = false\nmax_rows = 3\n[[database]]\nname = \"a\"\nstorage = \"{}\"\nmax_rows = 2\n\
         [[database]]\nname = \"b\"\nstorage = \"{}\"\nposting = true\n",
        archive.display(),
        archive.display()
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    // POST /querybuilder is off where the file's top level says so, on where the entry says so.
    assert_eq!(server.get("/a/api/v4/querybuilder").0, 404);
    assert_eq!(server.get("/b/api/v4/querybuilder").0, 405);
    let count = |body: &str| serde_json::from_str::<Value>(body).unwrap()["data"]["nodes"].as_array().unwrap().len();
    assert_eq!(count(&server.get("/a/api/v4/nodes?limit=-1").1), 2);
    assert_eq!(count(&server.get("/b/api/v4/nodes?limit=-1").1), 3);
    // No default database: /api/v4 is not served.
    assert_eq!(server.get("/api/v4/nodes").0, 404);
    drop(server);
    // An unknown key is an error at start.
    std::fs::write(&config, "colour = \"blue\"\n").unwrap();
    let out = crate::harness::server_command().args(["serve", "--config"]).arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
}
