//! Property tests of the whole router against hostile input: random paths built from the URL
//! vocabulary of REST API v4, random query strings built from the pieces of its grammar, and
//! random methods and bodies. Whatever the client sends, the server must not fail (no 5xx, no
//! panic) and every client error must be a JSON `{"message": ...}`.
//!
//! The only 5xx a client may provoke is the 501 of the two matplotlib formats that this server
//! deliberately does not render (`mpl_pdf`, `mpl_png`); a 503 means the storage is unreachable,
//! which cannot happen on an archive.

use std::sync::LazyLock;

use aiida_rest::http::Responder;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

use crate::harness::{self, Answer, Backend};

/// One application over the demo archive for every case (opening it per case would dominate
/// the run time), with the identifiers that exist in it so that paths reach the handlers.
struct Fixture {
    rt: tokio::runtime::Runtime,
    app: Responder,
    node_uuids: Vec<String>,
    other_uuids: Vec<String>,
    /// The nodes grouped by node_type, so that rare kinds are drawn as often as common ones.
    nodes_by_type: Vec<Vec<String>>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let app = rt.block_on(harness::app(Backend::Archive));
    let rows = |uri: &'static str, label: &'static str| {
        let answer = rt.block_on(harness::get(&app, uri));
        assert_eq!(answer.status, 200, "{uri}");
        answer.json()["data"][label].as_array().expect("a list").clone()
    };
    let uuid = |row: &Value| row["uuid"].as_str().expect("a uuid").to_string();
    let mut nodes = rows("/api/v4/nodes?limit=400", "nodes");
    nodes.extend(rows("/api/v4/nodes?limit=400&offset=400", "nodes"));
    let node_uuids: Vec<String> = nodes.iter().map(uuid).collect();
    let mut by_type: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for node in &nodes {
        by_type.entry(node["node_type"].as_str().unwrap_or_default().to_string()).or_default().push(uuid(node));
    }
    let mut other_uuids: Vec<String> = rows("/api/v4/computers", "computers").iter().map(uuid).collect();
    other_uuids.extend(rows("/api/v4/groups", "groups").iter().map(uuid));
    assert!(!node_uuids.is_empty() && !other_uuids.is_empty());
    Fixture { rt, app, node_uuids, other_uuids, nodes_by_type: by_type.into_values().collect() }
});

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Paths

/// Path shapes of every rule, `{id}` and `{page}` to be filled in.
const TEMPLATES: &[&str] = &[
    "",
    "server",
    "server/endpoints",
    "querybuilder",
    "nodes",
    "nodes/page",
    "nodes/page/{page}",
    "nodes/{id}",
    "nodes/projectable_properties",
    "nodes/statistics",
    "nodes/full_types",
    "nodes/full_types_count",
    "nodes/download_formats",
    "nodes/{id}/links/incoming",
    "nodes/{id}/links/incoming/page",
    "nodes/{id}/links/incoming/page/{page}",
    "nodes/{id}/links/outgoing",
    "nodes/{id}/links/outgoing/page/{page}",
    "nodes/{id}/links/tree",
    "nodes/{id}/contents/attributes",
    "nodes/{id}/contents/extras",
    "nodes/{id}/contents/comments",
    "nodes/{id}/contents/derived_properties",
    "nodes/{id}/repo/list",
    "nodes/{id}/repo/contents",
    "nodes/{id}/download",
    "computers",
    "computers/page/{page}",
    "computers/{id}",
    "computers/projectable_properties",
    "groups",
    "groups/page/{page}",
    "groups/{id}",
    "groups/projectable_properties",
    "users",
    "users/page/{page}",
    "users/{id}",
    "users/projectable_properties",
    "processes/{id}/report",
    "processes/projectable_properties",
    "calcjobs/{id}/input_files",
    "calcjobs/{id}/output_files",
];

/// Words of the URL space, and segments no rule expects.
const SEGMENTS: &[&str] = &[
    "nodes",
    "computers",
    "users",
    "groups",
    "processes",
    "calcjobs",
    "server",
    "endpoints",
    "querybuilder",
    "page",
    "projectable_properties",
    "statistics",
    "full_types",
    "full_types_count",
    "download_formats",
    "links",
    "incoming",
    "outgoing",
    "tree",
    "contents",
    "attributes",
    "extras",
    "comments",
    "derived_properties",
    "repo",
    "list",
    "download",
    "report",
    "input_files",
    "output_files",
    "api",
    "v4",
    "",
    ".",
    "..",
    "...",
    "%2e%2e",
    "%2F",
    "%2f..%2f",
    "%00",
    "%ZZ",
    "%",
    "%2",
    "%e9",
    "%C3%A9",
    "%FF%FE",
    "é",
    "日本",
    "💥",
    "a%20b",
    "~",
    "!",
    "$",
    "'",
    "(",
    ")",
    "*",
    ";",
    ":",
    "@",
    "\"",
    "<",
    ">",
    "%25",
    "+",
    ",",
    "=",
    "&",
    "{}",
    "[]",
    "|",
    "\\",
    "^",
    "%3F",
    "%23",
    "NODES",
    "Nodes",
    "page%2F1",
    "%70age",
];

fn page_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..6).prop_map(|n| n.to_string()),
        select(vec![
            "0",
            "00",
            "01",
            "-1",
            "+1",
            "1.0",
            "1e3",
            "400",
            "999999",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999",
            "abc",
            "",
            "%31",
            "١",
            "1_0",
        ])
        .prop_map(str::to_string),
    ]
}

fn hex_junk() -> impl Strategy<Value = String> {
    "[0-9a-fA-F-]{1,40}"
}

fn id_segment(f: &'static Fixture) -> impl Strategy<Value = String> {
    let uuid = prop_oneof![3 => select(f.node_uuids.clone()), 1 => select(f.other_uuids.clone())];
    prop_oneof![
        3 => uuid.clone(),
        4 => (uuid.clone(), 1usize..=36).prop_map(|(u, n)| u[..n].to_string()),
        1 => (uuid.clone(), 1usize..=36).prop_map(|(u, n)| u[..n].to_ascii_uppercase()),
        1 => uuid.prop_map(|u| format!("{u}0")),
        2 => hex_junk(),
        2 => select(vec![
            "0", "1", "2", "3", "7", "42", "-1", "+5", "1_0", "_1", "1__0", " 1", "99999999",
            "9223372036854775807", "9223372036854775808", "-9223372036854775809",
            "99999999999999999999999999", "00000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "%", "%25", "%2D", "abc", "zzz", "é", "..", "",
        ])
        .prop_map(str::to_string),
        1 => select(SEGMENTS.to_vec()).prop_map(str::to_string),
    ]
}

fn prefix() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        20 => Just("/api/v4"),
        1 => select(vec!["/api/v4x", "/api", "", "/API/v4", "/api/v4/", "//api/v4", "/api/v3"]),
    ]
}

/// How one template segment is changed: mostly kept, sometimes replaced, dropped or followed
/// by an extra segment.
#[derive(Debug, Clone)]
enum Mutation {
    Keep,
    Replace(String),
    Drop,
    Insert(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let word = || select(SEGMENTS.to_vec()).prop_map(str::to_string);
    prop_oneof![
        30 => Just(Mutation::Keep),
        1 => word().prop_map(Mutation::Replace),
        1 => Just(Mutation::Drop),
        1 => word().prop_map(Mutation::Insert),
    ]
}

fn template_path(f: &'static Fixture) -> impl Strategy<Value = String> {
    (
        prefix(),
        select(TEMPLATES.to_vec()),
        id_segment(f),
        page_segment(),
        proptest::collection::vec(mutation(), 7),
        select(vec!["", "", "", "/", "//"]),
    )
        .prop_map(|(prefix, template, id, page, mutations, trailing)| {
            let mut segments = Vec::new();
            for (i, segment) in template.split('/').filter(|s| !s.is_empty()).enumerate() {
                let segment = match segment {
                    "{id}" => id.clone(),
                    "{page}" => page.clone(),
                    s => s.to_string(),
                };
                match mutations.get(i).cloned().unwrap_or(Mutation::Keep) {
                    Mutation::Keep => segments.push(segment),
                    Mutation::Replace(other) => segments.push(other),
                    Mutation::Drop => {}
                    Mutation::Insert(other) => {
                        segments.push(segment);
                        segments.push(other);
                    }
                }
            }
            let body = segments.join("/");
            if body.is_empty() { format!("{prefix}{trailing}") } else { format!("{prefix}/{body}{trailing}") }
        })
}

fn random_path(f: &'static Fixture) -> impl Strategy<Value = String> {
    let segment = prop_oneof![4 => select(SEGMENTS.to_vec()).prop_map(str::to_string), 1 => id_segment(f)];
    (prefix(), proptest::collection::vec(segment, 0..7))
        .prop_map(|(prefix, segments)| format!("{prefix}/{}", segments.join("/")))
}

fn any_path(f: &'static Fixture) -> impl Strategy<Value = String> {
    prop_oneof![4 => template_path(f), 1 => random_path(f)]
}

// ---------------------------------------------------------------------------------------------
// Query strings

const RESERVED: &[&str] = &[
    "limit",
    "offset",
    "perpage",
    "orderby",
    "download",
    "download_format",
    "filename",
    "in_limit",
    "out_limit",
    "attributes",
    "attributes_filter",
    "extras",
    "extras_filter",
    "full_type",
    "profile",
    "_",
];

const COLUMNS: &[&str] = &[
    "id",
    "pk",
    "uuid",
    "node_type",
    "process_type",
    "label",
    "description",
    "ctime",
    "mtime",
    "attributes",
    "extras",
    "repository_metadata",
    "dbcomputer_id",
    "computer",
    "user_id",
    "user",
    "hostname",
    "scheduler_type",
    "transport_type",
    "metadata",
    "email",
    "first_name",
    "last_name",
    "institution",
    "type_string",
    "time",
    "link_label",
    "link_type",
];

const GARBAGE_KEYS: &[&str] = &["foo", "a-b", "_x", "__", "1abc", "", "é", "x.y", "id ", " id", "%69d", "ID"];

const OPERATORS: &[&str] = &["=", "!=", ">", ">=", "<", "<=", "=like=", "=ilike=", "=in=", "=notin="];

const BAD_OPERATORS: &[&str] = &["==", "=>", "=<", "~", "", "=like", "=in=,", "%3D", "%3E", "%3D%3D"];

fn operator() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just("="), 8 => select(OPERATORS.to_vec()), 1 => select(BAD_OPERATORS.to_vec())]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(RESERVED.to_vec()),
        4 => select(COLUMNS.to_vec()),
        1 => select(GARBAGE_KEYS.to_vec()),
    ]
    .prop_map(str::to_string)
}

/// Pieces of the inside of a quoted string.
const QUOTED_PIECES: &[&str] = &[
    "a",
    "abc",
    "",
    "\"\"",
    "\"",
    "&",
    "%26",
    "%",
    "%25",
    "%%",
    "_",
    "é",
    "|",
    ".",
    "/",
    "..",
    "../..",
    "data.core.dict.Dict.",
    "data.core.structure.StructureData.",
    "process.",
    "%|",
    "|%",
    ",",
    "=",
    " ",
    "\\n",
    "\\x22",
    "\\0",
    "'",
    "*",
    "\\",
    "true",
    "1",
    "-1",
    "null",
    "aiida.calculations:core.arithmetic.add",
    "calcjob_inputs",
    "aiida.in",
    "path",
    "%00",
    "+",
    "2024-05-01",
    "日本",
    "mpl_pdf",
    "xsf",
    "<",
    ">",
];

/// Whole quoted values that mean something to some key (full types, file names, patterns).
const QUOTED_VALUES: &[&str] = &[
    "data.core.dict.Dict.|",
    "data.core.structure.StructureData.|",
    "data.core.foo.Foo.|",
    "foo|",
    "|",
    "%|",
    "%|%",
    "|%",
    "process.%|%",
    "data.%|",
    "data.core.%|",
    "a|b|c",
    "a%b|",
    "a%%|",
    "process.calculation.calcjob.CalcJobNode.|aiida.calculations:core.arithmetic.add",
    "process.workflow.workchain.WorkChainNode.|aiida.workflows:nope",
    "node.Node.|",
    "Node|",
    "data.core.array.bands.BandsData.|",
    "data.core.upf.UpfData.|",
    "aiida.in",
    "aiida.out",
    "_aiidasubmit.sh",
    "sub",
    "sub/deeper",
    "sub/deeper/c.json",
    "sub/",
    "/sub",
    "sub//b.txt",
    "percent%name.txt",
    "spectrum data.dat",
    "ünï cödé.txt",
    "empty_dir",
    "out/.gitkeep",
    "bands.npy",
    ".aiida",
    ".aiida/calcinfo.json",
    "..",
    "../..",
    "/",
    ".",
    "./sub",
    "nope",
    "a\\b",
    "%",
    "_",
    "%a%",
    "\\%",
];

fn quoted() -> impl Strategy<Value = String> {
    let content = prop_oneof![
        2 => proptest::collection::vec(select(QUOTED_PIECES.to_vec()), 0..5).prop_map(|p| p.concat()),
        1 => select(QUOTED_VALUES.to_vec()).prop_map(str::to_string),
    ];
    (content, prop_oneof![12 => Just(true), 1 => Just(false)])
        .prop_map(|(content, closed)| format!("\"{content}{}", if closed { "\"" } else { "" }))
}

const WORDS: &[&str] = &[
    "true",
    "false",
    "True",
    "False",
    "null",
    "None",
    "abc",
    "-ctime",
    "+id",
    "-id",
    "id",
    "label",
    "ctime",
    "uuid",
    "pk",
    "node_type",
    "-",
    "+",
    "--a",
    "trueish",
    "a-b",
    "attributes",
    "json",
    "cif",
    "xsf",
    "xyz",
    "chemdoodle",
    "yaml",
    "yml",
    "upf",
    "agr",
    "agr_batch",
    "dat_blocks",
    "dat_multicolumn",
    "gnuplot",
    "mpl_pdf",
    "mpl_png",
    "mpl_singlefile",
    "mpl_withjson",
    "link_label",
    "-link_type",
    "email",
    "x_y",
    "_",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "-2",
    "+3",
    "20",
    "399",
    "400",
    "401",
    "1000",
    "1e3",
    "1.5",
    "-0.0",
    ".5",
    "1.",
    "-.5",
    "007",
    "1e-400",
    "1e400",
    "-1e400",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999",
    "18446744073709551615",
    "4611686018427387904",
    "٣",
    "1_000",
    "1e",
    "1.5.3",
    "0x10",
];

const DATETIMES: &[&str] = &[
    "2024-05-01",
    "2024-05-01T10",
    "2024-05-01T10:00",
    "2024-05-01T10:00:00",
    "2024-05-01T10:00:00+02:00",
    "2024-05-01T10+05",
    "2024-05-01T10:30-03:30",
    "2024-05-01+03",
    "0001-01-01",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59",
    "2020-02-29",
    "2024-13-01",
    "2024-02-30",
    "0000-01-01",
    "2024-01-01T24",
    "2024-01-01T23:60",
    "2024-01-01T00:00:60",
    "2024-01-01T05+24:00",
    "2024-01-01T05:4",
    "2024-05-01T10:11:12.5",
    "2024-05-01T10:00:00Z",
    "2024-5-1",
];

fn single_value(f: &'static Fixture) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => quoted(),
        3 => select(WORDS.to_vec()).prop_map(str::to_string),
        3 => select(NUMBERS.to_vec()).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        2 => select(DATETIMES.to_vec()).prop_map(str::to_string),
        1 => (select(f.node_uuids.clone()), 1usize..=36).prop_map(|(u, n)| format!("\"{}\"", &u[..n])),
        1 => Just(String::new()),
    ]
}

fn value(f: &'static Fixture) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => single_value(f),
        1 => (proptest::collection::vec(single_value(f), 2..5), any::<bool>())
            .prop_map(|(items, trailing)| format!("{}{}", items.join(","), if trailing { "," } else { "" })),
    ]
}

/// One `key op value`, or debris.
fn field(f: &'static Fixture) -> impl Strategy<Value = String> {
    prop_oneof![
        12 => (key(), operator(), value(f)).prop_map(|(k, op, v)| format!("{k}{op}{v}")),
        1 => select(vec!["=", ",", "&", "%", "%26", "%3D", "\"", "==", "=,", ",,", "a=,1", "x=\"a\nb\"", "\t", " "])
            .prop_map(str::to_string),
        1 => key(),
    ]
}

fn query(f: &'static Fixture) -> impl Strategy<Value = String> {
    let separator = prop_oneof![12 => Just("&"), 1 => Just("&&"), 1 => Just("%26"), 1 => Just(" & "), 1 => Just("")];
    (
        proptest::collection::vec((field(f), separator), 0..5),
        prop_oneof![6 => Just(""), 1 => Just("&")],
        prop_oneof![6 => Just(""), 1 => Just("&")],
    )
        .prop_map(|(fields, lead, trail)| {
            let mut q = String::from(lead);
            for (i, (field, sep)) in fields.iter().enumerate() {
                if i > 0 {
                    q.push_str(sep);
                }
                q.push_str(field);
            }
            q.push_str(trail);
            q
        })
}

// ---------------------------------------------------------------------------------------------
// Requests and the property

/// What a client can put on the wire: the harness escapes `"`, `<`, `>` and control bytes as
/// the listener does; spaces and `#` never reach a server raw, and the backtick is refused in
/// paths by the `http` crate.
fn wire(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for c in target.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '#' => out.push_str("%23"),
            '`' => out.push_str("%60"),
            c => out.push(c),
        }
    }
    out
}

/// A request target always starts with `/`, even when the generated path is empty.
fn uri(path: &str, query: Option<&str>) -> String {
    let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    match query {
        Some(q) => wire(&format!("{path}?{q}")),
        None => wire(&path),
    }
}

const BODIES: &[&str] = &[
    "",
    "{}",
    "null",
    "[]",
    "{",
    "\"x\"",
    "5",
    "{\"path\": []}",
    "{\"path\": 5}",
    "{\"path\": [{\"entity_type\": \"\"}]}",
    "{\"path\": [{\"cls\": \"nope\"}]}",
    "{\"path\": [\"data.core.dict.Dict.\"], \"limit\": -1}",
    "{\"path\": [\"node.Node.\"], \"limit\": 99999999999999999999, \"offset\": -5}",
    "{\"path\": [\"node.Node.\"], \"filters\": {\"node.Node.\": {\"id\": {\">\": \"x\"}}}}",
    "\u{0}",
];

fn deep_body() -> String {
    "[".repeat(5000)
}

fn method() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        12 => Just("GET"),
        2 => Just("HEAD"),
        2 => Just("OPTIONS"),
        2 => Just("POST"),
        1 => Just("PUT"),
        1 => Just("DELETE"),
    ]
}

fn send(method: &str, uri: &str, body: Option<&str>) -> Answer {
    let f = &*FIXTURE;
    f.rt.block_on(harness::request(&f.app, method, uri, body))
}

fn decoded(uri: &str) -> String {
    percent_encoding::percent_decode_str(uri).decode_utf8_lossy().into_owned()
}

/// The property: no server error (bar the unrendered matplotlib formats), and every client
/// error a JSON object with a string `message`; JSON answers are valid JSON.
fn check(method: &str, uri: &str, answer: &Answer) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(&answer.body);
    let show = || format!("{method} {uri} -> {} {}", answer.status, text.chars().take(600).collect::<String>());
    let plain = decoded(uri);
    let matplotlib = plain.contains("mpl_pdf") || plain.contains("mpl_png");
    prop_assert!(answer.status < 500 || (matplotlib && answer.status == 501), "server error: {}", show());
    if method == "HEAD" {
        prop_assert!(answer.body.is_empty(), "HEAD with a body: {}", show());
        return Ok(());
    }
    let is_json = answer.header("content-type").is_some_and(|t| t.starts_with("application/json"));
    if (400..500).contains(&answer.status) {
        prop_assert!(is_json, "client error that is not JSON: {}", show());
    }
    if is_json {
        let body: Result<Value, _> = serde_json::from_slice(&answer.body);
        prop_assert!(body.is_ok(), "invalid JSON: {}", show());
        if (400..500).contains(&answer.status) {
            prop_assert!(body.unwrap()["message"].is_string(), "error without a message: {}", show());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(500))]

    /// Any method on any path of the vocabulary, with or without a query string and a body.
    #[test]
    fn random_requests_never_fail(
        method in method(),
        path in any_path(&FIXTURE),
        query in proptest::option::of(query(&FIXTURE)),
        body in prop_oneof![4 => Just(None), 3 => select(BODIES.to_vec()).prop_map(Some), 1 => Just(Some("deep"))],
    ) {
        let uri = uri(&path, query.as_deref());
        let deep = deep_body();
        let body = body.map(|b| if b == "deep" { deep.as_str() } else { b });
        let body = if method == "POST" || method == "PUT" { body } else { None };
        let answer = send(method, &uri, body);
        check(method, &uri, &answer)?;
    }
}

proptest! {
    #![proptest_config(config(500))]

    /// GET on the real endpoints (real identifiers, rare mutations) with random query strings,
    /// so that the query reaches the parameter checks, the SQL and the exporters.
    #[test]
    fn random_queries_on_real_endpoints(
        path in template_path(&FIXTURE),
        query in query(&FIXTURE),
    ) {
        let uri = uri(&path, Some(&query));
        let answer = send("GET", &uri, None);
        check("GET", &uri, &answer)?;
    }
}

fn paging_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (-3i64..30).prop_map(|n| n.to_string()),
        2 => select(NUMBERS.to_vec()).prop_map(str::to_string),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => Just("\"5\"".to_string()),
    ]
}

proptest! {
    #![proptest_config(config(400))]

    /// Paging: pages, perpage, limit, offset and the link limits at and beyond their edges; no
    /// list may hold more rows than the limits allow.
    #[test]
    fn paging_at_the_edges(
        resource in prop_oneof![
            3 => Just("nodes"),
            1 => select(vec![
                "computers", "users", "groups", "nodes/{id}/links/incoming",
                "nodes/{id}/links/outgoing", "nodes/{id}/links/tree",
            ]),
        ],
        id in select(FIXTURE.node_uuids.clone()),
        page in proptest::option::of(prop_oneof![2 => Just("1".to_string()), 1 => page_segment()]),
        keys in proptest::collection::vec(
            (
                prop_oneof![
                    3 => Just("perpage"),
                    1 => select(vec!["limit", "offset", "in_limit", "out_limit", "orderby"]),
                ],
                paging_value(),
            ),
            0..3,
        ),
    ) {
        let mut path = format!("/api/v4/{}", resource.replace("{id}", &id));
        if let Some(page) = page {
            path.push_str("/page/");
            path.push_str(&page);
        }
        let query: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let uri = uri(&path, Some(&query.join("&")));
        let answer = send("GET", &uri, None);
        check("GET", &uri, &answer)?;
        // Every list is bounded: 400 rows (LIMIT_MAX), or the server's max_rows (10000 by
        // default) for a negative limit, which means "no limit" to the reference.
        let label = resource.rsplit('/').next().unwrap_or_default();
        if answer.status == 200 && label != "tree" {
            let rows = answer.json()["data"][label].as_array().map_or(0, Vec::len);
            let unlimited = keys
                .iter()
                .any(|(k, v)| *k == "limit" && v.trim_start_matches('"').starts_with('-'));
            let bound = if unlimited { 10_000 } else { 400 };
            prop_assert!(rows <= bound, "{uri}: {rows} rows, more than {bound}");
        }
    }
}

const NODE_VIEWS: &[&str] = &[
    "nodes/{id}",
    "nodes/{id}/download",
    "nodes/{id}/repo/list",
    "nodes/{id}/repo/contents",
    "nodes/{id}/contents/attributes",
    "nodes/{id}/contents/extras",
    "nodes/{id}/contents/comments",
    "nodes/{id}/contents/derived_properties",
    "nodes/{id}/links/tree",
    "nodes/{id}/links/incoming",
    "nodes/{id}/links/outgoing/page",
    "processes/{id}/report",
    "calcjobs/{id}/input_files",
    "calcjobs/{id}/output_files",
    "nodes/download_formats",
    "nodes/full_types_count",
    "nodes/statistics",
];

/// Keys the node views read, with values of the kinds they expect (and some they do not).
fn node_view_field(f: &'static Fixture) -> impl Strategy<Value = String> {
    let formats = select(WORDS.to_vec()).prop_map(str::to_string);
    prop_oneof![
        3 => (formats.clone(), any::<bool>()).prop_map(|(fmt, quote)| {
            if quote { format!("download_format=\"{fmt}\"") } else { format!("download_format={fmt}") }
        }),
        2 => select(vec!["true", "false", "\"false\"", "False", "1", "0", "\"x\""]).prop_map(|v| format!("download={v}")),
        3 => quoted().prop_map(|v| format!("filename={v}")),
        1 => select(QUOTED_VALUES.to_vec()).prop_map(|v| format!("filename={v}")),
        2 => (select(vec!["attributes_filter", "extras_filter"]), value(f)).prop_map(|(k, v)| format!("{k}={v}")),
        1 => (select(vec!["attributes", "extras"]), select(vec!["true", "false", "1", "\"true\""]))
            .prop_map(|(k, v)| format!("{k}={v}")),
        2 => quoted().prop_map(|v| format!("full_type={v}")),
        2 => (select(vec!["user", "in_limit", "out_limit", "limit", "orderby", "link_label", "link_type"]), operator(), value(f))
            .prop_map(|(k, op, v)| format!("{k}{op}{v}")),
        1 => field(f),
    ]
}

proptest! {
    #![proptest_config(config(500))]

    /// The views of one node of each kind (exporters, repository, contents, process views)
    /// with the keys they read.
    #[test]
    fn node_views_with_their_keys(
        view in select(NODE_VIEWS.to_vec()),
        kind in 0..FIXTURE.nodes_by_type.len(),
        pick in any::<prop::sample::Index>(),
        prefix_len in prop_oneof![4 => Just(36usize), 1 => 1usize..36],
        fields in proptest::collection::vec(node_view_field(&FIXTURE), 0..4),
    ) {
        let nodes = &FIXTURE.nodes_by_type[kind];
        let id = &pick.get(nodes)[..prefix_len];
        let path = format!("/api/v4/{}", view.replace("{id}", id));
        let uri = uri(&path, Some(&fields.join("&")));
        let answer = send("GET", &uri, None);
        check("GET", &uri, &answer)?;
    }
}

/// Fields that are valid on every list, repeated to make long queries.
const REPEATABLE: &[&str] = &["id>0", "pk!=-1", "id<=9000000", "id=notin=-1,-2", "id>=0.5", "id!=\"x\""];

/// A query string that is long because one thing is repeated `n` times.
fn long_query() -> impl Strategy<Value = String> {
    let n = prop_oneof![2 => 1usize..200, 1 => 200usize..2600];
    prop_oneof![
        (select(REPEATABLE.to_vec()), n.clone()).prop_map(|(field, n)| vec![field; n].join("&")),
        n.clone().prop_map(|n| {
            let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            format!("attributes=true&attributes_filter={},zz", keys.join(","))
        }),
        n.clone().prop_map(|n| format!("id=in={},-1", (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(","))),
        n.prop_map(|n| format!("orderby={},id", vec!["-ctime,label"; n].join(","))),
    ]
}

proptest! {
    #![proptest_config(config(100))]

    /// Long query strings (as long as a request line may be): many conditions, many projected
    /// keys, long lists. The database's own limits must never surface as a server error.
    #[test]
    fn long_query_strings(
        path in select(vec![
            "/api/v4/nodes", "/api/v4/computers", "/api/v4/groups", "/api/v4/users",
            "/api/v4/nodes/page/1", "/api/v4/nodes/{id}/links/incoming", "/api/v4/nodes/{id}/links/outgoing",
        ]),
        id in select(FIXTURE.node_uuids.clone()),
        query in long_query(),
    ) {
        let uri = uri(&path.replace("{id}", &id), Some(&query));
        let answer = send("GET", &uri, None);
        check("GET", &uri, &answer)?;
    }
}

/// A full type as clients write it: quoted or bare, known, unknown or malformed.
fn full_type_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(QUOTED_VALUES.to_vec()).prop_map(|v| format!("\"{v}\"")),
        1 => quoted(),
        1 => value(&FIXTURE),
    ]
}

proptest! {
    #![proptest_config(config(300))]

    /// The node-type endpoints and the `full_type` filter with every kind of full type.
    #[test]
    fn full_types_of_every_kind(
        path in select(vec![
            "nodes", "nodes/page/1", "nodes/download_formats", "nodes/full_types",
            "nodes/full_types_count", "nodes/statistics",
        ]),
        full_type in full_type_value(),
        user in proptest::option::of(select(vec!["1", "2", "-1", "\"1\"", "1.0", "x", "1,2", "99999999999999999999"])),
    ) {
        let mut query = format!("full_type={full_type}");
        if let Some(user) = user {
            query.push_str("&user=");
            query.push_str(user);
        }
        let uri = uri(&format!("/api/v4/{path}"), Some(&query));
        let answer = send("GET", &uri, None);
        check("GET", &uri, &answer)?;
    }
}
