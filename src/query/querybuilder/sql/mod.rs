//! A checked QueryBuilder query → SQL for SQLite or PostgreSQL. Every client value is bound as
//! a parameter; the SQL text holds only table and column names from `query::tables`, aliases made
//! here and constants.
//!
//! JSON comparisons are type-aware as in AiiDA: `attributes.x > 5` holds only where `x` is a
//! JSON number, `== "a"` only where it is a string, and so on. On PostgreSQL every bound value
//! is cast explicitly, so the statement never depends on parameter type inference, and casts
//! of JSON text sit behind a type test (`CASE WHEN ... THEN`) so that no row can make the
//! statement fail.

//!
//! The statement is written by a [`Builder`], one module per part: `joins` (the path and its
//! ancestor/descendant walks), `projections`, `filters` (conditions on plain columns go through
//! the query layer's one translator, `query::filter::sql`), `json` (values inside JSON columns,
//! per dialect) and `ordering`.

mod filters;
mod joins;
mod json;
mod ordering;
mod projections;

use serde_json::{Number, Value};

use crate::query::tables::{LINK, WALK};
use crate::query::{QueryError, QueryResult};
use crate::storage::db::sql::{Dialect, Param, Query};

use super::parse::{Field, Projected, QbQuery, Target};

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
    if b.ids_first() {
        return b.rows_by_ids(limit);
    }
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

impl Builder<'_> {
    /// Whether the rows are better found by their ids first: PostgreSQL computes a statement's
    /// output values (uuid and time text, JSON values) for each row that an `OFFSET` skips too,
    /// which made "the next 5000 nodes" at offset 500,000 take a second. So for one entity
    /// with an offset, the ids of the page are found first (from an index alone where the
    /// filters allow), and only their rows are read. The order of a single entity always ends
    /// with its id, so it is total and the outer statement gives the rows in the same order.
    fn ids_first(&self) -> bool {
        self.pg()
            && self.shape == Shape::Plain
            && self.qb.vertices.len() == 1
            && self.qb.vertices[0].entity.table().has_id()
            && self.qb.offset.is_some_and(|o| o > 0)
    }

    /// `SELECT ... FROM table t0 WHERE t0.id IN (SELECT t0.id ... LIMIT ... OFFSET ...)
    /// ORDER BY ...`: see [`Builder::ids_first`].
    fn rows_by_ids(mut self, limit: i64) -> QueryResult<Query> {
        let table = self.qb.vertices[0].entity.table().sql_name;
        self.q.push("SELECT ");
        self.push_select_list()?;
        self.q.push(" FROM ").push(table).push(" t0 WHERE t0.id IN (SELECT t0.id");
        self.ids_only = true;
        self.push_from_where()?;
        self.push_order_by()?;
        self.ids_only = false;
        self.q.push(" LIMIT ");
        self.bind_int(limit);
        self.q.push(" OFFSET ");
        self.bind_int(self.qb.offset.unwrap_or(0).max(0));
        self.q.push(")");
        self.push_order_by()?;
        self.finish()
    }
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

struct Builder<'a> {
    qb: &'a QbQuery,
    q: Query,
    shape: Shape,
    /// Inside a walk's CTE, this vertex is read from another alias.
    vertex_alias_override: Option<(usize, String)>,
    next_alias: usize,
    /// Writing the inner statement of [`Builder::rows_by_ids`], which selects ids only.
    ids_only: bool,
}

impl<'a> Builder<'a> {
    fn new(qb: &'a QbQuery, dialect: Dialect) -> Self {
        Self {
            qb,
            q: Query::new(dialect),
            shape: shape(qb),
            vertex_alias_override: None,
            next_alias: 0,
            ids_only: false,
        }
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
             WHERE t0.node_type LIKE ?1 ESCAPE '\\' ORDER BY t0.id ASC LIMIT 100 OFFSET 0"
        );
        assert_eq!(q.params, vec![Param::Text("%".into())]);
    }

    #[test]
    fn postgres_finds_the_ids_of_a_later_page_first() {
        let body = r#"{"path":[{"orm_base":"node","tag":"node","entity_type":""}],"filters":{"node":{}},"project":{"node":["id","uuid","ctime"]},"order_by":[],"limit":5000,"offset":500000,"distinct":true}"#;
        let q = sql(body, Dialect::Postgres);
        assert_eq!(
            q.sql,
            "SELECT t0.id, t0.uuid::text, to_char(t0.ctime AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') \
             FROM db_dbnode t0 WHERE t0.id IN (SELECT t0.id FROM db_dbnode t0 WHERE TRUE ORDER BY t0.id ASC \
             LIMIT CAST($1::int8 AS bigint) OFFSET CAST($2::int8 AS bigint)) ORDER BY t0.id ASC"
        );
        assert_eq!(q.params, vec![Param::Int(100), Param::Int(500000)]);
        // The first page, SQLite, and joins keep the one statement.
        let first = sql(&body.replace("500000", "0"), Dialect::Postgres);
        assert!(!first.sql.contains(" IN (SELECT"), "{}", first.sql);
        assert!(!sql(body, Dialect::Sqlite).sql.contains(" IN (SELECT"));
        let joined = r#"{"path":[{"entity_type":"","tag":"n"},{"entity_type":"","tag":"m","with_incoming":"n"}],"project":{"m":["id"]},"offset":10}"#;
        assert!(!sql(joined, Dialect::Postgres).sql.contains(" IN (SELECT"));
        // An order by another column is repeated outside, and ends with the id.
        let ordered = r#"{"path":[{"entity_type":"","tag":"n","filters":{"label":{"like":"a%"}}}],"project":{"n":["id"]},"order_by":{"n":[{"ctime":"desc"}]},"offset":10}"#;
        let q = sql(ordered, Dialect::Postgres);
        assert!(q.sql.ends_with(") ORDER BY t0.ctime DESC, t0.id ASC"), "{}", q.sql);
        assert!(q.sql.contains("WHERE (TRUE AND t0.label LIKE CAST($1"), "{}", q.sql);
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
}
