//! `QueryBuilder.as_dict()` → a checked, typed query. Every mistake a client can make becomes a
//! 400 with a message saying what is wrong and what is accepted; nothing here touches SQL.
//!
//! The semantics follow aiida-core's `QueryBuilder.__init__`/`append`: path items add their
//! type filters first and user filters then replace them key by key; top-level `project`
//! entries replace the projections given in path items.

use serde_json::Value;

use crate::query::filter;
use crate::query::tables::{self, Column, Entity, Kind, Table};
use crate::query::{QueryError, QueryResult};

use super::ojson::OValue;

// Limits on one query, each answered with a 400 that names it. They are far above real use
// (the explorer sends a handful of conditions, a dozen projections and two or three path
// items) and keep every statement well inside what the databases accept and answer quickly:
// SQLite refuses expressions nested more than 1000 levels deep, more than 2000 result columns
// or ORDER BY terms and LIKE patterns over 50,000 bytes; PostgreSQL more than 1664 result
// columns; every ancestor/descendant walk multiplies the rows by the paths of the provenance
// graph, and every joined path item multiplies the work of the statement.

/// Most values in one `in` list on a plain column (a flat `IN (...)` list).
pub const MAX_LIST: usize = 10_000;
/// Most conditions (operator tests and `and`/`or`/`not` combinators) in one query, the type
/// filters of the path items included; also the most filter keys of one tag.
pub const MAX_TERMS: usize = 200;
/// How deep a JSON value compared with a JSON field (`==`, `contains`, the items of `in`) may
/// nest arrays and objects.
pub const MAX_JSON_DEPTH: usize = 16;
/// Most values (scalars, and empty arrays and objects) in all the JSON values a query compares
/// with JSON fields (`==`, `contains`, `>`, ..., the items of `in` on a JSON field).
pub const MAX_JSON_SCALARS: usize = 1_000;
/// Most keys in one JSON path (`attributes.a.b.c` has 3).
pub const MAX_KEYS: usize = 32;
/// Most bytes in a `like`/`ilike` pattern.
pub const MAX_PATTERN: usize = 10_000;
/// Most path items: unfiltered chains of link joins grow fast (8 items take about 1.5 s on
/// SQLite for the demo data, 10 exceed the statement time limit); real queries use a few.
pub const MAX_PATH: usize = 8;
/// Most `with_ancestors`/`with_descendants` joins in one path.
pub const MAX_WALKS: usize = 2;
/// Most projected values (after `**` is expanded), over all tags.
pub const MAX_PROJECTIONS: usize = 500;
/// Most `order_by` items.
pub const MAX_ORDER: usize = 100;
/// How deep filters may nest (`and`/`or` in `and`/`or`, ...).
const MAX_DEPTH: usize = 32;

/// What the conditions of one query have used of [`MAX_TERMS`] and [`MAX_JSON_SCALARS`].
#[derive(Debug, Default)]
struct Budget {
    terms: usize,
    scalars: usize,
}

impl Budget {
    /// Counts one more condition.
    fn term(&mut self) -> QueryResult<()> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(bad(format!(
                "the filters hold more than {MAX_TERMS} conditions (operators, and/or/not combinators and the type filters of the path items); at most {MAX_TERMS} are accepted per query"
            )));
        }
        Ok(())
    }

    /// Checks a JSON value compared with `field` (its depth and keys) and counts its values.
    fn json_value(&mut self, value: &Value, field: &str) -> QueryResult<()> {
        self.walk_json(value, field, 0)
    }

    fn walk_json(&mut self, value: &Value, field: &str, depth: usize) -> QueryResult<()> {
        let container = matches!(value, Value::Array(_) | Value::Object(_));
        if container && depth >= MAX_JSON_DEPTH {
            return Err(bad(format!(
                "the value compared with {field} nests arrays and objects more than {MAX_JSON_DEPTH} levels deep; at most {MAX_JSON_DEPTH} are accepted"
            )));
        }
        match value {
            Value::Array(items) if !items.is_empty() => {
                for item in items {
                    self.walk_json(item, field, depth + 1)?;
                }
            }
            Value::Object(map) if !map.is_empty() => {
                for (key, item) in map {
                    check_key(key, field)?;
                    self.walk_json(item, field, depth + 1)?;
                }
            }
            _ => {
                self.scalars += 1;
                if self.scalars > MAX_JSON_SCALARS {
                    return Err(bad(format!(
                        "the JSON values compared with JSON fields hold more than {MAX_JSON_SCALARS} values in total; at most {MAX_JSON_SCALARS} are accepted per query"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A key of a JSON path or of a JSON object compared with one: SQLite's JSON paths cut a key
/// at a NUL character and cannot hold a double quote (PostgreSQL would look up the key as
/// written), so both are refused rather than answered differently per database.
fn check_key(key: &str, field: &str) -> QueryResult<()> {
    if key.contains(['\0', '"']) {
        return Err(bad(format!(
            "{field}: the JSON key {} contains a NUL character or a double quote (\"), which JSON keys in queries cannot hold",
            serde_json::Value::String(key.to_string())
        )));
    }
    Ok(())
}

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError::bad_request(msg)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Vertex(usize),
    /// The edge that joins vertex `i` to the path (`i >= 1`).
    Edge(usize),
}

/// How a path item is joined to an earlier one (the keyword is seen from the new item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    WithIncoming,
    WithOutgoing,
    WithAncestors,
    WithDescendants,
    WithComputer,
    WithUser,
    WithGroup,
    WithNode,
    WithComment,
    WithLog,
}

impl JoinKind {
    fn parse(keyword: &str) -> Option<JoinKind> {
        Some(match keyword {
            "with_incoming" => JoinKind::WithIncoming,
            "with_outgoing" => JoinKind::WithOutgoing,
            "with_ancestors" => JoinKind::WithAncestors,
            "with_descendants" => JoinKind::WithDescendants,
            "with_computer" => JoinKind::WithComputer,
            "with_user" => JoinKind::WithUser,
            "with_group" => JoinKind::WithGroup,
            "with_node" => JoinKind::WithNode,
            "with_comment" => JoinKind::WithComment,
            "with_log" => JoinKind::WithLog,
            _ => return None,
        })
    }

    pub fn keyword(self) -> &'static str {
        match self {
            JoinKind::WithIncoming => "with_incoming",
            JoinKind::WithOutgoing => "with_outgoing",
            JoinKind::WithAncestors => "with_ancestors",
            JoinKind::WithDescendants => "with_descendants",
            JoinKind::WithComputer => "with_computer",
            JoinKind::WithUser => "with_user",
            JoinKind::WithGroup => "with_group",
            JoinKind::WithNode => "with_node",
            JoinKind::WithComment => "with_comment",
            JoinKind::WithLog => "with_log",
        }
    }
}

/// The joins an entity accepts and the entity each one joins to.
fn relationships(entity: Entity) -> &'static [(JoinKind, Entity)] {
    use Entity as E;
    use JoinKind as J;
    match entity {
        E::Node => &[
            (J::WithIncoming, E::Node),
            (J::WithOutgoing, E::Node),
            (J::WithAncestors, E::Node),
            (J::WithDescendants, E::Node),
            (J::WithComputer, E::Computer),
            (J::WithUser, E::User),
            (J::WithGroup, E::Group),
            (J::WithComment, E::Comment),
            (J::WithLog, E::Log),
        ],
        E::Group => &[(J::WithNode, E::Node), (J::WithUser, E::User)],
        E::Computer => &[(J::WithNode, E::Node)],
        E::User => &[(J::WithNode, E::Node), (J::WithGroup, E::Group), (J::WithComment, E::Comment)],
        E::Comment => &[(J::WithNode, E::Node), (J::WithUser, E::User)],
        E::Log => &[(J::WithNode, E::Node)],
        E::Link => &[],
    }
}

#[derive(Debug, Clone)]
pub struct Join {
    pub kind: JoinKind,
    /// Index of the earlier vertex this one is joined to.
    pub with: usize,
    pub edge_tag: String,
    pub outer: bool,
}

#[derive(Debug, Clone)]
pub struct Vertex {
    pub tag: String,
    pub entity: Entity,
    pub join: Option<Join>,
}

/// A column of a target, optionally a path inside a JSON column.
#[derive(Debug, Clone)]
pub struct Field {
    pub target: Target,
    pub column: Column,
    pub path: Vec<String>,
}

impl PartialEq for Field {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target && self.column.name == other.column.name && self.path == other.path
    }
}

impl Field {
    pub fn is_json(&self) -> bool {
        self.column.kind == Kind::Json
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Gt,
    Lt,
    Ge,
    Le,
    Like,
    ILike,
    In,
    Contains,
    HasKey,
    OfType,
    OfLength,
    Longer,
    Shorter,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// A test on a plain column, in the query layer's filter model.
    Column {
        field: Field,
        op: filter::Op,
        value: filter::Value,
    },
    /// A test on a value inside a JSON column (`attributes.x`).
    Json {
        field: Field,
        op: Op,
        value: Value,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    Float,
    Int,
    Bool,
    Text,
    Json,
    Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Count,
    Max,
    Min,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Projected {
    /// Key of the value in the answer's row.
    pub key: String,
    pub field: Field,
    pub cast: Option<Cast>,
    pub func: Option<Func>,
}

/// One tag's projections, in the order given.
#[derive(Debug, Clone)]
pub struct TagProjection {
    pub tag: String,
    pub target: Target,
    pub items: Vec<Projected>,
}

#[derive(Debug, Clone)]
pub struct OrderItem {
    pub field: Field,
    pub desc: bool,
    pub cast: Option<Cast>,
}

#[derive(Debug, Clone)]
pub struct QbQuery {
    pub vertices: Vec<Vertex>,
    /// The conditions of each target that has some.
    pub filters: Vec<(Target, Cond)>,
    /// What the SQL projects, tag by tag in path order (vertices, then edges).
    pub projections: Vec<TagProjection>,
    /// Tags whose rows the answer holds.
    pub answer_tags: Vec<String>,
    pub order: Vec<OrderItem>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub distinct: bool,
}

impl QbQuery {
    pub fn conditions_of(&self, target: Target) -> Option<&Cond> {
        self.filters.iter().find(|(t, _)| *t == target).map(|(_, c)| c)
    }

    /// The table behind a target; `None` for edges that have no table (e.g. `with_user`).
    pub fn table(&self, target: Target) -> Option<&'static Table> {
        match target {
            Target::Vertex(i) => Some(self.vertices[i].entity.table()),
            Target::Edge(i) => edge_table(self.vertices[i].join.as_ref()?.kind, self.vertices[i].entity),
        }
    }
}

pub fn edge_table(kind: JoinKind, entity: Entity) -> Option<&'static Table> {
    match (kind, entity) {
        (JoinKind::WithIncoming | JoinKind::WithOutgoing, _) => Some(&tables::LINK),
        (JoinKind::WithGroup, Entity::Node) | (JoinKind::WithNode, Entity::Group) => Some(&tables::GROUP_NODE),
        (JoinKind::WithAncestors | JoinKind::WithDescendants, _) => Some(&tables::WALK),
        _ => None,
    }
}

/// Tags in use: vertex tags and edge tags, each with its target.
struct Tags(Vec<(String, Target)>);

impl Tags {
    fn get(&self, tag: &str) -> Option<Target> {
        self.0.iter().find(|(t, _)| t == tag).map(|(_, target)| *target)
    }
    fn require(&self, tag: &str, context: &str) -> QueryResult<Target> {
        self.get(tag).ok_or_else(|| {
            bad(format!(
                "{context}: tag '{tag}' is not among the known tags: {}",
                self.0.iter().map(|(t, _)| format!("'{t}'")).collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// Per-tag specifications collected while reading the dict, before they are resolved.
#[derive(Default)]
struct Specs {
    /// tag → filter entries (key → spec), later entries replacing earlier ones by key.
    filters: Vec<(String, Vec<(String, OValue)>)>,
    /// tag → raw projection list.
    projections: Vec<(String, Vec<RawProjection>)>,
}

impl Specs {
    fn add_filters(&mut self, tag: &str, entries: &[(String, OValue)]) -> QueryResult<()> {
        let slot = match self.filters.iter_mut().find(|(t, _)| t == tag) {
            Some(slot) => slot,
            None => {
                self.filters.push((tag.to_string(), Vec::new()));
                self.filters.last_mut().expect("just pushed")
            }
        };
        for (key, value) in entries {
            match slot.1.iter_mut().find(|(k, _)| k == key) {
                Some(existing) => existing.1 = value.clone(),
                None => slot.1.push((key.clone(), value.clone())),
            }
            // Checked while merging, which is quadratic in the number of keys.
            if slot.1.len() > MAX_TERMS {
                return Err(bad(format!(
                    "the filters of '{tag}' have more than {MAX_TERMS} keys; at most {MAX_TERMS} conditions are accepted per query"
                )));
            }
        }
        Ok(())
    }

    fn set_projection(&mut self, tag: &str, items: Vec<RawProjection>) {
        match self.projections.iter_mut().find(|(t, _)| t == tag) {
            Some(slot) => slot.1 = items,
            None => self.projections.push((tag.to_string(), items)),
        }
    }
}

#[derive(Debug, Clone)]
struct RawProjection {
    name: String,
    cast: Option<Cast>,
    func: Option<Func>,
}

const TOP_KEYS: [&str; 9] =
    ["path", "filters", "project", "project_map", "order_by", "limit", "offset", "distinct", "debug"];
const ITEM_KEYS: [&str; 13] = [
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
];

/// Reads a POSTed body.
pub fn parse_body(body: &[u8]) -> QueryResult<QbQuery> {
    let dict = OValue::parse(body).map_err(|e| {
        bad(format!(
            "The POSTed data is not valid JSON ({e}). POST a QueryBuilder.as_dict() dictionary as a JSON object."
        ))
    })?;
    parse(&dict)
}

pub fn parse(dict: &OValue) -> QueryResult<QbQuery> {
    let entries = top_entries(dict)?;
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| !v.is_null());
    let (vertices, tags, mut specs) = parse_path(get("path"))?;
    let last_tag = vertices.last().expect("path is not empty").tag.clone();
    let answer_tags = read_top_projections(get("project"), &tags, &mut specs, last_tag)?;
    read_top_filters(get("filters"), &tags, &mut specs)?;
    check_project_map(get("project_map"))?;
    let limit = parse_int(get("limit"), "limit")?;
    let offset = parse_int(get("offset"), "offset")?;
    let distinct = match get("distinct") {
        None => false,
        Some(OValue::Bool(b)) => *b,
        Some(other) => {
            return Err(bad(format!("'distinct' must be true or false, not {}", other.show())));
        }
    };
    let mut query = QbQuery {
        vertices,
        filters: Vec::new(),
        projections: Vec::new(),
        answer_tags,
        order: Vec::new(),
        limit,
        offset,
        distinct,
    };
    resolve_filters(&mut query, &specs, &tags)?;
    resolve_all_projections(&mut query, &specs, &tags)?;
    if let Some(order_by) = get("order_by") {
        query.order = parse_order_by(order_by, &tags, &query)?;
    }
    Ok(query)
}

/// The entries of the dictionary, whose keys are checked.
fn top_entries(dict: &OValue) -> QueryResult<&[(String, OValue)]> {
    let Some(entries) = dict.as_object() else {
        return Err(bad(format!(
            "POSTed data MUST be a valid QueryBuilder.as_dict() dictionary (a JSON object). Got instead {}: {}",
            dict.type_name(),
            dict.show()
        )));
    };
    for (key, _) in entries {
        if !TOP_KEYS.contains(&key.as_str()) {
            return Err(bad(format!(
                "'{key}' is not a key of a QueryBuilder dictionary; valid keys are: {}",
                TOP_KEYS[..8].join(", ")
            )));
        }
    }
    Ok(entries)
}

/// The path items, their tags, and the filters and projections they give.
fn parse_path(path: Option<&OValue>) -> QueryResult<(Vec<Vertex>, Tags, Specs)> {
    let path = match path {
        Some(OValue::Array(items)) if !items.is_empty() => items,
        Some(OValue::Array(_)) | None => {
            return Err(bad(
                "'path' is missing or empty: give the list of entities to query, e.g. [{\"entity_type\": \"\", \"tag\": \"node\"}]",
            ));
        }
        Some(other) => {
            return Err(bad(format!("'path' must be a list, not {}", other.type_name())));
        }
    };
    if path.len() > MAX_PATH {
        return Err(bad(format!("'path' has {} items; at most {MAX_PATH} are accepted", path.len())));
    }
    let mut specs = Specs::default();
    let mut tags = Tags(Vec::new());
    let mut vertices: Vec<Vertex> = Vec::new();
    for (index, item) in path.iter().enumerate() {
        let vertex = parse_path_item(index, item, &vertices, &mut tags, &mut specs)?;
        vertices.push(vertex);
    }
    let walks = vertices
        .iter()
        .filter(|v| {
            v.join.as_ref().is_some_and(|j| matches!(j.kind, JoinKind::WithAncestors | JoinKind::WithDescendants))
        })
        .count();
    if walks > MAX_WALKS {
        return Err(bad(format!(
            "'path' has {walks} with_ancestors/with_descendants joins; at most {MAX_WALKS} are accepted (each walk multiplies the rows by the paths of the provenance graph)"
        )));
    }
    Ok((vertices, tags, specs))
}

/// Top-level projections replace those of the path items; the answer holds only the tags
/// named here (all of them empty means: the last item, every column). Returns those tags.
fn read_top_projections(
    project: Option<&OValue>,
    tags: &Tags,
    specs: &mut Specs,
    last_tag: String,
) -> QueryResult<Vec<String>> {
    let mut answer_tags = Vec::new();
    match project {
        None => specs.set_projection(&last_tag, vec![all_columns()]),
        Some(OValue::Object(project)) => {
            for (tag, spec) in project {
                tags.require(tag, "project")?;
                let items = parse_projection_spec(spec, tag)?;
                if !items.is_empty() {
                    answer_tags.push(tag.clone());
                }
                specs.set_projection(tag, items);
            }
            if answer_tags.is_empty() {
                specs.set_projection(&last_tag, vec![all_columns()]);
            }
        }
        Some(other) => {
            return Err(bad(format!(
                "'project' must be an object mapping tags to projections, not {}",
                other.type_name()
            )));
        }
    }
    if answer_tags.is_empty() {
        answer_tags.push(last_tag);
    }
    Ok(answer_tags)
}

/// Top-level filters, merged key by key into those of the path items.
fn read_top_filters(filters: Option<&OValue>, tags: &Tags, specs: &mut Specs) -> QueryResult<()> {
    match filters {
        None => {}
        Some(OValue::Object(filters)) => {
            for (tag, spec) in filters {
                tags.require(tag, "filters")?;
                match spec {
                    OValue::Object(entries) => specs.add_filters(tag, entries)?,
                    OValue::Null => {}
                    other => {
                        return Err(bad(format!(
                            "the filters of '{tag}' must be an object (column → condition), not {}",
                            other.type_name()
                        )));
                    }
                }
            }
        }
        Some(other) => {
            return Err(bad(format!("'filters' must be an object mapping tags to filters, not {}", other.type_name())));
        }
    }
    Ok(())
}

/// Checked but not applied: aiida-core 2.9.4 accepts `project_map` and answers with the
/// projected names all the same.
fn check_project_map(project_map: Option<&OValue>) -> QueryResult<()> {
    match project_map {
        None => Ok(()),
        Some(OValue::Object(map)) => {
            let valid = map
                .iter()
                .all(|(_, renames)| renames.as_object().is_some_and(|r| r.iter().all(|(_, to)| to.as_str().is_some())));
            if !valid {
                return Err(bad("'project_map' values must be objects mapping projected names to answer keys"));
            }
            Ok(())
        }
        Some(_) => Err(bad("'project_map' must be an object")),
    }
}

/// The collected filters of each tag as conditions.
fn resolve_filters(query: &mut QbQuery, specs: &Specs, tags: &Tags) -> QueryResult<()> {
    let mut budget = Budget::default();
    for (tag, entries) in &specs.filters {
        let target = tags.get(tag).expect("filter tags are checked");
        if entries.is_empty() {
            continue;
        }
        let table = table_or_error(query, target, tag, "filter on")?;
        if let Some(cond) = parse_filter_entries(target, table, tag, entries, 0, &mut budget)? {
            query.filters.push((target, cond));
        }
    }
    Ok(())
}

/// The collected projections of each tag, vertices first, then edges, as AiiDA orders the
/// projected columns.
fn resolve_all_projections(query: &mut QbQuery, specs: &Specs, tags: &Tags) -> QueryResult<()> {
    let mut ordered: Vec<&(String, Vec<RawProjection>)> = specs.projections.iter().collect();
    ordered.sort_by_key(|(tag, _)| match tags.get(tag) {
        Some(Target::Vertex(i)) => (0, i),
        Some(Target::Edge(i)) => (1, i),
        None => (2, 0),
    });
    for (tag, raw) in ordered {
        if raw.is_empty() {
            continue;
        }
        let target = tags.get(tag).expect("projection tags are checked");
        let table = table_or_error(query, target, tag, "project")?;
        let items = resolve_projections(target, table, tag, raw)?;
        query.projections.push(TagProjection { tag: tag.clone(), target, items });
        let projected: usize = query.projections.iter().map(|p| p.items.len()).sum();
        if projected > MAX_PROJECTIONS {
            return Err(too_many_projections());
        }
    }
    if query.projections.iter().any(|p| p.items.iter().any(|i| i.func.is_some()))
        && query.projections.iter().any(|p| p.items.iter().any(|i| i.func.is_none()))
    {
        return Err(bad(
            "projections with 'func' (count, max, min) cannot be mixed with plain projections: the query has no grouping",
        ));
    }
    Ok(())
}

fn too_many_projections() -> QueryError {
    bad(format!("the query projects more than {MAX_PROJECTIONS} values; at most {MAX_PROJECTIONS} are accepted"))
}

fn all_columns() -> RawProjection {
    RawProjection { name: "**".into(), cast: None, func: None }
}

fn parse_int(value: Option<&OValue>, key: &str) -> QueryResult<Option<i64>> {
    match value {
        None => Ok(None),
        Some(OValue::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(other) => Err(bad(format!("'{key}' must be an integer or null, not {}", other.show()))),
    }
}

fn table_or_error(query: &QbQuery, target: Target, tag: &str, what: &str) -> QueryResult<&'static Table> {
    query.table(target).ok_or_else(|| {
        let Target::Edge(i) = target else { unreachable!("vertices always have a table") };
        let join = query.vertices[i].join.as_ref().expect("edges belong to joined vertices");
        bad(format!(
            "cannot {what} '{tag}': the join {} of {} '{}' has no edge table (only with_incoming, with_outgoing, with_group, group with_node, with_ancestors and with_descendants have one)",
            join.kind.keyword(),
            query.vertices[i].entity.name(),
            query.vertices[i].tag
        ))
    })
}

/// One item of `path` (a dict, or a bare entity type string), being read.
struct PathItem {
    index: usize,
    entries: Vec<(String, OValue)>,
    /// `with_*` and `direction` keys that are set.
    join_kwargs: Vec<(String, OValue)>,
}

/// The type filter an entity type implies: (column, condition).
type TypeFilter = Option<(&'static str, OValue)>;

impl PathItem {
    /// Checks the keys of the item.
    fn new(index: usize, item: &OValue) -> QueryResult<Self> {
        let entries: Vec<(String, OValue)> = match item {
            OValue::Object(entries) => entries.clone(),
            OValue::String(s) => vec![("entity_type".to_string(), OValue::String(s.clone()))],
            other => {
                return Err(bad(format!(
                    "path item {index} must be an object (or an entity type string), not {}",
                    other.type_name()
                )));
            }
        };
        let mut join_kwargs = Vec::new();
        for (key, value) in &entries {
            if key.starts_with("with_") || key == "direction" {
                if !value.is_null() {
                    join_kwargs.push((key.clone(), value.clone()));
                }
            } else if !ITEM_KEYS.contains(&key.as_str()) {
                return Err(bad(format!(
                    "'{key}' is not a valid key of path item {index}; valid keys are: {}, and a joining keyword such as with_incoming",
                    ITEM_KEYS[..12].join(", ")
                )));
            }
        }
        Ok(Self { index, entries, join_kwargs })
    }

    fn get(&self, key: &str) -> Option<&OValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| !v.is_null())
    }

    fn flag(&self, key: &str, default: bool) -> QueryResult<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(OValue::Bool(b)) => Ok(*b),
            Some(other) => {
                Err(bad(format!("path item {}: '{key}' must be true or false, not {}", self.index, other.show())))
            }
        }
    }

    /// The entity, the type filter it implies and the types given.
    fn entity(&self) -> QueryResult<(Entity, TypeFilter, Vec<String>)> {
        let index = self.index;
        if self.get("cls").is_some() {
            return Err(bad(format!("path item {index}: 'cls' cannot be sent as JSON; give 'entity_type' instead")));
        }
        let types: Vec<String> = match self.get("entity_type") {
            Some(OValue::String(s)) => vec![s.clone()],
            Some(OValue::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("path item {index}: {} in 'entity_type' is not a string", t.show())))
                })
                .collect::<QueryResult<_>>()?,
            None => {
                return Err(bad(format!("path item {index} needs an 'entity_type' (\"\" for any node)")));
            }
            Some(other) => {
                return Err(bad(format!(
                    "path item {index}: 'entity_type' must be a string or a list of strings, not {}",
                    other.show()
                )));
            }
        };
        if let Some(orm_base) = self.get("orm_base")
            && orm_base.as_str().is_none()
        {
            return Err(bad(format!("path item {index}: 'orm_base' must be a string")));
        }
        let subclassing = self.flag("subclassing", true)?;
        let (entity, type_filter) = classify(&types, subclassing, index)?;
        Ok((entity, type_filter, types))
    }

    /// The item's tag (given, or made up as AiiDA does).
    fn tag(&self, types: &[String], entity: Entity, tags: &Tags) -> QueryResult<String> {
        match self.get("tag") {
            Some(OValue::String(tag)) => {
                if tag.contains("--") {
                    return Err(bad(format!("tag '{tag}' cannot contain '--', which joins the tags of edges")));
                }
                if tags.get(tag).is_some() {
                    return Err(bad(format!("the tag '{tag}' is already in use")));
                }
                Ok(tag.clone())
            }
            None => Ok(unique_tag(types, entity, tags)),
            Some(other) => Err(bad(format!("path item {}: 'tag' must be a string, not {}", self.index, other.show()))),
        }
    }

    /// Collects the filters and projection of `tag` given under `filters_key`/`project_key`.
    fn add_specs(&self, tag: &str, filters_key: &str, project_key: &str, specs: &mut Specs) -> QueryResult<()> {
        if let Some(filters) = self.get(filters_key) {
            let Some(filters) = filters.as_object() else {
                return Err(bad(format!("path item {}: '{filters_key}' must be an object", self.index)));
            };
            specs.add_filters(tag, filters)?;
        }
        if let Some(project) = self.get(project_key) {
            specs.set_projection(tag, parse_projection_spec(project, tag)?);
        }
        Ok(())
    }

    /// `joining_keyword` and `joining_value`, when given.
    fn explicit_join(&self) -> QueryResult<(Option<&str>, Option<&str>)> {
        let index = self.index;
        let keyword = match self.get("joining_keyword") {
            None => None,
            Some(OValue::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(bad(format!(
                    "path item {index}: 'joining_keyword' must be a string, not {}",
                    other.show()
                )));
            }
        };
        let value = match self.get("joining_value") {
            None => None,
            Some(OValue::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(bad(format!(
                    "path item {index}: 'joining_value' must be a tag (a string), not {}",
                    other.show()
                )));
            }
        };
        Ok((keyword, value))
    }

    /// The first item: nothing to join to.
    fn check_unjoined(&self, explicit: (Option<&str>, Option<&str>)) -> QueryResult<()> {
        if !self.join_kwargs.is_empty() || explicit.0.is_some() || explicit.1.is_some() {
            return Err(bad("the first path item cannot be joined to anything: remove its joining keyword"));
        }
        for key in ["edge_tag", "edge_filters", "edge_project"] {
            if self.get(key).is_some() {
                return Err(bad(format!("the first path item has no edge: remove '{key}'")));
            }
        }
        Ok(())
    }

    /// The joining keyword and the tag joined to, from a `with_*`/`direction` key, the explicit
    /// pair, or the default (a node `with_incoming` the item before, others `with_node`).
    fn join_spec(
        &self,
        entity: Entity,
        tag: &str,
        explicit: (Option<&str>, Option<&str>),
        earlier: &[Vertex],
        valid_names: &dyn Fn() -> String,
    ) -> QueryResult<(String, String)> {
        let index = self.index;
        if self.join_kwargs.len() > 1 || (self.join_kwargs.len() == 1 && explicit.0.is_some()) {
            return Err(bad(format!("path item {index} ('{tag}') gives more than one joining specification")));
        }
        if let Some((key, value)) = self.join_kwargs.first() {
            if key != "direction" {
                let Some(with_tag) = value.as_str() else {
                    return Err(bad(format!("path item {index}: '{key}' must name a tag, not {}", value.show())));
                };
                return Ok((key.to_string(), with_tag.to_string()));
            }
            if entity != Entity::Node {
                return Err(bad(format!(
                    "'direction' joins nodes only; valid keywords for {}: {}",
                    entity.name(),
                    valid_names()
                )));
            }
            let n = match value {
                OValue::Number(n) => n.as_i64(),
                _ => None,
            }
            .ok_or_else(|| bad("direction=n expects n to be an integer"))?;
            if n == 0 || n.unsigned_abs() as usize > index {
                return Err(bad(format!("direction={n} does not point to an earlier path item")));
            }
            let keyword = if n > 0 { "with_incoming" } else { "with_outgoing" };
            return Ok((keyword.to_string(), earlier[index - n.unsigned_abs() as usize].tag.clone()));
        }
        if let Some(keyword) = explicit.0 {
            let Some(with_tag) = explicit.1 else {
                return Err(bad(format!(
                    "path item {index}: 'joining_keyword' needs a 'joining_value' (the tag to join to)"
                )));
            };
            return Ok((keyword.to_string(), with_tag.to_string()));
        }
        let keyword = if entity == Entity::Node { "with_incoming" } else { "with_node" };
        Ok((keyword.to_string(), earlier[index - 1].tag.clone()))
    }

    /// The join of the item to an earlier one, checked against what the entities allow.
    fn join(
        &self,
        entity: Entity,
        tag: &str,
        explicit: (Option<&str>, Option<&str>),
        earlier: &[Vertex],
    ) -> QueryResult<(JoinKind, usize, String)> {
        let index = self.index;
        let valid = relationships(entity);
        let valid_names = || {
            let mut names: Vec<&str> = valid.iter().map(|(k, _)| k.keyword()).collect();
            if entity == Entity::Node {
                names.push("direction");
            }
            names.join(", ")
        };
        let (keyword, with_tag) = self.join_spec(entity, tag, explicit, earlier, &valid_names)?;
        let invalid = || {
            bad(format!(
                "'{keyword}' is not a valid keyword for joining a {}; valid keywords are: {}",
                entity.name(),
                valid_names()
            ))
        };
        let kind = JoinKind::parse(&keyword).ok_or_else(invalid)?;
        let Some(&(_, expected)) = valid.iter().find(|(k, _)| *k == kind) else {
            if entity == Entity::Link {
                return Err(bad("links cannot be joined to other entities: query them as the only path item"));
            }
            return Err(invalid());
        };
        let Some(with) = earlier.iter().position(|v| v.tag == with_tag) else {
            return Err(bad(format!(
                "path item {index} ('{tag}') joins {keyword} '{with_tag}', which is not the tag of an earlier path item"
            )));
        };
        if earlier[with].entity != expected {
            return Err(bad(format!(
                "path item {index} ('{tag}', a {}) joins {keyword} '{with_tag}', which is a {}; {keyword} needs a {}",
                entity.name(),
                earlier[with].entity.name(),
                expected.name()
            )));
        }
        Ok((kind, with, with_tag))
    }

    /// The tag of the edge to the earlier item.
    fn edge_tag(&self, with_tag: &str, tag: &str, tags: &Tags) -> QueryResult<String> {
        let edge_tag = match self.get("edge_tag") {
            None => format!("{with_tag}--{tag}"),
            Some(OValue::String(s)) => s.clone(),
            Some(other) => {
                return Err(bad(format!(
                    "path item {}: 'edge_tag' must be a string, not {}",
                    self.index,
                    other.show()
                )));
            }
        };
        if tags.get(&edge_tag).is_some() {
            return Err(bad(format!("the tag '{edge_tag}' is already in use")));
        }
        Ok(edge_tag)
    }
}

/// Reads one item of `path`: its entity and tag, its filters and projections (into `specs`),
/// and its join to an earlier item.
fn parse_path_item(
    index: usize,
    item: &OValue,
    earlier: &[Vertex],
    tags: &mut Tags,
    specs: &mut Specs,
) -> QueryResult<Vertex> {
    let item = PathItem::new(index, item)?;
    let (entity, type_filter, types) = item.entity()?;
    let tag = item.tag(&types, entity, tags)?;
    tags.0.push((tag.clone(), Target::Vertex(index)));
    if let Some((key, spec)) = type_filter {
        specs.add_filters(&tag, &[(key.to_string(), spec)])?;
    }
    item.add_specs(&tag, "filters", "project", specs)?;
    let outer = item.flag("outerjoin", false)?;
    let explicit = item.explicit_join()?;
    if index == 0 {
        item.check_unjoined(explicit)?;
        return Ok(Vertex { tag, entity, join: None });
    }
    let (kind, with, with_tag) = item.join(entity, &tag, explicit, earlier)?;
    let edge_tag = item.edge_tag(&with_tag, &tag, tags)?;
    tags.0.push((edge_tag.clone(), Target::Edge(index)));
    item.add_specs(&edge_tag, "edge_filters", "edge_project", specs)?;
    Ok(Vertex { tag, entity, join: Some(Join { kind, with, edge_tag, outer }) })
}

/// Entity and type filter for an `entity_type` (or several), as aiida-core's
/// `_get_ormclass_from_str` and the node/group type filters decide them.
fn classify(types: &[String], subclassing: bool, index: usize) -> QueryResult<(Entity, TypeFilter)> {
    let mut entity = None;
    let mut filters = Vec::new();
    for type_string in types {
        let lower = type_string.to_lowercase();
        let (this, filter) = if lower.starts_with("group.") {
            // AiiDA maps every `group.*` string to the base Group class, whose subclass filter
            // matches every group.
            let filter = if subclassing { op("like", "%") } else { op("==", "core") };
            (Entity::Group, Some(filter))
        } else if lower == "computer" {
            (Entity::Computer, None)
        } else if lower == "user" {
            (Entity::User, None)
        } else if lower == "link" {
            (Entity::Link, None)
        } else if lower == "comment" {
            (Entity::Comment, None)
        } else if lower == "log" {
            (Entity::Log, None)
        } else {
            if !valid_node_type(type_string) {
                return Err(bad(format!(
                    "path item {index}: the type string '{type_string}' is invalid: give a node type ending with a dot (e.g. data.core.structure.StructureData.), \"\" for any node, or one of group.core, computer, user, link, comment, log"
                )));
            }
            (Entity::Node, Some(node_type_filter(type_string, subclassing)))
        };
        if entity.is_some_and(|e| e != this) {
            return Err(bad(format!("path item {index}: the entity types in one list must all be of the same kind")));
        }
        entity = Some(this);
        if let Some(filter) = filter {
            filters.push(filter);
        }
    }
    let entity = entity.expect("at least one type");
    let key = match entity {
        Entity::Node => "node_type",
        Entity::Group => "type_string",
        _ => return Ok((entity, None)),
    };
    let spec = if filters.len() == 1 {
        filters.pop().expect("one filter")
    } else {
        OValue::Object(vec![("or".into(), OValue::Array(filters))])
    };
    Ok((entity, Some((key, spec))))
}

fn op(operator: &str, value: &str) -> OValue {
    OValue::Object(vec![(operator.to_string(), OValue::String(value.to_string()))])
}

fn valid_node_type(type_string: &str) -> bool {
    type_string.is_empty() || (type_string.matches('.').count() != 1 && type_string.ends_with('.'))
}

fn node_type_filter(type_string: &str, subclassing: bool) -> OValue {
    // AbstractCode's entry point is younger than the legacy Code's: AiiDA widens the filter so
    // that all codes match.
    let value = if type_string == "data.core.code.abstract.AbstractCode." { "data.core.code." } else { type_string };
    if !subclassing {
        return op("==", value);
    }
    let query_type =
        if value.is_empty() { String::new() } else { format!("{}.", value.rsplitn(3, '.').last().unwrap_or(value)) };
    op("like", &format!("{}%", crate::storage::db::sql::escape_like(&query_type)))
}

fn unique_tag(types: &[String], entity: Entity, tags: &Tags) -> String {
    let base: Vec<String> = types
        .iter()
        .map(|t| {
            let classifier = match entity {
                Entity::Group => "group.core".to_string(),
                Entity::Node => t.clone(),
                other => other.name().to_string(),
            };
            let last = classifier.trim_end_matches('.').rsplit('.').next().unwrap_or("").to_string();
            if last.is_empty() { "node".to_string() } else { last }
        })
        .collect();
    let base = base.join("-");
    (1..).map(|i| format!("{base}_{i}")).find(|tag| tags.get(tag).is_none()).expect("some suffix is free")
}

fn parse_projection_spec(spec: &OValue, tag: &str) -> QueryResult<Vec<RawProjection>> {
    let items: Vec<&OValue> = match spec {
        OValue::Array(items) => items.iter().collect(),
        OValue::Null => Vec::new(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            OValue::String(name) => out.push(RawProjection { name: name.clone(), cast: None, func: None }),
            OValue::Object(entries) => {
                for (name, extra) in entries {
                    let Some(extra) = extra.as_object() else {
                        return Err(bad(format!(
                            "projection '{name}' of '{tag}': the value must be an object with 'cast' and/or 'func', not {}",
                            extra.show()
                        )));
                    };
                    let mut projection = RawProjection { name: name.clone(), cast: None, func: None };
                    for (key, value) in extra {
                        let text = value.as_str().ok_or_else(|| {
                            bad(format!(
                                "projection '{name}' of '{tag}': '{key}' must be a string, not {}",
                                value.show()
                            ))
                        })?;
                        match key.as_str() {
                            "cast" => projection.cast = Some(parse_cast(text)?),
                            "func" => {
                                projection.func = Some(match text {
                                    "count" => Func::Count,
                                    "max" => Func::Max,
                                    "min" => Func::Min,
                                    other => {
                                        return Err(bad(format!("invalid function '{other}'; valid: count, max, min")));
                                    }
                                })
                            }
                            other => {
                                return Err(bad(format!(
                                    "'{other}' is not a valid key of a projection; valid: cast, func"
                                )));
                            }
                        }
                    }
                    out.push(projection);
                }
            }
            other => {
                return Err(bad(format!("cannot project {} for '{tag}'; give column names", other.show())));
            }
        }
    }
    Ok(out)
}

fn parse_cast(text: &str) -> QueryResult<Cast> {
    Ok(match text {
        "f" => Cast::Float,
        "i" => Cast::Int,
        "b" => Cast::Bool,
        "t" => Cast::Text,
        "j" => Cast::Json,
        "d" => Cast::Date,
        other => {
            return Err(bad(format!(
                "unknown cast '{other}'; valid: f (float), i (integer), b (boolean), t (text), j (JSON), d (date)"
            )));
        }
    })
}

/// `column` or `column.key.key`: the column (resolving aliases) and the JSON path.
fn resolve_field(target: Target, table: &Table, name: &str, tag: &str) -> QueryResult<Field> {
    let mut parts = name.split('.');
    let column_name = parts.next().unwrap_or("");
    let path: Vec<String> = parts.map(str::to_string).collect();
    if path.len() > MAX_KEYS {
        return Err(bad(format!(
            "'{}...': a JSON path has at most {MAX_KEYS} keys",
            name.chars().take(40).collect::<String>()
        )));
    }
    for key in &path {
        check_key(key, name)?;
    }
    let column = table.column(column_name).ok_or_else(|| {
        bad(format!(
            "{column_name} is not a column of {} ('{tag}'); valid columns are: {}",
            table.label,
            table.names().join(", ")
        ))
    })?;
    if !path.is_empty() && column.kind != Kind::Json {
        return Err(bad(format!(
            "'{name}': {column_name} of {} is not a JSON column, so it has no keys to follow",
            table.label
        )));
    }
    Ok(Field { target, column, path })
}

/// [`resolve_field`] for filters and `order_by`, which must not reach hidden columns either:
/// a filter on an email address would let a client find it out one character at a time.
fn resolve_visible_field(target: Target, table: &Table, name: &str, tag: &str) -> QueryResult<Field> {
    let field = resolve_field(target, table, name, tag)?;
    if table.is_private(field.column.name) {
        return Err(bad(table.private_message));
    }
    Ok(field)
}

fn resolve_projections(target: Target, table: &Table, tag: &str, raw: &[RawProjection]) -> QueryResult<Vec<Projected>> {
    if raw.len() > MAX_PROJECTIONS {
        return Err(too_many_projections());
    }
    let mut items: Vec<Projected> = Vec::new();
    let mut push = |item: Projected| {
        if !items.iter().any(|i| i.key == item.key) {
            items.push(item);
        }
    };
    for projection in raw {
        if projection.name == "**" || projection.name == "*" {
            if projection.func.is_some() {
                return Err(bad(format!(
                    "'{}' cannot take a function; apply it to a column such as id",
                    projection.name
                )));
            }
            for column in table.columns {
                if table.is_private(column.name) {
                    continue;
                }
                let field = Field { target, column: *column, path: Vec::new() };
                push(Projected { key: column.name.to_string(), field, cast: None, func: None });
            }
            continue;
        }
        let field = resolve_field(target, table, &projection.name, tag)?;
        if table.is_private(field.column.name) {
            continue;
        }
        // Like AiiDA, a cast applies only to JSON values.
        let cast = if field.is_json() { projection.cast } else { None };
        if projection.func.is_some() && field.is_json() && projection.func != Some(Func::Count) {
            return Err(bad(format!("'{}': max and min apply to plain columns, not JSON values", projection.name)));
        }
        push(Projected { key: projection.name.clone(), field, cast, func: projection.func });
    }
    Ok(items)
}

fn parse_order_by(spec: &OValue, tags: &Tags, query: &QbQuery) -> QueryResult<Vec<OrderItem>> {
    let specs: Vec<&OValue> = match spec {
        OValue::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for spec in specs {
        let Some(entries) = spec.as_object() else {
            return Err(bad(format!(
                "invalid order_by entry {}: expecting an object like {{tag: [field, ...]}}",
                spec.show()
            )));
        };
        for (tag, items) in entries {
            let target = tags.require(tag, "order_by")?;
            let table = table_or_error(query, target, tag, "order by")?;
            let items: Vec<&OValue> = match items {
                OValue::Array(list) => list.iter().collect(),
                other => vec![other],
            };
            for item in items {
                let pairs: Vec<(String, OValue)> = match item {
                    OValue::String(name) => vec![(name.clone(), OValue::Object(Vec::new()))],
                    OValue::Object(entries) => entries.clone(),
                    other => {
                        return Err(bad(format!("cannot order by {}; give a column name", other.show())));
                    }
                };
                for (name, order_spec) in pairs {
                    let mut desc = false;
                    let mut cast = None;
                    match &order_spec {
                        OValue::String(order) => desc = parse_direction(order)?,
                        OValue::Object(keys) => {
                            for (key, value) in keys {
                                let text = value.as_str().ok_or_else(|| {
                                    bad(format!("order_by '{name}': '{key}' must be a string, not {}", value.show()))
                                })?;
                                match key.as_str() {
                                    "order" => desc = parse_direction(text)?,
                                    "cast" => cast = Some(parse_cast(text)?),
                                    other => {
                                        return Err(bad(format!(
                                            "'{other}' is not a valid key of an order specification; valid: cast, order"
                                        )));
                                    }
                                }
                            }
                        }
                        other => {
                            return Err(bad(format!(
                                "order_by '{name}': expecting 'asc', 'desc' or {{\"order\": ..., \"cast\": ...}}, not {}",
                                other.show()
                            )));
                        }
                    }
                    if out.len() >= MAX_ORDER {
                        return Err(bad(format!(
                            "'order_by' has more than {MAX_ORDER} items; at most {MAX_ORDER} are accepted"
                        )));
                    }
                    let field = resolve_visible_field(target, table, &name, tag)?;
                    if !field.path.is_empty() && cast.is_none() {
                        return Err(bad(format!(
                            "To order_by '{name}', the value has to be cast, but no 'cast' key has been specified (f, i, b, t, j or d)."
                        )));
                    }
                    let cast = if field.is_json() { cast } else { None };
                    out.push(OrderItem { field, desc, cast });
                }
            }
        }
    }
    Ok(out)
}

fn parse_direction(text: &str) -> QueryResult<bool> {
    match text {
        "asc" => Ok(false),
        "desc" => Ok(true),
        other => Err(bad(format!("'{other}' is not a valid order; valid orders are: asc, desc"))),
    }
}

/// A filter dict of one tag: `{column: condition, "and"/"or": [dict, ...]}`.
fn parse_filter_entries(
    target: Target,
    table: &Table,
    tag: &str,
    entries: &[(String, OValue)],
    depth: usize,
    budget: &mut Budget,
) -> QueryResult<Option<Cond>> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("filters are nested more than {MAX_DEPTH} levels deep")));
    }
    let mut conds = Vec::new();
    for (key, spec) in entries {
        match key.as_str() {
            "and" | "or" | "~and" | "~or" | "!and" | "!or" => {
                let OValue::Array(list) = spec else {
                    return Err(bad(format!("'{key}' takes a list of filter objects, not {}", spec.show())));
                };
                budget.term()?;
                let mut subs = Vec::new();
                for sub in list {
                    let Some(sub_entries) = sub.as_object() else {
                        return Err(bad(format!("'{key}' takes a list of filter objects; {} is not one", sub.show())));
                    };
                    if let Some(cond) = parse_filter_entries(target, table, tag, sub_entries, depth + 1, budget)? {
                        subs.push(cond);
                    }
                }
                if subs.is_empty() {
                    continue;
                }
                let combined = if key.ends_with("and") { Cond::And(subs) } else { Cond::Or(subs) };
                conds.push(if key.starts_with(['~', '!']) { Cond::Not(Box::new(combined)) } else { combined });
            }
            _ => {
                let field = resolve_visible_field(target, table, key, tag)?;
                let operations: Vec<(String, OValue)> = match spec {
                    OValue::Object(ops) => ops.clone(),
                    other => vec![("==".to_string(), other.clone())],
                };
                for (operator, value) in &operations {
                    conds.push(parse_operation(&field, operator, value, depth + 1, budget)?);
                }
            }
        }
    }
    Ok(match conds.len() {
        0 => None,
        1 => conds.pop(),
        _ => Some(Cond::And(conds)),
    })
}

const COLUMN_OPS: &str = "==, !==, >, <, >=, <=, like, ilike, in, and, or (prefix ~ or ! negates)";
const JSON_OPS: &str = "==, >, <, >=, <=, like, ilike, in, contains, has_key, of_type, of_length, longer, shorter, and, or (prefix ~ or ! negates)";

fn parse_operation(
    field: &Field,
    operator: &str,
    value: &OValue,
    depth: usize,
    budget: &mut Budget,
) -> QueryResult<Cond> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("filters are nested more than {MAX_DEPTH} levels deep")));
    }
    budget.term()?;
    let (negated, name) = if operator == "!=" {
        (true, "==")
    } else if let Some(rest) = operator.strip_prefix('~') {
        (true, rest.trim_start_matches('~'))
    } else if let Some(rest) = operator.strip_prefix('!') {
        (true, rest.trim_start_matches('!'))
    } else {
        (false, operator)
    };
    let wrap = |cond: Cond| {
        if negated { Cond::Not(Box::new(cond)) } else { cond }
    };
    if name == "and" || name == "or" {
        return Ok(wrap(parse_combination(field, operator, name, value, depth, budget)?));
    }
    let op = operator_of(field, operator, name)?;
    let value = value.to_value();
    check_operand(field, op, name, &value, budget)?;
    if field.is_json() {
        return Ok(wrap(Cond::Json { field: field.clone(), op, value }));
    }
    let (op, value) = super::values::column_condition(field, op, &value)?;
    Ok(wrap(Cond::Column { field: field.clone(), op, value }))
}

/// `and`/`or` of operator objects on one field.
fn parse_combination(
    field: &Field,
    operator: &str,
    name: &str,
    value: &OValue,
    depth: usize,
    budget: &mut Budget,
) -> QueryResult<Cond> {
    let describe = || field_name(field);
    let OValue::Array(list) = value else {
        return Err(bad(format!(
            "'{operator}' on {} takes a list of operator objects, not {}",
            describe(),
            value.show()
        )));
    };
    let mut subs = Vec::new();
    for entry in list {
        let Some(ops) = entry.as_object() else {
            return Err(bad(format!(
                "'{operator}' on {} takes a list of operator objects; {} is not one",
                describe(),
                entry.show()
            )));
        };
        for (sub_op, sub_value) in ops {
            subs.push(parse_operation(field, sub_op, sub_value, depth + 1, budget)?);
        }
    }
    if subs.is_empty() {
        return Ok(Cond::And(Vec::new()));
    }
    Ok(if name == "and" { Cond::And(subs) } else { Cond::Or(subs) })
}

/// The operator named `name` (`operator` as given), if it applies to `field`.
fn operator_of(field: &Field, operator: &str, name: &str) -> QueryResult<Op> {
    let describe = || field_name(field);
    let op = match name {
        "==" => Op::Eq,
        ">" => Op::Gt,
        "<" => Op::Lt,
        ">=" | "=>" => Op::Ge,
        "<=" | "=<" => Op::Le,
        "like" => Op::Like,
        "ilike" => Op::ILike,
        "in" => Op::In,
        "contains" => Op::Contains,
        "has_key" => Op::HasKey,
        "of_type" => Op::OfType,
        "of_length" => Op::OfLength,
        "longer" => Op::Longer,
        "shorter" => Op::Shorter,
        _ => {
            return Err(bad(format!(
                "unknown operator '{operator}' in the filter on {}; valid operators are: {}",
                describe(),
                if field.is_json() { JSON_OPS } else { COLUMN_OPS }
            )));
        }
    };
    if !field.is_json()
        && matches!(op, Op::Contains | Op::HasKey | Op::OfType | Op::OfLength | Op::Longer | Op::Shorter)
    {
        return Err(bad(format!(
            "the operator '{name}' applies to JSON values (attributes, extras, ...), and {} is a plain column; valid operators here are: {COLUMN_OPS}",
            describe()
        )));
    }
    Ok(op)
}

/// Checks the value an operator is given (JSON values are counted in `budget`).
fn check_operand(field: &Field, op: Op, name: &str, value: &Value, budget: &mut Budget) -> QueryResult<()> {
    let describe = || field_name(field);
    match op {
        Op::Like | Op::ILike => {
            let Some(pattern) = value.as_str() else {
                return Err(bad(format!("Value for operator {name} has to be a string (you gave {value})")));
            };
            if pattern.len() > MAX_PATTERN {
                return Err(bad(format!(
                    "the pattern of '{name}' on {} has {} bytes; at most {MAX_PATTERN} are accepted",
                    describe(),
                    pattern.len()
                )));
            }
        }
        Op::In => {
            let Some(items) = value.as_array() else {
                return Err(bad(format!("Value for operator `in` must be a list (you gave {value})")));
            };
            if items.is_empty() {
                return Err(bad("Value for operator `in` is an empty list"));
            }
            if items.len() > MAX_LIST {
                return Err(bad(format!(
                    "Value for operator `in` has {} items; at most {MAX_LIST} are accepted",
                    items.len()
                )));
            }
            if field.is_json() {
                for item in items {
                    budget.json_value(item, &describe())?;
                }
            }
        }
        Op::OfLength | Op::Longer | Op::Shorter => {
            if value.as_i64().is_none() {
                return Err(bad(format!(
                    "You have to give an integer when comparing to a length (operator {name}, value {value})"
                )));
            }
        }
        Op::OfType => {
            const TYPES: [&str; 6] = ["object", "array", "string", "number", "boolean", "null"];
            if !value.as_str().is_some_and(|t| TYPES.contains(&t)) {
                return Err(bad(format!(
                    "value {value} for of_type is not among the valid types: {}",
                    TYPES.join(", ")
                )));
            }
        }
        Op::HasKey => {
            if !value.is_string() {
                return Err(bad(format!("Value for operator has_key has to be a string (you gave {value})")));
            }
        }
        // Plain columns take only scalars (checked when the SQL is built).
        Op::Contains | Op::Eq | Op::Gt | Op::Lt | Op::Ge | Op::Le if field.is_json() => {
            budget.json_value(value, &describe())?
        }
        Op::Contains | Op::Eq | Op::Gt | Op::Lt | Op::Ge | Op::Le => {}
    }
    Ok(())
}

pub fn field_name(field: &Field) -> String {
    let mut name = field.column.name.to_string();
    for key in &field.path {
        name.push('.');
        name.push_str(key);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> QueryResult<QbQuery> {
        parse_body(text.as_bytes())
    }

    fn err(text: &str) -> String {
        parse_str(text).expect_err("should fail").to_string()
    }

    #[test]
    fn explorer_group_query() {
        let q = parse_str(
            r#"{"path":[{"orm_base":"node","tag":"node","entity_type":""},{"entity_type":"group.core","orm_base":"group","tag":"core_1","joining_keyword":"with_node","joining_value":"node","edge_tag":"node--core_1"}],"filters":{"node":{},"core_1":{"type_string":{"like":"%"},"or":[{"label":{"==":"ref/structures/bulk"}}]}},"project":{"node":["id","uuid"]},"order_by":[],"limit":5000,"offset":0,"distinct":true}"#,
        )
        .unwrap();
        assert_eq!(q.vertices.len(), 2);
        assert_eq!(q.vertices[1].entity, Entity::Group);
        let join = q.vertices[1].join.as_ref().unwrap();
        assert_eq!((join.kind, join.with, join.edge_tag.as_str()), (JoinKind::WithNode, 0, "node--core_1"));
        assert_eq!(q.answer_tags, vec!["node".to_string()]);
        assert_eq!((q.limit, q.offset, q.distinct), (Some(5000), Some(0), true));
        // The node type filter stays; the group's is replaced by the user's `type_string`.
        assert_eq!(q.filters.len(), 2);
        let (_, group_cond) = q.filters.iter().find(|(t, _)| *t == Target::Vertex(1)).unwrap();
        let Cond::And(parts) = group_cond else { panic!("{group_cond:?}") };
        assert_eq!(parts.len(), 2);
    }

    #[test]
    fn type_filters_follow_aiida() {
        let filter = |t: &str, sub: bool| node_type_filter(t, sub).to_value().to_string();
        assert_eq!(filter("data.core.int.Int.", true), r#"{"like":"data.core.int.%"}"#);
        assert_eq!(filter("", true), r#"{"like":"%"}"#);
        assert_eq!(filter("data.core.int.Int.", false), r#"{"==":"data.core.int.Int."}"#);
        assert_eq!(filter("data.core.code.abstract.AbstractCode.", true), r#"{"like":"data.core.%"}"#);
        assert_eq!(filter("data.my_plugin.X.", true), r#"{"like":"data.my\\_plugin.%"}"#);
        assert!(!valid_node_type("data.core.int"));
        assert!(!valid_node_type("comment."));
        assert!(valid_node_type("data.core.Int."));
    }

    #[test]
    fn defaults_and_projections() {
        let q = parse_str(r#"{"path":["data.core.int.Int.", {"entity_type": "user"}]}"#).unwrap();
        assert_eq!(q.vertices[0].tag, "Int_1");
        assert_eq!(q.vertices[1].tag, "user_1");
        assert_eq!(q.vertices[1].join.as_ref().unwrap().kind, JoinKind::WithNode);
        // No projection: the last item, every column but the email.
        assert_eq!(q.answer_tags, vec!["user_1".to_string()]);
        let keys: Vec<&str> = q.projections[0].items.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["id", "first_name", "last_name", "institution"]);
        let q = parse_str(
            r#"{"path":[{"entity_type":"","tag":"n","project":["id"]}],"project":{"n":[{"*":{}}]},"project_map":{"n":{"uuid":"u"}}}"#,
        )
        .unwrap();
        assert!(q.projections[0].items.iter().any(|p| p.key == "uuid"));
        assert_eq!(q.projections[0].items.len(), 13);
    }

    #[test]
    fn operators_and_negation() {
        let q = parse_str(
            r#"{"path":[{"entity_type":"","tag":"n"}],"filters":{"n":{"id":{"!in":[1,2],"~==":3,"!=":4},"attributes.x":{"of_length":2}}},"project":{"n":["id"]}}"#,
        )
        .unwrap();
        let (_, Cond::And(parts)) = q.filters.iter().find(|(t, _)| *t == Target::Vertex(0)).unwrap() else { panic!() };
        assert_eq!(parts.len(), 5);
        assert!(matches!(&parts[1], Cond::Not(inner) if matches!(**inner, Cond::Column { op: filter::Op::In, .. })));
    }

    #[test]
    fn clear_errors() {
        assert!(err("[1, 2]").contains("MUST be a valid QueryBuilder.as_dict()"));
        assert!(err("not-json").contains("not valid JSON"));
        assert!(err(r#"{"path":[]}"#).contains("'path' is missing"));
        assert!(err(r#"{"path":[{"entity_type":""}],"bogus":1}"#).contains("'bogus' is not a key"));
        assert!(err(r#"{"path":[{"entity_type":"","tag":"n"}],"filters":{"x":{}}}"#).contains("tag 'x'"));
        assert!(err(r#"{"path":[{"entity_type":"","tag":"n"}],"filters":{"n":{"nope":1}}}"#).contains("valid columns"));
        assert!(
            err(r#"{"path":[{"entity_type":"","tag":"n"}],"filters":{"n":{"id":{"=":1}}}}"#)
                .contains("unknown operator")
        );
        assert!(
            err(r#"{"path":[{"entity_type":"","tag":"n"}],"filters":{"n":{"id":{"has_key":"a"}}}}"#).contains("JSON")
        );
        assert!(
            err(r#"{"path":[{"entity_type":"","tag":"n"}],"filters":{"n":{"label":{"like":3}}}}"#).contains("string")
        );
        assert!(err(r#"{"path":[{"entity_type":"","tag":"n"}],"filters":{"n":{"id":{"in":[]}}}}"#).contains("empty"));
        assert!(err(r#"{"path":[{"entity_type":"data.core.int","tag":"n"}]}"#).contains("invalid"));
        assert!(err(r#"{"path":[{"entity_type":"","tag":"a--b"}]}"#).contains("--"));
        assert!(
            err(r#"{"path":[{"entity_type":"","tag":"n"},{"entity_type":"computer","tag":"c","with_user":"n"}]}"#)
                .contains("valid keywords")
        );
        assert!(
            err(r#"{"path":[{"entity_type":"","tag":"n"},{"entity_type":"","tag":"m","with_group":"n"}]}"#)
                .contains("needs a group")
        );
        assert!(
            err(
                r#"{"path":[{"entity_type":"","tag":"n"},{"entity_type":"user","tag":"u"}],"project":{"n--u":["id"]}}"#
            )
            .contains("no edge table")
        );
        assert!(err(r#"{"path":[{"entity_type":"","tag":"n"}],"order_by":{"n":["attributes.x"]}}"#).contains("cast"));
        assert!(err(r#"{"path":[{"entity_type":"","tag":"n"}],"limit":"5"}"#).contains("integer"));
        assert!(
            err(r#"{"path":[{"entity_type":"","tag":"n"}],"project":{"n":[{"id":{"func":"count"}},"uuid"]}}"#)
                .contains("mixed")
        );
    }

    #[test]
    fn limits() {
        let node =
            |filters: &str| format!(r#"{{"path":[{{"entity_type":"","tag":"n"}}],"filters":{{"n":{filters}}}}}"#);
        let ors = |n: usize| node(&format!(r#"{{"or":[{}]}}"#, vec![r#"{"id":1}"#; n].join(",")));
        // With the type filter of the path item and the `or`: 200 conditions, then 201.
        assert!(parse_str(&ors(198)).is_ok());
        assert!(err(&ors(199)).contains("more than 200 conditions"));
        let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        assert!(parse_str(&node(&format!(r#"{{"id":{{"in":[{}]}}}}"#, list(10_000)))).is_ok());
        assert!(parse_str(&node(&format!(r#"{{"attributes.x":{{"in":[{}]}}}}"#, list(1000)))).is_ok());
        assert!(err(&node(&format!(r#"{{"attributes.x":{{"in":[{}]}}}}"#, list(1001)))).contains("1000 values"));
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(parse_str(&node(&format!(r#"{{"attributes.x":{{"contains":{}}}}}"#, nested(16)))).is_ok());
        assert!(err(&node(&format!(r#"{{"attributes.x":{{"==":{}}}}}"#, nested(17)))).contains("16 levels"));
        assert!(err(&node(&format!(r#"{{"label":{{"like":"{}"}}}}"#, "x".repeat(10_001)))).contains("10000"));
        let path = |n: usize, keyword: &str| {
            let items: Vec<String> = (0..n)
                .map(|i| match i {
                    0 => r#"{"entity_type":"","tag":"t0"}"#.to_string(),
                    _ => format!(r#"{{"entity_type":"","tag":"t{i}","{keyword}":"t{}"}}"#, i - 1),
                })
                .collect();
            format!(r#"{{"path":[{}]}}"#, items.join(","))
        };
        assert!(parse_str(&path(8, "with_incoming")).is_ok());
        assert!(err(&path(9, "with_incoming")).contains("at most 8"));
        assert!(parse_str(&path(3, "with_ancestors")).is_ok());
        assert!(err(&path(4, "with_descendants")).contains("at most 2"));
        let user = r#"{"path":[{"entity_type":"user","tag":"u"}]"#;
        assert_eq!(
            err(&format!(r#"{user},"filters":{{"u":{{"email":{{"like":"a%"}}}}}}}}"#)),
            tables::USER.private_message
        );
        assert_eq!(err(&format!(r#"{user},"order_by":{{"u":["email"]}}}}"#)), tables::USER.private_message);
        assert!(!err(&format!(r#"{user},"project":{{"u":["mail"]}}}}"#)).contains("email"));
        for key in ["\\u0000", "a\\\"b"] {
            assert!(err(&node(&format!(r#"{{"attributes.{key}":1}}"#))).contains("double quote"), "{key}");
            assert!(err(&node(&format!(r#"{{"attributes":{{"contains":{{"{key}":1}}}}}}"#))).contains("double quote"));
        }
    }
}
