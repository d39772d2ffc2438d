//! Typed rows and result cells turned into the JSON the reference returns: dates as RFC 1123,
//! floats as Python spells them.

use serde_json::{Map, Value, json};

use crate::export::{self, NodeInfo};
use crate::model::time as timefmt;
use crate::query::lists::{EntityRow, NodeRow};
use crate::query::nodes::{CommentRow, LinkRow, LogRow, TreeNode};
use crate::query::rows::Timestamp;
use crate::query::tables::Kind;
use crate::storage::db::Cell;

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

/// A timestamp as the reference writes it (RFC 1123 in GMT), or null.
pub fn time_json(time: Option<Timestamp>) -> Value {
    match time {
        None => Value::Null,
        Some(Timestamp::Utc(dt)) => Value::String(timefmt::http_date(dt)),
        Some(Timestamp::Unreadable(text)) => Value::String(text),
    }
}

/// A text column, or null.
pub fn text_json(text: Option<String>) -> Value {
    text.map_or(Value::Null, Value::String)
}

/// An integer column, or null.
pub fn int_json(int: Option<i64>) -> Value {
    int.map_or(Value::Null, Value::from)
}

/// JSON text from the database (see [`json_text`]), or null.
pub fn json_json(text: Option<String>) -> Value {
    text.as_deref().map_or(Value::Null, json_text)
}

/// A dict column (attributes, extras): its object, or an empty one when it is NULL or not an
/// object.
pub fn json_dict(text: Option<&str>) -> Map<String, Value> {
    match text.map(json_text) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// `node_type|process_type`, or null when both are empty, as the reference computes it.
pub fn full_type(node_type: Option<&str>, process_type: Option<&str>) -> Value {
    let nt = node_type.unwrap_or("");
    let pt = process_type.unwrap_or("");
    if nt.is_empty() && pt.is_empty() { Value::Null } else { Value::String(format!("{nt}|{pt}")) }
}

/// The columns of a node row that lists show (attributes and extras are the caller's).
pub fn node_row(row: NodeRow) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("id".into(), Value::from(row.id));
    map.insert("label".into(), text_json(row.label));
    map.insert("node_type".into(), text_json(row.node_type));
    map.insert("process_type".into(), text_json(row.process_type));
    map.insert("ctime".into(), time_json(row.ctime));
    map.insert("mtime".into(), time_json(row.mtime));
    map.insert("uuid".into(), text_json(row.uuid));
    map.insert("user_id".into(), int_json(row.user_id));
    map
}

/// A computer, user or group row as the reference projects it; a node row as [`node_row`].
pub fn entity_row(row: EntityRow) -> Map<String, Value> {
    let mut map = Map::new();
    match row {
        EntityRow::Node(node) => return node_row(node),
        EntityRow::Computer(c) => {
            map.insert("id".into(), Value::from(c.id));
            map.insert("uuid".into(), text_json(c.uuid));
            map.insert("label".into(), text_json(c.label));
            map.insert("hostname".into(), text_json(c.hostname));
            map.insert("description".into(), text_json(c.description));
            map.insert("scheduler_type".into(), text_json(c.scheduler_type));
            map.insert("transport_type".into(), text_json(c.transport_type));
            map.insert("metadata".into(), json_json(c.metadata));
        }
        EntityRow::User(u) => {
            map.insert("id".into(), Value::from(u.id));
            map.insert("first_name".into(), text_json(u.first_name));
            map.insert("last_name".into(), text_json(u.last_name));
            map.insert("institution".into(), text_json(u.institution));
        }
        EntityRow::Group(g) => {
            map.insert("id".into(), Value::from(g.id));
            map.insert("uuid".into(), text_json(g.uuid));
            map.insert("label".into(), text_json(g.label));
            map.insert("type_string".into(), text_json(g.type_string));
            map.insert("time".into(), time_json(g.time));
            map.insert("description".into(), text_json(g.description));
            map.insert("extras".into(), json_json(g.extras));
            map.insert("user_id".into(), int_json(g.user_id));
        }
    }
    map
}

/// A linked node of a link list, with the link columns and its `full_type`.
pub fn link_row(row: LinkRow) -> Map<String, Value> {
    let full_type = full_type(row.node.node_type.as_deref(), row.node.process_type.as_deref());
    let mut map = node_row(row.node);
    map.insert("link_label".into(), text_json(row.link_label));
    map.insert("link_type".into(), text_json(row.link_type));
    map.insert("full_type".into(), full_type);
    map
}

/// A comment as `/nodes/<id>/contents/comments` shows it.
pub fn comment(row: CommentRow) -> Value {
    json!({
        "created_time": time_json(row.ctime),
        "message": text_json(row.content),
        "modified_time": time_json(row.mtime),
        "user": format!("{} {}", row.user_first_name, row.user_last_name),
    })
}

/// A log record as `/processes/<id>/report` shows it.
pub fn log_record(row: LogRow) -> Value {
    json!({
        "dbnode_id": int_json(row.dbnode_id),
        "levelname": text_json(row.levelname),
        "loggername": text_json(row.loggername),
        "message": text_json(row.message),
        "time": time_json(row.time),
    })
}

/// A node of `/nodes/<id>/links/tree` (the root, or a neighbour with its link).
pub fn tree_node(node: TreeNode, link: Option<(Option<String>, Option<String>)>) -> Map<String, Value> {
    let mut object = Map::new();
    if let Some((label, link_type)) = link {
        object.insert("link_label".into(), text_json(label));
        object.insert("link_type".into(), text_json(link_type));
    }
    let attributes = node.attributes.as_deref().map(json_text).unwrap_or_else(|| json!({}));
    let info = NodeInfo {
        id: node.id,
        uuid: node.uuid,
        node_type: node.node_type,
        process_type: node.process_type,
        label: node.label,
        description: String::new(),
        attributes,
        attribute_keys: Vec::new(),
        computer_label: node.computer_label,
    };
    object.insert("ctime".into(), time_json(node.ctime));
    object.insert("description".into(), Value::String(export::description(&info)));
    object.insert("id".into(), Value::from(node.id));
    object.insert("mtime".into(), time_json(node.mtime));
    object.insert("node_label".into(), Value::String(info.label));
    object.insert("node_type".into(), Value::String(info.node_type));
    object.insert("uuid".into(), Value::String(info.uuid));
    object
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
