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
