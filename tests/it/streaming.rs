//! Repository files are streamed: a file of hundreds of megabytes goes through the router in
//! constant memory.

use std::io::Write;
use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::harness::{self, DbLimits, Settings};

const SIZE: usize = 256 << 20;
const KEY: &str = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592";

/// Peak resident memory of this process so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A profile folder whose node 1 holds one large file, `big.bin`, stored as a loose object.
fn make_profile(dir: &Path) {
    std::fs::copy(harness::profile_path().join("database.sqlite"), dir.join("database.sqlite")).unwrap();
    let conn = rusqlite::Connection::open(dir.join("database.sqlite")).unwrap();
    conn.execute(
        "UPDATE db_dbnode SET repository_metadata = ?1 WHERE id = 1",
        [format!("{{\"o\": {{\"big.bin\": {{\"k\": \"{KEY}\"}}}}}}")],
    )
    .unwrap();
    drop(conn);
    let container = dir.join("container");
    std::fs::create_dir_all(container.join("loose").join(&KEY[..2])).unwrap();
    std::fs::create_dir_all(container.join("packs")).unwrap();
    std::fs::copy(harness::profile_path().join("container/config.json"), container.join("config.json")).unwrap();
    std::fs::copy(harness::profile_path().join("container/packs.idx"), container.join("packs.idx")).unwrap();
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(container.join("loose").join(&KEY[..2]).join(&KEY[2..])).unwrap(),
    );
    let block: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    for _ in 0..SIZE / block.len() {
        file.write_all(&block).unwrap();
    }
    file.flush().unwrap();
}

/// Runs in a process of its own: the other tests of this binary would move its peak memory.
#[tokio::test(flavor = "multi_thread")]
async fn large_files_stream_in_constant_memory() {
    if !harness::alone("streaming::large_files_stream_in_constant_memory") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_profile(dir.path());
    let app = harness::build(dir.path(), Settings::default(), DbLimits::default()).await;
    let uuid = "45abcd9f-342a-4102-8da2-0d9dfc222d4f";
    let request =
        Request::get(format!("/api/v4/nodes/{uuid}/repo/contents?filename=%22big.bin%22")).body(Body::empty()).unwrap();
    let before = peak_rss();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], SIZE.to_string());
    assert_eq!(response.headers()["content-disposition"], "attachment; filename=\"big.bin\"");
    let mut body = response.into_body();
    let (mut total, mut largest, mut checksum) = (0usize, 0usize, 0u64);
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        let Some(data) = frame.data_ref() else { continue };
        largest = largest.max(data.len());
        checksum = data.iter().fold(checksum, |acc, b| acc.wrapping_add(*b as u64));
        total += data.len();
    }
    let growth = peak_rss().saturating_sub(before);
    let expected: u64 = (0..SIZE).map(|i| ((i % (1 << 20)) % 251) as u64).sum();
    eprintln!("streamed {total} bytes in chunks of at most {largest}; peak memory grew by {growth} bytes");
    assert_eq!(total, SIZE);
    assert_eq!(checksum, expected);
    assert!(largest <= aiida_rest::storage::repository::STREAM_CHUNK_SIZE);
    assert!(growth < 32 << 20, "peak memory grew by {growth} bytes while streaming {SIZE} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_object_is_a_404_and_paths_stay_inside_the_node() {
    let dir = tempfile::tempdir().unwrap();
    make_profile(dir.path());
    // The metadata still names the object, but the container lost it.
    std::fs::remove_file(dir.path().join("container/loose").join(&KEY[..2]).join(&KEY[2..])).unwrap();
    let app = harness::build(dir.path(), Settings::default(), DbLimits::default()).await;
    let base = "/api/v4/nodes/45abcd9f-342a-4102-8da2-0d9dfc222d4f/repo";
    let missing = harness::get(&app, &format!("{base}/contents?filename=%22big.bin%22")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.json()["message"].as_str().unwrap().contains(KEY));
    for bad in ["%22../big.bin%22", "%22/etc/passwd%22", "%22a/../../b%22", "%22a%00b%22"] {
        let answer = harness::get(&app, &format!("{base}/contents?filename={bad}")).await;
        assert_eq!(answer.status, 400, "{bad}: {}", String::from_utf8_lossy(&answer.body));
        let listing = harness::get(&app, &format!("{base}/list?filename={bad}")).await;
        assert_eq!(listing.status, 400, "{bad}");
    }
}
