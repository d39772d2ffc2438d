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

mod filters;
mod order;
mod path;
mod projections;
mod values;

use filters::*;
use order::*;
use path::*;
use projections::*;

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
