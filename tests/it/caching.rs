//! Compression, validators and the answer cache: `Accept-Encoding`, `ETag`/`If-None-Match`,
//! `Cache-Control`, and `POST /querybuilder` answers that follow the database's changes.

use std::io::Read;
use std::path::Path;

use aiida_rest::http::Responder;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::harness::{self, Answer, Backend, DbLimits, Settings};

/// The explorer's landing query (as bench/run.sh sends it).
const LANDING: &str = r#"{"path":[{"orm_base":"node","tag":"node","entity_type":""}],"filters":{"node":{}},"project":{"node":["id","uuid","node_type","label","ctime","mtime"]},"order_by":[],"limit":5000,"offset":0,"distinct":true}"#;

async fn send(app: &Responder, method: &str, uri: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri);
    if !headers.iter().any(|(name, _)| *name == "host") {
        builder = builder.header("host", "127.0.0.1:5000");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn varies_on_encoding(answer: &Answer) -> bool {
    answer.headers.get_all("vary").iter().any(|v| v.to_str().unwrap().to_ascii_lowercase().contains("accept-encoding"))
}

#[tokio::test]
async fn compression_is_negotiated() {
    let app = harness::app(Backend::Archive).await;
    let plain = send(&app, "POST", "/api/v4/querybuilder/", &[], Some(LANDING)).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("content-length"), Some(plain.body.len().to_string()));
    assert!(plain.body.len() > 1024, "the landing answer is worth compressing");

    let gzip = send(&app, "POST", "/api/v4/querybuilder/", &[("accept-encoding", "gzip")], Some(LANDING)).await;
    assert_eq!(gzip.status, 200);
    assert_eq!(gzip.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(gzip.header("content-length"), None);
    assert!(varies_on_encoding(&gzip));
    assert_eq!(gunzip(&gzip.body), plain.body);
    assert_eq!(gzip.header("x-total-count"), plain.header("x-total-count"));
    assert_eq!(gzip.header("access-control-allow-origin").as_deref(), Some("*"));

    let br = send(&app, "POST", "/api/v4/querybuilder/", &[("accept-encoding", "gzip;q=0.5, br")], Some(LANDING)).await;
    assert_eq!(br.header("content-encoding").as_deref(), Some("br"));
    assert!(varies_on_encoding(&br));
    assert!(br.body.len() * 5 < plain.body.len(), "brotli: {} of {} bytes", br.body.len(), plain.body.len());
    assert!(gzip.body.len() * 5 < plain.body.len(), "gzip: {} of {} bytes", gzip.body.len(), plain.body.len());

    // GET answers too, and HEAD keeps the uncompressed length for a client that asks for none.
    let get = send(&app, "GET", "/api/v4/nodes?limit=50", &[], None).await;
    let head = send(&app, "HEAD", "/api/v4/nodes?limit=50", &[], None).await;
    assert_eq!(head.header("content-length"), Some(get.body.len().to_string()));
    assert!(head.body.is_empty());
    let get_gz = send(&app, "GET", "/api/v4/nodes?limit=50", &[("accept-encoding", "gzip")], None).await;
    assert_eq!(get_gz.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(gunzip(&get_gz.body), get.body);

    // Small answers stay as they are.
    let small = send(&app, "GET", "/api/v4/server", &[("accept-encoding", "gzip, br")], None).await;
    assert!(small.body.len() < 1024);
    assert_eq!(small.header("content-encoding"), None);
    assert_eq!(small.header("content-length"), Some(small.body.len().to_string()));
    assert!(!varies_on_encoding(&small));
}

/// A client that names no encoding gets every answer as it is, and a cache in between learns
/// from `Vary` which of them another client would have got compressed.
#[tokio::test]
async fn answers_without_accept_encoding_say_what_they_vary_on() {
    let app = harness::app(Backend::Archive).await;
    for (method, uri, body) in [
        ("POST", "/api/v4/querybuilder/", Some(LANDING)),
        ("GET", "/api/v4/nodes?limit=50", None),
        ("HEAD", "/api/v4/nodes?limit=50", None),
    ] {
        let plain = send(&app, method, uri, &[], body).await;
        assert_eq!(plain.status, 200, "{method} {uri}");
        assert_eq!(plain.header("content-encoding"), None, "{method} {uri}");
        assert!(plain.header("content-length").is_some(), "{method} {uri}");
        assert!(varies_on_encoding(&plain), "{method} {uri}: {:?}", plain.headers);
        let single = plain.headers.get_all("vary").iter().filter(|v| v.to_str().unwrap().contains("accept-encoding"));
        assert_eq!(single.count(), 1, "{method} {uri}");
    }
    for uri in ["/api/v4/server", "/api/v4/nodes/99999999"] {
        let small = send(&app, "GET", uri, &[], None).await;
        assert!(!varies_on_encoding(&small), "{uri}");
    }
}

/// Large answers are compressed once and sent with their exact length.
#[tokio::test]
async fn large_answers_keep_their_compressed_text() {
    let app = harness::app(Backend::Archive).await;
    let everything = LANDING.replace(r#"["id","uuid","node_type","label","ctime","mtime"]"#, r#"["*"]"#);
    let plain = send(&app, "POST", "/api/v4/querybuilder/", &[], Some(&everything)).await;
    assert!(plain.body.len() as u64 >= aiida_rest::http::compress::MEMO_MIN_SIZE, "{} bytes", plain.body.len());
    let accept = [("accept-encoding", "gzip, deflate, br, zstd")];
    let first = send(&app, "POST", "/api/v4/querybuilder/", &accept, Some(&everything)).await;
    let second = send(&app, "POST", "/api/v4/querybuilder/", &accept, Some(&everything)).await;
    for answer in [&first, &second] {
        assert_eq!(answer.header("content-encoding").as_deref(), Some("br"));
        assert_eq!(answer.header("content-length"), Some(answer.body.len().to_string()));
        assert!(varies_on_encoding(answer));
        let mut text = Vec::new();
        brotli::BrotliDecompress(&mut &answer.body[..], &mut text).unwrap();
        assert_eq!(text, plain.body);
    }
    let gzip = send(&app, "POST", "/api/v4/querybuilder/", &[("accept-encoding", "gzip")], Some(&everything)).await;
    assert_eq!(gzip.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(gzip.header("content-length"), Some(gzip.body.len().to_string()));
    assert_eq!(gunzip(&gzip.body), plain.body);
    let head = send(&app, "HEAD", "/api/v4/nodes?limit=50", &[("accept-encoding", "br")], None).await;
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn archive_answers_are_validated_and_cacheable() {
    let app = harness::app(Backend::Archive).await;
    let first = send(&app, "GET", "/api/v4/nodes?limit=5", &[], None).await;
    assert_eq!(first.status, 200);
    let tag = first.header("etag").expect("an ETag");
    assert!(tag.starts_with("W/\""), "{tag}");
    assert_eq!(first.header("cache-control").as_deref(), Some("public, max-age=3600"));

    let again = send(&app, "GET", "/api/v4/nodes?limit=5", &[("if-none-match", &tag)], None).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(tag.clone()));
    assert_eq!(again.header("access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(again.header("content-length"), None);
    let head = send(&app, "HEAD", "/api/v4/nodes?limit=5", &[("if-none-match", &tag)], None).await;
    assert_eq!(head.status, 304);
    assert_eq!(head.header("content-length"), None, "a 304 carries no length");
    assert!(varies_on_encoding(&head));

    // Another answer, another tag; a compressed answer keeps the tag of its content.
    let other = send(&app, "GET", "/api/v4/nodes?limit=6", &[("if-none-match", &tag)], None).await;
    assert_eq!(other.status, 200);
    assert_ne!(other.header("etag"), Some(tag.clone()));
    let gz =
        send(&app, "GET", "/api/v4/nodes?limit=5", &[("accept-encoding", "gzip"), ("if-none-match", "\"x\"")], None)
            .await;
    assert_eq!((gz.status, gz.header("etag")), (200, Some(tag.clone())));

    // Never a 304 for POST.
    let post = send(&app, "POST", "/api/v4/querybuilder/", &[], Some(LANDING)).await;
    let post_again = send(&app, "POST", "/api/v4/querybuilder/", &[("if-none-match", "*")], Some(LANDING)).await;
    assert_eq!((post.status, post_again.status), (200, 200));
    assert_eq!(post.body, post_again.body);
    assert_eq!(post_again.header("etag"), None);

    // Errors are not tagged.
    let missing = send(&app, "GET", "/api/v4/nodes/00000000-0000-0000-0000-000000000000", &[], None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("etag"), None);
}

/// Sets the label of the node with the smallest id, as another program writing the profile would.
fn relabel_first_node(root: &Path, label: &str) {
    let db = rusqlite::Connection::open(root.join("database.sqlite")).unwrap();
    let changed =
        db.execute("UPDATE db_dbnode SET label = ?1 WHERE id = (SELECT min(id) FROM db_dbnode)", [label]).unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn profile_answers_follow_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = harness::profile_copy(dir.path());
    let app = harness::build(root.as_path(), Settings::default(), DbLimits::default()).await;
    let uri = "/api/v4/nodes?orderby=id&limit=3";

    let first = send(&app, "GET", uri, &[], None).await;
    let tag = first.header("etag").expect("an ETag");
    assert_eq!(first.header("cache-control").as_deref(), Some("no-cache"));
    let again = send(&app, "GET", uri, &[("if-none-match", &tag)], None).await;
    assert_eq!(again.status, 304);
    let landing = send(&app, "POST", "/api/v4/querybuilder/", &[], Some(LANDING)).await;
    assert_eq!(landing.status, 200);
    assert!(!String::from_utf8_lossy(&landing.body).contains("relabelled-by-the-test"));

    relabel_first_node(&root, "relabelled-by-the-test");

    let changed = send(&app, "GET", uri, &[("if-none-match", &tag)], None).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(tag));
    assert_eq!(changed.json()["data"]["nodes"][0]["label"], "relabelled-by-the-test");
    // The kept querybuilder answer is not served for the changed database.
    let landing = send(&app, "POST", "/api/v4/querybuilder/", &[], Some(LANDING)).await;
    assert!(String::from_utf8_lossy(&landing.body).contains("relabelled-by-the-test"));
    let repeated = send(&app, "POST", "/api/v4/querybuilder/", &[], Some(LANDING)).await;
    assert_eq!(repeated.body, landing.body);
}

/// The kept answer is the answer: the envelope follows the request (its host).
#[tokio::test]
async fn kept_answers_echo_their_request() {
    let app = harness::app(Backend::Archive).await;
    let a = send(&app, "POST", "/api/v4/querybuilder/", &[], Some(LANDING)).await;
    let b = send(&app, "POST", "/api/v4/querybuilder/", &[("host", "example.org:8080")], Some(LANDING)).await;
    assert_eq!(a.json()["url"], "http://127.0.0.1:5000/api/v4/querybuilder/");
    assert_eq!(b.json()["url"], "http://example.org:8080/api/v4/querybuilder/");
    assert_eq!(a.json()["data"], b.json()["data"]);
    assert_eq!(a.header("x-total-count"), b.header("x-total-count"));
}
