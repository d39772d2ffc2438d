//! Database access: a bounded pool of read-only connections and a tiny row model that both
//! backends produce, so the query layer above does not care which database it talks to.

pub mod aggregates;
pub mod cache;
pub mod persisted;
mod postgres;
pub mod sql;
mod sqlite;

pub use postgres::PgPool;
pub use sql::{Dialect, Param, Query};
pub use sqlite::{CheckError, SqlitePool};

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

/// Most client-built queries (the QueryBuilder's) that use one database at once; others wait.
/// They leave the pool's other connections to the rest of the API.
pub const CLIENT_QUERIES: usize = 4;

/// A query whose row limit is above this makes a large answer (`/nodes?limit=-1`, big pages):
/// large answers run under their own bound, [`large_answers`] of the pool's connections, so
/// that cheap requests always find a free connection.
pub const LARGE_ROWS: i64 = 1_000;

/// How long a large answer waits for its turn before it is answered with a 503.
const LARGE_WAIT: Duration = Duration::from_secs(30);

/// How many large answers may run at once on a pool of `max_connections`: half of them (at
/// least one), so the other half stays for the rest of the API.
pub fn large_answers(max_connections: usize) -> usize {
    (max_connections / 2).max(1)
}

/// What a pool keeps the same way whatever its database: its limits, the turns its queries
/// take (a connection, a client query's, a large answer's), the result cache, and the count of
/// queries stopped because their caller went away.
pub(super) struct Common {
    pub(super) limits: DbLimits,
    pub(super) permits: Semaphore,
    pub(super) cache: cache::ResultCache,
    pub(super) client_queries: Bound,
    pub(super) large_answers: Bound,
    pub(super) cancelled: std::sync::atomic::AtomicU64,
}

impl Common {
    pub(super) fn new(limits: DbLimits) -> Self {
        Common {
            permits: Semaphore::new(limits.max_connections.max(1)),
            cache: cache::ResultCache::default(),
            client_queries: Bound::new(CLIENT_QUERIES),
            large_answers: Bound::new(large_answers(limits.max_connections)),
            cancelled: std::sync::atomic::AtomicU64::new(0),
            limits,
        }
    }

    /// Connections running a query now, and the most there may be.
    fn connections(&self) -> (usize, usize) {
        let size = self.limits.max_connections.max(1);
        (size.saturating_sub(self.permits.available_permits()), size)
    }
}

/// A bound on how many queries of one kind run at once on one database.
#[derive(Debug)]
pub struct Bound {
    permits: Semaphore,
    size: usize,
}

impl Bound {
    pub fn new(size: usize) -> Self {
        Self { permits: Semaphore::new(size), size }
    }

    /// How many may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A turn, held until the permit is dropped; `None` when none came within `wait`.
    pub async fn acquire(&self, wait: Duration) -> Option<SemaphorePermit<'_>> {
        tokio::time::timeout(wait, self.permits.acquire()).await.ok()?.ok()
    }
}

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

/// How a database is used: its pool, its result cache, its cancelled queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbUsage {
    /// Connections running a query now, of at most `max_connections`.
    pub connections_in_use: usize,
    pub max_connections: usize,
    /// Counts and statistics answered from the result cache, and those computed.
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Queries stopped because their request went away (or timed out).
    pub cancelled_queries: u64,
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

    /// The rows of `query`. A large answer (row limit above [`LARGE_ROWS`]) first waits for a
    /// turn of its own bound. Dropping the future stops the query on the database.
    pub async fn fetch_all(&self, query: Query) -> Result<Vec<Row>, DbError> {
        let _turn = match query.row_limit() {
            Some(rows) if rows > LARGE_ROWS => {
                let bound = self.large_answers();
                Some(bound.acquire(LARGE_WAIT).await.ok_or_else(|| {
                    DbError::Unavailable(format!(
                        "the server is busy: {} large answers kept running for {} s; try again later",
                        bound.size(),
                        LARGE_WAIT.as_secs()
                    ))
                })?)
            }
            _ => None,
        };
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

    fn common(&self) -> &Common {
        match self {
            Db::Sqlite(pool) => pool.common(),
            Db::Postgres(pool) => pool.common(),
        }
    }

    /// The bound on client-built queries (the QueryBuilder's) running at once on this database.
    pub fn client_queries(&self) -> &Bound {
        &self.common().client_queries
    }

    /// The bound on large answers (see [`LARGE_ROWS`]).
    pub fn large_answers(&self) -> &Bound {
        &self.common().large_answers
    }

    /// How many queries were stopped because their caller went away (the request was dropped).
    pub fn cancelled_queries(&self) -> u64 {
        self.common().cancelled.load(Ordering::Relaxed)
    }

    /// How the database is used now (for `/metrics`).
    pub fn usage(&self) -> DbUsage {
        let (in_use, size) = self.common().connections();
        let cache = self.cache();
        DbUsage {
            connections_in_use: in_use,
            max_connections: size,
            cache_hits: cache.hits.load(Ordering::Relaxed),
            cache_misses: cache.misses.load(Ordering::Relaxed),
            cancelled_queries: self.cancelled_queries(),
        }
    }

    /// A token that changes whenever the database content may have changed, or `None` when
    /// that cannot be known (then nothing is cached).
    pub async fn fingerprint(&self) -> Option<String> {
        match self {
            Db::Sqlite(pool) => pool.fingerprint(),
            Db::Postgres(pool) => pool.fingerprint().await,
        }
    }

    fn cache(&self) -> &cache::ResultCache {
        &self.common().cache
    }

    /// The fine page boundaries of sorted lists kept for this database (the query layer's
    /// deep pages), apart from the result cache.
    pub fn boundaries(&self) -> &cache::BoundaryCache {
        &self.cache().boundaries
    }

    /// The count of `query` when [`Db::fetch_count_cached`] has it for the database as it is
    /// now; nothing runs on the database.
    pub async fn count_if_cached(&self, query: &Query) -> Option<i64> {
        let fingerprint = self.fingerprint().await?;
        let rows = self.cache().get(&cache::key(query), &fingerprint)?;
        rows.first().and_then(|r| r.first()).and_then(Cell::as_i64)
    }

    /// [`Db::fetch_all`] for expensive queries over large tables (counts, statistics): the
    /// result is reused until the database changes.
    pub async fn fetch_all_cached(&self, query: Query) -> Result<Vec<Row>, DbError> {
        let Some(fingerprint) = self.fingerprint().await else {
            return self.fetch_all(query).await;
        };
        let key = cache::key(&query);
        let cache = self.cache();
        if let Some(rows) = cache.get(&key, &fingerprint) {
            cache.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(rows);
        }
        let flight = cache.flight(&key);
        let _turn = flight.lock().await;
        // Whoever held the lock before may have computed it meanwhile.
        if let Some(rows) = cache.get(&key, &fingerprint) {
            cache.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(rows);
        }
        cache.misses.fetch_add(1, Ordering::Relaxed);
        let rows = self.fetch_all(query).await?;
        self.cache().put(key, fingerprint, &rows);
        Ok(rows)
    }

    /// Brings the whole-table [`aggregates::Aggregates`] up to date in the background as the
    /// storage opens (`origin` names it for the cache folder of [`persisted::cache_dir`], read
    /// now), so that the statistics and type trees answer at once from the first request on.
    /// Requests are served meanwhile; one that needs the aggregates waits for this computation
    /// rather than starting its own. Failures are only logged: the request that needs the
    /// answer then meets them itself.
    pub fn warm_up(&self, origin: persisted::Origin) {
        {
            let dir = persisted::cache_dir().filter(|_| !matches!(origin, persisted::Origin::Unnamed));
            // Files are named now, as they were opened (an archive replaced later is another one).
            let frozen = matches!(self, Db::Sqlite(pool) if pool.fingerprint().as_deref() == Some("immutable"));
            let identity = dir.as_ref().and_then(|_| origin.identity(frozen));
            let mut state = self.cache().aggregates.state.lock().unwrap_or_else(|e| e.into_inner());
            (state.dir, state.identity) = (dir, identity);
            state.origin = origin;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let db = self.clone();
        runtime.spawn(async move {
            let started = std::time::Instant::now();
            match db.aggregates().await {
                Ok(_) => tracing::debug!("statistics warmed up in {:?}", started.elapsed()),
                Err(e) => tracing::debug!("statistics warm-up failed: {e}"),
            }
        });
    }

    /// The counts of every node by type, creation day and `(node_type, process_type)`, as the
    /// database holds them now (up to the fingerprint read first, as [`Db::fetch_all_cached`]).
    ///
    /// Kept per fingerprint; when it moves, the latest aggregates (or those saved in the cache
    /// folder, at a server's start) are brought up to date with the rows appended since when
    /// the table only grew ([`aggregates::add_appended`]), and computed again over the whole
    /// table otherwise. Saved in the cache folder after each change.
    pub async fn aggregates(&self) -> Result<Arc<aggregates::Aggregates>, DbError> {
        let slot = &self.cache().aggregates;
        let Some(fingerprint) = self.fingerprint().await else {
            // Nothing can be kept: the database cannot tell whether it changed.
            slot.runs.full.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::new(self.aggregates_of_all().await?));
        };
        if let Some(found) = slot.at(&fingerprint) {
            self.cache().hits.fetch_add(1, Ordering::Relaxed);
            return Ok(found);
        }
        let _turn = slot.turn.lock().await;
        if let Some(found) = slot.at(&fingerprint) {
            self.cache().hits.fetch_add(1, Ordering::Relaxed);
            return Ok(found);
        }
        self.cache().misses.fetch_add(1, Ordering::Relaxed);
        let (latest, appendable, dir) = {
            let state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
            (state.latest.as_ref().map(|(_, a)| a.clone()), state.origin.appendable(), state.dir.clone())
        };
        // Where they are saved, and the state of the storage now.
        let saved_as = match &dir {
            Some(dir) => self.saved_identity().await.map(|(identity, stamp)| {
                let state = stamp.unwrap_or_else(|| fingerprint.clone());
                (dir.clone(), identity, state)
            }),
            None => None,
        };
        let mut base = latest;
        if base.is_none()
            && let Some((dir, identity, state)) = saved_as.clone()
        {
            let found =
                tokio::task::spawn_blocking(move || persisted::load(&dir, &identity).map(|f| (f.0 == state, f.1)))
                    .await
                    .ok()
                    .flatten();
            match found {
                Some((true, saved)) => {
                    slot.runs.loaded.fetch_add(1, Ordering::Relaxed);
                    let saved = Arc::new(saved);
                    slot.state.lock().unwrap_or_else(|e| e.into_inner()).latest = Some((fingerprint, saved.clone()));
                    return Ok(saved);
                }
                Some((false, saved)) => base = Some(Arc::new(saved)),
                None => {}
            }
        }
        let mut fresh = None;
        if appendable
            && let Some(base) = &base
            && let Some(after) = base.max_id
        {
            let rows = self.fetch_all(aggregates::appended(self.dialect(), after)).await?;
            fresh = aggregates::add_appended(base, rows);
            if fresh.is_some() {
                slot.runs.appended.fetch_add(1, Ordering::Relaxed);
            } else {
                tracing::debug!("the node table did not only grow: counting it all again");
            }
        }
        let fresh = match fresh {
            Some(fresh) => fresh,
            None => {
                slot.runs.full.fetch_add(1, Ordering::Relaxed);
                self.aggregates_of_all().await?
            }
        };
        let fresh = Arc::new(fresh);
        // Saved first, so that whoever sees them in the slot finds them saved too.
        if let Some((dir, identity, state)) = saved_as {
            let saved = fresh.clone();
            let _ = tokio::task::spawn_blocking(move || persisted::store(&dir, &identity, &state, &saved)).await;
        }
        slot.state.lock().unwrap_or_else(|e| e.into_inner()).latest = Some((fingerprint, fresh.clone()));
        Ok(fresh)
    }

    /// The aggregates computed over the whole table.
    async fn aggregates_of_all(&self) -> Result<aggregates::Aggregates, DbError> {
        let rows = self.fetch_all(aggregates::full(self.dialect())).await?;
        let (mut all, days_exact) = aggregates::from_full(self.dialect(), rows);
        if !days_exact {
            all.days = aggregates::days_of(self.fetch_all(aggregates::ctime_days(self.dialect(), None)).await?);
        }
        Ok(all)
    }

    /// The identity of the storage in the cache folder, and its state when it does not come
    /// from the database fingerprint (an archive's). `None` when it is not saved.
    async fn saved_identity(&self) -> Option<(String, Option<String>)> {
        let origin = {
            let state = self.cache().aggregates.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(known) = &state.identity {
                return Some(known.clone());
            }
            state.origin.clone()
        };
        let identity = match origin {
            persisted::Origin::Postgres => {
                let scalar = |sql: &str| {
                    let mut q = self.query();
                    q.push(sql);
                    async move { self.fetch_optional(q).await.ok().flatten()?.into_iter().next()?.into_string() }
                };
                let database = scalar(persisted::POSTGRES_IDENTITY).await?;
                let system = scalar(persisted::POSTGRES_SYSTEM_ID).await;
                (persisted::postgres_identity(system.as_deref(), &database), None)
            }
            // Named as the storage opened (see `warm_up`), or not saved.
            _ => return None,
        };
        self.cache().aggregates.state.lock().unwrap_or_else(|e| e.into_inner()).identity = Some(identity.clone());
        Some(identity)
    }

    /// How the whole-table aggregates were obtained since the database opened.
    pub fn aggregate_runs(&self) -> aggregates::RunCounts {
        self.cache().aggregates.runs.counts()
    }

    /// [`Db::fetch_count`] through the cache of [`Db::fetch_all_cached`].
    pub async fn fetch_count_cached(&self, query: Query) -> Result<i64, DbError> {
        let rows = self.fetch_all_cached(query).await?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Cell::as_i64).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Many tasks asking at once: never more than the bound hold a turn, and all get one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_bound_admits_at_most_its_size() {
        let bound = Arc::new(Bound::new(CLIENT_QUERIES));
        let (running, most, done) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..4 * CLIENT_QUERIES)
            .map(|_| {
                let (bound, running, most, done) = (bound.clone(), running.clone(), most.clone(), done.clone());
                tokio::spawn(async move {
                    let _turn = bound.acquire(Duration::from_secs(600)).await.expect("a turn");
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= CLIENT_QUERIES);
        assert_eq!(done.load(Ordering::SeqCst), 4 * CLIENT_QUERIES);
    }

    /// Each database has its own bound: one kept busy does not hold up another.
    #[tokio::test]
    async fn bounds_are_per_database() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let path = dir.path().join(name);
            rusqlite::Connection::open(&path).unwrap().execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
            Db::Sqlite(SqlitePool::open(&path, true, DbLimits::default()).unwrap())
        };
        let (busy, other) = (open("a.sqlite"), open("b.sqlite"));
        let mut held = Vec::new();
        for _ in 0..busy.client_queries().size() {
            held.push(busy.client_queries().acquire(Duration::from_secs(1)).await.expect("a turn"));
        }
        assert!(busy.client_queries().acquire(Duration::from_millis(10)).await.is_none());
        assert!(other.client_queries().acquire(Duration::from_millis(10)).await.is_some());
        // Clones share the database's bound.
        assert!(busy.clone().client_queries().acquire(Duration::from_millis(10)).await.is_none());
    }
}
