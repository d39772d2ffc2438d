//! Hardening beyond the first robustness round: the same QueryBuilder input gets the same
//! answer on every database (numbers out of a double's range), heavy answers do not starve
//! cheap ones, and queries of clients that went away are stopped.

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
