//! The statistics and type trees of a storage at a server's start and while it grows: the
//! whole-table aggregates saved in the server's cache folder and read back by the next server,
//! damaged or foreign cache files ignored, an unwritable folder survived, appended nodes added
//! to the counts (equal to counting again), a deletion counted again — on SQLite profile
//! folders, archives and PostgreSQL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aiida_rest::http::{self, AppState};
use aiida_rest::storage::Storage;
use aiida_rest::storage::db::aggregates::RunCounts;
use aiida_rest::storage::db::persisted;
use serde_json::Value;

use crate::harness::{self, Backend, DbLimits, Settings, Source, pg};

/// Opens `source` with `dir` as the cache folder.
async fn open(source: &Source, dir: Option<&Path>) -> Arc<Storage> {
    let opening = harness::open(source.clone(), DbLimits::default());
    let storage = persisted::with_cache_dir(dir.map(Path::to_path_buf), opening).await;
    Arc::new(storage.unwrap_or_else(|e| panic!("{source:?} opens: {e}")))
}

/// The answers of the three endpoints made from the aggregates (their `data`).
async fn answers(storage: &Arc<Storage>) -> Vec<Value> {
    let app = http::router(AppState { storage: storage.clone(), settings: Arc::new(Settings::default()) });
    let mut out = Vec::new();
    for path in ["/api/v4/nodes/statistics", "/api/v4/nodes/full_types", "/api/v4/nodes/full_types_count"] {
        let answer = harness::get(&app, path).await;
        assert_eq!(answer.status, 200, "{path}");
        out.push(answer.json()["data"].clone());
    }
    out
}

/// The answers counted from scratch (no cache folder, a new storage).
async fn recounted(source: &Source) -> Vec<Value> {
    let storage = open(source, None).await;
    let answers = answers(&storage).await;
    assert_eq!(storage.db.aggregate_runs(), runs(1, 0, 0));
    answers
}

fn runs(full: u64, appended: u64, loaded: u64) -> RunCounts {
    RunCounts { full, appended, loaded }
}

fn total(answers: &[Value]) -> i64 {
    answers[0]["total"].as_i64().unwrap()
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// A node row appended to the SQLite database `db` (of a test's own copy), of a new type and
/// day.
fn sqlite_append(db: &Path, node_type: &str) {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let uuid = format!("00000000-0000-4000-8000-{:012x}", SERIAL.fetch_add(1, Ordering::Relaxed));
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "INSERT INTO db_dbnode (uuid, node_type, process_type, label, description, ctime, mtime, attributes, \
         extras, repository_metadata, dbcomputer_id, user_id) SELECT ?1, ?2, 'aiida.calculations:appended', '', '', \
         '2031-02-03 04:05:06.000000', '2031-02-03 04:05:06.000000', '{}', '{}', '{}', NULL, user_id \
         FROM db_dbnode ORDER BY id LIMIT 1",
        rusqlite::params![uuid, node_type],
    )
    .unwrap();
}

/// Deletes the node of the second largest id from the SQLite database `db`.
fn sqlite_delete(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF; DELETE FROM db_dbnode WHERE id = \
         (SELECT max(id) FROM db_dbnode WHERE id < (SELECT max(id) FROM db_dbnode))",
    )
    .unwrap();
}

#[tokio::test]
async fn a_second_server_reads_the_saved_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let source = Source::Path(harness::profile_copy(dir.path()));
    let first = open(&source, Some(&cache)).await;
    let expected = answers(&first).await;
    assert_eq!(first.db.aggregate_runs(), runs(1, 0, 0));
    let files = cache_files(&cache);
    assert_eq!(files.len(), 1, "one file per storage: {files:?}");
    drop(first);

    let second = open(&source, Some(&cache)).await;
    assert_eq!(answers(&second).await, expected);
    assert_eq!(second.db.aggregate_runs(), runs(0, 0, 1), "read back, no statement over the node table");
    // Nothing was written into the user's storage folder.
    assert_eq!(recounted(&source).await, expected);
    assert!(!cache_files(&dir.path().join("profile")).iter().any(|p| p.to_string_lossy().contains("aggregates")));
}

#[tokio::test]
async fn an_archive_is_saved_by_path_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let archive = dir.path().join("a.aiida");
    std::fs::copy(harness::archive_path(), &archive).unwrap();
    let source = Source::Path(archive.clone());
    let expected = answers(&open(&source, Some(&cache)).await).await;
    let again = open(&source, Some(&cache)).await;
    assert_eq!(answers(&again).await, expected);
    assert_eq!(again.db.aggregate_runs(), runs(0, 0, 1));
    // Another archive put in its place (same path) is counted again, not taken for the first.
    let other = dir.path().join("b.aiida");
    std::fs::copy(harness::fixture2_archive_path(), &other).unwrap();
    std::fs::rename(&other, &archive).unwrap();
    let replaced = open(&source, Some(&cache)).await;
    assert_eq!(answers(&replaced).await, recounted(&source).await);
    assert_ne!(answers(&replaced).await, expected);
    assert_eq!(replaced.db.aggregate_runs(), runs(1, 0, 0));
    assert_eq!(cache_files(&cache).len(), 1);
}

#[tokio::test]
async fn damaged_and_foreign_cache_files_are_ignored_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let source = Source::Path(harness::profile_copy(dir.path()));
    let expected = answers(&open(&source, Some(&cache)).await).await;
    let file = cache_files(&cache).pop().unwrap();
    let sound = std::fs::read_to_string(&file).unwrap();
    let damaged = [
        sound[..sound.len() / 2].to_string(),
        String::new(),
        "\u{0}\u{1}binary".to_string(),
        "{\"format\": \"something else\"}".to_string(),
        sound.replace("sqlite ", "sqlite /elsewhere"),
    ];
    for text in damaged {
        std::fs::write(&file, &text).unwrap();
        let storage = open(&source, Some(&cache)).await;
        assert_eq!(answers(&storage).await, expected, "with the cache file {text:?}");
        assert_eq!(storage.db.aggregate_runs(), runs(1, 0, 0), "counted again over {text:?}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), sound, "the file is written again");
    }
}

#[tokio::test]
async fn an_unwritable_cache_folder_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing can be made below a file, not even by root.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let source = Source::Path(harness::profile_copy(dir.path()));
    for _ in 0..2 {
        let storage = open(&source, Some(&blocker.join("cache"))).await;
        assert_eq!(total(&answers(&storage).await), 459);
        assert_eq!(storage.db.aggregate_runs(), runs(1, 0, 0));
    }
}

/// A profile that grew while no server ran: the next server adds the new nodes to the saved
/// counts; one that lost a node is counted again.
#[tokio::test]
async fn a_grown_profile_adds_its_new_nodes_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let folder = harness::profile_copy(dir.path());
    let db = folder.join("database.sqlite");
    let source = Source::Path(folder);
    let before = answers(&open(&source, Some(&cache)).await).await;

    sqlite_append(&db, "data.core.appended.Appended.");
    sqlite_append(&db, "data.core.int.Int.");
    let grown = open(&source, Some(&cache)).await;
    let after = answers(&grown).await;
    assert_eq!(grown.db.aggregate_runs(), runs(0, 1, 0), "only the new rows were counted");
    assert_eq!(total(&after), total(&before) + 2);
    assert_eq!(after[0]["ctime_by_day"]["2031-02-03"], 2);
    assert_eq!(after[0]["types"]["data.core.appended.Appended."], 1);
    assert_eq!(after, recounted(&source).await);

    // One node less and one more: the same count, but not only grown.
    sqlite_delete(&db);
    sqlite_append(&db, "data.core.appended.Appended.");
    let changed = open(&source, Some(&cache)).await;
    let answers_changed = answers(&changed).await;
    assert_eq!(changed.db.aggregate_runs(), runs(1, 0, 0), "counted again");
    assert_eq!(total(&answers_changed), total(&after));
    assert_eq!(answers_changed, recounted(&source).await);
}

/// Another database put in the place of a profile's, with the same ids and more: counted again,
/// not taken for the first one grown (the node of the largest counted id is another one).
#[tokio::test]
async fn another_database_in_the_same_place_is_counted_again() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let folder = dir.path().join("profile");
    harness::copy_tree(&harness::fixture2_profile_path(), &folder);
    let source = Source::Path(folder.clone());
    let small = answers(&open(&source, Some(&cache)).await).await;
    // Ids 1..54 before, 1..459 after: the counts alone would pass for 405 appended nodes.
    std::fs::copy(harness::profile_path().join("database.sqlite"), folder.join("database.sqlite")).unwrap();
    let replaced = open(&source, Some(&cache)).await;
    let answers_replaced = answers(&replaced).await;
    assert_eq!(replaced.db.aggregate_runs(), runs(1, 0, 0));
    assert_eq!((total(&small), total(&answers_replaced)), (54, 459));
    assert_eq!(answers_replaced, recounted(&source).await);
}

/// A profile that grows while it is served (a running AiiDA daemon): the answers follow, from
/// the new rows only; a deletion makes the server count again.
#[tokio::test]
async fn a_served_profile_that_grows_adds_its_new_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let folder = harness::profile_copy(dir.path());
    let db = folder.join("database.sqlite");
    let source = Source::Path(folder);
    // Without a cache folder: the aggregates kept in memory are brought up to date.
    let served = open(&source, None).await;
    let before = answers(&served).await;
    assert_eq!(served.db.aggregate_runs(), runs(1, 0, 0));

    sqlite_append(&db, "data.core.appended.Appended.");
    let after = answers(&served).await;
    assert_eq!(served.db.aggregate_runs(), runs(1, 1, 0));
    assert_eq!(total(&after), total(&before) + 1);
    assert_eq!(after, recounted(&source).await);
    // Unchanged: answered from memory.
    assert_eq!(answers(&served).await, after);
    assert_eq!(served.db.aggregate_runs(), runs(1, 1, 0));

    sqlite_delete(&db);
    let shrunk = answers(&served).await;
    assert_eq!(served.db.aggregate_runs(), runs(2, 1, 0));
    assert_eq!(total(&shrunk), total(&before));
    assert_eq!(shrunk, recounted(&source).await);
}

/// The same on PostgreSQL, in a database of the test's own.
#[tokio::test]
async fn postgres_saves_and_adds_appended_nodes() {
    let Some(shared) = pg::shared() else { return };
    let url = pg::load_fixture(&pg::with_database(shared, "postgres"), true).expect("fixture loads");
    let source = Source::postgres(&url);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let served = open(&source, Some(&cache)).await;
    let before = answers(&served).await;
    assert_eq!(served.db.aggregate_runs(), runs(1, 0, 0));
    let file = cache_files(&cache).pop().expect("a cache file");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("\"identity\":\"postgres ") && !saved.contains("password"), "{saved}");

    let client = pg::connect(&url).await.unwrap();
    let append = "INSERT INTO db_dbnode (uuid, node_type, process_type, label, description, ctime, mtime, \
                  attributes, extras, repository_metadata, dbcomputer_id, user_id) SELECT gen_random_uuid(), \
                  'data.core.appended.Appended.', 'aiida.calculations:appended', '', '', \
                  '2031-02-03 23:30:00-02', now(), '{}', '{}', '{}', NULL, user_id FROM db_dbnode ORDER BY id LIMIT 1";
    client.batch_execute(append).await.unwrap();
    let after = answers(&served).await;
    assert_eq!(served.db.aggregate_runs(), runs(1, 1, 0));
    assert_eq!(total(&after), total(&before) + 1);
    // The UTC day of 23:30 at UTC-2.
    assert_eq!(after[0]["ctime_by_day"]["2031-02-04"], 1);
    assert_eq!(after, recounted(&source).await);
    drop(served);

    // A new server reads the file (brought up to date when the snapshot moved meanwhile).
    let again = open(&source, Some(&cache)).await;
    assert_eq!(answers(&again).await, after);
    let counts = again.db.aggregate_runs();
    assert_eq!((counts.full, counts.appended + counts.loaded), (0, 1), "{counts:?}");

    // The appended node removed again: fewer rows than counted, so counted again.
    client.batch_execute("DELETE FROM db_dbnode WHERE node_type = 'data.core.appended.Appended.'").await.unwrap();
    let shrunk = answers(&again).await;
    assert_eq!(again.db.aggregate_runs().full, 1, "counted again after a deletion");
    assert_eq!(shrunk, before);
    assert_eq!(shrunk, recounted(&source).await);
}

/// The aggregates (one statement; on SQLite the days counted per range of the ctime index and
/// the pairs of nodes without a process type derived from the node type counts) equal the plain
/// `GROUP BY` of each count, on every fixture storage.
#[tokio::test]
async fn the_aggregates_equal_plain_group_by_counts() {
    use aiida_rest::storage::db::{Cell, aggregates};
    let mut sources = vec![
        Source::Fixture(Backend::Archive),
        Source::Fixture(Backend::Profile),
        Source::Fixture2(Backend::Archive),
        Source::Fixture2(Backend::Profile),
    ];
    if harness::postgres_available(harness::Fixture::First) && harness::postgres_available(harness::Fixture::Second) {
        sources.extend([Source::Fixture(Backend::Postgres), Source::Fixture2(Backend::Postgres)]);
    }
    let text = |c: &Cell| c.clone().into_string();
    for source in sources {
        let storage = open(&source, None).await;
        let (db, dialect) = (&storage.db, storage.db.dialect());
        let all = db.aggregates().await.unwrap();
        let rows = async |query| db.fetch_all(query).await.unwrap();
        let pairs =
            |rows: Vec<Vec<Cell>>| -> Vec<_> { rows.iter().map(|r| (text(&r[0]), r[1].as_i64().unwrap())).collect() };
        let mut types = pairs(rows(aggregates::node_types(dialect, None)).await);
        let mut days = pairs(rows(aggregates::ctime_days(dialect, None)).await);
        let mut full: Vec<_> = rows(aggregates::full_types(dialect, None))
            .await
            .iter()
            .map(|r| (text(&r[0]), text(&r[1]), r[2].as_i64().unwrap()))
            .collect();
        types.sort();
        days.sort();
        full.sort();
        assert_eq!(all.types, types, "{source:?}");
        assert_eq!(all.days, days, "{source:?}");
        assert_eq!(all.full, full, "{source:?}");
        assert!(all.full.iter().any(|f| f.1.is_none()) && all.full.iter().any(|f| f.1.is_some()), "{source:?}");
        assert_eq!(all.count, types.iter().map(|t| t.1).sum::<i64>());
        let mut q = db.query();
        q.push("SELECT max(id) FROM db_dbnode");
        assert_eq!(all.max_id, Some(db.fetch_count(q).await.unwrap()), "{source:?}");
    }
}
