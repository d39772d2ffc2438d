//! Hardening beyond the first robustness round: the same QueryBuilder input gets the same
//! answer on every database (numbers out of a double's range), heavy answers do not starve
//! cheap ones, and queries of clients that went away are stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aiida_rest::http::{self, AppState, Settings};
use aiida_rest::storage::db::{Db, DbLimits, LARGE_ROWS, PgPool, Query, SqlitePool};

use crate::harness::{self, Backend, request};

const QB: &str = "/api/v4/querybuilder";

fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Archive, Backend::Profile];
    if harness::pg::shared().is_some() {
        backends.push(Backend::Postgres);
    }
    backends
}

/// A number compared with a JSON field that a double cannot hold (it would overflow to
/// infinity or underflow to zero) is a 400 on every database: PostgreSQL compares exactly,
/// SQLite as doubles, so answering would give different rows per database.
#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_numbers_are_400_on_every_backend() {
    let body = |filter: &str| {
        format!(
            r#"{{"path": [{{"entity_type": "", "tag": "n"}}], "filters": {{"n": {{"attributes.value": {filter}}}}}, "project": {{"n": ["id"]}}, "limit": 3}}"#
        )
    };
    let refused = [
        r#"{">": -1e999}"#,
        r#"{"<": 1e999}"#,
        r#"{"==": 1E+400}"#,
        r#"{">=": 1e-999}"#,
        r#"{"<=": -0.5e-400}"#,
        r#"{"in": [1, -1e999]}"#,
        r#"{"contains": [1e999]}"#,
        r#"{"==": {"a": [2e308]}}"#,
    ];
    let accepted = [
        r#"{">": -1e308}"#,
        r#"{">": 1.7e308}"#,
        r#"{">": 5e-324}"#,
        r#"{">": 0e-999}"#,
        r#"{">": -0.0}"#,
        r#"{"<": 123456789012345678901234567890}"#,
        r#"{"in": [1, 2.5e-300]}"#,
    ];
    for backend in backends() {
        let app = harness::app(backend).await;
        for filter in refused {
            let answer = request(&app, "POST", QB, Some(&body(filter))).await;
            let text = String::from_utf8_lossy(&answer.body).to_string();
            assert_eq!(answer.status, 400, "{backend:?} {filter}: {text}");
            let message = answer.json()["message"].as_str().unwrap().to_string();
            assert!(message.contains("out of range"), "{backend:?} {filter}: {message}");
            assert!(message.contains("attributes.value"), "{backend:?} {filter}: {message}");
        }
        for filter in accepted {
            let answer = request(&app, "POST", QB, Some(&body(filter))).await;
            let text = String::from_utf8_lossy(&answer.body).to_string();
            assert_eq!(answer.status, 200, "{backend:?} {filter}: {text}");
        }
    }
}

/// A database of one small table, read through a pool of `max_connections`.
fn sqlite_db(dir: &tempfile::TempDir, max_connections: usize, timeout: Duration) -> Db {
    let path = dir.path().join("db.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
        .unwrap();
    let limits = DbLimits { max_connections, statement_timeout: timeout };
    Db::Sqlite(SqlitePool::open(&path, false, limits).unwrap())
}

/// A query that runs until it is interrupted (by its timeout or its caller going away),
/// asking for `rows` rows.
fn endless(db: &Db, rows: i64) -> Query {
    let mut q = db.query();
    q.push("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c LIMIT ")
        .bind_int(rows);
    q
}

fn cheap(db: &Db) -> Query {
    let mut q = db.query();
    q.push("SELECT x FROM t LIMIT ").bind_int(20);
    q
}

/// Large answers saturating the pool leave connections to cheap queries: a cheap query is
/// answered at once while twice the pool's size of large ones are queued or running.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cheap_queries_are_not_starved_by_large_answers() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir, 4, Duration::from_secs(4));
    assert_eq!(db.large_answers().size(), 2);
    let heavy: Vec<_> = (0..8)
        .map(|_| {
            let (db, q) = (db.clone(), endless(&db, 10 * LARGE_ROWS));
            tokio::spawn(async move { db.fetch_all(q).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let rows = db.fetch_all(cheap(&db)).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(rows.len(), 1);
    // Without the separate bound the cheap query waits for the large ones' 4 s timeout.
    assert!(waited < Duration::from_millis(2_000), "a cheap query waited {waited:?}");
    assert!(heavy.iter().all(|h| !h.is_finished()), "the large answers were still running or queued");
    for h in heavy {
        h.abort();
    }
}

/// Through HTTP, on every database: `GET /nodes?limit=-1` and a QueryBuilder query without a
/// limit are large answers, which wait for a turn of their own bound (here all taken by the
/// test), while a page of 20 is answered at once; the large ones are answered as soon as a turn
/// is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_http_answers_wait_for_their_own_bound() {
    let unlimited = r#"{"path": [{"entity_type": "", "tag": "n"}], "project": {"n": ["id", "uuid"]}}"#;
    for backend in backends() {
        let storage = Arc::new(harness::open(backend, DbLimits::default()).await.unwrap());
        let app = http::router(AppState { storage: storage.clone(), settings: Arc::new(Settings::default()) });
        let bound = storage.db.large_answers();
        let mut held = Vec::new();
        for _ in 0..bound.size() {
            held.push(bound.acquire(Duration::from_secs(1)).await.unwrap());
        }
        let heavy = [
            tokio::spawn({
                let app = app.clone();
                async move { harness::get(&app, "/api/v4/nodes?limit=-1&attributes=true").await }
            }),
            tokio::spawn({
                let app = app.clone();
                async move { request(&app, "POST", QB, Some(unlimited)).await }
            }),
        ];
        let started = Instant::now();
        let cheap = harness::get(&app, "/api/v4/nodes?limit=20").await;
        assert_eq!(cheap.status, 200, "{backend:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{backend:?}: a cheap request waited {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (h, what) in heavy.iter().zip(["/nodes?limit=-1", "an unlimited QueryBuilder query"]) {
            assert!(!h.is_finished(), "{backend:?}: {what} did not wait for a turn of the large-answer bound");
        }
        drop(held);
        for h in heavy {
            let answer = tokio::time::timeout(Duration::from_secs(20), h).await.unwrap().unwrap();
            assert_eq!(answer.status, 200, "{backend:?}: {}", String::from_utf8_lossy(&answer.body));
            assert!(answer.body.len() > 1000, "{backend:?}");
        }
    }
}

/// A query whose caller went away (the request future was dropped) is interrupted: the
/// connection is free again long before the statement timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_queries_of_dropped_requests_are_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir, 1, Duration::from_secs(60));
    let task = {
        let (db, q) = (db.clone(), endless(&db, 1));
        tokio::spawn(async move { db.fetch_all(q).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished());
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let db2 = db.clone();
    assert!(
        harness::eventually(Duration::from_secs(10), async || db2.cancelled_queries() == 1).await,
        "the query was not interrupted"
    );
    let started = Instant::now();
    db.fetch_all(cheap(&db)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// On PostgreSQL a dropped request's statement is cancelled on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_queries_of_dropped_requests_are_cancelled() {
    let Some(url) = harness::pg::shared() else { return };
    let limits = DbLimits { max_connections: 2, statement_timeout: Duration::from_secs(60) };
    let db = Db::Postgres(PgPool::connect(url.parse().unwrap(), limits).await.unwrap());
    let admin = harness::pg::connect(url).await.unwrap();
    let sleeping = async || -> i64 {
        let row = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(17.25)%' AND state = 'active'",
                &[],
            )
            .await
            .unwrap();
        row.get(0)
    };
    let task = {
        let db = db.clone();
        let mut q = db.query();
        q.push("SELECT pg_sleep(17.25)");
        tokio::spawn(async move { db.fetch_all(q).await })
    };
    let mut seen = 0;
    for _ in 0..100 {
        seen = sleeping().await;
        if seen > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, 1, "the statement did not start");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let mut left = 1;
    for _ in 0..100 {
        left = sleeping().await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "the statement still runs on the server");
    assert_eq!(db.cancelled_queries(), 1);
}
