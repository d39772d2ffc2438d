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
    /// The UUID of the node of that id: a database put in the place of another one with the
    /// same ids counts as changed, not grown.
    #[serde(default)]
    pub max_uuid: Option<String>,
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
    match dialect {
        // Only the rows with a process type (those of processes, a quarter of the rows in
        // `bench/make_big_profile.py`'s profile), found on the process_type index: the others'
        // counts per node type are the node type's count less these ([`from_full`]). About half
        // the work of grouping every row of the table (no index holds both columns).
        Dialect::Sqlite => q.push(
            "SELECT 2, node_type, process_type, count(*) FROM db_dbnode WHERE process_type IS NOT NULL \
             GROUP BY process_type, node_type",
        ),
        Dialect::Postgres => {
            q.push("SELECT 2, node_type, process_type, count(*) FROM db_dbnode GROUP BY node_type, process_type")
        }
    };
    q.push(" UNION ALL SELECT 3, ");
    push_uuid_of(&mut q, "(SELECT max(id) FROM db_dbnode)");
    q.push(", NULL, max(id) FROM db_dbnode");
    q
}

/// `(SELECT uuid FROM db_dbnode WHERE id = <id>)`, as text.
fn push_uuid_of(q: &mut Query, id: &str) {
    q.push("(SELECT ").uuid_text("uuid").push(" FROM db_dbnode WHERE id = ").push(id).push(")");
}

/// The [`Aggregates`] from the rows of [`full`] in `dialect`, and whether their days are right
/// (else the caller counts them with the plain `GROUP BY`, see [`days_checked`]).
pub fn from_full(dialect: Dialect, rows: Vec<Row>) -> (Aggregates, bool) {
    let (mut types, mut days, mut full) = (Counts::default(), Counts::default(), Pairs::default());
    let (mut max_id, mut max_uuid) = (None, None);
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
            _ => (max_id, max_uuid) = (value, a),
        }
    }
    if dialect == Dialect::Sqlite {
        // The nodes without a process type, per node type: all of the type less those with one.
        let mut without = types.clone();
        for ((node_type, _), n) in &full {
            *without.entry(node_type.clone()).or_default() -= n;
        }
        for (node_type, n) in without.into_iter().filter(|(_, n)| *n != 0) {
            full.insert((node_type, None), n);
        }
    }
    let count = types.values().sum();
    let (days, exact) = match days_checked(days) {
        Some(days) => (days, true),
        None => (Vec::new(), false),
    };
    (Aggregates { types: flat(types), days, full: flat_pairs(full), count, max_id, max_uuid }, exact)
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
/// the whole table: rows `(part, key1, key2, key3, count, id)`, part 0 the new rows grouped by
/// `node_type, process_type, day`, part 1 the count of all rows, part 2 the UUIDs of the node
/// `after` and of the node of the largest id, and that id. It reads a range of the primary key
/// (few rows) and counts the table on its smallest index.
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
    q.push(
        " GROUP BY 2, 3, 4 UNION ALL SELECT 1, NULL, NULL, NULL, count(*), NULL FROM db_dbnode UNION ALL SELECT 2, ",
    );
    let mut id = Query::new(dialect);
    id.bind_int(after);
    // The placeholder of `after` again (bound once, read twice).
    push_uuid_of(&mut q, &id.sql);
    q.push(", ");
    push_uuid_of(&mut q, "(SELECT max(id) FROM db_dbnode)");
    q.push(", NULL, NULL, (SELECT max(id) FROM db_dbnode)");
    q
}

/// `base` brought up to date with the rows of [`appended`] (over the ids above `base.max_id`),
/// or `None` when the table did not only grow: the rule is exact for a table whose rows are only
/// appended (as AiiDA's nodes are, their types and times never changing): the rows the table
/// holds now are those of `base` and the new ones exactly when `count(*) == base.count +
/// count(id > base.max_id)`. A deletion (with or without new rows) breaks the equality.
pub fn add_appended(base: &Aggregates, rows: Vec<Row>) -> Option<Aggregates> {
    let (mut types, mut days, mut full) = (counts(&base.types), counts(&base.days), pairs(&base.full));
    let (mut added, mut total, mut last) = (0, None, None);
    for row in rows {
        let mut cells = row.into_iter();
        match cells.next().and_then(|c| c.as_i64()) {
            Some(0) => {
                let (node_type, process_type, day) = (text(cells.next()), text(cells.next()), text(cells.next()));
                let n = cells.next().and_then(|c| c.as_i64()).unwrap_or(0);
                added += n;
                *types.entry(node_type.clone()).or_default() += n;
                *days.entry(day).or_default() += n;
                *full.entry((node_type, process_type)).or_default() += n;
            }
            Some(1) => total = cells.nth(3).and_then(|c| c.as_i64()),
            Some(2) => {
                let (then, now) = (text(cells.next()), text(cells.next()));
                last = Some((then, now, cells.nth(2).and_then(|c| c.as_i64())));
            }
            _ => return None,
        }
    }
    let (then, max_uuid, max_id) = last?;
    // The node that was the last one is still there, the same one.
    let same_last = base.max_uuid.is_none() || then == base.max_uuid;
    (same_last && then.is_some() && total? == base.count + added).then(|| Aggregates {
        types: flat(types),
        days: flat(days),
        full: flat_pairs(full),
        count: base.count + added,
        max_id,
        max_uuid,
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

    fn t(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    fn base() -> Aggregates {
        let rows = vec![
            vec![Cell::Int(0), t("data.Int."), Cell::Null, Cell::Int(2)],
            vec![Cell::Int(0), t("process.P."), Cell::Null, Cell::Int(1)],
            vec![Cell::Int(1), t("2024-01-02"), Cell::Null, Cell::Int(3)],
            vec![Cell::Int(2), t("process.P."), t("x"), Cell::Int(1)],
            vec![Cell::Int(2), t("data.Int."), Cell::Null, Cell::Int(2)],
            vec![Cell::Int(3), t("u7"), Cell::Null, Cell::Int(7)],
        ];
        let (all, exact) = from_full(Dialect::Postgres, rows);
        assert!(exact);
        all
    }

    #[test]
    fn the_full_rows_make_sorted_aggregates() {
        let all = base();
        assert_eq!((all.count, all.max_id), (3, Some(7)));
        assert_eq!(all.full[0], (Some("data.Int.".into()), None, 2));
        // A day that is not YYYY-MM-DD sends the caller to the plain GROUP BY.
        let (_, exact) = from_full(Dialect::Postgres, vec![vec![Cell::Int(1), t("2024"), Cell::Null, Cell::Int(1)]]);
        assert!(!exact);
        // An empty table.
        let (empty, _) = from_full(Dialect::Sqlite, vec![vec![Cell::Int(3), Cell::Null, Cell::Null, Cell::Null]]);
        assert_eq!((empty.count, empty.max_id), (0, None));
        // On SQLite the rows without a process type are what the node type's count leaves.
        let sqlite = vec![
            vec![Cell::Int(0), t("data.Int."), Cell::Null, Cell::Int(2)],
            vec![Cell::Int(0), t("process.P."), Cell::Null, Cell::Int(3)],
            vec![Cell::Int(0), Cell::Null, Cell::Null, Cell::Int(1)],
            vec![Cell::Int(2), t("process.P."), t("x"), Cell::Int(1)],
            vec![Cell::Int(2), t("process.P."), t("y"), Cell::Int(1)],
        ];
        let (all, _) = from_full(Dialect::Sqlite, sqlite);
        let expected = [
            (None, None, 1),
            (Some("data.Int.".to_string()), None, 2),
            (Some("process.P.".to_string()), None, 1),
            (Some("process.P.".to_string()), Some("x".to_string()), 1),
            (Some("process.P.".to_string()), Some("y".to_string()), 1),
        ];
        assert_eq!(all.full, expected);
    }

    #[test]
    fn appended_rows_are_added_when_the_table_only_grew() {
        let new = |n| vec![Cell::Int(0), t("data.Int."), Cell::Null, t("2024-01-03"), Cell::Int(n), Cell::Int(9)];
        let total = |n| vec![Cell::Int(1), Cell::Null, Cell::Null, Cell::Null, Cell::Int(n), Cell::Null];
        let last =
            |then: &str, now: &str, id| vec![Cell::Int(2), t(then), t(now), Cell::Null, Cell::Null, Cell::Int(id)];
        let grown = add_appended(&base(), vec![new(2), total(5), last("u7", "u9", 9)]).expect("only grown");
        assert_eq!((grown.count, grown.max_id, grown.max_uuid.as_deref()), (5, Some(9), Some("u9")));
        assert_eq!(grown.types[0], (Some("data.Int.".into()), 4));
        assert_eq!(grown.days, [(Some("2024-01-02".into()), 3), (Some("2024-01-03".into()), 2)]);
        assert_eq!(grown.full[0], (Some("data.Int.".into()), None, 4));
        // Nothing new: the same.
        assert_eq!(add_appended(&base(), vec![total(3), last("u7", "u7", 7)]), Some(base()));
        // A row deleted (with or without new ones): counted again.
        assert_eq!(add_appended(&base(), vec![total(2), last("u7", "u7", 7)]), None);
        assert_eq!(add_appended(&base(), vec![new(1), total(3), last("u7", "u9", 9)]), None);
        // Another node where the last one was (another database with the same ids), or none.
        assert_eq!(add_appended(&base(), vec![new(2), total(5), last("other", "u9", 9)]), None);
        let gone = vec![Cell::Int(2), Cell::Null, t("u9"), Cell::Null, Cell::Null, Cell::Int(9)];
        assert_eq!(add_appended(&base(), vec![new(2), total(5), gone]), None);
        // A part missing: not trusted.
        assert_eq!(add_appended(&base(), vec![new(1), last("u7", "u9", 9)]), None);
        assert_eq!(add_appended(&base(), vec![new(1), total(4)]), None);
        let q = appended(Dialect::Postgres, 7);
        assert!(q.sql.contains("WHERE id > $1::int8 GROUP BY 2, 3, 4"), "{}", q.sql);
        assert!(appended(Dialect::Sqlite, 7).sql.contains("db_dbnode NOT INDEXED WHERE id > ?1"));
    }
}
