//! The OpenAPI documents (`<prefix>/openapi.json`), their documentation pages (`<prefix>/docs`)
//! and the landing page (`/`), with one storage and with several databases.

use aiida_rest::http::databases::{Database, Databases, Options};
use aiida_rest::http::{App, Settings};
use aiida_rest::storage::Source;
use serde_json::Value;

use crate::harness::{self, Backend, DbLimits};

/// The `href`s of the page at `page` that stay on the server, resolved against it, in order.
fn links(page: &str, html: &str) -> Vec<String> {
    let dir = &page[..page.rfind('/').unwrap() + 1];
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|h| h.replace("&amp;", "&"))
        .filter(|h| !h.starts_with("http://") && !h.starts_with("https://") && !h.starts_with('#'))
        .map(|h| {
            let mut segments: Vec<String> =
                if h.starts_with('/') { vec![] } else { dir.split('/').map(str::to_string).collect() };
            segments.pop();
            for part in h.split('/') {
                match part {
                    ".." => drop(segments.pop()),
                    "." => {}
                    other => segments.push(other.to_string()),
                }
            }
            let path = segments.join("/");
            if path.starts_with('/') { path } else { format!("/{path}") }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_storage_documents_its_apis() {
    let app = harness::app(Backend::Archive).await;
    for (prefix, title, some_path) in [
        ("/api/v4", "AiiDA REST API v4", "/nodes/{id}/links/incoming/page/{page}/"),
        ("/api/v2", "AiiDA REST API v2", "/structures/{id}/content/download/"),
    ] {
        let answer = harness::get(&app, &format!("{prefix}/openapi.json")).await;
        assert_eq!(answer.status, 200, "{prefix}");
        assert_eq!(answer.header("content-type").as_deref(), Some("application/json"));
        let document = answer.json();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["title"], title);
        assert_eq!(document["servers"][0]["url"], format!("http://127.0.0.1:5000{prefix}"));
        assert!(document["paths"][some_path]["get"].is_object(), "{prefix} {some_path}");
        // One path per line of `available_endpoints` (the rules the router answers).
        let endpoints = harness::get(&app, &format!("{prefix}/server/endpoints")).await.json();
        let listed = endpoints["data"]["available_endpoints"].as_array().unwrap().len();
        assert_eq!(document["paths"].as_object().unwrap().len(), listed, "{prefix}");

        let page = harness::get(&app, &format!("{prefix}/docs")).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.header("content-type").as_deref(), Some("text/html; charset=utf-8"));
        let html = String::from_utf8(page.body).unwrap();
        assert!(html.contains(title) && !html.contains("<script"), "{prefix}");
        let local = links(&format!("{prefix}/docs"), &html);
        assert_eq!(local, ["/".to_string(), format!("{prefix}/openapi.json"), format!("{prefix}/")]);
        for link in local {
            assert_eq!(harness::get(&app, &link).await.status, 200, "{prefix}/docs links {link}");
        }
    }
    // The pages are not API endpoints: not listed, and nothing below them.
    let endpoints = harness::get(&app, "/api/v4/").await.json();
    assert!(!endpoints["data"]["available_endpoints"].to_string().contains("openapi"));
    assert_eq!(harness::get(&app, "/api/v4/openapi.json/x").await.status, 404);
    assert_eq!(harness::get(&app, "/api/v4/openapi.jsonx").await.status, 404);
    // Without posting, the document has no POST.
    let app = harness::app_with(Backend::Archive, Settings { posting: false, ..Settings::default() }).await;
    let document = harness::get(&app, "/api/v4/openapi.json").await.json();
    assert!(document["paths"].get("/querybuilder/").is_none());
}

/// What the document promises for a few answers holds: statuses, content types, headers.
#[tokio::test(flavor = "multi_thread")]
async fn answers_follow_the_document() {
    let app = harness::app(Backend::Archive).await;
    let document = harness::get(&app, "/api/v4/openapi.json").await.json();
    let nodes = harness::get(&app, "/api/v4/nodes/page/1?perpage=2").await;
    let ok = &document["paths"]["/nodes/page/{page}/"]["get"]["responses"]["200"];
    assert!(ok["headers"]["Link"].is_object() && nodes.header("link").is_some());
    assert!(ok["headers"]["X-Total-Count"].is_object() && nodes.header("x-total-count").is_some());
    let body = nodes.json();
    for key in document["components"]["schemas"]["Envelope"]["required"].as_array().unwrap() {
        assert!(body.get(key.as_str().unwrap()).is_some(), "{key}");
    }
    assert!(body["data"]["nodes"].is_array());
    let bad = harness::get(&app, "/api/v4/nodes?limit=abc").await;
    assert_eq!(bad.status, 400);
    assert!(document["paths"]["/nodes/"]["get"]["responses"]["400"].is_object());
    assert!(bad.json()["message"].is_string());
}

fn database(name: &str, source: Source, default: bool) -> Database {
    Database { name: name.into(), source, default, settings: Settings::default(), limits: DbLimits::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn several_databases_each_with_its_documents_and_the_landing_page() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.aiida");
    std::fs::write(&broken, b"not a zip").unwrap();
    let databases = Databases::new(Options::default());
    databases.configure(vec![
        database("archive", Source::Path(harness::archive_path()), true),
        database("profile", Source::Path(harness::profile_path()), false),
        database("broken", Source::Path(broken), false),
    ]);
    let app = databases.router(App::new());

    for (path, server) in [
        ("/archive/api/v4/openapi.json", "/archive/api/v4"),
        ("/profile/api/v2/openapi.json", "/profile/api/v2"),
        ("/api/v4/openapi.json", "/api/v4"),
        // The documents do not need the database: a broken one has them too.
        ("/broken/api/v4/openapi.json", "/broken/api/v4"),
    ] {
        let answer = harness::get(&app, path).await;
        assert_eq!(answer.status, 200, "{path}");
        let document = answer.json();
        assert_eq!(document["servers"][0]["url"], format!("http://127.0.0.1:5000{server}"));
        assert!(document["info"]["description"].as_str().unwrap().contains("503"));
        if path.contains("v4") {
            let params = document["paths"]["/nodes/"]["get"]["parameters"].to_string();
            assert!(params.contains("#/components/parameters/profile"), "{path}");
        }
    }
    assert_eq!(harness::get(&app, "/broken/api/v4/docs").await.status, 200);

    let page = harness::get(&app, "/").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type").as_deref(), Some("text/html; charset=utf-8"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(!html.contains("<script") && !html.contains("<link"), "no assets");
    // Each database, with its node count from the statistics, or its 503.
    let total = |path: &str| {
        let app = app.clone();
        let path = path.to_string();
        async move { harness::get(&app, &path).await.json()["data"]["total"].as_i64().unwrap() }
    };
    let archive_nodes = total("/archive/api/v4/nodes/statistics").await;
    let profile_nodes = total("/profile/api/v4/nodes/statistics").await;
    for (name, count) in [("archive", archive_nodes), ("profile", profile_nodes)] {
        let row =
            html.split("<tr class=\"database\"").find(|r| r.contains(&format!("<strong>{name}</strong>"))).unwrap();
        assert!(row.contains(&format!("<span class=\"count\">{count}</span>")), "{name}: {row}");
        assert!(row.contains(&format!("href=\"{name}/api/v4/\"")), "{name}");
        let explorer = format!(
            "https://aiidateam.github.io/aiida-explorer/?api_url=http%3A%2F%2F127.0.0.1%3A5000%2F{name}%2Fapi%2Fv4"
        );
        assert!(row.contains(&explorer), "{name}: {row}");
    }
    let broken_row = html.split("<tr class=\"database\"").find(|r| r.contains("<strong>broken</strong>")).unwrap();
    assert!(
        broken_row.contains("data-state=\"unavailable\"") && broken_row.contains("503: The database &#39;broken&#39;")
    );
    // Every local link answers 200 (the broken database's API is not linked).
    let local = links("/", &html);
    assert!(local.len() >= 15, "{local:?}");
    for link in local {
        assert_eq!(harness::get(&app, &link).await.status, 200, "{link}");
    }
    // Only GET (and HEAD).
    assert_eq!(harness::request(&app, "HEAD", "/", None).await.status, 200);
    let post = harness::request(&app, "POST", "/", Some("{}")).await;
    assert_eq!(post.status, 405);
    assert!(post.json()["message"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_storage_landing_page() {
    let app = harness::app(Backend::Profile).await;
    let statistics: Value = harness::get(&app, "/api/v4/nodes/statistics").await.json();
    let html = String::from_utf8(harness::get(&app, "/").await.body).unwrap();
    assert_eq!(html.matches("<tr class=\"database\"").count(), 1);
    assert!(html.contains(&format!("<span class=\"count\">{}</span>", statistics["data"]["total"])));
    for link in links("/", &html) {
        assert_eq!(harness::get(&app, &link).await.status, 200, "{link}");
    }
    // The rest of the URL space is as before: an unknown path is the JSON 404.
    let answer = harness::get(&app, "/nothing").await;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["available_endpoints"].is_array());
}
