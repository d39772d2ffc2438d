//! Building SQL text with bound parameters. Values never enter the SQL text: every user value
//! goes through [`Query::bind`].

use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Whether an integer beyond 64 bits inside a JSON value comes back as a float (SQLite's
    /// JSON functions read it so, and the reference on SQLite shows it so).
    pub fn json_big_ints_are_floats(self) -> bool {
        self == Dialect::Sqlite
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

/// SQL text plus its parameters, in the placeholder style of its dialect.
#[derive(Debug, Clone)]
pub struct Query {
    pub dialect: Dialect,
    pub sql: String,
    pub params: Vec<Param>,
}

impl Query {
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect, sql: String::with_capacity(256), params: Vec::new() }
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder for `param`. On PostgreSQL numbers get a type: `id = $1` would
    /// otherwise make the server read the value as int4 (out of range for big values, and a
    /// float such as 1.5 would lose its fraction). Text and NULL stay untyped, so the server
    /// infers them from the context (uuid, timestamptz, jsonb, varchar, ...).
    pub fn bind(&mut self, param: Param) -> &mut Self {
        let cast = match param {
            Param::Int(_) => "::int8",
            Param::Float(_) => "::float8",
            Param::Null | Param::Text(_) | Param::Bool(_) => "",
        };
        self.params.push(param);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => write!(self.sql, "?{n}"),
            Dialect::Postgres => write!(self.sql, "${n}{cast}"),
        }
        .expect("writing to a String cannot fail");
        self
    }

    pub fn bind_text(&mut self, text: impl Into<String>) -> &mut Self {
        self.bind(Param::Text(text.into()))
    }

    pub fn bind_int(&mut self, value: i64) -> &mut Self {
        self.bind(Param::Int(value))
    }

    /// A column holding a UUID, as lowercase hyphenated text.
    pub fn uuid_text(&mut self, column: &str) -> &mut Self {
        match self.dialect {
            Dialect::Sqlite => self.push(column),
            Dialect::Postgres => self.push(column).push("::text"),
        }
    }

    /// A timestamp column as naive UTC text `YYYY-MM-DD HH:MM:SS.ffffff`, the form SQLite
    /// storage holds natively; it also compares correctly as text.
    pub fn time_text(&mut self, column: &str) -> &mut Self {
        match self.dialect {
            Dialect::Sqlite => self.push(column),
            Dialect::Postgres => {
                self.push("to_char(").push(column).push(" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
            }
        }
    }

    /// A JSON column as JSON text.
    pub fn json_text(&mut self, column: &str) -> &mut Self {
        match self.dialect {
            Dialect::Sqlite => self.push(column),
            Dialect::Postgres => self.push(column).push("::text"),
        }
    }
}

/// Escapes `%`, `_` and `\` so the text matches itself under `LIKE ... ESCAPE '\'`.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_dialect() {
        let mut q = Query::new(Dialect::Sqlite);
        q.push("a = ").bind_int(1).push(" AND b = ").bind_text("x");
        assert_eq!(q.sql, "a = ?1 AND b = ?2");
        let mut q = Query::new(Dialect::Postgres);
        q.push("a = ").bind_int(1).push(" AND ").uuid_text("n.uuid").push(" = ").bind_text("x");
        q.push(" AND b > ").bind(Param::Float(1.5));
        assert_eq!(q.sql, "a = $1::int8 AND n.uuid::text = $2 AND b > $3::float8");
    }

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like(r"a_b%c\d"), r"a\_b\%c\\d");
    }
}
