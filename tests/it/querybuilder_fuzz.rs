//! `POST /querybuilder` under invalid and hostile bodies. The `querybuilder` module fuzzes valid
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
//! failure at once, where a property test stops at the first; `every_nasty_string_in_every_position`
//! does the same for the hostile strings. `QB_FUZZ_STATS=1` prints the status of every answer.

use std::sync::OnceLock;
use std::time::Duration;

use aiida_rest::http::Responder;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};

use crate::harness::{self, Answer, Backend, DbLimits, Settings, request};

const QB: &str = "/api/v4/querybuilder";
/// The row cap of the app used for the limit/offset property (small, so that it bites).
const SMALL_MAX_ROWS: i64 = 7;

// --- the apps ------------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap())
}

/// The statement time limit of the apps here (the server's default is 30 s). A small body whose
/// statement runs this long is reported as its own kind of failure ("over the statement time
/// limit of these tests"): it may pass at the default limit, but it holds a database connection
/// for seconds. The short limit also keeps a failing run under a minute.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(3);

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

    fn app(self) -> &'static Responder {
        static ARCHIVE: OnceLock<Responder> = OnceLock::new();
        static CAPPED: OnceLock<Responder> = OnceLock::new();
        static POSTGRES: OnceLock<Responder> = OnceLock::new();
        let cell = match self {
            Server::Archive => &ARCHIVE,
            Server::ArchiveCapped => &CAPPED,
            Server::Postgres => &POSTGRES,
        };
        cell.get_or_init(|| {
            // The short statement time limit instead of the default.
            let limits = DbLimits { statement_timeout: STATEMENT_TIMEOUT, ..DbLimits::default() };
            let backend = if self == Server::Postgres { Backend::Postgres } else { Backend::Archive };
            let settings = Settings { max_rows: self.max_rows(), ..Settings::default() };
            runtime().block_on(harness::build(backend, settings, limits))
        })
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
    if std::env::var_os("QB_FUZZ_STATS").is_some() {
        let message =
            serde_json::from_slice::<Value>(&answer.body).ok().and_then(|j| j["message"].as_str().map(str::to_string));
        eprintln!(
            "STAT {server:?} {} {}",
            answer.status,
            message.unwrap_or_default().chars().take(60).collect::<String>()
        );
    }
    let text = String::from_utf8_lossy(&answer.body);
    let fail = |why: &str| Some(format!("{server:?}: {why}: status {} {}", answer.status, excerpt(&text)));
    if answer.status == 503 && text.contains("time limit") {
        return fail(&format!("over the statement time limit of these tests ({} s)", STATEMENT_TIMEOUT.as_secs()));
    }
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
            if json.get("message").is_some_and(Value::is_string) {
                None
            } else {
                fail("a 4xx without a string `message`")
            }
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
    harness::pg::shared().is_some()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        // Each case is an HTTP request; keep a failing run's shrinking short.
        max_shrink_iters: 512,
        max_shrink_time: 10_000,
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
    "==",
    "!==",
    "~==",
    "!=",
    "<",
    "<=",
    "=<",
    ">",
    ">=",
    "=>",
    "like",
    "ilike",
    "!like",
    "in",
    "!in",
    "~~in",
    "contains",
    "!contains",
    "has_key",
    "~has_key",
    "of_type",
    "of_length",
    "longer",
    "shorter",
    "and",
    "or",
    "!and",
    "~or",
    "=",
    "is",
    "between",
    "",
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
            (
                prop::sample::select(&["and", "or", "~and", "!or", "and ", "xor"][..]),
                prop::collection::vec(inner.clone(), 0..3)
            )
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

/// `valid` most of the time, else `hostile`: a dict built from these keeps most of its slots
/// valid, so that the few hostile ones reach the SQL builder instead of an early 400.
fn mostly<T: std::fmt::Debug + Clone + 'static>(
    valid: impl Strategy<Value = T> + 'static,
    hostile: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![5 => valid, 1 => hostile].boxed()
}

/// Fields that are valid on a node, each with an operator and a value that suit it.
const NODE_CONDITIONS: &[(&str, &str, &str)] = &[
    ("id", ">", "3"),
    ("id", "in", "[1, 2, 3]"),
    ("uuid", "like", "\"0%\""),
    ("label", "ilike", "\"%a%\""),
    ("ctime", "<", "\"2030-01-01\""),
    ("node_type", "==", "\"data.core.int.Int.\""),
    ("attributes.value", ">", "1"),
    ("attributes.kinds", "of_length", "1"),
    ("attributes", "has_key", "\"value\""),
    ("extras", "contains", "{\"_aiida_hash\": \"x\"}"),
    ("attributes.cell", "contains", "[[0.0]]"),
    ("extras.priority", "in", "[1, \"a\", null, true]"),
];

/// A QueryBuilder dict of two joined items whose every slot is usually valid and sometimes
/// hostile: tags, entity types, join keyword and target, edge tag, filter field, operator and
/// value, projection name/cast/func, order field/direction/cast, limit, offset, project_map.
fn hostile_slots() -> impl Strategy<Value = Value> {
    let condition = (
        prop::sample::select(NODE_CONDITIONS),
        mostly(Just(None), hostile_string().prop_map(|k| Some(format!("attributes.{k}")))),
        mostly(Just(None), operator().prop_map(Some)),
        mostly(Just(None), prop_oneof![any_json(), number(), operand()].prop_map(Some)),
    )
        .prop_map(|((field, op, value), hostile_field, hostile_op, hostile_value)| {
            let value = hostile_value.unwrap_or_else(|| serde_json::from_str(value).expect("valid JSON"));
            (hostile_field.unwrap_or(field.to_string()), hostile_op.unwrap_or(op.to_string()), value)
        });
    let names = || {
        mostly(
            prop::sample::select(&["id", "uuid", "label", "attributes", "attributes.value", "extras.x", "**", "*"][..])
                .prop_map(str::to_string),
            prop_oneof![hostile_string().prop_map(|k| format!("attributes.{k}")), field()],
        )
    };
    (
        (
            mostly(Just("n".to_string()), hostile_string()),
            mostly(
                prop::sample::select(&["", "data.Data.", "data.core.int.Int.", "process.ProcessNode."][..])
                    .prop_map(Value::from),
                any_json(),
            ),
            mostly(
                prop::sample::select(&["", "data.Data.", "group.core", "computer", "user", "comment", "log"][..])
                    .prop_map(Value::from),
                any_json(),
            ),
            mostly(Just(None), prop::sample::select(JOIN_KEYWORDS).prop_map(Some)),
            mostly(Just(None), prop_oneof![tag().prop_map(Value::String), any_json()].prop_map(Some)),
            mostly(Just(None), hostile_string().prop_map(Some)),
            any::<bool>(),
        ),
        prop::collection::vec(condition, 0..3),
        (
            prop::collection::vec(names(), 1..4),
            mostly(Just(None), (prop::sample::select(CASTS), prop::sample::select(FUNCS)).prop_map(Some)),
        ),
        (
            names(),
            mostly(prop::sample::select(&["asc", "desc"][..]), prop::sample::select(DIRECTIONS)),
            mostly(prop::sample::select(&["i", "f", "t"][..]), prop::sample::select(CASTS)),
        ),
        (prop::option::of(window_value()), prop::option::of(window_value())),
        mostly(
            Just(None),
            prop_oneof![any_json(), (tag(), hostile_string()).prop_map(|(t, k)| json!({ t: { "id": k } }))]
                .prop_map(Some),
        ),
    )
        .prop_map(
            |(
                (tag0, type0, type1, keyword, join_to, edge_tag, outer),
                conditions,
                (projected, cast_func),
                (order_field, direction, order_cast),
                (limit, offset),
                project_map,
            )| {
                let mut second = json!({"entity_type": type1, "tag": "m", "outerjoin": outer});
                // The join the second item's entity needs, unless a hostile one replaces it.
                let default_keyword = match type1.as_str() {
                    Some("group.core") => "with_node",
                    Some("computer" | "user" | "comment" | "log") => "with_node",
                    _ => "with_incoming",
                };
                second[keyword.unwrap_or(default_keyword)] = join_to.unwrap_or(Value::String(tag0.clone()));
                if let Some(edge_tag) = &edge_tag {
                    second["edge_tag"] = json!(edge_tag);
                    second["edge_project"] = json!(["**"]);
                }
                let mut filters = Map::new();
                for (field, op, value) in conditions {
                    filters.insert(field, json!({ op: value }));
                }
                let mut projection: Vec<Value> = projected.into_iter().map(Value::String).collect();
                if let Some((cast, func)) = cast_func {
                    // Functions cannot mix with plain projections: these replace them.
                    projection =
                        vec![json!({"attributes.value": {"cast": cast, "func": func}}), json!({"id": {"func": func}})];
                }
                let mut dict = json!({
                    "path": [{"entity_type": type0, "tag": tag0}, second],
                    "filters": { tag0.as_str(): filters },
                    "project": { tag0.as_str(): projection, "m": ["id"] },
                    "order_by": [{ tag0.as_str(): [{ order_field: {"order": direction, "cast": order_cast} }] }],
                });
                for (key, value) in [("limit", limit), ("offset", offset), ("project_map", project_map)] {
                    if let Some(value) = value {
                        dict[key] = value;
                    }
                }
                dict
            },
        )
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

    /// The sizes `sizes_at_the_limits` tries, in increasing order: small steps where costs grow
    /// fast (joins, walks, nesting), then both sides of every limit that could matter
    /// (the server's 32 levels, 500 JSON values and 10000 list items; SQLite's expression depth
    /// 1000, 2000 columns and 50000-byte LIKE patterns; PostgreSQL's 1664 target entries).
    fn probe_sizes(self) -> Vec<usize> {
        const SIZES: &[usize] = &[
            1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 28, 29, 31, 32, 33, 40, 64, 100, 128, 499, 500, 501, 999,
            1_000, 1_001, 1_664, 1_665, 2_000, 2_001, 10_000, 10_001, 50_000, 50_001, 65_536,
        ];
        let max = self.max_size();
        SIZES.iter().copied().filter(|&n| n < max).chain([max]).collect()
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

    /// Two-item dicts, most slots valid, some hostile.
    #[test]
    fn hostile_slots_on_sqlite(dict in hostile_slots()) {
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

    /// The two-item dicts with hostile slots on PostgreSQL.
    #[test]
    fn hostile_slots_on_postgres(dict in hostile_slots()) {
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

/// Every hostile string of [`NASTY`] in every string position of a dict that is otherwise
/// valid, on every available database; all failures are reported together (per position, the
/// first string that fails).
#[test]
fn every_nasty_string_in_every_position() {
    type Slot = (&'static str, fn(&str) -> Value);
    let slots: Vec<Slot> = vec![
        (
            "tag",
            |s| json!({"path": [{"entity_type": "", "tag": s}], "filters": {s: {"id": {">": 1}}}, "project": {s: ["id"]}, "order_by": {s: ["id"]}, "limit": 2}),
        ),
        ("entity_type of the first item", |s| json!({"path": [{"entity_type": s, "tag": "n"}], "limit": 2})),
        (
            "entity_type of a joined item",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}, {"entity_type": s, "tag": "m"}], "limit": 2}),
        ),
        ("entity_type list", |s| json!({"path": [{"entity_type": ["data.core.int.Int.", s], "tag": "n"}], "limit": 2})),
        (
            "join keyword",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}, {"entity_type": "", "tag": "m", s: "n"}], "limit": 2}),
        ),
        (
            "joining_keyword",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}, {"entity_type": "", "tag": "m", "joining_keyword": s, "joining_value": "n"}], "limit": 2}),
        ),
        (
            "join target",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}, {"entity_type": "", "tag": "m", "with_outgoing": s}], "limit": 2}),
        ),
        (
            "edge_tag",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}, {"entity_type": "", "tag": "m", "with_incoming": "n", "edge_tag": s}], "filters": {s: {"label": {"like": "%"}}}, "project": {s: ["**"]}, "order_by": {s: ["id"]}, "limit": 2}),
        ),
        ("path item key", |s| json!({"path": [{"entity_type": "", "tag": "n", s: 1}]})),
        ("top-level key", |s| json!({"path": [{"entity_type": "", "tag": "n"}], s: 1})),
        ("filter column", |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {s: 1}}})),
        ("combinator", |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {s: [{"id": 1}]}}})),
        (
            "JSON key",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {format!("attributes.{s}"): {">": 1}}}, "project": {"n": ["id"]}}),
        ),
        (
            "nested JSON key",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {format!("extras.a.{s}.b"): {"of_type": "number"}}}, "project": {"n": ["id"]}}),
        ),
        (
            "JSON key of a log",
            |s| json!({"path": [{"entity_type": "log", "tag": "l"}], "filters": {"l": {format!("metadata.{s}"): {"like": "%"}}}}),
        ),
        (
            "operator on a column",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"id": {s: 1}}}}),
        ),
        (
            "operator on JSON",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes.value": {s: 1}}}}),
        ),
        (
            "== on label",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"label": s}}, "project": {"n": ["id"]}}),
        ),
        (
            "> on id",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"id": {">": s}}}, "project": {"n": ["id"]}}),
        ),
        (
            "== on uuid",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"uuid": {"==": s}}}, "project": {"n": ["id"]}}),
        ),
        (
            "< on ctime",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"ctime": {"<": s}}}, "project": {"n": ["id"]}}),
        ),
        (
            "like on label",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"label": {"like": s}}}, "project": {"n": ["id"]}}),
        ),
        (
            "ilike on uuid",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"uuid": {"ilike": format!("%{s}")}}}, "project": {"n": ["id"]}}),
        ),
        (
            "like on JSON",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes.input_plugin": {"like": format!("%{s}")}}}, "project": {"n": ["id"]}}),
        ),
        (
            "ilike on JSON",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"extras._aiida_hash": {"ilike": s}}}, "project": {"n": ["id"]}}),
        ),
        (
            "== on JSON",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes.value": {"==": s}}}, "project": {"n": ["id"]}}),
        ),
        (
            ">= on JSON",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes.value": {">=": s}}}, "project": {"n": ["id"]}}),
        ),
        (
            "in on JSON",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes.value": {"in": [s, 1, null]}}}, "project": {"n": ["id"]}}),
        ),
        (
            "in on label",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"label": {"!in": [s, 1, null]}}}, "project": {"n": ["id"]}}),
        ),
        (
            "has_key",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes": {"has_key": s}}}, "project": {"n": ["id"]}}),
        ),
        (
            "contains key",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes": {"contains": {s: s}}}}, "project": {"n": ["id"]}}),
        ),
        (
            "contains in a list",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes.kinds": {"contains": [{"name": s}]}}}, "project": {"n": ["id"]}}),
        ),
        (
            "== object key",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"extras": {"==": {s: [s]}}}}, "project": {"n": ["id"]}}),
        ),
        (
            "of_type",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes.value": {"of_type": s}}}}),
        ),
        (
            "of_length",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "filters": {"n": {"attributes.kinds": {"of_length": s}}}}),
        ),
        ("projection", |s| json!({"path": [{"entity_type": "", "tag": "n"}], "project": {"n": [s]}, "limit": 2})),
        (
            "projected JSON key",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "project": {"n": [format!("attributes.{s}"), format!("extras.{s}.x")]}, "limit": 2, "distinct": true}),
        ),
        (
            "projection cast",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "project": {"n": [{"attributes.value": {"cast": s}}]}, "limit": 2}),
        ),
        (
            "projection func",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "project": {"n": [{"id": {"func": s}}]}}),
        ),
        (
            "order field",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "project": {"n": ["id"]}, "order_by": [{"n": [s]}], "limit": 2}),
        ),
        (
            "ordered JSON key",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}, {"entity_type": "", "tag": "m"}], "project": {"n": ["uuid"]}, "order_by": [{"n": [{format!("attributes.{s}"): {"cast": "f", "order": "desc"}}]}], "distinct": true, "limit": 2}),
        ),
        (
            "order direction",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "project": {"n": ["id"]}, "order_by": [{"n": [{"id": s}]}], "limit": 2}),
        ),
        (
            "order cast",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "project": {"n": ["id"]}, "order_by": [{"n": [{"attributes.value": {"cast": s}}]}], "limit": 2}),
        ),
        ("limit", |s| json!({"path": [{"entity_type": "", "tag": "n"}], "limit": s})),
        ("offset", |s| json!({"path": [{"entity_type": "", "tag": "n"}], "offset": s})),
        (
            "project_map",
            |s| json!({"path": [{"entity_type": "", "tag": "n"}], "project": {"n": ["id"]}, "project_map": {"n": {"id": s, s: "x"}}, "limit": 2}),
        ),
        ("distinct", |s| json!({"path": [{"entity_type": "", "tag": "n"}], "distinct": s})),
    ];
    let mut servers = vec![Server::Archive];
    if postgres() {
        servers.push(Server::Postgres);
    }
    let mut failures = Vec::new();
    for server in servers {
        for (position, build) in &slots {
            if let Some((nasty, why)) =
                NASTY.iter().find_map(|s| violation(server, &build(s).to_string()).map(|w| (s, w)))
            {
                failures
                    .push(format!("{position} = {nasty:?}: {why}\n    body: {}", excerpt(&build(nasty).to_string())));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
