//! Conformance with the reference: every recorded answer of the golden files
//! (`tests/fixtures/v4.jsonl`, `tests/fixtures/querybuilder.jsonl`, recorded with
//! `tools/record_golden.py`) is replayed through the real router, on the archive, on the profile
//! folder and on the same profile in PostgreSQL; so is `tests/fixtures/fixture2.jsonl`, the
//! answers on the second fixture (every Data class: `fixture2.aiida`, `fixture2-profile`, and
//! its rows in PostgreSQL; `tests/fixtures/fixture2-pending.jsonl` holds the downloads not
//! served yet and is not replayed). Each answer is compared:
//! - the reference answered 2xx: the same status, X-Total-Count, Link targets (origin and
//!   quoting aside) and JSON body (`scheme://host` aside), or the same bytes and
//!   Content-Disposition for files;
//! - the reference answered 4xx: any 4xx whose JSON body has a `message` string;
//! - the reference answered 5xx: anything but a 5xx;
//! - an entry's `"allow": "<reason>"`: only "not a 5xx" (a documented difference);
//! - `"relax": {"$.data.x": "any" | "unordered" | "superset"}` loosens single JSON paths: the
//!   value is not compared, a list may come in any order, a list may hold more items;
//!   `{"$": "key order of the storage"}` on a JSON download: on PostgreSQL the same JSON with
//!   the keys in JSONB's order (as aiida-core on PostgreSQL writes it) passes too; the other
//!   storages must give the recorded bytes.
//!
//! One test per storage and file: `cargo test --test it golden::profile::v4` (`::fixture2`). An entry is named
//! `<file>:<line> <METHOD> <path>` (failures print it); `GOLDEN=<text>` replays only the entries
//! whose name or POST body contains the text, and `GOLDEN=v4.jsonl:17` exactly that line.
//! Each test prints `golden [Profile] v4.jsonl: N passed, ...`; when every file of a storage
//! has been replayed in this run, the total follows as `golden [Profile]: N passed, ...`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::{self, Answer, Backend, Fixture};

/// The golden files, in `tests/fixtures/`: the shared conformance set, POST /querybuilder in
/// depth, and the second fixture's answers.
const FILES: [&str; 3] = ["v4.jsonl", "querybuilder.jsonl", "fixture2.jsonl"];

/// The fixture whose storages answered a golden file.
fn fixture_of(file: &str) -> Fixture {
    if file.starts_with("fixture2") { Fixture::Second } else { Fixture::First }
}

/// Paths of endpoints that later work will serve; they are skipped (and counted) until then.
const NOT_YET: &[&str] = &[];

/// The environment variable that selects entries by name.
const SELECT_VAR: &str = "GOLDEN";

macro_rules! golden_tests {
    ($($module:ident: $backend:expr;)*) => {$(
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn v4() {
                replay($backend, "v4.jsonl").await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn querybuilder() {
                replay($backend, "querybuilder.jsonl").await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn fixture2() {
                replay($backend, "fixture2.jsonl").await;
            }
        }
    )*};
}

golden_tests! {
    archive: Backend::Archive;
    profile: Backend::Profile;
    postgres: Backend::Postgres;
}

#[derive(Default)]
struct Outcome {
    passed: usize,
    skipped: usize,
    /// Entries of the file left out by `GOLDEN=`.
    unselected: usize,
    failures: Vec<String>,
    server_errors: Vec<String>,
}

impl Outcome {
    fn add(&mut self, other: &Outcome) {
        self.passed += other.passed;
        self.skipped += other.skipped;
        self.unselected += other.unselected;
        self.failures.extend(other.failures.iter().cloned());
        self.server_errors.extend(other.server_errors.iter().cloned());
    }

    fn summary(&self) -> String {
        let mut line = format!(
            "{} passed, {} failed, {} skipped (not served yet: {NOT_YET:?}), {} answered 5xx",
            self.passed,
            self.failures.len(),
            self.skipped,
            self.server_errors.len()
        );
        if let Ok(selection) = std::env::var(SELECT_VAR) {
            line.push_str(&format!("; {SELECT_VAR}={selection:?} left out {}", self.unselected));
        }
        line
    }
}

/// The entries chosen by `GOLDEN=`: all when unset; `<file>:<line>` (with or without
/// `.jsonl`) names one line of one file; any other text is looked for in the entry's name and
/// POST body.
fn selected(file: &str, line: usize, name: &str, body: Option<&str>) -> bool {
    let Ok(wanted) = std::env::var(SELECT_VAR) else { return true };
    if let Some((wanted_file, wanted_line)) = wanted.rsplit_once(':')
        && let Ok(wanted_line) = wanted_line.parse::<usize>()
        && (file == wanted_file || file.strip_suffix(".jsonl") == Some(wanted_file))
    {
        return line == wanted_line;
    }
    name.contains(&wanted) || body.is_some_and(|b| b.contains(&wanted))
}

/// Replays the golden `file` on `backend`, prints what happened and fails on any mismatch.
async fn replay(backend: Backend, file: &str) {
    let fixture = fixture_of(file);
    if backend == Backend::Postgres && !harness::postgres_available(fixture) {
        return;
    }
    let app = harness::app_of(fixture, backend).await;
    let text = std::fs::read_to_string(harness::fixtures().join(file)).unwrap();
    let mut outcome = Outcome::default();
    for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{file}:{}: {e}", index + 1));
        let method = entry["method"].as_str().unwrap();
        let path = entry["path"].as_str().unwrap();
        let body = entry["body"].as_str();
        let name = format!("{file}:{} {method} {path}", index + 1);
        if !selected(file, index + 1, &name, body) {
            outcome.unselected += 1;
            continue;
        }
        let answer = harness::request(&app, method, path, body).await;
        let not_yet = NOT_YET.iter().any(|p| path.contains(p)) && !path.contains("projectable_properties");
        if answer.status >= 500 && !not_yet {
            outcome.server_errors.push(format!("{name}: status {}", answer.status));
        }
        if not_yet {
            outcome.skipped += 1;
            continue;
        }
        match check_on(backend, &entry, &answer) {
            None => outcome.passed += 1,
            Some(reason) => outcome.failures.push(format!("{name}\n     {reason}")),
        }
    }
    for f in &outcome.failures {
        eprintln!("FAIL [{backend:?}] {f}");
    }
    for e in &outcome.server_errors {
        eprintln!("5xx  [{backend:?}] {e}");
    }
    eprintln!("golden [{backend:?}] {file}: {}", outcome.summary());
    let ok = outcome.failures.is_empty() && outcome.server_errors.is_empty();
    report_total(backend, file, outcome);
    assert!(ok, "golden answers differ on {backend:?} ({file}); replay one with GOLDEN=<its name>");
}

/// Adds the outcome of one file to its storage's total, printed once every file is in.
fn report_total(backend: Backend, file: &str, outcome: Outcome) {
    static DONE: Mutex<BTreeMap<Backend, Vec<(String, Outcome)>>> = Mutex::new(BTreeMap::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    let files = done.entry(backend).or_default();
    files.push((file.to_string(), outcome));
    if FILES.iter().all(|f| files.iter().any(|(done, _)| done == f)) {
        let mut total = Outcome::default();
        files.iter().for_each(|(_, outcome)| total.add(outcome));
        eprintln!("golden [{backend:?}]: {}", total.summary());
    }
}

/// The relax value of `$` for a download whose object keys come in the order the storage keeps
/// them: the attribute order as written on SQLite, JSONB's order (shorter keys first) on
/// PostgreSQL, where aiida-core lists the arrays of an ArrayData in that order too.
const STORAGE_KEY_ORDER: &str = "key order of the storage";

/// [`check`], with the relaxations that depend on the storage.
fn check_on(backend: Backend, entry: &Value, got: &Answer) -> Option<String> {
    let difference = check(entry, got)?;
    let by_storage = entry.pointer("/relax/$").and_then(Value::as_str) == Some(STORAGE_KEY_ORDER);
    if backend == Backend::Postgres && by_storage && got.status == 200 {
        let expected = entry["raw_b64"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let body = serde_json::from_slice::<Value>(&got.body).ok();
        // serde_json's maps compare without regard to key order.
        if expected.is_some() && expected == body {
            return None;
        }
    }
    Some(difference)
}

pub(crate) fn check(entry: &Value, got: &Answer) -> Option<String> {
    let ref_status = entry["status"].as_u64().unwrap() as u16;
    let status = got.status;
    if let Some(why) = entry.get("allow").and_then(Value::as_str) {
        return (status >= 500).then(|| format!("status {status} (must not be 5xx; {why})"));
    }
    if ref_status >= 500 {
        return (status >= 500).then(|| format!("status {status}: the reference failed here, the candidate must not"));
    }
    let content_type = got.header("content-type").unwrap_or_default();
    let body_json: Option<Value> =
        if content_type.contains("json") { serde_json::from_slice(&got.body).ok() } else { None };
    if (400..500).contains(&ref_status) {
        if !(400..500).contains(&status) {
            return Some(format!("status {status}, expected a 4xx like the reference ({ref_status})"));
        }
        let ok = body_json.as_ref().and_then(|b| b.get("message")).is_some_and(Value::is_string);
        return (!ok).then(|| "a 4xx answer must be JSON with a \"message\" string".into());
    }
    if status != ref_status {
        let detail = String::from_utf8_lossy(&got.body).chars().take(300).collect::<String>();
        return Some(format!("status {status} != {ref_status}: {detail}"));
    }
    let ref_total = entry["x_total_count"].as_str().map(str::to_string);
    if ref_total != got.header("x-total-count") {
        return Some(format!("X-Total-Count {:?} != {:?}", got.header("x-total-count"), ref_total));
    }
    let ref_links = parse_link(entry["link"].as_str());
    let links = parse_link(got.header("link").as_deref());
    if ref_links != links {
        return Some(format!("Link {:?} != {:?}", got.header("link"), entry["link"]));
    }
    if let Some(expected) = entry.get("json") {
        let Some(body) = body_json else {
            return Some(format!("expected a JSON body, got content-type {content_type:?}"));
        };
        let relax = entry.get("relax").cloned().unwrap_or(Value::Null);
        return diff(&normalize(expected), &normalize(&body), "$", &relax);
    }
    if let Some(sha) = entry.get("sha256").and_then(Value::as_str) {
        let got_sha = format!("{:x}", Sha256::digest(&got.body));
        if sha != got_sha {
            let expected = entry["raw_b64"]
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).chars().take(200).collect::<String>());
            return Some(format!(
                "body bytes differ (size {} vs {}); expected {:?}, got {:?}",
                got.body.len(),
                entry["size"],
                expected,
                String::from_utf8_lossy(&got.body).chars().take(200).collect::<String>()
            ));
        }
    }
    if let Some(cd) = entry.get("content_disposition").and_then(Value::as_str)
        && got.header("content-disposition").as_deref() != Some(cd)
    {
        return Some(format!("Content-Disposition {:?} != {cd:?}", got.header("content-disposition")));
    }
    None
}

/// `scheme://host` at the start of a string becomes `ORIGIN`.
fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::String(s) if s.starts_with("http://") || s.starts_with("https://") => {
            let rest = s.split_once("://").unwrap().1;
            let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
            Value::String(format!("ORIGIN{path}"))
        }
        other => other.clone(),
    }
}

/// Link header → {rel: (path, sorted query parts)}, ignoring the origin and quoting.
fn parse_link(value: Option<&str>) -> std::collections::BTreeMap<String, (String, Vec<String>)> {
    let mut links = std::collections::BTreeMap::new();
    let Some(value) = value else { return links };
    for part in value.split('<').skip(1) {
        let Some((target, rest)) = part.split_once('>') else { continue };
        let rel = rest.split("rel=").nth(1).unwrap_or("").trim_matches(|c: char| !c.is_ascii_alphabetic());
        let rel = rel.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("").to_string();
        let without_origin = match target.find("://").or_else(|| target.find(":/")) {
            Some(i) => {
                let after = target[i..].trim_start_matches(':').trim_start_matches('/');
                after.find('/').map(|j| after[j..].to_string()).unwrap_or_default()
            }
            None => target.to_string(),
        };
        let (path, query) = without_origin.split_once('?').unwrap_or((&without_origin, ""));
        let unquote = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let mut parts: Vec<String> = unquote(query).split('&').map(str::to_string).collect();
        parts.sort();
        links.insert(rel, (unquote(path), parts));
    }
    links
}

fn canon_route(line: &Value) -> Value {
    match line.as_str() {
        Some(s) => {
            let parts: Vec<&str> = s.split_whitespace().collect();
            if parts.len() == 3 {
                let mut methods: Vec<&str> = parts[1].split(',').collect();
                methods.sort();
                Value::String(format!("{} {} {}", parts[0], methods.join(","), parts[2]))
            } else {
                line.clone()
            }
        }
        None => line.clone(),
    }
}

fn diff(a: &Value, b: &Value, path: &str, relax: &Value) -> Option<String> {
    match relax.get(path).and_then(Value::as_str) {
        Some("any") => return None,
        Some("unordered") => {
            let (Some(x), Some(y)) = (a.as_array(), b.as_array()) else {
                return Some(format!("{path}: expected a list"));
            };
            let mut x: Vec<String> = x.iter().map(|v| v.to_string()).collect();
            let mut y: Vec<String> = y.iter().map(|v| v.to_string()).collect();
            x.sort();
            y.sort();
            return (x != y).then(|| format!("{path}: different items"));
        }
        Some("superset") => {
            let Some(y) = b.as_array() else { return Some(format!("{path}: expected a list")) };
            let have: Vec<Value> = y.iter().map(canon_route).collect();
            let missing: Vec<&Value> =
                a.as_array().unwrap().iter().filter(|x| !have.contains(&canon_route(x))).collect();
            return (!missing.is_empty())
                .then(|| format!("{path}: candidate lacks {:?}", &missing[..missing.len().min(3)]));
        }
        _ => {}
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => (x != y).then(|| format!("{path}: {x} != {y}")),
        (Value::Bool(_), _) | (_, Value::Bool(_)) => Some(format!("{path}: {a} != {b}")),
        (Value::Number(x), Value::Number(y)) => {
            let (fx, fy) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            let same_text = x.to_string() == y.to_string();
            let close = (fx - fy).abs() <= 1e-12 * fx.abs().max(fy.abs());
            (!(same_text || fx == fy || close)).then(|| format!("{path}: {x} != {y}"))
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let sub = format!("{path}.{key}");
                match (x.get(key), y.get(key)) {
                    (None, Some(v)) => {
                        return Some(format!("{sub}: missing in reference, candidate has {}", truncate(v)));
                    }
                    (Some(_), None) => return Some(format!("{sub}: missing in candidate")),
                    (Some(p), Some(q)) => {
                        if let Some(d) = diff(p, q, &sub, relax) {
                            return Some(d);
                        }
                    }
                    (None, None) => {}
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: list length {} != {}", x.len(), y.len()));
            }
            x.iter().zip(y).enumerate().find_map(|(i, (p, q))| diff(p, q, &format!("{path}[{i}]"), relax))
        }
        _ => (a != b).then(|| format!("{path}: {} != {}", truncate(a), truncate(b))),
    }
}

fn truncate(v: &Value) -> String {
    v.to_string().chars().take(120).collect()
}
