//! WHERE: the and/or/not tree of a query's conditions. A test on a plain column goes through
//! the query layer's one translator with the QueryBuilder's style; a test on a value inside a
//! JSON column through `json`.

use serde_json::Value as Json;

use crate::model::time;
use crate::query::QueryResult;
use crate::query::filter::sql::{Compared, Style, push_comparison};
use crate::query::filter::{self, DateTimeValue};
use crate::query::tables::{Column, Kind};

use super::super::parse::{Cond, Field, Op, field_name};
use super::{Builder, bad};

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

    /// A test on a plain column: the QueryBuilder's operator and JSON value in the filter model,
    /// then the one translator.
    pub(super) fn push_column_test(&mut self, field: &Field, op: Op, value: &Json) -> QueryResult<()> {
        let column = self.column_sql(field);
        let name = field_name(field);
        let (op, value) = match op {
            Op::Like | Op::ILike => {
                let pattern = value.as_str().unwrap_or_default().to_string();
                (if op == Op::Like { filter::Op::Like } else { filter::Op::ILike }, filter::Value::Str(pattern))
            }
            Op::In => {
                let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
                let items = items.iter().map(|v| column_value(field.column, v, &name)).collect::<QueryResult<_>>()?;
                (filter::Op::In, filter::Value::List(items))
            }
            Op::Eq | Op::Gt | Op::Lt | Op::Ge | Op::Le => {
                let op = match op {
                    Op::Eq => filter::Op::Eq,
                    Op::Gt => filter::Op::Gt,
                    Op::Lt => filter::Op::Lt,
                    Op::Ge => filter::Op::Ge,
                    _ => filter::Op::Le,
                };
                (op, column_value(field.column, value, &name)?)
            }
            _ => return Err(bad(format!("operator not valid on the column {name}"))),
        };
        let compared = Compared { sql: &column, kind: field.column.kind, name: &name };
        push_comparison(&mut self.q, Style::QUERYBUILDER, compared, op, &value)
    }
}

/// A JSON value of the dictionary as the filter model's value for a plain column of `column`'s
/// kind (the QueryBuilder's own conversions and messages).
fn column_value(column: Column, value: &Json, name: &str) -> QueryResult<filter::Value> {
    use filter::Value as V;
    let wrong = |what: &str| bad(format!("{name} cannot be compared with {value}: {what}"));
    Ok(match (column.kind, value) {
        (_, Json::Null) => V::Null,
        (Kind::Int, Json::Number(n)) => match n.as_i64() {
            Some(i) => V::Int(i),
            None => V::Float(n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| wrong("out of range"))?),
        },
        (Kind::Int, Json::Bool(b)) => V::Int(*b as i64),
        // Numbers in text are read as numbers; other text equals no number.
        (Kind::Int, Json::String(s)) => V::Str(s.clone()),
        // Text columns compare with the number's own text, as SQLite's column affinity does.
        (Kind::Text, Json::String(s)) => V::Str(s.clone()),
        (Kind::Text, Json::Number(n)) => V::Str(n.to_string()),
        (Kind::Text, Json::Bool(b)) => V::Bool(*b),
        (Kind::Uuid, Json::String(s)) => V::Str(s.clone()),
        (Kind::Uuid, Json::Number(n)) => V::Str(n.to_string()),
        (Kind::Time, Json::String(s)) => V::DateTime(DateTimeValue {
            datetime: time::parse_client(s)
                .ok_or_else(|| {
                    wrong(
                        "write a date and time of a year from 1 to 9999, such as 2024-05-01, 2024-05-01T10:00:00 or 2024-05-01T10:00:00+02:00",
                    )
                })?
                .fixed_offset(),
            precision: DateTimeValue::EXACT,
        }),
        (Kind::Uuid, _) => return Err(wrong("it takes a string")),
        (Kind::Time, _) => return Err(wrong("it takes a date string")),
        _ => return Err(wrong("use a number or a string")),
    })
}
