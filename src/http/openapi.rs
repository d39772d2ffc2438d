//! The OpenAPI 3.1 document of each API (`<prefix>/openapi.json`) and its documentation page
//! (`<prefix>/docs`), built from the route tables the routers use, so that they cannot drift.
//!
//! For each rule of an API's table (`v4::routes::rules`, `v2::routes::all_rules`, the lines of
//! `available_endpoints`) the document has one path. The rule is instantiated with sample
//! values and given to the router's own parser (`routes::parse`); the [`Route`](v4::routes::Route)
//! it gives is described by a `match` over every route variant and sub-resource, so a new route
//! does not compile until it is described. The query parameters of an operation are those its
//! endpoint accepts (v2's come from its table of filter keys, `v2::params::keys`), the answers
//! are the envelope, the JSON error `{"message"}`, and the `X-Total-Count` and `Link` headers
//! as `http::request::json_response` writes them.
//!
//! The document is a `serde_json::Value` written here: the crates with OpenAPI types (utoipa's
//! `openapi` module for 3.1, `openapiv3` for 3.0 only) model what a document may hold, which
//! adds nothing when the document is generated from our own tables, and would add a dependency
//! for one module.
//!
//! The documentation page is the same document rendered to HTML on the server: no script, no
//! asset from the network, readable offline and in a text browser.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use crate::http::{Api, App, Ctx, Responder, json_response, v2, v4};

/// Which API a document describes, and how it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub api: ApiKind,
    /// Where the API is mounted (`/api/v4`, `/<name>/api/v4`): the document's server URL.
    pub prefix: String,
    /// Whether `POST /querybuilder` is served (v4).
    pub posting: bool,
    /// Several databases in one process: v4 takes `?profile=NAME`, and a database that cannot
    /// be opened answers 503 naming it.
    pub several: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKind {
    V4,
    V2,
}

impl Spec {
    pub fn v4(prefix: &str, posting: bool) -> Self {
        Spec { api: ApiKind::V4, prefix: prefix.into(), posting, several: false }
    }

    pub fn v2(prefix: &str) -> Self {
        Spec { api: ApiKind::V2, prefix: prefix.into(), posting: false, several: false }
    }

    /// The same, served among several databases.
    pub fn among_several(mut self) -> Self {
        self.several = true;
        self
    }
}

/// Mounts `<prefix>/openapi.json` and `<prefix>/docs` of each spec on `app`.
pub fn mount(mut app: App, specs: impl IntoIterator<Item = Spec>) -> App {
    for spec in specs {
        let prefix = spec.prefix.clone();
        app = app
            .nest(&format!("{prefix}/openapi.json"), Page { spec: spec.clone(), html: false })
            .nest(&format!("{prefix}/docs"), Page { spec, html: true });
    }
    app
}

/// `openapi.json` or `docs` of one API.
struct Page {
    spec: Spec,
    html: bool,
}

impl Api for Page {
    fn service(self, _prefix: &str) -> Responder {
        let (spec, html) = (self.spec, self.html);
        Responder::new((), move |(), ctx: Ctx, _, _| {
            let spec = spec.clone();
            async move {
                // Only the document itself: `/openapi.json/x` is no page.
                let end = if html { "/docs" } else { "/openapi.json" };
                if ctx.path.trim_end_matches('/') != format!("{}{end}", spec.prefix) {
                    return crate::http::error::ApiError::not_found("The requested URL is not found on the server.")
                        .into_response();
                }
                let document = document(&spec, &ctx.origin);
                if html {
                    let mut response = (StatusCode::OK, render_html(&document, &spec)).into_response();
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
                    response
                } else {
                    json_response(StatusCode::OK, &document, None, None)
                }
            }
        })
    }

    fn endpoints(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }
}

// ------------------------------------------------------------------------------------------
// The document

/// The OpenAPI document of `spec`, its server at `origin` (`scheme://host[:port]` or the
/// public URL).
pub fn document(spec: &Spec, origin: &str) -> Value {
    let operations = match spec.api {
        ApiKind::V4 => v4_operations(spec),
        ApiKind::V2 => v2_operations(),
    };
    let mut paths = Map::new();
    for (path, ops) in operations {
        let mut item = Map::new();
        for op in ops {
            item.insert(op.method.into(), op.to_json(spec));
        }
        paths.insert(path, Value::Object(item));
    }
    let (title, version, about) = match spec.api {
        ApiKind::V4 => (
            "AiiDA REST API v4",
            "4.1.0",
            "The REST API of aiida-core (`verdi restapi`), served by aiida-rest: read-only access to an AiiDA provenance database.",
        ),
        ApiKind::V2 => (
            "AiiDA REST API v2",
            "2.0.0",
            "The REST API of aiida-core 0.x (v2), served by aiida-rest over today's database schema.",
        ),
    };
    let description = format!(
        "{about}\n\n{FILTER_GRAMMAR}\n\nEvery path is also answered without its trailing slash. \
         Errors are JSON objects with a `message`; a path that names no endpoint answers 404 with \
         `available_endpoints`.{}",
        if spec.several { SEVERAL } else { "" }
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": description,
            "license": {"name": "MIT", "identifier": "MIT"},
            "x-server": format!("aiida-rest {}", env!("CARGO_PKG_VERSION")),
        },
        "servers": [{"url": format!("{origin}{}", spec.prefix)}],
        "paths": paths,
        "components": components(spec),
    })
}

const FILTER_GRAMMAR: &str = "Lists are filtered by the other fields of the query string: \
`field=value`, `field!=value`, `field>value` (`>=`, `<`, `<=`), `field=like=\"pattern%\"`, \
`field=ilike=\"...\"`, `field=in=\"a\",\"b\"`, `field=notin=1,2`. Strings are written in double \
quotes, numbers and booleans (`true`, `false`) bare, dates and times as `2020-01-31T12:00:00`. \
`orderby` takes column names, each prefixed by `+` or `-`, separated by commas.";

const SEVERAL: &str = "\n\nThis server serves several databases; a database that cannot be \
opened answers 503 with a message naming it.";

/// One operation (`get`, `post`) of one path.
struct Op {
    method: &'static str,
    id: String,
    tag: &'static str,
    summary: String,
    description: String,
    path_params: Vec<Value>,
    query: Vec<Value>,
    body: Option<Value>,
    ok: Success,
    /// Error statuses besides 400, 404 and 503, with their description.
    errors: Vec<(u16, &'static str)>,
    /// A 405 with the envelope (`GET /querybuilder`).
    method_hint: bool,
}

/// The 200 answer of an operation.
enum Success {
    /// The JSON envelope with this `data` schema, `X-Total-Count`, and with `paged` `Link`.
    Json { data: Value, paged: bool },
    /// The envelope, or a file (`application/octet-stream`).
    JsonOrFile { data: Value },
    /// No 200 (`GET /querybuilder` answers 405).
    Never,
}

impl Op {
    fn new(method: &'static str, tag: &'static str, summary: impl Into<String>) -> Self {
        Op {
            method,
            id: String::new(),
            tag,
            summary: summary.into(),
            description: String::new(),
            path_params: Vec::new(),
            query: Vec::new(),
            body: None,
            ok: Success::Json { data: json!({}), paged: false },
            errors: Vec::new(),
            method_hint: false,
        }
    }

    fn describe(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    fn data(mut self, data: Value) -> Self {
        self.ok = Success::Json { data, paged: false };
        self
    }

    fn paged(mut self, data: Value) -> Self {
        self.ok = Success::Json { data, paged: true };
        self
    }

    fn file(mut self, data: Value) -> Self {
        self.ok = Success::JsonOrFile { data };
        self
    }

    fn error(mut self, status: u16, why: &'static str) -> Self {
        self.errors.push((status, why));
        self
    }

    fn query(mut self, params: impl IntoIterator<Item = Value>) -> Self {
        self.query.extend(params);
        self
    }

    fn to_json(&self, spec: &Spec) -> Value {
        let envelope = |data: &Value| json!({"allOf": [{"$ref": "#/components/schemas/Envelope"}, {"properties": {"data": data}}]});
        let total = json!({"$ref": "#/components/headers/X-Total-Count"});
        let ok = match &self.ok {
            Success::Never => None,
            Success::Json { data, paged } => {
                let mut headers = json!({"X-Total-Count": total});
                if *paged {
                    headers["Link"] = json!({"$ref": "#/components/headers/Link"});
                }
                Some(json!({
                    "description": "The answer, in the envelope.",
                    "headers": headers,
                    "content": {"application/json": {"schema": envelope(data)}},
                }))
            }
            Success::JsonOrFile { data } => Some(json!({
                "description": "The file (`Content-Disposition: attachment`), or the envelope holding it when a download is not asked for (or the file is empty).",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}},
                    "application/json": {"schema": envelope(data)},
                },
            })),
        };
        let mut responses = Map::new();
        if let Some(ok) = ok {
            responses.insert("200".into(), ok);
        }
        responses.insert("400".into(), json!({"$ref": "#/components/responses/BadRequest"}));
        responses.insert("404".into(), json!({"$ref": "#/components/responses/NotFound"}));
        if self.method_hint {
            responses.insert(
                "405".into(),
                json!({
                    "description": "The QueryBuilder takes POST requests; the answer says how, in the envelope.",
                    "headers": {"X-Total-Count": total},
                    "content": {"application/json": {"schema": {"allOf": [
                        {"$ref": "#/components/schemas/Envelope"},
                        {"$ref": "#/components/schemas/Error"},
                    ]}}},
                }),
            );
        }
        for (status, why) in &self.errors {
            responses.insert(
                status.to_string(),
                json!({"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        responses.insert("503".into(), json!({"$ref": "#/components/responses/Unavailable"}));
        let mut parameters = self.path_params.clone();
        parameters.extend(self.query.iter().cloned());
        if spec.several && spec.api == ApiKind::V4 {
            parameters.push(json!({"$ref": "#/components/parameters/profile"}));
        }
        let mut op = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": self.summary,
            "responses": responses,
        });
        if !self.description.is_empty() {
            op["description"] = Value::String(self.description.clone());
        }
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = &self.body {
            op["requestBody"] = body.clone();
        }
        op
    }
}

fn components(spec: &Spec) -> Value {
    let error = |why: &str| json!({"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut envelope_properties = json!({
        "data": {"description": "What was asked for."},
        "id": {"description": "The identifier of the path, when it names one object."},
        "method": {"type": "string", "examples": ["GET"]},
        "path": {"type": "string", "description": "The path, percent-decoded."},
        "query_string": {"type": "string"},
        "resource_type": {"type": "string"},
        "url": {"type": "string"},
        "url_root": {"type": "string"},
    });
    if spec.api == ApiKind::V2 {
        envelope_properties["pk"] = json!({"type": ["integer", "null"]});
    }
    json!({
        "schemas": {
            "Envelope": {
                "type": "object",
                "description": "Every JSON answer: what was asked (method, path, query string, URL) around the `data`.",
                "required": ["data", "method", "path", "query_string", "resource_type", "url", "url_root"],
                "properties": envelope_properties,
            },
            "Error": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": {"type": "string"},
                    "available_endpoints": {"type": "array", "items": {"type": "string"}, "description": "With a 404 for a path that names no endpoint."},
                },
            },
        },
        "responses": {
            "BadRequest": error("The request is malformed: query string, parameter value, identifier."),
            "NotFound": error("No such object, or no such page, or no endpoint at this path (then `available_endpoints` lists them)."),
            "Unavailable": error("The database cannot be reached now, or the query took longer than the server's time limit."),
        },
        "headers": {
            "X-Total-Count": {"description": "How many objects the whole answer holds (across every page).", "schema": {"type": "integer", "minimum": 0}},
            "Link": {"description": "The first, last, previous and next pages (`rel=\"first\"`, ...), as complete URLs.", "schema": {"type": "string"}},
        },
        "parameters": {
            "profile": {
                "name": "profile",
                "in": "query",
                "required": false,
                "description": "Answer from the database of this name instead of the one of the path (as aiida-core's `?profile=`).",
                "schema": {"type": "string"},
            },
        },
    })
}

// ------------------------------------------------------------------------------------------
// Parameters

fn path_param(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

fn query_param(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// A UUID or the start of one, as `routes::is_uuid_prefix` accepts it.
fn uuid_prefix_schema() -> Value {
    let hex = "[0-9a-fA-F]";
    let pattern = format!(
        "^({hex}{{1,8}}|{hex}{{8}}-{hex}{{0,4}}|{hex}{{8}}-{hex}{{4}}-{hex}{{0,4}}|{hex}{{8}}-{hex}{{4}}-{hex}{{4}}-{hex}{{0,4}}|{hex}{{8}}-{hex}{{4}}-{hex}{{4}}-{hex}{{4}}-{hex}{{0,12}})$"
    );
    json!({"type": "string", "pattern": pattern, "examples": ["d2b196a0"]})
}

fn id_param(users: bool) -> Value {
    if users {
        path_param("id", json!({"type": "integer"}), "The user's id.")
    } else {
        path_param("id", uuid_prefix_schema(), "The UUID, or its start if no other object's UUID starts the same way.")
    }
}

fn page_param() -> Value {
    path_param("page", json!({"type": "integer", "minimum": 1}), "The page, from 1.")
}

fn int_param(name: &str, description: &str) -> Value {
    query_param(name, json!({"type": "integer"}), description)
}

fn str_param(name: &str, description: &str) -> Value {
    query_param(name, json!({"type": "string"}), description)
}

fn paging(page: bool) -> Vec<Value> {
    let mut params = Vec::new();
    if page {
        params.push(int_param("perpage", "Objects per page (default 20, at most 400)."));
    } else {
        params.push(int_param("limit", "Most objects to return (default and at most 400)."));
        params.push(int_param("offset", "Objects to skip."));
    }
    params.push(str_param("orderby", "Columns to order by, each prefixed by `+` or `-`, separated by commas."));
    params
}

// ------------------------------------------------------------------------------------------
// v4

/// `<id>` → `{id}`, `<int:page>` → `{page}`.
fn openapi_path(rule: &str) -> String {
    rule.replace("<int:page>", "{page}").replace("<id>", "{id}")
}

/// The rule with sample values, as a client would send it.
fn sample_path(rule: &str) -> String {
    let id = if rule.starts_with("/users/") { "7" } else { "ab12cd34" };
    rule.replace("<int:page>", "2").replace("<id>", id)
}

fn list_of(key: &str) -> Value {
    json!({"type": "object", "required": [key], "properties": {key: {"type": "array", "items": {"type": "object"}}}})
}

fn object_of(key: &str) -> Value {
    json!({"type": "object", "required": [key], "properties": {key: {"type": "object"}}})
}

fn v4_operations(spec: &Spec) -> Vec<(String, Vec<Op>)> {
    let mut all = Vec::new();
    for (_, rule) in v4::routes::rules(spec.posting) {
        let route = v4::routes::parse(&sample_path(rule), spec.posting)
            .unwrap_or_else(|e| panic!("the v4 rule {rule} does not parse: {e:?}"));
        let mut ops = v4_describe(&route, rule);
        for op in ops.iter_mut() {
            let name = rule.trim_matches('/').replace(['<', '>', ':'], "").replace('/', "_");
            let name = if name.is_empty() { "root".to_string() } else { name };
            op.id = format!("{}_{name}", op.method);
            if rule.contains("<id>") {
                op.path_params.push(id_param(rule.starts_with("/users/")));
            }
            if rule.contains("<int:page>") {
                op.path_params.push(page_param());
            }
        }
        all.push((openapi_path(rule), ops));
    }
    all
}

/// The filters of a v4 list: the fields of `/<resource>/projectable_properties` (the same
/// table that endpoint answers from), with `id`, each as `field=value`.
fn v4_filters(resource: &str) -> Vec<Value> {
    static PROPERTIES: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
        serde_json::from_str(include_str!("v4/projectable_properties.json")).expect("valid embedded JSON")
    });
    let fields = PROPERTIES[resource]["fields"].as_object().cloned().unwrap_or_default();
    let mut names: Vec<(String, String)> = fields
        .iter()
        .map(|(name, field)| (name.clone(), field["type"].as_str().unwrap_or("str").to_string()))
        .collect();
    if !fields.contains_key("id") {
        names.push(("id".into(), "int".into()));
    }
    names.sort();
    names
        .into_iter()
        .map(|(name, kind)| {
            let schema = match kind.as_str() {
                "int" => json!({"type": "integer"}),
                "datetime.datetime" => json!({"type": "string", "examples": ["2020-01-31T12:00:00"]}),
                _ => json!({"type": "string", "pattern": "^\"[^\"]*\"$", "examples": ["\"a\""]}),
            };
            query_param(&name, schema, "Filter (`=` here; the other operators as the description of the API says).")
        })
        .collect()
}

/// What one v4 route answers. Every route variant and node part is named here.
fn v4_describe(route: &v4::routes::Route, rule: &str) -> Vec<Op> {
    use v4::routes::{NodePart, Resource, Route};
    let node_list_params = || {
        vec![
            query_param("attributes", json!({"type": "boolean"}), "Include each node's attributes."),
            str_param("attributes_filter", "Only these attribute keys (comma-separated)."),
            query_param("extras", json!({"type": "boolean"}), "Include each node's extras."),
            str_param("extras_filter", "Only these extra keys (comma-separated)."),
            str_param(
                "full_type",
                "Only nodes of this full type (`node_type|process_type`, `%` as wildcard), in double quotes.",
            ),
        ]
    };
    let op = match route {
        Route::ServerEndpoints => Op::new("get", "server", "The endpoints of the API")
            .data(json!({"type": "object", "required": ["available_endpoints"], "properties": {"available_endpoints": {"type": "array", "items": {"type": "string"}}}})),
        Route::ServerInfo => Op::new("get", "server", "Versions of the API and of AiiDA")
            .data(json!({"type": "object", "required": ["API_major_version", "API_minor_version", "API_revision_version", "API_prefix", "AiiDA_version"],
                "properties": {"API_major_version": {"type": "string"}, "API_minor_version": {"type": "string"}, "API_revision_version": {"type": "string"}, "API_prefix": {"type": "string"}, "AiiDA_version": {"type": "string"}}})),
        Route::QueryBuilder => {
            let mut get = Op::new("get", "querybuilder", "How to use the QueryBuilder (405)").describe(
                "The QueryBuilder takes POST requests; a GET answers 405 with a message saying so.",
            );
            get.method_hint = true;
            get.ok = Success::Never;
            let mut post = Op::new("post", "querybuilder", "Run a QueryBuilder query")
                .describe("The body is a `QueryBuilder.as_dict()` dictionary; the answer holds, for each projected tag, the list of its rows.")
                .data(json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "object"}}}));
            post.errors.push((413, "The body is larger than 4 MiB."));
            post.body = Some(json!({
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["path"],
                    "properties": {
                        "path": {"type": "array", "items": {"type": "object"}},
                        "filters": {"type": "object"},
                        "project": {"type": "object"},
                        "order_by": {"type": ["array", "object"]},
                        "limit": {"type": ["integer", "null"], "minimum": 0},
                        "offset": {"type": ["integer", "null"], "minimum": 0},
                        "distinct": {"type": "boolean"},
                    },
                }}},
            }));
            return vec![get, post];
        }
        Route::List { resource, page } => {
            let name = resource.name();
            let mut op = Op::new("get", name, if page.is_some() { format!("One page of the {name}") } else { format!("List the {name}") })
                .paged(list_of(name))
                .query(paging(page.is_some()));
            if rule.ends_with("/page/") {
                op.description = "The first page.".into();
            }
            if *resource == Resource::Nodes {
                op = op.query(node_list_params());
            }
            op.query(v4_filters(name))
        }
        Route::Detail { resource, .. } => {
            let name = resource.name();
            let mut op = Op::new("get", name, format!("One of the {name}")).data(list_of(name));
            if *resource == Resource::Nodes {
                op = op.query(node_list_params());
            }
            op
        }
        Route::ProjectableProperties(resource) => {
            Op::new("get", resource.name(), format!("The properties of the {}, and their order", resource.name())).data(
                json!({"type": "object", "required": ["fields", "ordering"], "properties": {"fields": {"type": "object"}, "ordering": {"type": "array", "items": {"type": "string"}}}}),
            )
        }
        Route::Statistics => Op::new("get", "nodes", "Node counts per type and per creation day")
            .data(json!({"type": "object", "required": ["total", "types", "ctime_by_day"], "properties": {"total": {"type": "integer"}, "types": {"type": "object"}, "ctime_by_day": {"type": "object"}}}))
            .query([int_param("user", "Count only the nodes of this user (id).")]),
        Route::FullTypes => Op::new("get", "nodes", "The tree of the node types in the database")
            .data(json!({"type": "object", "required": ["full_type", "label", "namespace", "path", "subspaces"]})),
        Route::FullTypesCount => Op::new("get", "nodes", "The tree of the node types, with counts")
            .data(json!({"type": "object", "required": ["counter", "full_type", "label", "namespace", "path", "subspaces"]})),
        Route::DownloadFormats => Op::new("get", "nodes", "The download formats of each data type")
            .data(json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}})),
        Route::ProcessReport { .. } => Op::new("get", "processes", "The log of a process").data(list_of("logs")),
        Route::CalcjobFiles { outputs, .. } => {
            let which = if *outputs { "retrieved output" } else { "input" };
            Op::new("get", "calcjobs", format!("The {which} files of a calculation job"))
                .data(json!({"type": ["array", "object"]}))
                .query([str_param("filename", "A folder of the repository to list (default: the top).")])
        }
        Route::Node { part, page, .. } => match part {
            NodePart::Incoming | NodePart::Outgoing => {
                let key = if *part == NodePart::Incoming { "incoming" } else { "outgoing" };
                Op::new("get", "nodes", format!("The {key} links of a node"))
                    .paged(list_of(key))
                    .query(paging(page.is_some()))
                    .query([str_param("full_type", "Only neighbours of this full type, in double quotes.")])
                    .query(v4_filters("nodes"))
            }
            NodePart::Tree => Op::new("get", "nodes", "The provenance graph around a node")
                .data(json!({"type": "object", "required": ["nodes", "metadata"], "properties": {"nodes": {"type": "array"}, "metadata": {"type": "array"}}}))
                .query([
                    int_param("in_limit", "Most incoming neighbours to include."),
                    int_param("out_limit", "Most outgoing neighbours to include."),
                ]),
            NodePart::Attributes => Op::new("get", "nodes", "The attributes of a node")
                .data(object_of("attributes"))
                .query([str_param("attributes_filter", "Only these keys (comma-separated).")]),
            NodePart::Extras => Op::new("get", "nodes", "The extras of a node")
                .data(object_of("extras"))
                .query([str_param("extras_filter", "Only these keys (comma-separated).")]),
            NodePart::DerivedProperties => {
                Op::new("get", "nodes", "Properties derived from a data node (formula, dimensionality, ...)")
                    .data(object_of("derived_properties"))
            }
            NodePart::Comments => Op::new("get", "nodes", "The comments on a node").data(list_of("comments")),
            NodePart::RepoList => Op::new("get", "nodes", "The files of a node's repository")
                .data(list_of("repo_list"))
                .query([str_param("filename", "A folder of the repository to list, in double quotes.")]),
            NodePart::RepoContents => Op::new("get", "nodes", "One file of a node's repository")
                .file(json!({}))
                .query([str_param("filename", "The file's path in the repository, in double quotes.")]),
            NodePart::Download => Op::new("get", "nodes", "A data node exported to a file format")
                .describe("The formats of each data type are listed by `/nodes/download_formats/`.")
                .error(501, "A format this server does not produce (the plots `mpl_pdf` and `mpl_png` of bands need matplotlib; `mpl_singlefile` gives the script).")
                .file(json!({"type": "object"}))
                .query([
                    str_param("download_format", "The format (e.g. `cif`, `xsf`, `json`)."),
                    query_param("download", json!({"type": "boolean"}), "`false`: the envelope holding the file's text instead of the file."),
                ]),
        },
    };
    vec![op]
}

// ------------------------------------------------------------------------------------------
// v2

fn v2_operations() -> Vec<(String, Vec<Op>)> {
    let mut all = Vec::new();
    for (_endpoint, rule) in v2::routes::all_rules() {
        let route = v2::routes::parse(&sample_path(&rule))
            .unwrap_or_else(|e| panic!("the v2 rule {rule} does not parse: {e:?}"));
        let mut op = v2_describe(&route, &rule);
        let name = rule.trim_matches('/').replace(['<', '>', ':'], "").replace('/', "_");
        op.id = format!("v2_get_{}", if name.is_empty() { "root" } else { &name });
        if rule.contains("<id>") {
            op.path_params.push(id_param(rule.starts_with("/users/")));
        }
        if rule.contains("<int:page>") {
            op.path_params.push(page_param());
        }
        all.push((openapi_path(&rule), vec![op]));
    }
    all
}

/// v2's filter keys of a resource, as query parameters.
fn v2_filters(resource: v2::routes::Resource) -> Vec<Value> {
    use v2::params::ValueType;
    v2::params::keys(resource)
        .iter()
        .map(|key| {
            let schema = match key.value {
                ValueType::Integer => json!({"type": "integer"}),
                ValueType::Bool => json!({"type": "boolean"}),
                ValueType::DateTime => json!({"type": "string", "examples": ["2020-01-31T12:00:00"]}),
                ValueType::String => json!({"type": "string", "pattern": "^\"[^\"]*\"$", "examples": ["\"a\""]}),
            };
            query_param(key.name, schema, "Filter (`=` here; the other operators as the description of the API says).")
        })
        .collect()
}

fn v2_describe(route: &v2::routes::Route, rule: &str) -> Op {
    use v2::routes::{NodePart, Route};
    match route {
        Route::Endpoints => Op::new("get", "server", "The endpoints of the API")
            .data(json!({"type": "object", "required": ["available_endpoints"]})),
        Route::ServerInfo => Op::new("get", "server", "Versions of the API and of AiiDA")
            .data(json!({"type": "array", "items": {"type": "string"}})),
        Route::List { resource, page } => {
            let name = resource.name();
            let mut op = Op::new(
                "get",
                name,
                if page.is_some() { format!("One page of the {name}") } else { format!("List the {name}") },
            )
            .paged(list_of(name))
            .query(paging(page.is_some()))
            .query(v2_filters(*resource));
            if rule.ends_with("/page/") {
                op.description = "The first page.".into();
            }
            op
        }
        Route::Detail { resource, .. } => {
            Op::new("get", resource.name(), format!("One of the {}", resource.name())).data(list_of(resource.name()))
        }
        Route::Schema(resource) => Op::new("get", resource.name(), format!("The fields of the {}", resource.name()))
            .data(json!({"type": "object"})),
        Route::Statistics(resource) => Op::new("get", resource.name(), format!("Counts of the {}", resource.name()))
            .data(json!({"type": "object"})),
        Route::Types(resource) => Op::new("get", resource.name(), format!("The types of the {}", resource.name()))
            .data(json!({"type": ["object", "array"]})),
        Route::Node { resource, part, page, .. } => {
            let tag = resource.name();
            let keys = v2::node::allowed_keys(*part);
            let params: Vec<Value> = keys
                .iter()
                .map(|key| match *key {
                    "limit" | "offset" | "perpage" | "in_limit" | "out_limit" => {
                        int_param(key, "See the API's description.")
                    }
                    _ => str_param(key, "See the API's description."),
                })
                .filter(|p| page.is_some() || p["name"] != "perpage")
                .filter(|p| page.is_none() || (p["name"] != "limit" && p["name"] != "offset"))
                .collect();
            let op = match part {
                NodePart::Inputs => Op::new("get", tag, "The inputs of a node").paged(list_of("inputs")),
                NodePart::Outputs => Op::new("get", tag, "The outputs of a node").paged(list_of("outputs")),
                NodePart::Tree => {
                    Op::new("get", tag, "The provenance graph around a node").data(json!({"type": "object"}))
                }
                NodePart::Attributes => Op::new("get", tag, "The attributes of a node").data(object_of("attributes")),
                NodePart::Extras => Op::new("get", tag, "The extras of a node").data(object_of("extras")),
                NodePart::Visualization => {
                    Op::new("get", tag, "A node prepared for display").data(json!({"type": "object"}))
                }
                NodePart::Download => Op::new("get", tag, "A data node exported to a file format").file(json!({})),
                NodePart::RetrievedInputs => {
                    Op::new("get", tag, "The raw input files of a calculation").file(json!({}))
                }
                NodePart::RetrievedOutputs => {
                    Op::new("get", tag, "The retrieved files of a calculation").file(json!({}))
                }
            };
            let mut op = op.query(params);
            if matches!(part, NodePart::Download | NodePart::Visualization) {
                // v2's answer for what it never offered for a class (`http::v2`).
                op.errors.push((501, "Not offered for nodes of this type (v2 did not offer it)."));
            }
            op
        }
    }
}

// ------------------------------------------------------------------------------------------
// The documentation page

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `code` spans of Markdown backticks, the rest escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (n, part) in text.split('`').enumerate() {
        if n % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            out.push_str(&escape(part));
        }
    }
    out.replace("\n\n", "</p><p>")
}

pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#1d1d1f}\
code{background:#f2f2f4;padding:0 .25em;border-radius:3px}table{border-collapse:collapse;margin:.5rem 0}\
td,th{border:1px solid #d0d0d6;padding:.25rem .5rem;text-align:left;vertical-align:top}\
section.op{border-top:1px solid #d0d0d6;padding:.5rem 0}.m{font-weight:bold;text-transform:uppercase;padding:0 .4em;border-radius:3px;background:#e3ecfb}\
.post{background:#e3f5e8}nav a{margin-right:1em}";

/// The document as a page: the API's description, then each path with its operations,
/// parameters and answers.
pub fn render_html(document: &Value, spec: &Spec) -> String {
    let info = &document["info"];
    let title = info["title"].as_str().unwrap_or("API");
    let server = document["servers"][0]["url"].as_str().unwrap_or("");
    let mut html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body><nav><a href=\"{home}\">Home</a><a href=\"openapi.json\">OpenAPI document</a><a href=\"./\">API root</a></nav>\
         <h1>{t}</h1><p>Server: <code>{s}</code></p><p>{d}</p>",
        t = escape(title),
        // Relative links: they hold behind a proxy that serves the server under a sub-path.
        home = "../".repeat(spec.prefix.split('/').filter(|s| !s.is_empty()).count()),
        s = escape(server),
        d = inline(info["description"].as_str().unwrap_or("")),
    );
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    html.push_str("<h2>Endpoints</h2><table><tr><th>Method</th><th>Path</th><th>Summary</th></tr>");
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let anchor = op["operationId"].as_str().unwrap_or("");
            html.push_str(&format!(
                "<tr><td><span class=\"m {m}\">{m}</span></td><td><a href=\"#{a}\"><code>{p}</code></a></td><td>{s}</td></tr>",
                m = escape(method),
                a = escape(anchor),
                p = escape(path),
                s = escape(op["summary"].as_str().unwrap_or("")),
            ));
        }
    }
    html.push_str("</table>");
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            html.push_str(&format!(
                "<section class=\"op\" id=\"{a}\"><h3><span class=\"m {m}\">{m}</span> <code>{p}</code></h3><p>{s}</p>",
                a = escape(op["operationId"].as_str().unwrap_or("")),
                m = escape(method),
                p = escape(path),
                s = escape(op["summary"].as_str().unwrap_or("")),
            ));
            if let Some(text) = op["description"].as_str() {
                html.push_str(&format!("<p>{}</p>", inline(text)));
            }
            let params: Vec<Value> =
                op["parameters"].as_array().into_iter().flatten().map(|p| resolve(document, p)).collect();
            if !params.is_empty() {
                html.push_str("<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>");
                for p in params {
                    html.push_str(&format!(
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(p["name"].as_str().unwrap_or("")),
                        escape(p["in"].as_str().unwrap_or("")),
                        escape(&type_name(&p["schema"])),
                        inline(p["description"].as_str().unwrap_or("")),
                    ));
                }
                html.push_str("</table>");
            }
            html.push_str("<table><tr><th>Status</th><th>Answer</th></tr>");
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let response = resolve(document, response);
                let types: Vec<&str> =
                    response["content"].as_object().map(|c| c.keys().map(String::as_str).collect()).unwrap_or_default();
                html.push_str(&format!(
                    "<tr><td>{}</td><td>{} <small>{}</small></td></tr>",
                    escape(status),
                    inline(response["description"].as_str().unwrap_or("")),
                    escape(&types.join(", ")),
                ));
            }
            html.push_str("</table></section>");
        }
    }
    html.push_str("</body></html>\n");
    html
}

/// A `$ref` to `#/components/...` replaced by what it names.
fn resolve(document: &Value, value: &Value) -> Value {
    match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => document.pointer(pointer).cloned().unwrap_or(Value::Null),
        None => value.clone(),
    }
}

fn type_name(schema: &Value) -> String {
    match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path templates of a document, as segment lists.
    fn templates(document: &Value) -> Vec<Vec<String>> {
        document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(|p| p.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect())
            .collect()
    }

    /// Whether a path (segments) matches a template: `{id}` any segment, `{page}` digits.
    fn matches(template: &[String], path: &[&str]) -> bool {
        template.len() == path.len()
            && template.iter().zip(path).all(|(t, s)| match t.as_str() {
                // An identifier as the router takes one, so a keyword is not mistaken for one.
                "{id}" => v4::routes::is_uuid_prefix(s) || v4::routes::parse_user_id(s).is_some(),
                "{page}" => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
                _ => t == s,
            })
    }

    /// Every path of up to `depth` segments over `words` (and more for the longer rules).
    fn paths(words: &[String], depth: usize) -> Vec<Vec<String>> {
        let mut all = vec![Vec::new()];
        let mut frontier = vec![Vec::new()];
        for _ in 0..depth {
            let mut next = Vec::new();
            for path in &frontier {
                for word in words {
                    let mut longer: Vec<String> = path.clone();
                    longer.push(word.clone());
                    next.push(longer);
                }
            }
            all.extend(next.iter().cloned());
            frontier = next;
        }
        all
    }

    /// The segments of the rules (those after `<id>` only, with `tails`), sample identifiers
    /// and pages, and some that name nothing.
    fn vocabulary(rules: &[String], tails: bool) -> Vec<String> {
        let mut words: Vec<String> = rules
            .iter()
            .map(|r| if tails { r.split_once("<id>").map_or("", |(_, tail)| tail) } else { r.as_str() })
            .flat_map(|r| {
                r.split('/').filter(|s| !s.is_empty() && !s.starts_with('<')).map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        words.extend(["ab12cd34", "7", "zz", "page2", "0"].map(str::to_string));
        words.sort();
        words.dedup();
        words
    }

    /// Every word that the router's source spells in a string literal (a path segment it may
    /// match, even one that no rule names), with the rules' words.
    fn source_words(source: &str, rules: &[String]) -> Vec<String> {
        let mut words = vocabulary(rules, false);
        let code = source.split("#[cfg(test)]").next().unwrap_or(source);
        for literal in code.split('"').skip(1).step_by(2) {
            words.extend(
                literal
                    .split('/')
                    .filter(|w| {
                        !w.is_empty() && w.len() <= 40 && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    })
                    .map(str::to_string),
            );
        }
        words.sort();
        words.dedup();
        words
    }

    /// Both ways: each path the router answers matches a template of the document, and each
    /// template of the document, instantiated, is answered. The paths explored are made of the
    /// words of the router's source (`source`: any literal it could match, rule or not), sample
    /// identifiers and pages: every path of up to 3 segments; below `/<resource>/<id>` (and
    /// `/<resource>/7`, `/<resource>/page`) every path of up to 3 more segments whose last one
    /// is any word and the others words that follow an identifier in the rules or that no rule
    /// has; below the `deep` prefixes the same with 4 more segments.
    fn router_and_document_agree(
        document: &Value,
        rules: Vec<String>,
        source: &str,
        resources: &[&str],
        deep: &[&str],
        parse: impl Fn(&str) -> bool,
    ) {
        let templates = templates(document);
        assert_eq!(templates.len(), rules.len(), "one path per rule");
        for template in &templates {
            let path = format!("/{}", template.join("/")).replace("{id}", "ab12cd34").replace("{page}", "3");
            let path = if template.first().map(String::as_str) == Some("users") {
                path.replace("ab12cd34", "7")
            } else {
                path
            };
            assert!(parse(&path), "the document's {path} is not answered");
        }
        let words = source_words(source, &rules);
        // The words after an identifier in the rules, and the source's words no rule has.
        let rule_words = vocabulary(&rules, false);
        let mut tail_words = vocabulary(&rules, true);
        tail_words.extend(words.iter().filter(|w| !rule_words.contains(w)).cloned());
        tail_words.sort();
        tail_words.dedup();
        let (mut checked, mut answered) = (0, 0);
        let mut check = |segments: &[String]| {
            checked += 1;
            let path = format!("/{}/", segments.join("/"));
            if parse(&path) {
                answered += 1;
                let split: Vec<&str> = segments.iter().map(String::as_str).collect();
                assert!(templates.iter().any(|t| matches(t, &split)), "{path} is answered but not in the document");
            }
        };
        for path in paths(&words, 3) {
            check(&path);
        }
        // `head`, then `depth - 1` tail words or fewer, then any word.
        let mut below = |head: &str, depth: usize| {
            let head: Vec<String> = head.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
            for middle in paths(&tail_words, depth - 1) {
                for last in &words {
                    check(&[head.clone(), middle.clone(), vec![last.clone()]].concat());
                }
            }
        };
        for resource in resources {
            for second in ["ab12cd34", "7", "page"] {
                below(&format!("/{resource}/{second}"), 3);
            }
        }
        for prefix in deep {
            below(prefix, 4);
        }
        assert!(answered > 40 && checked > 100_000, "{answered} of {checked}");
    }

    #[test]
    fn v4_document_and_router_agree() {
        for posting in [true, false] {
            let document = document(&Spec::v4("/api/v4", posting), "http://localhost");
            let rules: Vec<String> = v4::routes::rules(posting).map(|(_, r)| r.to_string()).collect();
            let resources = ["nodes", "computers", "users", "groups", "processes", "calcjobs"];
            let parse = |p: &str| v4::routes::parse(p, posting).is_ok();
            let source = include_str!("v4/routes.rs");
            router_and_document_agree(&document, rules, source, &resources, &["/nodes/ab12cd34"], parse);
            let has_post = document["paths"]["/querybuilder/"]["post"].is_object();
            assert_eq!(has_post, posting);
        }
    }

    #[test]
    fn v2_document_and_router_agree() {
        let document = document(&Spec::v2("/api/v2"), "http://localhost");
        let rules: Vec<String> = v2::routes::all_rules().into_iter().map(|(_, r)| r).collect();
        let resources: Vec<&str> = v2::routes::RESOURCES.iter().map(|r| r.name()).collect();
        // The deepest paths (`io/inputs/page/<n>`); what differs between node resources is
        // two segments deep, explored for each.
        let deep = ["/nodes/ab12cd34", "/calculations/ab12cd34"];
        let source = include_str!("v2/routes.rs");
        router_and_document_agree(&document, rules, source, &resources, &deep, |p| v2::routes::parse(p).is_ok());
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let spec = Spec::v4("/db1/api/v4", true).among_several();
        let document = document(&spec, "https://example.org");
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["servers"][0]["url"], "https://example.org/db1/api/v4");
        let nodes = &document["paths"]["/nodes/page/{page}/"]["get"];
        let names: Vec<&str> = nodes["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().or(p["$ref"].as_str()).unwrap())
            .collect();
        assert!(names.contains(&"page") && names.contains(&"perpage") && names.contains(&"attributes"), "{names:?}");
        assert!(names.contains(&"#/components/parameters/profile"));
        assert!(!names.contains(&"limit"), "a page takes perpage, not limit");
        assert!(nodes["responses"]["200"]["headers"]["Link"].is_object());
        // Every operation has an id, and ids are unique.
        let mut ids = Vec::new();
        for item in document["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ids.push(op["operationId"].as_str().unwrap().to_string());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count);
        // Every $ref resolves.
        fn refs(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r.clone());
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&document, &mut all);
        for r in all {
            assert!(document.pointer(r.strip_prefix('#').unwrap()).is_some(), "{r}");
        }
    }

    #[test]
    fn the_page_lists_every_operation() {
        let spec = Spec::v2("/api/v2");
        let document = document(&spec, "http://localhost");
        let html = render_html(&document, &spec);
        for path in document["paths"].as_object().unwrap().keys() {
            assert!(html.contains(&format!("<code>{}</code>", escape(path))), "{path}");
        }
        assert!(!html.contains("<script"));
        assert!(!html.contains("http://") || html.contains("http://localhost"));
    }
}
