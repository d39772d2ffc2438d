//! The select list and the grouping of `distinct` rows.

use crate::query::QueryResult;
use crate::query::tables::Kind;

use super::super::parse::{Field, Func, Projected};
use super::json::SqliteJson;
use super::{Builder, Shape, select_items};

impl Builder<'_> {
    pub(super) fn push_select_list(&mut self) -> QueryResult<()> {
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

    pub(super) fn push_projected(&mut self, item: &Projected) {
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
    pub(super) fn push_plain_select(&mut self, field: &Field) {
        let column = self.column_sql(field);
        match field.column.kind {
            Kind::Uuid => self.q.uuid_text(&column),
            Kind::Time => self.q.time_text(&column),
            Kind::Json => self.q.json_text(&column),
            Kind::Int | Kind::Text => self.q.push(&column),
        };
    }

    /// The JSON text of a value inside a JSON column (NULL when the path is missing).
    pub(super) fn push_json_select(&mut self, field: &Field) {
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

    pub(super) fn push_group_by(&mut self) {
        if self.shape != Shape::Grouped {
            return;
        }
        let n = select_items(self.qb).len().max(1);
        let positions: Vec<String> = (1..=n).map(|p| p.to_string()).collect();
        self.q.push(" GROUP BY ").push(&positions.join(", "));
    }
}
