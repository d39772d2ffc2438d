//! Results of expensive read queries (counts, statistics), kept while the database is
//! unchanged. Each entry remembers the database fingerprint it was computed at; a different
//! fingerprint means the data may have changed and the entry is recomputed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::{Query, Row};

/// Most entries kept; the oldest goes first.
const CAPACITY: usize = 4096;
/// Results with more cells than this are not worth the memory.
const MAX_CELLS: usize = 20_000;
/// Queries whose text and parameters are longer are not cached: clients choose filter values,
/// and long ones would let them fill the memory.
const MAX_KEY_BYTES: usize = 2048;

#[derive(Default)]
pub struct ResultCache {
    inner: Mutex<Entries>,
    /// One lock per query being computed, so that a burst of identical requests (the explorer's
    /// statistics on a cold cache) runs the expensive query once and the others wait for it.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Cached reads answered from the cache, and those computed (for `/metrics`).
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    /// The fine page boundaries of sorted lists, apart so that they never crowd out the
    /// results above.
    pub(super) boundaries: BoundaryCache,
    /// The whole-table aggregates of the statistics and type trees (kept apart: they are
    /// brought up to date rather than recomputed, and saved, see `Db::aggregates`).
    pub(super) aggregates: super::aggregates::Slot,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, (String, Vec<Row>)>,
    order: VecDeque<String>,
}

/// The cache key of a query: its text and its parameters.
pub fn key(query: &Query) -> String {
    format!("{}\u{0}{:?}", query.sql, query.params)
}

impl ResultCache {
    /// The lock that serialises computations of `key`.
    pub fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut inflight = self.inflight.lock().expect("cache lock");
        // Locks nobody holds or waits for are dropped, so the map stays as small as the burst.
        inflight.retain(|_, lock| Arc::strong_count(lock) > 1);
        inflight.entry(key.to_string()).or_default().clone()
    }

    pub fn get(&self, key: &str, fingerprint: &str) -> Option<Vec<Row>> {
        let entries = self.inner.lock().expect("cache lock");
        match entries.map.get(key) {
            Some((fp, rows)) if fp == fingerprint => Some(rows.clone()),
            _ => None,
        }
    }

    pub fn put(&self, key: String, fingerprint: String, rows: &[Row]) {
        if key.len() > MAX_KEY_BYTES || rows.iter().map(Vec::len).sum::<usize>() > MAX_CELLS {
            return;
        }
        let mut entries = self.inner.lock().expect("cache lock");
        if !entries.map.contains_key(&key) {
            if entries.order.len() >= CAPACITY
                && let Some(oldest) = entries.order.pop_front()
            {
                entries.map.remove(&oldest);
            }
            entries.order.push_back(key.clone());
        }
        entries.map.insert(key, (fingerprint, rows.to_vec()));
    }
}

/// Most fine page boundaries kept per database, and the most bytes they take (keys, values and
/// bookkeeping, estimated); the oldest goes first.
const BOUNDARY_CAPACITY: usize = 8192;
const BOUNDARY_MAX_BYTES: usize = 4 << 20;
/// What one entry costs besides its key and cells: the map slot, the queue slot, the vectors.
const BOUNDARY_OVERHEAD: usize = 96;

/// Rows of sorted lists that pages start from (the ordering's values of the row at a
/// position, keyed by the query that finds it), all of one database fingerprint: an entry is
/// only answered under the fingerprint it was found at, and the first use of another
/// fingerprint drops every entry (archives never change; profiles and PostgreSQL databases
/// when their fingerprint moves). Bounded by entries and bytes.
#[derive(Default)]
pub struct BoundaryCache {
    inner: Mutex<Boundaries>,
}

#[derive(Default)]
struct Boundaries {
    fingerprint: String,
    map: HashMap<String, Row>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Boundaries {
    fn cost(key: &str, row: &Row) -> usize {
        let cells: usize =
            row.iter().map(|c| std::mem::size_of::<super::Cell>() + c.as_str().map_or(0, str::len)).sum();
        // The key is held twice: in the map and in the queue.
        2 * key.len() + cells + BOUNDARY_OVERHEAD
    }

    /// Forgets everything when `fingerprint` is not the one the entries were found at.
    fn at(&mut self, fingerprint: &str) {
        if self.fingerprint != fingerprint {
            *self = Boundaries { fingerprint: fingerprint.to_string(), ..Boundaries::default() };
        }
    }
}

impl BoundaryCache {
    /// The row kept for `query` at `fingerprint`.
    pub fn get(&self, query: &Query, fingerprint: &str) -> Option<Row> {
        let mut entries = self.inner.lock().expect("boundary cache lock");
        entries.at(fingerprint);
        entries.map.get(&key(query)).cloned()
    }

    /// Keeps `row` as the answer of `query` at `fingerprint`.
    pub fn put(&self, query: &Query, fingerprint: &str, row: Row) {
        let key = key(query);
        if key.len() > MAX_KEY_BYTES {
            return;
        }
        let cost = Boundaries::cost(&key, &row);
        let mut entries = self.inner.lock().expect("boundary cache lock");
        entries.at(fingerprint);
        // Under one fingerprint the row at a position is always the same one.
        if entries.map.contains_key(&key) {
            return;
        }
        while entries.order.len() >= BOUNDARY_CAPACITY || entries.bytes + cost > BOUNDARY_MAX_BYTES {
            let Some(oldest) = entries.order.pop_front() else { break };
            if let Some(old) = entries.map.remove(&oldest) {
                entries.bytes -= Boundaries::cost(&oldest, &old);
            }
        }
        entries.bytes += cost;
        entries.order.push_back(key.clone());
        entries.map.insert(key, row);
    }

    /// How many entries are kept, and their estimated bytes.
    pub fn size(&self) -> (usize, usize) {
        let entries = self.inner.lock().expect("boundary cache lock");
        (entries.map.len(), entries.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::db::Cell;

    #[test]
    fn entries_expire_with_the_fingerprint() {
        let cache = ResultCache::default();
        let rows = vec![vec![Cell::Int(3)]];
        cache.put("q".into(), "v1".into(), &rows);
        assert_eq!(cache.get("q", "v1"), Some(rows));
        assert_eq!(cache.get("q", "v2"), None);
        assert_eq!(cache.get("other", "v1"), None);
    }

    #[test]
    fn identical_queries_share_one_flight() {
        let cache = ResultCache::default();
        let a = cache.flight("q");
        let b = cache.flight("q");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &cache.flight("other")));
        drop((a, b));
        // Unused locks are dropped on the next call.
        let _c = cache.flight("third");
        assert_eq!(cache.inflight.lock().unwrap().len(), 1);
    }

    #[test]
    fn long_keys_are_not_kept() {
        let cache = ResultCache::default();
        let key = "x".repeat(MAX_KEY_BYTES + 1);
        cache.put(key.clone(), "v".into(), &[vec![Cell::Int(1)]]);
        assert_eq!(cache.get(&key, "v"), None);
    }

    fn position(i: i64) -> Query {
        let mut q = Query::new(crate::storage::db::Dialect::Sqlite);
        q.push("SELECT x FROM t ORDER BY x LIMIT 1 OFFSET ").bind_int(i);
        q
    }

    #[test]
    fn boundaries_are_kept_under_one_fingerprint() {
        let cache = BoundaryCache::default();
        let row = vec![Cell::Text("2024-01-01 00:00:00".into()), Cell::Int(7)];
        cache.put(&position(100), "v1", row.clone());
        assert_eq!(cache.get(&position(100), "v1"), Some(row.clone()));
        assert_eq!(cache.get(&position(200), "v1"), None);
        // Another fingerprint forgets everything, also for the old one.
        assert_eq!(cache.get(&position(100), "v2"), None);
        assert_eq!(cache.size(), (0, 0));
        assert_eq!(cache.get(&position(100), "v1"), None);
        // Putting the same key twice keeps one entry.
        cache.put(&position(100), "v1", row.clone());
        cache.put(&position(100), "v1", row.clone());
        assert_eq!(cache.size().0, 1);
        assert_eq!(cache.size().1, Boundaries::cost(&key(&position(100)), &row));
    }

    #[test]
    fn boundaries_are_bounded_by_entries_and_bytes() {
        let cache = BoundaryCache::default();
        for i in 0..BOUNDARY_CAPACITY as i64 + 10 {
            cache.put(&position(i), "v", vec![Cell::Int(i)]);
        }
        let (entries, bytes) = cache.size();
        assert_eq!(entries, BOUNDARY_CAPACITY);
        assert!(bytes <= BOUNDARY_MAX_BYTES);
        assert_eq!(cache.get(&position(0), "v"), None);
        assert!(cache.get(&position(BOUNDARY_CAPACITY as i64 + 9), "v").is_some());
        // Large values: the bytes bound holds first.
        let big = || vec![Cell::Text("x".repeat(100_000))];
        for i in 0..100 {
            cache.put(&position(i), "w", big());
        }
        let (entries, bytes) = cache.size();
        assert!(bytes <= BOUNDARY_MAX_BYTES, "{bytes}");
        assert!(entries < 100 && entries > 10, "{entries}");
        assert!(cache.get(&position(99), "w").is_some());
        assert_eq!(cache.get(&position(0), "w"), None);
    }

    #[test]
    fn capacity_is_bounded() {
        let cache = ResultCache::default();
        for i in 0..CAPACITY + 10 {
            cache.put(format!("q{i}"), "v".into(), &[vec![Cell::Int(i as i64)]]);
        }
        assert_eq!(cache.get("q0", "v"), None);
        assert!(cache.get(&format!("q{}", CAPACITY + 9), "v").is_some());
        assert!(cache.inner.lock().unwrap().map.len() <= CAPACITY);
    }
}
