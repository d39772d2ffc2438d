//! The dictionary's comparisons with plain columns in the query layer's filter model: the
//! QueryBuilder's operators and JSON values become [`filter::Op`]s and typed [`filter::Value`]s
//! for the column's kind, with the QueryBuilder's own conversions and messages.

use serde_json::Value as Json;

use crate::model::time;
use crate::query::filter::{self, DateTimeValue};
use crate::query::tables::{Column, Kind};
use crate::query::{QueryError, QueryResult};

use super::{Field, Op, field_name};

/// A checked operation on a plain column, in the filter model.
pub fn column_condition(field: &Field, op: Op, value: &Json) -> QueryResult<(filter::Op, filter::Value)> {
    let name = field_name(field);
    Ok(match op {
        Op::Like | Op::ILike => {
            let pattern = value.as_str().unwrap_or_default().to_string();
            (if op == Op::Like { filter::Op::Like } else { filter::Op::ILike }, filter::Value::Str(pattern))
        }
        Op::In => {
            let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
            let items = items.iter().map(|v| column_value(field.column, v, &name)).collect::<QueryResult<_>>()?;
            (filter::Op::In, filter::Value::List(items))
        }
        Op::Eq => (filter::Op::Eq, column_value(field.column, value, &name)?),
        Op::Gt => (filter::Op::Gt, column_value(field.column, value, &name)?),
        Op::Lt => (filter::Op::Lt, column_value(field.column, value, &name)?),
        Op::Ge => (filter::Op::Ge, column_value(field.column, value, &name)?),
        Op::Le => (filter::Op::Le, column_value(field.column, value, &name)?),
        _ => return Err(bad(format!("operator not valid on the column {name}"))),
    })
}

fn bad(msg: String) -> QueryError {
    QueryError::BadRequest(msg)
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
