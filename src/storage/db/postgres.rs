//! A small pool of PostgreSQL connections (tokio-postgres, no TLS). Every session is read-only
//! and has a statement timeout. A broken connection is dropped and a new one made on demand, so
//! the server recovers by itself when PostgreSQL restarts.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures_util::TryStreamExt;
use tokio_postgres::config::Host;
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::{Cell, DbError, DbLimits, Dialect, Param, Query, Row};
use crate::storage::ratelog::{self, Outage, OutageEvent};

/// Prepared statements kept per connection (the API builds few distinct SQL texts).
const STATEMENT_CACHE: usize = 64;
/// How much longer than the statement timeout we wait for a server that does not answer at all.
const UNRESPONSIVE_GRACE: Duration = Duration::from_secs(5);

type BoxError = Box<dyn StdError + Sync + Send>;

struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

struct Inner {
    config: Config,
    idle: Mutex<Vec<Conn>>,
    target: String,
    common: super::Common,
    /// Logs an outage of the server once, then in summaries (not once per request).
    outage: Outage,
}

#[derive(Clone)]
pub struct PgPool {
    inner: Arc<Inner>,
}

impl PgPool {
    /// Makes the pool and its first connection, so that a wrong address or password fails at
    /// start-up rather than on the first request.
    pub async fn connect(mut config: Config, limits: DbLimits) -> Result<Self, DbError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("aiida-rest");
        }
        let pool = Self {
            inner: Arc::new(Inner {
                target: Self::describe(&config),
                config,
                idle: Mutex::new(Vec::new()),
                common: super::Common::new(limits),
                outage: Outage::new(ratelog::INTERVAL),
            }),
        };
        let first = pool.new_conn().await?;
        pool.inner.idle.lock().expect("pool lock").push(first);
        Ok(pool)
    }

    pub(super) fn common(&self) -> &super::Common {
        &self.inner.common
    }

    /// The current transaction snapshot (`xmin:xmax:in-progress xids`): it changes whenever a
    /// writing transaction starts or ends, and two equal snapshots see the same committed data.
    /// It is read before the cached query runs, so a result can only be stored under a snapshot
    /// that is already older than what it saw, never newer. (The WAL position is not enough:
    /// with `synchronous_commit = off` it lags behind visible commits.)
    pub(super) async fn fingerprint(&self) -> Option<String> {
        let mut q = Query::new(Dialect::Postgres);
        q.push("SELECT txid_current_snapshot()::text");
        let rows = self.fetch_all(q).await.ok()?;
        rows.into_iter().next()?.into_iter().next()?.into_string()
    }

    /// `database NAME on HOST:PORT`, for messages (never the password).
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// `database NAME on HOST:PORT`, or `on HOST1:PORT1,HOST2:PORT2` for a URL of several
    /// hosts (libpq's syntax: sessions go to the first that answers, in order, or in a random
    /// order with `load_balance_hosts=random`; `target_session_attrs` picks the primary or a
    /// standby).
    pub fn describe(config: &Config) -> String {
        let ports = config.get_ports();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                // One port for all hosts, or one per host (libpq's rule).
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match h {
                    Host::Tcp(name) => format!("{name}:{port}"),
                    Host::Unix(path) => format!("{}:{port}", path.display()),
                }
            })
            .collect();
        format!("database {} on {}", config.get_dbname().unwrap_or("?"), hosts.join(","))
    }

    async fn new_conn(&self) -> Result<Conn, DbError> {
        // Not logged here: `fetch_all` reports the outage, once.
        let (client, connection) = self.inner.config.connect(NoTls).await.map_err(|e| {
            DbError::Unavailable(format!("cannot connect to the PostgreSQL server ({})", error_text(&e)))
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        // Session settings rather than per-query transactions: one round trip per connection.
        let timeout_ms = self.inner.common.limits.statement_timeout.as_millis().max(1);
        let setup = format!(
            "SET default_transaction_read_only = on; SET statement_timeout = {timeout_ms}; \
             SET idle_in_transaction_session_timeout = 60000"
        );
        client.batch_execute(&setup).await.map_err(|e| classify(&e, &client))?;
        Ok(Conn { client, statements: HashMap::new() })
    }

    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.inner.idle.lock().expect("pool lock");
        while let Some(conn) = idle.pop() {
            if !conn.client.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    pub async fn fetch_all(&self, query: Query) -> Result<Vec<Row>, DbError> {
        if query.params.iter().any(|p| matches!(p, Param::Text(t) if t.contains('\0'))) {
            return Err(DbError::InvalidValue("PostgreSQL text cannot contain NUL characters".into()));
        }
        let limit = self.inner.common.limits.statement_timeout;
        // A busy pool is load, not an outage.
        let _permit = match tokio::time::timeout(limit, self.inner.common.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(DbError::Unavailable("the connection pool is closed".into())),
            Err(_) => {
                return Err(DbError::Unavailable("all database connections stayed busy; try again later".into()));
            }
        };
        let result = self.run_query(&query).await;
        match &result {
            Err(DbError::Unavailable(msg)) => self.log_outage(self.inner.outage.failure(Instant::now()), msg),
            // The server answered (a timeout says nothing either way).
            Ok(_) | Err(DbError::Query(_) | DbError::InvalidValue(_)) => {
                self.log_outage(self.inner.outage.success(Instant::now()), "")
            }
            Err(DbError::Timeout) => {}
        }
        result
    }

    fn log_outage(&self, event: Option<OutageEvent>, error: &str) {
        let target = &self.inner.target;
        match event {
            None => {}
            Some(OutageEvent::Started) => tracing::error!(
                target = %target, error = %error,
                "PostgreSQL unreachable: requests that need the database are answered 503 until it is back"
            ),
            Some(OutageEvent::StillDown { failures, over }) => tracing::warn!(
                target = %target, error = %error,
                "PostgreSQL still unreachable: {failures} queries answered 503 in the last {} s",
                over.as_secs()
            ),
            Some(OutageEvent::Recovered { after, failures }) => tracing::warn!(
                target = %target,
                "PostgreSQL reachable again after {:.1} s ({failures} queries answered 503 meanwhile)",
                after.as_secs_f64()
            ),
        }
    }

    /// Runs the query on an idle or a new connection (the caller holds a permit).
    async fn run_query(&self, query: &Query) -> Result<Vec<Row>, DbError> {
        let limit = self.inner.common.limits.statement_timeout;
        // An idle connection may have died since its last use (PostgreSQL restarted, a proxy
        // timed it out): then the query is tried once more on a fresh one. It only reads.
        for attempt in 0..2 {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                None => (self.new_conn().await?, false),
            };
            // Cancels the statement on the server if this future is dropped (the client went
            // away) or the server does not answer in time.
            let cancel = CancelOnDrop { token: Some(conn.client.cancel_token()), pool: self.inner.clone() };
            let result = match tokio::time::timeout(limit + UNRESPONSIVE_GRACE, run(&mut conn, query)).await {
                Ok(result) => result.map_err(|e| classify(&e, &conn.client)),
                // The server did not answer; the connection's state is unknown, so it goes.
                Err(_) => return Err(DbError::Timeout),
            };
            cancel.disarm();
            match result {
                Err(DbError::Unavailable(_)) if reused && attempt == 0 => continue,
                Err(DbError::Unavailable(msg)) => return Err(DbError::Unavailable(msg)),
                other => {
                    if !conn.client.is_closed() {
                        self.inner.idle.lock().expect("pool lock").push(conn);
                    }
                    return other;
                }
            }
        }
        unreachable!("the second attempt always returns")
    }
}

/// Sends PostgreSQL a cancel request for the running statement unless disarmed first.
struct CancelOnDrop {
    token: Option<tokio_postgres::CancelToken>,
    pool: Arc<Inner>,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.token = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        self.pool.common.cancelled.fetch_add(1, Ordering::Relaxed);
        runtime.spawn(async move {
            if let Err(e) = token.cancel_query(NoTls).await {
                tracing::debug!(error = %e, "could not cancel a PostgreSQL query");
            }
        });
    }
}

async fn run(conn: &mut Conn, query: &Query) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = match conn.statements.get(&query.sql) {
        Some(statement) => statement.clone(),
        None => {
            let statement = conn.client.prepare(&query.sql).await?;
            if conn.statements.len() >= STATEMENT_CACHE {
                conn.statements.clear();
            }
            conn.statements.insert(query.sql.clone(), statement.clone());
            statement
        }
    };
    let width = statement.columns().len();
    let params = query.params.iter().map(|p| p as &dyn ToSql);
    let mut rows = pin!(conn.client.query_raw(&statement, params).await?);
    let mut out = Vec::new();
    while let Some(row) = rows.try_next().await? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            cells.push(row.try_get::<_, Cell>(i)?);
        }
        out.push(cells);
    }
    Ok(out)
}

/// Sorts a failure into "the database is not there" (503, retry later), "too slow" and
/// "this query is wrong".
fn classify(err: &tokio_postgres::Error, client: &Client) -> DbError {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        return match code {
            // query_canceled: the statement timeout.
            "57014" => DbError::Timeout,
            // Data exceptions: a value that cannot be read as its type, out of range, ...
            c if c.starts_with("22") => DbError::InvalidValue(db.message().to_string()),
            // Program limit exceeded (too many columns, a statement too complex, ...): the
            // request is too large. The QueryBuilder bounds its queries below these limits;
            // this is the safety net.
            c if c.starts_with("54") => {
                DbError::InvalidValue(format!("the query exceeds a limit of PostgreSQL: {}", db.message()))
            }
            // Connection exceptions, shutdown/startup, too many connections, system errors,
            // authentication, a missing database, and transient rollbacks (a hot standby
            // cancels queries that conflict with replay).
            c if c.starts_with("08")
                || c.starts_with("40")
                || c.starts_with("57P")
                || c.starts_with("53")
                || c.starts_with("58")
                || c.starts_with("28")
                || c == "3D000" =>
            {
                DbError::Unavailable(format!("the PostgreSQL server is not available ({})", db.message()))
            }
            _ => DbError::Query(error_text(err)),
        };
    }
    let io = err.source().is_some_and(|s| s.is::<std::io::Error>());
    if err.is_closed() || client.is_closed() || io {
        DbError::Unavailable(format!("lost the connection to the PostgreSQL server ({})", error_text(err)))
    } else {
        DbError::Query(error_text(err))
    }
}

fn error_text(err: &tokio_postgres::Error) -> String {
    match (err.as_db_error(), err.source()) {
        (Some(db), _) => format!("{}: {}", db.severity(), db.message()),
        (None, Some(source)) => format!("{err}: {source}"),
        (None, None) => err.to_string(),
    }
}

/// Parameters travel in text form, so the server reads them as whatever type it inferred for
/// the placeholder (varchar, uuid, timestamptz, jsonb, int4, ...).
impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Param::Null => return Ok(IsNull::Yes),
            Param::Int(i) => out.put_slice(i.to_string().as_bytes()),
            Param::Float(f) => out.put_slice(float_text(*f).as_bytes()),
            Param::Text(t) => out.put_slice(t.as_bytes()),
            Param::Bool(b) => {
                let text = match *ty {
                    Type::BOOL => {
                        if *b {
                            "t"
                        } else {
                            "f"
                        }
                    }
                    Type::INT2 | Type::INT4 | Type::INT8 | Type::NUMERIC | Type::FLOAT4 | Type::FLOAT8 => {
                        if *b {
                            "1"
                        } else {
                            "0"
                        }
                    }
                    _ => {
                        if *b {
                            "true"
                        } else {
                            "false"
                        }
                    }
                };
                out.put_slice(text.as_bytes());
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        format!("{f:e}")
    }
}

/// Results come in binary form; each column becomes the cell kind SQLite would give.
impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if let Kind::Domain(base) = ty.kind() {
            return Cell::from_sql(base, raw);
        }
        if let Kind::Enum(_) = ty.kind() {
            return Ok(Cell::Text(std::str::from_utf8(raw)?.to_owned()));
        }
        Ok(match *ty {
            Type::BOOL => Cell::Int(bool::from_sql(ty, raw)? as i64),
            Type::INT2 => Cell::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Cell::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw)?),
            Type::OID => Cell::Int(u32::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Cell::Float(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Cell::Float(f64::from_sql(ty, raw)?),
            Type::NUMERIC => numeric(raw)?,
            Type::UUID => Cell::Text(uuid_text(raw)?),
            Type::JSONB => match raw.split_first() {
                Some((1, json)) => Cell::Text(std::str::from_utf8(json)?.to_owned()),
                _ => return Err("unsupported jsonb format version".into()),
            },
            Type::TIMESTAMPTZ | Type::TIMESTAMP => Cell::Text(timestamp_text(i64::from_sql(&Type::INT8, raw)?)),
            Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::CHAR
            | Type::UNKNOWN
            | Type::JSON
            | Type::XML => Cell::Text(std::str::from_utf8(raw)?.to_owned()),
            _ => {
                return Err(format!("cannot read a column of type {ty}; cast it to text in the query").into());
            }
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn uuid_text(raw: &[u8]) -> Result<String, BoxError> {
    if raw.len() != 16 {
        return Err("invalid uuid value".into());
    }
    let mut out = String::with_capacity(36);
    for (i, b) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    Ok(out)
}

/// Microseconds since 2000-01-01 as naive UTC text, the form SQLite storage holds.
///
/// PostgreSQL holds years up to 294276, chrono up to 262143: a time beyond is shifted by
/// whole 400-year cycles (the Gregorian calendar repeats after each) into chrono's range,
/// formatted, and its year shifted back.
fn timestamp_text(micros: i64) -> String {
    /// 400 Gregorian years: 146097 days.
    const CYCLE_MICROS: i64 = 146_097 * 86_400 * 1_000_000;
    const CYCLES: i64 = 100;
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => {
            let epoch =
                chrono::NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("valid epoch");
            let (mut shifted, mut years) = (micros, 0i64);
            loop {
                if let Some(t) = epoch.checked_add_signed(chrono::TimeDelta::microseconds(shifted)) {
                    if years == 0 {
                        return crate::model::time::stored_text(t.and_utc());
                    }
                    let year = i64::from(chrono::Datelike::year(&t)) + years;
                    let sign = if year < 0 {
                        "-"
                    } else if year > 9999 {
                        "+"
                    } else {
                        ""
                    };
                    return format!("{sign}{:04}-{}", year.unsigned_abs(), t.format("%m-%d %H:%M:%S%.6f"));
                }
                // Towards the epoch by 40000 years; i64 microseconds span less than 300000.
                let step = if shifted > 0 { -1 } else { 1 };
                shifted += step * CYCLES * CYCLE_MICROS;
                years -= step * CYCLES * 400;
            }
        }
    }
}

/// The binary `numeric` format: digit count, weight, sign and display scale, then base-10000
/// digits. Integral values that fit become `Int` (as SQLite's integer sums), others `Float`.
fn numeric(raw: &[u8]) -> Result<Cell, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "short numeric value".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i64;
    let sign = word(4)?;
    let dscale = word(6)? as usize;
    let digits = (0..ndigits).map(|i| word(8 + 2 * i)).collect::<Result<Vec<u16>, _>>()?;
    match sign {
        0xC000 => return Ok(Cell::Float(f64::NAN)),
        0xD000 => return Ok(Cell::Float(f64::INFINITY)),
        0xF000 => return Ok(Cell::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    let digit = |i: i64| -> u16 { if i < 0 { 0 } else { digits.get(i as usize).copied().unwrap_or(0) } };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                text.push_str(&digit(i).to_string());
            } else {
                text.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale == 0 {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Cell::Int(i));
        }
    } else {
        let mut frac = String::new();
        let mut group = 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(weight + group)));
            group += 1;
        }
        frac.truncate(dscale);
        text.push('.');
        text.push_str(&frac);
    }
    Ok(Cell::Float(text.parse::<f64>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_raw(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, dscale] {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn several_hosts_are_described_with_their_ports() {
        let describe = |url: &str| PgPool::describe(&url.parse().unwrap());
        assert_eq!(describe("postgresql://u:secret@h1:5433/db"), "database db on h1:5433");
        assert_eq!(
            describe("postgresql://u@h1:5432,h2:5433/db?target_session_attrs=any"),
            "database db on h1:5432,h2:5433"
        );
        assert_eq!(describe("postgresql://u@h1,h2/db"), "database db on h1:5432,h2:5432");
        let config: Config =
            "postgresql://u@h1,h2:5433/db?target_session_attrs=read-only&load_balance_hosts=random".parse().unwrap();
        assert_eq!(config.get_hosts().len(), 2);
        assert_eq!(config.get_target_session_attrs(), tokio_postgres::config::TargetSessionAttrs::ReadOnly);
    }

    #[test]
    fn numeric_values() {
        // 12345678 = 1234|5678, weight 1
        assert_eq!(numeric(&numeric_raw(1, 0, 0, &[1234, 5678])).unwrap(), Cell::Int(12345678));
        // -0.00012 = .0001|2000, weight -1
        assert_eq!(numeric(&numeric_raw(-1, 0x4000, 5, &[1, 2000])).unwrap(), Cell::Float(-0.00012));
        // 3.5
        assert_eq!(numeric(&numeric_raw(0, 0, 1, &[3, 5000])).unwrap(), Cell::Float(3.5));
        // 10^20 does not fit i64
        assert_eq!(numeric(&numeric_raw(5, 0, 0, &[1])).unwrap(), Cell::Float(1e20));
        assert_eq!(numeric(&numeric_raw(0, 0, 0, &[])).unwrap(), Cell::Int(0));
    }

    #[test]
    fn uuids_and_times() {
        let raw: Vec<u8> = (0u8..16).collect();
        assert_eq!(uuid_text(&raw).unwrap(), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(timestamp_text(0), "2000-01-01 00:00:00.000000");
        assert_eq!(timestamp_text(768_300_000_000_001), "2024-05-06 08:40:00.000001");
        // PostgreSQL's latest time (294276-12-31 23:59:59.999999), beyond chrono's range.
        assert_eq!(timestamp_text(9_223_371_331_199_999_999), "+294276-12-31 23:59:59.999999");
        // PostgreSQL's earliest (4714-11-24 BC, year -4713 in ISO numbering).
        assert_eq!(timestamp_text(-211_813_488_000_000_000), "-4713-11-24 00:00:00.000000");
        assert_eq!(timestamp_text(i64::MAX - 1), "+294277-01-09 04:00:54.775806");
        assert_eq!(timestamp_text(i64::MIN + 1), "-290278-12-22 19:59:05.224193");
    }
}
