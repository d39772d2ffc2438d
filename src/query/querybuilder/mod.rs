//! AiiDA's QueryBuilder dictionary (`QueryBuilder.as_dict()`) as a checked query, and its SQL.
//!
//! - `parse`: the dictionary → a checked query (400 for anything malformed or unknown), its
//!   comparisons with plain columns in the query layer's filter model (`parse::values`);
//! - `sql`: the query → one SQL statement per dialect, every value bound;
//! - [`run`]: the statement on the database, bounded.
//!
//! Bounds: the body size is limited by the HTTP layer; the size of a query (conditions, JSON
//! values, projections, order items, path items, walks, patterns) by `parse` (see the limits
//! at its top); the rows of one answer by `max_rows` (a query without limit, or with a larger
//! one, gets the first `max_rows` rows, while the count still reports what the query itself
//! selects); every statement by the database pool's time limit; and the QueryBuilder
//! statements running at once on one database by that database's bound
//! ([`Db::client_queries`], 4 by default), so that they leave the pool's other
//! connections to the rest of the API.

pub mod ojson;
pub mod parse;
pub mod sql;

use std::time::Duration;

use crate::query::{QueryError, QueryResult};
use crate::storage::db::{Db, Row};

pub use parse::QbQuery;

/// How long a query waits for its turn before it is answered with a 503.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The rows of `qb` (at most `max_rows`) and the number of rows the query itself selects.
pub async fn run(db: &Db, qb: &QbQuery, max_rows: i64) -> QueryResult<(Vec<Row>, i64)> {
    let requested = qb.limit.filter(|l| *l >= 0);
    let cap = requested.unwrap_or(i64::MAX).min(max_rows.max(0));
    let rows_query = sql::rows_query(qb, db.dialect(), cap)?;
    let bound = db.client_queries();
    let Some(permit) = bound.acquire(MAX_WAIT).await else {
        return Err(QueryError::Unavailable(format!(
            "the server is busy: {} QueryBuilder queries kept running for {} s; try again later",
            bound.size(),
            MAX_WAIT.as_secs()
        )));
    };
    let rows = db.fetch_all(rows_query).await?;
    // The count honours the query's own limit and offset. Only when the server's bound cut
    // the rows short is a second statement needed to know it.
    let truncated = rows.len() as i64 >= cap && requested.is_none_or(|l| l > cap);
    let count = if truncated { db.fetch_count(sql::count_query(qb, db.dialect())?).await? } else { rows.len() as i64 };
    drop(permit);
    Ok((rows, count))
}
