//! Filters: the and/or/not tree of one tag's filter dict, the operators and the values they
//! take, and the budget of conditions and JSON values of one query.

use super::*;

/// How deep filters may nest (`and`/`or` in `and`/`or`, ...).
pub(super) const MAX_DEPTH: usize = 32;

/// What the conditions of one query have used of [`MAX_TERMS`] and [`MAX_JSON_SCALARS`].
#[derive(Debug, Default)]
pub(super) struct Budget {
    terms: usize,
    scalars: usize,
}

impl Budget {
    /// Counts one more condition.
    fn term(&mut self) -> QueryResult<()> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(bad(format!(
                "the filters hold more than {MAX_TERMS} conditions (operators, and/or/not combinators and the type filters of the path items); at most {MAX_TERMS} are accepted per query"
            )));
        }
        Ok(())
    }

    /// Checks a JSON value compared with `field` (its depth and keys) and counts its values.
    fn json_value(&mut self, value: &Value, field: &str) -> QueryResult<()> {
        self.walk_json(value, field, 0)
    }

    fn walk_json(&mut self, value: &Value, field: &str, depth: usize) -> QueryResult<()> {
        let container = matches!(value, Value::Array(_) | Value::Object(_));
        if container && depth >= MAX_JSON_DEPTH {
            return Err(bad(format!(
                "the value compared with {field} nests arrays and objects more than {MAX_JSON_DEPTH} levels deep; at most {MAX_JSON_DEPTH} are accepted"
            )));
        }
        match value {
            Value::Array(items) if !items.is_empty() => {
                for item in items {
                    self.walk_json(item, field, depth + 1)?;
                }
            }
            Value::Object(map) if !map.is_empty() => {
                for (key, item) in map {
                    check_key(key, field)?;
                    self.walk_json(item, field, depth + 1)?;
                }
            }
            _ => {
                if let Value::Number(n) = value {
                    check_number(n, field)?;
                }
                self.scalars += 1;
                if self.scalars > MAX_JSON_SCALARS {
                    return Err(bad(format!(
                        "the JSON values compared with JSON fields hold more than {MAX_JSON_SCALARS} values in total; at most {MAX_JSON_SCALARS} are accepted per query"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A number compared with a JSON field must be one a double-precision float can hold:
/// PostgreSQL compares JSON numbers exactly (as `numeric`) but SQLite as 64-bit floats, so a
/// literal that overflows to infinity (`-1e999`) or underflows to zero (`1e-999`) would be
/// answered differently per database. It is a bad request on every one.
pub(super) fn check_number(n: &serde_json::Number, field: &str) -> QueryResult<()> {
    if n.is_i64() || n.is_u64() {
        return Ok(());
    }
    let text = n.to_string();
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    let nonzero = mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'));
    match n.as_f64() {
        Some(f) if f.is_finite() && (f != 0.0 || !nonzero) => Ok(()),
        _ => Err(bad(format!(
            "the number {text} compared with {field} is out of range: numbers must fit a double-precision float (magnitudes from about 5e-324 to 1.8e308, or 0)"
        ))),
    }
}

/// A key of a JSON path or of a JSON object compared with one: SQLite's JSON paths cut a key
/// at a NUL character and cannot hold a double quote (PostgreSQL would look up the key as
/// written), so both are refused rather than answered differently per database.
pub(super) fn check_key(key: &str, field: &str) -> QueryResult<()> {
    if key.contains(['\0', '"']) {
        return Err(bad(format!(
            "{field}: the JSON key {} contains a NUL character or a double quote (\"), which JSON keys in queries cannot hold",
            serde_json::Value::String(key.to_string())
        )));
    }
    Ok(())
}

/// A filter dict of one tag: `{column: condition, "and"/"or": [dict, ...]}`.
pub(super) fn parse_filter_entries(
    target: Target,
    table: &Table,
    tag: &str,
    entries: &[(String, OValue)],
    depth: usize,
    budget: &mut Budget,
) -> QueryResult<Option<Cond>> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("filters are nested more than {MAX_DEPTH} levels deep")));
    }
    let mut conds = Vec::new();
    for (key, spec) in entries {
        match key.as_str() {
            "and" | "or" | "~and" | "~or" | "!and" | "!or" => {
                let OValue::Array(list) = spec else {
                    return Err(bad(format!("'{key}' takes a list of filter objects, not {}", spec.show())));
                };
                budget.term()?;
                let mut subs = Vec::new();
                for sub in list {
                    let Some(sub_entries) = sub.as_object() else {
                        return Err(bad(format!("'{key}' takes a list of filter objects; {} is not one", sub.show())));
                    };
                    if let Some(cond) = parse_filter_entries(target, table, tag, sub_entries, depth + 1, budget)? {
                        subs.push(cond);
                    }
                }
                if subs.is_empty() {
                    continue;
                }
                let combined = if key.ends_with("and") { Cond::And(subs) } else { Cond::Or(subs) };
                conds.push(if key.starts_with(['~', '!']) { Cond::Not(Box::new(combined)) } else { combined });
            }
            _ => {
                let field = resolve_visible_field(target, table, key, tag)?;
                let operations: Vec<(String, OValue)> = match spec {
                    OValue::Object(ops) => ops.clone(),
                    other => vec![("==".to_string(), other.clone())],
                };
                for (operator, value) in &operations {
                    conds.push(parse_operation(&field, operator, value, depth + 1, budget)?);
                }
            }
        }
    }
    Ok(match conds.len() {
        0 => None,
        1 => conds.pop(),
        _ => Some(Cond::And(conds)),
    })
}

pub(super) const COLUMN_OPS: &str = "==, !==, >, <, >=, <=, like, ilike, in, and, or (prefix ~ or ! negates)";
pub(super) const JSON_OPS: &str = "==, >, <, >=, <=, like, ilike, in, contains, has_key, of_type, of_length, longer, shorter, and, or (prefix ~ or ! negates)";

pub(super) fn parse_operation(
    field: &Field,
    operator: &str,
    value: &OValue,
    depth: usize,
    budget: &mut Budget,
) -> QueryResult<Cond> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("filters are nested more than {MAX_DEPTH} levels deep")));
    }
    budget.term()?;
    let (negated, name) = if operator == "!=" {
        (true, "==")
    } else if let Some(rest) = operator.strip_prefix('~') {
        (true, rest.trim_start_matches('~'))
    } else if let Some(rest) = operator.strip_prefix('!') {
        (true, rest.trim_start_matches('!'))
    } else {
        (false, operator)
    };
    let wrap = |cond: Cond| {
        if negated { Cond::Not(Box::new(cond)) } else { cond }
    };
    if name == "and" || name == "or" {
        return Ok(wrap(parse_combination(field, operator, name, value, depth, budget)?));
    }
    let op = operator_of(field, operator, name)?;
    let value = value.to_value();
    check_operand(field, op, name, &value, budget)?;
    if field.is_json() {
        return Ok(wrap(Cond::Json { field: field.clone(), op, value }));
    }
    let (op, value) = super::values::column_condition(field, op, &value)?;
    Ok(wrap(Cond::Column { field: field.clone(), op, value }))
}

/// `and`/`or` of operator objects on one field.
pub(super) fn parse_combination(
    field: &Field,
    operator: &str,
    name: &str,
    value: &OValue,
    depth: usize,
    budget: &mut Budget,
) -> QueryResult<Cond> {
    let describe = || field_name(field);
    let OValue::Array(list) = value else {
        return Err(bad(format!(
            "'{operator}' on {} takes a list of operator objects, not {}",
            describe(),
            value.show()
        )));
    };
    let mut subs = Vec::new();
    for entry in list {
        let Some(ops) = entry.as_object() else {
            return Err(bad(format!(
                "'{operator}' on {} takes a list of operator objects; {} is not one",
                describe(),
                entry.show()
            )));
        };
        for (sub_op, sub_value) in ops {
            subs.push(parse_operation(field, sub_op, sub_value, depth + 1, budget)?);
        }
    }
    if subs.is_empty() {
        return Ok(Cond::And(Vec::new()));
    }
    Ok(if name == "and" { Cond::And(subs) } else { Cond::Or(subs) })
}

/// The operator named `name` (`operator` as given), if it applies to `field`.
pub(super) fn operator_of(field: &Field, operator: &str, name: &str) -> QueryResult<Op> {
    let describe = || field_name(field);
    let op = match name {
        "==" => Op::Eq,
        ">" => Op::Gt,
        "<" => Op::Lt,
        ">=" | "=>" => Op::Ge,
        "<=" | "=<" => Op::Le,
        "like" => Op::Like,
        "ilike" => Op::ILike,
        "in" => Op::In,
        "contains" => Op::Contains,
        "has_key" => Op::HasKey,
        "of_type" => Op::OfType,
        "of_length" => Op::OfLength,
        "longer" => Op::Longer,
        "shorter" => Op::Shorter,
        _ => {
            return Err(bad(format!(
                "unknown operator '{operator}' in the filter on {}; valid operators are: {}",
                describe(),
                if field.is_json() { JSON_OPS } else { COLUMN_OPS }
            )));
        }
    };
    if !field.is_json()
        && matches!(op, Op::Contains | Op::HasKey | Op::OfType | Op::OfLength | Op::Longer | Op::Shorter)
    {
        return Err(bad(format!(
            "the operator '{name}' applies to JSON values (attributes, extras, ...), and {} is a plain column; valid operators here are: {COLUMN_OPS}",
            describe()
        )));
    }
    Ok(op)
}

/// Checks the value an operator is given (JSON values are counted in `budget`).
pub(super) fn check_operand(field: &Field, op: Op, name: &str, value: &Value, budget: &mut Budget) -> QueryResult<()> {
    let describe = || field_name(field);
    match op {
        Op::Like | Op::ILike => {
            let Some(pattern) = value.as_str() else {
                return Err(bad(format!("Value for operator {name} has to be a string (you gave {value})")));
            };
            if pattern.len() > MAX_PATTERN {
                return Err(bad(format!(
                    "the pattern of '{name}' on {} has {} bytes; at most {MAX_PATTERN} are accepted",
                    describe(),
                    pattern.len()
                )));
            }
        }
        Op::In => {
            let Some(items) = value.as_array() else {
                return Err(bad(format!("Value for operator `in` must be a list (you gave {value})")));
            };
            if items.is_empty() {
                return Err(bad("Value for operator `in` is an empty list"));
            }
            if items.len() > MAX_LIST {
                return Err(bad(format!(
                    "Value for operator `in` has {} items; at most {MAX_LIST} are accepted",
                    items.len()
                )));
            }
            if field.is_json() {
                for item in items {
                    budget.json_value(item, &describe())?;
                }
            }
        }
        Op::OfLength | Op::Longer | Op::Shorter => {
            if value.as_i64().is_none() {
                return Err(bad(format!(
                    "You have to give an integer when comparing to a length (operator {name}, value {value})"
                )));
            }
        }
        Op::OfType => {
            const TYPES: [&str; 6] = ["object", "array", "string", "number", "boolean", "null"];
            if !value.as_str().is_some_and(|t| TYPES.contains(&t)) {
                return Err(bad(format!(
                    "value {value} for of_type is not among the valid types: {}",
                    TYPES.join(", ")
                )));
            }
        }
        Op::HasKey => {
            if !value.is_string() {
                return Err(bad(format!("Value for operator has_key has to be a string (you gave {value})")));
            }
        }
        // Plain columns take only scalars (checked when the SQL is built).
        Op::Contains | Op::Eq | Op::Gt | Op::Lt | Op::Ge | Op::Le if field.is_json() => {
            budget.json_value(value, &describe())?
        }
        Op::Contains | Op::Eq | Op::Gt | Op::Lt | Op::Ge | Op::Le => {}
    }
    Ok(())
}
