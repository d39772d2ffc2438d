//! OPTIMADE (`/optimade`): the endpoints and their envelope, paging, sorting, the errors, the
//! derived properties against values computed by the `optimade` package's ASE adapter and by
//! pymatgen (`tests/fixtures/optimade_expected.json`, written by `optimade_expected.py`), and
//! the filter language against a brute-force evaluation over the entries' JSON: fixed filters
//! for every operator and for the precedence of NOT/AND/OR, and random filters (proptest).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use aiida_rest::http::Responder;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::harness::{self, Backend, get};

const BASE: &str = "/optimade/v1";

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Every entry, all fields, in the server's order.
async fn all_entries(app: &Responder) -> Vec<Value> {
    let answer = get(app, &format!("{BASE}/structures?page_limit=1000")).await;
    assert_eq!(answer.status, 200);
    answer.json()["data"].as_array().unwrap().clone()
}

/// The ids a filter selects, in order (all pages), or the error status and detail.
async fn select(app: &Responder, filter: &str) -> Result<Vec<String>, (u16, String)> {
    let answer =
        get(app, &format!("{BASE}/structures?page_limit=1000&response_fields=id&filter={}", encode(filter))).await;
    let body = answer.json();
    if answer.status != 200 {
        return Err((answer.status, body["errors"][0]["detail"].as_str().unwrap_or_default().to_string()));
    }
    assert_eq!(body["meta"]["data_returned"].as_u64().unwrap() as usize, body["data"].as_array().unwrap().len());
    Ok(body["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect())
}

/// The fixture storages, PostgreSQL when a server is available.
fn backends() -> Vec<Backend> {
    let mut list = vec![Backend::Archive, Backend::Profile];
    if harness::pg::shared().is_some() {
        list.push(Backend::Postgres);
    }
    list
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_and_envelope() {
    for backend in backends() {
        let app = harness::app(backend).await;
        for base in ["/optimade", "/optimade/v1", "/optimade/v1.2", "/optimade/v1.2.0"] {
            let info = get(&app, &format!("{base}/info")).await;
            assert_eq!(info.status, 200, "{base}");
            assert_eq!(info.header("content-type").as_deref(), Some("application/vnd.api+json"));
            let body = info.json();
            assert_eq!(body["data"]["attributes"]["api_version"], "1.2.0");
            assert_eq!(
                body["data"]["attributes"]["available_api_versions"][0]["url"],
                "http://127.0.0.1:5000/optimade/v1"
            );
            assert_eq!(body["data"]["attributes"]["entry_types_by_format"]["json"], json!(["structures"]));
            assert_eq!(body["meta"]["provider"]["prefix"], "aiida");
        }
        // versions: at the unversioned base URL only.
        let versions = get(&app, "/optimade/versions").await;
        assert_eq!((versions.status, versions.body.as_slice()), (200, b"version\n1\n".as_slice()));
        assert_eq!(versions.header("content-type").as_deref(), Some("text/csv; header=present"));
        assert_eq!(get(&app, "/optimade/v1/versions").await.status, 404);
        assert_eq!(get(&app, "/optimade/v2/info").await.status, 553);

        let info = get(&app, "/optimade/v1/info/structures").await.json();
        let properties = info["data"]["properties"].as_object().unwrap();
        for name in
            ["elements", "nelements", "species", "structure_features", "_aiida_label", "_aiida_ctime", "_aiida_creator"]
        {
            assert!(properties[name]["description"].is_string(), "{name}");
        }
        assert_eq!(properties["nelements"]["type"], "integer");
        assert_eq!(properties["lattice_vectors"]["unit"], "Å");
        assert_eq!(get(&app, "/optimade/v1/links").await.json()["data"], json!([]));

        // The list: envelope, every structure, every property.
        let list = get(&app, "/optimade/v1/structures").await;
        assert_eq!(list.header("content-type").as_deref(), Some("application/vnd.api+json"));
        let list = list.json();
        assert_eq!(list["meta"]["data_returned"], 30);
        assert_eq!(list["meta"]["data_available"], 30);
        assert_eq!(list["meta"]["more_data_available"], true);
        assert_eq!(list["meta"]["query"]["representation"], "/structures");
        assert!(list["meta"]["time_stamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(list["data"].as_array().unwrap().len(), 20);
        let first = &list["data"][0];
        assert_eq!(first["type"], "structures");
        assert_eq!(first["attributes"]["immutable_id"], first["id"]);
        assert!(first["attributes"]["last_modified"].is_string());

        // One entry.
        let id = first["id"].as_str().unwrap();
        let one = get(&app, &format!("/optimade/v1/structures/{id}?response_fields=nsites")).await.json();
        assert_eq!(one["data"]["id"], id);
        assert_eq!(one["data"]["attributes"], json!({"nsites": first["attributes"]["nsites"]}));
        let missing = get(&app, "/optimade/v1/structures/not-a-structure").await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.json()["errors"][0]["status"], "404");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_sorting_and_fields() {
    let app = harness::app(Backend::Archive).await;
    let all: Vec<String> = all_entries(&app).await.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(all.len(), 30);

    // Following links.next visits every entry once, in order.
    let mut seen = Vec::new();
    let mut next = Some(format!("{BASE}/structures?page_limit=7&response_fields=id"));
    while let Some(url) = next {
        let path = url.strip_prefix("http://127.0.0.1:5000").unwrap_or(&url).to_string();
        let body = get(&app, &path).await.json();
        seen.extend(body["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()));
        assert_eq!(body["meta"]["more_data_available"].as_bool().unwrap(), body["links"]["next"].is_string());
        next = body["links"]["next"].as_str().map(str::to_string);
    }
    assert_eq!(seen, all);

    let page = |q: &'static str| {
        let app = app.clone();
        async move {
            let body = get(&app, &format!("{BASE}/structures?response_fields=id&{q}")).await.json();
            body["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(page("page_limit=5&page_offset=10").await, all[10..15]);
    assert_eq!(page("page_limit=5&page_number=3").await, all[10..15]);
    assert_eq!(page("page_limit=5&page_offset=100").await, Vec::<String>::new());

    // Sorting: by nsites descending, then id ascending.
    let body =
        get(&app, &format!("{BASE}/structures?page_limit=100&sort=-nsites,id&response_fields=nsites")).await.json();
    let keys: Vec<(i64, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (-e["attributes"]["nsites"].as_i64().unwrap(), e["id"].as_str().unwrap().to_string()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // The server's max_rows bounds the page.
    let small = harness::app_with(Backend::Archive, harness::Settings { max_rows: 5, ..Default::default() }).await;
    let body = get(&small, &format!("{BASE}/structures")).await.json();
    assert_eq!((body["data"].as_array().unwrap().len(), body["meta"]["more_data_available"].clone()), (5, json!(true)));
    assert_eq!(get(&small, &format!("{BASE}/structures?page_limit=6")).await.status, 403);

    // response_fields: only those (id and type always).
    let body = get(&app, &format!("{BASE}/structures?page_limit=1&response_fields=elements,_aiida_label")).await.json();
    let attributes = body["data"][0]["attributes"].as_object().unwrap();
    assert_eq!(attributes.keys().collect::<Vec<_>>(), ["_aiida_label", "elements"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_json_api() {
    let app = harness::app(Backend::Archive).await;
    for (uri, status, needle) in [
        ("structures?filter=nelements%3D%3D2", 400, "position 10"),
        ("structures?filter=nelements%20%3D", 400, "position 11"),
        ("structures?filter=elements%20%3D%20%22Si%22", 400, "is a list"),
        ("structures?filter=crazyfield%3D2", 400, "Unknown property"),
        ("structures?filter=lattice_vectors%20LENGTH%203", 501, "not supported"),
        ("structures?filter=nsites%3Dnelements", 501, "not supported"),
        ("structures?filter=nelements%3D%22two%22", 400, "cannot be compared"),
        ("structures?page_limit=5000", 403, "at most"),
        ("structures?page_limit=-1", 400, "page_limit"),
        ("structures?page_limit=0", 400, "page_limit"),
        ("structures?page_offset=1&page_number=2", 400, "not both"),
        ("structures?response_format=xml", 400, "response_format"),
        ("structures?sort=elements", 400, "not sortable"),
        ("structures?sort=nothing", 400, "Unknown property"),
        ("structures?page_cursor=abc", 501, "page_cursor"),
        ("nothing", 404, "Not found"),
    ] {
        let answer = get(&app, &format!("{BASE}/{uri}")).await;
        assert_eq!(answer.status, status, "{uri}");
        assert_eq!(answer.header("content-type").as_deref(), Some("application/vnd.api+json"), "{uri}");
        let body = answer.json();
        let error = &body["errors"][0];
        assert_eq!(error["status"], status.to_string(), "{uri}");
        assert!(error["detail"].as_str().unwrap().contains(needle), "{uri}: {error}");
        assert_eq!(body["meta"]["api_version"], "1.2.0");
    }
    let answer = harness::request(&app, "POST", &format!("{BASE}/structures"), Some("{}")).await;
    assert_eq!(answer.status, 405);
    // Another provider's property: unknown, a warning, comparisons false.
    let answer = get(&app, &format!("{BASE}/structures?filter={}", encode("_other_field = 2"))).await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["meta"]["data_returned"], 0);
    assert!(body["meta"]["warnings"][0]["detail"].as_str().unwrap().contains("_other_field"));
    assert_eq!(select(&app, "_other_field IS UNKNOWN").await.unwrap().len(), 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_databases_each_serve_optimade() {
    use aiida_rest::http::databases::{Database, Databases, Options};
    use aiida_rest::http::{App, Settings};
    use aiida_rest::storage::Source;

    let database = |name: &str, source: Source, default: bool| Database {
        name: name.into(),
        source,
        default,
        settings: Settings::default(),
        limits: harness::DbLimits::default(),
    };
    let databases = Databases::new(Options::default());
    databases.configure(vec![
        database("archive", Source::Path(harness::archive_path()), true),
        database("profile", Source::Path(harness::profile_path()), false),
    ]);
    let app = databases.router(App::new());
    let alone = harness::app(Backend::Archive).await;
    let two_elements = select(&alone, "nelements=2").await.unwrap().len();
    assert!(two_elements > 2);
    for (prefix, base) in [
        ("/archive/optimade/v1", "http://127.0.0.1:5000/archive/optimade/v1"),
        ("/profile/optimade/v1", "http://127.0.0.1:5000/profile/optimade/v1"),
        ("/optimade/v1", "http://127.0.0.1:5000/optimade/v1"),
    ] {
        let info = get(&app, &format!("{prefix}/info")).await;
        assert_eq!(info.status, 200, "{prefix}");
        assert_eq!(info.json()["data"]["attributes"]["available_api_versions"][0]["url"], base);
        let list = get(&app, &format!("{prefix}/structures?page_limit=2&filter=nelements%3D2")).await.json();
        assert_eq!(list["meta"]["data_returned"], two_elements, "{prefix}");
        let next = list["links"]["next"].as_str().unwrap();
        assert!(next.starts_with(&format!("{base}/structures?")), "{next}");
    }
    let versions = get(&app, "/profile/optimade/versions").await;
    assert_eq!(versions.status, 200);
}

/// The provider fields agree with what REST API v4 says of the same nodes.
#[tokio::test(flavor = "multi_thread")]
async fn provider_fields_agree_with_v4() {
    let app = harness::app(Backend::Archive).await;
    let mut created = 0;
    for entry in all_entries(&app).await {
        let id = entry["id"].as_str().unwrap();
        let attributes = &entry["attributes"];
        let node = get(&app, &format!("/api/v4/nodes/{id}")).await.json();
        let node = &node["data"]["nodes"][0];
        assert_eq!(attributes["_aiida_label"], node["label"], "{id}");
        let ctime = aiida_rest::model::time::parse_stored(attributes["_aiida_ctime"].as_str().unwrap()).unwrap();
        assert_eq!(aiida_rest::model::time::http_date(ctime), node["ctime"].as_str().unwrap(), "{id}");
        let incoming = get(&app, &format!("/api/v4/nodes/{id}/links/incoming?link_type=\"create\"")).await.json();
        let creators: Vec<Value> =
            incoming["data"]["incoming"].as_array().unwrap().iter().map(|n| n["uuid"].clone()).collect();
        match creators.as_slice() {
            [] => assert!(attributes["_aiida_creator"].is_null(), "{id}"),
            [one] => {
                assert_eq!(&attributes["_aiida_creator"], one, "{id}");
                created += 1;
            }
            more => panic!("{id} has {} creators", more.len()),
        }
    }
    assert_eq!(created, 21);
}

/// The index of a profile is kept while the database is unchanged and rebuilt when it changes;
/// serving never writes the storage.
#[tokio::test(flavor = "multi_thread")]
async fn the_index_follows_a_changing_profile_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = harness::profile_copy(dir.path());
    let database = root.join("database.sqlite");
    let app = harness::build(root.as_path(), harness::Settings::default(), harness::DbLimits::default()).await;
    let digest = || {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(std::fs::read(&database).unwrap()))
    };
    let before = digest();
    assert_eq!(select(&app, "_aiida_label = \"renamed by the test\"").await.unwrap().len(), 0);
    assert_eq!(select(&app, "nelements >= 0").await.unwrap().len(), 30);
    assert_eq!(digest(), before, "serving OPTIMADE wrote the database");

    // Another program changes the profile: a new structure, a relabelled one (AiiDA moves the
    // mtime of a node it changes).
    let db = rusqlite::Connection::open(&database).unwrap();
    db.execute_batch(
        "INSERT INTO db_dbnode (uuid, node_type, process_type, label, description, ctime, mtime, attributes, extras,
                                repository_metadata, dbcomputer_id, user_id)
         SELECT 'a4ad2c2e-0000-4000-8000-000000000001', node_type, process_type, 'added by the test', description,
                ctime, mtime, attributes, extras, repository_metadata, dbcomputer_id, user_id
         FROM db_dbnode WHERE node_type = 'data.core.structure.StructureData.' ORDER BY id LIMIT 1;
         UPDATE db_dbnode SET label = 'renamed by the test', mtime = '2030-01-01 00:00:00.000000' WHERE id = (
             SELECT max(id) FROM db_dbnode WHERE node_type = 'data.core.structure.StructureData.'
             AND label != 'added by the test');",
    )
    .unwrap();
    drop(db);
    assert_eq!(select(&app, "nelements >= 0").await.unwrap().len(), 31);
    assert_eq!(select(&app, "_aiida_label = \"renamed by the test\"").await.unwrap().len(), 1);
    let added = select(&app, "_aiida_label = \"added by the test\"").await.unwrap();
    assert_eq!(added, ["a4ad2c2e-0000-4000-8000-000000000001"]);
}

/// After a change, the index is refreshed, not rebuilt, and equals an index built afresh, on
/// SQLite and PostgreSQL. A daemon's writes (a new structure, a node that is no structure) are
/// appended: only the new structure is derived, every kept entry is shared. A relabelling
/// through AiiDA (it moves the mtime); one that committed late (its mtime not the latest); a
/// relabelling by hand with a node deleted; a structure that committed late below the last id
/// read while another was deleted: each is seen, and only new structures are derived.
#[tokio::test(flavor = "multi_thread")]
async fn the_index_is_refreshed_after_a_change() {
    use aiida_rest::query::optimade::{Entry, StructureIndex, load};
    use std::sync::Arc;

    const S: &str = "'data.core.structure.StructureData.'";
    let copy = |uuid: &str, label: &str, attributes: &str| {
        format!(
            "INSERT INTO db_dbnode (uuid, node_type, process_type, label, description, ctime, mtime, attributes, \
             extras, repository_metadata, dbcomputer_id, user_id) SELECT '{uuid}', node_type, process_type, \
             '{label}', description, ctime, mtime, {attributes}, extras, repository_metadata, dbcomputer_id, \
             user_id FROM db_dbnode WHERE node_type = {S} ORDER BY id LIMIT 1"
        )
    };
    let appended = [
        copy("a4ad2c2e-0000-4000-8000-000000000002", "added", "attributes"),
        copy("a4ad2c2e-0000-4000-8000-000000000003", "unreadable", "'{}'"),
    ]
    .join(";\n");
    // AiiDA moves the mtime of every node it changes to the time of the change.
    let relabelled = format!(
        "UPDATE db_dbnode SET label = 'through AiiDA', mtime = '2030-01-01 00:00:00.000000' \
         WHERE id = (SELECT min(id) FROM db_dbnode WHERE node_type = {S})"
    );
    // The node `which` selects deleted, its links, group memberships, comments and logs first.
    let delete = |which: String| {
        [
            format!("CREATE TEMP TABLE gone AS {which}"),
            "DELETE FROM db_dblink WHERE input_id IN (SELECT id FROM gone) OR output_id IN (SELECT id FROM gone)"
                .into(),
            "DELETE FROM db_dbgroup_dbnodes WHERE dbnode_id IN (SELECT id FROM gone)".into(),
            "DELETE FROM db_dbcomment WHERE dbnode_id IN (SELECT id FROM gone)".into(),
            "DELETE FROM db_dblog WHERE dbnode_id IN (SELECT id FROM gone)".into(),
            "DELETE FROM db_dbnode WHERE id IN (SELECT id FROM gone)".into(),
        ]
        .join(";\n")
    };
    // A relabelling whose transaction committed late: its mtime is not after the latest one
    // the index saw.
    let late = format!(
        "UPDATE db_dbnode SET label = 'late', mtime = (SELECT max(mtime) FROM db_dbnode WHERE node_type = {S}) \
         WHERE id = (SELECT min(id) + 2 FROM db_dbnode WHERE node_type = {S})"
    );
    // A structure that committed late, with an id below the last one the index read and an
    // old mtime, while an old structure is deleted: as many rows, the same latest mtime.
    let swapped = [
        format!(
            "UPDATE db_dbnode SET node_type = {S}, label = 'came late', mtime = ctime, attributes = \
             (SELECT attributes FROM db_dbnode WHERE node_type = {S} ORDER BY id LIMIT 1) \
             WHERE id = (SELECT min(id) FROM db_dbnode WHERE node_type = 'data.core.int.Int.')"
        ),
        delete(format!(
            "SELECT id FROM db_dbnode WHERE node_type = {S} AND label NOT IN ('added', 'unreadable', 'came late', 'late', 'by hand', 'through AiiDA') \
             ORDER BY mtime, id LIMIT 1"
        )),
    ]
    .join(";\n");
    let changed = [
        format!("UPDATE db_dbnode SET label = 'by hand' WHERE id = (SELECT min(id) + 1 FROM db_dbnode WHERE node_type = {S})"),
        delete(format!("SELECT max(id) AS id FROM db_dbnode WHERE node_type = {S} AND label NOT IN ('added', 'unreadable')")),
    ]
    .join(";\n");

    let dir = tempfile::tempdir().unwrap();
    let root = harness::profile_copy(dir.path());
    let mut cases = vec![(harness::Source::Path(root.clone()), None)];
    if let Some(shared) = harness::pg::shared() {
        let url =
            harness::pg::load_fixture(&harness::pg::with_database(shared, "postgres"), true).expect("fixture loads");
        cases.push((harness::Source::postgres(&url), Some(url)));
    }
    for (source, url) in cases {
        let storage = harness::open(source, harness::DbLimits::default()).await.unwrap();
        let db = &storage.db;
        let context = if url.is_some() { "postgres" } else { "sqlite" };
        let run = async |sql: &str| match &url {
            Some(url) => harness::pg::connect(url).await.unwrap().batch_execute(sql).await.unwrap(),
            None => rusqlite::Connection::open(root.join("database.sqlite")).unwrap().execute_batch(sql).unwrap(),
        };
        let text = |entries: &[Arc<Entry>]| entries.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>();
        let index = StructureIndex::new();
        let first = index.get(db).await.unwrap();
        assert_eq!((first.entries.len(), first.derived, first.skipped.len()), (30, 30, 0), "{context}");
        // After `sql`: the index's entries, derived ones and skipped ones; how many entries it
        // shares with the index before; and that it equals an index built afresh.
        let mut before = first;
        for (sql, expected, kept, step) in [
            (&appended, (31, 1, 1), 30, "appended"),
            (&relabelled, (31, 0, 1), 30, "relabelled, all but it kept"),
            (&late, (31, 0, 1), 30, "relabelled late"),
            (&changed, (30, 0, 1), 29, "relabelled and one gone"),
            (&swapped, (30, 1, 1), 29, "one came late, one gone"),
        ] {
            run(sql).await;
            let after = index.get(db).await.unwrap();
            assert_eq!((after.entries.len(), after.derived, after.skipped.len()), expected, "{context} {step}");
            let shared = after.entries.iter().filter(|e| before.entries.iter().any(|f| Arc::ptr_eq(e, f))).count();
            assert_eq!(shared, kept, "{context} {step}");
            let afresh = load(db).await.unwrap();
            assert_eq!(
                (text(&after.entries), &after.skipped),
                (text(&afresh.entries), &afresh.skipped),
                "{context} {step}"
            );
            before = after;
        }
        let labels: Vec<&str> = before.entries.iter().map(|e| e.node.label.as_str()).collect();
        for label in ["through AiiDA", "late", "came late", "by hand", "added"] {
            assert!(labels.contains(&label), "{context}: {label} in {labels:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The derived properties against the reference tools

#[tokio::test(flavor = "multi_thread")]
async fn derived_properties_match_the_reference_tools() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(harness::fixtures().join("optimade_expected.json")).unwrap())
            .unwrap();
    let expected = expected["structures"].as_object().unwrap();
    for backend in backends() {
        let app = harness::app(backend).await;
        let entries = all_entries(&app).await;
        assert_eq!(entries.len(), expected.len());
        for entry in &entries {
            let id = entry["id"].as_str().unwrap();
            let want = &expected[id];
            let got = &entry["attributes"];
            for (name, value) in want.as_object().unwrap() {
                if name.starts_with('#') {
                    continue;
                }
                let ok = match (value, &got[name]) {
                    (Value::Array(w), Value::Array(g)) if name == "elements_ratios" => {
                        w.len() == g.len()
                            && w.iter().zip(g).all(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-12)
                    }
                    (w, g) if name.ends_with("positions") || name == "lattice_vectors" => close(w, g),
                    (w, g) => w == g,
                };
                assert!(ok, "{backend:?} {id} {name}: expected {value}, got {}", got[name]);
            }
        }
    }
}

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(x, y)),
        (a, b) => (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9,
    }
}

// ---------------------------------------------------------------------------------------------
// The filter language against a brute-force evaluation

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn text(self) -> &'static str {
        ["=", "!=", "<", "<=", ">", ">="][self as usize]
    }
    fn flip(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            o => o,
        }
    }
    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => o == Equal,
            Op::Ne => o != Equal,
            Op::Lt => o == Less,
            Op::Le => o != Greater,
            Op::Gt => o == Greater,
            Op::Ge => o != Less,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    S(String),
    N(f64),
}

impl Lit {
    fn text(&self) -> String {
        match self {
            Lit::S(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
            Lit::N(n) => format!("{n}"),
        }
    }
    /// `item OP self`, by the plain rules: strings with strings, numbers with numbers.
    fn compared(&self, item: &Value, op: Op) -> bool {
        match (item, self) {
            (Value::String(a), Lit::S(b)) => op.holds(a.as_str().cmp(b.as_str())),
            (Value::Number(a), Lit::N(b)) => a.as_f64().unwrap().partial_cmp(b).is_some_and(|o| op.holds(o)),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Cmp {
    Value(&'static str, Op, Lit),
    ConstantFirst(Lit, Op, &'static str),
    Known(&'static str, bool),
    Fuzzy(&'static str, &'static str, String),
    Has(&'static str, Op, Lit),
    Set(&'static str, &'static str, Vec<(Op, Lit)>),
    Length(&'static str, Op, i64),
    Zip(Vec<(Op, Lit, Op, Lit)>, Option<&'static str>),
}

#[derive(Debug, Clone, PartialEq)]
enum F {
    And(Box<F>, Box<F>),
    Or(Box<F>, Box<F>),
    Not(Box<F>),
    C(Cmp),
}

impl F {
    /// The filter text with only the parentheses precedence needs (NOT binds tighter than
    /// AND, which binds tighter than OR).
    fn text(&self) -> String {
        match self {
            F::Or(a, b) => format!("{} OR {}", a.text(), b.text()),
            F::And(a, b) => format!("{} AND {}", a.operand_of_and(), b.operand_of_and()),
            F::Not(inner) => match **inner {
                F::C(_) => format!("NOT {}", inner.text()),
                _ => format!("NOT ({})", inner.text()),
            },
            F::C(c) => c.text(),
        }
    }
    fn operand_of_and(&self) -> String {
        match self {
            F::Or(..) => format!("({})", self.text()),
            _ => self.text(),
        }
    }
    fn eval(&self, e: &Value) -> bool {
        match self {
            F::And(a, b) => a.eval(e) && b.eval(e),
            F::Or(a, b) => a.eval(e) || b.eval(e),
            F::Not(a) => !a.eval(e),
            F::C(c) => c.eval(&e["attributes"], e),
        }
    }
}

impl Cmp {
    fn text(&self) -> String {
        match self {
            Cmp::Value(p, op, v) => format!("{p} {} {}", op.text(), v.text()),
            Cmp::ConstantFirst(v, op, p) => format!("{} {} {p}", v.text(), op.text()),
            Cmp::Known(p, known) => format!("{p} IS {}", if *known { "KNOWN" } else { "UNKNOWN" }),
            Cmp::Fuzzy(p, kind, v) => format!("{p} {kind} {}", Lit::S(v.clone()).text()),
            Cmp::Has(p, op, v) => match op {
                Op::Eq => format!("{p} HAS {}", v.text()),
                _ => format!("{p} HAS {}{}", op.text(), v.text()),
            },
            Cmp::Set(p, mode, values) => {
                let list: Vec<String> = values
                    .iter()
                    .map(|(op, v)| if *op == Op::Eq { v.text() } else { format!("{}{}", op.text(), v.text()) })
                    .collect();
                format!("{p} HAS {mode} {}", list.join(", "))
            }
            Cmp::Length(p, op, n) => format!("{p} LENGTH {} {n}", op.text()),
            Cmp::Zip(tuples, mode) => {
                let list: Vec<String> = tuples
                    .iter()
                    .map(|(o1, v1, o2, v2)| format!("{}{}:{}{}", o1.text(), v1.text(), o2.text(), v2.text()))
                    .collect();
                let mode = mode.map(|m| format!("{m} ")).unwrap_or_default();
                format!("elements:elements_ratios HAS {mode}{}", list.join(","))
            }
        }
    }

    fn eval(&self, a: &Value, entry: &Value) -> bool {
        let prop = |p: &str| if p == "id" { entry["id"].clone() } else { a[p].clone() };
        let items = |p: &str| prop(p).as_array().cloned().unwrap_or_default();
        match self {
            Cmp::Value(p, op, v) => v.compared(&prop(p), *op),
            Cmp::ConstantFirst(v, op, p) => v.compared(&prop(p), op.flip()),
            Cmp::Known(p, known) => prop(p).is_null() != *known,
            Cmp::Fuzzy(p, kind, v) => prop(p).as_str().is_some_and(|s| match *kind {
                "CONTAINS" => s.contains(v.as_str()),
                "STARTS WITH" | "STARTS" => s.starts_with(v.as_str()),
                _ => s.ends_with(v.as_str()),
            }),
            Cmp::Has(p, op, v) => items(p).iter().any(|i| v.compared(i, *op)),
            Cmp::Set(p, mode, values) => {
                let list = items(p);
                let has = |(op, v): &(Op, Lit)| list.iter().any(|i| v.compared(i, *op));
                match *mode {
                    "ALL" => values.iter().all(has),
                    "ANY" => values.iter().any(has),
                    _ => list.iter().all(|i| values.iter().any(|(op, v)| v.compared(i, *op))),
                }
            }
            Cmp::Length(p, op, n) => op.holds((items(p).len() as i64).cmp(n)),
            Cmp::Zip(tuples, mode) => {
                let (el, ra) = (items("elements"), items("elements_ratios"));
                let row = |i: usize, (o1, v1, o2, v2): &(Op, Lit, Op, Lit)| {
                    v1.compared(&el[i], *o1) && v2.compared(&ra[i], *o2)
                };
                let has = |t: &(Op, Lit, Op, Lit)| (0..el.len()).any(|i| row(i, t));
                match *mode {
                    None | Some("ALL") => tuples.iter().all(has),
                    Some("ANY") => tuples.iter().any(has),
                    _ => (0..el.len()).all(|i| tuples.iter().any(|t| row(i, t))),
                }
            }
        }
    }
}

fn s(text: &str) -> Lit {
    Lit::S(text.into())
}

fn cmp(c: Cmp) -> F {
    F::C(c)
}

/// The brute-force answer: the ids of the entries (in server order) that `f` holds for.
fn brute_force(entries: &[Value], f: &F) -> Vec<String> {
    entries.iter().filter(|e| f.eval(e)).map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operator_against_brute_force() {
    let app = harness::app(Backend::Profile).await;
    let entries = all_entries(&app).await;
    let uuid = entries[3]["id"].as_str().unwrap().to_string();
    let label = entries[0]["attributes"]["_aiida_label"].as_str().unwrap().to_string();
    let mut filters = vec![];
    for op in [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge] {
        filters.push(cmp(Cmp::Value("nelements", op, Lit::N(2.0))));
        filters.push(cmp(Cmp::Value("nsites", op, Lit::N(4.5))));
        filters.push(cmp(Cmp::Value("chemical_formula_reduced", op, s("NaCl"))));
        filters.push(cmp(Cmp::Value("id", op, Lit::S(uuid.clone()))));
        filters.push(cmp(Cmp::Value("_aiida_label", op, Lit::S(label.clone()))));
        filters.push(cmp(Cmp::ConstantFirst(Lit::N(3.0), op, "nperiodic_dimensions")));
        filters.push(cmp(Cmp::Has("elements", op, s("O"))));
        filters.push(cmp(Cmp::Has("dimension_types", op, Lit::N(0.0))));
        filters.push(cmp(Cmp::Has("elements_ratios", op, Lit::N(0.5))));
        filters.push(cmp(Cmp::Length("elements", op, 2)));
        filters.push(cmp(Cmp::Zip(vec![(Op::Eq, s("O"), op, Lit::N(0.6))], None)));
    }
    for (mode, values) in [
        ("ALL", vec![(Op::Eq, s("Si")), (Op::Eq, s("O"))]),
        ("ALL", vec![(Op::Eq, s("Ba")), (Op::Eq, s("O")), (Op::Eq, s("Ti"))]),
        ("ANY", vec![(Op::Eq, s("Na")), (Op::Eq, s("Fe"))]),
        ("ONLY", vec![(Op::Eq, s("Si"))]),
        ("ONLY", vec![(Op::Eq, s("Cu")), (Op::Eq, s("Au"))]),
        ("ALL", vec![(Op::Gt, s("A")), (Op::Lt, s("M"))]),
    ] {
        filters.push(cmp(Cmp::Set("elements", mode, values)));
    }
    filters.push(cmp(Cmp::Set("structure_features", "ANY", vec![(Op::Eq, s("disorder"))])));
    filters.push(cmp(Cmp::Set("species_at_sites", "ALL", vec![(Op::Eq, s("O1")), (Op::Eq, s("O2"))])));
    for (kind, value) in
        [("CONTAINS", "O3"), ("STARTS WITH", "Ba"), ("STARTS", "Si"), ("ENDS WITH", "O"), ("ENDS", "Cl")]
    {
        filters.push(cmp(Cmp::Fuzzy("chemical_formula_reduced", kind, value.into())));
    }
    filters.push(cmp(Cmp::Fuzzy("chemical_formula_descriptive", "CONTAINS", "{".into())));
    for known in [true, false] {
        filters.push(cmp(Cmp::Known("_aiida_creator", known)));
        filters.push(cmp(Cmp::Known("nelements", known)));
    }
    for mode in [Some("ALL"), Some("ANY"), Some("ONLY")] {
        filters.push(cmp(Cmp::Zip(
            vec![(Op::Eq, s("O"), Op::Gt, Lit::N(0.5)), (Op::Eq, s("Ba"), Op::Lt, Lit::N(0.3))],
            mode,
        )));
    }
    // Precedence: NOT over AND over OR, written without parentheses where it decides.
    let a = || cmp(Cmp::Value("nelements", Op::Eq, Lit::N(1.0)));
    let b = || cmp(Cmp::Has("elements", Op::Eq, s("Si")));
    let c = || cmp(Cmp::Value("nsites", Op::Gt, Lit::N(3.0)));
    let not = |f: F| F::Not(Box::new(f));
    let and = |x: F, y: F| F::And(Box::new(x), Box::new(y));
    let or = |x: F, y: F| F::Or(Box::new(x), Box::new(y));
    filters.push(or(and(not(a()), b()), c()));
    filters.push(and(not(a()), or(b(), c())));
    filters.push(or(a(), and(b(), not(c()))));
    filters.push(not(or(a(), and(b(), c()))));
    filters.push(and(or(a(), b()), not(not(c()))));

    let mut nonempty = 0;
    for f in &filters {
        let text = f.text();
        let want = brute_force(&entries, f);
        let got = select(&app, &text).await.unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert_eq!(got, want, "{text}");
        nonempty += usize::from(!want.is_empty() && want.len() < entries.len());
    }
    // The filters discriminate: most select some entries but not all.
    assert!(nonempty > filters.len() / 2, "{nonempty} of {}", filters.len());

    // The precedence texts, as written.
    assert_eq!(filters[filters.len() - 5].text(), "NOT nelements = 1 AND elements HAS \"Si\" OR nsites > 3");
    assert_eq!(filters[filters.len() - 4].text(), "NOT nelements = 1 AND (elements HAS \"Si\" OR nsites > 3)");
    let x = select(&app, "NOT nelements = 1 AND elements HAS \"Si\" OR nsites > 3").await.unwrap();
    let y = select(&app, "(NOT nelements = 1 AND elements HAS \"Si\") OR nsites > 3").await.unwrap();
    let z = select(&app, "NOT (NOT nelements = 1 AND elements HAS \"Si\" OR nsites > 3)").await.unwrap();
    assert_eq!(x, y);
    // NOT of the whole is its complement.
    let all: BTreeSet<String> = entries.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    let (x, z): (BTreeSet<String>, BTreeSet<String>) = (x.into_iter().collect(), z.into_iter().collect());
    assert!(x.is_disjoint(&z));
    assert_eq!(x.union(&z).cloned().collect::<BTreeSet<_>>(), all);
}

// --- random filters -------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap())
}

fn fixture() -> &'static (Responder, Vec<Value>) {
    static APP: OnceLock<(Responder, Vec<Value>)> = OnceLock::new();
    APP.get_or_init(|| {
        runtime().block_on(async {
            let app = harness::app(Backend::Archive).await;
            let entries = all_entries(&app).await;
            (app, entries)
        })
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Eq), Just(Op::Ne), Just(Op::Lt), Just(Op::Le), Just(Op::Gt), Just(Op::Ge)]
}

fn element() -> impl Strategy<Value = Lit> {
    prop_oneof![
        Just("Si"),
        Just("O"),
        Just("Ba"),
        Just("Ti"),
        Just("C"),
        Just("H"),
        Just("Na"),
        Just("Cl"),
        Just("Cu"),
        Just("Au"),
        Just("Fe"),
        Just("Mg"),
        Just("Zr"),
        Just("Xx")
    ]
    .prop_map(s)
}

fn comparison() -> impl Strategy<Value = Cmp> {
    let ints = prop_oneof![Just("nelements"), Just("nsites"), Just("nperiodic_dimensions")];
    let strings = prop_oneof![
        Just("chemical_formula_reduced"),
        Just("chemical_formula_anonymous"),
        Just("chemical_formula_hill")
    ];
    let formula =
        prop_oneof![Just("Si"), Just("BaO3Ti"), Just("ClNa"), Just("AB"), Just("A"), Just("H2O"), Just("O"), Just("")];
    prop_oneof![
        (ints.clone(), op(), 0i64..10).prop_map(|(p, o, n)| Cmp::Value(p, o, Lit::N(n as f64))),
        (0i64..10, op(), ints).prop_map(|(n, o, p)| Cmp::ConstantFirst(Lit::N(n as f64), o, p)),
        (strings.clone(), op(), formula.clone()).prop_map(|(p, o, v)| Cmp::Value(p, o, s(v))),
        (strings, prop_oneof![Just("CONTAINS"), Just("STARTS WITH"), Just("ENDS")], formula)
            .prop_map(|(p, k, v)| Cmp::Fuzzy(p, k, v.to_string())),
        (op(), element()).prop_map(|(o, v)| Cmp::Has("elements", o, v)),
        (prop_oneof![Just("ALL"), Just("ANY"), Just("ONLY")], prop::collection::vec((op(), element()), 1..4))
            .prop_map(|(m, values)| Cmp::Set("elements", m, values)),
        (op(), 0i64..5).prop_map(|(o, n)| Cmp::Length("elements", o, n)),
        (prop_oneof![Just("elements"), Just("_aiida_creator"), Just("_zzz_unknown")], any::<bool>())
            .prop_map(|(p, k)| Cmp::Known(p, k)),
        (
            prop::collection::vec((element(), op(), 0u8..=10), 1..3),
            prop_oneof![Just(None), Just(Some("ALL")), Just(Some("ANY")), Just(Some("ONLY"))]
        )
            .prop_map(|(tuples, mode)| {
                // Without ALL/ANY/ONLY the grammar takes one tuple.
                let n = if mode.is_none() { 1 } else { tuples.len() };
                let tuples =
                    tuples.into_iter().take(n).map(|(e, o, r)| (Op::Eq, e, o, Lit::N(f64::from(r) / 10.0))).collect();
                Cmp::Zip(tuples, mode)
            }),
    ]
}

fn filter() -> impl Strategy<Value = F> {
    comparison().prop_map(F::C).prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| F::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| F::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| F::Not(Box::new(a))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any filter of the grammar's operators gives what the brute-force evaluation gives.
    #[test]
    fn random_filters_match_brute_force(f in filter()) {
        let (app, entries) = fixture();
        let text = f.text();
        let got = runtime().block_on(select(app, &text));
        prop_assert_eq!(got, Ok(brute_force(entries, &f)), "{}", text);
    }

    /// Garbage never makes a 5xx: a 200, or a JSON:API 400/501 naming the problem.
    #[test]
    fn malformed_filters_are_client_errors(text in "[ a-zA-Z0-9_=<>!\"(),.:-]{0,40}") {
        let (app, _) = fixture();
        let answer = runtime().block_on(get(app, &format!("{BASE}/structures?filter={}", encode(&text))));
        prop_assert!(matches!(answer.status, 200 | 400 | 501), "{} -> {}", text, answer.status);
        if answer.status != 200 {
            prop_assert!(answer.json()["errors"][0]["detail"].is_string());
        }
    }
}
