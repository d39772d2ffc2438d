//! The conditions of a REST resource's query string: filters on the columns of its table, and
//! the `full_type` of nodes.

use crate::query::lists::{Conditions, Scope};
use crate::query::tables::Table;
use crate::query::{QueryError, QueryResult};
use crate::storage::db::sql::{Query, escape_like};

use super::sql::{Compared, Style, push_comparison, push_condition};
use super::{Filter, Op, Value};
use crate::query::node_classes::process_state_sql;
use crate::query::tables::Kind;

/// The filters of a REST request (and its `full_type`), applied to the columns of the list
/// being queried and to the extra columns it names (the link columns of link lists).
pub struct RequestConditions<'a> {
    pub filters: &'a [Filter],
    pub full_type: Option<&'a str>,
}

impl Conditions for RequestConditions<'_> {
    fn push(&self, q: &mut Query, scope: &Scope<'_>) -> QueryResult<()> {
        for filter in self.filters {
            match scope.extra.iter().find(|column| column.name == filter.key) {
                Some(column) => {
                    for (op, value) in &filter.conditions {
                        q.push(" AND ");
                        push_condition(q, column.sql, column.kind, &filter.key, *op, value)?;
                    }
                }
                None => push_filter(q, scope.entity, filter)?,
            }
        }
        if let Some(ft) = self.full_type {
            let (node_type, process_type) =
                (scope.entity.qualified("node_type"), scope.entity.qualified("process_type"));
            push_full_type(q, &node_type, &process_type, ft)?;
        }
        Ok(())
    }
}

/// A filter of an API whose field names are not today's columns (REST API v2), after its
/// front end mapped the field.
#[derive(Debug, Clone)]
pub enum MappedFilter {
    /// A column of the table, with the values already in today's spelling.
    Column(Filter),
    /// The process state, which today is an attribute of process nodes.
    ProcessState(Vec<(Op, Value)>),
    /// A field today's schema no longer has: no row matches.
    Absent,
    /// A field that must not be filtered on (personal data); the name is for the message.
    Private(String),
}

/// Mapped filters, applied by the one translator.
pub struct MappedConditions {
    pub filters: Vec<MappedFilter>,
}

impl Conditions for MappedConditions {
    fn push(&self, q: &mut Query, scope: &Scope<'_>) -> QueryResult<()> {
        for filter in &self.filters {
            match filter {
                MappedFilter::Column(filter) => push_filter(q, scope.entity, filter)?,
                MappedFilter::ProcessState(conditions) => {
                    let state = process_state_sql(q.dialect, scope.entity.alias);
                    for (op, value) in conditions {
                        q.push(" AND ");
                        push_condition(q, &state, Kind::Text, "state", *op, value)?;
                    }
                }
                MappedFilter::Absent => {
                    q.push(" AND 1 = 0");
                }
                MappedFilter::Private(name) => return Err(QueryError::bad_request(format!("{name} is private"))),
            }
        }
        Ok(())
    }
}

/// Appends ` AND <condition>` for each condition of one query-string key.
pub fn push_filter(q: &mut Query, table: &Table, filter: &Filter) -> QueryResult<()> {
    let column = table.usable_column(&filter.key).map_err(QueryError::BadRequest)?;
    let sql_column = table.qualified(column.name);
    for (op, value) in &filter.conditions {
        q.push(" AND ");
        let compared = Compared { sql: &sql_column, kind: column.kind, name: column.name };
        push_comparison(q, Style::REST, compared, *op, value)?;
    }
    Ok(())
}

/// The node_type/process_type conditions a full type stands for (`node_type|process_type`,
/// each part optionally ending in `%`).
pub fn push_full_type(q: &mut Query, node_type_col: &str, process_type_col: &str, full_type: &str) -> QueryResult<()> {
    let (node_type, process_type) = split_full_type(full_type).map_err(QueryError::bad_request)?;
    q.push(" AND ");
    match node_type.strip_suffix('%') {
        Some(prefix) => {
            q.push(node_type_col).push(" LIKE ").bind_text(format!("{}%", escape_like(prefix))).push(" ESCAPE '\\'");
        }
        None => {
            q.push(node_type_col).push(" = ").bind_text(node_type);
        }
    }
    match process_type.strip_suffix('%') {
        Some("") => {}
        Some(prefix) => {
            q.push(" AND ")
                .push(process_type_col)
                .push(" LIKE ")
                .bind_text(format!("{}%", escape_like(prefix)))
                .push(" ESCAPE '\\'");
        }
        None if process_type.is_empty() => {
            // Not `pt = '' OR pt IS NULL`: SQLite reads that from the process type's index,
            // which holds most nodes under these two keys (every data node), and sorts them all
            // for a page (0.25 s for the first 10 `data.%` nodes at 10^6 nodes, 0.3 ms so).
            q.push(" AND COALESCE(").push(process_type_col).push(", '') = ''");
        }
        None => {
            q.push(" AND ").push(process_type_col).push(" = ").bind_text(process_type);
        }
    }
    Ok(())
}

/// Validates a full type and splits it into its two parts.
pub fn split_full_type(full_type: &str) -> Result<(&str, &str), String> {
    let mut parts = full_type.split('|');
    let (Some(node_type), Some(process_type)) = (parts.next(), parts.next()) else {
        return Err(format!("full type `{full_type}` does not include the required concatenator symbol `|`."));
    };
    if parts.next().is_some() {
        return Err(format!("full type `{full_type}` includes the concatenator symbol `|` more than once."));
    }
    for part in [node_type, process_type] {
        if part.matches('%').count() > 1 {
            return Err(format!("full type component `{part}` contained more than one like-operator character"));
        }
        if part.contains('%') && !part.ends_with('%') {
            return Err(format!("like-operator character in full type component `{part}` is not at the end"));
        }
    }
    Ok((node_type, process_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::filter::{Op, Value};
    use crate::query::tables::NODE;
    use crate::storage::db::sql::{Dialect, Param};

    fn filter(key: &str, op: Op, value: Value) -> Filter {
        Filter { key: key.into(), conditions: vec![(op, value)] }
    }

    #[test]
    fn values_are_bound() {
        let mut q = Query::new(Dialect::Sqlite);
        push_filter(&mut q, &NODE, &filter("label", Op::Eq, Value::Str("x' OR 1=1".into()))).unwrap();
        assert_eq!(q.sql, " AND n.label = ?1");
        assert_eq!(q.params, vec![Param::Text("x' OR 1=1".into())]);
    }

    #[test]
    fn aliases_and_unknown_columns() {
        let mut q = Query::new(Dialect::Sqlite);
        push_filter(&mut q, &NODE, &filter("pk", Op::Gt, Value::Int(3))).unwrap();
        assert_eq!(q.sql, " AND n.id > ?1");
        let err = push_filter(&mut q, &NODE, &filter("bogus", Op::Eq, Value::Int(1))).unwrap_err();
        assert!(err.to_string().contains("valid columns are"), "{err}");
    }

    #[test]
    fn operators_check_their_values() {
        let mut q = Query::new(Dialect::Sqlite);
        assert!(push_filter(&mut q, &NODE, &filter("id", Op::In, Value::Int(1))).is_err());
        assert!(push_filter(&mut q, &NODE, &filter("id", Op::Like, Value::Int(1))).is_err());
        assert!(push_filter(&mut q, &NODE, &filter("attributes", Op::Eq, Value::Int(1))).is_err());
        assert!(push_filter(&mut q, &NODE, &filter("ctime", Op::Gt, Value::Int(1))).is_err());
    }

    #[test]
    fn full_types() {
        let mut q = Query::new(Dialect::Sqlite);
        push_full_type(&mut q, "nt", "pt", "data.core.dict.Dict.|").unwrap();
        assert_eq!(q.sql, " AND nt = ?1 AND COALESCE(pt, '') = ''");
        let mut q = Query::new(Dialect::Sqlite);
        push_full_type(&mut q, "nt", "pt", "process.calculation.%|%").unwrap();
        assert_eq!(q.sql, " AND nt LIKE ?1 ESCAPE '\\'");
        assert_eq!(q.params, vec![Param::Text("process.calculation.%".into())]);
        let mut q = Query::new(Dialect::Sqlite);
        push_full_type(&mut q, "nt", "pt", "node_type%|process_type%").unwrap();
        assert_eq!(q.params, vec![Param::Text("node\\_type%".into()), Param::Text("process\\_type%".into())]);
        assert!(split_full_type("bogus").is_err());
        assert!(split_full_type("a|b|c").is_err());
        assert!(split_full_type("a%b|").is_err());
        assert!(split_full_type("a%%|").is_err());
    }
}
