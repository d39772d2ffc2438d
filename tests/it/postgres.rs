//! The PostgreSQL backend beyond the golden answers: read-only sessions, the statement
//! timeout, the bounded pool, recovery after a server restart, and opening a database from
//! the command line by URL and by AiiDA profile.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aiida_rest::storage::db::DbError;
use aiida_rest::storage::{Storage, StorageError};

use crate::harness::{self, DbLimits, Settings, Source, pg};

async fn open(url: &str, limits: DbLimits) -> Storage {
    harness::open(Source::postgres(url), limits).await.expect("the fixture database opens")
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_read_only() {
    let Some(url) = pg::shared() else { return };
    let storage = open(url, DbLimits::default()).await;
    let db = &storage.db;
    for sql in [
        "UPDATE db_dbnode SET label = 'changed' WHERE id = 1",
        "INSERT INTO db_dbsetting (key, val, description, time) VALUES ('x', '1', '', now())",
        "CREATE TABLE intruder (id int)",
    ] {
        let mut q = db.query();
        q.push(sql);
        match db.fetch_all(q).await {
            Err(DbError::Query(msg)) => assert!(msg.contains("read-only"), "{sql}: {msg}"),
            other => panic!("{sql}: expected a read-only error, got {other:?}"),
        }
    }
    let mut q = db.query();
    q.push("SELECT current_setting('transaction_read_only'), label FROM db_dbnode WHERE id = ").bind_int(1);
    let rows = db.fetch_all(q).await.unwrap();
    assert_eq!(rows[0][0].as_str(), Some("on"));
    assert_eq!(rows[0][1].as_str(), Some("bash"), "nothing was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_queries_stop_at_the_statement_timeout() {
    let Some(url) = pg::shared() else { return };
    let limits = DbLimits { max_connections: 2, statement_timeout: Duration::from_millis(300) };
    let storage = open(url, limits).await;
    let mut q = storage.db.query();
    q.push("SELECT pg_sleep(5)");
    let started = Instant::now();
    assert!(matches!(storage.db.fetch_all(q).await, Err(DbError::Timeout)));
    assert!(started.elapsed() < Duration::from_secs(3));
    // The connection survives a cancelled statement.
    let mut q = storage.db.query();
    q.push("SELECT 1");
    assert_eq!(storage.db.fetch_count(q).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_is_bounded() {
    let Some(url) = pg::shared() else { return };
    let limits = DbLimits { max_connections: 2, statement_timeout: Duration::from_secs(10) };
    let storage = Arc::new(open(url, limits).await);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            let mut q = storage.db.query();
            // After its sleep, each query counts the others of this test that are running.
            q.push(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                 AND pid <> pg_backend_pid() AND query LIKE '%bounded-pool-marker%') FROM pg_sleep(0.3)",
            );
            storage.db.fetch_count(q).await.unwrap()
        }));
    }
    for task in tasks {
        let others_active = task.await.unwrap();
        assert!(others_active <= 1, "{others_active} other queries ran at the same time");
    }
    // Six queries of 0.3 s through two connections take three rounds.
    assert!(started.elapsed() >= Duration::from_millis(850), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_container_is_refused() {
    let Some(url) = pg::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    for sub in ["loose", "packs"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"container_version": 1, "loose_prefix_len": 2, "pack_size_target": 4294967296, "hash_type": "sha256", "container_id": "00112233445566778899aabbccddeeff", "compression_algorithm": "zlib+1"}"#,
    )
    .unwrap();
    let source = Source::Postgres { url: url.to_string(), repository: dir.path().to_path_buf() };
    let err = harness::open(source, DbLimits::default()).await.err().expect("refused");
    assert!(matches!(err, StorageError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("033224ffd2184514ad071d5c4cb0d14b"), "{err}");
}

/// PostgreSQL goes down while requests run: they get 503 JSON answers, and once the server is
/// back they succeed again, with the same aiida-rest application.
#[tokio::test(flavor = "multi_thread")]
async fn recovers_when_postgresql_restarts() {
    let cluster = match pg::Cluster::start() {
        Ok(cluster) => Arc::new(cluster),
        Err(why) => return pg::unavailable(&why),
    };
    let url = pg::load_fixture(&cluster.admin_url(), false).expect("fixture loads");
    let limits = DbLimits { max_connections: 3, statement_timeout: Duration::from_secs(10) };
    let app = harness::build(Source::postgres(&url), Settings::default(), limits).await;
    let uri = "/api/v4/nodes?limit=3&orderby=-id";

    // Background load: a bounded number of requests, stopped by a flag or a deadline.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) && statuses.len() < 20_000 && Instant::now() < deadline {
                let answer = harness::get(&app, uri).await;
                if answer.status == 503 {
                    assert!(answer.json()["message"].is_string(), "503 without a message");
                }
                statuses.push(answer.status);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(harness::get(&app, uri).await.status, 200);

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop()).await.unwrap().expect("pg_ctl stop");
    let down = harness::get(&app, uri).await;
    assert_eq!(down.status, 503, "{}", String::from_utf8_lossy(&down.body));
    assert_eq!(down.header("content-type").as_deref(), Some("application/json"));
    let message = down.json()["message"].as_str().unwrap().to_string();
    eprintln!("while PostgreSQL is down: 503 {message}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start_again()).await.unwrap().expect("pg_ctl start");
    let mut recovered = None;
    for attempt in 0..50 {
        if harness::get(&app, uri).await.status == 200 {
            recovered = Some(attempt);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attempt = recovered.expect("answers 200 again after PostgreSQL is back");
    for _ in 0..20 {
        let answer = harness::get(&app, uri).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["data"]["nodes"][0]["id"], 459);
    }
    stop.store(true, Ordering::Relaxed);
    let statuses = load.await.unwrap();
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    eprintln!(
        "background requests: {} (200: {}, 503: {}); the first request after the restart needed {attempt} retries",
        statuses.len(),
        count(200),
        count(503)
    );
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503), "{statuses:?}");
    assert!(count(503) > 0 && count(200) > 0);
    assert_eq!(statuses.last(), Some(&200));
}

/// Runs `aiida-rest serve ARGS` on a free port, fetches `path`, and stops the server.
fn serve_and_get(args: &[&str], env: &[(&str, &Path)], path: &str) -> (String, String) {
    let mut child = crate::harness::server_command()
        .arg("serve")
        .args(args)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let mut address = None;
    for _ in 0..50 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        log.push_str(&line);
        if let Some(rest) = line.split("running on http://").nth(1) {
            address = rest.split('/').next().map(str::to_string);
            break;
        }
    }
    let Some(address) = address else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server did not start: {log}");
    };
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    (log, answer)
}

#[test]
fn serves_a_url_and_a_profile_from_the_command_line() {
    let Some(url) = pg::shared() else { return };
    let folder = harness::profile_path();
    let path = "/api/v4/nodes?limit=1&orderby=-id";
    let (log, answer) = serve_and_get(&[url, "--repository", folder.to_str().unwrap()], &[], path);
    assert!(answer.starts_with("HTTP/1.1 200"), "{log}\n{answer}");
    assert!(answer.contains("\"id\":459"), "{answer}");
    assert!(log.contains("PostgreSQL database"), "{log}");

    let config: tokio_postgres::Config = url.parse().unwrap();
    let aiida = tempfile::tempdir().unwrap();
    std::fs::create_dir(aiida.path().join(".aiida")).unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let profile = serde_json::json!({
        "CONFIG_VERSION": {"CURRENT": 9, "OLDEST_COMPATIBLE": 9},
        "default_profile": "pg",
        "profiles": {"pg": {"storage": {"backend": "core.psql_dos", "config": {
            "database_engine": "postgresql_psycopg",
            "database_hostname": host,
            "database_port": config.get_ports().first().copied().unwrap_or(5432),
            "database_username": config.get_user().unwrap(),
            "database_password": config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()),
            "database_name": config.get_dbname().unwrap(),
            "repository_uri": format!("file://{}", folder.display()),
        }}}}
    });
    std::fs::write(aiida.path().join(".aiida/config.json"), profile.to_string()).unwrap();
    let (log, answer) = serve_and_get(&["--profile", "pg"], &[("AIIDA_PATH", aiida.path())], path);
    assert!(answer.starts_with("HTTP/1.1 200"), "{log}\n{answer}");
    assert!(answer.contains("\"id\":459"), "{answer}");
    assert!(log.contains("profile 'pg'"), "{log}");
}

#[test]
fn a_url_needs_its_repository() {
    let out =
        crate::harness::server_command().args(["serve", "postgresql://nobody@127.0.0.1:1/none"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repository"));
}

/// Cached counts and statistics follow writes made by AiiDA while the server runs.
#[tokio::test(flavor = "multi_thread")]
async fn cached_counts_follow_writes() {
    let Some(shared) = pg::shared() else { return };
    // A database of its own: the write must not disturb the other tests.
    let url = pg::load_fixture(&pg::with_database(shared, "postgres"), true).expect("fixture loads");
    let app = harness::build(Source::postgres(&url), Settings::default(), DbLimits::default()).await;
    let count = |answer: harness::Answer| answer.header("x-total-count").unwrap().parse::<i64>().unwrap();
    let before = count(harness::get(&app, "/api/v4/nodes?limit=1").await);
    let total = |body: serde_json::Value| body["data"]["total"].as_i64().unwrap();
    let stats = total(harness::get(&app, "/api/v4/nodes/statistics").await.json());
    assert_eq!(count(harness::get(&app, "/api/v4/nodes?limit=1").await), before);
    let writer = pg::connect(&url).await.unwrap();
    writer
        .batch_execute(
            "INSERT INTO db_dbnode (uuid, node_type, label, description, ctime, mtime, attributes, extras, \
             repository_metadata, user_id) VALUES ('00000000-0000-4000-8000-000000000001', 'data.core.int.Int.', \
             '', '', now(), now(), '{}', '{}', '{}', 1)",
        )
        .await
        .unwrap();
    assert_eq!(count(harness::get(&app, "/api/v4/nodes?limit=1").await), before + 1);
    assert_eq!(total(harness::get(&app, "/api/v4/nodes/statistics").await.json()), stats + 1);
}
