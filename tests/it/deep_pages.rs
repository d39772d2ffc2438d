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
                // Remembered starts every few rows, so that small tables have deep pages.
                for every in [0, 1, 7, 40] {
                    let list = EntityList::new(db.dialect(), spec).unwrap().with_boundaries_every(every);
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
