//! The aggregate queries over the whole node table that the statistics and type-tree answers
//! are made from: counts per `node_type`, per UTC day of creation and per `(node_type,
//! process_type)`.
//!
//! For all users together they are kept as one [`Aggregates`] value per storage
//! ([`super::Db::aggregates`]): computed by one statement ([`full`], so that every count comes
//! from one snapshot of the table), brought up to date by another over the rows appended since
//! ([`appended`]) when the storage only grew, and saved in the server's own cache folder
//! ([`super::persisted`]). The per-user variants ([`node_types`], [`ctime_days`],
//! [`full_types`]) go through the ordinary result cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{Cell, Dialect, Query, Row};

/// `(node_type, count)` of the nodes (of `user`, when given).
pub fn node_types(dialect: Dialect, user: Option<i64>) -> Query {
    let mut q = Query::new(dialect);
    q.push("SELECT node_type, count(*) FROM db_dbnode");
    push_user(&mut q, user);
    q.push(" GROUP BY node_type");
    q
}

/// `(YYYY-MM-DD, count)` of the nodes (of `user`, when given) by UTC day of creation.
pub fn ctime_days(dialect: Dialect, user: Option<i64>) -> Query {
    let mut q = Query::new(dialect);
    q.push("SELECT ");
    push_utc_day(&mut q, "ctime");
    q.push(" AS day, count(*) FROM db_dbnode");
    push_user(&mut q, user);
    q.push(" GROUP BY day");
    q
}

/// `(node_type, process_type, count)` of the nodes (of `user`, when given).
pub fn full_types(dialect: Dialect, user: Option<i64>) -> Query {
    let mut q = Query::new(dialect);
    q.push("SELECT node_type, process_type, count(*) FROM db_dbnode");
    if user.is_none() && dialect == Dialect::Sqlite {
        // Every row is read anyway; SQLite would otherwise walk the node_type index and fetch
        // each row out of order, which is about twice as slow.
        q.push(" NOT INDEXED");
    }
    push_user(&mut q, user);
    q.push(" GROUP BY node_type, process_type");
    q
}

/// The counts of every node, for all users: what `/nodes/statistics`, `/nodes/full_types` and
/// `/nodes/full_types_count` are made from. Keys are in SQLite's `GROUP BY` order (NULL first,
/// then by bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregates {
    /// `(node_type, count)`.
    pub types: Vec<(Option<String>, i64)>,
    /// `(YYYY-MM-DD, count)` by UTC day of creation.
    pub days: Vec<(Option<String>, i64)>,
    /// `(node_type, process_type, count)`.
    pub full: Vec<(Option<String>, Option<String>, i64)>,
    /// All node rows counted.
    pub count: i64,
    /// The largest node id among them (`None`: no rows).
    pub max_id: Option<i64>,
}

/// `U+10FFFF` in SQLite: every text that starts with a day sorts below the day followed by it.
const AFTER: &str = "char(1114111)";

/// The one statement that computes [`Aggregates`] over the whole table. Its rows are `(part,
/// key1, key2, count)`: part 0 the node types, 1 the days, 2 the full types, 3 the largest id.
///
/// One statement reads one snapshot, so the counts agree with each other and with the largest
/// id (what [`appended`] later builds on), even while a daemon adds nodes. On SQLite the days
/// are not grouped from a scan (a temporary B-tree of a million day strings, about 0.35 s of CPU
/// at 10^6 nodes) but counted on the `ctime` index, one range per day, jumping from each day to
/// the next (about 0.04 s): see [`days_checked`] for the days this cannot count.
pub fn full(dialect: Dialect) -> Query {
    let mut q = Query::new(dialect);
    if dialect == Dialect::Sqlite {
        q.push("WITH RECURSIVE days(d) AS (SELECT substr(min(ctime), 1, 10) FROM db_dbnode UNION ALL ");
        q.push("SELECT (SELECT substr(min(ctime), 1, 10) FROM db_dbnode WHERE ctime > days.d || ").push(AFTER);
        q.push(") FROM days WHERE days.d IS NOT NULL) ");
    }
    q.push("SELECT 0, node_type, NULL, count(*) FROM db_dbnode GROUP BY node_type UNION ALL ");
    match dialect {
        Dialect::Sqlite => {
            q.push("SELECT 1, d, NULL, (SELECT count(*) FROM db_dbnode WHERE ctime >= d AND ctime < d || ");
            q.push(AFTER).push(") FROM days WHERE d IS NOT NULL UNION ALL ");
        }
        Dialect::Postgres => {
            q.push("SELECT 1, ");
            push_utc_day(&mut q, "ctime");
            q.push(", NULL, count(*) FROM db_dbnode GROUP BY 2 UNION ALL ");
        }
    }
    q.push("SELECT 2, node_type, process_type, count(*) FROM db_dbnode");
    if dialect == Dialect::Sqlite {
        // Every row is read anyway; SQLite would otherwise walk the node_type index and fetch
        // each row out of order, which is about twice as slow.
        q.push(" NOT INDEXED");
    }
    q.push(" GROUP BY node_type, process_type UNION ALL SELECT 3, NULL, NULL, max(id) FROM db_dbnode");
    q
}

/// The [`Aggregates`] from the rows of [`full`], and whether their days are right (else the
/// caller counts them with the plain `GROUP BY`, see [`days_checked`]).
pub fn from_full(rows: Vec<Row>) -> (Aggregates, bool) {
    let (mut types, mut days, mut full, mut max_id) = (Counts::default(), Counts::default(), Pairs::default(), None);
    for row in rows {
        let mut cells = row.into_iter();
        let part = cells.next().and_then(|c| c.as_i64());
        let (a, b) = (text(cells.next()), text(cells.next()));
        let value = cells.next().and_then(|c| c.as_i64());
        let n = value.unwrap_or(0);
        match part {
            Some(0) => *types.entry(a).or_default() += n,
            Some(1) => *days.entry(a).or_default() += n,
            Some(2) => *full.entry((a, b)).or_default() += n,
            _ => max_id = value,
        }
    }
    let count = types.values().sum();
    let (days, exact) = match days_checked(days) {
        Some(days) => (days, true),
        None => (Vec::new(), false),
    };
    (Aggregates { types: flat(types), days, full: flat_pairs(full), count, max_id }, exact)
}

/// The days of [`full`] on SQLite are exact when every day found is a `YYYY-MM-DD` (what AiiDA
/// writes): then "starts with the day" is the same as "its first ten characters are the day".
/// Anything else (a short or non-text `ctime`) sends the caller to the plain `GROUP BY` of
/// [`ctime_days`], whose rows [`days_of`] reads. (PostgreSQL's days are always grouped.)
fn days_checked(days: Counts) -> Option<Vec<(Option<String>, i64)>> {
    let day_like = |d: &str| {
        d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
    };
    days.keys().all(|d| d.as_deref().is_some_and(day_like)).then(|| flat(days))
}

/// `(day, count)` of the rows of [`ctime_days`].
pub fn days_of(rows: Vec<Row>) -> Vec<(Option<String>, i64)> {
    let mut days = Counts::default();
    for row in rows {
        let mut cells = row.into_iter();
        let day = text(cells.next());
        *days.entry(day).or_default() += cells.next().and_then(|c| c.as_i64()).unwrap_or(0);
    }
    flat(days)
}

/// The one statement over the rows appended after `after` (ids above it) and the row count of
/// the whole table: rows `(part, node_type, process_type, day, count, max id)`, part 0 the new
/// rows grouped by all three keys, part 1 the count of all rows. It reads a range of the primary
/// key (few rows) and counts the table on its smallest index.
pub fn appended(dialect: Dialect, after: i64) -> Query {
    let mut q = Query::new(dialect);
    q.push("SELECT 0, node_type, process_type, ");
    push_utc_day(&mut q, "ctime");
    q.push(", count(*), max(id) FROM db_dbnode");
    if dialect == Dialect::Sqlite {
        // The id range, not a scan of the node_type index that the GROUP BY would pick.
        q.push(" NOT INDEXED");
    }
    q.push(" WHERE id > ").bind_int(after);
    q.push(" GROUP BY 2, 3, 4 UNION ALL SELECT 1, NULL, NULL, NULL, count(*), NULL FROM db_dbnode");
    q
}

/// `base` brought up to date with the rows of [`appended`] (over the ids above `base.max_id`),
/// or `None` when the table did not only grow: the rule is exact for a table whose rows are only
/// appended (as AiiDA's nodes are, their types and times never changing): the rows the table
/// holds now are those of `base` and the new ones exactly when `count(*) == base.count +
/// count(id > base.max_id)`. A deletion (with or without new rows) breaks the equality.
pub fn add_appended(base: &Aggregates, rows: Vec<Row>) -> Option<Aggregates> {
    let (mut types, mut days, mut full) = (counts(&base.types), counts(&base.days), pairs(&base.full));
    let (mut added, mut total, mut max_id) = (0, None, base.max_id);
    for row in rows {
        let mut cells = row.into_iter();
        match cells.next().and_then(|c| c.as_i64()) {
            Some(0) => {
                let (node_type, process_type, day) = (text(cells.next()), text(cells.next()), text(cells.next()));
                let n = cells.next().and_then(|c| c.as_i64()).unwrap_or(0);
                let top = cells.next().and_then(|c| c.as_i64());
                added += n;
                max_id = max_id.max(top);
                *types.entry(node_type.clone()).or_default() += n;
                *days.entry(day).or_default() += n;
                *full.entry((node_type, process_type)).or_default() += n;
            }
            Some(1) => total = cells.nth(3).and_then(|c| c.as_i64()),
            _ => return None,
        }
    }
    (total? == base.count + added).then(|| Aggregates {
        types: flat(types),
        days: flat(days),
        full: flat_pairs(full),
        count: base.count + added,
        max_id,
    })
}

/// The [`Aggregates`] of one database as this process knows them: the latest, with the
/// fingerprint it was computed at, and where they are saved.
#[derive(Default)]
pub struct Slot {
    /// Held while they are brought up to date, so that requests arriving meanwhile (and the
    /// warm-up) wait for one computation instead of starting their own.
    pub(super) turn: tokio::sync::Mutex<()>,
    pub(super) state: std::sync::Mutex<SlotState>,
    pub(super) runs: Runs,
}

#[derive(Default)]
pub(super) struct SlotState {
    /// The latest aggregates and the fingerprint of the database they were computed at.
    pub latest: Option<(String, Arc<Aggregates>)>,
    pub origin: super::persisted::Origin,
    /// The cache folder, when they are saved.
    pub dir: Option<std::path::PathBuf>,
    /// The identity in the cache folder (and the archive's state), once known.
    pub identity: Option<(String, Option<String>)>,
}

impl Slot {
    /// The latest aggregates if they were computed at `fingerprint`.
    pub(super) fn at(&self, fingerprint: &str) -> Option<Arc<Aggregates>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.latest.as_ref().filter(|(at, _)| at == fingerprint).map(|(_, a)| a.clone())
    }
}

/// How the aggregates of a database were obtained, since it opened.
#[derive(Debug, Default)]
pub struct Runs {
    /// Computed over the whole table.
    pub full: AtomicU64,
    /// Brought up to date with the rows appended since.
    pub appended: AtomicU64,
    /// Read from the cache folder, unchanged.
    pub loaded: AtomicU64,
}

/// A copy of [`Runs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub full: u64,
    pub appended: u64,
    pub loaded: u64,
}

impl Runs {
    pub fn counts(&self) -> RunCounts {
        RunCounts {
            full: self.full.load(Ordering::Relaxed),
            appended: self.appended.load(Ordering::Relaxed),
            loaded: self.loaded.load(Ordering::Relaxed),
        }
    }
}

type Counts = BTreeMap<Option<String>, i64>;
type Pairs = BTreeMap<(Option<String>, Option<String>), i64>;

fn text(cell: Option<Cell>) -> Option<String> {
    cell.and_then(Cell::into_string)
}

fn counts(list: &[(Option<String>, i64)]) -> Counts {
    list.iter().cloned().collect()
}

fn pairs(list: &[(Option<String>, Option<String>, i64)]) -> Pairs {
    list.iter().map(|(a, b, n)| ((a.clone(), b.clone()), *n)).collect()
}

fn flat(map: Counts) -> Vec<(Option<String>, i64)> {
    map.into_iter().collect()
}

fn flat_pairs(map: Pairs) -> Vec<(Option<String>, Option<String>, i64)> {
    map.into_iter().map(|((a, b), n)| (a, b, n)).collect()
}

fn push_user(q: &mut Query, user: Option<i64>) {
    if let Some(user) = user {
        q.push(" WHERE user_id = ").bind_int(user);
    }
}

/// The UTC calendar day (`YYYY-MM-DD`) of a timestamp column. SQLite storage holds naive UTC
/// text, so the day is its first ten characters.
pub fn push_utc_day(q: &mut Query, column: &str) {
    match q.dialect {
        Dialect::Sqlite => q.push("substr(").push(column).push(", 1, 10)"),
        Dialect::Postgres => q.push("to_char(").push(column).push(" AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_expression_follows_the_dialect() {
        let mut q = Query::new(Dialect::Sqlite);
        push_utc_day(&mut q, "ctime");
        assert_eq!(q.sql, "substr(ctime, 1, 10)");
        let mut q = Query::new(Dialect::Postgres);
        push_utc_day(&mut q, "ctime");
        assert_eq!(q.sql, "to_char(ctime AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
    }
}
