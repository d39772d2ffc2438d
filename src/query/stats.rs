//! What kinds of nodes the database holds: counts per node type and per creation day, and per
//! `(node_type, process_type)` pair.
//!
//! Everything is counted by the database (`GROUP BY`, the queries of
//! [`crate::storage::db::aggregates`]) and kept in the result cache; node rows never reach this
//! process. A storage computes the answers for all users in the background as it opens, so
//! even the first request finds them ready (or joins the computation in flight).

use crate::query::error::QueryResult;
use crate::query::rows::Record;
use crate::storage::db::{Cell, Db, Row, aggregates};

/// The node counts of `/nodes/statistics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statistics {
    /// All nodes (of the user, when one is given).
    pub total: i64,
    /// `(node_type, count)`; a NULL node type is counted in `total` only.
    pub types: Vec<(String, i64)>,
    /// `(YYYY-MM-DD, count)` by UTC calendar day of the creation time.
    pub ctime_by_day: Vec<(String, i64)>,
}

/// Counts the nodes (of `user`, when given) per node type and per creation day.
pub async fn statistics(db: &Db, user: Option<i64>) -> QueryResult<Statistics> {
    let (types, days) = (aggregates::node_types(db.dialect(), user), aggregates::ctime_days(db.dialect(), user));
    let (type_rows, day_rows) = tokio::try_join!(db.fetch_all_cached(types), db.fetch_all_cached(days))?;
    // The per-type counts add up to the node count, which saves a third scan.
    let total = type_rows.iter().map(|row| count_cell(row, 1)).sum();
    Ok(Statistics { total, types: counts_by_key(type_rows), ctime_by_day: counts_by_key(day_rows) })
}

/// The nodes of one `(node_type, process_type)` pair, as the database groups them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeCount {
    pub node_type: String,
    pub process_type: Option<String>,
    pub count: i64,
}

/// Counts the nodes (of `user`, when given) per `(node_type, process_type)`; a NULL node type
/// is left out.
pub async fn full_type_counts(db: &Db, user: Option<i64>) -> QueryResult<Vec<TypeCount>> {
    const NAMES: [&str; 3] = ["node_type", "process_type", "count"];
    let q = aggregates::full_types(db.dialect(), user);
    Ok(db
        .fetch_all_cached(q)
        .await?
        .into_iter()
        .filter_map(|row| {
            let mut r = Record::new(&NAMES, row);
            let count = r.int("count").unwrap_or(0);
            Some(TypeCount { node_type: r.text("node_type")?, process_type: r.text("process_type"), count })
        })
        .collect())
}

fn count_cell(row: &[Cell], index: usize) -> i64 {
    row.get(index).and_then(Cell::as_i64).unwrap_or(0)
}

/// `(key, count)` from `(key, count)` rows; a NULL key is left out.
fn counts_by_key(rows: Vec<Row>) -> Vec<(String, i64)> {
    rows.into_iter()
        .filter_map(|row| {
            let count = count_cell(&row, 1);
            row.into_iter().next().and_then(Cell::into_string).map(|key| (key, count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_keys_are_left_out() {
        let rows = vec![
            vec![Cell::Text("a".into()), Cell::Int(2)],
            vec![Cell::Null, Cell::Int(3)],
            vec![Cell::Text("b".into()), Cell::Int(1)],
        ];
        assert_eq!(counts_by_key(rows), [("a".to_string(), 2), ("b".to_string(), 1)]);
    }
}
