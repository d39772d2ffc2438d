//! Query-string filters turned into SQL conditions, with every value bound as a parameter.

use chrono::{Duration, Utc};

use crate::http::error::{ApiError, ApiResult};
use crate::http::querystring::{DateTimeValue, Op, Value};
use crate::query::schema::{Entity, Kind};
use crate::storage::db::sql::{Dialect, Param, Query, escape_like};

use super::params::{Filter, display};

/// Appends ` AND (<conditions of filter>)` for one query-string key.
pub fn push_filter(q: &mut Query, entity: &Entity, filter: &Filter) -> ApiResult<()> {
    let column = entity.usable_column(&filter.key).map_err(ApiError::BadRequest)?;
    let sql_column = entity.qualified(column.name);
    for (op, value) in &filter.conditions {
        q.push(" AND ");
        push_condition(q, &sql_column, column.kind, column.name, *op, value)?;
    }
    Ok(())
}

/// One `<column> <op> <value>` condition.
pub fn push_condition(q: &mut Query, column: &str, kind: Kind, name: &str, op: Op, value: &Value) -> ApiResult<()> {
    if kind == Kind::Json {
        return Err(ApiError::bad_request(format!(
            "{name} is a JSON column and cannot be filtered in the query string; use POST /querybuilder"
        )));
    }
    match op {
        Op::In | Op::NotIn => {
            let Value::List(items) = value else {
                return Err(ApiError::bad_request(format!(
                    "the operator {} needs a list of values (a,b,...), got {}",
                    op.as_str(),
                    display(value)
                )));
            };
            // On PostgreSQL an integer column cannot meet a text value; in SQLite it never
            // equals one, so such items drop out.
            let items: Vec<&Value> = items.iter().filter(|v| !int_vs_text(q.dialect, kind, v)).collect();
            if items.is_empty() {
                if op == Op::In {
                    q.push("1 = 0");
                } else {
                    q.push(column).push(" IS NOT NULL");
                }
                return Ok(());
            }
            let native = native_uuid(q.dialect, kind, items.iter().copied());
            push_compared_column(q, column, kind, native);
            q.push(if op == Op::In { " IN (" } else { " NOT IN (" });
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                push_compared_value(q, kind, name, item, native)?;
            }
            q.push(")");
        }
        Op::Like | Op::ILike => {
            let Value::Str(pattern) = value else {
                return Err(ApiError::bad_request(format!(
                    "Value for operator {} has to be a string (you gave {})",
                    op.as_str(),
                    display(value)
                )));
            };
            push_like(q, column, kind, op == Op::ILike, pattern);
        }
        _ => {
            if let Value::List(_) = value {
                return Err(ApiError::bad_request(format!(
                    "the operator {} takes a single value; use =in= for a list",
                    op.as_str()
                )));
            }
            if let (Kind::Time, Value::DateTime(dt), Op::Eq) = (kind, value, op) {
                // A date (or hour, minute, second) means the whole interval it names.
                let step = match dt.precision {
                    1 => Duration::days(1),
                    2 => Duration::hours(1),
                    3 => Duration::minutes(1),
                    4 => Duration::seconds(1),
                    _ => return Err(ApiError::bad_request("The datetime resolution is not valid.")),
                };
                let start = dt.datetime.with_timezone(&Utc);
                q.push("(");
                push_column(q, column, kind);
                q.push(" >= ");
                push_time(q, start)?;
                q.push(" AND ");
                push_column(q, column, kind);
                q.push(" < ");
                push_time(q, start + step)?;
                q.push(")");
                return Ok(());
            }
            if int_vs_text(q.dialect, kind, value) {
                // SQLite orders every number before every text (NULL compares to nothing).
                match op {
                    Op::Ne | Op::Lt | Op::Le => q.push(column).push(" IS NOT NULL"),
                    _ => q.push("1 = 0"),
                };
                return Ok(());
            }
            let native = native_uuid(q.dialect, kind, std::iter::once(value));
            push_compared_column(q, column, kind, native);
            q.push(match op {
                Op::Eq => " = ",
                Op::Ne => " <> ",
                Op::Gt => " > ",
                Op::Ge => " >= ",
                Op::Lt => " < ",
                Op::Le => " <= ",
                _ => unreachable!("handled above"),
            });
            push_compared_value(q, kind, name, value, native)?;
        }
    }
    Ok(())
}

fn push_column(q: &mut Query, column: &str, kind: Kind) {
    match kind {
        // PostgreSQL compares uuid with uuid; SQLite stores the text form.
        Kind::Uuid => q.uuid_text(column),
        _ => q.push(column),
    };
}

/// The column on the left of a comparison. PostgreSQL compares a uuid natively when every
/// value is a canonical UUID (same order as the text, and the index is used); otherwise as
/// text in byte order, as SQLite does.
fn push_compared_column(q: &mut Query, column: &str, kind: Kind, native_uuid: bool) {
    if native_uuid {
        q.push(column);
    } else {
        push_column(q, column, kind);
        if kind == Kind::Uuid && q.dialect == Dialect::Postgres {
            q.push(" COLLATE \"C\"");
        }
    }
}

fn push_compared_value(q: &mut Query, kind: Kind, name: &str, value: &Value, native_uuid: bool) -> ApiResult<()> {
    match value {
        Value::Str(s) if native_uuid => {
            q.push("CAST(").bind_text(s.clone()).push(" AS uuid)");
            Ok(())
        }
        _ => push_value(q, kind, name, value),
    }
}

fn native_uuid<'a>(dialect: Dialect, kind: Kind, mut values: impl Iterator<Item = &'a Value>) -> bool {
    dialect == Dialect::Postgres
        && kind == Kind::Uuid
        && values.all(|v| matches!(v, Value::Str(s) if is_canonical_uuid(s)))
}

/// Lowercase hyphenated, as AiiDA stores UUIDs in SQLite and PostgreSQL prints them.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// Whether `value` is text that SQLite would compare with an integer column as text.
fn int_vs_text(dialect: Dialect, kind: Kind, value: &Value) -> bool {
    dialect == Dialect::Postgres && kind == Kind::Int && matches!(value, Value::Str(s) if numeric_text(s).is_none())
}

/// A number written as text, as SQLite's numeric affinity reads it.
fn numeric_text(s: &str) -> Option<Param> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(Param::Int(i));
    }
    let number_chars = s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if number_chars && s.bytes().any(|b| b.is_ascii_digit()) {
        return s.parse::<f64>().ok().filter(|f| f.is_finite()).map(Param::Float);
    }
    None
}

fn push_like(q: &mut Query, column: &str, kind: Kind, insensitive: bool, pattern: &str) {
    match (q.dialect, insensitive) {
        (Dialect::Sqlite, true) => {
            q.push("lower(").push(column).push(") LIKE lower(").bind_text(pattern).push(")");
        }
        (Dialect::Sqlite, false) => {
            q.push(column).push(" LIKE ").bind_text(pattern);
        }
        (Dialect::Postgres, insensitive) => {
            // LIKE needs text: the form SQLite stores (and matches) for each kind.
            match kind {
                Kind::Int => {
                    q.push(column).push("::text");
                }
                Kind::Time => {
                    q.time_text(column);
                }
                _ => push_column(q, column, kind),
            }
            q.push(if insensitive { " ILIKE " } else { " LIKE " }).bind_text(pattern);
        }
    }
    q.push(" ESCAPE '\\'");
}

/// Binds `value` so that it compares with a column of `kind` as the reference compares it.
fn push_value(q: &mut Query, kind: Kind, name: &str, value: &Value) -> ApiResult<()> {
    match (kind, value) {
        // PostgreSQL cannot compare int with text: numbers in text become numbers, as SQLite's
        // column affinity makes them.
        (Kind::Int, Value::Str(s)) if q.dialect == Dialect::Postgres => match numeric_text(s) {
            Some(param) => q.bind(param),
            None => q.bind_text(s.clone()),
        },
        (Kind::Int, Value::Int(i)) => q.bind(Param::Int(*i)),
        (Kind::Int, Value::Float(f)) => q.bind(Param::Float(*f)),
        (Kind::Int, Value::Bool(b)) => q.bind(Param::Int(*b as i64)),
        (Kind::Int, Value::Str(s)) => match s.trim().parse::<i64>() {
            Ok(i) => q.bind(Param::Int(i)),
            // SQLite orders every number before every text, which is what the reference
            // answers (`id="abc"` matches nothing, `id!="abc"` everything).
            Err(_) => q.bind_text(s.clone()),
        },
        // Text columns compare with the text form of a number, as SQLite's column affinity does.
        (Kind::Text | Kind::Uuid, Value::Str(s)) => q.bind_text(s.clone()),
        (Kind::Text | Kind::Uuid, Value::Int(i)) => q.bind_text(i.to_string()),
        (Kind::Text | Kind::Uuid, Value::Float(f)) => q.bind_text(crate::model::pyjson::python_float_repr(*f)),
        (Kind::Text | Kind::Uuid, Value::Bool(b)) => q.bind_text(if *b { "1" } else { "0" }),
        (Kind::Time, Value::DateTime(dt)) => {
            push_datetime(q, dt)?;
            q
        }
        (_, other) => {
            return Err(ApiError::bad_request(format!(
                "{name} cannot be compared with {}{}",
                display(other),
                if kind == Kind::Time { "; write a date such as 2024-05-01 or 2024-05-01T10:00:00+02:00" } else { "" }
            )));
        }
    };
    Ok(())
}

fn push_datetime(q: &mut Query, dt: &DateTimeValue) -> ApiResult<()> {
    push_time(q, dt.datetime.with_timezone(&Utc))
}

/// Binds an instant in the storage's own representation (naive UTC text on SQLite).
fn push_time(q: &mut Query, t: chrono::DateTime<Utc>) -> ApiResult<()> {
    use chrono::Datelike;
    // Stored times are four-digit years; an offset can push 0001 or 9999 out of that range.
    if !(1..=9999).contains(&t.year()) {
        return Err(ApiError::bad_request("the datetime is outside the years 0001 to 9999 once converted to UTC"));
    }
    let text = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    match q.dialect {
        Dialect::Sqlite => q.bind_text(text),
        Dialect::Postgres => q.push("CAST(").bind_text(format!("{text}+00")).push(" AS timestamptz)"),
    };
    Ok(())
}

/// The node_type/process_type conditions a full type stands for (`node_type|process_type`,
/// each part optionally ending in `%`).
pub fn push_full_type(q: &mut Query, node_type_col: &str, process_type_col: &str, full_type: &str) -> ApiResult<()> {
    let (node_type, process_type) = split_full_type(full_type).map_err(ApiError::bad_request)?;
    q.push(" AND ");
    match node_type.strip_suffix('%') {
        Some(prefix) => {
            q.push(node_type_col).push(" LIKE ").bind_text(format!("{}%", escape_like(prefix))).push(" ESCAPE '\\'");
        }
        None => {
            q.push(node_type_col).push(" = ").bind_text(node_type);
        }
    }
    match process_type.strip_suffix('%') {
        Some("") => {}
        Some(prefix) => {
            q.push(" AND ")
                .push(process_type_col)
                .push(" LIKE ")
                .bind_text(format!("{}%", escape_like(prefix)))
                .push(" ESCAPE '\\'");
        }
        None if process_type.is_empty() => {
            q.push(" AND (").push(process_type_col).push(" = '' OR ").push(process_type_col).push(" IS NULL)");
        }
        None => {
            q.push(" AND ").push(process_type_col).push(" = ").bind_text(process_type);
        }
    }
    Ok(())
}

/// Validates a full type and splits it into its two parts.
pub fn split_full_type(full_type: &str) -> Result<(&str, &str), String> {
    let mut parts = full_type.split('|');
    let (Some(node_type), Some(process_type)) = (parts.next(), parts.next()) else {
        return Err(format!("full type `{full_type}` does not include the required concatenator symbol `|`."));
    };
    if parts.next().is_some() {
        return Err(format!("full type `{full_type}` includes the concatenator symbol `|` more than once."));
    }
    for part in [node_type, process_type] {
        if part.matches('%').count() > 1 {
            return Err(format!("full type component `{part}` contained more than one like-operator character"));
        }
        if part.contains('%') && !part.ends_with('%') {
            return Err(format!("like-operator character in full type component `{part}` is not at the end"));
        }
    }
    Ok((node_type, process_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::schema::NODE;

    fn filter(key: &str, op: Op, value: Value) -> Filter {
        Filter { key: key.into(), conditions: vec![(op, value)] }
    }

    #[test]
    fn values_are_bound() {
        let mut q = Query::new(Dialect::Sqlite);
        push_filter(&mut q, &NODE, &filter("label", Op::Eq, Value::Str("x' OR 1=1".into()))).unwrap();
        assert_eq!(q.sql, " AND n.label = ?1");
        assert_eq!(q.params, vec![Param::Text("x' OR 1=1".into())]);
    }

    #[test]
    fn aliases_and_unknown_columns() {
        let mut q = Query::new(Dialect::Sqlite);
        push_filter(&mut q, &NODE, &filter("pk", Op::Gt, Value::Int(3))).unwrap();
        assert_eq!(q.sql, " AND n.id > ?1");
        let err = push_filter(&mut q, &NODE, &filter("bogus", Op::Eq, Value::Int(1))).unwrap_err();
        assert!(err.to_string().contains("valid columns are"), "{err}");
    }

    #[test]
    fn operators_check_their_values() {
        let mut q = Query::new(Dialect::Sqlite);
        assert!(push_filter(&mut q, &NODE, &filter("id", Op::In, Value::Int(1))).is_err());
        assert!(push_filter(&mut q, &NODE, &filter("id", Op::Like, Value::Int(1))).is_err());
        assert!(push_filter(&mut q, &NODE, &filter("attributes", Op::Eq, Value::Int(1))).is_err());
        assert!(push_filter(&mut q, &NODE, &filter("ctime", Op::Gt, Value::Int(1))).is_err());
    }

    #[test]
    fn full_types() {
        let mut q = Query::new(Dialect::Sqlite);
        push_full_type(&mut q, "nt", "pt", "data.core.dict.Dict.|").unwrap();
        assert_eq!(q.sql, " AND nt = ?1 AND (pt = '' OR pt IS NULL)");
        let mut q = Query::new(Dialect::Sqlite);
        push_full_type(&mut q, "nt", "pt", "process.calculation.%|%").unwrap();
        assert_eq!(q.sql, " AND nt LIKE ?1 ESCAPE '\\'");
        assert_eq!(q.params, vec![Param::Text("process.calculation.%".into())]);
        let mut q = Query::new(Dialect::Sqlite);
        push_full_type(&mut q, "nt", "pt", "node_type%|process_type%").unwrap();
        assert_eq!(q.params, vec![Param::Text("node\\_type%".into()), Param::Text("process\\_type%".into())]);
        assert!(split_full_type("bogus").is_err());
        assert!(split_full_type("a|b|c").is_err());
        assert!(split_full_type("a%b|").is_err());
        assert!(split_full_type("a%%|").is_err());
    }
}
