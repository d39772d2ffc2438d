//! `order_by`.

use super::*;

pub(super) fn parse_order_by(spec: &OValue, tags: &Tags, query: &QbQuery) -> QueryResult<Vec<OrderItem>> {
    let specs: Vec<&OValue> = match spec {
        OValue::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for spec in specs {
        let Some(entries) = spec.as_object() else {
            return Err(bad(format!(
                "invalid order_by entry {}: expecting an object like {{tag: [field, ...]}}",
                spec.show()
            )));
        };
        for (tag, items) in entries {
            let target = tags.require(tag, "order_by")?;
            let table = table_or_error(query, target, tag, "order by")?;
            let items: Vec<&OValue> = match items {
                OValue::Array(list) => list.iter().collect(),
                other => vec![other],
            };
            for item in items {
                let pairs: Vec<(String, OValue)> = match item {
                    OValue::String(name) => vec![(name.clone(), OValue::Object(Vec::new()))],
                    OValue::Object(entries) => entries.clone(),
                    other => {
                        return Err(bad(format!("cannot order by {}; give a column name", other.show())));
                    }
                };
                for (name, order_spec) in pairs {
                    let mut desc = false;
                    let mut cast = None;
                    match &order_spec {
                        OValue::String(order) => desc = parse_direction(order)?,
                        OValue::Object(keys) => {
                            for (key, value) in keys {
                                let text = value.as_str().ok_or_else(|| {
                                    bad(format!("order_by '{name}': '{key}' must be a string, not {}", value.show()))
                                })?;
                                match key.as_str() {
                                    "order" => desc = parse_direction(text)?,
                                    "cast" => cast = Some(parse_cast(text)?),
                                    other => {
                                        return Err(bad(format!(
                                            "'{other}' is not a valid key of an order specification; valid: cast, order"
                                        )));
                                    }
                                }
                            }
                        }
                        other => {
                            return Err(bad(format!(
                                "order_by '{name}': expecting 'asc', 'desc' or {{\"order\": ..., \"cast\": ...}}, not {}",
                                other.show()
                            )));
                        }
                    }
                    if out.len() >= MAX_ORDER {
                        return Err(bad(format!(
                            "'order_by' has more than {MAX_ORDER} items; at most {MAX_ORDER} are accepted"
                        )));
                    }
                    let field = resolve_visible_field(target, table, &name, tag)?;
                    if !field.path.is_empty() && cast.is_none() {
                        return Err(bad(format!(
                            "To order_by '{name}', the value has to be cast, but no 'cast' key has been specified (f, i, b, t, j or d)."
                        )));
                    }
                    let cast = if field.is_json() { cast } else { None };
                    out.push(OrderItem { field, desc, cast });
                }
            }
        }
    }
    Ok(out)
}

pub(super) fn parse_direction(text: &str) -> QueryResult<bool> {
    match text {
        "asc" => Ok(false),
        "desc" => Ok(true),
        other => Err(bad(format!("'{other}' is not a valid order; valid orders are: asc, desc"))),
    }
}
