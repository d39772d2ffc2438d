//! Database access: a bounded pool of read-only connections and a tiny row model that both
//! backends produce, so the query layer above does not care which database it talks to.

pub mod cache;
mod postgres;
pub mod sql;
mod sqlite;

pub use postgres::PgPool;
pub use sql::{Dialect, Param, Query};
pub use sqlite::{CheckError, SqlitePool};

use std::time::Duration;

/// One cell of a result row. Queries cast UUIDs, times and JSON to text in SQL, so these few
/// kinds are all the query layer ever sees.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl Cell {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Float(f) => Some(*f as i64),
            Cell::Text(t) => t.parse().ok(),
            Cell::Null => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Text(t) => Some(t),
            _ => None,
        }
    }
    pub fn into_string(self) -> Option<String> {
        match self {
            Cell::Text(t) => Some(t),
            Cell::Int(i) => Some(i.to_string()),
            Cell::Float(f) => Some(f.to_string()),
            Cell::Null => None,
        }
    }
}

pub type Row = Vec<Cell>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("query exceeded the time limit")]
    Timeout,
    /// The database cannot take a value of the request (e.g. NUL in PostgreSQL text).
    #[error("{0}")]
    InvalidValue(String),
    #[error("database error: {0}")]
    Query(String),
}

/// Limits that protect the server from expensive requests.
#[derive(Debug, Clone, Copy)]
pub struct DbLimits {
    pub max_connections: usize,
    pub statement_timeout: Duration,
}

impl Default for DbLimits {
    fn default() -> Self {
        Self { max_connections: 8, statement_timeout: Duration::from_secs(30) }
    }
}

/// The relational database of one AiiDA storage.
#[derive(Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn query(&self) -> Query {
        Query::new(self.dialect())
    }

    pub async fn fetch_all(&self, query: Query) -> Result<Vec<Row>, DbError> {
        match self {
            Db::Sqlite(pool) => pool.fetch_all(query).await,
            Db::Postgres(pool) => pool.fetch_all(query).await,
        }
    }

    pub async fn fetch_optional(&self, query: Query) -> Result<Option<Row>, DbError> {
        Ok(self.fetch_all(query).await?.into_iter().next())
    }

    /// Runs a `SELECT COUNT(*) ...` style query.
    pub async fn fetch_count(&self, query: Query) -> Result<i64, DbError> {
        let row = self.fetch_optional(query).await?;
        Ok(row.and_then(|r| r.first().and_then(Cell::as_i64)).unwrap_or(0))
    }

    /// A token that changes whenever the database content may have changed, or `None` when
    /// that cannot be known (then nothing is cached).
    async fn fingerprint(&self) -> Option<String> {
        match self {
            Db::Sqlite(pool) => pool.fingerprint(),
            Db::Postgres(pool) => pool.fingerprint().await,
        }
    }

    fn cache(&self) -> &cache::ResultCache {
        match self {
            Db::Sqlite(pool) => pool.cache(),
            Db::Postgres(pool) => pool.cache(),
        }
    }

    /// [`Db::fetch_all`] for expensive queries over large tables (counts, statistics): the
    /// result is reused until the database changes.
    pub async fn fetch_all_cached(&self, query: Query) -> Result<Vec<Row>, DbError> {
        let Some(fingerprint) = self.fingerprint().await else {
            return self.fetch_all(query).await;
        };
        let key = cache::key(&query);
        if let Some(rows) = self.cache().get(&key, &fingerprint) {
            return Ok(rows);
        }
        let flight = self.cache().flight(&key);
        let _turn = flight.lock().await;
        // Whoever held the lock before may have computed it meanwhile.
        if let Some(rows) = self.cache().get(&key, &fingerprint) {
            return Ok(rows);
        }
        let rows = self.fetch_all(query).await?;
        self.cache().put(key, fingerprint, &rows);
        Ok(rows)
    }

    /// [`Db::fetch_count`] through the cache of [`Db::fetch_all_cached`].
    pub async fn fetch_count_cached(&self, query: Query) -> Result<i64, DbError> {
        let rows = self.fetch_all_cached(query).await?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Cell::as_i64).unwrap_or(0))
    }
}
