//! Deep pages: a window read with [`EntityList::rows`] (ids found first, on the ordering's
//! index, then the rows of the page) holds the same rows in the same order as the plain
//! `LIMIT ... OFFSET ...` over whole rows, for every orderable column of every collection,
//! ascending and descending, with and without conditions, on every backend.

use aiida_rest::query::QueryResult;
use aiida_rest::query::lists::{Collection, Conditions, EntityList, ListSpec, Scope, Unfiltered};
use aiida_rest::query::tables::Kind;
use aiida_rest::storage::db::{Db, Query};

use crate::harness::{self, Backend, DbLimits};

/// `<column> IS NOT NULL AND id % 3 <> 1`: a condition that keeps about two thirds of the rows.
struct Sparse;

impl Conditions for Sparse {
    fn push(&self, q: &mut Query, scope: &Scope<'_>) -> QueryResult<()> {
        q.push(" AND (").push(&scope.entity.qualified("id")).push(" % 3) <> ").bind_int(1);
        Ok(())
    }
}

/// Every ordering a client may ask of `collection`: each column but the JSON ones, in both
/// directions, alone and before a second column.
fn orderings(collection: Collection) -> Vec<Vec<(String, bool)>> {
    let entity = collection.entity();
    let names: Vec<&str> = entity
        .columns
        .iter()
        .filter(|c| c.kind != Kind::Json && entity.usable_column(c.name).is_ok())
        .map(|c| c.name)
        .collect();
    let mut out = vec![Vec::new()];
    for name in &names {
        for desc in [false, true] {
            out.push(vec![(name.to_string(), desc)]);
            out.push(vec![(name.to_string(), desc), ("id".to_string(), !desc)]);
        }
    }
    if collection == Collection::Nodes {
        out.push(vec![("node_type".into(), false), ("ctime".into(), true)]);
        out.push(vec![("process_type".into(), true), ("label".into(), false), ("mtime".into(), true)]);
    }
    out
}

/// `(limit, offset)` of the windows read (besides those at the end of each list).
const WINDOWS: [(i64, i64); 8] = [(25, 0), (25, 1), (7, 13), (1, 40), (25, 41), (25, 100), (50, 300), (20, 333)];

async fn compare(db: &Db, what: &str) {
    let mut pages = 0;
    for collection in [Collection::Nodes, Collection::Computers, Collection::Users, Collection::Groups] {
        for orderby in orderings(collection) {
            for (filtered, conditions) in [(false, &Unfiltered as &dyn Conditions), (true, &Sparse)] {
                let spec =
                    ListSpec { collection, pk: None, conditions, orderby: &orderby, attributes: false, extras: false };
                let reference = EntityList::new(db.dialect(), spec).unwrap();
                let total = reference.count(db).await.unwrap();
                let expected_all = reference.rows_by_offset(db, total + 1, 0).await.unwrap();
                assert_eq!(expected_all.len() as i64, total);
                // Remembered starts every few rows, so that small tables have deep pages; and
                // finer ones between them, read twice so that the second pass starts from them.
                for (every, fine) in [(0, 0), (1, 0), (7, 0), (40, 0), (7, 3), (40, 1), (40, 7), (40, 7)] {
                    let list = EntityList::new(db.dialect(), spec).unwrap().with_boundaries(every, fine);
                    for (limit, offset) in
                        WINDOWS.iter().copied().chain([(25, total - 5), (25, total), (3, total + 10)])
                    {
                        let offset = offset.max(0);
                        let got = list.rows(db, limit, offset).await.unwrap();
                        let expected = reference.rows_by_offset(db, limit, offset).await.unwrap();
                        let context = format!(
                            "{what}: {collection:?} ordered by {orderby:?} (filtered: {filtered}), {limit} rows from {offset}, boundaries every {every}"
                        );
                        assert_eq!(got, expected, "{context}");
                        let start = offset.min(total) as usize;
                        let end = (offset + limit).min(total) as usize;
                        assert_eq!(got, expected_all[start..end], "{context}: a window of the whole");
                        pages += 1;
                    }
                }
            }
        }
    }
    assert!(pages > 500, "{pages} pages compared");
}

#[tokio::test]
async fn deep_pages_match_the_plain_offset_on_the_archive() {
    let storage = harness::open(Backend::Archive, DbLimits::default()).await.unwrap();
    compare(&storage.db, "archive").await;
}

#[tokio::test]
async fn deep_pages_match_the_plain_offset_on_the_profile() {
    let storage = harness::open(Backend::Profile, DbLimits::default()).await.unwrap();
    compare(&storage.db, "profile").await;
}

#[tokio::test]
async fn deep_pages_match_the_plain_offset_on_postgres() {
    if harness::pg::shared().is_none() {
        return;
    }
    let storage = harness::open(Backend::Postgres, DbLimits::default()).await.unwrap();
    compare(&storage.db, "postgres").await;
}

/// Pages read one after the other, then again in another order, from a list with
/// boundaries every `every` rows and fine ones every `fine` rows: the rows of each page are
/// those of the plain offset, and the pages skip fewer rows than `fine` once the fine
/// boundaries are kept (fewer than `2 * fine` on the way there). Returns the rows the first
/// pass skipped in all and the most rows a page of the second pass skipped.
async fn paging(
    backend: Backend,
    orderby: &[(String, bool)],
    conditions: &dyn Conditions,
    every: i64,
    fine: i64,
) -> (i64, i64, aiida_rest::storage::Storage) {
    // A storage of its own, with caches of its own.
    let storage = harness::open(backend, DbLimits::default()).await.unwrap();
    let db = &storage.db;
    let spec =
        ListSpec { collection: Collection::Nodes, pk: None, conditions, orderby, attributes: false, extras: false };
    let reference = EntityList::new(db.dialect(), spec).unwrap();
    let total = reference.count(db).await.unwrap();
    let expected_all = reference.rows_by_offset(db, total + 1, 0).await.unwrap();
    assert!(total > 4 * every, "{total} rows");
    let list = EntityList::new(db.dialect(), spec).unwrap().with_boundaries(every, fine);
    let perpage = 3;
    let offsets: Vec<i64> = (0..total).step_by(perpage as usize).collect();
    let context = format!("{orderby:?}, boundaries every {every} and {fine}");
    let mut most = 0;
    for offset in &offsets {
        let before = list.rows_skipped();
        let got = list.rows(db, perpage, *offset).await.unwrap();
        let end = (offset + perpage).min(total) as usize;
        assert_eq!(got, expected_all[*offset as usize..end], "{context}: page at {offset}");
        most = most.max(list.rows_skipped() - before);
    }
    if fine > 0 {
        assert!(most < 2 * fine, "{context}: {most} rows skipped by a page of the first pass");
    }
    let first_pass = list.rows_skipped();
    let mut most = 0;
    for (i, offset) in offsets.iter().enumerate().rev() {
        // Other windows than those of the first pass, none after its last.
        let offset = (offset + i as i64 % 3).min(*offsets.last().unwrap());
        let before = list.rows_skipped();
        let got = list.rows(db, perpage, offset).await.unwrap();
        let end = (offset + perpage).min(total) as usize;
        assert_eq!(got, expected_all[offset as usize..end], "{context}: second page at {offset}");
        most = most.max(list.rows_skipped() - before);
    }
    (first_pass, most, storage)
}

/// `(orderby, filtered)` of the paging tests: descending with ties broken by ascending ids,
/// ascending, several terms in mixed directions, and one over a column of many ties.
fn paging_orderings() -> Vec<(Vec<(String, bool)>, bool)> {
    let o = |terms: &[(&str, bool)]| terms.iter().map(|(n, d)| (n.to_string(), *d)).collect::<Vec<_>>();
    vec![
        (o(&[("ctime", true)]), false),
        (o(&[("ctime", false)]), true),
        (o(&[("ctime", true)]), true),
        (o(&[("node_type", false), ("ctime", true)]), false),
        (o(&[("label", true)]), true),
        (o(&[("process_type", true), ("label", false), ("mtime", true)]), false),
        (o(&[("id", true)]), false),
    ]
}

async fn fine_paging(backend: Backend) {
    for (orderby, filtered) in paging_orderings() {
        let conditions: &dyn Conditions = if filtered { &Sparse } else { &Unfiltered };
        let (sequential, most, storage) = paging(backend, &orderby, conditions, 40, 5).await;
        assert!(most < 5, "{orderby:?}: {most} rows skipped by a page after the fine boundaries were kept");
        // They are kept apart from the result cache, one per 5 rows, and bounded.
        let (entries, bytes) = storage.db.boundaries().size();
        assert!(entries > 20 && bytes > 0 && bytes < 4 << 20, "{entries} entries, {bytes} bytes");
        // Without fine boundaries, the same pages skip up to the coarse distance.
        let (sequential_coarse, most, storage) = paging(backend, &orderby, conditions, 40, 0).await;
        assert!(most >= 30, "{orderby:?}: {most} rows skipped without fine boundaries");
        assert!(
            3 * sequential < sequential_coarse,
            "{orderby:?}: paging one page after the other skipped {sequential} rows, {sequential_coarse} without fine boundaries"
        );
        assert_eq!(storage.db.boundaries().size(), (0, 0));
    }
}

#[tokio::test]
async fn fine_boundaries_bound_the_rows_a_page_skips_on_the_profile() {
    fine_paging(Backend::Profile).await;
}

#[tokio::test]
async fn fine_boundaries_bound_the_rows_a_page_skips_on_the_archive() {
    fine_paging(Backend::Archive).await;
}

/// On PostgreSQL the fingerprint moves with any write to the shared test cluster, which
/// drops the fine boundaries; the pages' rows are checked, not the rows they skip.
#[tokio::test]
async fn fine_boundaries_keep_the_rows_of_pages_on_postgres() {
    if harness::pg::shared().is_none() {
        return;
    }
    let storage = harness::open(Backend::Postgres, DbLimits::default()).await.unwrap();
    let db = &storage.db;
    for (orderby, filtered) in paging_orderings() {
        let conditions: &dyn Conditions = if filtered { &Sparse } else { &Unfiltered };
        let spec = ListSpec {
            collection: Collection::Nodes,
            pk: None,
            conditions,
            orderby: &orderby,
            attributes: false,
            extras: false,
        };
        let reference = EntityList::new(db.dialect(), spec).unwrap();
        let total = reference.count(db).await.unwrap();
        let expected_all = reference.rows_by_offset(db, total + 1, 0).await.unwrap();
        let list = EntityList::new(db.dialect(), spec).unwrap().with_boundaries(40, 5);
        for pass in 0..2 {
            for offset in (0..total).step_by(3) {
                let offset = (offset + pass).min(total - 1);
                let got = list.rows(db, 3, offset).await.unwrap();
                let end = (offset + 3).min(total) as usize;
                assert_eq!(got, expected_all[offset as usize..end], "{orderby:?} (filtered: {filtered}) at {offset}");
            }
        }
    }
}

/// Nodes whose node type compares (`LIKE` or `=`) with a text, which SQLite can read from the
/// node type's index: a range of keys for a pattern, one key for `=`.
struct NodeType(&'static str, &'static str);

impl Conditions for NodeType {
    fn push(&self, q: &mut Query, scope: &Scope<'_>) -> QueryResult<()> {
        q.push(" AND ").push(&scope.entity.qualified("node_type")).push(self.0).bind_text(self.1);
        Ok(())
    }
}

/// On SQLite a list ordered by id whose conditions match many of the table's rows, and that
/// SQLite would read from a range of the conditions' index and sort, is read in id order (SQLite
/// has no statistics for an AiiDA database, and would read and sort every match for a page);
/// one that matches few, or one key of the index (already in id order), is read from the
/// index; another ordering is left to SQLite; a list not counted yet is not decided on. The
/// rows are those of the plain offset either way, and PostgreSQL, which has statistics, is left
/// alone.
#[tokio::test]
async fn dense_lists_are_read_in_id_order_on_sqlite() {
    let mut backends = vec![Backend::Profile, Backend::Archive];
    if harness::pg::shared().is_some() {
        backends.push(Backend::Postgres);
    }
    // The fixture: 459 nodes, 343 of them data, 189 Int, 2 BandsData.
    let by_id = [("id".to_string(), false)];
    let by_ctime = [("ctime".to_string(), false)];
    let by_id_descending = [("id".to_string(), true)];
    for backend in backends {
        let storage = harness::open(backend, DbLimits::default()).await.unwrap();
        let db = &storage.db;
        let sqlite = backend != Backend::Postgres;
        let mut counted = Vec::new();
        for (op, pattern, orderby, expected) in [
            (" LIKE ", "data.%", &by_id[..], sqlite),
            (" LIKE ", "data.%", &by_id_descending[..], sqlite),
            (" LIKE ", "data.core.array.bands.%", &by_id[..], false),
            (" LIKE ", "data.%", &by_ctime[..], false),
            // One key of the index: the rows come in id order, no sort to spare.
            (" = ", "data.core.int.Int.", &by_id[..], false),
        ] {
            let conditions = NodeType(op, pattern);
            let spec = ListSpec {
                collection: Collection::Nodes,
                pk: None,
                conditions: &conditions,
                orderby,
                attributes: false,
                extras: false,
            };
            let list = EntityList::new(db.dialect(), spec).unwrap();
            let plain = EntityList::new(db.dialect(), spec).unwrap();
            // Not counted yet (the first list of a storage): nothing to decide on.
            if !counted.contains(&pattern) {
                list.rows(db, 5, 0).await.unwrap();
                assert!(!list.read_in_id_order(), "{backend:?} {pattern}: decided without a count");
                counted.push(pattern);
            }
            list.count(db).await.unwrap();
            for (limit, offset) in [(5, 0), (5, 120), (3, 330)] {
                let rows = list.rows(db, limit, offset).await.unwrap();
                assert_eq!(list.read_in_id_order(), expected, "{backend:?} {pattern} {orderby:?}");
                assert_eq!(rows, plain.rows_by_offset(db, limit, offset).await.unwrap(), "{backend:?} {pattern}");
            }
        }
    }
}
