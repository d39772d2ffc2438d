//! Result rows → the reference's answer: `{tag: [row, ...]}` for each answered tag, each row
//! keyed by projection name, node rows with their `full_type`.

#[cfg(test)]
use serde_json::Map;
use serde_json::Value;

use crate::http::render::{cell_to_json, json_text};
use crate::model::pyjson;
use crate::model::time as timefmt;
use crate::query::tables::Kind;
use crate::storage::db::{Cell, Dialect, Row};

use crate::query::querybuilder::parse::{Cast, Func, Projected, QbQuery};

/// The `data` of the answer for `rows` (cells in the order of `sql::select_items`), as a
/// tree: what [`write_data`] writes, kept to check it.
#[cfg(test)]
pub fn data(qb: &QbQuery, rows: Vec<Row>, dialect: Dialect) -> Value {
    let answered: Vec<bool> = qb.projections.iter().map(|p| qb.answer_tags.contains(&p.tag)).collect();
    let mut lists: Vec<Vec<Value>> = qb.projections.iter().map(|_| Vec::with_capacity(rows.len())).collect();
    for row in rows {
        let mut cells = row.into_iter();
        for (n, projection) in qb.projections.iter().enumerate() {
            let mut object = Map::new();
            for item in &projection.items {
                let value = decode(item, cells.next().unwrap_or(Cell::Null), dialect);
                object.insert(item.key.clone(), value);
            }
            if answered[n] {
                add_full_type(&mut object);
                lists[n].push(Value::Object(object));
            }
        }
    }
    let mut data = Map::new();
    for (n, projection) in qb.projections.iter().enumerate() {
        if answered[n] {
            data.insert(projection.tag.clone(), Value::Array(std::mem::take(&mut lists[n])));
        }
    }
    Value::Object(data)
}

/// The `data` of the answer for `rows`, written into `out` as `pyjson` spells it: the same
/// text as `pyjson::write_value(out, &data(..))` without building the tree of the whole answer
/// (each row is written as soon as it is decoded).
pub fn write_data(out: &mut String, qb: &QbQuery, rows: Vec<Row>, dialect: Dialect) {
    // The answered projections in the order of their tags; for a tag given twice the last one
    // counts, as a map insert would have it.
    let mut answered: Vec<usize> =
        (0..qb.projections.len()).filter(|&n| qb.answer_tags.contains(&qb.projections[n].tag)).collect();
    answered.sort_by(|&a, &b| qb.projections[a].tag.cmp(&qb.projections[b].tag).then(b.cmp(&a)));
    answered.dedup_by(|later, earlier| qb.projections[*later].tag == qb.projections[*earlier].tag);
    // One text per answered projection, in projection order; rows go straight into them.
    let mut lists: Vec<Option<String>> = qb.projections.iter().map(|_| None).collect();
    for &n in &answered {
        lists[n] = Some(String::with_capacity(if answered.len() == 1 { rows.len() * 256 } else { 1024 }));
    }
    let mut object: Vec<(&str, Value)> = Vec::new();
    for row in rows {
        let mut cells = row.into_iter();
        for (n, projection) in qb.projections.iter().enumerate() {
            object.clear();
            for item in &projection.items {
                let value = decode(item, cells.next().unwrap_or(Cell::Null), dialect);
                match object.iter_mut().find(|(key, _)| *key == item.key) {
                    Some(slot) => slot.1 = value,
                    None => object.push((&item.key, value)),
                }
            }
            let Some(list) = &mut lists[n] else { continue };
            set_full_type(&mut object);
            object.sort_by(|a, b| a.0.cmp(b.0));
            list.push(if list.is_empty() { '[' } else { ',' });
            list.push('{');
            for (i, (key, value)) in object.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                pyjson::write_str(list, key);
                list.push(':');
                pyjson::write_value(list, value);
            }
            list.push('}');
        }
    }
    out.push('{');
    for (i, &n) in answered.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        pyjson::write_str(out, &qb.projections[n].tag);
        out.push(':');
        match lists[n].take() {
            Some(list) if !list.is_empty() => {
                out.push_str(&list);
                out.push(']');
            }
            _ => out.push_str("[]"),
        }
    }
    out.push('}');
}

/// `node_type|process_type` when either is set (a row without either has no `full_type`), on a
/// row that is a list of keys and values.
fn set_full_type(object: &mut Vec<(&str, Value)>) {
    let part = |object: &Vec<(&str, Value)>, name: &str| {
        object.iter().find(|(key, _)| *key == name).and_then(|(_, v)| v.as_str()).unwrap_or("").to_string()
    };
    let (node_type, process_type) = (part(object, "node_type"), part(object, "process_type"));
    object.retain(|(key, _)| *key != "full_type");
    if !node_type.is_empty() || !process_type.is_empty() {
        object.push(("full_type", Value::String(format!("{node_type}|{process_type}"))));
    }
}

/// `node_type|process_type` when either is set; rows without either have no `full_type`.
#[cfg(test)]
fn add_full_type(object: &mut Map<String, Value>) {
    let part = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let (node_type, process_type) = (part("node_type"), part("process_type"));
    if !node_type.is_empty() || !process_type.is_empty() {
        object.insert("full_type".into(), Value::String(format!("{node_type}|{process_type}")));
    } else {
        object.remove("full_type");
    }
}

fn decode(item: &Projected, cell: Cell, dialect: Dialect) -> Value {
    let kind = item.field.column.kind;
    match item.func {
        Some(Func::Count) => cell_to_json(Kind::Int, cell),
        Some(Func::Max | Func::Min) => cell_to_json(kind, cell),
        None if item.field.path.is_empty() && kind != Kind::Json => cell_to_json(kind, cell),
        None => {
            let mut value = match cell {
                Cell::Null => Value::Null,
                Cell::Text(text) => json_text(&text),
                other => cell_to_json(Kind::Json, other),
            };
            if dialect.json_big_ints_are_floats()
                && let Value::Number(n) = &value
                && n.as_i64().is_none()
                && !n.to_string().contains(['.', 'e', 'E'])
                && let Some(f) = n.as_f64()
            {
                value = crate::model::pyjson::float(f);
            }
            match item.cast {
                Some(cast) => apply_cast(value, cast),
                None => value,
            }
        }
    }
}

/// The value converted as the cast asks; what cannot be converted becomes null.
fn apply_cast(value: Value, cast: Cast) -> Value {
    match cast {
        Cast::Json => value,
        Cast::Float => match &value {
            Value::Number(n) => n.as_f64().map(crate::model::pyjson::float).unwrap_or(Value::Null),
            Value::Bool(b) => crate::model::pyjson::float(if *b { 1.0 } else { 0.0 }),
            Value::String(s) => s.trim().parse::<f64>().map(crate::model::pyjson::float).unwrap_or(Value::Null),
            _ => Value::Null,
        },
        Cast::Int => {
            let from_float = |f: f64| {
                let t = f.trunc();
                if t.is_finite() && t.abs() < 9.2e18 { Value::from(t as i64) } else { Value::Null }
            };
            match &value {
                Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::from(i),
                    None => n.as_f64().map(from_float).unwrap_or(Value::Null),
                },
                Value::Bool(b) => Value::from(*b as i64),
                Value::String(s) => match (s.trim().parse::<i64>(), s.trim().parse::<f64>()) {
                    (Ok(i), _) => Value::from(i),
                    (_, Ok(f)) => from_float(f),
                    _ => Value::Null,
                },
                _ => Value::Null,
            }
        }
        Cast::Bool => match &value {
            Value::Bool(b) => Value::Bool(*b),
            Value::Number(n) => Value::Bool(n.as_f64().is_some_and(|f| f != 0.0)),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "on" => Value::Bool(true),
                "false" | "f" | "0" | "no" | "off" => Value::Bool(false),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        Cast::Text => match value {
            Value::Null => Value::Null,
            Value::String(s) => Value::String(s),
            other => Value::String(crate::model::pyjson::to_string(&other).trim_end().to_string()),
        },
        Cast::Date => match &value {
            Value::String(s) => {
                timefmt::parse_client(s).map(|t| Value::String(timefmt::http_date(t))).unwrap_or(Value::Null)
            }
            _ => Value::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn full_type_rules() {
        let mut row = json!({"node_type": "data.core.int.Int.", "process_type": null}).as_object().unwrap().clone();
        add_full_type(&mut row);
        assert_eq!(row["full_type"], "data.core.int.Int.|");
        let mut row = json!({"node_type": "x."}).as_object().unwrap().clone();
        add_full_type(&mut row);
        assert_eq!(row["full_type"], "x.|");
        let mut row = json!({"id": 1, "process_type": null}).as_object().unwrap().clone();
        add_full_type(&mut row);
        assert!(!row.contains_key("full_type"));
    }

    /// The text written row by row is the text of the tree, byte for byte (with the dialect
    /// of an SQLite storage; key order and escaping do not depend on it).
    #[tokio::test(flavor = "multi_thread")]
    async fn written_data_is_the_tree_serialised() {
        let limits = crate::storage::db::DbLimits::default();
        let storage = crate::storage::open(&crate::storage::Source::Demo, limits).await.unwrap();
        let dialect = storage.db.dialect();
        let body = br#"{"path":[{"entity_type":"","orm_base":"node","tag":"n"},{"entity_type":"","orm_base":"node","tag":"m","joining_keyword":"with_incoming","joining_value":"n","edge_tag":"n--m"}],
            "project":{"n":["id","label","node_type","process_type","attributes.x","label"],"m":["uuid","node_type","extras"],"n--m":["label"]}}"#;
        let qb = crate::query::querybuilder::parse::parse_body(body).unwrap();
        let width: usize = qb.projections.iter().map(|p| p.items.len()).sum();
        let cells = [
            Cell::Int(7),
            Cell::Text("caf\u{e9} \"q\" \u{1f600}".into()),
            Cell::Text("data.core.int.Int.".into()),
            Cell::Null,
            Cell::Text("{\"b\": [1, 2.5e-07, \"\\n\"], \"a\": null}".into()),
            Cell::Float(1e16),
            Cell::Text("".into()),
            Cell::Text("process.workflow.".into()),
        ];
        let rows: Vec<Row> =
            (0..5).map(|r| (0..width).map(|c| cells[(r * 3 + c) % cells.len()].clone()).collect()).collect();
        {
            let tree = crate::model::pyjson::to_string(&data(&qb, rows.clone(), dialect));
            let mut text = String::new();
            write_data(&mut text, &qb, rows.clone(), dialect);
            assert_eq!(format!("{text}\n"), tree);
            let mut empty = String::new();
            write_data(&mut empty, &qb, Vec::new(), dialect);
            assert_eq!(format!("{empty}\n"), crate::model::pyjson::to_string(&data(&qb, Vec::new(), dialect)));
        }
    }

    #[test]
    fn casts() {
        assert_eq!(apply_cast(json!(5), Cast::Float), json!(5.0));
        assert_eq!(apply_cast(json!(5.7), Cast::Int), json!(5));
        assert_eq!(apply_cast(json!("12"), Cast::Int), json!(12));
        assert_eq!(apply_cast(json!("x"), Cast::Int), Value::Null);
        assert_eq!(apply_cast(json!(true), Cast::Bool), json!(true));
        assert_eq!(apply_cast(json!([1, "a"]), Cast::Text), json!("[1,\"a\"]"));
        assert_eq!(apply_cast(json!("2024-05-01T10:00:00+02:00"), Cast::Date), json!("Wed, 01 May 2024 08:00:00 GMT"));
    }
}
