//! WHERE: the and/or/not tree of a query's conditions. A test on a plain column goes through
//! the query layer's one translator with the QueryBuilder's style; a test on a value inside a
//! JSON column through `json`.

use crate::query::QueryResult;
use crate::query::filter::sql::{Compared, Style, push_comparison};

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
