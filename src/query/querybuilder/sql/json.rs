//! Values inside JSON columns (`attributes.x`), per dialect: selection, and the comparisons
//! that only JSON values have (type-aware `==`, `<`, ..., `contains`, `has_key`, `of_type`,
//! lengths). This is a column kind of its own: plain columns go through `query::filter::sql`.

use serde_json::Value;

use crate::query::QueryResult;
use crate::storage::db::sql::Param;

use super::super::parse::{Field, Op, field_name};
use super::{Builder, bad};

/// A value inside a JSON column of SQLite: the column and a JSON path, which is either bound
/// text or built from another expression (the `fullkey` of an element found by `json_each`).
#[derive(Debug, Clone)]
pub(super) struct SqliteJson {
    pub(super) root: String,
    base: Option<String>,
    /// Path text: `$."a"."b"` when `base` is `None`, else a suffix such as `."c"[2]`.
    suffix: String,
}

impl SqliteJson {
    pub(super) fn new(root: String, keys: &[String]) -> Self {
        let mut suffix = String::from("$");
        for key in keys {
            push_key(&mut suffix, key);
        }
        Self { root, base: None, suffix }
    }
    pub(super) fn element(root: &str, each_alias: &str) -> Self {
        Self { root: root.to_string(), base: Some(format!("{each_alias}.fullkey")), suffix: String::new() }
    }
    pub(super) fn key(&self, key: &str) -> Self {
        let mut child = self.clone();
        push_key(&mut child.suffix, key);
        child
    }
    pub(super) fn index(&self, index: usize) -> Self {
        let mut child = self.clone();
        child.suffix.push_str(&format!("[{index}]"));
        child
    }
}

/// SQLite path labels are quoted so that any punctuation is literal; inside the quotes SQLite
/// reads JSON escapes, so a backslash is doubled. A NUL would cut the path, and `parse` refuses
/// keys holding one, or a `"` (which the other database paths of the server refuse as well).
fn push_key(path: &mut String, key: &str) {
    debug_assert!(!key.contains(['"', '\0']), "JSON keys are checked when parsed");
    path.push_str(".\"");
    path.push_str(&key.replace('\\', "\\\\"));
    path.push('"');
}

impl Builder<'_> {
    pub(super) fn push_pg_json(&mut self, root: &str, keys: &[String]) {
        if keys.is_empty() {
            self.q.push(root);
            return;
        }
        self.q.push("(").push(root).push(" #> ARRAY[");
        for (n, key) in keys.iter().enumerate() {
            if n > 0 {
                self.q.push(", ");
            }
            self.bind_text(key.clone());
        }
        self.q.push("])");
    }

    pub(super) fn push_sqlite_path(&mut self, value: &SqliteJson) {
        match &value.base {
            None => {
                self.q.bind_text(value.suffix.clone());
            }
            Some(base) if value.suffix.is_empty() => {
                self.q.push(base);
            }
            Some(base) => {
                self.q.push("(").push(base).push(" || ").bind_text(value.suffix.clone()).push(")");
            }
        }
    }

    /// `name(root, path)` on SQLite.
    pub(super) fn sqlite_fn(&mut self, name: &str, value: &SqliteJson) {
        self.q.push(name).push("(").push(&value.root).push(", ");
        self.push_sqlite_path(value);
        self.q.push(")");
    }

    pub(super) fn push_sqlite_json_test(&mut self, field: &Field, op: Op, value: &Value) -> QueryResult<()> {
        let target = SqliteJson::new(self.column_sql(field), &field.path);
        let name = field_name(field);
        match op {
            Op::Eq => {
                self.q.push("COALESCE(");
                self.sqlite_equals(&target, value)?;
                self.q.push(", FALSE)");
            }
            Op::Gt | Op::Lt | Op::Ge | Op::Le => {
                let types = match value {
                    Value::Number(_) => "('integer', 'real')",
                    Value::String(_) => "('text')",
                    Value::Bool(_) => "('true', 'false')",
                    _ => {
                        return Err(bad(format!(
                            "{name} can be compared with >, <, >=, <= only to a number, string or boolean"
                        )));
                    }
                };
                self.q.push("CASE WHEN ");
                self.sqlite_fn("json_type", &target);
                self.q.push(" IN ").push(types).push(" THEN ");
                self.sqlite_fn("json_extract", &target);
                self.q.push(comparison(op));
                self.sqlite_scalar(value)?;
                self.q.push(" ELSE FALSE END");
            }
            Op::Like | Op::ILike => {
                let pattern = value.as_str().unwrap_or_default().to_string();
                self.q.push("CASE WHEN ");
                self.sqlite_fn("json_type", &target);
                self.q.push(" = 'text' THEN ");
                if op == Op::ILike {
                    self.q.push("lower(");
                    self.sqlite_fn("json_extract", &target);
                    self.q.push(") LIKE lower(").bind_text(pattern).push(")");
                } else {
                    self.sqlite_fn("json_extract", &target);
                    self.q.push(" LIKE ").bind_text(pattern);
                }
                self.q.push(" ESCAPE '\\' ELSE FALSE END");
            }
            Op::In => self.sqlite_json_in(&target, value.as_array().map(Vec::as_slice).unwrap_or_default())?,
            Op::Contains => {
                // NULL where the path is missing, so that a negation does not select it.
                self.q.push("CASE WHEN ");
                self.sqlite_fn("json_type", &target);
                self.q.push(" IS NULL THEN NULL ELSE COALESCE(");
                self.sqlite_contains(&target, value)?;
                self.q.push(", FALSE) END");
            }
            Op::HasKey => {
                let each = self.fresh_alias("j");
                self.q.push("EXISTS (SELECT 1 FROM ");
                self.sqlite_fn("json_each", &target);
                self.q.push(&format!(" AS {each} WHERE {each}.key = "));
                self.q.bind_text(value.as_str().unwrap_or_default().to_string());
                self.q.push(")");
            }
            Op::OfType => self.sqlite_json_of_type(&target, value.as_str().unwrap_or_default())?,
            Op::OfLength | Op::Longer | Op::Shorter => {
                self.q.push("CASE WHEN ");
                self.sqlite_fn("json_type", &target);
                self.q.push(" = 'array' THEN ");
                self.sqlite_fn("json_array_length", &target);
                self.q.push(length_comparison(op));
                self.q.bind(Param::Int(value.as_i64().unwrap_or_default()));
                self.q.push(" ELSE FALSE END");
            }
        }
        Ok(())
    }

    /// `in` on SQLite: one typed `IN` list when the items are all numbers or all strings.
    fn sqlite_json_in(&mut self, target: &SqliteJson, items: &[Value]) -> QueryResult<()> {
        let types = if items.iter().all(Value::is_number) {
            Some("('integer', 'real')")
        } else if items.iter().all(Value::is_string) {
            Some("('text')")
        } else {
            None
        };
        match types {
            Some(types) => {
                self.q.push("CASE WHEN ");
                self.sqlite_fn("json_type", target);
                self.q.push(" IN ").push(types).push(" THEN ");
                self.sqlite_fn("json_extract", target);
                self.q.push(" IN (");
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        self.q.push(", ");
                    }
                    self.sqlite_scalar(item)?;
                }
                self.q.push(") ELSE FALSE END");
            }
            None => {
                self.q.push("COALESCE((");
                self.push_joined(items, " OR ", &mut |b, item| b.sqlite_equals(target, item))?;
                self.q.push("), FALSE)");
            }
        }
        Ok(())
    }

    /// `of_type` on SQLite (false, not NULL, where the path is missing).
    fn sqlite_json_of_type(&mut self, target: &SqliteJson, wanted: &str) -> QueryResult<()> {
        self.q.push("COALESCE(");
        if wanted == "null" {
            self.q.push("(");
            self.sqlite_fn("json_type", target);
            self.q.push(" = 'null' OR ");
            self.sqlite_fn("json_type", target);
            self.q.push(" IS NULL)");
        } else {
            let types = match wanted {
                "object" => "('object')",
                "array" => "('array')",
                "string" => "('text')",
                "number" => "('integer', 'real')",
                "boolean" => "('true', 'false')",
                other => return Err(bad(format!("'{other}' is not a JSON type"))),
            };
            self.sqlite_fn("json_type", target);
            self.q.push(" IN ").push(types);
        }
        self.q.push(", FALSE)");
        Ok(())
    }

    /// A scalar bound for comparison with `json_extract` (booleans are 1/0 there).
    pub(super) fn sqlite_scalar(&mut self, value: &Value) -> QueryResult<()> {
        match value {
            Value::Number(n) => self.bind_number(n)?,
            Value::String(s) => {
                self.q.bind_text(s.clone());
            }
            Value::Bool(b) => {
                self.q.bind(Param::Int(*b as i64));
            }
            _ => return Err(bad("expected a number, string or boolean")),
        }
        Ok(())
    }

    /// Structural equality of the value at `target` with `value` (NULL where the path is
    /// missing; callers wrap it).
    pub(super) fn sqlite_equals(&mut self, target: &SqliteJson, value: &Value) -> QueryResult<()> {
        match value {
            Value::Null => {
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'null'");
            }
            Value::Bool(b) => {
                self.sqlite_fn("json_type", target);
                self.q.push(if *b { " = 'true'" } else { " = 'false'" });
            }
            Value::Number(_) | Value::String(_) => {
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(if value.is_number() { " IN ('integer', 'real') AND " } else { " = 'text' AND " });
                self.sqlite_fn("json_extract", target);
                self.q.push(" = ");
                self.sqlite_scalar(value)?;
                self.q.push(")");
            }
            Value::Array(items) => {
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'array' AND ");
                self.sqlite_fn("json_array_length", target);
                self.q.push(" = ").bind(Param::Int(items.len() as i64));
                let indexed: Vec<(usize, &Value)> = items.iter().enumerate().collect();
                if !indexed.is_empty() {
                    self.q.push(" AND ");
                    self.push_joined(&indexed, " AND ", &mut |b, (i, item)| b.sqlite_equals(&target.index(*i), item))?;
                }
                self.q.push(")");
            }
            Value::Object(map) => {
                let each = self.fresh_alias("j");
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'object' AND (SELECT count(*) FROM ");
                self.sqlite_fn("json_each", target);
                self.q.push(&format!(" AS {each}) = ")).bind(Param::Int(map.len() as i64));
                let entries: Vec<(&String, &Value)> = map.iter().collect();
                if !entries.is_empty() {
                    self.q.push(" AND ");
                    self.push_joined(&entries, " AND ", &mut |b, (key, item)| b.sqlite_equals(&target.key(key), item))?;
                }
                self.q.push(")");
            }
        }
        Ok(())
    }

    /// JSON containment as AiiDA's SQLite `json_contains` defines it: objects contain objects
    /// key by key, arrays contain arrays element by element (each wanted element equal to,
    /// or containing, some element), scalars are compared.
    pub(super) fn sqlite_contains(&mut self, target: &SqliteJson, value: &Value) -> QueryResult<()> {
        match value {
            Value::Object(map) => {
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'object'");
                let entries: Vec<(&String, &Value)> = map.iter().collect();
                if !entries.is_empty() {
                    self.q.push(" AND ");
                    self.push_joined(&entries, " AND ", &mut |b, (key, item)| {
                        b.sqlite_contains(&target.key(key), item)
                    })?;
                }
                self.q.push(")");
            }
            Value::Array(items) => {
                self.q.push("(");
                self.sqlite_fn("json_type", target);
                self.q.push(" = 'array'");
                if !items.is_empty() {
                    self.q.push(" AND ");
                    self.push_joined(items, " AND ", &mut |b, item| {
                        let each = b.fresh_alias("j");
                        b.q.push("EXISTS (SELECT 1 FROM ");
                        b.sqlite_fn("json_each", target);
                        b.q.push(&format!(" AS {each} WHERE "));
                        b.sqlite_contains(&SqliteJson::element(&target.root, &each), item)?;
                        b.q.push(")");
                        Ok(())
                    })?;
                }
                self.q.push(")");
            }
            scalar => self.sqlite_equals(target, scalar)?,
        }
        Ok(())
    }

    /// `>`, `<`, `>=`, `<=` on PostgreSQL: only values of the same JSON type compare.
    fn pg_json_compare(&mut self, root: &str, keys: &[String], name: &str, op: Op, value: &Value) -> QueryResult<()> {
        let typeof_is = |b: &mut Self, t: &'static str| {
            b.q.push("jsonb_typeof(");
            b.push_pg_json(root, keys);
            b.q.push(") = '").push(t).push("'");
        };
        let text_of = |b: &mut Self| {
            b.q.push("(");
            b.push_pg_json(root, keys);
            b.q.push(" #>> '{}')");
        };
        self.q.push("CASE WHEN ");
        match value {
            Value::Number(n) => {
                typeof_is(self, "number");
                self.q.push(" THEN CAST(");
                text_of(self);
                self.q.push(" AS numeric)").push(comparison(op));
                self.bind_number(n)?;
            }
            Value::String(s) => {
                typeof_is(self, "string");
                self.q.push(" THEN ");
                text_of(self);
                self.q.push(comparison(op));
                self.bind_text(s.clone());
            }
            Value::Bool(b) => {
                // 'false' < 'true' as text, as false < true.
                typeof_is(self, "boolean");
                self.q.push(" THEN ");
                text_of(self);
                self.q.push(comparison(op));
                self.bind_text(b.to_string());
            }
            _ => {
                return Err(bad(format!(
                    "{name} can be compared with >, <, >=, <= only to a number, string or boolean"
                )));
            }
        }
        self.q.push(" ELSE FALSE END");
        Ok(())
    }

    pub(super) fn push_pg_json_test(&mut self, field: &Field, op: Op, value: &Value) -> QueryResult<()> {
        let root = self.column_sql(field);
        let keys = field.path.clone();
        let name = field_name(field);
        let typeof_is = |b: &mut Self, t: &'static str| {
            b.q.push("jsonb_typeof(");
            b.push_pg_json(&root, &keys);
            b.q.push(") = '").push(t).push("'");
        };
        let text_of = |b: &mut Self| {
            b.q.push("(");
            b.push_pg_json(&root, &keys);
            b.q.push(" #>> '{}')");
        };
        match op {
            Op::Eq => {
                self.q.push("COALESCE(");
                self.push_pg_json(&root, &keys);
                self.q.push(" = ");
                self.bind_jsonb(value);
                self.q.push(", FALSE)");
            }
            Op::Gt | Op::Lt | Op::Ge | Op::Le => self.pg_json_compare(&root, &keys, &name, op, value)?,
            Op::Like | Op::ILike => {
                self.q.push("CASE WHEN ");
                typeof_is(self, "string");
                self.q.push(" THEN ");
                text_of(self);
                self.q.push(if op == Op::ILike { " ILIKE " } else { " LIKE " });
                self.bind_text(value.as_str().unwrap_or_default().to_string());
                self.q.push(" ESCAPE '\\' ELSE FALSE END");
            }
            Op::In => {
                self.q.push("COALESCE(");
                self.push_pg_json(&root, &keys);
                self.q.push(" IN (");
                for (n, item) in value.as_array().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
                    if n > 0 {
                        self.q.push(", ");
                    }
                    self.bind_jsonb(item);
                }
                self.q.push("), FALSE)");
            }
            Op::Contains => {
                self.q.push("(");
                self.push_pg_json(&root, &keys);
                self.q.push(" @> ");
                self.bind_jsonb(value);
                self.q.push(")");
            }
            Op::HasKey => {
                self.q.push("jsonb_exists(");
                self.push_pg_json(&root, &keys);
                self.q.push(", ");
                self.bind_text(value.as_str().unwrap_or_default().to_string());
                self.q.push(")");
            }
            Op::OfType => {
                // The SQL text holds only these constants, whatever the client sent.
                let wanted = match value.as_str().unwrap_or_default() {
                    "object" => "object",
                    "array" => "array",
                    "string" => "string",
                    "number" => "number",
                    "boolean" => "boolean",
                    "null" => "null",
                    other => return Err(bad(format!("'{other}' is not a JSON type"))),
                };
                if wanted == "null" {
                    self.q.push("(");
                    typeof_is(self, "null");
                    self.q.push(" OR jsonb_typeof(");
                    self.push_pg_json(&root, &keys);
                    self.q.push(") IS NULL)");
                } else {
                    typeof_is(self, wanted);
                }
            }
            Op::OfLength | Op::Longer | Op::Shorter => {
                self.q.push("CASE WHEN ");
                typeof_is(self, "array");
                self.q.push(" THEN jsonb_array_length(");
                self.push_pg_json(&root, &keys);
                self.q.push(")").push(length_comparison(op));
                self.bind_int(value.as_i64().unwrap_or_default());
                self.q.push(" ELSE FALSE END");
            }
        }
        Ok(())
    }
}

fn comparison(op: Op) -> &'static str {
    match op {
        Op::Eq => " = ",
        Op::Gt => " > ",
        Op::Lt => " < ",
        Op::Ge => " >= ",
        Op::Le => " <= ",
        _ => unreachable!("not a comparison"),
    }
}

fn length_comparison(op: Op) -> &'static str {
    match op {
        Op::OfLength => " = ",
        Op::Longer => " > ",
        _ => " < ",
    }
}
