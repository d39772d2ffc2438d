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
    /// The largest row count bound after a `LIMIT` ([`Query::row_limit`]).
    row_limit: Option<i64>,
}

impl Query {
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect, sql: String::with_capacity(256), params: Vec::new(), row_limit: None }
    }

    /// How many rows the query may return at most, as far as its text tells: the largest
    /// integer bound right after a `LIMIT` (`LIMIT ?1`, or `LIMIT CAST($1 ...)`). `None` when
    /// no bound limit was seen (counts, single rows, fixed limits written in the text).
    pub fn row_limit(&self) -> Option<i64> {
        self.row_limit
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
        if let Param::Int(value) = param {
            let before = self.sql.trim_end();
            let before = before.strip_suffix("CAST(").unwrap_or(before).trim_end();
            let keyword = before.as_bytes().rsplit(|b| b.is_ascii_whitespace()).next().unwrap_or_default();
            let limit = keyword.eq_ignore_ascii_case(b"LIMIT");
            if limit {
                self.row_limit = self.row_limit.max(Some(value));
            }
            // SQLite's planner reads the values of LIMIT and OFFSET, so a statement with them
            // bound is compiled again on every run (a third of a cheap request's cost): they
            // are written into the text instead, where an integer cannot inject anything.
            if self.dialect == Dialect::Sqlite && (limit || keyword.eq_ignore_ascii_case(b"OFFSET")) {
                write!(self.sql, "{value}").expect("writing to a String cannot fail");
                return self;
            }
        }
        self.params.push(param);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => write!(self.sql, "?{n}"),
            Dialect::Postgres => write!(self.sql, "${n}{cast}"),
        }
        .expect("writing to a String cannot fail");
        self
    }

    /// Binds an instant as the storage holds its times: naive UTC text on SQLite, a
    /// `timestamptz` on PostgreSQL. `typed`: on PostgreSQL the text parameter is cast to text
    /// itself too, for the statements whose every parameter has a type of its own.
    pub fn bind_utc(&mut self, t: chrono::DateTime<chrono::Utc>, typed: bool) -> &mut Self {
        let text = crate::model::time::stored_text(t);
        match self.dialect {
            Dialect::Sqlite => self.bind_text(text),
            Dialect::Postgres => {
                self.push("CAST(");
                if typed {
                    self.push("CAST(").bind_text(format!("{text}+00")).push(" AS text)");
                } else {
                    self.bind_text(format!("{text}+00"));
                }
                self.push(" AS timestamptz)")
            }
        }
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
    fn the_row_limit_is_read_from_bound_limits() {
        let mut q = Query::new(Dialect::Sqlite);
        q.push("SELECT id FROM t WHERE id > ")
            .bind_int(5_000)
            .push(" LIMIT ")
            .bind_int(20)
            .push(" OFFSET ")
            .bind_int(9_000);
        assert_eq!(q.row_limit(), Some(20));
        assert_eq!(q.sql, "SELECT id FROM t WHERE id > ?1 LIMIT 20 OFFSET 9000");
        assert_eq!(q.params.len(), 1);
        let mut q = Query::new(Dialect::Postgres);
        q.push("SELECT id FROM t LIMIT ").bind_int(20).push(" OFFSET ").bind_int(5);
        assert_eq!((q.sql.as_str(), q.row_limit()), ("SELECT id FROM t LIMIT $1::int8 OFFSET $2::int8", Some(20)));
        let mut q = Query::new(Dialect::Postgres);
        q.push("SELECT id FROM t limit CAST(").bind_int(10_000).push(" AS bigint)");
        assert_eq!(q.row_limit(), Some(10_000));
        let mut q = Query::new(Dialect::Sqlite);
        q.push("SELECT count(*) FROM t WHERE id = ").bind_int(7).push(" LIMIT 1");
        assert_eq!(q.row_limit(), None);
    }

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like(r"a_b%c\d"), r"a\_b\%c\\d");
    }
}
