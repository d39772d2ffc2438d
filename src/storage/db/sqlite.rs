//! A small pool of read-only SQLite connections; a semaphore bounds how many statements run at
//! once. SQLite calls block: a statement starts on the calling async worker with a budget of a
//! few tens of microseconds, and one that needs more runs on tokio's blocking thread pool
//! ([`SqlitePool::fetch_all`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, ToSql};

use super::{Cell, DbError, DbLimits, Param, Query, Row};

/// The page cache of each connection, in KiB.
const PAGE_CACHE_KIB: usize = 4096;

/// SQLite virtual-machine instructions between two calls of the progress handler (which checks
/// the deadline and the inline budget).
const PROGRESS_STEPS: i32 = 10_000;

/// How many progress-handler calls a statement run inline (on the async worker, see
/// [`SqlitePool::fetch_all`]) may take before it is stopped and run again on the blocking pool:
/// one, that is at most about twice [`PROGRESS_STEPS`] instructions, tens of microseconds.
const INLINE_TICKS: u32 = 1;

/// The most bytes of text a statement run inline may return before it goes to the blocking
/// pool: copying a node's large attributes would hold the async worker too long.
const INLINE_BYTES: usize = 256 << 10;

/// No budget: the statement runs until it ends or its deadline.
const UNLIMITED: u32 = u32::MAX;

thread_local! {
    /// Set while a statement runs inline, on an async worker.
    static INLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// SQLite's busy handler: called while a writer holds the lock of a live profile (rollback
/// journal). On the blocking pool it waits, 1 ms at a time, up to 5 s (rusqlite's default
/// timeout); inline it gives up at once, so that the async worker never sleeps, and the
/// statement goes on to the blocking pool.
fn wait_for_writer(tries: i32) -> bool {
    if INLINE.get() || tries >= 5000 {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

struct Pooled {
    conn: Connection,
    /// Milliseconds after `epoch` at which the running statement must stop.
    deadline: Arc<AtomicU64>,
    /// Progress-handler calls left to a statement run inline ([`UNLIMITED`] otherwise).
    budget: Arc<AtomicU32>,
}

struct Inner {
    uri: String,
    path: PathBuf,
    idle: Mutex<Vec<Pooled>>,
    epoch: Instant,
    immutable: bool,
    common: super::Common,
    /// Statements that began inline and went on to the blocking pool.
    spilled: AtomicU64,
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
                epoch: Instant::now(),
                immutable,
                common: super::Common::new(limits),
                spilled: AtomicU64::new(0),
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
        let budget = Arc::new(AtomicU32::new(UNLIMITED));
        let epoch = self.inner.epoch;
        let (watched, spent) = (deadline.clone(), budget.clone());
        conn.progress_handler(
            PROGRESS_STEPS,
            Some(move || {
                let left = spent.load(Ordering::Relaxed);
                if left != UNLIMITED {
                    if left == 0 {
                        return true;
                    }
                    spent.store(left - 1, Ordering::Relaxed);
                }
                epoch.elapsed().as_millis() as u64 > watched.load(Ordering::Relaxed)
            }),
        );
        conn.set_prepared_statement_cache_capacity(64);
        conn.busy_handler(Some(wait_for_writer)).map_err(|e| DbError::Query(e.to_string()))?;
        Ok(Pooled { conn, deadline, budget })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(super) fn common(&self) -> &super::Common {
        &self.inner.common
    }

    /// How many statements began inline and were run again on the blocking pool.
    pub fn spilled_statements(&self) -> u64 {
        self.inner.spilled.load(Ordering::Relaxed)
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

    /// Runs `query` and returns its rows.
    ///
    /// Most statements of the API are lookups by key that take a few microseconds, less than
    /// the two thread switches of a trip to the blocking pool and back. So a statement first
    /// runs here, on the async worker, on an idle connection, within a small budget
    /// ([`INLINE_TICKS`], [`INLINE_BYTES`]); one that needs more is stopped and run again on the
    /// blocking pool, where it may take as long as its deadline allows.
    pub async fn fetch_all(&self, query: Query) -> Result<Vec<Row>, DbError> {
        let _permit =
            self.inner.common.permits.acquire().await.map_err(|_| DbError::Unavailable("pool closed".into()))?;
        // Traced once, though a statement that outgrows the inline budget runs twice.
        tracing::trace!(sql = %query.sql, "SQLite statement");
        if let Some(result) = self.run_inline(&query) {
            return result;
        }
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

    /// The statement run on the calling thread within the inline budget; `None` when there is
    /// no idle connection or the budget ran out (the caller then uses the blocking pool).
    fn run_inline(&self, query: &Query) -> Option<Result<Vec<Row>, DbError>> {
        let pooled = self.inner.idle.lock().expect("pool lock").pop()?;
        let deadline = self.inner.epoch.elapsed() + self.inner.common.limits.statement_timeout;
        pooled.deadline.store(deadline.as_millis() as u64, Ordering::Relaxed);
        pooled.budget.store(INLINE_TICKS, Ordering::Relaxed);
        INLINE.set(true);
        let result = execute_within(&pooled.conn, query, INLINE_BYTES);
        INLINE.set(false);
        let exhausted = pooled.budget.swap(UNLIMITED, Ordering::Relaxed) == 0;
        pooled.deadline.store(u64::MAX, Ordering::Relaxed);
        let result = match result {
            Err(DbError::Timeout) if exhausted => None,
            // A writer holds the file's lock (the busy handler does not wait inline), or the
            // file is gone: the blocking pool waits for the lock, or finds the file gone and
            // drops the connection.
            Err(DbError::Unavailable(_)) => None,
            Ok(None) => None,
            Ok(Some(rows)) => Some(Ok(rows)),
            Err(e) => Some(Err(e)),
        };
        self.inner.idle.lock().expect("pool lock").push(pooled);
        if result.is_none() {
            self.inner.spilled.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn run(&self, query: &Query, running: &Mutex<Running>) -> Result<Vec<Row>, DbError> {
        let idle = self.inner.idle.lock().expect("pool lock").pop();
        let pooled = match idle {
            Some(p) => p,
            None => self.connect()?,
        };
        let timeout: Duration = self.inner.common.limits.statement_timeout;
        let deadline = self.inner.epoch.elapsed() + timeout;
        pooled.deadline.store(deadline.as_millis() as u64, Ordering::Relaxed);
        let started = running.lock().expect("cancel lock").start(&pooled.conn);
        let result = if started { execute(&pooled.conn, query) } else { Err(DbError::Timeout) };
        if running.lock().expect("cancel lock").finish() {
            self.inner.common.cancelled.fetch_add(1, Ordering::Relaxed);
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
    Ok(execute_within(conn, query, usize::MAX)?.expect("no byte limit"))
}

/// The rows of `query`, or `None` as soon as their text passes `max_bytes`.
fn execute_within(conn: &Connection, query: &Query, max_bytes: usize) -> Result<Option<Vec<Row>>, DbError> {
    let mut stmt = conn.prepare_cached(&query.sql).map_err(map_err)?;
    let params: Vec<&dyn ToSql> = query.params.iter().map(|p| p as &dyn ToSql).collect();
    let width = stmt.column_count();
    let mut rows = stmt.query(params.as_slice()).map_err(map_err)?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next().map_err(map_err)? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            cells.push(match row.get_ref(i).map_err(map_err)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Float(v),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    bytes += t.len();
                    if bytes > max_bytes {
                        return Ok(None);
                    }
                    Cell::Text(match std::str::from_utf8(t) {
                        Ok(text) => text.to_owned(),
                        Err(_) => String::from_utf8_lossy(t).into_owned(),
                    })
                }
            });
        }
        out.push(cells);
    }
    Ok(Some(out))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_over(rows: i64) -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT); BEGIN").unwrap();
        let mut insert = conn.prepare("INSERT INTO t (id, text) VALUES (?1, ?2)").unwrap();
        for id in 0..rows {
            insert.execute(rusqlite::params![id, "x".repeat(100)]).unwrap();
        }
        drop(insert);
        conn.execute_batch("COMMIT").unwrap();
        drop(conn);
        let pool = SqlitePool::open(&path, false, DbLimits::default()).unwrap();
        (dir, pool)
    }

    fn query(sql: &str) -> Query {
        let mut q = Query::new(super::super::Dialect::Sqlite);
        q.push(sql);
        q
    }

    /// A lookup by key answers on the caller's thread; a scan past the budget, or rows past
    /// the byte bound, start there and are answered whole from the blocking pool.
    #[tokio::test]
    async fn cheap_statements_run_inline_and_costly_ones_move_to_the_pool() {
        let (_dir, pool) = pool_over(20_000);
        let one = pool.fetch_all(query("SELECT id FROM t WHERE id = 7")).await.unwrap();
        assert_eq!(one, vec![vec![Cell::Int(7)]]);
        assert_eq!(pool.spilled_statements(), 0);

        // Tens of thousands of rows: many progress-handler calls.
        let all = pool.fetch_all(query("SELECT id FROM t ORDER BY id")).await.unwrap();
        assert_eq!(all.len(), 20_000);
        assert_eq!(all[19_999], vec![Cell::Int(19_999)]);
        assert_eq!(pool.spilled_statements(), 1);

        // Few instructions, much text.
        let text = pool.fetch_all(query("SELECT text FROM t WHERE id < 5000")).await;
        let text = text.unwrap();
        assert_eq!(text.len(), 5000);
        assert_eq!(pool.spilled_statements(), 2);

        // The connections came back with their budget lifted: a long statement on the pool is
        // not cut short.
        let count = pool.fetch_all(query("SELECT count(*) FROM t a, t b WHERE a.id < 300 AND b.id < 300")).await;
        assert_eq!(count.unwrap(), vec![vec![Cell::Int(90_000)]]);
        let cheap = pool.fetch_all(query("SELECT text FROM t WHERE id = 1")).await.unwrap();
        assert_eq!(cheap[0][0].as_str().map(str::len), Some(100));
        assert_eq!(pool.spilled_statements(), 3);
    }

    /// A statement that meets a writer's lock does not wait on the async worker: it moves to
    /// the blocking pool, which waits for the lock, while the worker goes on with other tasks.
    #[tokio::test]
    async fn a_locked_file_is_waited_for_off_the_async_worker() {
        let (dir, pool) = pool_over(10);
        let writer = Connection::open(dir.path().join("t.sqlite")).unwrap();
        writer.execute_batch("BEGIN EXCLUSIVE; UPDATE t SET text = 'y' WHERE id = 1").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            writer.execute_batch("COMMIT").unwrap();
        });
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let rows = pool.fetch_all(query("SELECT text FROM t WHERE id = 1")).await.unwrap();
        assert_eq!(rows, vec![vec![Cell::Text("y".into())]]);
        assert_eq!(pool.spilled_statements(), 1);
        // The test runs on one thread: the ticker only ran if the statement did not hold it.
        assert!(ticks.load(Ordering::Relaxed) >= 10, "{} ticks", ticks.load(Ordering::Relaxed));
        ticker.abort();
        release.join().unwrap();
    }
}
