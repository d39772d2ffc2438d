//! Opening storage: what is accepted, what is refused with a clear message, and proof that the
//! user's files are never touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::harness::{self, Backend, DbLimits, Settings};

/// Every file below `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

async fn open_err(path: &Path) -> String {
    match harness::open(path, DbLimits::default()).await {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serving_never_touches_the_storage() {
    let profile = harness::profile_path();
    let archive = harness::archive_path();
    let before = (snapshot(&profile), std::fs::metadata(&archive).unwrap().modified().unwrap());
    for backend in [Backend::Archive, Backend::Profile] {
        let app = harness::app(backend).await;
        for uri in [
            "/api/v4/nodes?limit=50&attributes=true",
            "/api/v4/nodes/bda9c7d7-ddb9-45fe-9094-c679c5f06782/repo/contents?filename=%22aiida.out%22",
            "/api/v4/nodes/14be297a-be3b-47d9-9293-359076b70752/repo/contents?filename=%22Fe.pbe-nc-fixture.UPF%22",
            "/api/v4/groups",
        ] {
            assert_eq!(harness::get(&app, uri).await.status, 200, "{uri}");
        }
    }
    let after = (snapshot(&profile), std::fs::metadata(&archive).unwrap().modified().unwrap());
    assert_eq!(before, after, "files were created or modified next to the storage");
}

#[tokio::test]
async fn bad_storage_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.aiida");
    assert!(open_err(&missing).await.contains("no such file"));

    let garbage = dir.path().join("garbage.aiida");
    std::fs::write(&garbage, b"this is not a zip file").unwrap();
    assert!(open_err(&garbage).await.contains("not a valid .aiida archive"));

    let empty_dir = dir.path().join("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    assert!(open_err(&empty_dir).await.contains("not an AiiDA storage folder"));

    // A SQLite file that is not an AiiDA database.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let conn = rusqlite::Connection::open(other.join("database.sqlite")).unwrap();
    conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    drop(conn);
    assert!(open_err(&other).await.contains("not an AiiDA database"));

    // A text file where the database should be.
    let text = dir.path().join("text");
    std::fs::create_dir(&text).unwrap();
    std::fs::write(text.join("database.sqlite"), "hello").unwrap();
    let msg = open_err(&text).await;
    assert!(msg.contains("database.sqlite"), "{msg}");
}

#[tokio::test]
async fn unsupported_versions_name_found_and_supported() {
    let dir = tempfile::tempdir().unwrap();
    // An archive whose metadata claims an older version.
    let path = dir.path().join("old.aiida");
    let file = std::fs::File::create(&path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file("metadata.json", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut zip, br#"{"export_version": "0.9"}"#).unwrap();
    zip.finish().unwrap();
    let msg = open_err(&path).await;
    assert!(msg.contains("'0.9'") && msg.contains("main_0001"), "{msg}");

    // A profile database at an unknown schema revision.
    let profile = dir.path().join("profile");
    std::fs::create_dir(&profile).unwrap();
    std::fs::copy(harness::profile_path().join("database.sqlite"), profile.join("database.sqlite")).unwrap();
    let conn = rusqlite::Connection::open(profile.join("database.sqlite")).unwrap();
    conn.execute("UPDATE alembic_version SET version_num = 'main_0099'", []).unwrap();
    drop(conn);
    let msg = open_err(&profile).await;
    assert!(msg.contains("main_0099") && msg.contains("main_0002"), "{msg}");
}

#[test]
fn the_command_exits_2_with_one_line() {
    let out =
        crate::harness::server_command().args(["serve", "/nonexistent/file.aiida", "--port", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/file.aiida"), "{stderr}");
}

#[test]
fn missing_profile_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::harness::server_command()
        .args(["serve", "--profile", "nope", "--port", "0"])
        .env("AIIDA_PATH", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn wal_mode_databases_get_no_side_files() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path();
    std::fs::copy(harness::profile_path().join("database.sqlite"), profile.join("database.sqlite")).unwrap();
    let container = harness::profile_path().join("container");
    std::os::unix::fs::symlink(&container, profile.join("container")).unwrap();
    let conn = rusqlite::Connection::open(profile.join("database.sqlite")).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    let before: Vec<_> = std::fs::read_dir(profile).unwrap().map(|e| e.unwrap().file_name()).collect();
    let app = harness::build(profile, Settings::default(), DbLimits::default()).await;
    assert_eq!(harness::get(&app, "/api/v4/nodes?limit=3").await.status, 200);
    let after: Vec<_> = std::fs::read_dir(profile).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_counts_follow_changes_of_a_live_profile() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path();
    std::fs::copy(harness::profile_path().join("database.sqlite"), profile.join("database.sqlite")).unwrap();
    std::os::unix::fs::symlink(harness::profile_path().join("container"), profile.join("container")).unwrap();
    let app = harness::build(profile, Settings::default(), DbLimits::default()).await;
    let count = |answer: harness::Answer| answer.header("x-total-count").unwrap().parse::<i64>().unwrap();
    let before = count(harness::get(&app, "/api/v4/nodes?limit=1").await);
    let stats = harness::get(&app, "/api/v4/nodes/statistics").await.json();
    assert_eq!(count(harness::get(&app, "/api/v4/nodes?limit=1").await), before);
    // Another process (AiiDA) adds a node.
    let conn = rusqlite::Connection::open(profile.join("database.sqlite")).unwrap();
    conn.execute(
        "INSERT INTO db_dbnode (uuid, node_type, process_type, label, description, ctime, mtime, attributes, extras, \
         repository_metadata, dbcomputer_id, user_id) VALUES ('00000000-0000-4000-8000-000000000001', \
         'data.core.int.Int.', NULL, '', '', '2024-06-01 00:00:00.000000', '2024-06-01 00:00:00.000000', '{}', '{}', \
         '{}', NULL, 1)",
        [],
    )
    .unwrap();
    drop(conn);
    assert_eq!(count(harness::get(&app, "/api/v4/nodes?limit=1").await), before + 1);
    let after = harness::get(&app, "/api/v4/nodes/statistics").await.json();
    assert_eq!(after["data"]["total"].as_i64().unwrap(), stats["data"]["total"].as_i64().unwrap() + 1);
}
