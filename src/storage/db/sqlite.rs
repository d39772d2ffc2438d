//! A small pool of read-only SQLite connections. SQLite calls block, so each query runs on
//! tokio's blocking thread pool; a semaphore bounds how many run at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, ToSql};
use tokio::sync::Semaphore;

use super::Bound;
use super::cache::ResultCache;
use super::{Cell, DbError, DbLimits, Param, Query, Row};

/// The page cache of each connection, in KiB.
const PAGE_CACHE_KIB: usize = 4096;

struct Pooled {
    conn: Connection,
    /// Milliseconds after `epoch` at which the running statement must stop.
    deadline: Arc<AtomicU64>,
}

struct Inner {
    uri: String,
    path: PathBuf,
    idle: Mutex<Vec<Pooled>>,
    permits: Semaphore,
    limits: DbLimits,
    epoch: Instant,
    immutable: bool,
    cache: ResultCache,
    client_queries: Bound,
    large_answers: Bound,
    /// Queries interrupted because their caller went away.
    cancelled: AtomicU64,
}

#[derive(Clone)]
pub struct SqlitePool {
    inner: Arc<Inner>,
}

impl SqlitePool {
    /// Opens `path` read-only. `immutable` tells SQLite the file cannot change (archives we
    /// extracted ourselves), which skips all locking; a live profile must not use it.
    ///
    /// Fails with [`CheckError::Damaged`] when SQLite finds the file damaged or not a database.
    pub fn open(path: &Path, immutable: bool, limits: DbLimits) -> Result<Self, CheckError> {
        let mut uri = String::from("file:");
        uri.push_str(&percent_encoding::utf8_percent_encode(&path.to_string_lossy(), URI_PATH).to_string());
        uri.push_str("?mode=ro");
        if immutable {
            uri.push_str("&immutable=1");
        }
        let pool = Self {
            inner: Arc::new(Inner {
                uri,
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(limits.max_connections.max(1)),
                limits,
                epoch: Instant::now(),
                immutable,
                cache: ResultCache::default(),
                client_queries: Bound::new(super::CLIENT_QUERIES),
                large_answers: Bound::new(super::large_answers(limits.max_connections)),
                cancelled: AtomicU64::new(0),
            }),
        };
        // Fail at start-up, not on the first request, when the file is not a database.
        let first = pool.connect().map_err(|e| CheckError::Failed(e.to_string()))?;
        first.conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())).map_err(|e| {
            if is_damage(&e) { CheckError::Damaged(e.to_string()) } else { CheckError::Failed(e.to_string()) }
        })?;
        pool.inner.idle.lock().expect("pool lock").push(first);
        Ok(pool)
    }

    /// For the checks at start-up: the first cell of `sql` as text (`None` without a row or for
    /// NULL), with a damaged file told apart from other failures (such as a missing table).
    pub async fn check_scalar(&self, sql: &str) -> Result<Option<String>, CheckError> {
        let pool = self.clone();
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || {
            let pooled = pool.connect().map_err(|e| CheckError::Failed(e.to_string()))?;
            let row = pooled.conn.query_row(&sql, [], |row| {
                Ok(match row.get_ref(0)? {
                    ValueRef::Null => None,
                    ValueRef::Integer(v) => Some(v.to_string()),
                    ValueRef::Real(v) => Some(v.to_string()),
                    ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
                })
            });
            match row {
                Ok(value) => Ok(value),
                Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                Err(e) if is_damage(&e) => Err(CheckError::Damaged(e.to_string())),
                Err(e) => Err(CheckError::Failed(e.to_string())),
            }
        })
        .await
        .map_err(|e| CheckError::Failed(format!("check task failed: {e}")))?
    }

    fn connect(&self) -> Result<Pooled, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.inner.uri, flags)
            .map_err(|e| DbError::Unavailable(format!("{}: {e}", self.inner.path.display())))?;
        // AiiDA runs SQLite with a case-sensitive LIKE, as PostgreSQL's. The file is read with
        // plain reads, not memory-mapped: every connection maps the file on its own, and each
        // page a map touches counts in the process's resident memory once per connection
        // (1.2 GB for a 750 MB database after a few full scans). Reads share the kernel's
        // page cache all the same; each connection keeps its own bounded cache of hot pages
        // (the upper levels of the indexes).
        conn.execute_batch(
            "PRAGMA case_sensitive_like = ON; PRAGMA query_only = ON; \
             PRAGMA mmap_size = 0; PRAGMA temp_store = MEMORY;",
        )
        .map_err(|e| DbError::Query(e.to_string()))?;
        // Setting the cache size reads the schema; a damaged file fails here, and the check of
        // `open` that follows reports it as damaged (the default cache of 2 MiB stays).
        let _ = conn.execute_batch(&format!("PRAGMA cache_size = -{PAGE_CACHE_KIB};"));
        let deadline = Arc::new(AtomicU64::new(u64::MAX));
        let epoch = self.inner.epoch;
        let watched = deadline.clone();
        conn.progress_handler(
            10_000,
            Some(move || epoch.elapsed().as_millis() as u64 > watched.load(Ordering::Relaxed)),
        );
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Pooled { conn, deadline })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(super) fn cache(&self) -> &ResultCache {
        &self.inner.cache
    }

    /// Connections running a query now, and the most there may be.
    pub(super) fn connections(&self) -> (usize, usize) {
        let size = self.inner.limits.max_connections.max(1);
        (size.saturating_sub(self.inner.permits.available_permits()), size)
    }

    pub(super) fn client_queries(&self) -> &Bound {
        &self.inner.client_queries
    }

    pub(super) fn large_answers(&self) -> &Bound {
        &self.inner.large_answers
    }

    /// How many queries were interrupted because their caller dropped the request.
    pub fn cancelled_queries(&self) -> u64 {
        self.inner.cancelled.load(Ordering::Relaxed)
    }

    /// What changes with every committed write: the database header's change counter (bytes
    /// 24-27, bumped by each rollback-journal commit), the write-ahead log's header (its salts
    /// change when the log restarts) and size, plus both files' sizes and modification times.
    /// An immutable file never changes.
    pub(super) fn fingerprint(&self) -> Option<String> {
        if self.inner.immutable {
            return Some("immutable".into());
        }
        let stamp = |p: &Path, header: usize| -> Option<String> {
            use std::io::Read;
            let meta = std::fs::metadata(p).ok()?;
            let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
            let mut head = vec![0u8; header];
            let read = std::fs::File::open(p).ok()?.read(&mut head).ok()?;
            head.truncate(read);
            Some(format!("{}:{}:{head:02x?}", meta.len(), modified.as_nanos()))
        };
        let mut wal = self.inner.path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = stamp(Path::new(&wal), 32).unwrap_or_default();
        Some(format!("{}/{wal}", stamp(&self.inner.path, 28)?))
    }

    pub async fn fetch_all(&self, query: Query) -> Result<Vec<Row>, DbError> {
        let _permit = self.inner.permits.acquire().await.map_err(|_| DbError::Unavailable("pool closed".into()))?;
        let pool = self.clone();
        // Interrupts the statement when this future is dropped (the client went away).
        let cancel = CancelOnDrop(Arc::new(Mutex::new(Running::default())));
        let running = cancel.0.clone();
        let result = tokio::task::spawn_blocking(move || pool.run(&query, &running))
            .await
            .map_err(|e| DbError::Query(format!("query task failed: {e}")))?;
        cancel.0.lock().expect("cancel lock").done = true;
        result
    }

    fn run(&self, query: &Query, running: &Mutex<Running>) -> Result<Vec<Row>, DbError> {
        let idle = self.inner.idle.lock().expect("pool lock").pop();
        let pooled = match idle {
            Some(p) => p,
            None => self.connect()?,
        };
        let timeout: Duration = self.inner.limits.statement_timeout;
        let deadline = self.inner.epoch.elapsed() + timeout;
        pooled.deadline.store(deadline.as_millis() as u64, Ordering::Relaxed);
        let started = running.lock().expect("cancel lock").start(&pooled.conn);
        let result = if started { execute(&pooled.conn, query) } else { Err(DbError::Timeout) };
        if running.lock().expect("cancel lock").finish() {
            self.inner.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        pooled.deadline.store(u64::MAX, Ordering::Relaxed);
        match &result {
            // A connection whose file vanished is not worth keeping.
            Err(DbError::Unavailable(_)) => {}
            _ => self.inner.idle.lock().expect("pool lock").push(pooled),
        }
        result
    }
}

/// The statement of one [`SqlitePool::fetch_all`] call, for interrupting it from the async side.
#[derive(Default)]
struct Running {
    /// The caller went away.
    cancelled: bool,
    /// The caller has its answer.
    done: bool,
    /// Set while the statement runs.
    handle: Option<rusqlite::InterruptHandle>,
}

impl Running {
    /// Before the statement: false when the caller is already gone.
    fn start(&mut self, conn: &Connection) -> bool {
        self.handle = Some(conn.get_interrupt_handle());
        !self.cancelled
    }

    /// After the statement (before the connection goes back to the pool): whether it was
    /// cancelled.
    fn finish(&mut self) -> bool {
        self.handle = None;
        self.cancelled
    }
}

struct CancelOnDrop(Arc<Mutex<Running>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Ok(mut running) = self.0.lock() else { return };
        if !running.done {
            running.cancelled = true;
            if let Some(handle) = running.handle.take() {
                handle.interrupt();
            }
        }
    }
}

fn execute(conn: &Connection, query: &Query) -> Result<Vec<Row>, DbError> {
    tracing::trace!(sql = %query.sql, "SQLite statement");
    let mut stmt = conn.prepare_cached(&query.sql).map_err(map_err)?;
    let params: Vec<&dyn ToSql> = query.params.iter().map(|p| p as &dyn ToSql).collect();
    let width = stmt.column_count();
    let mut rows = stmt.query(params.as_slice()).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            cells.push(match row.get_ref(i).map_err(map_err)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Float(v),
                ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(match std::str::from_utf8(t) {
                    Ok(text) => text.to_owned(),
                    Err(_) => String::from_utf8_lossy(t).into_owned(),
                }),
            });
        }
        out.push(cells);
    }
    Ok(out)
}

/// Why [`SqlitePool::open`] or a start-up check of [`SqlitePool::check_scalar`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// SQLite found the file damaged (`SQLITE_CORRUPT`) or not a database (`SQLITE_NOTADB`).
    #[error("the file is damaged or is not an SQLite database ({0})")]
    Damaged(String),
    #[error("{0}")]
    Failed(String),
}

/// Whether SQLite says the file is damaged (or is not a database at all).
pub fn is_damage(err: &rusqlite::Error) -> bool {
    use rusqlite::ffi::ErrorCode;
    matches!(err, rusqlite::Error::SqliteFailure(e, _) if matches!(e.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase))
}

fn map_err(err: rusqlite::Error) -> DbError {
    use rusqlite::ffi::ErrorCode;
    match &err {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::OperationInterrupted => DbError::Timeout,
            ErrorCode::CannotOpen
            | ErrorCode::NotADatabase
            | ErrorCode::DatabaseCorrupt
            | ErrorCode::SystemIoFailure
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked => DbError::Unavailable(err.to_string()),
            _ => DbError::Query(err.to_string()),
        },
        _ => DbError::Query(err.to_string()),
    }
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(match self {
            Param::Null => ToSqlOutput::Owned(Value::Null),
            Param::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Param::Float(f) => ToSqlOutput::Owned(Value::Real(*f)),
            Param::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Param::Bool(b) => ToSqlOutput::Owned(Value::Integer(*b as i64)),
        })
    }
}

/// Characters escaped in a `file:` URI path: SQLite treats `?` and `#` specially, and `%`
/// starts an escape.
const URI_PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'?').add(b'#').add(b'%').add(b' ');
