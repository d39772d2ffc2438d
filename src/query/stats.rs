//! What kinds of nodes the database holds: counts per node type and per creation day, and per
//! `(node_type, process_type)` pair.
//!
//! Everything is counted by the database (`GROUP BY`, the queries of
//! [`crate::storage::db::aggregates`]); node rows never reach this process. The counts of all
//! users are the storage's [`Db::aggregates`]: computed in the background as it opens (or read
//! from the server's cache folder), so that even the first request finds them ready (or joins
//! the computation in flight), and brought up to date with the nodes appended since when the
//! database changes. Those of one user go through the result cache.

use crate::query::error::QueryResult;
use crate::query::node_classes::TypePrefixes;
use crate::query::rows::Record;
use crate::storage::db::aggregates::{self, push_utc_day};
use crate::storage::db::{Cell, Db, Query, Row};

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
    if user.is_none() {
        let all = db.aggregates().await?;
        let known = |list: &[(Option<String>, i64)]| -> Vec<(String, i64)> {
            list.iter().filter_map(|(key, n)| Some((key.clone()?, *n))).collect()
        };
        // The per-type counts add up to the node count (a NULL node type included).
        let total = all.types.iter().map(|t| t.1).sum();
        return Ok(Statistics { total, types: known(&all.types), ctime_by_day: known(&all.days) });
    }
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
    if user.is_none() {
        let all = db.aggregates().await?;
        return Ok(all
            .full
            .iter()
            .filter_map(|(node_type, process_type, count)| {
                Some(TypeCount { node_type: node_type.clone()?, process_type: process_type.clone(), count: *count })
            })
            .collect());
    }
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

/// [`statistics`] of the nodes of one class and its subclasses (`node_type` prefixes; none:
/// every node), of `user` when given.
pub async fn class_statistics(db: &Db, user: Option<i64>, class: TypePrefixes) -> QueryResult<Statistics> {
    let restrict = |q: &mut Query| {
        q.push(" n WHERE 1 = 1");
        if let Some(user) = user {
            q.push(" AND n.user_id = ").bind_int(user);
        }
        class.push(q, "n");
    };
    let mut types = db.query();
    types.push("SELECT n.node_type, count(*) FROM db_dbnode");
    restrict(&mut types);
    types.push(" GROUP BY n.node_type");

    let mut days = db.query();
    days.push("SELECT ");
    push_utc_day(&mut days, "n.ctime");
    days.push(" AS day, count(*) FROM db_dbnode");
    restrict(&mut days);
    days.push(" GROUP BY day");

    let (type_rows, day_rows) = tokio::try_join!(db.fetch_all_cached(types), db.fetch_all_cached(days))?;
    let total = type_rows.iter().map(|row| count_cell(row, 1)).sum();
    Ok(Statistics { total, types: counts_by_key(type_rows), ctime_by_day: counts_by_key(day_rows) })
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
