//! ORDER BY: the client's order, then a stable order for ties.

use crate::query::QueryResult;
use crate::query::tables::{Kind, order_direction};

use super::super::parse::{Cast, Field, OrderItem, Target};
use super::json::SqliteJson;
use super::{Builder, Shape, select_items};

impl Builder<'_> {
    pub(super) fn push_order_by(&mut self) -> QueryResult<()> {
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
    pub(super) fn push_order_expr(&mut self, order: &OrderItem, in_aggregate: bool) {
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
}

/// Whether `field` can be NULL in a row: JSON paths, nullable columns, and anything of a
/// joined entity (which may be outer-joined).
fn may_be_null(field: &Field) -> bool {
    !field.path.is_empty() || field.column.nullable || field.target != Target::Vertex(0)
}
