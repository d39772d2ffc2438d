//! REST API v2 under `/api/v2`: every example URL of the seed document (on the fixture's own
//! objects), one test per section of the seed (pagination, path forms, special keys, operators
//! and value types, class restrictions), and v2 answers compared with v4's on a sample of
//! equivalent requests. On the archive, the profile folder and PostgreSQL.

use std::collections::BTreeSet;

use aiida_rest::http::Responder;
use serde_json::Value;

use crate::harness::{self, Answer, Backend, get, request};

/// The fixture storages: the SQLite ones, and PostgreSQL when this machine has it.
async fn apps() -> Vec<(Backend, Responder)> {
    let mut backends = vec![Backend::Archive, Backend::Profile];
    if harness::pg::shared().is_some() {
        backends.push(Backend::Postgres);
    }
    let mut apps = Vec::new();
    for backend in backends {
        apps.push((backend, harness::app(backend).await));
    }
    apps
}

async fn ok(app: &Responder, uri: &str) -> (Value, Answer) {
    let answer = get(app, uri).await;
    assert_eq!(answer.status, 200, "{uri}: {}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type").as_deref(), Some("application/json"), "{uri}");
    (answer.json(), answer)
}

/// The message of an error answer with `status`, checked to be JSON.
async fn error(app: &Responder, uri: &str, status: u16) -> String {
    let answer = get(app, uri).await;
    assert_eq!(answer.status, status, "{uri}: {}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("content-type").as_deref(), Some("application/json"), "{uri}");
    answer.json()["message"].as_str().unwrap_or_default().to_string()
}

fn total(answer: &Answer) -> i64 {
    answer.header("x-total-count").expect("X-Total-Count").parse().unwrap()
}

fn keys(object: &Value) -> BTreeSet<String> {
    object.as_object().unwrap().keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn rows<'a>(body: &'a Value, label: &str) -> &'a Vec<Value> {
    body["data"][label].as_array().unwrap_or_else(|| panic!("data.{label} in {body}"))
}

fn ids(body: &Value, label: &str) -> Vec<i64> {
    rows(body, label).iter().map(|r| r["id"].as_i64().unwrap()).collect()
}

/// The seed's envelope: the keys, and what they echo.
fn check_envelope(body: &Value, resource: &str, path: &str, query: &str, pk: Value) {
    assert_eq!(
        keys(body),
        set(&["data", "id", "method", "path", "pk", "query_string", "resource_type", "url", "url_root"]),
        "{body}"
    );
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], path);
    assert_eq!(body["resource_type"], resource);
    assert_eq!(body["pk"], pk, "{path}");
    assert_eq!(body["url_root"], "http://127.0.0.1:5000/");
    let url = if query.is_empty() {
        format!("http://127.0.0.1:5000{path}")
    } else {
        format!("http://127.0.0.1:5000{path}?{query}")
    };
    assert_eq!(body["url"], url.as_str());
    if !matches!(resource, "computers" | "users" | "groups") {
        assert_eq!(body["query_string"], query);
    }
}

const NODE_ROW: [&str; 7] = ["ctime", "id", "label", "mtime", "state", "type", "uuid"];
const COMPUTER_ROW: [&str; 9] = [
    "description",
    "enabled",
    "hostname",
    "id",
    "name",
    "scheduler_type",
    "transport_params",
    "transport_type",
    "uuid",
];
const USER_ROW: [&str; 5] = ["date_joined", "first_name", "id", "institution", "last_name"];
const GROUP_ROW: [&str; 6] = ["description", "id", "name", "type", "user_id", "uuid"];

/// The fixture objects the seed's examples are replayed on.
const COMPUTER: &str = "9cfb34e4-c34a-4f73-8c5c-78b3cfc19a41";
const GROUP: &str = "a422b39b-be77-4a06-891d-4f2f18202b1c";
const CODE: &str = "45abcd9f-342a-4102-8da2-0d9dfc222d4f";
/// A calculation with a KpointsData input.
const CALC_WITH_KPOINTS: &str = "cee0c28d";
/// A calculation with a RemoteData and a FolderData output, and retrieved files.
const CALC: &str = "0d5067e1";

#[tokio::test(flavor = "multi_thread")]
async fn seed_examples() {
    for (backend, app) in apps().await {
        // Computers: a window ordered by id; one computer by a prefix of its uuid.
        let (body, answer) = ok(&app, "/api/v2/computers?limit=3&offset=2&orderby=id").await;
        check_envelope(&body, "computers", "/api/v2/computers", "limit=3&offset=2&orderby=id", Value::Null);
        assert_eq!(ids(&body, "computers"), [3, 4, 5], "{backend:?}");
        assert_eq!(total(&answer), 5);
        for row in rows(&body, "computers") {
            assert_eq!(keys(row), set(&COMPUTER_ROW));
            assert!(row["enabled"].is_null() && row["transport_params"].is_null());
        }
        let (body, _) = ok(&app, &format!("/api/v2/computers/{}", &COMPUTER[..13])).await;
        check_envelope(&body, "computers", &format!("/api/v2/computers/{}", &COMPUTER[..13]), "", Value::from(2));
        assert_eq!(rows(&body, "computers")[0]["name"], "ref-daint-like");
        assert_eq!(body["id"], &COMPUTER[..13]);

        // Nodes: a window in descending id order; one node; its inputs and outputs by type.
        let (body, _) = ok(&app, "/api/v2/nodes?limit=2&offset=8&orderby=-id").await;
        check_envelope(&body, "nodes", "/api/v2/nodes", "limit=2&offset=8&orderby=-id", Value::Null);
        let nodes = rows(&body, "nodes");
        assert_eq!(nodes.len(), 2);
        assert!(nodes[0]["id"].as_i64() > nodes[1]["id"].as_i64());
        for row in nodes {
            assert_eq!(keys(row), set(&NODE_ROW));
        }
        let (body, _) = ok(&app, &format!("/api/v2/nodes/{}", &CODE[..8])).await;
        check_envelope(&body, "nodes", &format!("/api/v2/nodes/{}", &CODE[..8]), "", Value::from(1));
        assert_eq!(rows(&body, "nodes")[0]["type"], "data.core.code.installed.InstalledCode.");

        let (body, answer) = ok(&app, &format!("/api/v2/nodes/{CALC_WITH_KPOINTS}/io/inputs?limit=2")).await;
        let pk = body["pk"].clone();
        check_envelope(&body, "nodes", &format!("/api/v2/nodes/{CALC_WITH_KPOINTS}/io/inputs"), "limit=2", pk.clone());
        assert_eq!(rows(&body, "inputs").len(), 2);
        assert!(total(&answer) > 2);
        let query = "type=\"data.array.kpoints.KpointsData.\"";
        let (body, _) = ok(&app, &format!("/api/v2/nodes/{CALC_WITH_KPOINTS}/io/inputs?{query}")).await;
        check_envelope(&body, "nodes", &format!("/api/v2/nodes/{CALC_WITH_KPOINTS}/io/inputs"), query, pk);
        let inputs = rows(&body, "inputs");
        assert_eq!(inputs.len(), 1, "{backend:?}");
        assert_eq!(inputs[0]["type"], "data.core.array.kpoints.KpointsData.");
        let query = "type=\"data.remote.RemoteData.\"";
        let (body, _) = ok(&app, &format!("/api/v2/nodes/{CALC}/io/outputs?{query}")).await;
        assert_eq!(rows(&body, "outputs").len(), 1);
        assert_eq!(rows(&body, "outputs")[0]["type"], "data.core.remote.RemoteData.");
        let (body, _) = ok(&app, &format!("/api/v2/nodes/{CALC}/io/outputs?type=\"data.folder.FolderData.\"")).await;
        assert_eq!(rows(&body, "outputs")[0]["type"], "data.core.folder.FolderData.");

        // Attributes and extras of a code, whole, selected and all but selected.
        let (body, _) = ok(&app, &format!("/api/v2/nodes/{}/content/attributes", &CODE[..5])).await;
        check_envelope(&body, "nodes", &format!("/api/v2/nodes/{}/content/attributes", &CODE[..5]), "", Value::from(1));
        let all = body["data"]["attributes"].as_object().unwrap().clone();
        assert!(all.contains_key("append_text") && all.contains_key("prepend_text"));
        let (body, _) = ok(&app, &format!("/api/v2/codes/{}/content/extras", &CODE[..5])).await;
        check_envelope(&body, "codes", &format!("/api/v2/codes/{}/content/extras", &CODE[..5]), "", Value::from(1));
        assert_eq!(keys(&body["data"]["extras"]), set(&["_aiida_hash", "hidden"]));
        let (body, _) =
            ok(&app, &format!("/api/v2/codes/{}/content/attributes?alist=append_text,is_local", &CODE[..5])).await;
        assert_eq!(keys(&body["data"]["attributes"]), set(&["append_text"]));
        let (body, _) = ok(&app, &format!("/api/v2/codes/{}/content/extras?elist=hidden,trialInt", &CODE[..5])).await;
        assert_eq!(body["data"]["extras"], serde_json::json!({"hidden": false}));
        let (body, _) =
            ok(&app, &format!("/api/v2/codes/{}/content/attributes?nalist=append_text,is_local", &CODE[..5])).await;
        let rest = keys(&body["data"]["attributes"]);
        assert_eq!(rest.len(), all.len() - 1);
        assert!(!rest.contains("append_text"));
        let (body, _) = ok(&app, &format!("/api/v2/codes/{}/content/extras?nelist=hidden", &CODE[..5])).await;
        assert_eq!(keys(&body["data"]["extras"]), set(&["_aiida_hash"]));

        // Users: all of them (no email anywhere); by the start of the first name.
        let (body, answer) = ok(&app, "/api/v2/users/").await;
        check_envelope(&body, "users", "/api/v2/users/", "", Value::Null);
        assert_eq!(total(&answer), 5);
        assert!(!String::from_utf8_lossy(&answer.body).contains('@'));
        for row in rows(&body, "users") {
            assert_eq!(keys(row), set(&USER_ROW));
        }
        let (body, _) = ok(&app, "/api/v2/users/?first_name=ilike=\"ad%\"").await;
        assert_eq!(ids(&body, "users"), [1]);
        assert_eq!(rows(&body, "users")[0]["first_name"], "Ada");
        let (body, _) = ok(&app, "/api/v2/users/?last_name<=\"m\"").await;
        for row in rows(&body, "users") {
            assert!(row["last_name"].as_str().unwrap() <= "m");
        }
        // `last_login` is private, as the seed's table marks it.
        assert!(error(&app, "/api/v2/users/?last_login>2014-04-07", 400).await.contains("private"));

        // Groups: by user id descending; one group.
        let (body, answer) = ok(&app, "/api/v2/groups/?limit=10&orderby=-user_id").await;
        check_envelope(&body, "groups", "/api/v2/groups/", "limit=10&orderby=-user_id", Value::Null);
        let users: Vec<i64> = rows(&body, "groups").iter().map(|g| g["user_id"].as_i64().unwrap()).collect();
        assert!(users.windows(2).all(|w| w[0] >= w[1]), "{users:?}");
        assert_eq!(total(&answer), 9);
        for row in rows(&body, "groups") {
            assert_eq!(keys(row), set(&GROUP_ROW));
        }
        let (body, _) = ok(&app, &format!("/api/v2/groups/{}", &GROUP[..5])).await;
        check_envelope(&body, "groups", &format!("/api/v2/groups/{}", &GROUP[..5]), "", Value::from(1));
        assert_eq!(rows(&body, "groups")[0]["name"], "ref/structures/bulk");

        // `id>N` selects the nodes with a larger id.
        let (body, _) = ok(&app, "/api/v2/nodes?id>450").await;
        assert!(ids(&body, "nodes").iter().all(|id| *id > 450) && !ids(&body, "nodes").is_empty());
        // Other examples of the seed's text.
        let (body, _) = ok(&app, "/api/v2/computers?scheduler_type=\"core.slurm\"").await;
        assert!(rows(&body, "computers").iter().all(|c| c["scheduler_type"] == "core.slurm"));
        let (body, _) = ok(&app, "/api/v2/nodes/?id>45&type=like=\"%data%\"").await;
        assert!(rows(&body, "nodes").iter().all(|n| n["type"].as_str().unwrap().contains("data")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_base_url_and_errors() {
    for (_, app) in apps().await {
        let (body, _) = ok(&app, "/api/v2/server").await;
        assert_eq!(body["data"][0], "REST API version: v2");
        assert_eq!(body["data"][1], "REST API Prefix: /api/v2");
        assert!(body["data"][2].as_str().unwrap().starts_with("AiiDA=="));
        assert_eq!(body["resource_type"], "Info");
        // The base URL lists the endpoints, every resource among them.
        for uri in ["/api/v2", "/api/v2/", "/api/v2/server/endpoints"] {
            let (body, _) = ok(&app, uri).await;
            let endpoints = body["data"]["available_endpoints"].as_array().unwrap();
            for resource in [
                "nodes",
                "computers",
                "users",
                "groups",
                "calculations",
                "data",
                "codes",
                "structures",
                "kpoints",
                "bands",
                "cifs",
                "upfs",
            ] {
                let line = format!("/api/v2/{resource}/");
                assert!(endpoints.iter().any(|e| e.as_str().unwrap().ends_with(&line)), "{uri} {resource}");
            }
        }
        // An unknown URL: 404 with the endpoints, JSON.
        let answer = get(&app, "/api/v2/nothing/here").await;
        assert_eq!(answer.status, 404);
        assert!(answer.json()["available_endpoints"].as_array().unwrap().len() > 100);
        assert_eq!(answer.header("content-type").as_deref(), Some("application/json"));
        // Only GET (and HEAD, OPTIONS).
        let answer = request(&app, "POST", "/api/v2/nodes", Some("{}")).await;
        assert_eq!(answer.status, 405);
        assert_eq!(answer.json()["message"], "The method is not allowed for the requested URL.");
        let head = request(&app, "HEAD", "/api/v2/nodes", None).await;
        assert_eq!((head.status, head.body.len()), (200, 0));
        // CORS as under /api/v4.
        let (_, answer) = ok(&app, "/api/v2/nodes/page/1").await;
        assert_eq!(answer.header("access-control-allow-origin").as_deref(), Some("*"));
        assert_eq!(answer.header("access-control-expose-headers").as_deref(), Some("X-Total-Count,Link"));
        // 501: what v2 did not offer.
        error(&app, "/api/v2/kpoints/b0dd8ff4/content/download", 501).await;
        // v4 is still there beside it.
        let (body, _) = ok(&app, "/api/v4/server").await;
        assert_eq!(body["data"]["API_prefix"], "/api/v4");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_and_its_errors() {
    for (_, app) in apps().await {
        let (all, answer) = ok(&app, "/api/v2/nodes?limit=400").await;
        let n = total(&answer);
        let all = ids(&all, "nodes");
        let (body, answer) = ok(&app, "/api/v2/nodes/page/2?perpage=5").await;
        assert_eq!(ids(&body, "nodes"), all[5..10]);
        assert_eq!(total(&answer), n);
        let last = (n + 4) / 5;
        assert_eq!(
            answer.header("link").unwrap(),
            format!(
                "<http://127.0.0.1:5000/api/v2/nodes/page/1?perpage=5>; rel=\"prev\", \
                 <http://127.0.0.1:5000/api/v2/nodes/page/3?perpage=5>; rel=\"next\", \
                 <http://127.0.0.1:5000/api/v2/nodes/page/1?perpage=5>; rel=\"first\", \
                 <http://127.0.0.1:5000/api/v2/nodes/page/{last}?perpage=5>; rel=\"last\""
            )
        );
        // `/page` is page 1 with 20 rows.
        let (body, _) = ok(&app, "/api/v2/nodes/page").await;
        assert_eq!(ids(&body, "nodes"), all[..20]);
        // Pages of a typed resource and of a link list.
        let (body, answer) = ok(&app, "/api/v2/structures/page/1?perpage=3").await;
        assert_eq!(rows(&body, "structures").len(), 3);
        assert!(answer.header("link").unwrap().contains("/api/v2/structures/page/2?perpage=3"));
        let (body, answer) = ok(&app, &format!("/api/v2/nodes/{CALC}/io/inputs/page/1?perpage=1")).await;
        assert_eq!(rows(&body, "inputs").len(), 1);
        assert!(answer.header("link").unwrap().contains(&format!("/api/v2/nodes/{CALC}/io/inputs/page/2?perpage=1")));
        // limit and offset.
        let (body, _) = ok(&app, "/api/v2/nodes?limit=3&offset=4").await;
        assert_eq!(ids(&body, "nodes"), all[4..7]);
        let (body, _) = ok(&app, "/api/v2/nodes?limit=0").await;
        assert!(ids(&body, "nodes").is_empty());
        // Each documented error, a 400 with its message.
        for (uri, message) in [
            (
                "/api/v2/nodes?perpage=2",
                "perpage key requires that a page is requested (i.e. the path must contain /page/)",
            ),
            ("/api/v2/nodes/page/1?perpage=2&limit=1", "perpage key is incompatible with limit and offset"),
            ("/api/v2/nodes/page/1?offset=1", "requesting a specific page is incompatible with limit and offset"),
            ("/api/v2/nodes?limit=401", "Limit and perpage cannot be bigger than 400"),
            ("/api/v2/nodes/page/1?perpage=401", "Limit and perpage cannot be bigger than 400"),
            ("/api/v2/nodes?limit=\"abc\"", "Limit value must be an integer"),
            ("/api/v2/nodes?offset=\"abc\"", "Offset value must be an integer"),
            ("/api/v2/nodes/page/1?perpage=0", "perpage must be a positive integer"),
            ("/api/v2/nodes?limit=1&limit=2", "You cannot specify limit more than once"),
            // The seed's limit is at most 400: a negative one is no way around it (v4 reads
            // it as "no limit").
            ("/api/v2/nodes?limit=-1", "limit must be a non-negative integer"),
            ("/api/v2/nodes?offset=-3", "offset must be a non-negative integer"),
            ("/api/v2/data?limit=-1&offset=2", "limit must be a non-negative integer"),
            (&*format!("/api/v2/nodes/{CALC}/io/inputs?limit=-1"), "limit must be a non-negative integer"),
        ] {
            assert_eq!(error(&app, uri, 400).await, message, "{uri}");
        }
        let message = error(&app, "/api/v2/nodes/page/9999", 400).await;
        assert!(message.starts_with("Non existent page requested. The page range is [1 : "), "{message}");
        assert_eq!(
            error(&app, "/api/v2/users/page/0", 400).await,
            "Non existent page requested. The page range is [1 : 1]"
        );
        // A page number that is not a number is no route.
        assert_eq!(get(&app, "/api/v2/nodes/page/x").await.status, 404);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn path_forms() {
    for (_, app) in apps().await {
        // Full uuid, prefix, trailing slash, dashes elsewhere: the same object.
        let mut seen = Vec::new();
        for path in [
            format!("/api/v2/computers/{COMPUTER}"),
            format!("/api/v2/computers/{}", &COMPUTER[..8]),
            format!("/api/v2/computers/{}/", &COMPUTER[..13]),
            format!("/api/v2/computers/{}", COMPUTER.to_uppercase()),
        ] {
            let (body, _) = ok(&app, &path).await;
            seen.push(rows(&body, "computers")[0].clone());
            assert_eq!(body["pk"], 2);
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]));
        // Users by integer id; `id` is the integer too.
        let (body, _) = ok(&app, "/api/v2/users/2").await;
        assert_eq!((body["pk"].clone(), body["id"].clone()), (Value::from(2), Value::from(2)));
        assert_eq!(rows(&body, "users")[0]["first_name"], "Marie");
        // Bad ids and ambiguous prefixes are bad requests; an unknown object is a 404.
        assert!(error(&app, "/api/v2/users/abc", 400).await.contains("integer"));
        assert!(error(&app, "/api/v2/nodes/xyz", 400).await.contains("uuid"));
        assert!(error(&app, "/api/v2/nodes/0d5067e1-8bbe4", 400).await.contains("uuid"));
        assert_eq!(
            error(&app, "/api/v2/nodes/e", 400).await,
            "More than one node found. Provide longer starting pattern for id."
        );
        assert!(error(&app, "/api/v2/nodes/00000000-0000", 404).await.starts_with("either no object's id starts with"));
        error(&app, "/api/v2/users/99", 404).await;
        error(&app, "/api/v2/groups/00000000", 404).await;
        // A prefix is unique when one object of the resource has it (`ee` starts several nodes,
        // one structure).
        assert!(error(&app, "/api/v2/nodes/ee", 400).await.starts_with("More than one"));
        let (body, _) = ok(&app, "/api/v2/structures/ee").await;
        assert_eq!(rows(&body, "structures")[0]["uuid"], "eea1aadd-8645-4c87-8fe8-8cdcfffa7a00");
        let (body, _) = ok(&app, "/api/v2/structures/ee/content/attributes?alist=pbc1").await;
        assert_eq!(body["data"]["attributes"]["pbc1"], true);
        assert!(error(&app, "/api/v2/data/e", 400).await.starts_with("More than one"));
        error(&app, "/api/v2/cifs/ee", 404).await;
        // A node of another class is not an object of the resource.
        let message = error(&app, &format!("/api/v2/structures/{CODE}"), 404).await;
        assert!(message.ends_with("aiida.orm.data.structure.StructureData"), "{message}");
        error(&app, &format!("/api/v2/calculations/{}/io/inputs", &CODE[..8]), 404).await;
        // The same node through each resource it belongs to.
        for resource in ["nodes", "data", "codes"] {
            let (body, _) = ok(&app, &format!("/api/v2/{resource}/{}", &CODE[..8])).await;
            assert_eq!(body["resource_type"], resource);
            assert_eq!(rows(&body, resource)[0]["uuid"], CODE);
        }
        // Sub-resources exist only for single nodes, and only those of the resource.
        for uri in [
            "/api/v2/computers/2ed67621/io/inputs",
            "/api/v2/nodes/0d5067e1/io/retrieved_inputs",
            "/api/v2/nodes/0d5067e1/content/download",
            "/api/v2/calculations/0d5067e1/content/visualization",
            "/api/v2/nodes/0d5067e1/io/sideways",
            "/api/v2/users/statistics",
            "/api/v2/computers/types",
            "/api/v2/groups/statistics",
        ] {
            let status = get(&app, uri).await.status;
            assert!(status == 404 || status == 400, "{uri}: {status}");
        }
        // Schemas: the fields served and their order; no query string.
        for (resource, fields) in [
            ("nodes", &NODE_ROW[..]),
            ("structures", &NODE_ROW[..]),
            ("computers", &COMPUTER_ROW[..]),
            ("users", &USER_ROW[..]),
            ("groups", &GROUP_ROW[..]),
        ] {
            let (body, answer) = ok(&app, &format!("/api/v2/{resource}/schema")).await;
            assert_eq!(keys(&body["data"]["fields"]), set(fields), "{resource}");
            assert_eq!(body["data"]["ordering"].as_array().unwrap().len(), fields.len());
            assert_eq!(total(&answer), 1);
        }
        assert_eq!(
            error(&app, "/api/v2/nodes/schema?limit=1", 400).await,
            "schema requests do not allow specifying a query string"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn special_keys() {
    for (_, app) in apps().await {
        for (uri, needle) in [
            ("/api/v2/nodes?orderby=id&orderby=label", "You cannot specify orderby more than once"),
            ("/api/v2/nodes?limit>2", "only assignment operator '=' is permitted after 'limit'"),
            ("/api/v2/codes/45abcd9f/content/attributes?alist=a&nalist=b", "you cannot specify both alist and nalist"),
            ("/api/v2/codes/45abcd9f/content/extras?elist=a&nelist=b", "you cannot specify both elist and nelist"),
            ("/api/v2/nodes?alist=a", "the key alist cannot be used with /nodes"),
            ("/api/v2/codes/45abcd9f/content/extras?alist=a", "the key alist cannot be used with content/extras"),
            ("/api/v2/codes/45abcd9f/content/attributes?elist=a", "cannot be used with content/attributes"),
            ("/api/v2/nodes/45abcd9f/io/tree?limit=1", "the key limit cannot be used with io/tree"),
            ("/api/v2/nodes/45abcd9f/content/attributes?label=\"x\"", "does not allow to specify filters"),
            ("/api/v2/nodes/45abcd9f?label=\"x\"", "does not allow to specify filters"),
            ("/api/v2/structures/eea1aadd/content/visualization?visformat=bogus", "The format bogus is not supported."),
            (
                "/api/v2/calculations/0d5067e1/io/retrieved_inputs?filename=\"aiida.in\"&rtype=\"view\"",
                "rtype is not supported",
            ),
            ("/api/v2/nodes?orderby=-state", "cannot order by state"),
            ("/api/v2/users?orderby=email", "private"),
            ("/api/v2/nodes?in_limit=1", "the key in_limit cannot be used with /nodes"),
        ] {
            let message = error(&app, uri, 400).await;
            assert!(message.contains(needle), "{uri}: {message}");
        }
        // orderby with v2's names, ascending and descending.
        let (body, _) = ok(&app, "/api/v2/computers?orderby=-name").await;
        let names: Vec<String> =
            rows(&body, "computers").iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.reverse();
        assert_eq!(names, sorted);
        let (body, _) = ok(&app, "/api/v2/nodes?orderby=+type,-id&limit=400").await;
        let types: Vec<&str> = rows(&body, "nodes").iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert!(types.windows(2).all(|w| w[0] <= w[1]));
        // io/tree with in_limit and out_limit.
        let (body, answer) = ok(&app, &format!("/api/v2/nodes/{CALC}/io/tree?in_limit=1&out_limit=2")).await;
        assert_eq!(total(&answer), 0);
        let tree = &body["data"];
        assert_eq!(tree["sent_no_of_incomings"], 1);
        assert_eq!(tree["sent_no_of_outgoings"], 2);
        assert!(tree["total_no_of_incomings"].as_i64().unwrap() > 1);
        let nodes = tree["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 4);
        assert_eq!(nodes[0]["group"], "mainNode");
        assert_eq!(nodes[0]["shape"], "square");
        assert_eq!(
            keys(&nodes[1]),
            set(&[
                "description",
                "displaytype",
                "group",
                "id",
                "linklabel",
                "linktype",
                "nodeid",
                "nodelabel",
                "nodetype",
                "nodeuuid",
                "shape"
            ])
        );
        let edges = tree["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 3);
        assert_eq!((edges[0]["from"].as_i64(), edges[0]["to"].as_i64()), (Some(1), Some(0)));
        assert_eq!((edges[1]["from"].as_i64(), edges[1]["to"].as_i64()), (Some(0), Some(2)));
        // visformat and format.
        let (body, _) = ok(&app, "/api/v2/structures/eea1aadd/content/visualization?visformat=xyz").await;
        let vis = &body["data"]["visualization"];
        assert_eq!(vis["str_viz_info"]["format"], "xyz");
        assert_eq!(vis["formula"], "Si2");
        assert_eq!(vis["pbc"], serde_json::json!([true, true, true]));
        let (body, _) = ok(&app, "/api/v2/structures/eea1aadd/content/visualization").await;
        assert!(body["data"]["visualization"]["str_viz_info"]["data"].as_str().unwrap().starts_with("CRYSTAL"));
        // k-points: v4's derived properties under 0.12's names, with the reciprocal vectors.
        let (body, _) = ok(&app, "/api/v2/kpoints/b0dd8ff4/content/visualization").await;
        let vis = &body["data"]["visualization"];
        let (v4, _) = ok(&app, "/api/v4/nodes/b0dd8ff4/contents/derived_properties").await;
        assert_eq!(vis["explicit_kpoints_abs"], v4["data"]["derived_properties"]["explicit_kpoints_abs"]);
        assert_eq!(vis["reciprocal_vectors_unit"], "1/\u{212b}");
        assert_eq!(vis["b1"].as_array().unwrap().len(), 3);
        let (body, _) = ok(&app, "/api/v2/kpoints/26a805a6/content/visualization").await;
        assert!(body["data"]["visualization"]["b1"].is_null(), "no cell, no reciprocal vectors");
        let (body, _) = ok(&app, "/api/v2/bands/401e895d/content/visualization").await;
        assert!(body["data"]["visualization"]["paths"].is_array());
        assert_eq!(body["data"]["visualization"]["Y_label"], "Si diamond (Fd-3m) band structure (eV)");
        let (body, _) = ok(&app, "/api/v2/upfs/0975f729/content/visualization").await;
        assert_eq!(body["data"]["visualization"], serde_json::json!([]));
        let download = get(&app, "/api/v2/structures/eea1aadd/content/download?format=xyz").await;
        assert_eq!(download.status, 200);
        assert_eq!(
            download.header("content-disposition").unwrap(),
            "attachment; filename=\"eea1aadd-8645-4c87-8fe8-8cdcfffa7a00_structure.xyz\""
        );
        let download = get(&app, "/api/v2/cifs/9c4b7ae6/content/download").await;
        assert_eq!(
            download.header("content-disposition").unwrap(),
            "attachment; filename=\"9c4b7ae6-f6e3-4f98-8b81-2c6cd217ae45.cif\""
        );
        assert!(String::from_utf8_lossy(&download.body).contains("_cell_length_a"));
        assert_eq!(get(&app, "/api/v2/data/26a805a6/content/download").await.status, 501);
        let download = get(&app, "/api/v2/data/eea1aadd/content/download").await;
        assert_eq!(download.status, 200, "a structure through /data: its CIF");
        assert!(download.header("content-disposition").unwrap().ends_with("_structure.cif\""));
        assert_eq!(get(&app, "/api/v2/data/84765fab/content/download").await.status, 501);
        // filename and rtype of the calculation files.
        let (body, _) = ok(&app, &format!("/api/v2/calculations/{CALC}/io/retrieved_inputs")).await;
        assert!(body["data"]["retrieved_inputs"].as_array().unwrap().contains(&Value::from("aiida.in")));
        let (body, _) = ok(&app, &format!("/api/v2/calculations/{CALC}/io/retrieved_outputs")).await;
        assert!(body["data"]["retrieved_outputs"].as_array().unwrap().contains(&Value::from("aiida.out")));
        let file = get(
            &app,
            &format!(
                "/api/v2/calculations/{CALC}/io/retrieved_inputs?filename=\".aiida/calcinfo.json\"&rtype=\"download\""
            ),
        )
        .await;
        assert_eq!(file.status, 200);
        assert_eq!(file.header("content-disposition").unwrap(), "attachment; filename=\".aiida_calcinfo.json\"");
        error(&app, &format!("/api/v2/calculations/{CALC}/io/retrieved_inputs?filename=\"nope\""), 404).await;
        // A calculation that is no job has no files.
        let (body, _) = ok(&app, "/api/v2/calculations/e46ae18c/io/retrieved_inputs").await;
        assert_eq!(body["data"]["retrieved_inputs"], serde_json::json!([]));
    }
}

/// Count of a v2 list.
async fn count(app: &Responder, uri: &str) -> i64 {
    total(&ok(app, uri).await.1)
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_and_value_types() {
    for (_, app) in apps().await {
        let n = count(&app, "/api/v2/nodes").await;
        // Integers: every relational operator, =in= and =notin=.
        assert_eq!(count(&app, "/api/v2/nodes?id=5").await, 1);
        assert_eq!(count(&app, "/api/v2/nodes?id!=5").await, n - 1);
        assert_eq!(count(&app, "/api/v2/nodes?id>5&id<=10").await, 5);
        assert_eq!(count(&app, "/api/v2/nodes?id>=5&id<10").await, 5);
        assert_eq!(count(&app, "/api/v2/nodes?id=in=1,2,3").await, 3);
        assert_eq!(count(&app, "/api/v2/nodes?id=in=3").await, 1);
        assert_eq!(count(&app, "/api/v2/nodes?id=notin=3").await, n - 1);
        assert_eq!(count(&app, "/api/v2/nodes?type=in=\"data.core.code.Code.\"").await, 1);
        assert!(count(&app, "/api/v2/calculations?state=in=\"finished\"").await > 0);
        assert_eq!(count(&app, "/api/v2/nodes?id=notin=1,2,3").await, n - 3);
        assert_eq!(count(&app, "/api/v2/nodes?pk=7").await, 1);
        // Strings: =, !=, ordering, =in=, =like=, =ilike= and the seed's escaping table.
        assert_eq!(count(&app, "/api/v2/nodes?label=\"bash\"").await, 1);
        assert_eq!(count(&app, "/api/v2/nodes?label=in=\"bash\",\"pw-7.2\"").await, 2);
        assert_eq!(count(&app, "/api/v2/codes?label!=\"bash\"").await, 5);
        assert_eq!(count(&app, "/api/v2/codes?label>=\"p\"").await, 3);
        assert_eq!(count(&app, "/api/v2/nodes?label=like=\"ref-int-%\"").await, 7);
        assert_eq!(count(&app, "/api/v2/nodes?label=like=\"REF-INT-%\"").await, 0);
        assert_eq!(count(&app, "/api/v2/nodes?label=ilike=\"REF-INT-%\"").await, 7);
        assert_eq!(count(&app, "/api/v2/nodes?label=like=\"ref-int-_\"").await, 7);
        assert_eq!(count(&app, "/api/v2/nodes?label=like=\"100%5C%%20conv%\"").await, 1);
        assert_eq!(count(&app, "/api/v2/nodes?label=like=\"100%5C%%\"").await, 1);
        assert_eq!(count(&app, "/api/v2/nodes?label=like=\"under%5C_score%\"").await, 1);
        assert_eq!(count(&app, "/api/v2/nodes?label=like=\"under%5C_scor\"").await, 0);
        // Datetimes: each format of the seed; `=` means the whole day, hour, minute or second.
        let day = count(&app, "/api/v2/nodes?ctime=2024-05-01").await;
        assert_eq!(day, 20);
        assert_eq!(count(&app, "/api/v2/nodes?ctime>=2024-05-01&ctime<2024-05-02").await, day);
        let before = count(&app, "/api/v2/nodes?ctime<2024-05-10").await;
        assert_eq!(before + count(&app, "/api/v2/nodes?ctime>=2024-05-10").await, n);
        for value in [
            "2024-05-10T00",
            "2024-05-10T00:00",
            "2024-05-10T00:00:00",
            "2024-05-10T02:00:00+02:00",
            "2024-05-10T02+02",
            "2024-05-09T22:00-02:00",
        ] {
            assert_eq!(count(&app, &format!("/api/v2/nodes?ctime<{value}")).await, before, "{value}");
        }
        let node_1 = ok(&app, "/api/v2/nodes/45abcd9f").await.0;
        let ctime = rows(&node_1, "nodes")[0]["ctime"].as_str().unwrap().to_string();
        assert_eq!(ctime, "Wed, 01 May 2024 08:42:30 GMT");
        assert!(count(&app, "/api/v2/nodes?ctime=2024-05-01T08").await >= 1);
        assert!(count(&app, "/api/v2/nodes?ctime=2024-05-01T08:42").await >= 1);
        assert_eq!(count(&app, "/api/v2/nodes?ctime=2024-05-01T08:42:30&id=1").await, 1);
        assert_eq!(count(&app, "/api/v2/nodes?ctime=2024-05-01T10:42:30+02:00&id=1").await, 1);
        assert_eq!(count(&app, "/api/v2/nodes?mtime>2024-05-01&mtime!=2024-01-01T00:00:00&id=1").await, 1);
        // Booleans: true and false are themselves; a field today's schema lacks is null, so no
        // condition on it holds.
        assert_eq!(count(&app, "/api/v2/computers?enabled=true").await, 0);
        assert_eq!(count(&app, "/api/v2/computers?enabled=false").await, 0);
        assert_eq!(count(&app, "/api/v2/computers?transport_params=\"%7B%7D\"").await, 0);
        assert_eq!(count(&app, "/api/v2/users?date_joined>2000-01-01").await, 0);
        // v2 names mapped to today's columns.
        assert_eq!(count(&app, "/api/v2/computers?name=\"localhost\"").await, 1);
        assert_eq!(count(&app, "/api/v2/groups?name=like=\"ref/structures/%\"").await, 2);
        assert_eq!(count(&app, "/api/v2/groups?type=\"core.upf\"").await, 1);
        assert_eq!(count(&app, "/api/v2/groups?user_id=2").await, 1);
        assert_eq!(count(&app, "/api/v2/computers?hostname=\"localhost\"&transport_type=\"core.local\"").await, 1);
        // type: old and new spellings alike.
        let structures = count(&app, "/api/v2/nodes?type=\"data.core.structure.StructureData.\"").await;
        assert!(structures > 5);
        assert_eq!(count(&app, "/api/v2/nodes?type=\"data.structure.StructureData.\"").await, structures);
        assert_eq!(count(&app, "/api/v2/nodes?type=like=\"data.structure.%\"").await, structures);
        assert_eq!(
            count(&app, "/api/v2/nodes?type=\"data.parameter.ParameterData.\"").await,
            count(&app, "/api/v2/nodes?type=\"data.core.dict.Dict.\"").await
        );
        assert_eq!(count(&app, "/api/v2/nodes?type=\"code.Code.\"").await, 1);
        assert_eq!(
            count(&app, "/api/v2/nodes?type=in=\"data.base.Int.\",\"data.float.Float.\"").await,
            count(
                &app,
                "/api/v2/nodes?type=like=\"data.core.%\"&type=in=\"data.core.int.Int.\",\"data.core.float.Float.\""
            )
            .await
        );
        // state: the process state of process nodes.
        let finished = count(&app, "/api/v2/calculations?state=\"finished\"").await;
        assert!(finished > 0);
        let (body, _) = ok(&app, "/api/v2/calculations?state!=\"finished\"&limit=400").await;
        assert!(rows(&body, "calculations").iter().all(|c| c["state"] != "finished" && !c["state"].is_null()));
        let (body, _) = ok(&app, "/api/v2/nodes?state=in=\"waiting\",\"running\"").await;
        assert!(rows(&body, "nodes").iter().all(|c| c["state"] == "waiting" || c["state"] == "running"));
        assert_eq!(count(&app, "/api/v2/data?state=\"finished\"").await, 0);
        // Wrong value types and operators are bad requests, before any query.
        for (uri, needle) in [
            ("/api/v2/nodes?id=\"5\"", "id takes an integer"),
            ("/api/v2/nodes?id=like=\"5\"", "operator =like= cannot be used with id"),
            ("/api/v2/nodes?label=5", "label takes a string"),
            ("/api/v2/nodes?ctime=\"2024\"", "ctime takes a datetime"),
            ("/api/v2/nodes?ctime=like=\"2024%\"", "operator =like="),
            ("/api/v2/computers?enabled>true", "operator > cannot be used with enabled"),
            ("/api/v2/computers?enabled=1", "enabled takes true or false"),
            ("/api/v2/nodes?label=\"a\",\"b\"", "use =in= for a list"),
            ("/api/v2/nodes?ctime=2024-13-01", "time value has wrong format"),
            ("/api/v2/nodes?node_type=\"x\"", "valid keys are"),
            ("/api/v2/computers?label=\"x\"", "valid keys are"),
            ("/api/v2/users?email=like=\"%\"", "private"),
            ("/api/v2/users?is_active=true", "private"),
            ("/api/v2/nodes?id=1&&", "position"),
            ("/api/v2/nodes?no-dash=1", "not a valid key"),
        ] {
            let message = error(&app, uri, 400).await;
            assert!(message.contains(needle), "{uri}: {message}");
        }
    }
}

/// Each resource and today's node types of its class.
const CLASSES: [(&str, &str); 9] = [
    ("nodes", ""),
    ("calculations", "process."),
    ("data", "data."),
    ("codes", "data.core.code."),
    ("structures", "data.core.structure."),
    ("kpoints", "data.core.array.kpoints."),
    ("bands", "data.core.array.bands."),
    ("cifs", "data.core.cif."),
    ("upfs", "data.core.upf."),
];

#[tokio::test(flavor = "multi_thread")]
async fn class_restrictions() {
    for (backend, app) in apps().await {
        for (resource, prefix) in CLASSES {
            let (body, answer) = ok(&app, &format!("/api/v2/{resource}?limit=400")).await;
            let n = total(&answer);
            assert!(n > 0, "{backend:?} {resource}");
            let list = rows(&body, resource);
            assert!(list.iter().all(|r| r["type"].as_str().unwrap().starts_with(prefix)), "{resource}");
            // The same set as v4's nodes of those types.
            let v4 = if prefix.is_empty() {
                "/api/v4/nodes?limit=400".to_string()
            } else {
                format!("/api/v4/nodes?node_type=like=\"{prefix}%\"&limit=400")
            };
            let (v4_body, v4_answer) = ok(&app, &v4).await;
            assert_eq!(total(&v4_answer), n, "{resource}");
            assert_eq!(ids(&v4_body, "nodes"), ids(&body, resource), "{resource}");
            // /types lists the types of the class only.
            let (types, answer) = ok(&app, &format!("/api/v2/{resource}/types")).await;
            assert_eq!(answer.header("x-total-count").as_deref(), Some("0"), "0.12's count of /types");
            for (family, list) in types["data"].as_object().unwrap() {
                for t in list.as_array().unwrap() {
                    let t = t.as_str().unwrap();
                    assert!(t.starts_with(prefix) && t.starts_with(family.as_str()), "{resource}: {t}");
                }
            }
            // Filters apply inside the class.
            let (first, _) = ok(&app, &format!("/api/v2/{resource}?limit=1")).await;
            let id = rows(&first, resource)[0]["id"].as_i64().unwrap();
            assert_eq!(count(&app, &format!("/api/v2/{resource}?id={id}")).await, 1);
        }
        // Codes are every code class of today: installed, portable and the legacy one.
        let (body, _) = ok(&app, "/api/v2/codes").await;
        let types: BTreeSet<String> =
            rows(&body, "codes").iter().map(|c| c["type"].as_str().unwrap().to_string()).collect();
        assert_eq!(
            types,
            set(&[
                "data.core.code.Code.",
                "data.core.code.installed.InstalledCode.",
                "data.core.code.portable.PortableCode."
            ])
        );
        // Calculations carry their process state; data nodes have none.
        let (body, _) = ok(&app, "/api/v2/calculations?limit=400").await;
        assert!(rows(&body, "calculations").iter().all(|c| c["state"].is_string()));
        let (body, _) = ok(&app, "/api/v2/data?limit=50").await;
        assert!(rows(&body, "data").iter().all(|c| c["state"].is_null()));
    }
}

/// The node rows of v2 and v4 agree field by field (v2's `type` is v4's `node_type`).
fn same_nodes(v2: &[Value], v4: &[Value], what: &str) {
    assert_eq!(v2.len(), v4.len(), "{what}");
    for (a, b) in v2.iter().zip(v4) {
        for (k2, k4) in [
            ("id", "id"),
            ("uuid", "uuid"),
            ("label", "label"),
            ("ctime", "ctime"),
            ("mtime", "mtime"),
            ("type", "node_type"),
        ] {
            assert_eq!(a[k2], b[k4], "{what}: {k2}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_and_v4_agree() {
    // v2 query → the equivalent v4 query, for node lists.
    let filters: [(&str, &str); 12] = [
        ("", ""),
        ("id>100", "id>100"),
        ("id<=50&id>=20", "id<=50&id>=20"),
        ("id=in=3,5,400", "id=in=3,5,400"),
        ("label=like=\"ref-%\"", "label=like=\"ref-%\""),
        ("label=ilike=\"REF-%\"", "label=ilike=\"REF-%\""),
        ("type=\"data.structure.StructureData.\"", "node_type=\"data.core.structure.StructureData.\""),
        ("type=like=\"process.%\"", "node_type=like=\"process.%\""),
        ("ctime>2024-05-08", "ctime>2024-05-08"),
        ("ctime<2024-05-03T12:00", "ctime<2024-05-03T12:00"),
        ("mtime>=2024-05-12&id!=300", "mtime>=2024-05-12&id!=300"),
        ("uuid=like=\"a%\"", "uuid=like=\"a%\""),
    ];
    let orders: [(&str, &str); 5] = [
        ("", ""),
        ("-id", "-id"),
        ("type,-ctime", "node_type,-ctime"),
        ("label", "label"),
        ("-mtime,uuid", "-mtime,uuid"),
    ];
    let windows = ["limit=400", "limit=7&offset=3", "limit=25&offset=100"];
    for (backend, app) in apps().await {
        let mut compared = 0;
        for (f2, f4) in filters {
            for (o2, o4) in orders {
                for window in windows {
                    let join =
                        |parts: &[&str]| parts.iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join("&");
                    let order2 = if o2.is_empty() { String::new() } else { format!("orderby={o2}") };
                    let order4 = if o4.is_empty() { String::new() } else { format!("orderby={o4}") };
                    let v2 = format!("/api/v2/nodes?{}", join(&[f2, &order2, window]));
                    let v4 = format!("/api/v4/nodes?{}", join(&[f4, &order4, window]));
                    let (b2, a2) = ok(&app, &v2).await;
                    let (b4, a4) = ok(&app, &v4).await;
                    assert_eq!(total(&a2), total(&a4), "{backend:?} {v2}");
                    same_nodes(rows(&b2, "nodes"), rows(&b4, "nodes"), &v2);
                    compared += 1;
                }
            }
        }
        // Pages.
        for page in 1..=5 {
            let (b2, a2) = ok(&app, &format!("/api/v2/nodes/page/{page}?perpage=13&orderby=-ctime")).await;
            let (b4, a4) = ok(&app, &format!("/api/v4/nodes/page/{page}?perpage=13&orderby=-ctime")).await;
            assert_eq!(total(&a2), total(&a4));
            same_nodes(rows(&b2, "nodes"), rows(&b4, "nodes"), "pages");
            compared += 1;
        }
        // Computers, users and groups with v2's names.
        for (v2, v4, resource) in [
            ("/api/v2/computers?orderby=-name", "/api/v4/computers?orderby=-label", "computers"),
            ("/api/v2/computers?name=like=\"ref-%\"", "/api/v4/computers?label=like=\"ref-%\"", "computers"),
            (
                "/api/v2/groups?type=\"core\"&orderby=name",
                "/api/v4/groups?type_string=\"core\"&orderby=label",
                "groups",
            ),
            ("/api/v2/groups?user_id=1&orderby=-id", "/api/v4/groups?user_id=1&orderby=-id", "groups"),
            ("/api/v2/users?orderby=-last_name", "/api/v4/users?orderby=-last_name", "users"),
            ("/api/v2/users?institution=like=\"%Z%\"", "/api/v4/users?institution=like=\"%Z%\"", "users"),
        ] {
            let (b2, a2) = ok(&app, v2).await;
            let (b4, a4) = ok(&app, v4).await;
            assert_eq!(total(&a2), total(&a4), "{v2}");
            assert_eq!(ids(&b2, resource), ids(&b4, resource), "{v2}");
            compared += 1;
        }
        // Links, attributes and extras of a sample of nodes.
        let (all, _) = ok(&app, "/api/v4/nodes?limit=400&orderby=id").await;
        let uuids: Vec<String> =
            rows(&all, "nodes").iter().map(|n| n["uuid"].as_str().unwrap().to_string()).step_by(7).collect();
        for uuid in &uuids {
            for (io, links, label2, label4) in [
                ("io/inputs", "links/incoming", "inputs", "incoming"),
                ("io/outputs", "links/outgoing", "outputs", "outgoing"),
            ] {
                let (b2, a2) = ok(&app, &format!("/api/v2/nodes/{uuid}/{io}")).await;
                let (b4, a4) = ok(&app, &format!("/api/v4/nodes/{uuid}/{links}")).await;
                assert_eq!(total(&a2), total(&a4), "{uuid} {io}");
                same_nodes(rows(&b2, label2), rows(&b4, label4), &format!("{uuid} {io}"));
                let (b2, _) = ok(&app, &format!("/api/v2/nodes/{uuid}/{io}?type=like=\"data.%\"&orderby=-id")).await;
                let (b4, _) =
                    ok(&app, &format!("/api/v4/nodes/{uuid}/{links}?node_type=like=\"data.%\"&orderby=-id")).await;
                same_nodes(rows(&b2, label2), rows(&b4, label4), &format!("{uuid} {io} filtered"));
                compared += 2;
            }
            for (name, v4) in [("attributes", "attributes"), ("extras", "extras")] {
                let (b2, _) = ok(&app, &format!("/api/v2/nodes/{uuid}/content/{name}")).await;
                let (b4, _) = ok(&app, &format!("/api/v4/nodes/{uuid}/contents/{v4}")).await;
                assert_eq!(b2["data"][name], b4["data"][name], "{uuid} {name}");
                compared += 1;
            }
        }
        // Pages of link lists.
        for page in 1..=2 {
            let v2 = format!("/api/v2/nodes/{CALC}/io/inputs/page/{page}?perpage=2&orderby=-ctime");
            let v4 = format!("/api/v4/nodes/{CALC}/links/incoming/page/{page}?perpage=2&orderby=-ctime");
            let (b2, a2) = ok(&app, &v2).await;
            let (b4, a4) = ok(&app, &v4).await;
            assert_eq!(total(&a2), total(&a4));
            same_nodes(rows(&b2, "inputs"), rows(&b4, "incoming"), &v2);
            compared += 1;
        }
        // Statistics.
        for (v2, v4) in [
            ("/api/v2/nodes/statistics", "/api/v4/nodes/statistics"),
            ("/api/v2/nodes/statistics?user=2", "/api/v4/nodes/statistics?user=2"),
        ] {
            let (b2, _) = ok(&app, v2).await;
            let (b4, _) = ok(&app, v4).await;
            assert_eq!(b2["data"], b4["data"], "{v2}");
            compared += 1;
        }
        assert!(compared > 300, "{compared}");
    }
}

/// The process nodes as v4 shows them: `(id, node_type, process_type, process_state,
/// exit_status, job state)`, by id.
async fn processes(app: &Responder) -> Vec<(i64, String, String, Value, Value, Value)> {
    let uri = "/api/v4/nodes?node_type=like=\"process.%\"&attributes=true\
               &attributes_filter=process_state,exit_status,state&orderby=id&limit=400";
    let (body, answer) = ok(app, uri).await;
    assert!(total(&answer) <= 400);
    rows(&body, "nodes")
        .iter()
        .map(|n| {
            let a = &n["attributes"];
            (
                n["id"].as_i64().unwrap(),
                n["node_type"].as_str().unwrap().to_string(),
                n["process_type"].as_str().unwrap_or_default().to_string(),
                a["process_state"].clone(),
                a["exit_status"].clone(),
                a["state"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn old_calculation_states() {
    for (backend, app) in apps().await {
        let procs = processes(&app).await;
        let active = |p: &Value| p == "waiting" || p == "running";
        // The README's table, written out on v4's attributes.
        let expected = |state: &str| -> Vec<i64> {
            procs
                .iter()
                .filter(|(_, _, _, ps, exit, job)| match state {
                    "NEW" => ps == "created",
                    "SUBMITTING" => active(ps) && (job == "uploading" || job == "submitting"),
                    "WITHSCHEDULER" => active(ps) && job == "withscheduler",
                    "RETRIEVING" => active(ps) && job == "retrieving",
                    "PARSING" => active(ps) && job == "parsing",
                    "FINISHED" => ps == "finished" && exit == 0,
                    "FAILED" => (ps == "finished" && exit != 0) || ps == "excepted" || ps == "killed",
                    _ => false,
                })
                .map(|p| p.0)
                .collect()
        };
        let states = [
            "NEW",
            "TOSUBMIT",
            "SUBMITTING",
            "WITHSCHEDULER",
            "COMPUTED",
            "RETRIEVING",
            "PARSING",
            "FINISHED",
            "SUBMISSIONFAILED",
            "RETRIEVALFAILED",
            "PARSINGFAILED",
            "FAILED",
            "IMPORTED",
        ];
        for state in states {
            for resource in ["calculations", "nodes"] {
                let uri = format!("/api/v2/{resource}?state=\"{state}\"&orderby=id&limit=400");
                let (body, _) = ok(&app, &uri).await;
                assert_eq!(ids(&body, resource), expected(state), "{backend:?} {uri}");
            }
        }
        // The fixtures have each of the derivable kinds.
        for state in ["NEW", "WITHSCHEDULER", "FINISHED", "FAILED"] {
            assert!(!expected(state).is_empty(), "{state}");
        }
        // A finished calculation whose job state was left at `parsing` is not PARSING.
        assert!(procs.iter().any(|p| p.3 == "finished" && p.5 == "parsing"));
        assert!(expected("PARSING").is_empty());
        // Negations keep process nodes only; lists mix old and today's names.
        let all: Vec<i64> = procs.iter().map(|p| p.0).collect();
        let finished = expected("FINISHED");
        let not_finished: Vec<i64> = all.iter().copied().filter(|id| !finished.contains(id)).collect();
        let (body, _) = ok(&app, "/api/v2/nodes?state!=\"FINISHED\"&orderby=id&limit=400").await;
        assert_eq!(ids(&body, "nodes"), not_finished);
        let (body, _) = ok(&app, "/api/v2/calculations?state=notin=\"FINISHED\"&orderby=id&limit=400").await;
        assert_eq!(ids(&body, "calculations"), not_finished);
        let mut either: Vec<i64> = finished.clone();
        either.extend(expected("FAILED"));
        either.sort();
        let (body, _) = ok(&app, "/api/v2/nodes?state=in=\"FINISHED\",\"FAILED\"&orderby=id&limit=400").await;
        assert_eq!(ids(&body, "nodes"), either);
        let created: Vec<i64> = procs.iter().filter(|p| p.3 == "created").map(|p| p.0).collect();
        let mut mixed = finished.clone();
        mixed.extend(created);
        mixed.sort();
        let (body, _) = ok(&app, "/api/v2/nodes?state=in=\"FINISHED\",\"created\"&orderby=id&limit=400").await;
        assert_eq!(ids(&body, "nodes"), mixed);
        // Today's names keep their meaning: `finished` includes non-zero exit statuses.
        let today = procs.iter().filter(|p| p.3 == "finished").count() as i64;
        assert_eq!(count(&app, "/api/v2/calculations?state=\"finished\"").await, today);
        assert!(today > finished.len() as i64);
        // Data nodes have no state.
        assert_eq!(count(&app, "/api/v2/data?state!=\"FINISHED\"").await, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn old_job_plugin_types() {
    const CALCJOB: &str = "process.calculation.calcjob.CalcJobNode.";
    for (backend, app) in apps().await {
        let procs = processes(&app).await;
        let of_plugin = |process_type: &str| -> Vec<i64> {
            procs.iter().filter(|p| p.1 == CALCJOB && p.2 == process_type).map(|p| p.0).collect()
        };
        let pw = of_plugin("aiida.calculations:quantumespresso.pw");
        let add = of_plugin("aiida.calculations:core.arithmetic.add");
        assert!(!pw.is_empty() && !add.is_empty(), "{backend:?}");
        for (old, expected) in [
            ("calculation.job.quantumespresso.pw.PwCalculation.", &pw),
            // The built-in plugins were renamed since 0.x (simpleplugins. → core.).
            ("calculation.job.simpleplugins.arithmetic.add.ArithmeticAddCalculation.", &add),
            ("calculation.job.arithmetic.add.ArithmeticAddCalculation.", &add),
        ] {
            for resource in ["nodes", "calculations"] {
                let uri = format!("/api/v2/{resource}?type=\"{old}\"&orderby=id");
                let (body, _) = ok(&app, &uri).await;
                assert_eq!(&ids(&body, resource), expected, "{backend:?} {uri}");
            }
        }
        // A plugin unknown to the database finds nothing (no longer every CalcJobNode).
        assert_eq!(count(&app, "/api/v2/nodes?type=\"calculation.job.nowhere.X.\"").await, 0);
        // `=like=` on a plugin module: the plugins at and below it.
        let (body, _) = ok(&app, "/api/v2/nodes?type=like=\"calculation.job.quantumespresso.%\"&orderby=id").await;
        assert_eq!(ids(&body, "nodes"), pw);
        let (body, _) = ok(&app, "/api/v2/nodes?type=like=\"calculation.job.quantumespresso.pw.%\"&orderby=id").await;
        assert_eq!(ids(&body, "nodes"), pw);
        let jobs: Vec<i64> = procs.iter().filter(|p| p.1 == CALCJOB).map(|p| p.0).collect();
        let (body, _) = ok(&app, "/api/v2/nodes?type=like=\"calculation.job.%\"&orderby=id").await;
        assert_eq!(ids(&body, "nodes"), jobs);
        // `!=`, and lists mixing a plugin type with other spellings.
        let n = count(&app, "/api/v2/nodes").await;
        let no_type = count(&app, "/api/v4/nodes?node_type=\"\"").await;
        let other = count(&app, "/api/v2/nodes?type!=\"calculation.job.quantumespresso.pw.PwCalculation.\"").await;
        assert_eq!(other, n - no_type - pw.len() as i64);
        let structures = count(&app, "/api/v2/structures").await;
        let uri = "/api/v2/nodes?type=in=\"calculation.job.quantumespresso.pw.PwCalculation.\",\"data.structure.StructureData.\"";
        assert_eq!(count(&app, uri).await, structures + pw.len() as i64);
        let uri = "/api/v2/calculations?type=notin=\"calculation.job.quantumespresso.pw.PwCalculation.\",\"calculation.job.simpleplugins.arithmetic.add.ArithmeticAddCalculation.\"";
        assert_eq!(count(&app, uri).await, procs.len() as i64 - (pw.len() + add.len()) as i64);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn statistics_of_a_class() {
    for (backend, app) in apps().await {
        for (resource, prefix) in CLASSES {
            let uri = format!("/api/v2/{resource}/statistics/");
            let (body, answer) = ok(&app, &uri).await;
            check_envelope(&body, resource, &uri, "", Value::Null);
            assert_eq!(answer.header("x-total-count").as_deref(), Some("0"));
            let data = &body["data"];
            assert_eq!(keys(data), set(&["ctime_by_day", "total", "types"]));
            let n = count(&app, &format!("/api/v2/{resource}")).await;
            assert_eq!(data["total"], n, "{backend:?} {resource}");
            let by_day: i64 = data["ctime_by_day"].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum();
            assert_eq!(by_day, n, "{resource}");
            for (t, k) in data["types"].as_object().unwrap() {
                assert!(t.starts_with(prefix), "{resource}: {t}");
                let k = k.as_i64().unwrap();
                assert_eq!(count(&app, &format!("/api/v4/nodes?node_type=\"{t}\"")).await, k, "{t}");
            }
            // Of one user.
            let (mine, _) = ok(&app, &format!("/api/v2/{resource}/statistics?user=1")).await;
            let v4 = if prefix.is_empty() {
                "/api/v4/nodes?user_id=1".to_string()
            } else {
                format!("/api/v4/nodes?user_id=1&node_type=like=\"{prefix}%\"")
            };
            assert_eq!(mine["data"]["total"], count(&app, &v4).await, "{resource}");
        }
        // Not for computers, users and groups; only the user filter.
        for resource in ["computers", "users", "groups"] {
            error(&app, &format!("/api/v2/{resource}/statistics"), 404).await;
        }
        let message = error(&app, "/api/v2/data/statistics?type=\"data.Data.\"", 400).await;
        assert!(message.contains("user="), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn old_group_types() {
    for (backend, app) in apps().await {
        let v4 = |t: &str| format!("/api/v4/groups?type_string=\"{t}\"&orderby=id");
        // The group type strings of 0.x, as aiida-core's migrations renamed them.
        for (old, today) in [
            ("", "core"),
            ("user", "core"),
            ("data.upf.family", "core.upf"),
            ("data.upf", "core.upf"),
            ("autogroup.run", "core.auto"),
            ("auto.run", "core.auto"),
            ("aiida.import", "core.import"),
            ("core", "core"),
        ] {
            let (b2, _) = ok(&app, &format!("/api/v2/groups?type=\"{old}\"&orderby=id")).await;
            let (b4, _) = ok(&app, &v4(today)).await;
            assert_eq!(ids(&b2, "groups"), ids(&b4, "groups"), "{backend:?} {old}");
        }
        assert!(count(&app, "/api/v2/groups?type=\"\"").await > 0);
        let all = count(&app, "/api/v2/groups").await;
        let core = count(&app, &v4("core")).await;
        let upf = count(&app, &v4("core.upf")).await;
        assert_eq!(count(&app, "/api/v2/groups?type!=\"\"").await, all - core);
        assert_eq!(count(&app, "/api/v2/groups?type=in=\"\",\"data.upf.family\"").await, core + upf);
        assert_eq!(count(&app, "/api/v2/groups?type=notin=\"\",\"data.upf.family\"").await, all - core - upf);
        // Patterns are today's strings.
        assert_eq!(
            count(&app, "/api/v2/groups?type=like=\"core%\"").await,
            count(&app, "/api/v4/groups?type_string=like=\"core%\"").await
        );
    }
}
