//! `/nodes/statistics`, `/nodes/full_types`, `/nodes/full_types_count` and
//! `/nodes/download_formats` against the reference's recorded answers, on the archive, the
//! profile folder and PostgreSQL, plus the error answers where this server differs on purpose.

use serde_json::Value;

use crate::harness::{self, Answer, Backend};

/// The SQLite storages, and PostgreSQL when this machine has it.
fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Archive, Backend::Profile];
    if harness::pg::shared().is_some() {
        backends.push(Backend::Postgres);
    }
    backends
}

const GOLDEN_PATHS: [&str; 7] = [
    "/api/v4/nodes/statistics",
    "/api/v4/nodes/statistics?user=1",
    "/api/v4/nodes/full_types",
    "/api/v4/nodes/full_types_count",
    "/api/v4/nodes/full_types_count?user=1",
    "/api/v4/nodes/download_formats",
    "/api/v4/nodes/download_formats?full_type=%22data.core.structure.StructureData.%7C%22",
];

/// The recorded reference answer for `path`.
fn golden(path: &str) -> Value {
    let text = std::fs::read_to_string(harness::fixtures().join("v4.jsonl")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["path"] == path && e["method"] == "GET")
        .unwrap_or_else(|| panic!("no golden entry for {path}"))
}

/// Drops the host part of `url` and `url_root`, which depends on how the request was made.
fn without_host(mut body: Value) -> Value {
    for key in ["url", "url_root"] {
        if let Some(Value::String(url)) = body.get(key) {
            let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
            let path = rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_default();
            body[key] = Value::String(path);
        }
    }
    body
}

/// `%`, `"`, `|` and spaces encoded, so the full type survives the query-string decoding.
fn quote_full_type(full_type: &str) -> String {
    let mut out = String::from("%22");
    for c in full_type.chars() {
        match c {
            '%' => out.push_str("%25"),
            '"' => out.push_str("%22"),
            '|' => out.push_str("%7C"),
            ' ' => out.push_str("%20"),
            c => out.push(c),
        }
    }
    out.push_str("%22");
    out
}

fn assert_ok_zero(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.header("x-total-count").as_deref(), Some("0"), "{what}");
    assert_eq!(answer.header("content-type").as_deref(), Some("application/json"), "{what}");
}

fn assert_error(answer: &Answer, status: u16, message_part: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", String::from_utf8_lossy(&answer.body));
    let message = answer.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains(message_part), "{what}: message {message:?} lacks {message_part:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn golden_answers() {
    for backend in backends() {
        let app = harness::app(backend).await;
        for path in GOLDEN_PATHS {
            let entry = golden(path);
            let answer = harness::get(&app, path).await;
            let what = format!("[{backend:?}] {path}");
            assert_ok_zero(&answer, &what);
            assert_eq!(entry["x_total_count"], "0", "{what}");
            let expected = without_host(entry["json"].clone());
            let got = without_host(answer.json());
            assert_eq!(got, expected, "{what}");
            // The body also keeps the reference's key order and spacing.
            let raw = String::from_utf8(answer.body.clone()).unwrap();
            assert!(raw.ends_with("}\n") && !raw.contains(": "), "{what}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_that_the_reference_ignores_or_reads() {
    for backend in backends() {
        let app = harness::app(backend).await;
        let tree = golden("/api/v4/nodes/full_types")["json"]["data"].clone();
        // `full_types` does not read filters at all.
        let answer = harness::get(&app, "/api/v4/nodes/full_types?user=1&foo=3").await;
        assert_ok_zero(&answer, "full_types with filters");
        assert_eq!(answer.json()["data"], tree);

        // Reserved keys are ignored by the statistics.
        let stats = golden("/api/v4/nodes/statistics")["json"]["data"].clone();
        let answer = harness::get(&app, "/api/v4/nodes/statistics?limit=2").await;
        assert_ok_zero(&answer, "statistics?limit=2");
        assert_eq!(answer.json()["data"], stats);

        let by_user = golden("/api/v4/nodes/statistics?user=1")["json"]["data"].clone();
        let answer = harness::get(&app, "/api/v4/nodes/statistics?user=\"1\"").await;
        assert_eq!(answer.json()["data"], by_user);

        let answer = harness::get(&app, "/api/v4/nodes/statistics?user=99").await;
        assert_ok_zero(&answer, "statistics?user=99");
        assert_eq!(answer.json()["data"], serde_json::json!({"ctime_by_day": {}, "total": 0, "types": {}}));

        let answer = harness::get(&app, "/api/v4/nodes/full_types_count?user=99").await;
        assert_ok_zero(&answer, "full_types_count?user=99");
        let data = answer.json()["data"].clone();
        assert_eq!(data["subspaces"], serde_json::json!([]));
        assert!(data.get("counter").is_none());

        // An empty full type lists every format, as the reference's truthiness test does.
        let all = golden("/api/v4/nodes/download_formats")["json"]["data"].clone();
        let answer = harness::get(&app, "/api/v4/nodes/download_formats?full_type=\"\"").await;
        assert_ok_zero(&answer, "download_formats?full_type=\"\"");
        assert_eq!(answer.json()["data"], all);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn download_formats_by_full_type() {
    let app = harness::app(Backend::Archive).await;
    let cases = [
        ("data.core.dict.Dict.|", serde_json::json!({"data.core.dict.Dict.|": []})),
        (
            "data.core.array.kpoints.KpointsData.|",
            serde_json::json!({"data.core.array.kpoints.KpointsData.|": ["json"]}),
        ),
        (
            "data.core.code.installed.InstalledCode.|",
            serde_json::json!({"data.core.code.installed.InstalledCode.|": ["yaml", "yml"]}),
        ),
        ("process.calculation.calcjob.CalcJobNode.|aiida.calculations:core.arithmetic.add", serde_json::json!({})),
        (
            "process.workflow.workchain.WorkChainNode.|aiida.workflows:core.arithmetic.multiply_add",
            serde_json::json!({}),
        ),
    ];
    for (full_type, expected) in cases {
        let answer =
            harness::get(&app, &format!("/api/v4/nodes/download_formats?full_type={}", quote_full_type(full_type)))
                .await;
        assert_ok_zero(&answer, full_type);
        let body = answer.json();
        assert_eq!(body["data"], expected, "{full_type}");
        assert_eq!(body["id"], Value::Null);
        assert_eq!(body["resource_type"], "nodes");
    }
    for full_type in [
        "data.core.foo.Foo.|",
        "process.calculation.calcfunction.CalcFunctionNode.|fixture_processes.add",
        "process.calculation.calcjob.CalcJobNode.|aiida.calculations:quantumespresso.pw",
    ] {
        let answer =
            harness::get(&app, &format!("/api/v4/nodes/download_formats?full_type={}", quote_full_type(full_type)))
                .await;
        assert_error(&answer, 404, "The download formats for this node type are not available.", full_type);
    }
    for (query, message) in [
        ("full_type=\"abc\"", "The full type abc is invalid."),
        ("full_type=\"a|b|c\"", "The full type a|b|c is invalid."),
        ("full_type=3", "The full type 3 is invalid."),
    ] {
        let answer = harness::get(&app, &format!("/api/v4/nodes/download_formats?{query}")).await;
        assert_error(&answer, 400, message, query);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_user_equals_is_accepted() {
    let app = harness::app(Backend::Archive).await;
    for endpoint in ["statistics", "full_types_count"] {
        for query in ["id=3", "user>1", "user=1&user=2", "user=\"bob\"", "user=1&label=\"x\""] {
            let answer = harness::get(&app, &format!("/api/v4/nodes/{endpoint}?{query}")).await;
            assert_error(&answer, 400, "accepts only the filter user=<id>", &format!("{endpoint}?{query}"));
        }
    }
    for endpoint in ["statistics", "full_types", "full_types_count", "download_formats"] {
        let answer = harness::get(&app, &format!("/api/v4/nodes/{endpoint}?profile=other")).await;
        assert_error(&answer, 400, "profile", endpoint);
    }
}

/// Every counter of the tree equals what its full type selects on `/nodes`, and the leaves add
/// up to the statistics (the reference's own consistency tests).
#[tokio::test(flavor = "multi_thread")]
async fn counters_agree_with_filters_and_statistics() {
    for backend in backends() {
        let app = harness::app(backend).await;
        let tree = harness::get(&app, "/api/v4/nodes/full_types_count").await.json()["data"].clone();
        let stats = harness::get(&app, "/api/v4/nodes/statistics").await.json()["data"].clone();
        assert_eq!(tree["counter"], stats["total"]);

        let mut spaces = Vec::new();
        collect(&tree, &mut spaces);
        let mut per_node_type = std::collections::BTreeMap::<String, i64>::new();
        for space in &spaces {
            let Some(full_type) = space["full_type"].as_str() else {
                continue;
            };
            if space["path"] == "node" {
                continue;
            }
            let uri = format!("/api/v4/nodes?full_type={}&limit=1", quote_full_type(full_type));
            let answer = harness::get(&app, &uri).await;
            assert_eq!(answer.status, 200, "[{backend:?}] {uri}");
            assert_eq!(
                answer.header("x-total-count").and_then(|t| t.parse::<i64>().ok()),
                space["counter"].as_i64(),
                "[{backend:?}] {full_type}"
            );
            if space["subspaces"].as_array().unwrap().is_empty() {
                let node_type = full_type.split('|').next().unwrap().to_string();
                *per_node_type.entry(node_type).or_default() += space["counter"].as_i64().unwrap();
            }
        }
        let types: std::collections::BTreeMap<String, i64> =
            stats["types"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap())).collect();
        assert_eq!(per_node_type, types, "[{backend:?}]");
    }
}

fn collect<'a>(space: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(space);
    for sub in space["subspaces"].as_array().unwrap() {
        collect(sub, out);
    }
}
