//! Behaviour where aiida-rest deliberately differs from the reference (its documented intent
//! instead of its failures), and HTTP details the golden files do not show.

use serde_json::Value;

use crate::harness::{self, Backend, get, request};

async fn both() -> Vec<aiida_rest::http::Responder> {
    vec![harness::app(Backend::Archive).await, harness::app(Backend::Profile).await]
}

fn ids(body: &Value, label: &str) -> Vec<i64> {
    body["data"][label].as_array().unwrap().iter().map(|n| n["id"].as_i64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn datetime_filters_work_with_every_operator() {
    for app in both().await {
        let all = get(&app, "/api/v4/nodes?limit=400").await;
        let total: usize = all.header("x-total-count").unwrap().parse().unwrap();
        let after = get(&app, "/api/v4/nodes?ctime>2024-05-10&limit=400").await;
        let before = get(&app, "/api/v4/nodes?ctime<=2024-05-10&limit=400").await;
        assert_eq!(after.status, 200);
        let n_after: usize = after.header("x-total-count").unwrap().parse().unwrap();
        let n_before: usize = before.header("x-total-count").unwrap().parse().unwrap();
        assert!(n_after > 0 && n_before > 0);
        assert_eq!(n_after + n_before, total);
        // An offset is honoured: 10:00+02:00 is 08:00 UTC.
        let a = get(&app, "/api/v4/nodes?ctime>=2024-05-01T10:00+02:00&ctime<2024-05-01T09:00&limit=5").await;
        assert_eq!(ids(&a.json(), "nodes"), vec![1]);
        let day = get(&app, "/api/v4/nodes?ctime=2024-05-01&limit=400").await;
        assert!(ids(&day.json(), "nodes").contains(&1));
        let bad = get(&app, "/api/v4/nodes?ctime=2024-13-01").await;
        assert_eq!(bad.status, 400);
        let precision = get(&app, "/api/v4/nodes?ctime=2024-05-01T10:00:00+02:00").await;
        assert_eq!(precision.status, 400);
        assert_eq!(precision.json()["message"], "The datetime resolution is not valid.");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn users_by_id_and_no_emails() {
    for app in both().await {
        let one = get(&app, "/api/v4/users/2").await;
        assert_eq!(one.status, 200);
        let body = one.json();
        assert_eq!(body["data"]["users"][0]["first_name"], "Marie");
        assert_eq!(body["id"], "2");
        assert_eq!(get(&app, "/api/v4/users/99").await.status, 404);
        let all = get(&app, "/api/v4/users").await;
        let text = String::from_utf8(all.body.clone()).unwrap();
        assert!(!text.contains('@'), "an email leaked: {text}");
        // Filtering or ordering on addresses would reveal them one character at a time.
        for uri in ["/api/v4/users?email=like=%22j%25%22", "/api/v4/users?orderby=email"] {
            let refused = get(&app, uri).await;
            assert_eq!(refused.status, 400, "{uri}");
            assert!(refused.json()["message"].as_str().unwrap().contains("private"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_400_json() {
    let app = harness::app(Backend::Archive).await;
    for (uri, needle) in [
        ("/api/v4/nodes?limit=abc", "Limit value must be an integer"),
        ("/api/v4/nodes?nonexistent=1", "valid columns are"),
        ("/api/v4/nodes?orderby=nonexistent", "valid columns are"),
        ("/api/v4/nodes?id=1&&", "position 5"),
        ("/api/v4/nodes?full_type=%22bogus%22", "concatenator"),
        ("/api/v4/nodes?attributes=yes", "can only be set to true"),
        ("/api/v4/nodes/page/1?perpage=0", "perpage"),
        ("/api/v4/nodes?id=like=1", "has to be a string"),
        ("/api/v4/nodes?id=in=1", "list of values"),
    ] {
        let answer = get(&app, uri).await;
        assert_eq!(answer.status, 400, "{uri}: {}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.header("content-type").as_deref(), Some("application/json"));
        let message = answer.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(needle), "{uri}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quoted_values_keep_encoded_ampersands() {
    let app = harness::app(Backend::Archive).await;
    let answer = get(&app, "/api/v4/nodes?label=%22a%26b%22&limit=1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["query_string"], "label=\"a&b\"&limit=1");
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_methods_and_headers() {
    let app = harness::app(Backend::Archive).await;
    // Unknown URL: 404 with the endpoints.
    let unknown = get(&app, "/api/v4/nonexistent").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["available_endpoints"].as_array().unwrap().len(), 46);
    // Wrong method: 405 with Allow.
    let post = request(&app, "POST", "/api/v4/nodes/", None).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow").as_deref(), Some("GET, HEAD, OPTIONS"));
    assert!(post.json()["message"].is_string());
    // Trailing slashes do not matter.
    for uri in ["/api/v4/nodes/?limit=1", "/api/v4/nodes?limit=1", "/api/v4/server/", "/api/v4"] {
        assert_eq!(get(&app, uri).await.status, 200, "{uri}");
    }
    // HEAD: headers of GET, no body.
    let full = get(&app, "/api/v4/computers").await;
    let head = request(&app, "HEAD", "/api/v4/computers", None).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some(full.body.len().to_string()));
    assert_eq!(head.header("x-total-count"), full.header("x-total-count"));
    // Links are complete URLs.
    let page = get(&app, "/api/v4/nodes/page/2?perpage=2&orderby=-id").await;
    let link = page.header("link").unwrap();
    assert!(link.starts_with("<http://127.0.0.1:5000/api/v4/nodes/page/1?perpage=2&orderby=-id>; rel=\"prev\", "));
    assert!(!link.ends_with(", "));
    assert_eq!(page.header("access-control-expose-headers").as_deref(), Some("X-Total-Count,Link"));
    // Keyword paths without an id are not silently applied to the first node.
    assert_eq!(get(&app, "/api/v4/nodes/download").await.status, 404);
    assert_eq!(get(&app, "/api/v4/nodes/zzz").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn cors() {
    let app = harness::app(Backend::Archive).await;
    let plain = get(&app, "/api/v4/server").await;
    assert_eq!(plain.header("access-control-allow-origin").as_deref(), Some("*"));
    let req = axum::http::Request::builder()
        .method("OPTIONS")
        .uri("/api/v4/querybuilder/")
        .header("origin", "https://explorer.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
    assert_eq!(response.status(), 200);
    let h = response.headers();
    assert_eq!(h["access-control-allow-origin"], "https://explorer.example");
    assert_eq!(h["access-control-allow-headers"], "content-type");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert_eq!(h["vary"], "Origin");
    // Nothing outside the prefix gets CORS headers.
    let outside = get(&app, "/other").await;
    assert_eq!(outside.status, 404);
    assert!(outside.header("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn projected_booleans_stay_booleans() {
    for app in both().await {
        let answer = get(
            &app,
            "/api/v4/nodes?attributes=true&attributes_filter=pbc1,kinds&node_type=%22data.core.structure.StructureData.%22&limit=1",
        )
        .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["data"]["nodes"][0]["attributes"]["pbc1"], Value::Bool(true));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn negative_limit_is_bounded() {
    let settings = harness::Settings { max_rows: 7, ..Default::default() };
    let app = harness::app_with(Backend::Archive, settings).await;
    let answer = get(&app, "/api/v4/nodes?limit=-1").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["data"]["nodes"].as_array().unwrap().len(), 7);
}
