//! Damaged storage: repository files that are cut short or corrupt answer a JSON error naming
//! the object (or, when the damage shows only after the headers went out, an aborted body),
//! are logged, and do not flood the log; a damaged database is reported as damaged at start.
//!
//! Each test damages a copy of a fixture in a temporary folder.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aiida_rest::http::Responder;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::harness::{self, DbLimits, Settings, Source, pg};

/// The node (UUID) and file path under which the fixture stores the object `key`.
fn file_of(key: &str) -> (String, String) {
    fn find(dir: &serde_json::Value, key: &str, prefix: &str) -> Option<String> {
        for (name, entry) in dir.get("o")?.as_object()? {
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            if entry.get("k").and_then(|k| k.as_str()) == Some(key) {
                return Some(path);
            }
            if let Some(found) = find(entry, key, &path) {
                return Some(found);
            }
        }
        None
    }
    let conn = rusqlite::Connection::open_with_flags(
        harness::profile_path().join("database.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn.prepare("SELECT uuid, repository_metadata FROM db_dbnode ORDER BY id").unwrap();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))).unwrap();
    for row in rows {
        let (uuid, metadata) = row.unwrap();
        let metadata: serde_json::Value = serde_json::from_str(metadata.as_deref().unwrap_or("{}")).unwrap();
        if let Some(path) = find(&metadata, key, "") {
            return (uuid, path);
        }
    }
    panic!("no node holds object {key}")
}

/// Where the fixture pack index puts `key`: (offset, length, compressed).
fn packed(container: &Path, key: &str) -> (u64, u64, bool) {
    let conn =
        rusqlite::Connection::open_with_flags(container.join("packs.idx"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(r#"SELECT "offset", length, compressed FROM db_object WHERE hashkey = ?1"#, [key], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get(2)?))
    })
    .unwrap()
}

fn contents_uri(key: &str) -> String {
    let (uuid, path) = file_of(key);
    format!("/api/v4/nodes/{uuid}/repo/contents?filename=%22{path}%22")
}

/// The answer for a damaged object: a 500 whose JSON message names the object and the node.
async fn assert_damaged_answer(app: &Responder, key: &str) {
    let uri = contents_uri(key);
    let answer = harness::get(app, &uri).await;
    assert_eq!(answer.status, 500, "{uri}: {}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type").as_deref(), Some("application/json"));
    let message = answer.json()["message"].as_str().unwrap().to_string();
    let (uuid, _) = file_of(key);
    assert!(message.contains(key) && message.contains(&uuid) && message.contains("damaged"), "{message}");
    // No paths of the server's files.
    assert!(!message.contains("/tmp") && !message.contains("packs/"), "{message}");
}

async fn assert_intact(app: &Responder, key: &str, size: usize) {
    let answer = harness::get(app, &contents_uri(key)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body.len(), size);
}

// Objects of the fixture pack (packs/0), in pack order: 03cc38 is stored plain (57 bytes, at
// 19881), the ones after it compressed; 93eec5 is compressed near the start.
const PLAIN_57: &str = "03cc383026d8c7f300b221213e8114b5c2dd0b34dc3ea9dc361c705cc459dfcd";
const COMPRESSED_LAST: &str = "a61bfdf319fb5e9fce9279e8ba2c87e2dff827186cd5e9ca0996d14342de3c92";
const COMPRESSED_FIRST: &str = "93eec54e1a9bedf9c19a7e9f5eb5d93bbc2483be84f1cecd9149803a57c25d13";
const COMPRESSED_MIDDLE: &str = "3b69fdbe66ad98b70aeaf18df53af1ba2ddb4aab247555773dd8f84d1f4b894c";
const PLAIN_34: &str = "e16c211ab1ff5eaf628c383378b69d9c1ab4c2f19c033d2dd1d6768be31d069e";
const PLAIN_5760: &str = "6968f51064c996e9daa7371927e3cc2e57faa3aac56055de6ea4adb450453041";

/// Truncated pack file: the objects past the cut are a JSON 500 naming them (not a 200 whose
/// body stops short of its `Content-Length`); the objects before it are served.
#[tokio::test]
async fn truncated_pack() {
    let dir = tempfile::tempdir().unwrap();
    let root = harness::profile_copy(dir.path());
    let container = root.join("container");
    let (offset, _, compressed) = packed(&container, PLAIN_57);
    assert!(!compressed);
    OpenOptions::new().write(true).open(container.join("packs/0")).unwrap().set_len(offset + 20).unwrap();
    let app = harness::build(root.as_path(), Settings::default(), DbLimits::default()).await;
    assert_damaged_answer(&app, PLAIN_57).await;
    assert_damaged_answer(&app, COMPRESSED_LAST).await;
    assert_intact(&app, PLAIN_5760, 5760).await;
}

/// Corrupt compressed objects: a damaged zlib header, and damage inside the deflate stream.
#[tokio::test]
async fn corrupt_compressed_objects() {
    let dir = tempfile::tempdir().unwrap();
    let root = harness::profile_copy(dir.path());
    let container = root.join("container");
    let pack = OpenOptions::new().write(true).open(container.join("packs/0")).unwrap();
    let (offset, _, compressed) = packed(&container, COMPRESSED_FIRST);
    assert!(compressed);
    pack.write_all_at(&[0xff, 0xff], offset).unwrap();
    let (offset, length, compressed) = packed(&container, COMPRESSED_MIDDLE);
    assert!(compressed);
    pack.write_all_at(&[0x55; 64], offset + length / 2).unwrap();
    drop(pack);
    let app = harness::build(root.as_path(), Settings::default(), DbLimits::default()).await;
    assert_damaged_answer(&app, COMPRESSED_FIRST).await;
    assert_damaged_answer(&app, COMPRESSED_MIDDLE).await;
    assert_intact(&app, PLAIN_5760, 5760).await;
}

/// The payload's offset and compressed size of the zip entry `name`.
fn zip_entry(path: &Path, name: &str) -> (u64, u64, u64) {
    let mut zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
    let entry = zip.by_name(name).unwrap();
    (entry.header_start(), entry.data_start(), entry.compressed_size())
}

/// Archive members with a bad CRC (payload changed) or a damaged local header.
#[tokio::test]
async fn corrupt_archive_members() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("demo.aiida");
    fs::copy(harness::archive_path(), &archive).unwrap();
    let file = OpenOptions::new().write(true).open(&archive).unwrap();
    let (_, data, size) = zip_entry(&archive, &format!("repo/{PLAIN_57}"));
    let mut payload = vec![0u8; size as usize];
    File::open(&archive).unwrap().read_exact_at(&mut payload, data).unwrap();
    payload.iter_mut().for_each(|b| *b = !*b);
    file.write_all_at(&payload, data).unwrap();
    let (header, _, _) = zip_entry(&archive, &format!("repo/{COMPRESSED_LAST}"));
    file.write_all_at(b"XXXX", header).unwrap();
    // Only the CRC-32 recorded in the central directory differs from the payload's.
    let central = {
        let mut zip = zip::ZipArchive::new(File::open(&archive).unwrap()).unwrap();
        zip.by_name(&format!("repo/{PLAIN_34}")).unwrap().central_header_start()
    };
    let mut crc = [0u8; 4];
    File::open(&archive).unwrap().read_exact_at(&mut crc, central + 16).unwrap();
    file.write_all_at(&crc.map(|b| b ^ 0x5a), central + 16).unwrap();
    drop(file);
    let app = harness::build(archive.as_path(), Settings::default(), DbLimits::default()).await;
    assert_damaged_answer(&app, PLAIN_57).await;
    assert_damaged_answer(&app, COMPRESSED_LAST).await;
    assert_damaged_answer(&app, PLAIN_34).await;
    assert_intact(&app, PLAIN_5760, 5760).await;
}

/// Collects what the `tracing` macros of this thread write while `f` runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Sends the log lines of this thread here until the guard is dropped.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn lines(&self, containing: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().filter(|l| l.contains(containing)).map(str::to_string).collect()
    }
}

/// Damage met only after the headers went out (here: the pack is cut while the file is being
/// downloaded) aborts the body, so the client cannot take it for the whole file, and is logged
/// at error level, once for many such downloads. Later requests are refused before the
/// headers, with one more log line for all of them.
#[tokio::test]
async fn damage_while_streaming_aborts_and_logs_once() {
    const SIZE: u64 = 300_000;
    let key = "7e57ab1e".repeat(8);
    let dir = tempfile::tempdir().unwrap();
    let root = harness::profile_copy(dir.path());
    let container = root.join("container");
    // A large object appended to the pack, as the only file of node 1.
    let pack_path = container.join("packs/0");
    let offset = fs::metadata(&pack_path).unwrap().len();
    let content: Vec<u8> = (0..SIZE).map(|i| (i % 253) as u8).collect();
    OpenOptions::new().append(true).open(&pack_path).unwrap().write_all(&content).unwrap();
    let index = rusqlite::Connection::open(container.join("packs.idx")).unwrap();
    index
        .execute(
            r#"INSERT INTO db_object (hashkey, compressed, size, "offset", length, pack_id) VALUES (?1, 0, ?2, ?3, ?2, 0)"#,
            rusqlite::params![key, SIZE as i64, offset as i64],
        )
        .unwrap();
    drop(index);
    let db = rusqlite::Connection::open(root.join("database.sqlite")).unwrap();
    let uuid: String = db.query_row("SELECT uuid FROM db_dbnode WHERE id = 1", [], |r| r.get(0)).unwrap();
    db.execute(
        "UPDATE db_dbnode SET repository_metadata = ?1 WHERE id = 1",
        [format!(r#"{{"o": {{"big.bin": {{"k": "{key}"}}}}}}"#)],
    )
    .unwrap();
    drop(db);
    let app = harness::build(root.as_path(), Settings::default(), DbLimits::default()).await;
    let uri = format!("/api/v4/nodes/{uuid}/repo/contents?filename=%22big.bin%22");
    let whole = harness::get(&app, &uri).await;
    assert_eq!((whole.status, whole.body == content), (200, true));

    let log = Captured::default();
    let _guard = log.install();
    // Five downloads have their headers; then the pack is cut inside their second chunk.
    let mut started = Vec::new();
    for _ in 0..5 {
        let response = app.clone().oneshot(Request::get(&uri).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-length"], SIZE.to_string().as_str());
        started.push(response);
    }
    OpenOptions::new().write(true).open(&pack_path).unwrap().set_len(offset + 100_000).unwrap();
    for response in started {
        assert!(response.into_body().collect().await.is_err(), "the body ended cleanly");
    }
    let aborted = log.lines("aborted after the headers were sent");
    assert_eq!(aborted.len(), 1, "{aborted:#?}");
    assert!(aborted[0].contains("ERROR") && aborted[0].contains(&key), "{}", aborted[0]);

    // Now the damage is found before the headers: a JSON 500 every time, logged once.
    for _ in 0..50 {
        let answer = harness::get(&app, &uri).await;
        assert_eq!(answer.status, 500, "{}", String::from_utf8_lossy(&answer.body));
        assert!(answer.json()["message"].as_str().unwrap().contains(&key));
    }
    let refused = log.lines("repository object damaged");
    assert_eq!(refused.len(), 2, "{refused:#?}");
}

/// On the wire: an archive member whose CRC fails only at its end (after the first chunk went
/// out with the headers) ends the connection before `Content-Length` bytes, so no client can
/// take the file for complete.
#[tokio::test]
async fn crc_failure_at_the_end_closes_the_connection_short() {
    use std::io::Read;
    const SIZE: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("big.aiida");
    // The demo archive with the object PLAIN_5760 replaced by a large stored one.
    let name = format!("repo/{PLAIN_5760}");
    {
        let mut source = zip::ZipArchive::new(File::open(harness::archive_path()).unwrap()).unwrap();
        let mut out = zip::ZipWriter::new(File::create(&archive).unwrap());
        for i in 0..source.len() {
            let entry = source.by_index_raw(i).unwrap();
            if entry.name() != name {
                out.raw_copy_file(entry).unwrap();
            }
        }
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        out.start_file(name.as_str(), options).unwrap();
        out.write_all(&(0..SIZE).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).unwrap();
        out.finish().unwrap();
    }
    let (_, data, _) = zip_entry(&archive, &name);
    let file = OpenOptions::new().write(true).open(&archive).unwrap();
    file.write_all_at(b"\xff", data + 150_000).unwrap();
    drop(file);

    let app = harness::build(archive.as_path(), Settings::default(), DbLimits::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let options = aiida_rest::http::serve::ServeOptions::default();
    tokio::spawn(aiida_rest::http::serve::serve(listener, app, options, std::future::pending()));
    let (uuid, path) = file_of(PLAIN_5760);
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            stream,
            "GET /api/v4/nodes/{uuid}/repo/contents?filename=%22{path}%22 HTTP/1.1\r\nHost: {address}\r\n\r\n"
        )
        .unwrap();
        let mut answer = Vec::new();
        // Keep-alive was asked for: only a failed response ends the connection.
        stream.read_to_end(&mut answer).map(|_| answer)
    })
    .await
    .unwrap()
    .expect("the server closes the connection");
    // How much of the answer gets out before the damage is read depends on scheduling (hyper
    // may not have flushed the head and first chunk yet); what must never happen is a
    // complete answer.
    let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) else {
        assert!(answer.len() < SIZE, "{} bytes without a complete head", answer.len());
        return;
    };
    let head = String::from_utf8_lossy(&answer[..split]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {SIZE}")), "{head}");
    let body = answer.len() - split;
    assert!(body < SIZE, "{body} body bytes of {SIZE}: the damaged answer ended as if complete");
}

/// Overwrites the root page of `table` in the SQLite file at `path` with zeros.
fn zero_root_page(path: &Path, table: &str) {
    let (page_size, root_page): (i64, i64) = {
        let conn = rusqlite::Connection::open(path).unwrap();
        let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let root_page =
            conn.query_row("SELECT rootpage FROM sqlite_master WHERE name = ?1", [table], |r| r.get(0)).unwrap();
        (page_size, root_page)
    };
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&vec![0u8; page_size as usize], (root_page - 1) as u64 * page_size as u64).unwrap();
}

/// Other damage found at start: a table's root page, the file header.
#[tokio::test]
async fn damaged_database_file() {
    for (case, expected) in [("db_dbnode", "db_dbnode"), ("header", "first page")] {
        let dir = tempfile::tempdir().unwrap();
        let db_path = dir.path().join("database.sqlite");
        fs::copy(harness::profile_path().join("database.sqlite"), &db_path).unwrap();
        if case == "header" {
            OpenOptions::new().write(true).open(&db_path).unwrap().write_all_at(&[0x42; 16], 0).unwrap();
        } else {
            zero_root_page(&db_path, case);
        }
        let err = harness::open(dir.path(), DbLimits::default()).await.err().expect("a damaged database is refused");
        let message = err.to_string();
        assert!(message.contains("damaged") && message.contains(expected), "{case}: {message}");
        assert!(message.starts_with(&db_path.display().to_string()), "{message}");
    }
}

/// A damaged database file is reported at start as damaged (with its path), not as a
/// missing table, and the program exits with status 2.
#[tokio::test]
async fn damaged_alembic_version_page() {
    let dir = tempfile::tempdir().unwrap();
    let root = harness::profile_copy(dir.path());
    let db_path = root.join("database.sqlite");
    zero_root_page(&db_path, "alembic_version");

    let err = harness::open(root.as_path(), DbLimits::default()).await.err().expect("a damaged database is refused");
    let message = err.to_string();
    assert!(message.contains("damaged") && message.contains("alembic_version"), "{message}");
    assert!(message.contains(&db_path.display().to_string()), "{message}");
    assert!(!message.contains("no alembic_version table"), "{message}");

    // The command says the same and exits with status 2.
    let mut child = crate::harness::server_command()
        .arg("serve")
        .arg(&root)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server started on a damaged database");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("damaged"), "{stderr}");
}

/// A PostgreSQL outage under load is logged when it starts and when it ends, not once (or
/// twice) per request: 300 requests answered 503 write a handful of lines.
#[tokio::test]
async fn postgresql_outage_does_not_flood_the_log() {
    let cluster = match pg::Cluster::start() {
        Ok(cluster) => cluster,
        Err(why) => return pg::unavailable(&why),
    };
    let url = pg::load_fixture(&cluster.admin_url(), false).expect("fixture loads");
    let limits = DbLimits { max_connections: 3, statement_timeout: Duration::from_secs(10) };
    let app = harness::build(Source::postgres(&url), Settings::default(), limits).await;
    let uri = "/api/v4/nodes?limit=3&orderby=-id";
    assert_eq!(harness::get(&app, uri).await.status, 200);

    let log = Captured::default();
    let _guard = log.install();
    cluster.stop().expect("pg_ctl stop");
    for _ in 0..300 {
        assert_eq!(harness::get(&app, uri).await.status, 503);
    }
    let while_down = log.lines("");
    assert!(while_down.len() <= 6, "{} lines for 300 failed requests: {while_down:#?}", while_down.len());
    assert_eq!(log.lines("PostgreSQL unreachable").len(), 1, "{while_down:#?}");

    cluster.start_again().expect("pg_ctl start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while harness::get(&app, uri).await.status != 200 {
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("logged while PostgreSQL was down and back: {:#?}", log.lines(""));
    let back = log.lines("PostgreSQL reachable again");
    assert_eq!(back.len(), 1, "{:#?}", log.lines(""));
    assert!(back[0].contains("queries answered 503"), "{}", back[0]);
}
