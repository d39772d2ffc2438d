//! WHERE: the and/or/not tree of a query's conditions. A test on a plain column goes through
//! the query layer's one translator with the QueryBuilder's style; a test on a value inside a
//! JSON column through `json`.

use crate::query::QueryResult;
use crate::query::filter;
use crate::query::filter::sql::{Compared, Style, push_comparison};

use crate::query::tables::Kind;

use super::super::parse::{Cond, field_name};
use super::Builder;

impl Builder<'_> {
    pub(super) fn push_cond(&mut self, cond: &Cond) -> QueryResult<()> {
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
            // `node_type LIKE '%'` (the type filter of `entity_type: ""`) holds for every row:
            // where ids are found first, written as such, so that they come from an index alone
            // (see `Builder::ids_first`).
            Cond::Column { field, op: filter::Op::Like | filter::Op::ILike, value: filter::Value::Str(pattern) }
                if self.ids_only
                    && pattern == "%"
                    && field.path.is_empty()
                    && field.column.kind == Kind::Text
                    && !field.column.nullable =>
            {
                self.q.push("TRUE");
            }
            Cond::Column { field, op, value } => {
                let column = self.column_sql(field);
                let name = field_name(field);
                let compared = Compared { sql: &column, kind: field.column.kind, name: &name };
                push_comparison(&mut self.q, Style::QUERYBUILDER, compared, *op, value)?;
                self.check_params()?;
            }
            Cond::Json { field, op, value } => {
                if self.pg() {
                    self.push_pg_json_test(field, *op, value)?;
                } else {
                    self.push_sqlite_json_test(field, *op, value)?;
                }
                self.check_params()?;
            }
        }
        Ok(())
    }
}
