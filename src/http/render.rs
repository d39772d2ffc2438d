//! Selecting columns and turning result cells into the JSON the reference returns.

use serde_json::{Map, Value};

use crate::model::time as timefmt;
use crate::query::tables::{Column, Kind, Table};
use crate::storage::db::{Cell, Query};

/// Appends the SELECT expression of `column` (qualified by the entity alias).
pub fn push_select(q: &mut Query, entity: &Table, column: Column) {
    let name = entity.qualified(column.name);
    match column.kind {
        Kind::Uuid => q.uuid_text(&name),
        Kind::Time => q.time_text(&name),
        Kind::Json => q.json_text(&name),
        Kind::Int | Kind::Text => q.push(&name),
    };
}

/// Appends `expr1, expr2, ...` for the entity's default projection.
pub fn push_projection(q: &mut Query, entity: &Table) {
    for (i, name) in entity.projection.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        push_select(q, entity, entity.column(name).expect("projection names are columns"));
    }
}

/// Converts one cell read as `kind` into JSON.
pub fn cell_to_json(kind: Kind, cell: Cell) -> Value {
    match (kind, cell) {
        (_, Cell::Null) => Value::Null,
        (Kind::Int, Cell::Int(i)) => Value::from(i),
        (Kind::Time, Cell::Text(t)) => match timefmt::parse_stored(&t) {
            Some(dt) => Value::String(timefmt::http_date(dt)),
            None => Value::String(t),
        },
        (Kind::Json, Cell::Text(t)) => json_text(&t),
        (_, Cell::Text(t)) => Value::String(t),
        (_, Cell::Int(i)) => Value::from(i),
        (_, Cell::Float(f)) => crate::model::pyjson::float(f),
    }
}

/// Parses JSON text from the database; text that is not JSON is returned as a string rather
/// than failing the whole answer.
pub fn json_text(text: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(mut value) => {
            python_floats(&mut value);
            value
        }
        Err(_) => Value::String(text.to_string()),
    }
}

/// Spells floats as Python does after reading them: PostgreSQL's jsonb prints `1e-20` as
/// `0.00000000000000000001`. Python-written text (SQLite) is left as it is.
fn python_floats(value: &mut Value) {
    match value {
        Value::Number(n) => {
            let text = n.to_string();
            if text.contains(['.', 'e', 'E'])
                && let Ok(f) = text.parse::<f64>()
                && f.is_finite()
                && crate::model::pyjson::python_float_repr(f) != text
            {
                *value = crate::model::pyjson::float(f);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(python_floats),
        Value::Object(map) => map.values_mut().for_each(python_floats),
        _ => {}
    }
}

/// The projected columns of one row as a JSON object (cells in projection order).
pub fn row_object(entity: &Table, cells: &mut impl Iterator<Item = Cell>) -> Map<String, Value> {
    let mut map = Map::new();
    for name in entity.projection {
        let column = entity.column(name).expect("projection names are columns");
        let value = cell_to_json(column.kind, cells.next().unwrap_or(Cell::Null));
        map.insert(name.to_string(), value);
    }
    map
}

/// `node_type|process_type`, or null when both are empty, as the reference computes it.
pub fn full_type(node_type: &Value, process_type: &Value) -> Value {
    let nt = node_type.as_str().unwrap_or("");
    let pt = process_type.as_str().unwrap_or("");
    if nt.is_empty() && pt.is_empty() { Value::Null } else { Value::String(format!("{nt}|{pt}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_numbers_read_as_python_floats() {
        let v = json_text(
            r#"{"a": 0.00000000000000000001, "b": [1.50, 100000000000000000000, 1e-05], "c": 602200000000000000000000.0}"#,
        );
        assert_eq!(
            crate::model::pyjson::to_string(&v),
            "{\"a\":1e-20,\"b\":[1.5,100000000000000000000,1e-05],\"c\":6.022e+23}\n"
        );
    }
}
