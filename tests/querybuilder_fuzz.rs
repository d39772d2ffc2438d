//! `POST /querybuilder` under invalid and hostile bodies. `tests/querybuilder.rs` fuzzes valid
//! QueryBuilder dicts; this file sends everything else: JSON of every shape, broken JSON, and
//! dicts with hostile text in every string position (tags, entity types, column names, JSON
//! path keys, operators, order directions, casts, functions), duplicate and unknown tags,
//! joins to nowhere, cycles, huge numbers, enormous lists and deep nesting.
//!
//! The property is the server's contract for client input: never a 5xx, every 4xx is JSON with
//! a string `message`, every 200 is the JSON envelope with no more than `max_rows` rows per tag.
//!
//! Sizes that matter (list widths, nesting depths, numbers of projections) are generated as a
//! number and the body is built from it, so a failure shrinks to the smallest size that fails
//! instead of to a 2000-element list one element at a time. `sizes_at_the_limits` sends each of
//! those shapes at the sizes around the server's and the databases' limits and reports every
//! failure at once, where a property test stops at the first.

mod support;

use std::sync::OnceLock;

use aiida_rest::api::Settings;
use axum::Router;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use support::{Answer, Backend, request};

const QB: &str = "/api/v4/querybuilder";
/// The row cap of the app used for the limit/offset property (small, so that it bites).
const SMALL_MAX_ROWS: i64 = 7;

// --- the apps ------------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// The demo archive with the default settings.
    Archive,
    /// The demo archive with `max_rows` = [`SMALL_MAX_ROWS`].
    ArchiveCapped,
    /// The fixture in PostgreSQL (only when a server is available).
    Postgres,
}

impl Server {
    fn max_rows(self) -> i64 {
        match self {
            Server::ArchiveCapped => SMALL_MAX_ROWS,
            _ => Settings::default().max_rows,
        }
    }

    fn app(self) -> &'static Router {
        static ARCHIVE: OnceLock<Router> = OnceLock::new();
        static CAPPED: OnceLock<Router> = OnceLock::new();
        static POSTGRES: OnceLock<Router> = OnceLock::new();
        match self {
            Server::Archive => ARCHIVE.get_or_init(|| runtime().block_on(support::app(Backend::Archive))),
            Server::ArchiveCapped => CAPPED.get_or_init(|| {
                let settings = Settings { max_rows: SMALL_MAX_ROWS, ..Settings::default() };
                runtime().block_on(support::app_with(Backend::Archive, settings))
            }),
            Server::Postgres => POSTGRES.get_or_init(|| runtime().block_on(support::app(Backend::Postgres))),
        }
    }
}

fn post(server: Server, body: &str) -> Answer {
    runtime().block_on(request(server.app(), "POST", QB, Some(body)))
}

/// At most this much of a body goes into a failure message.
fn excerpt(text: &str) -> String {
    if text.chars().count() <= 600 {
        text.to_string()
    } else {
        format!("{}... ({} bytes)", text.chars().take(600).collect::<String>(), text.len())
    }
}

/// What is wrong with the answer to `body`, if anything.
fn violation(server: Server, body: &str) -> Option<String> {
    let answer = post(server, body);
    let text = String::from_utf8_lossy(&answer.body);
    let fail = |why: &str| Some(format!("{server:?}: {why}: status {} {}", answer.status, excerpt(&text)));
    if answer.status >= 500 {
        return fail("server error");
    }
    let Ok(json) = serde_json::from_slice::<Value>(&answer.body) else {
        return fail("the answer is not JSON");
    };
    let content_type = answer.header("content-type").unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return fail(&format!("content-type {content_type:?}"));
    }
    match answer.status {
        200 => {
            let Some(data) = json.get("data").and_then(Value::as_object) else {
                return fail("a 200 without a `data` object");
            };
            for (tag, rows) in data {
                match rows.as_array() {
                    Some(rows) if rows.len() as i64 <= server.max_rows() => {}
                    Some(rows) => return fail(&format!("{} rows for '{tag}', over max_rows", rows.len())),
                    None => return fail(&format!("data['{tag}'] is not a list")),
                }
            }
            None
        }
        400..=499 => {
            if json.get("message").is_some_and(Value::is_string) { None } else { fail("a 4xx without a string `message`") }
        }
        _ => fail("unexpected status"),
    }
}

fn check(server: Server, body: &str) -> Result<(), TestCaseError> {
    match violation(server, body) {
        None => Ok(()),
        Some(why) => Err(TestCaseError::fail(format!("{why}\nbody: {}", excerpt(body)))),
    }
}

fn postgres() -> bool {
    support::pg::shared().is_some()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        // Each case is an HTTP request; keep a failing run's shrinking short.
        max_shrink_iters: 512,
        max_shrink_time: 15_000,
        ..ProptestConfig::default()
    }
}

// --- hostile atoms -------------------------------------------------------------------------

/// Text that has broken parsers and SQL builders before: quotes, escapes, LIKE wildcards, NUL,
/// SQL comments, JSON-path syntax, names of real columns/operators in the wrong place, and
/// non-ASCII.
const NASTY: &[&str] = &[
    "",
    " ",
    "\0",
    "a\0b",
    "'",
    "''",
    "\"",
    "a\"b",
    "\\",
    "a\\",
    "%\\",
    "\\\\",
    "%",
    "_",
    "%_%",
    "\\%",
    "--",
    "/*",
    ";",
    "' OR '1'='1",
    "x'); DROP TABLE db_dbnode; --",
    "\"; SELECT 1; --",
    "$",
    "$.a",
    "$[0]",
    "[0]",
    "a.b",
    ".",
    "..",
    "**",
    "*",
    "id",
    "pk",
    "uuid",
    "label",
    "ctime",
    "attributes",
    "extras",
    "email",
    "node",
    "n",
    "t0",
    "t0--t1",
    "a--b",
    "ASC",
    "desc",
    "desc;--",
    "f",
    "i",
    "x",
    "==",
    "!=",
    "!!==",
    "~~like",
    "like",
    "in",
    "and",
    "~or",
    "contains",
    "has_key",
    "of_type",
    "count",
    "sum",
    "group.core",
    "group.",
    "data.",
    "data.core.int.Int.",
    "data.core.int",
    "process.calculation.calcjob.CalcJobNode.",
    "computer",
    "user",
    "link",
    "comment",
    "log",
    "USER",
    "é",
    "日本",
    "😀",
    "\u{202e}",
    "\u{feff}",
    "\u{ffff}",
    "\n",
    "\r\n\t",
    "null",
    "true",
    "-1",
    "1e400",
    "NaN",
    "2024-05-01",
    "+99999-01-01",
    "0000-01-01",
    "2024-13-45T25:61",
    "with_incoming",
    "with_ancestors",
    "direction",
    "edge_tag",
];

/// JSON number literals, kept as written (the crate enables serde_json's
/// `arbitrary_precision`, so `1e400` stays `1e400`).
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "0.5",
    "-0.0",
    "1e2",
    "1E+2",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e400",
    "-1e400",
    "1e-400",
    "123456789012345678901234567890.5",
];

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(NUMBERS).prop_map(|n| serde_json::from_str::<Value>(n).expect("a JSON number")),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
    ]
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(NASTY).prop_map(str::to_string),
        3 => "(?s).{0,12}",
        1 => (prop::sample::select(NASTY), prop::sample::select(NASTY)).prop_map(|(a, b)| format!("{a}{b}")),
        1 => (1usize..70_000).prop_map(|n| "x".repeat(n)),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        hostile_string().prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep, with hostile keys.
fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((hostile_string(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

// --- hostile QueryBuilder dicts ------------------------------------------------------------

const ENTITY_TYPES: &[&str] = &[
    "",
    "data.",
    "data.core.int.Int.",
    "data.core.structure.StructureData.",
    "process.",
    "process.calculation.calcjob.CalcJobNode.",
    "group.core",
    "group.core.auto",
    "computer",
    "user",
    "link",
    "comment",
    "log",
];

const JOIN_KEYWORDS: &[&str] = &[
    "with_incoming",
    "with_outgoing",
    "with_ancestors",
    "with_descendants",
    "with_computer",
    "with_user",
    "with_group",
    "with_node",
    "with_comment",
    "with_log",
    "with_nothing",
    "direction",
];

const ITEM_KEYS: &[&str] = &[
    "entity_type",
    "orm_base",
    "tag",
    "filters",
    "project",
    "subclassing",
    "edge_tag",
    "edge_filters",
    "edge_project",
    "outerjoin",
    "joining_keyword",
    "joining_value",
    "cls",
    "bogus",
];

const COLUMNS: &[&str] = &[
    "id",
    "pk",
    "uuid",
    "label",
    "node_type",
    "process_type",
    "description",
    "ctime",
    "mtime",
    "time",
    "user_id",
    "dbcomputer_id",
    "email",
    "type",
    "input_id",
    "depth",
    "ancestor_id",
    "content",
    "message",
    "metadata",
    "attributes",
    "extras",
    "type_string",
    "hostname",
];

const OPERATORS: &[&str] = &[
    "==", "!==", "~==", "!=", "<", "<=", "=<", ">", ">=", "=>", "like", "ilike", "!like", "in", "!in", "~~in",
    "contains", "!contains", "has_key", "~has_key", "of_type", "of_length", "longer", "shorter", "and", "or", "!and",
    "~or", "=", "is", "between", "",
];

const CASTS: &[&str] = &["f", "i", "b", "t", "j", "d", "x", "", "F", "int"];
const FUNCS: &[&str] = &["count", "max", "min", "sum", "avg", "", "COUNT"];
const DIRECTIONS: &[&str] = &["asc", "desc", "ASC", "Desc", "", "up", "desc; DROP TABLE db_dbnode"];

/// A tag: usually one the path defines (so that the body gets past the tag checks), sometimes
/// an edge tag, sometimes anything.
fn tag() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0usize..5).prop_map(|i| format!("t{i}")),
        1 => (0usize..4).prop_map(|i| format!("t{i}--t{}", i + 1)),
        1 => (0usize..4).prop_map(|i| format!("e{i}")),
        2 => hostile_string(),
    ]
}

/// A field name: a column, a JSON path with a hostile key, or anything.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(COLUMNS).prop_map(str::to_string),
        3 => (prop::sample::select(&["attributes", "extras", "metadata", "label", "id"][..]), hostile_string(), 0usize..3)
            .prop_map(|(column, key, depth)| {
                let mut name = column.to_string();
                for _ in 0..=depth {
                    name.push('.');
                    name.push_str(&key);
                }
                name
            }),
        1 => hostile_string(),
    ]
}

fn operator() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(OPERATORS).prop_map(str::to_string),
        1 => hostile_string(),
    ]
}

/// A value for an operator: anything, lists (also long ones), dates and like-patterns.
fn operand() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any_json(),
        2 => prop::collection::vec(leaf(), 0..8).prop_map(Value::Array),
        1 => (0usize..12_000, leaf()).prop_map(|(n, item)| Value::Array(vec![item; n])),
        1 => prop::sample::select(&["object", "array", "string", "number", "boolean", "null", "integer"][..])
            .prop_map(Value::from),
    ]
}

/// A filter dict: `{field: {op: value, ...} | value, "and"/"or": [filter, ...]}`.
fn filter() -> impl Strategy<Value = Value> {
    let condition = prop_oneof![
        3 => prop::collection::vec((operator(), operand()), 0..3)
            .prop_map(|ops| Value::Object(ops.into_iter().collect())),
        1 => operand(),
    ];
    let leaf = prop::collection::vec((field(), condition), 0..3).prop_map(|kv| Value::Object(kv.into_iter().collect()));
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (prop::sample::select(&["and", "or", "~and", "!or", "and ", "xor"][..]), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(combinator, parts)| json!({ combinator: parts })),
            (prop::sample::select(&["and", "or", "~or"][..]), inner.clone())
                .prop_map(|(combinator, part)| json!({ combinator: part })),
            (field(), prop::sample::select(&["and", "or", "!and"][..]), prop::collection::vec(any_json(), 0..3))
                .prop_map(|(field, combinator, parts)| json!({ field: { combinator: parts } })),
        ]
    })
}

/// A projection spec: a list of names and `{name: {cast, func}}`, or anything.
fn projection() -> impl Strategy<Value = Value> {
    let item = prop_oneof![
        3 => field().prop_map(Value::String),
        1 => Just(json!("**")),
        2 => (field(), prop::option::of(prop::sample::select(CASTS)), prop::option::of(prop::sample::select(FUNCS)))
            .prop_map(|(name, cast, func)| {
                let mut spec = Map::new();
                if let Some(cast) = cast {
                    spec.insert("cast".into(), json!(cast));
                }
                if let Some(func) = func {
                    spec.insert("func".into(), json!(func));
                }
                json!({ name: spec })
            }),
        1 => any_json(),
    ];
    prop_oneof![
        4 => prop::collection::vec(item, 0..4).prop_map(Value::Array),
        1 => any_json(),
    ]
}

/// An `order_by` value: a list of `{tag: [field | {field: dir | {order, cast}}]}`, or anything.
fn order_by() -> impl Strategy<Value = Value> {
    let spec = prop_oneof![
        2 => prop::sample::select(DIRECTIONS).prop_map(Value::from),
        2 => (prop::sample::select(DIRECTIONS), prop::option::of(prop::sample::select(CASTS))).prop_map(|(order, cast)| {
            match cast {
                Some(cast) => json!({"order": order, "cast": cast}),
                None => json!({ "order": order }),
            }
        }),
        1 => any_json(),
    ];
    let item = prop_oneof![
        2 => field().prop_map(Value::String),
        3 => (field(), spec).prop_map(|(name, spec)| json!({ name: spec })),
    ];
    let entry = (tag(), prop::collection::vec(item, 0..3)).prop_map(|(tag, items)| json!({ tag: items })).boxed();
    prop_oneof![
        4 => prop::collection::vec(entry.clone(), 0..3).prop_map(Value::Array),
        1 => entry,
        1 => any_json(),
    ]
}

/// A value for `limit` or `offset`.
fn window_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => Just(Value::Null),
        3 => (-3i64..20).prop_map(Value::from),
        2 => number(),
        1 => prop::sample::select(&["5", "-1", "", "1e3", "ten"][..]).prop_map(Value::from),
        1 => any_json(),
    ]
}

/// One path item: usually an object with an entity type, a tag and a join (to an earlier tag,
/// a later one, itself or nothing), plus random other keys; sometimes a bare string or
/// anything.
fn path_item() -> impl Strategy<Value = Value> {
    let entity_type = prop_oneof![
        6 => prop::sample::select(ENTITY_TYPES).prop_map(Value::from),
        1 => prop::collection::vec(prop::sample::select(ENTITY_TYPES), 0..3).prop_map(|l| json!(l)),
        2 => any_json(),
    ];
    let join_value = prop_oneof![
        4 => tag().prop_map(Value::String),
        1 => number(),
        1 => any_json(),
    ];
    let extra_value = prop_oneof![
        2 => tag().prop_map(Value::String),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => filter(),
        1 => projection(),
        1 => any_json(),
    ];
    let object = (
        prop::option::of(entity_type),
        prop::option::of(tag()),
        prop::option::of((prop::sample::select(JOIN_KEYWORDS), join_value)),
        prop::collection::vec((prop::sample::select(ITEM_KEYS), extra_value), 0..3),
    )
        .prop_map(|(entity_type, tag, join, extra)| {
            let mut item = Map::new();
            for (key, value) in extra {
                item.insert(key.to_string(), value);
            }
            if let Some(entity_type) = entity_type {
                item.insert("entity_type".into(), entity_type);
            }
            if let Some(tag) = tag {
                item.insert("tag".into(), Value::String(tag));
            }
            if let Some((keyword, value)) = join {
                item.insert(keyword.to_string(), value);
            }
            Value::Object(item)
        });
    prop_oneof![
        8 => object,
        1 => prop::sample::select(ENTITY_TYPES).prop_map(Value::from),
        1 => any_json(),
    ]
}

/// A mostly well-formed dict with hostile content.
fn hostile_dict() -> impl Strategy<Value = Value> {
    let path = prop_oneof![
        8 => prop::collection::vec(path_item(), 1..5).prop_map(Value::Array),
        1 => Just(json!([])),
        1 => any_json(),
    ];
    let per_tag = |spec: BoxedStrategy<Value>| {
        prop_oneof![
            4 => prop::collection::vec((tag(), spec), 0..3).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            1 => any_json(),
        ]
    };
    (
        path,
        prop::option::of(per_tag(filter().boxed())),
        prop::option::of(per_tag(projection().boxed())),
        prop::option::of(order_by()),
        prop::option::of(window_value()),
        prop::option::of(window_value()),
        prop::option::of(prop_oneof![3 => any::<bool>().prop_map(Value::Bool), 1 => any_json()]),
        prop::option::of(prop_oneof![
            2 => (tag(), field(), hostile_string()).prop_map(|(t, f, to)| json!({ t: { f: to } })),
            1 => any_json(),
        ]),
        prop::option::of((hostile_string(), any_json())),
    )
        .prop_map(|(path, filters, project, order_by, limit, offset, distinct, project_map, extra)| {
            let mut dict = Map::new();
            dict.insert("path".into(), path);
            let optional = [
                ("filters", filters),
                ("project", project),
                ("order_by", order_by),
                ("limit", limit),
                ("offset", offset),
                ("distinct", distinct),
                ("project_map", project_map),
            ];
            for (key, value) in optional {
                if let Some(value) = value {
                    dict.insert(key.into(), value);
                }
            }
            if let Some((key, value)) = extra {
                dict.insert(key, value);
            }
            Value::Object(dict)
        })
}

/// Bodies that are not JSON, or JSON with a twist the `Value` model cannot express: truncated
/// text, duplicate keys, lone surrogates, byte-order marks, trailing garbage, comments.
fn broken_text() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(
        &[
            "",
            " ",
            "{",
            "}",
            "[",
            "null",
            "true",
            "0",
            "\"path\"",
            "{\"path\":}",
            "{\"path\":[{\"entity_type\":\"\"}],}",
            "{\"path\":[{\"entity_type\":\"\"}]} trailing",
            "{\"path\":[{\"entity_type\":\"\"}]}{}",
            "\u{feff}{\"path\":[{\"entity_type\":\"\"}]}",
            "{\"path\":[{\"entity_type\":\"\\ud800\"}]}",
            "{\"path\":[{\"entity_type\":\"\\udc00\\ud800\"}]}",
            "{\"path\":[{\"entity_type\":\"\\u0000\",\"tag\":\"\\u0000\"}]}",
            "{\"path\":[{\"entity_type\":\"\"}] /* comment */}",
            "{'path': [{'entity_type': ''}]}",
            "{\"path\":[{\"entity_type\":\"\"}],\"limit\":NaN}",
            "{\"path\":[{\"entity_type\":\"\"}],\"limit\":Infinity}",
            "{\"path\":[{\"entity_type\":\"\"}],\"limit\":01}",
            "{\"path\":[{\"entity_type\":\"\"}],\"limit\":1e999999999999}",
            "{\"path\":[{\"entity_type\":\"\"}],\"limit\":-}",
            "{\"path\":[{\"entity_type\":\"\",\"tag\":\"n\"},{\"entity_type\":\"\",\"tag\":\"n\"}]}",
            "{\"path\":[{\"entity_type\":\"\",\"tag\":\"n\",\"tag\":5}]}",
            "{\"path\":5,\"path\":[{\"entity_type\":\"\"}]}",
            "{\"path\":[{\"entity_type\":\"\"}],\"path\":5}",
            "{\"$serde_json::private::Number\":\"1\"}",
            "{\"path\":[{\"entity_type\":\"\"}],\"limit\":{\"$serde_json::private::Number\":\"12\"}}",
            "{\"path\":[{\"entity_type\":\"\"}],\"limit\":{\"$serde_json::private::Number\":\"x\"}}",
            "{\"path\":[{\"entity_type\":\"\",\"$serde_json::private::Number\":\"1\"}]}",
        ][..],
    )
    .prop_map(str::to_string);
    let cut = (any_json(), any::<prop::sample::Index>()).prop_map(|(value, at)| {
        let text = value.to_string();
        let chars: Vec<char> = text.chars().collect();
        chars[..at.index(chars.len() + 1)].iter().collect()
    });
    let duplicate = (hostile_dict(), prop::sample::select(&["path", "limit", "filters", "project"][..]), any_json())
        .prop_map(|(dict, key, value)| {
            // The same key twice: the later one wins, as in Python's json.loads.
            let text = dict.to_string();
            format!("{{\"{key}\":{value},{}", &text[1..])
        });
    let deep = (1usize..300, prop::sample::select(&["[", "{\"a\":"][..])).prop_map(|(depth, open)| {
        let close = if open == "[" { "]" } else { "}" };
        format!("{{\"path\":[{{\"entity_type\":\"\",\"tag\":\"n\"}}],\"filters\":{{\"n\":{{\"attributes.x\":{{\"==\":{}1{}}}}}}}}}", open.repeat(depth), close.repeat(depth))
    });
    prop_oneof![fixed, cut, duplicate, deep]
}

// --- shapes whose size matters -------------------------------------------------------------

/// A body shape with a size, built deterministically so that a failure shrinks to the
/// smallest size that fails.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `"or": [{id: i}, ...]` at the filter level.
    OrOfFilters,
    /// `id: {"or": [{"==": i}, ...]}` at the operator level.
    OrOfOperators,
    /// As many distinct filter keys (`attributes.k<i>`).
    FilterKeys,
    /// `in` over a JSON value with numbers and strings mixed.
    InMixed,
    /// `in` over a plain column.
    InPlain,
    /// `in` whose one item is an array of that many numbers.
    InOfArray,
    /// `==` an array of that many numbers.
    EqArray,
    /// `==` an object with that many keys.
    EqObject,
    /// `contains` arrays nested that deep.
    ContainsNestedArrays,
    /// `==` arrays nested that deep.
    EqNestedArrays,
    /// `and` filters nested that deep.
    NestedAnd,
    /// `and` operators nested that deep.
    NestedOperatorAnd,
    /// That many JSON-path projections.
    Projections,
    /// That many order_by items.
    OrderItems,
    /// That many path items, each joined to the previous one.
    PathLength,
    /// That many ancestor walks in one path.
    Walks,
    /// A label filter that long.
    LongText,
    /// Three `in` lists of that many items each (the statement's parameter count).
    Parameters,
}

const SHAPES: &[Shape] = &[
    Shape::OrOfFilters,
    Shape::OrOfOperators,
    Shape::FilterKeys,
    Shape::InMixed,
    Shape::InPlain,
    Shape::InOfArray,
    Shape::EqArray,
    Shape::EqObject,
    Shape::ContainsNestedArrays,
    Shape::EqNestedArrays,
    Shape::NestedAnd,
    Shape::NestedOperatorAnd,
    Shape::Projections,
    Shape::OrderItems,
    Shape::PathLength,
    Shape::Walks,
    Shape::LongText,
    Shape::Parameters,
];

impl Shape {
    /// Sizes up to a little beyond the limit that matters for this shape (the server's own, or
    /// the databases': SQLite's expression depth 1000 and 2000 columns, PostgreSQL's 1664
    /// target entries, 32766 parameters).
    fn max_size(self) -> usize {
        match self {
            Shape::OrOfFilters | Shape::OrOfOperators | Shape::FilterKeys | Shape::InOfArray => 1_500,
            Shape::InMixed | Shape::InPlain => 12_000,
            Shape::EqArray | Shape::EqObject => 600,
            Shape::ContainsNestedArrays | Shape::EqNestedArrays => 120,
            Shape::NestedAnd | Shape::NestedOperatorAnd => 40,
            Shape::Projections | Shape::OrderItems => 2_500,
            Shape::PathLength | Shape::Walks => 40,
            Shape::LongText => 3_000_000,
            Shape::Parameters => 10_000,
        }
    }

    /// The sizes `sizes_at_the_limits` tries.
    fn probe_sizes(self) -> Vec<usize> {
        let mut sizes = vec![1, 2];
        for limit in [32, 33, 100, 499, 500, 501, 999, 1_000, 1_001, 1_664, 1_665, 2_000, 2_001, 10_000, 10_001] {
            if limit <= self.max_size() {
                sizes.push(limit);
            }
        }
        sizes.push(self.max_size());
        sizes.dedup();
        sizes
    }

    fn body(self, n: usize) -> Value {
        let node = json!([{"entity_type": "", "tag": "n"}]);
        let filters = |f: Value| json!({"path": node, "filters": {"n": f}, "project": {"n": ["id"]}, "limit": 3});
        let nested = |depth: usize, open: &dyn Fn(Value) -> Value, innermost: Value| {
            (0..depth).fold(innermost, |inner, _| open(inner))
        };
        match self {
            Shape::OrOfFilters => filters(json!({"or": (0..n).map(|i| json!({"id": i})).collect::<Vec<_>>()})),
            Shape::OrOfOperators => {
                filters(json!({"id": {"or": (0..n).map(|i| json!({"==": i})).collect::<Vec<_>>()}}))
            }
            Shape::FilterKeys => filters(Value::Object(
                (0..n).map(|i| (format!("attributes.k{i}"), json!({"of_type": "number"}))).collect(),
            )),
            Shape::InMixed => filters(json!({"attributes.x": {"in": (0..n)
                .map(|i| if i % 2 == 0 { json!(i) } else { json!(i.to_string()) })
                .collect::<Vec<_>>()}})),
            Shape::InPlain => filters(json!({"id": {"in": (0..n).collect::<Vec<_>>()}})),
            Shape::InOfArray => filters(json!({"attributes.x": {"in": [(0..n).collect::<Vec<_>>()]}})),
            Shape::EqArray => filters(json!({"attributes.x": {"==": (0..n).collect::<Vec<_>>()}})),
            Shape::EqObject => filters(json!({"attributes": {"==": Value::Object(
                (0..n).map(|i| (format!("k{i}"), json!(i))).collect()
            )}})),
            Shape::ContainsNestedArrays => {
                filters(json!({"attributes.x": {"contains": nested(n, &|v| json!([v]), json!(1))}}))
            }
            Shape::EqNestedArrays => filters(json!({"attributes.x": {"==": nested(n, &|v| json!([v]), json!(1))}})),
            Shape::NestedAnd => filters(nested(n, &|v| json!({"and": [v, {"id": {">": 0}}]}), json!({"id": 1}))),
            Shape::NestedOperatorAnd => {
                filters(json!({"id": nested(n, &|v| json!({"and": [v, {">": 0}]}), json!({"==": 1}))}))
            }
            Shape::Projections => json!({"path": node, "project": {"n": (0..n)
                .map(|i| format!("attributes.k{i}"))
                .collect::<Vec<_>>()}, "limit": 1}),
            Shape::OrderItems => json!({"path": node, "project": {"n": ["id"]}, "order_by": [{"n": (0..n)
                .map(|i| json!({format!("attributes.k{i}"): {"order": "desc", "cast": "i"}}))
                .collect::<Vec<_>>()}], "limit": 1}),
            Shape::PathLength => {
                let keywords = ["with_incoming", "with_outgoing", "with_descendants"];
                let path: Vec<Value> = (0..n)
                    .map(|i| match i {
                        0 => json!({"entity_type": "", "tag": "t0"}),
                        _ => json!({"entity_type": "", "tag": format!("t{i}"),
                                    keywords[i % 3]: format!("t{}", i - 1), "outerjoin": i % 2 == 0}),
                    })
                    .collect();
                json!({"path": path, "project": {"t0": ["id"]}, "limit": 2})
            }
            Shape::Walks => {
                let path: Vec<Value> = (0..n)
                    .map(|i| match i {
                        0 => json!({"entity_type": "", "tag": "t0"}),
                        _ => json!({"entity_type": "", "tag": format!("t{i}"), "with_ancestors": "t0"}),
                    })
                    .collect();
                json!({"path": path, "project": {"t0": ["id"]}, "distinct": true, "limit": 2})
            }
            Shape::LongText => filters(json!({"label": {"like": format!("%{}", "x".repeat(n))}})),
            Shape::Parameters => filters(json!({
                "id": {"in": (0..n).collect::<Vec<_>>()},
                "uuid": {"in": (0..n).map(|i| i.to_string()).collect::<Vec<_>>()},
                "label": {"!in": (0..n).map(|i| format!("l{i}")).collect::<Vec<_>>()},
            })),
        }
    }
}

fn sized_body() -> impl Strategy<Value = (Shape, usize)> {
    prop::sample::select(SHAPES).prop_flat_map(|shape| (Just(shape), 1..=shape.max_size()))
}

// --- the properties ------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(400))]

    /// Any JSON document at all: only an object with a valid path can succeed.
    #[test]
    fn any_json_document(value in any_json()) {
        check(Server::Archive, &value.to_string())?;
    }

    /// Text that is not JSON or bends it (duplicate keys, lone surrogates, truncation, ...).
    #[test]
    fn broken_json_text(text in broken_text()) {
        check(Server::Archive, &text)?;
    }

    /// Dicts shaped like the QueryBuilder's, hostile text and values in every position.
    #[test]
    fn hostile_dicts(dict in hostile_dict()) {
        check(Server::Archive, &dict.to_string())?;
    }

    /// Any limit and offset over a cross join that has more rows than the cap: the answer
    /// never holds more than `max_rows` rows per tag.
    #[test]
    fn limits_and_offsets_stay_bounded(limit in window_value(), offset in window_value(), distinct in any::<bool>()) {
        let dict = json!({
            "path": [{"entity_type": "", "tag": "a"}, {"entity_type": "", "tag": "b", "with_ancestors": "a"}],
            "project": {"a": ["id"], "b": ["id"]},
            "limit": limit, "offset": offset, "distinct": distinct,
        });
        check(Server::ArchiveCapped, &dict.to_string())?;
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Wide lists, deep nesting, many projections, long paths.
    #[test]
    fn sizes(shape_and_size in sized_body()) {
        let (shape, n) = shape_and_size;
        check(Server::Archive, &shape.body(n).to_string())?;
    }

    /// The hostile dicts on PostgreSQL (skipped with a notice when no server is available).
    #[test]
    fn hostile_dicts_on_postgres(dict in hostile_dict()) {
        if postgres() {
            check(Server::Postgres, &dict.to_string())?;
        }
    }

    /// The sized shapes on PostgreSQL.
    #[test]
    fn sizes_on_postgres(shape_and_size in sized_body()) {
        if postgres() {
            let (shape, n) = shape_and_size;
            check(Server::Postgres, &shape.body(n).to_string())?;
        }
    }
}

/// Every sized shape at the sizes around the limits, on every available database; all
/// failures are reported together (the smallest failing size of each shape).
#[test]
fn sizes_at_the_limits() {
    let mut servers = vec![Server::Archive];
    if postgres() {
        servers.push(Server::Postgres);
    }
    let mut failures = Vec::new();
    for server in servers {
        for &shape in SHAPES {
            for n in shape.probe_sizes() {
                if let Some(why) = violation(server, &shape.body(n).to_string()) {
                    failures.push(format!("{shape:?} size {n}: {why}"));
                    break;
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
