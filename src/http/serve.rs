//! The server loop: accepting connections, serving each with hyper's HTTP/1 connection, and
//! stopping.
//!
//! `axum::serve` has no header read timeout, no connection limit and no end to its graceful
//! shutdown, so connections are served here with hyper's own `http1::Builder` (and hyper-util's
//! tokio glue), the crates axum serves with anyway:
//!
//! - Each connection reads through a [`LenientStream`], which holds an unfinished request head
//!   back from hyper and turns heads hyper would refuse into the API's JSON errors.
//! - hyper's header read timeout ([`ServeOptions::header_timeout`]) runs from the moment a
//!   connection waits for a request head: a client that does not send a complete head in
//!   time, on a new connection or between requests on a kept-alive one, is disconnected. A
//!   request body that stops arriving for as long fails the request, and a client that stops
//!   reading its answer for [`WRITE_STALL`](super::listener::WRITE_STALL) is disconnected.
//! - At most [`ServeOptions::max_open_connections`] connections are open. When a new one
//!   arrives at the limit, the one idle the longest (no request under way: waiting for, or
//!   receiving, a request head) is closed to make room; when every connection has a request
//!   under way, the new one waits in the listen queue until one finishes.
//! - Errors of `accept` (out of file descriptors) are logged once a minute at most, and
//!   accepting is retried after a growing pause (up to a second), never in a busy loop.
//! - On shutdown the listener closes, idle connections close, requests under way have
//!   [`ServeOptions::shutdown_grace`] to finish, and then the remaining connections are dropped.
//! - The Host of every request is checked ([`request_origin`]): a 400 when it is missing (in
//!   HTTP/1.1), repeated or invalid. Answers build their absolute URLs on the request's
//!   [`Origin`], or on [`ServeOptions::public_url`] when the operator gave one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::http::Responder;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

pub use super::listener::LenientStream;
use super::listener::{REFUSED_HEADER, Refusal};
use super::request::json_response;
pub use super::request::{Origin, public_origin, request_origin};

/// How the server treats connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time a client has to send a complete request head, from the moment the connection
    /// waits for one (so also the longest idle time of a kept-alive connection), and the
    /// longest pause inside a request body.
    pub header_timeout: Duration,
    /// After a shutdown signal: how long requests under way may take to finish.
    pub shutdown_grace: Duration,
    /// Most connections open at once.
    pub max_open_connections: usize,
    /// The start of every absolute URL the answers write, instead of the request's Host.
    pub public_url: Option<Origin>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            max_open_connections: default_max_open_connections(open_files_limit()),
            public_url: None,
        }
    }
}

/// Most connections held open by default: the file limit less an eighth and 64 more (for the
/// database, the repository's files, the log and the listener), at most 10,000.
pub fn default_max_open_connections(open_files_limit: Option<u64>) -> usize {
    let Some(limit) = open_files_limit else {
        return 1000;
    };
    let usable = limit.saturating_sub(limit / 8).saturating_sub(64);
    usable.clamp(16, 10_000) as usize
}

/// The soft limit of open files (RLIMIT_NOFILE), or `None` when it cannot be read.
pub fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast, reason = "rlim_t is not u64 on every target")]
    Some(limit.rlim_cur as u64)
}

/// Raises the soft limit of open files to the hard limit (as far as the kernel allows) and
/// returns the soft limit then in force.
pub fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    // An unlimited hard limit cannot be the soft one (Linux caps it at fs.nr_open).
    let target = if limit.rlim_max == libc::RLIM_INFINITY { 1 << 20 } else { limit.rlim_max };
    if target > limit.rlim_cur {
        let raised = libc::rlimit { rlim_cur: target, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            tracing::debug!("cannot raise the open files limit to {target}: {}", std::io::Error::last_os_error());
        }
    }
    open_files_limit()
}

/// One open connection, as the limit sees it.
struct Conn {
    /// Requests under way (from the head received to the end of the answer).
    busy: AtomicUsize,
    /// When it last became idle, in milliseconds since the server started.
    idle_since: AtomicU64,
    evicted: AtomicBool,
    evict: Notify,
}

/// The open connections.
struct Registry {
    start: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn add(self: &Arc<Self>) -> Registered {
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now()),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(id, conn.clone());
        Registered { id, conn, registry: self.clone() }
    }

    /// Closes the connection idle the longest; `false` when every one has a request under way.
    fn evict_oldest_idle(&self) -> bool {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let victim = conns
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0 && !c.evicted.load(Ordering::Relaxed))
            .min_by_key(|c| c.idle_since.load(Ordering::Relaxed));
        match victim {
            Some(conn) => {
                conn.evicted.store(true, Ordering::Relaxed);
                conn.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A connection's place in the registry, left when it is dropped.
struct Registered {
    id: u64,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

/// A request under way on a connection: it is not idle while this lives.
struct Busy {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Busy {
    fn new(conn: &Arc<Conn>, registry: &Arc<Registry>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Self { conn: conn.clone(), registry: registry.clone() }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn.idle_since.store(self.registry.now(), Ordering::Relaxed);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A log line at most once a minute.
#[derive(Default)]
struct Throttle(Option<Instant>);

impl Throttle {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self.0.is_some_and(|last| now.duration_since(last) < Duration::from_secs(60)) {
            return false;
        }
        self.0 = Some(now);
        true
    }
}

/// What every connection task shares.
struct Shared {
    app: Responder,
    options: ServeOptions,
    registry: Arc<Registry>,
    local: SocketAddr,
}

/// Serves `app` on `listener` until `shutdown` completes, then stops as [`ServeOptions`] says.
pub async fn serve(
    listener: TcpListener,
    app: Responder,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let max = options.max_open_connections.max(1);
    let grace = options.shutdown_grace;
    let registry = Arc::new(Registry { start: Instant::now(), next_id: AtomicU64::new(0), conns: Mutex::default() });
    let shared = Arc::new(Shared { app, options, registry: registry.clone(), local });
    let permits = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let (mut accept_log, mut limit_log) = (Throttle::default(), Throttle::default());
    let mut pause = Duration::from_millis(10);
    'accepting: loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                pause = Duration::from_millis(10);
                stream
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors or memory: pause, so that connections can finish.
                if accept_log.ready() {
                    tracing::warn!("accept failed: {e}; pausing accept (this is logged once a minute)");
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let evicted = registry.evict_oldest_idle();
                if limit_log.ready() {
                    tracing::warn!(
                        "{max} connections open (--max-open-connections): {} (this is logged once a minute)",
                        if evicted {
                            "closing the longest idle ones to accept new ones"
                        } else {
                            "new ones wait until a request finishes"
                        }
                    );
                }
                tokio::select! {
                    _ = &mut shutdown => break 'accepting,
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break 'accepting,
                    },
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (shared, stop) = (shared.clone(), stop_rx.clone());
        tasks.spawn(async move {
            connection(stream, shared, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    if !tasks.is_empty() {
        tracing::info!("shutting down: {} connections open, up to {grace:?} for requests under way", tasks.len());
    }
    let finished = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!("shutdown grace period over: dropping {} connections", tasks.len());
        tasks.shutdown().await;
    }
    Ok(())
}

/// Errors of `accept` that concern one connection only (it went away before it was accepted).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted)
}

async fn connection(stream: tokio::net::TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let registered = shared.registry.add();
    let conn = registered.conn.clone();
    let service = {
        let (shared, conn) = (shared.clone(), conn.clone());
        hyper::service::service_fn(move |request| handle(request, shared.clone(), conn.clone()))
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(shared.options.header_timeout).keep_alive(true);
    let served = builder.serve_connection(TokioIo::new(LenientStream::new(stream)), service);
    let mut served = std::pin::pin!(served);
    tokio::select! {
        result = served.as_mut() => log_end(result),
        _ = conn.evict.notified() => tracing::debug!("connection closed to make room for a new one"),
        _ = async { drop(stop.wait_for(|stop| *stop).await) } => {
            // Idle connections close now; a request under way finishes first (the server
            // drops what is left when the grace period is over).
            served.as_mut().graceful_shutdown();
            tokio::select! {
                result = served.as_mut() => log_end(result),
                _ = conn.evict.notified() => {}
            }
        }
    }
    drop(registered);
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        if e.is_timeout() {
            tracing::debug!("connection closed: no complete request head in time");
        } else {
            tracing::debug!("connection ended: {e}");
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    conn: Arc<Conn>,
) -> Result<Response<Body>, Infallible> {
    let busy = Busy::new(&conn, &shared.registry);
    if let Some(refusal) = request.headers().get(REFUSED_HEADER).and_then(|v| Refusal::from_header_value(v.as_bytes()))
    {
        let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = json_response(status, &serde_json::json!({ "message": refusal.message }), None, None);
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    let origin = match request_origin(request.version(), request.uri(), request.headers(), Some(shared.local)) {
        Ok(origin) => shared.options.public_url.clone().unwrap_or(Origin(origin)),
        Err(message) => {
            return Ok(json_response(StatusCode::BAD_REQUEST, &serde_json::json!({ "message": message }), None, None));
        }
    };
    // A request without a body (most) needs no watch over its arrival.
    let mut request = request.map(|body| {
        if http_body::Body::is_end_stream(&body) {
            Body::empty()
        } else {
            Body::new(PatientBody::new(body, shared.options.header_timeout))
        }
    });
    request.extensions_mut().insert(origin);
    let response = match shared.app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    Ok(response.map(|body| Body::new(BusyBody { inner: body, _busy: busy })))
}

/// A request body that fails when it stops arriving for longer than the timeout.
struct PatientBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl PatientBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self { inner, timeout, sleep: Box::pin(tokio::time::sleep(timeout)) }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving")]
struct BodyTimeout;

impl http_body::Body for PatientBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + self.timeout;
                self.sleep.as_mut().reset(deadline);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout.into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that keeps its connection busy until it is sent (or dropped).
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits() {
        assert_eq!(default_max_open_connections(Some(256)), 160);
        assert_eq!(default_max_open_connections(Some(1024)), 832);
        assert_eq!(default_max_open_connections(Some(1 << 20)), 10_000);
        assert_eq!(default_max_open_connections(Some(10)), 16);
    }
}
