//! Projections, and the fields (columns and JSON paths) that projections, filters and orders
//! name.

use super::*;

pub(super) fn parse_projection_spec(spec: &OValue, tag: &str) -> QueryResult<Vec<RawProjection>> {
    let items: Vec<&OValue> = match spec {
        OValue::Array(items) => items.iter().collect(),
        OValue::Null => Vec::new(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            OValue::String(name) => out.push(RawProjection { name: name.clone(), cast: None, func: None }),
            OValue::Object(entries) => {
                for (name, extra) in entries {
                    let Some(extra) = extra.as_object() else {
                        return Err(bad(format!(
                            "projection '{name}' of '{tag}': the value must be an object with 'cast' and/or 'func', not {}",
                            extra.show()
                        )));
                    };
                    let mut projection = RawProjection { name: name.clone(), cast: None, func: None };
                    for (key, value) in extra {
                        let text = value.as_str().ok_or_else(|| {
                            bad(format!(
                                "projection '{name}' of '{tag}': '{key}' must be a string, not {}",
                                value.show()
                            ))
                        })?;
                        match key.as_str() {
                            "cast" => projection.cast = Some(parse_cast(text)?),
                            "func" => {
                                projection.func = Some(match text {
                                    "count" => Func::Count,
                                    "max" => Func::Max,
                                    "min" => Func::Min,
                                    other => {
                                        return Err(bad(format!("invalid function '{other}'; valid: count, max, min")));
                                    }
                                })
                            }
                            other => {
                                return Err(bad(format!(
                                    "'{other}' is not a valid key of a projection; valid: cast, func"
                                )));
                            }
                        }
                    }
                    out.push(projection);
                }
            }
            other => {
                return Err(bad(format!("cannot project {} for '{tag}'; give column names", other.show())));
            }
        }
    }
    Ok(out)
}

pub(super) fn parse_cast(text: &str) -> QueryResult<Cast> {
    Ok(match text {
        "f" => Cast::Float,
        "i" => Cast::Int,
        "b" => Cast::Bool,
        "t" => Cast::Text,
        "j" => Cast::Json,
        "d" => Cast::Date,
        other => {
            return Err(bad(format!(
                "unknown cast '{other}'; valid: f (float), i (integer), b (boolean), t (text), j (JSON), d (date)"
            )));
        }
    })
}

/// `column` or `column.key.key`: the column (resolving aliases) and the JSON path.
pub(super) fn resolve_field(target: Target, table: &Table, name: &str, tag: &str) -> QueryResult<Field> {
    let mut parts = name.split('.');
    let column_name = parts.next().unwrap_or("");
    let path: Vec<String> = parts.map(str::to_string).collect();
    if path.len() > MAX_KEYS {
        return Err(bad(format!(
            "'{}...': a JSON path has at most {MAX_KEYS} keys",
            name.chars().take(40).collect::<String>()
        )));
    }
    for key in &path {
        check_key(key, name)?;
    }
    let column = table.column(column_name).ok_or_else(|| {
        bad(format!(
            "{column_name} is not a column of {} ('{tag}'); valid columns are: {}",
            table.label,
            table.names().join(", ")
        ))
    })?;
    if !path.is_empty() && column.kind != Kind::Json {
        return Err(bad(format!(
            "'{name}': {column_name} of {} is not a JSON column, so it has no keys to follow",
            table.label
        )));
    }
    Ok(Field { target, column, path })
}

/// [`resolve_field`] for filters and `order_by`, which must not reach hidden columns either:
/// a filter on an email address would let a client find it out one character at a time.
pub(super) fn resolve_visible_field(target: Target, table: &Table, name: &str, tag: &str) -> QueryResult<Field> {
    let field = resolve_field(target, table, name, tag)?;
    if table.is_private(field.column.name) {
        return Err(bad(table.private_message));
    }
    Ok(field)
}

pub(super) fn resolve_projections(
    target: Target,
    table: &Table,
    tag: &str,
    raw: &[RawProjection],
) -> QueryResult<Vec<Projected>> {
    if raw.len() > MAX_PROJECTIONS {
        return Err(too_many_projections());
    }
    let mut items: Vec<Projected> = Vec::new();
    let mut push = |item: Projected| {
        if !items.iter().any(|i| i.key == item.key) {
            items.push(item);
        }
    };
    for projection in raw {
        if projection.name == "**" || projection.name == "*" {
            if projection.func.is_some() {
                return Err(bad(format!(
                    "'{}' cannot take a function; apply it to a column such as id",
                    projection.name
                )));
            }
            for column in table.columns {
                if table.is_private(column.name) {
                    continue;
                }
                let field = Field { target, column: *column, path: Vec::new() };
                push(Projected { key: column.name.to_string(), field, cast: None, func: None });
            }
            continue;
        }
        let field = resolve_field(target, table, &projection.name, tag)?;
        if table.is_private(field.column.name) {
            continue;
        }
        // Like AiiDA, a cast applies only to JSON values.
        let cast = if field.is_json() { projection.cast } else { None };
        if projection.func.is_some() && field.is_json() && projection.func != Some(Func::Count) {
            return Err(bad(format!("'{}': max and min apply to plain columns, not JSON values", projection.name)));
        }
        push(Projected { key: projection.name.clone(), field, cast, func: projection.func });
    }
    Ok(items)
}
