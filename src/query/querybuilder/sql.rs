//! A checked QueryBuilder query → SQL for SQLite or PostgreSQL. Every client value is bound as
//! a parameter; the SQL text holds only table and column names from `tables.rs`, aliases made
//! here and constants.
//!
//! JSON comparisons are type-aware as in AiiDA: `attributes.x > 5` holds only where `x` is a
//! JSON number, `== "a"` only where it is a string, and so on. On PostgreSQL every bound value
//! is cast explicitly, so the statement never depends on parameter type inference, and casts
//! of JSON text sit behind a type test (`CASE WHEN ... THEN`) so that no row can make the
//! statement fail.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Number, Value};

use crate::query::{QueryError, QueryResult};
use crate::query::tables::{Column, Entity, GROUP_NODE, Kind, LINK, WALK, order_direction};
use crate::storage::db::sql::{Dialect, Param, Query};

use super::parse::{Cast, Cond, Field, Func, JoinKind, Op, OrderItem, Projected, QbQuery, Target, field_name};

/// Link types followed by `with_ancestors`/`with_descendants`, as in AiiDA: data provenance
/// only (inputs of calculations and their created outputs), not workflow call/return links.
const WALK_LINK_TYPES: &str = "('create', 'input_calc')";
/// Bound on the depth of a walk (links followed from its start), so that a (corrupt) cyclic
/// graph cannot recurse for long. AiiDA provenance graphs are rarely deeper than a few hundred
/// links; a walk stops following links after this many.
const WALK_MAX_DEPTH: i64 = 1_000;
/// SQLite accepts at most 32766 parameters; PostgreSQL 65535. Checked after every condition,
/// projection and order item, so that a statement stops growing soon after it passes this.
const MAX_PARAMS: usize = 30_000;
/// Lists joined by AND/OR up to this long are written flat; longer ones as a balanced tree
/// of parenthesised halves (see [`Builder::push_joined`]).
const FLAT_LIST: usize = 16;

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError::bad_request(msg)
}

/// How the statement shapes its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One row per joined combination.
    Plain,
    /// `distinct` on rows that could repeat: grouped by every projected value.
    Grouped,
    /// Projections are aggregate functions: one row.
    Aggregate,
}

pub fn shape(qb: &QbQuery) -> Shape {
    if qb.projections.iter().any(|p| p.items.iter().any(|i| i.func.is_some())) {
        Shape::Aggregate
    } else if qb.distinct && !rows_are_unique(qb) {
        Shape::Grouped
    } else {
        Shape::Plain
    }
}

/// Whether the projection already tells every row apart (then `distinct` changes nothing):
/// the id of every vertex, and of every link edge, is projected.
fn rows_are_unique(qb: &QbQuery) -> bool {
    let projects_id = |target: Target| {
        qb.projections.iter().any(|p| {
            p.items.iter().any(|i| {
                i.field.target == target && i.field.column.name == "id" && i.field.path.is_empty() && i.func.is_none()
            })
        })
    };
    qb.vertices.iter().enumerate().all(|(i, vertex)| {
        let edge_ok = match vertex.join.as_ref().and_then(|_| qb.table(Target::Edge(i))) {
            // Several links may join the same two nodes.
            Some(table) if std::ptr::eq(table, &LINK) => projects_id(Target::Edge(i)),
            // A walk holds one row per path between two nodes.
            Some(table) if std::ptr::eq(table, &WALK) => false,
            // Membership is unique per (group, node); other joins follow foreign keys.
            _ => true,
        };
        edge_ok && projects_id(Target::Vertex(i))
    })
}

/// The projected items in SQL order.
pub fn select_items(qb: &QbQuery) -> Vec<&Projected> {
    qb.projections.iter().flat_map(|p| p.items.iter()).collect()
}

/// The statement returning the rows: at most `limit` of them (the caller bounds it).
pub fn rows_query(qb: &QbQuery, dialect: Dialect, limit: i64) -> QueryResult<Query> {
    let mut b = Builder::new(qb, dialect);
    b.push_with()?;
    b.q.push("SELECT ");
    b.push_select_list()?;
    b.push_from_where()?;
    b.push_group_by();
    b.push_order_by()?;
    b.q.push(" LIMIT ");
    b.bind_int(limit);
    b.q.push(" OFFSET ");
    b.bind_int(qb.offset.unwrap_or(0).max(0));
    b.finish()
}

/// The statement counting the rows the query itself asks for (its own limit and offset), as
/// AiiDA's `QueryBuilder.count()` does.
pub fn count_query(qb: &QbQuery, dialect: Dialect) -> QueryResult<Query> {
    let mut b = Builder::new(qb, dialect);
    b.push_with()?;
    b.q.push("SELECT count(*) FROM (SELECT ");
    if b.shape == Shape::Plain {
        b.q.push("1");
    } else {
        b.push_select_list()?;
    }
    b.push_from_where()?;
    b.push_group_by();
    let offset = qb.offset.unwrap_or(0).max(0);
    match qb.limit.filter(|l| *l >= 0) {
        Some(limit) => {
            b.q.push(" LIMIT ");
            b.bind_int(limit);
            b.q.push(" OFFSET ");
            b.bind_int(offset);
        }
        None if offset > 0 => {
            b.q.push(if dialect == Dialect::Sqlite { " LIMIT -1 OFFSET " } else { " OFFSET " });
            b.bind_int(offset);
        }
        None => {}
    }
    b.q.push(") AS qb_rows");
    b.finish()
}

/// A value inside a JSON column of SQLite: the column and a JSON path, which is either bound
/// text or built from another expression (the `fullkey` of an element found by `json_each`).
#[derive(Debug, Clone)]
struct SqliteJson {
    root: String,
    base: Option<String>,
    /// Path text: `$."a"."b"` when `base` is `None`, else a suffix such as `."c"[2]`.
    suffix: String,
}

impl SqliteJson {
    fn new(root: String, keys: &[String]) -> Self {
        let mut suffix = String::from("$");
        for key in keys {
            push_key(&mut suffix, key);
        }
        Self { root, base: None, suffix }
    }
    fn element(root: &str, each_alias: &str) -> Self {
        Self { root: root.to_string(), base: Some(format!("{each_alias}.fullkey")), suffix: String::new() }
    }
    fn key(&self, key: &str) -> Self {
        let mut child = self.clone();
        push_key(&mut child.suffix, key);
        child
    }
    fn index(&self, index: usize) -> Self {
        let mut child = self.clone();
        child.suffix.push_str(&format!("[{index}]"));
        child
    }
}

/// SQLite path labels are quoted so that any punctuation is literal; inside the quotes SQLite
/// reads JSON escapes, so a backslash is doubled. A NUL would cut the path, and `parse` refuses
/// keys holding one, or a `"` (which the other database paths of the server refuse as well).
fn push_key(path: &mut String, key: &str) {
    debug_assert!(!key.contains(['"', '\0']), "JSON keys are checked when parsed");
    path.push_str(".\"");
    path.push_str(&key.replace('\\', "\\\\"));
    path.push('"');
}

struct Builder<'a> {
    qb: &'a QbQuery,
    q: Query,
    shape: Shape,
    /// Inside a walk's CTE, this vertex is read from another alias.
    vertex_alias_override: Option<(usize, String)>,
    next_alias: usize,
}

impl<'a> Builder<'a> {
    fn new(qb: &'a QbQuery, dialect: Dialect) -> Self {
        Self { qb, q: Query::new(dialect), shape: shape(qb), vertex_alias_override: None, next_alias: 0 }
    }

    fn finish(self) -> QueryResult<Query> {
        self.check_params()?;
        Ok(self.q)
    }

    /// Fails as soon as the statement holds more values than a statement can take.
    fn check_params(&self) -> QueryResult<()> {
        if self.q.params.len() > MAX_PARAMS {
            return Err(bad(format!(
                "the query needs more than the {MAX_PARAMS} values a statement can take; split it"
            )));
        }
        Ok(())
    }

    /// Pushes `items` joined by `sep` (` AND ` or ` OR `). A long list is written as a
    /// balanced tree of parenthesised halves: AND and OR are associative (also with NULLs), so
    /// the meaning and the order of evaluation stay the same, while the depth of the
    /// expression, which SQLite limits to 1000, grows with the logarithm of the length.
    fn push_joined<T>(
        &mut self,
        items: &[T],
        sep: &str,
        push: &mut dyn FnMut(&mut Self, &T) -> QueryResult<()>,
    ) -> QueryResult<()> {
        if items.len() <= FLAT_LIST {
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    self.q.push(sep);
                }
                push(self, item)?;
            }
            return Ok(());
        }
        let (left, right) = items.split_at(items.len() / 2);
        self.q.push("(");
        self.push_joined(left, sep, push)?;
        self.q.push(")").push(sep).push("(");
        self.push_joined(right, sep, push)?;
        self.q.push(")");
        Ok(())
    }

    fn pg(&self) -> bool {
        self.q.dialect == Dialect::Postgres
    }

    fn alias(&self, target: Target) -> String {
        match target {
            Target::Vertex(i) => match &self.vertex_alias_override {
                Some((v, alias)) if *v == i => alias.clone(),
                _ => format!("t{i}"),
            },
            Target::Edge(i) => format!("e{i}"),
        }
    }

    fn fresh_alias(&mut self, prefix: &str) -> String {
        self.next_alias += 1;
        format!("{prefix}{}", self.next_alias)
    }

    fn column_sql(&self, field: &Field) -> String {
        format!("{}.{}", self.alias(field.target), field.column.name)
    }

    // --- bound values --------------------------------------------------------------------

    fn bind_int(&mut self, value: i64) {
        if self.pg() {
            self.q.push("CAST(").bind(Param::Int(value)).push(" AS bigint)");
        } else {
            self.q.bind(Param::Int(value));
        }
    }

    fn bind_float(&mut self, value: f64) {
        if self.pg() {
            self.q.push("CAST(").bind(Param::Float(value)).push(" AS double precision)");
        } else {
            self.q.bind(Param::Float(value));
        }
    }

    fn bind_text(&mut self, value: impl Into<String>) {
        if self.pg() {
            self.q.push("CAST(").bind_text(value).push(" AS text)");
        } else {
            self.q.bind_text(value);
        }
    }

    /// A JSON number: exact `numeric` on PostgreSQL, an integer or real on SQLite.
    fn bind_number(&mut self, n: &Number) -> QueryResult<()> {
        if self.pg() {
            self.q.push("CAST(CAST(").bind_text(n.to_string()).push(" AS text) AS numeric)");
        } else if let Some(i) = n.as_i64() {
            self.q.bind(Param::Int(i));
        } else {
            let f =
                n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| bad(format!("the number {n} is out of range")))?;
            self.q.bind(Param::Float(f));
        }
        Ok(())
    }

    fn bind_jsonb(&mut self, value: &Value) {
        self.q.push("CAST(CAST(").bind_text(value.to_string()).push(" AS text) AS jsonb)");
    }

    // --- statement parts -----------------------------------------------------------------

    /// `WITH RECURSIVE` walks for `with_ancestors`/`with_descendants` joins.
    fn push_with(&mut self) -> QueryResult<()> {
        let walks: Vec<(usize, usize, JoinKind)> = self
            .qb
            .vertices
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let join = v.join.as_ref()?;
                matches!(join.kind, JoinKind::WithAncestors | JoinKind::WithDescendants)
                    .then_some((i, join.with, join.kind))
            })
            .collect();
        if walks.is_empty() {
            return Ok(());
        }
        self.q.push("WITH RECURSIVE ");
        for (n, (i, with, kind)) in walks.into_iter().enumerate() {
            if n > 0 {
                self.q.push(", ");
            }
            let (start, next) = (format!("r{i}"), format!("l{i}"));
            // `with_ancestors` X: the new vertex is a descendant of X, so walk down from X;
            // `with_descendants` X: walk up.
            let down = kind == JoinKind::WithAncestors;
            let near = if down { "input_id" } else { "output_id" };
            self.q.push(&format!(
                "w{i}(ancestor_id, descendant_id, depth) AS (SELECT {next}.input_id, {next}.output_id, 0 \
                 FROM db_dbnode {start} JOIN db_dblink {next} ON {next}.{near} = {start}.id \
                 WHERE {next}.type IN {WALK_LINK_TYPES}"
            ));
            // The walk starts from the nodes that pass X's own filters, as in AiiDA.
            if let Some(cond) = self.qb.conditions_of(Target::Vertex(with)) {
                self.vertex_alias_override = Some((with, start.clone()));
                self.q.push(" AND ");
                let result = self.push_cond(cond);
                self.vertex_alias_override = None;
                result?;
            }
            let (ancestor, descendant) =
                if down { ("w.ancestor_id", "m.output_id") } else { ("m.input_id", "w.descendant_id") };
            let link_end = if down { "w.descendant_id" } else { "w.ancestor_id" };
            self.q.push(&format!(
                " UNION ALL SELECT {ancestor}, {descendant}, w.depth + 1 FROM w{i} w \
                 JOIN db_dblink m ON m.{near} = {link_end} WHERE m.type IN {WALK_LINK_TYPES} AND w.depth < "
            ));
            self.bind_int(WALK_MAX_DEPTH);
            self.q.push(")");
        }
        self.q.push(" ");
        Ok(())
    }

    fn push_select_list(&mut self) -> QueryResult<()> {
        let items = select_items(self.qb);
        if items.is_empty() {
            self.q.push("NULL");
            return Ok(());
        }
        for (n, item) in items.into_iter().enumerate() {
            if n > 0 {
                self.q.push(", ");
            }
            self.push_projected(item);
            self.check_params()?;
        }
        Ok(())
    }

    fn push_projected(&mut self, item: &Projected) {
        match item.func {
            Some(Func::Count) => {
                self.q.push("count(");
                if item.field.path.is_empty() {
                    let column = self.column_sql(&item.field);
                    self.q.push(&column);
                } else {
                    self.push_json_select(&item.field);
                }
                self.q.push(")");
            }
            Some(func @ (Func::Max | Func::Min)) => {
                self.q.push(if func == Func::Max { "max(" } else { "min(" });
                self.push_plain_select(&item.field);
                self.q.push(")");
            }
            None if item.field.path.is_empty() => self.push_plain_select(&item.field),
            None => self.push_json_select(&item.field),
        }
    }

    /// A whole column, in the form the answer renders (UUID, time and JSON as text).
    fn push_plain_select(&mut self, field: &Field) {
        let column = self.column_sql(field);
        match field.column.kind {
            Kind::Uuid => self.q.uuid_text(&column),
            Kind::Time => self.q.time_text(&column),
            Kind::Json => self.q.json_text(&column),
            Kind::Int | Kind::Text => self.q.push(&column),
        };
    }

    /// The JSON text of a value inside a JSON column (NULL when the path is missing).
    fn push_json_select(&mut self, field: &Field) {
        let root = self.column_sql(field);
        if self.pg() {
            self.q.push("(");
            self.push_pg_json(&root, &field.path);
            self.q.push(")::text");
        } else {
            let value = SqliteJson::new(root, &field.path);
            self.q.push("(").push(&value.root).push(" -> ");
            self.push_sqlite_path(&value);
            self.q.push(")");
        }
    }

    fn push_from_where(&mut self) -> QueryResult<()> {
        let qb = self.qb;
        let first = &qb.vertices[0];
        self.q.push(" FROM ").push(first.entity.table().sql_name).push(" t0");
        for (i, vertex) in qb.vertices.iter().enumerate().skip(1) {
            let join = vertex.join.as_ref().expect("later vertices are joined");
            let table = vertex.entity.table().sql_name;
            let (j, x) = (format!("t{i}"), format!("t{}", join.with));
            let e = format!("e{i}");
            let outer = if join.outer { " LEFT OUTER JOIN " } else { " JOIN " };
            let sql = match (join.kind, vertex.entity) {
                (JoinKind::WithIncoming, _) => {
                    format!("{outer}db_dblink {e} ON {e}.input_id = {x}.id{outer}{table} {j} ON {e}.output_id = {j}.id")
                }
                (JoinKind::WithOutgoing, _) => {
                    format!(" JOIN db_dblink {e} ON {e}.output_id = {x}.id{outer}{table} {j} ON {e}.input_id = {j}.id")
                }
                (JoinKind::WithAncestors, _) => {
                    format!(
                        " JOIN w{i} {e} ON {e}.ancestor_id = {x}.id{outer}{table} {j} ON {e}.descendant_id = {j}.id"
                    )
                }
                (JoinKind::WithDescendants, _) => {
                    format!(
                        " JOIN w{i} {e} ON {e}.descendant_id = {x}.id{outer}{table} {j} ON {e}.ancestor_id = {j}.id"
                    )
                }
                (JoinKind::WithGroup, Entity::Node) => format!(
                    " JOIN {} {e} ON {e}.dbgroup_id = {x}.id{outer}{table} {j} ON {j}.id = {e}.dbnode_id",
                    GROUP_NODE.sql_name
                ),
                (JoinKind::WithNode, Entity::Group) => format!(
                    " JOIN {} {e} ON {e}.dbnode_id = {x}.id{outer}{table} {j} ON {j}.id = {e}.dbgroup_id",
                    GROUP_NODE.sql_name
                ),
                (JoinKind::WithComputer, Entity::Node) => {
                    format!("{outer}{table} {j} ON {j}.dbcomputer_id = {x}.id")
                }
                (JoinKind::WithUser, Entity::Node | Entity::Group | Entity::Comment) => {
                    format!("{outer}{table} {j} ON {j}.user_id = {x}.id")
                }
                (JoinKind::WithComment | JoinKind::WithLog, Entity::Node) => {
                    format!("{outer}{table} {j} ON {j}.id = {x}.dbnode_id")
                }
                (JoinKind::WithNode, Entity::Computer) => {
                    format!("{outer}{table} {j} ON {j}.id = {x}.dbcomputer_id")
                }
                (JoinKind::WithNode | JoinKind::WithGroup | JoinKind::WithComment, Entity::User) => {
                    format!("{outer}{table} {j} ON {j}.id = {x}.user_id")
                }
                (JoinKind::WithNode, Entity::Comment | Entity::Log) => {
                    format!("{outer}{table} {j} ON {j}.dbnode_id = {x}.id")
                }
                (kind, entity) => {
                    return Err(QueryError::Internal(format!(
                        "join {} of a {} passed validation",
                        kind.keyword(),
                        entity.name()
                    )));
                }
            };
            self.q.push(&sql);
        }
        let mut first_cond = true;
        for (_, cond) in &qb.filters {
            self.q.push(if first_cond { " WHERE " } else { " AND " });
            first_cond = false;
            self.push_cond(cond)?;
        }
        Ok(())
    }

    fn push_group_by(&mut self) {
        if self.shape != Shape::Grouped {
            return;
        }
        let n = select_items(self.qb).len().max(1);
        let positions: Vec<String> = (1..=n).map(|p| p.to_string()).collect();
        self.q.push(" GROUP BY ").push(&positions.join(", "));
    }

    fn push_order_by(&mut self) -> QueryResult<()> {
        if self.shape == Shape::Aggregate {
            return Ok(());
        }
        let qb = self.qb;
        let items = select_items(qb);
        let mut parts = 0;
        let mut sep = |b: &mut Self| {
            b.q.push(if parts == 0 { " ORDER BY " } else { ", " });
            parts += 1;
        };
        for order in &qb.order {
            sep(self);
            let direction = order_direction(self.q.dialect, order.desc, may_be_null(&order.field));
            if self.shape == Shape::Grouped {
                let same =
                    items.iter().position(|p| p.field == order.field && p.cast == order.cast && p.func.is_none());
                match same {
                    // The projected value itself: order by its position.
                    Some(pos) => {
                        self.q.push(&(pos + 1).to_string());
                    }
                    // Another value of the grouped rows: order by its least (or greatest).
                    None => {
                        self.q.push(if order.desc { "max(" } else { "min(" });
                        self.push_order_expr(order, true);
                        self.q.push(")");
                    }
                }
            } else {
                self.push_order_expr(order, false);
            }
            self.q.push(direction);
            self.check_params()?;
        }
        // Ties (and queries without order_by) come out in a stable order.
        if self.shape == Shape::Grouped {
            for (pos, item) in items.iter().enumerate() {
                sep(self);
                self.q.push(&(pos + 1).to_string());
                let nullable = item.func.is_some() || may_be_null(&item.field);
                self.q.push(order_direction(self.q.dialect, false, nullable));
            }
        } else {
            let ordered_by_id = |target: Target| {
                qb.order
                    .iter()
                    .any(|o| o.field.target == target && o.field.column.name == "id" && o.field.path.is_empty())
            };
            for (i, _) in qb.vertices.iter().enumerate() {
                if !ordered_by_id(Target::Vertex(i)) {
                    sep(self);
                    self.q.push(&format!("t{i}.id"));
                    // The first entity is always there; joined ones may be outer-joined.
                    self.q.push(order_direction(self.q.dialect, false, i > 0));
                }
                if i > 0 && qb.table(Target::Edge(i)).is_some_and(|t| t.has_id()) && !ordered_by_id(Target::Edge(i)) {
                    sep(self);
                    self.q.push(&format!("e{i}.id"));
                    self.q.push(order_direction(self.q.dialect, false, true));
                }
            }
        }
        Ok(())
    }

    /// What a row is ordered by for `order`.
    fn push_order_expr(&mut self, order: &OrderItem, in_aggregate: bool) {
        let field = &order.field;
        let column = self.column_sql(field);
        if field.column.kind != Kind::Json {
            match field.column.kind {
                Kind::Uuid => self.q.uuid_text(&column),
                _ => self.q.push(&column),
            };
            return;
        }
        if self.pg() {
            let text_of = |b: &mut Self| {
                b.q.push("(");
                b.push_pg_json(&column, &field.path);
                b.q.push(" #>> '{}')");
            };
            match order.cast {
                Some(Cast::Float | Cast::Int) => {
                    self.q.push("CASE WHEN jsonb_typeof(");
                    self.push_pg_json(&column, &field.path);
                    self.q.push(") = 'number' THEN CAST(");
                    text_of(self);
                    self.q.push(" AS numeric) END");
                }
                // As 0/1: PostgreSQL has no max/min of booleans.
                Some(Cast::Bool) => {
                    self.q.push("CASE WHEN jsonb_typeof(");
                    self.push_pg_json(&column, &field.path);
                    self.q.push(") = 'boolean' THEN CASE WHEN ");
                    text_of(self);
                    self.q.push(" = 'true' THEN 1 ELSE 0 END END");
                }
                Some(Cast::Text | Cast::Date) => text_of(self),
                // jsonb has an order but no min/max.
                Some(Cast::Json) | None if in_aggregate => {
                    self.q.push("CAST(");
                    self.push_pg_json(&column, &field.path);
                    self.q.push(" AS text)");
                }
                Some(Cast::Json) | None => self.push_pg_json(&column, &field.path),
            }
        } else {
            let value = SqliteJson::new(column.clone(), &field.path);
            let extract = |b: &mut Self| {
                b.q.push("json_extract(").push(&value.root).push(", ");
                b.push_sqlite_path(&value);
                b.q.push(")");
            };
            match order.cast {
                Some(Cast::Float) => {
                    self.q.push("CAST(");
                    extract(self);
                    self.q.push(" AS REAL)");
                }
                Some(Cast::Int | Cast::Bool) => {
                    self.q.push("CAST(");
                    extract(self);
                    self.q.push(" AS INTEGER)");
                }
                Some(Cast::Text | Cast::Date) => extract(self),
                Some(Cast::Json) => {
                    self.q.push("(").push(&value.root).push(" -> ");
                    self.push_sqlite_path(&value);
                    self.q.push(")");
                }
                None => {
                    self.q.push(&column);
                }
            }
        }
    }

    // --- JSON access -----------------------------------------------------------------------

    fn push_pg_json(&mut self, root: &str, keys: &[String]) {
        if keys.is_empty() {
            self.q.push(root);
            return;
        }
        self.q.push("(").push(root).push(" #> ARRAY[");
        for (n, key) in keys.iter().enumerate() {
            if n > 0 {
                self.q.push(", ");
            }
            self.bind_text(key.clone());
        }
        self.q.push("])");
    }

    fn push_sqlite_path(&mut self, value: &SqliteJson) {
        match &value.base {
            None => {
                self.q.bind_text(value.suffix.clone());
            }
            Some(base) if value.suffix.is_empty() => {
                self.q.push(base);
            }
            Some(base) => {
                self.q.push("(").push(base).push(" || ").bind_text(value.suffix.clone()).push(")");
            }
        }
    }

    /// `name(root, path)` on SQLite.
    fn sqlite_fn(&mut self, name: &str, value: &SqliteJson) {
        self.q.push(name).push("(").push(&value.root).push(", ");
        self.push_sqlite_path(value);
        self.q.push(")");
    }

    // --- conditions ------------------------------------------------------------------------

    fn push_cond(&mut self, cond: &Cond) -> QueryResult<()> {
        match cond {
            Cond::And(parts) | Cond::Or(parts) if parts.is_empty() => {
                self.q.push("TRUE");
            }
            Cond::And(parts) | Cond::Or(parts) => {
                let sep = if matches!(cond, Cond::And(_)) { " AND " } else { " OR " };
                self.q.push("(");
                self.push_joined(parts, sep, &mut |b, part| b.push_cond(part))?;
                self.q.push(")");
            }
            Cond::Not(inner) => {
                self.q.push("NOT (");
                self.push_cond(inner)?;
                self.q.push(")");
            }
            Cond::Test { field, op, value } => {
                if field.column.kind == Kind::Json {
                    if self.pg() {
                        self.push_pg_json_test(field, *op, value)?;
                    } else {
                        self.push_sqlite_json_test(field, *op, value)?;
                    }
                } else {
                    self.push_column_test(field, *op, value)?;
                }
                self.check_params()?;
            }
        }
        Ok(())
    }

    fn push_column_test(&mut self, field: &Field, op: Op, value: &Value) -> QueryResult<()> {
        let column = self.column_sql(field);
        let name = field_name(field);
        match op {
            Op::Like | Op::ILike => {
                let pattern = value.as_str().unwrap_or_default().to_string();
                let text = |b: &mut Self| match field.column.kind {
                    Kind::Int => {
                        b.q.push("CAST(").push(&column).push(" AS TEXT)");
                    }
                    Kind::Uuid => {
                        b.q.uuid_text(&column);
                    }
                    Kind::Time => {
                        b.q.time_text(&column);
                    }
                    _ => {
                        b.q.push(&column);
                    }
                };
                match (self.pg(), op == Op::ILike) {
                    (false, true) => {
                        self.q.push("lower(");
                        text(self);
                        self.q.push(") LIKE lower(");
                        self.bind_text(pattern);
                        self.q.push(")");
                    }
                    (pg, insensitive) => {
                        text(self);
                        self.q.push(if pg && insensitive { " ILIKE " } else { " LIKE " });
                        self.bind_text(pattern);
                    }
                }
                self.q.push(" ESCAPE '\\'");
            }
            Op::In => {
                let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
                let is_int = field.column.kind == Kind::Int;
                let operands: Vec<Operand> = items
                    .iter()
                    .map(|v| operand(field.column, v, &name))
                    .collect::<QueryResult<Vec<_>>>()?
                    .into_iter()
                    // NULL and (for numbers) text match nothing.
                    .filter(|o| !(matches!(o, Operand::Null) || is_int && matches!(o, Operand::Text(_))))
                    .collect();
                if operands.is_empty() {
                    self.push_constant_unless_null(&column, false);
                    return Ok(());
                }
                self.push_compared_column(field.column, &column);
                self.q.push(" IN (");
                for (n, o) in operands.iter().enumerate() {
                    if n > 0 {
                        self.q.push(", ");
                    }
                    self.push_operand(o);
                }
                self.q.push(")");
            }
            Op::Eq | Op::Gt | Op::Lt | Op::Ge | Op::Le => {
                let o = operand(field.column, value, &name)?;
                if matches!(o, Operand::Null) {
                    if op != Op::Eq {
                        return Err(bad(format!("{name} cannot be compared with null except by == (is null)")));
                    }
                    self.q.push(&column).push(" IS NULL");
                    return Ok(());
                }
                if field.column.kind == Kind::Int && matches!(o, Operand::Text(_)) {
                    // SQLite (the reference's storage) sorts every number before every text.
                    self.push_constant_unless_null(&column, matches!(op, Op::Lt | Op::Le));
                    return Ok(());
                }
                self.push_compared_column(field.column, &column);
                self.q.push(comparison(op));
                self.push_operand(&o);
            }
            _ => return Err(bad(format!("operator not valid on the column {name}"))),
        }
        Ok(())
    }

    /// `value` for rows where `column` is set, NULL elsewhere, as a comparison would give.
    fn push_constant_unless_null(&mut self, column: &str, value: bool) {
        let otherwise = if value { "TRUE" } else { "FALSE" };
        self.q.push("CASE WHEN ").push(column).push(" IS NULL THEN NULL ELSE ").push(otherwise).push(" END");
    }

    fn push_compared_column(&mut self, column: Column, sql: &str) {
        match column.kind {
            Kind::Uuid => self.q.uuid_text(sql),
            _ => self.q.push(sql),
        };
    }

    fn push_operand(&mut self, o: &Operand) {
        match o {
            Operand::Int(i) => self.bind_int(*i),
            Operand::Float(f) => self.bind_float(*f),
            Operand::Text(t) => self.bind_text(t.clone()),
            Operand::Time(t) => {
                if self.pg() {
                    self.q.push("CAST(CAST(").bind_text(format!("{t}+00")).push(" AS text) AS timestamptz)");
                } else {
                    self.q.bind_text(t.clone());
                }
            }
            Operand::Null => {
                self.q.push("NULL");
            }
        }
    }

    fn push_sqlite_json_test(&mut self, field: &Field, op: Op, value: &Value) -> QueryResult<()> {
        let target = SqliteJson::new(self.column_sql(field), &field.path);
        let name = field_name(field);
        match op {
            Op::Eq => {
                self.q.push("COALESCE(");
                self.sqlite_equals(&target, value)?;
                self.q.push(", FALSE)");
            }
            Op::Gt | Op::Lt | Op::Ge | Op::Le => {
                let types = match value {
                    Value::Number(_) => "('integer', 'real')",
                    Value::String(_) => "('text')",
                    Value::Bool(_) => "('true', 'false')",
                    _ => {
                        return Err(bad(format!(
                            "{name} can be compared with >, <, >=, <= only to a number, string or boolean"
                        )));
                    }
                };
                self.q.push("CASE WHEN ");
                self.sqlite_fn("json_type", &target);
                self.q.push(" IN ").push(types).push(" THEN ");
                self.sqlite_fn("json_extract", &target);
                self.q.push(comparison(op));
                self.sqlite_scalar(value)?;
                self.q.push(" ELSE FALSE END");
            }
            Op::Like | Op::ILike => {
                let pattern = value.as_str().unwrap_or_default().to_string();
                self.q.push("CASE WHEN ");
                self.sqlite_fn("json_type", &target);
                self.q.push(" = 'text' THEN ");
                if op == Op::ILike {
                    self.q.push("lower(");
                    self.sqlite_fn("json_extract", &target);
                    self.q.push(") LIKE lower(").bind_text(pattern).push(")");
                } else {
                    self.sqlite_fn("json_extract", &target);
                    self.q.push(" LIKE ").bind_text(pattern);
                }
                self.q.push(" ESCAPE '\\' ELSE FALSE END");
            }
            Op::In => {
                let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
                let types = if items.iter().all(Value::is_number) {
                    Some("('integer', 'real')")
                } else if items.iter().all(Value::is_string) {
                    Some("('text')")
                } else {
                    None
                };
                match types {
                    Some(types) => {
                        self.q.push("CASE WHEN ");
                        self.sqlite_fn("json_type", &target);
                        self.q.push(" IN ").push(types).push(" THEN ");
                        self.sqlite_fn("json_extract", &target);
                        self.q.push(" IN (");
                        for (n, item) in items.iter().enumerate() {
                            if n > 0 {
                                self.q.push(", ");
                            }
                            self.sqlite_scalar(item)?;
                        }
                        self.q.push(") ELSE FALSE END");
                    }
                    None => {
                        self.q.push("COALESCE((");
                        self.push_joined(items, " OR ", &mut |b, item| b.sqlite_equals(&target, item))?;
                        self.q.push("), FALSE)");
                    }
                }
            }
            Op::Contains => {
                // NULL where the path is missing, so that a negation does not select it.
                self.q.push("CASE WHEN ");
                self.sqlite_fn("json_type", &target);
                self.q.push(" IS NULL THEN NULL ELSE COALESCE(");
                self.sqlite_contains(&target, value)?;
                self.q.push(", FALSE) END");
            }
            Op::HasKey => {
                let each = self.fresh_alias("j");
                self.q.push("EXISTS (SELECT 1 FROM ");
                self.sqlite_fn("json_each", &target);
                self.q.push(&format!(" AS {each} WHERE {each}.key = "));
                self.q.bind_text(value.as_str().unwrap_or_default().to_string());
                self.q.push(")");
            }
            Op::OfType => {
                let wanted = value.as_str().unwrap_or_default();
                self.q.push("COALESCE(");
                if wanted == "null" {
                    self.q.push("(");
                    self.sqlite_fn("json_type", &target);
                    self.q.push(" = 'null' OR ");
                    self.sqlite_fn("json_type", &target);
                    self.q.push(" IS NULL)");
                } else {
                    let types = match wanted {
                        "object" => "('object')",
                        "array" => "('array')",
                        "string" => "('text')",
                        "number" => "('integer', 'real')",
                        "boolean" => "('true', 'false')",
                        other => return Err(bad(format!("'{other}' is not a JSON type"))),
                    };
                    self.sqlite_fn("json_type", &target);
                    self.q.push(" IN ").push(types);
                }
                self.q.push(", FALSE)");
            }
            Op::OfLength | Op::Longer | Op::Shorter => {
                self.q.push("CASE WHEN ");
                self.sqlite_fn("json_type", &target);
                self.q.push(" = 'array' THEN ");
                self.sqlite_fn("json_array_length", &target);
                self.q.push(length_comparison(op));
                self.q.bind(Param::Int(value.as_i64().unwrap_or_default()));
                self.q.push(" ELSE FALSE END");
            }
        }
        Ok(())
    }

    /// A scalar bound for comparison with `json_extract` (booleans are 1/0 there).
    fn sqlite_scalar(&mut self, value: &Value) -> QueryResult<()> {
        match value {
            Value::Number(n) => self.bind_number(n)?,
            Value::String(s) => {
                self.q.bind_text(s.clone());
            }
            Value::Bool(b) => {
                self.q.bind(Param::Int(*b as i64));
            }
            _ => return Err(bad("expected a number, string or boolean")),
        }
        Ok(())
    }

    /// Structural equality of the value at `target` with `value` (NULL where the path is
    /// missing; callers wrap it).
    fn sqlite_equals(&mut self, target: &SqliteJson, value: &Value) -> QueryResult<()> {
        match value {
            Value::Null => {
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'null'");
            }
            Value::Bool(b) => {
                self.sqlite_fn("json_type", target);
                self.q.push(if *b { " = 'true'" } else { " = 'false'" });
            }
            Value::Number(_) | Value::String(_) => {
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(if value.is_number() { " IN ('integer', 'real') AND " } else { " = 'text' AND " });
                self.sqlite_fn("json_extract", target);
                self.q.push(" = ");
                self.sqlite_scalar(value)?;
                self.q.push(")");
            }
            Value::Array(items) => {
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'array' AND ");
                self.sqlite_fn("json_array_length", target);
                self.q.push(" = ").bind(Param::Int(items.len() as i64));
                let indexed: Vec<(usize, &Value)> = items.iter().enumerate().collect();
                if !indexed.is_empty() {
                    self.q.push(" AND ");
                    self.push_joined(&indexed, " AND ", &mut |b, (i, item)| b.sqlite_equals(&target.index(*i), item))?;
                }
                self.q.push(")");
            }
            Value::Object(map) => {
                let each = self.fresh_alias("j");
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'object' AND (SELECT count(*) FROM ");
                self.sqlite_fn("json_each", target);
                self.q.push(&format!(" AS {each}) = ")).bind(Param::Int(map.len() as i64));
                let entries: Vec<(&String, &Value)> = map.iter().collect();
                if !entries.is_empty() {
                    self.q.push(" AND ");
                    self.push_joined(&entries, " AND ", &mut |b, (key, item)| b.sqlite_equals(&target.key(key), item))?;
                }
                self.q.push(")");
            }
        }
        Ok(())
    }

    /// JSON containment as AiiDA's SQLite `json_contains` defines it: objects contain objects
    /// key by key, arrays contain arrays element by element (each wanted element equal to,
    /// or containing, some element), scalars are compared.
    fn sqlite_contains(&mut self, target: &SqliteJson, value: &Value) -> QueryResult<()> {
        match value {
            Value::Object(map) => {
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'object'");
                let entries: Vec<(&String, &Value)> = map.iter().collect();
                if !entries.is_empty() {
                    self.q.push(" AND ");
                    self.push_joined(&entries, " AND ", &mut |b, (key, item)| {
                        b.sqlite_contains(&target.key(key), item)
                    })?;
                }
                self.q.push(")");
            }
            Value::Array(items) => {
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'array'");
                if !items.is_empty() {
                    self.q.push(" AND ");
                    self.push_joined(items, " AND ", &mut |b, item| {
                        let each = b.fresh_alias("j");
                        b.q.push("EXISTS (SELECT 1 FROM ");
                        b.sqlite_fn("json_each", target);
                        b.q.push(&format!(" AS {each} WHERE "));
                        b.sqlite_contains(&SqliteJson::element(&target.root, &each), item)?;
                        b.q.push(")");
                        Ok(())
                    })?;
                }
                self.q.push(")");
            }
            scalar => self.sqlite_equals(target, scalar)?,
        }
        Ok(())
    }

    fn push_pg_json_test(&mut self, field: &Field, op: Op, value: &Value) -> QueryResult<()> {
        let root = self.column_sql(field);
        let keys = field.path.clone();
        let name = field_name(field);
        let typeof_is = |b: &mut Self, t: &'static str| {
            b.q.push("jsonb_typeof(");
            b.push_pg_json(&root, &keys);
            b.q.push(") = '").push(t).push("'");
        };
        let text_of = |b: &mut Self| {
            b.q.push("(");
            b.push_pg_json(&root, &keys);
            b.q.push(" #>> '{}')");
        };
        match op {
            Op::Eq => {
                self.q.push("COALESCE(");
                self.push_pg_json(&root, &keys);
                self.q.push(" = ");
                self.bind_jsonb(value);
                self.q.push(", FALSE)");
            }
            Op::Gt | Op::Lt | Op::Ge | Op::Le => {
                self.q.push("CASE WHEN ");
                match value {
                    Value::Number(n) => {
                        typeof_is(self, "number");
                        self.q.push(" THEN CAST(");
                        text_of(self);
                        self.q.push(" AS numeric)").push(comparison(op));
                        self.bind_number(n)?;
                    }
                    Value::String(s) => {
                        typeof_is(self, "string");
                        self.q.push(" THEN ");
                        text_of(self);
                        self.q.push(comparison(op));
                        self.bind_text(s.clone());
                    }
                    Value::Bool(b) => {
                        // 'false' < 'true' as text, as false < true.
                        typeof_is(self, "boolean");
                        self.q.push(" THEN ");
                        text_of(self);
                        self.q.push(comparison(op));
                        self.bind_text(b.to_string());
                    }
                    _ => {
                        return Err(bad(format!(
                            "{name} can be compared with >, <, >=, <= only to a number, string or boolean"
                        )));
                    }
                }
                self.q.push(" ELSE FALSE END");
            }
            Op::Like | Op::ILike => {
                self.q.push("CASE WHEN ");
                typeof_is(self, "string");
                self.q.push(" THEN ");
                text_of(self);
                self.q.push(if op == Op::ILike { " ILIKE " } else { " LIKE " });
                self.bind_text(value.as_str().unwrap_or_default().to_string());
                self.q.push(" ESCAPE '\\' ELSE FALSE END");
            }
            Op::In => {
                self.q.push("COALESCE(");
                self.push_pg_json(&root, &keys);
                self.q.push(" IN (");
                for (n, item) in value.as_array().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
                    if n > 0 {
                        self.q.push(", ");
                    }
                    self.bind_jsonb(item);
                }
                self.q.push("), FALSE)");
            }
            Op::Contains => {
                self.q.push("(");
                self.push_pg_json(&root, &keys);
                self.q.push(" @> ");
                self.bind_jsonb(value);
                self.q.push(")");
            }
            Op::HasKey => {
                self.q.push("jsonb_exists(");
                self.push_pg_json(&root, &keys);
                self.q.push(", ");
                self.bind_text(value.as_str().unwrap_or_default().to_string());
                self.q.push(")");
            }
            Op::OfType => {
                // The SQL text holds only these constants, whatever the client sent.
                let wanted = match value.as_str().unwrap_or_default() {
                    "object" => "object",
                    "array" => "array",
                    "string" => "string",
                    "number" => "number",
                    "boolean" => "boolean",
                    "null" => "null",
                    other => return Err(bad(format!("'{other}' is not a JSON type"))),
                };
                if wanted == "null" {
                    self.q.push("(");
                    typeof_is(self, "null");
                    self.q.push(" OR jsonb_typeof(");
                    self.push_pg_json(&root, &keys);
                    self.q.push(") IS NULL)");
                } else {
                    typeof_is(self, wanted);
                }
            }
            Op::OfLength | Op::Longer | Op::Shorter => {
                self.q.push("CASE WHEN ");
                typeof_is(self, "array");
                self.q.push(" THEN jsonb_array_length(");
                self.push_pg_json(&root, &keys);
                self.q.push(")").push(length_comparison(op));
                self.bind_int(value.as_i64().unwrap_or_default());
                self.q.push(" ELSE FALSE END");
            }
        }
        Ok(())
    }
}

/// Whether `field` can be NULL in a row: JSON paths, nullable columns, and anything of a
/// joined entity (which may be outer-joined).
fn may_be_null(field: &Field) -> bool {
    !field.path.is_empty() || field.column.nullable || field.target != Target::Vertex(0)
}

fn comparison(op: Op) -> &'static str {
    match op {
        Op::Eq => " = ",
        Op::Gt => " > ",
        Op::Lt => " < ",
        Op::Ge => " >= ",
        Op::Le => " <= ",
        _ => unreachable!("not a comparison"),
    }
}

fn length_comparison(op: Op) -> &'static str {
    match op {
        Op::OfLength => " = ",
        Op::Longer => " > ",
        _ => " < ",
    }
}

/// A client value converted for comparison with a plain column.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Int(i64),
    Float(f64),
    Text(String),
    /// Naive UTC text, the storage's own form.
    Time(String),
    Null,
}

fn operand(column: Column, value: &Value, name: &str) -> QueryResult<Operand> {
    let wrong = |what: &str| bad(format!("{name} cannot be compared with {value}: {what}"));
    Ok(match (column.kind, value) {
        (_, Value::Null) => Operand::Null,
        (Kind::Int, Value::Number(n)) => match n.as_i64() {
            Some(i) => Operand::Int(i),
            None => Operand::Float(n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| wrong("out of range"))?),
        },
        (Kind::Int, Value::Bool(b)) => Operand::Int(*b as i64),
        (Kind::Int, Value::String(s)) => match (s.trim().parse::<i64>(), s.trim().parse::<f64>()) {
            (Ok(i), _) => Operand::Int(i),
            (_, Ok(f)) if f.is_finite() => Operand::Float(f),
            _ => Operand::Text(s.clone()),
        },
        // Text columns compare with a number's text, as SQLite's column affinity does.
        (Kind::Text, Value::String(s)) => Operand::Text(s.clone()),
        (Kind::Text, Value::Number(n)) => Operand::Text(n.to_string()),
        (Kind::Text, Value::Bool(b)) => Operand::Text(if *b { "1" } else { "0" }.into()),
        (Kind::Uuid, Value::String(s)) => Operand::Text(s.clone()),
        (Kind::Uuid, Value::Number(n)) => Operand::Text(n.to_string()),
        (Kind::Time, Value::String(s)) => Operand::Time(
            parse_time(s)
                .ok_or_else(|| {
                    wrong(
                        "write a date and time of a year from 1 to 9999, such as 2024-05-01, 2024-05-01T10:00:00 or 2024-05-01T10:00:00+02:00",
                    )
                })?
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string(),
        ),
        (Kind::Uuid, _) => return Err(wrong("it takes a string")),
        (Kind::Time, _) => return Err(wrong("it takes a date string")),
        _ => return Err(wrong("use a number or a string")),
    })
}

/// ISO 8601 date or date-time, with or without an offset (none means UTC), of a year from 1 to
/// 9999: what both databases can compare (PostgreSQL refuses other years, and SQLite would
/// compare their text with the stored times character by character).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    parse_any_time(text).filter(|t| (1..=9999).contains(&t.year()))
}

fn parse_any_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%:z"] {
        if let Ok(dt) = DateTime::parse_from_str(text, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, fmt) {
            return Some(naive.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::querybuilder::parse::parse_body;

    fn sql(body: &str, dialect: Dialect) -> Query {
        rows_query(&parse_body(body.as_bytes()).unwrap(), dialect, 100).unwrap()
    }

    #[test]
    fn explorer_list_is_plain_and_ordered_by_id() {
        let body = r#"{"path":[{"orm_base":"node","tag":"node","entity_type":""}],"filters":{"node":{}},"project":{"node":["id","uuid","node_type","label","ctime","mtime"]},"order_by":[],"limit":5000,"offset":0,"distinct":true}"#;
        let q = sql(body, Dialect::Sqlite);
        assert_eq!(
            q.sql,
            "SELECT t0.id, t0.uuid, t0.node_type, t0.label, t0.ctime, t0.mtime FROM db_dbnode t0 \
             WHERE t0.node_type LIKE ?1 ESCAPE '\\' ORDER BY t0.id ASC LIMIT ?2 OFFSET ?3"
        );
        assert_eq!(q.params, vec![Param::Text("%".into()), Param::Int(100), Param::Int(0)]);
    }

    #[test]
    fn distinct_over_a_join_groups() {
        let body = r#"{"path":[{"entity_type":"","tag":"n"},{"entity_type":"group.core","tag":"g","with_node":"n"}],"project":{"n":["uuid"]},"order_by":{"n":[{"id":"desc"}]},"distinct":true}"#;
        let q = sql(body, Dialect::Sqlite);
        assert!(q.sql.contains("GROUP BY 1 ORDER BY max(t0.id) DESC, 1"), "{}", q.sql);
        assert!(q.sql.contains(
            "JOIN db_dbgroup_dbnodes e1 ON e1.dbnode_id = t0.id JOIN db_dbgroup t1 ON t1.id = e1.dbgroup_id"
        ));
    }

    #[test]
    fn values_are_always_bound() {
        let body = r#"{"path":[{"entity_type":"","tag":"n"}],"filters":{"n":{"label":"x' OR 1=1 --","attributes.a'b":{"==":"y'"}}},"project":{"n":["id"]}}"#;
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let q = sql(body, dialect);
            assert!(!q.sql.contains("x'") && !q.sql.contains("y'") && !q.sql.contains("a'b"), "{}", q.sql);
        }
    }

    #[test]
    fn postgres_casts_every_parameter() {
        let body = r#"{"path":[{"entity_type":"","tag":"n"}],"filters":{"n":{"id":{">":3},"attributes.x":{"<":2.5},"extras":{"has_key":"k"},"ctime":{">":"2024-05-01"}}},"project":{"n":["id","attributes.x"]}}"#;
        let q = sql(body, Dialect::Postgres);
        let placeholders = q.sql.matches('$').count();
        let cast = q.sql.matches("CAST($").count();
        assert_eq!(placeholders, cast, "{}", q.sql);
        assert!(q.sql.contains("jsonb_exists(t0.extras, CAST("), "{}", q.sql);
    }

    #[test]
    fn long_lists_nest_as_balanced_trees() {
        let ors: Vec<String> = (0..40).map(|i| format!(r#"{{"id":{i}}}"#)).collect();
        let body =
            format!(r#"{{"path":[{{"entity_type":"","tag":"n"}}],"filters":{{"n":{{"or":[{}]}}}}}}"#, ors.join(","));
        let q = sql(&body, Dialect::Sqlite);
        // 40 = (10 + 10) + (10 + 10): no more than 16 terms in a row.
        assert!(q.sql.contains("(((t0.id = ?2 OR "), "{}", q.sql);
        assert_eq!(q.sql.matches(") OR (").count(), 3, "{}", q.sql);
        let items: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let body = format!(
            r#"{{"path":[{{"entity_type":"","tag":"n"}}],"filters":{{"n":{{"attributes.x":{{"==":[{}]}}}}}}}}"#,
            items.join(",")
        );
        let q = sql(&body, Dialect::Sqlite);
        assert!(q.sql.contains(") AND ("), "{}", q.sql);
    }

    #[test]
    fn walks_are_recursive() {
        let body = r#"{"path":[{"entity_type":"","tag":"a","filters":{"id":42}},{"entity_type":"","tag":"d","with_ancestors":"a"}],"project":{"d":["id"]}}"#;
        let q = sql(body, Dialect::Sqlite);
        assert!(q.sql.starts_with("WITH RECURSIVE w1(ancestor_id, descendant_id, depth) AS (SELECT l1.input_id, l1.output_id, 0 FROM db_dbnode r1 JOIN db_dblink l1 ON l1.input_id = r1.id"), "{}", q.sql);
        assert!(q.sql.contains("r1.id = "), "{}", q.sql);
        assert!(q.sql.contains("JOIN w1 e1 ON e1.ancestor_id = t0.id JOIN db_dbnode t1 ON e1.descendant_id = t1.id"));
    }

    #[test]
    fn times_parse() {
        let t = |s: &str| parse_time(s).map(|d| d.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        assert_eq!(t("2024-05-01").as_deref(), Some("2024-05-01 00:00:00.000000"));
        assert_eq!(t("2024-05-01T10:00:00+02:00").as_deref(), Some("2024-05-01 08:00:00.000000"));
        assert_eq!(t("2024-05-01 08:42:30.228257").as_deref(), Some("2024-05-01 08:42:30.228257"));
        assert_eq!(t("2024-05-01 08:42:30.228257+00:00").as_deref(), Some("2024-05-01 08:42:30.228257"));
        assert_eq!(t("yesterday"), None);
        assert_eq!(t("9999-12-31T23:59:59").as_deref(), Some("9999-12-31 23:59:59.000000"));
        assert_eq!(t("0001-01-01").as_deref(), Some("0001-01-01 00:00:00.000000"));
        assert_eq!(t("+99999-01-01"), None);
        assert_eq!(t("0000-01-01"), None);
        assert_eq!(t("-0001-01-01"), None);
    }
}
