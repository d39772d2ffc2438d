//! The one translator of a condition on a plain column (operator × value type × column kind ×
//! dialect) into SQL, every value bound as a parameter. The REST resources and the
//! QueryBuilder both call it; what differs between them is data: a [`Style`].
//!
//! Comparisons answer as the reference's storage, SQLite, does, on both databases: a number
//! column never equals text (SQLite orders every number before every text), text columns
//! compare with the text of a number, UUIDs compare as their canonical text in byte order, and
//! a condition is NULL where the column is NULL (so that a negation does not select the row).
//! Values inside JSON columns are another kind of column, which only the QueryBuilder reaches
//! (`querybuilder::sql::json`).

use chrono::{Datelike, Duration, Utc};

use crate::query::tables::Kind;
use crate::query::{QueryError, QueryResult};
use crate::storage::db::sql::{Dialect, Param, Query};

use super::{DateTimeValue, Op, Value, display};

/// How bound values are written, per front door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// On PostgreSQL, cast every bound value explicitly, so that the statement never depends on
    /// the server's inference of parameter types (the QueryBuilder's statements, which are
    /// client-built); otherwise text values are typed by their context (`n.label = $1`).
    pub explicit_casts: bool,
}

impl Style {
    /// The REST resources' filters.
    pub const REST: Style = Style { explicit_casts: false };
    /// The QueryBuilder's comparisons.
    pub const QUERYBUILDER: Style = Style { explicit_casts: true };
}

/// The column on the left of a condition.
#[derive(Debug, Clone, Copy)]
pub struct Compared<'a> {
    /// SQL of the column (`n.id`).
    pub sql: &'a str,
    pub kind: Kind,
    /// The name the client gave, for messages.
    pub name: &'a str,
}

/// One `<column> <op> <value>` condition on a REST resource.
pub fn push_condition(q: &mut Query, column: &str, kind: Kind, name: &str, op: Op, value: &Value) -> QueryResult<()> {
    push_comparison(q, Style::REST, Compared { sql: column, kind, name }, op, value)
}

/// One `<column> <op> <value>` condition.
pub fn push_comparison(q: &mut Query, style: Style, column: Compared, op: Op, value: &Value) -> QueryResult<()> {
    let name = column.name;
    if column.kind == Kind::Json {
        return Err(QueryError::bad_request(format!(
            "{name} is a JSON column and cannot be filtered in the query string; use POST /querybuilder"
        )));
    }
    let mut t = Translator { q, style, column };
    match op {
        Op::In | Op::NotIn => {
            let Value::List(items) = value else {
                return Err(QueryError::bad_request(format!(
                    "the operator {} needs a list of values (a,b,...), got {}",
                    op.as_str(),
                    display(value)
                )));
            };
            t.push_in(op == Op::In, items)
        }
        Op::Like | Op::ILike => {
            let Value::Str(pattern) = value else {
                return Err(QueryError::bad_request(format!(
                    "Value for operator {} has to be a string (you gave {})",
                    op.as_str(),
                    display(value)
                )));
            };
            t.push_like(op == Op::ILike, pattern);
            Ok(())
        }
        _ => {
            if let Value::List(_) = value {
                return Err(QueryError::bad_request(format!(
                    "the operator {} takes a single value; use =in= for a list",
                    op.as_str()
                )));
            }
            t.push_compare(op, value)
        }
    }
}

struct Translator<'q, 'c> {
    q: &'q mut Query,
    style: Style,
    column: Compared<'c>,
}

impl Translator<'_, '_> {
    fn pg(&self) -> bool {
        self.q.dialect == Dialect::Postgres
    }

    fn explicit(&self) -> bool {
        self.pg() && self.style.explicit_casts
    }

    /// `=`, `!=`, `<`, `<=`, `>`, `>=`.
    fn push_compare(&mut self, op: Op, value: &Value) -> QueryResult<()> {
        let (column, kind) = (self.column.sql, self.column.kind);
        if *value == Value::Null {
            if op != Op::Eq {
                return Err(QueryError::bad_request(format!(
                    "{} cannot be compared with null except by == (is null)",
                    self.column.name
                )));
            }
            self.q.push(column).push(" IS NULL");
            return Ok(());
        }
        if let (Kind::Time, Value::DateTime(dt), Op::Eq) = (kind, value, op)
            && dt.precision != DateTimeValue::EXACT
        {
            return self.push_time_interval(dt);
        }
        if self.never_equal(value) {
            // SQLite orders every number before every text (NULL compares to nothing).
            self.push_constant_unless_null(matches!(op, Op::Ne | Op::Lt | Op::Le));
            return Ok(());
        }
        let native = self.native_uuid(std::iter::once(value));
        self.push_compared_column(native);
        self.q.push(match op {
            Op::Eq => " = ",
            Op::Ne => " <> ",
            Op::Gt => " > ",
            Op::Ge => " >= ",
            Op::Lt => " < ",
            Op::Le => " <= ",
            _ => unreachable!("not a comparison"),
        });
        self.push_value(value, native)
    }

    /// A date (or hour, minute, second) means the whole interval it names.
    fn push_time_interval(&mut self, dt: &DateTimeValue) -> QueryResult<()> {
        let step = match dt.precision {
            1 => Duration::days(1),
            2 => Duration::hours(1),
            3 => Duration::minutes(1),
            4 => Duration::seconds(1),
            _ => return Err(QueryError::bad_request("The datetime resolution is not valid.")),
        };
        let start = dt.datetime.with_timezone(&Utc);
        let column = self.column.sql;
        self.q.push("(").push(column).push(" >= ");
        self.push_time(start)?;
        self.q.push(" AND ").push(column).push(" < ");
        self.push_time(start + step)?;
        self.q.push(")");
        Ok(())
    }

    /// `IN (...)` / `NOT IN (...)`.
    fn push_in(&mut self, positive: bool, items: &[Value]) -> QueryResult<()> {
        // NULL, and text in a number column, equal nothing: such items drop out.
        let items: Vec<&Value> = items.iter().filter(|v| **v != Value::Null && !self.never_equal(v)).collect();
        if items.is_empty() {
            self.push_constant_unless_null(!positive);
            return Ok(());
        }
        let native = self.native_uuid(items.iter().copied());
        self.push_compared_column(native);
        self.q.push(if positive { " IN (" } else { " NOT IN (" });
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.q.push(", ");
            }
            self.push_value(item, native)?;
        }
        self.q.push(")");
        Ok(())
    }

    /// `LIKE` / `ILIKE` on the text form SQLite stores (and matches) for each kind.
    fn push_like(&mut self, insensitive: bool, pattern: &str) {
        let column = self.column.sql;
        let text = |q: &mut Query| {
            match self.column.kind {
                Kind::Int => q.push("CAST(").push(column).push(" AS TEXT)"),
                Kind::Uuid => q.uuid_text(column),
                Kind::Time => q.time_text(column),
                Kind::Text | Kind::Json => q.push(column),
            };
        };
        if insensitive && !self.pg() {
            self.q.push("lower(");
            text(self.q);
            self.q.push(") LIKE lower(");
            self.bind_text(pattern.to_string());
            self.q.push(")");
        } else {
            text(self.q);
            self.q.push(if insensitive { " ILIKE " } else { " LIKE " });
            self.bind_text(pattern.to_string());
        }
        self.q.push(" ESCAPE '\\'");
    }

    /// Whether `value` is text that a number column never equals (SQLite compares them as
    /// number against text).
    fn never_equal(&self, value: &Value) -> bool {
        self.column.kind == Kind::Int && matches!(value, Value::Str(s) if numeric_text(s).is_none())
    }

    /// `value` for rows where the column is set, NULL elsewhere, as a comparison would give.
    fn push_constant_unless_null(&mut self, value: bool) {
        let otherwise = if value { "TRUE" } else { "FALSE" };
        self.q.push("CASE WHEN ").push(self.column.sql).push(" IS NULL THEN NULL ELSE ").push(otherwise).push(" END");
    }

    /// PostgreSQL compares a uuid natively when every value is a canonical UUID (same order as
    /// the text, and the index is used).
    fn native_uuid<'v>(&self, mut values: impl Iterator<Item = &'v Value>) -> bool {
        self.pg()
            && self.column.kind == Kind::Uuid
            && values.all(|v| matches!(v, Value::Str(s) if is_canonical_uuid(s)))
    }

    /// The column on the left of a comparison: a uuid compares natively, or as text in byte
    /// order, as SQLite does.
    fn push_compared_column(&mut self, native_uuid: bool) {
        let column = self.column.sql;
        match self.column.kind {
            Kind::Uuid if !native_uuid => {
                self.q.uuid_text(column);
                if self.pg() {
                    self.q.push(" COLLATE \"C\"");
                }
            }
            _ => {
                self.q.push(column);
            }
        }
    }

    /// Binds `value` so that it compares with the column as the reference compares it.
    fn push_value(&mut self, value: &Value, native_uuid: bool) -> QueryResult<()> {
        let kind = self.column.kind;
        match (kind, value) {
            (Kind::Uuid, Value::Str(s)) if native_uuid => {
                self.q.push("CAST(");
                self.bind_text(s.clone());
                self.q.push(" AS uuid)");
            }
            (Kind::Int, Value::Int(i)) => self.bind_int(*i),
            (Kind::Int, Value::Float(f)) => self.bind_float(*f),
            (Kind::Int, Value::Bool(b)) => self.bind_int(*b as i64),
            // Numbers in text become numbers, as SQLite's column affinity makes them.
            (Kind::Int, Value::Str(s)) => match numeric_text(s) {
                Some(Number::Int(i)) => self.bind_int(i),
                Some(Number::Float(f)) => self.bind_float(f),
                None => self.bind_text(s.clone()),
            },
            // Text columns compare with the text form of a number, as SQLite's column affinity does.
            (Kind::Text | Kind::Uuid, Value::Str(s)) => self.bind_text(s.clone()),
            (Kind::Text | Kind::Uuid, Value::Int(i)) => self.bind_text(i.to_string()),
            (Kind::Text | Kind::Uuid, Value::Float(f)) => self.bind_text(crate::model::pyjson::python_float_repr(*f)),
            (Kind::Text | Kind::Uuid, Value::Bool(b)) => self.bind_text(if *b { "1" } else { "0" }.to_string()),
            (Kind::Time, Value::DateTime(dt)) => self.push_time(dt.datetime.with_timezone(&Utc))?,
            (_, other) => {
                return Err(QueryError::bad_request(format!(
                    "{} cannot be compared with {}{}",
                    self.column.name,
                    display(other),
                    if kind == Kind::Time {
                        "; write a date such as 2024-05-01 or 2024-05-01T10:00:00+02:00"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(())
    }

    fn bind_int(&mut self, value: i64) {
        if self.explicit() {
            self.q.push("CAST(").bind(Param::Int(value)).push(" AS bigint)");
        } else {
            self.q.bind(Param::Int(value));
        }
    }

    fn bind_float(&mut self, value: f64) {
        if self.explicit() {
            self.q.push("CAST(").bind(Param::Float(value)).push(" AS double precision)");
        } else {
            self.q.bind(Param::Float(value));
        }
    }

    fn bind_text(&mut self, value: String) {
        if self.explicit() {
            self.q.push("CAST(").bind_text(value).push(" AS text)");
        } else {
            self.q.bind_text(value);
        }
    }

    /// Binds an instant in the storage's own representation (naive UTC text on SQLite).
    fn push_time(&mut self, t: chrono::DateTime<Utc>) -> QueryResult<()> {
        // Stored times are four-digit years; an offset can push 0001 or 9999 out of that range.
        if !(1..=9999).contains(&t.year()) {
            return Err(QueryError::bad_request(
                "the datetime is outside the years 0001 to 9999 once converted to UTC",
            ));
        }
        let typed = self.explicit();
        self.q.bind_utc(t, typed);
        Ok(())
    }
}

/// Lowercase hyphenated, as AiiDA stores UUIDs in SQLite and PostgreSQL prints them.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

enum Number {
    Int(i64),
    Float(f64),
}

/// A number written as text, as SQLite's numeric affinity reads it.
fn numeric_text(s: &str) -> Option<Number> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(Number::Int(i));
    }
    let number_chars = s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if number_chars && s.bytes().any(|b| b.is_ascii_digit()) {
        return s.parse::<f64>().ok().filter(|f| f.is_finite()).map(Number::Float);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(dialect: Dialect, style: Style, kind: Kind, op: Op, value: Value) -> QueryResult<Query> {
        let mut q = Query::new(dialect);
        push_comparison(&mut q, style, Compared { sql: "t.c", kind, name: "c" }, op, &value)?;
        Ok(q)
    }

    #[test]
    fn styles_differ_only_in_casts() {
        let rest = sql(Dialect::Postgres, Style::REST, Kind::Text, Op::Eq, Value::Str("x".into())).unwrap();
        assert_eq!(rest.sql, "t.c = $1");
        let qb = sql(Dialect::Postgres, Style::QUERYBUILDER, Kind::Text, Op::Eq, Value::Str("x".into())).unwrap();
        assert_eq!(qb.sql, "t.c = CAST($1 AS text)");
        let lite = sql(Dialect::Sqlite, Style::QUERYBUILDER, Kind::Int, Op::Gt, Value::Int(3)).unwrap();
        assert_eq!(lite.sql, "t.c > ?1");
    }

    #[test]
    fn uuids_compare_natively_or_in_byte_order() {
        let uuid = "0c3bc21c-6d16-4a27-a8a2-9e2e3a4e4c11";
        let q = sql(Dialect::Postgres, Style::REST, Kind::Uuid, Op::Eq, Value::Str(uuid.into())).unwrap();
        assert_eq!(q.sql, "t.c = CAST($1 AS uuid)");
        let q = sql(Dialect::Postgres, Style::QUERYBUILDER, Kind::Uuid, Op::Gt, Value::Str("0c".into())).unwrap();
        assert_eq!(q.sql, "t.c::text COLLATE \"C\" > CAST($1 AS text)");
    }

    #[test]
    fn numbers_never_equal_text() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let q = sql(dialect, Style::REST, Kind::Int, Op::Lt, Value::Str("abc".into())).unwrap();
            assert_eq!(q.sql, "CASE WHEN t.c IS NULL THEN NULL ELSE TRUE END");
            let q = sql(dialect, Style::REST, Kind::Int, Op::In, Value::List(vec![Value::Str("abc".into())])).unwrap();
            assert_eq!(q.sql, "CASE WHEN t.c IS NULL THEN NULL ELSE FALSE END");
            let q = sql(dialect, Style::REST, Kind::Int, Op::Eq, Value::Str(" 2.5".into())).unwrap();
            assert_eq!(q.params, vec![Param::Float(2.5)]);
        }
    }

    #[test]
    fn null_and_times() {
        let q = sql(Dialect::Sqlite, Style::QUERYBUILDER, Kind::Text, Op::Eq, Value::Null).unwrap();
        assert_eq!(q.sql, "t.c IS NULL");
        assert!(sql(Dialect::Sqlite, Style::QUERYBUILDER, Kind::Text, Op::Gt, Value::Null).is_err());
        let day = chrono::DateTime::parse_from_rfc3339("2024-05-01T00:00:00+02:00").unwrap();
        let value = |precision| Value::DateTime(DateTimeValue { datetime: day, precision });
        let q = sql(Dialect::Sqlite, Style::REST, Kind::Time, Op::Eq, value(1)).unwrap();
        assert_eq!(q.sql, "(t.c >= ?1 AND t.c < ?2)");
        assert_eq!(q.params[1], Param::Text("2024-05-01 22:00:00.000000".into()));
        let q = sql(Dialect::Postgres, Style::QUERYBUILDER, Kind::Time, Op::Eq, value(DateTimeValue::EXACT)).unwrap();
        assert_eq!(q.sql, "t.c = CAST(CAST($1 AS text) AS timestamptz)");
        assert!(sql(Dialect::Sqlite, Style::REST, Kind::Time, Op::Eq, value(5)).is_err());
    }
}
