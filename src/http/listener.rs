//! The connection's byte stream as hyper reads it: request heads checked and made acceptable
//! before hyper parses them.
//!
//! The AiiDA REST grammar uses `<`, `>` and `"` in query strings (`?id>3`, `?label="x"`), and
//! common clients (curl, Python's urllib) send them unencoded. The `http` crate rejects such a
//! request target, so hyper would answer a bare 400 before any handler runs. [`LenientStream`]
//! percent-encodes those bytes in each request line before hyper parses it; the API decodes
//! the whole query anyway, so nothing downstream can tell the difference.
//!
//! It also holds each request head back until it is complete, and checks it as hyper will
//! (httparse with hyper's settings, the target as a `Uri`, `Content-Length` and
//! `Transfer-Encoding`) and against the limits below. A head that hyper would refuse with an
//! empty 400, 414 or 431 never reaches hyper: it gets instead a stand-in request carrying the
//! [`REFUSED_HEADER`], which the server answers with the JSON error of the API
//! (`http::serve`) before closing the connection. Since hyper sees nothing of an unfinished
//! head, such a connection is idle to hyper: its header read timeout runs from the moment it
//! waits for a head, and a graceful shutdown closes the connection at once.
//!
//! Once a chunked request body starts, the rest of the connection passes unchanged (hyper
//! parses what follows; only the query-string API takes a body, and clients send it with a
//! `Content-Length`).

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{Method, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Longest request target, as hyper counts it (after the rewriting): a longer one is a 414.
pub const MAX_TARGET: usize = 65_534;
/// Most bytes of header lines in one request head: more is a 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header fields in one request head (hyper's limit): more is a 431.
pub const MAX_HEADERS: usize = 100;
/// The header of the stand-in request for a refused head: `<status> <message>`. A client's own
/// header of that name is removed from its request.
pub const REFUSED_HEADER: &str = "x-aiida-rest-refused";

/// How long a refused connection is read from (and what it sends dropped) after its answer,
/// at most, so that closing it does not reset it before the client has read the answer.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);
/// Most bytes dropped so.
const MAX_LINGER_BYTES: usize = 1 << 20;

/// Longest time a write may wait for the client to take bytes: a client that stops reading an
/// answer is disconnected after it (as nginx's `send_timeout`).
pub const WRITE_STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// Most bytes taken from the socket by one read.
const READ_CHUNK: usize = 8192;

/// `tchar` of RFC 9110 5.6.2: the bytes of a method.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes of a request target that the `http` crate refuses.
fn needs_escape(b: u8) -> bool {
    matches!(b, b'"' | b'<' | b'>' | 0x7f) || b < 0x20
}

/// Percent-encodes the bytes of a request target (`/path?query`) that the `http` crate
/// refuses; everything else, including existing escapes, is kept.
pub fn encode_request_target(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for c in target.chars() {
        if c.is_ascii() && needs_escape(c as u8) {
            out.push_str(&format!("%{:02X}", c as u8));
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum State {
    /// Collecting a request head; nothing of it is passed on before it is complete and valid.
    Head,
    Body {
        remaining: u64,
    },
    /// After the head of a chunked body: the rest of the connection passes unchanged.
    Passthrough,
    /// A head was refused and its stand-in request passed on; nothing more is read.
    Refused,
}

/// Why a request head is refused: the status and the message of the JSON answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    fn uri_too_long() -> Self {
        Self::new(414, format!("The request URL is longer than {MAX_TARGET} bytes."))
    }

    fn headers_too_large() -> Self {
        Self::new(
            431,
            format!(
                "The request's header fields are too large (at most {MAX_HEADERS} fields and {} KiB).",
                MAX_HEADER_BYTES >> 10
            ),
        )
    }

    fn malformed(what: &str) -> Self {
        Self::new(400, format!("The request is malformed: {what}."))
    }

    /// The value of [`REFUSED_HEADER`]: this process's token, the status and the message.
    fn header_value(&self) -> String {
        // The messages are ASCII and ours; keep the header value clean whatever they become.
        let message: String = self.message.chars().map(|c| if c.is_ascii_graphic() { c } else { ' ' }).collect();
        format!("{} {} {message}", *REFUSAL_TOKEN, self.status)
    }

    /// Reads the value of [`REFUSED_HEADER`] back; `None` unless this process wrote it.
    pub fn from_header_value(value: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(value).ok()?;
        let (token, rest) = text.split_once(' ')?;
        let (status, message) = rest.split_once(' ')?;
        let status: u16 = status.parse().ok()?;
        (token == *REFUSAL_TOKEN && (400..500).contains(&status)).then(|| Self::new(status, message))
    }
}

/// A random token of this process in every refusal, so that no client can make one up (past a
/// chunked body, where heads are not looked at, a client's header would reach the server).
static REFUSAL_TOKEN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{:016x}", hasher.finish())
});

/// How the body after a valid head is framed.
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// Checks a complete request head (request line already rewritten) as hyper will parse it.
fn check_head(head: &[u8]) -> Result<Framing, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Refusal::malformed("incomplete request head")),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::headers_too_large()),
        Err(httparse::Error::Token) if request.method.is_none() => return Err(Refusal::malformed("invalid method")),
        Err(httparse::Error::Token) => return Err(Refusal::malformed("invalid request target")),
        Err(httparse::Error::Version) => return Err(Refusal::malformed("invalid HTTP version")),
        Err(httparse::Error::HeaderName) => return Err(Refusal::malformed("invalid header name")),
        Err(httparse::Error::HeaderValue) => return Err(Refusal::malformed("invalid header value")),
        Err(_) => return Err(Refusal::malformed("invalid request line or header line")),
    }
    let target = request.path.unwrap_or_default();
    if target.len() > MAX_TARGET {
        return Err(Refusal::uri_too_long());
    }
    if Method::from_bytes(request.method.unwrap_or_default().as_bytes()).is_err() {
        return Err(Refusal::malformed("invalid method"));
    }
    if Uri::try_from(target).is_err() {
        return Err(Refusal::malformed("invalid request target"));
    }
    let http11 = request.version == Some(1);
    // Hyper's rules (RFC 9112 6.1, 6.3): a request's Transfer-Encoding must end in chunked and
    // needs HTTP/1.1; Content-Length values must be digits and agree; chunked wins.
    let (mut length, mut te, mut chunked) = (None, false, false);
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http11 {
                return Err(Refusal::malformed("Transfer-Encoding in an HTTP/1.0 request"));
            }
            te = true;
            chunked = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if header.name.eq_ignore_ascii_case("content-length") && !te {
            let value = header.value;
            let parsed = (!value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(value).ok()?.parse::<u64>().ok())
                .flatten();
            match (parsed, length) {
                (None, _) => return Err(Refusal::malformed("invalid Content-Length")),
                (Some(n), Some(previous)) if n != previous => {
                    return Err(Refusal::malformed("conflicting Content-Length fields"));
                }
                (Some(n), _) => length = Some(n),
            }
        }
    }
    if te && !chunked {
        return Err(Refusal::malformed("a Transfer-Encoding that does not end in chunked"));
    }
    Ok(if te {
        Framing::Chunked
    } else {
        match length {
            Some(n) if n > 0 => Framing::Length(n),
            _ => Framing::None,
        }
    })
}

/// A connection whose request heads are checked and rewritten on the way in.
pub struct LenientStream {
    inner: TcpStream,
    state: State,
    /// The head being collected.
    head: Vec<u8>,
    /// Where the line being collected starts in `head`.
    line_start: usize,
    /// The end of the request line in `head`, once it is complete.
    request_line_end: Option<usize>,
    header_lines: usize,
    /// Bytes for hyper.
    ready: VecDeque<u8>,
    eof: bool,
    /// After a refusal: the end of the lingering close, once the answer is sent.
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    lingered: usize,
    /// While a write waits for the client: when it fails.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Where reads from the socket land, kept for the connection's life: a fresh zeroed
    /// buffer per read cost as much as the rest of a small request's head handling.
    read_buf: Box<[u8]>,
}

impl LenientStream {
    pub fn new(inner: TcpStream) -> Self {
        Self {
            inner,
            state: State::Head,
            head: Vec::new(),
            line_start: 0,
            request_line_end: None,
            header_lines: 0,
            ready: VecDeque::new(),
            eof: false,
            linger: None,
            lingered: 0,
            stall: None,
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// The socket.
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }

    fn feed(&mut self, data: &[u8]) {
        let mut i = 0;
        while i < data.len() {
            match &mut self.state {
                State::Passthrough => {
                    self.ready.extend(&data[i..]);
                    return;
                }
                State::Refused => return,
                State::Body { remaining } => {
                    let n = (*remaining).min((data.len() - i) as u64) as usize;
                    self.ready.extend(&data[i..i + n]);
                    *remaining -= n as u64;
                    i += n;
                    if *remaining == 0 {
                        self.state = State::Head;
                    }
                }
                State::Head => {
                    let rest = &data[i..];
                    let (piece, complete) = match rest.iter().position(|&b| b == b'\n') {
                        Some(end) => (&rest[..=end], true),
                        None => (rest, false),
                    };
                    i += piece.len();
                    self.head.extend_from_slice(piece);
                    if complete {
                        self.end_of_line();
                    } else {
                        self.check_partial_line();
                    }
                }
            }
        }
    }

    /// A line of the head is complete.
    fn end_of_line(&mut self) {
        let line = &self.head[self.line_start..];
        let blank = line == b"\r\n" || line == b"\n";
        match self.request_line_end {
            // Blank lines before a request are allowed (RFC 9112 2.2) and dropped.
            None if blank => self.head.truncate(self.line_start),
            None => {
                if line.len() > MAX_TARGET + 64 {
                    return self.refuse(Refusal::uri_too_long());
                }
                self.request_line_end = Some(self.head.len());
                self.line_start = self.head.len();
            }
            Some(_) if blank => self.finish_head(),
            Some(end) => {
                self.header_lines += 1;
                self.line_start = self.head.len();
                if self.header_lines > MAX_HEADERS || self.head.len() - end > MAX_HEADER_BYTES {
                    self.refuse(Refusal::headers_too_large());
                }
            }
        }
    }

    /// Refuses a head whose line being collected is already too long.
    fn check_partial_line(&mut self) {
        match self.request_line_end {
            None => {
                let line = &self.head[self.line_start..];
                let method = line.split(|&b| b == b' ').next().unwrap_or_default();
                if method != b"\r" && !method.iter().all(|&b| is_tchar(b)) {
                    // Not HTTP (a TLS handshake, say): no need to wait for the end of the line.
                    return self.refuse(Refusal::malformed("invalid method"));
                }
                if line.len() > MAX_TARGET + 64 {
                    // Past the method, the target alone is too long; without a space, the
                    // "method" is no method.
                    let refusal = match line.iter().position(|&b| b == b' ') {
                        Some(_) => Refusal::uri_too_long(),
                        None => Refusal::malformed("invalid method"),
                    };
                    self.refuse(refusal);
                }
            }
            Some(end) => {
                if self.head.len() - end > MAX_HEADER_BYTES {
                    self.refuse(Refusal::headers_too_large());
                }
            }
        }
    }

    /// The head is complete: rewrite, check, and pass it on (or its stand-in).
    fn finish_head(&mut self) {
        let head = std::mem::take(&mut self.head);
        let end = self.request_line_end.take().unwrap_or(0);
        self.line_start = 0;
        self.header_lines = 0;
        let refused_header = |line: &[u8]| {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            name.eq_ignore_ascii_case(REFUSED_HEADER.as_bytes())
        };
        // Most heads pass as they came: no escape to add, no header to remove.
        let as_received =
            is_plain_request_line(&head[..end]) && !head[end..].split_inclusive(|&b| b == b'\n').any(refused_header);
        let rebuilt = if as_received {
            head
        } else {
            let mut rebuilt = rewrite_request_line(&head[..end]);
            for line in head[end..].split_inclusive(|&b| b == b'\n') {
                if !refused_header(line) {
                    rebuilt.extend_from_slice(line);
                }
            }
            rebuilt
        };
        match check_head(&rebuilt) {
            Ok(framing) => {
                self.ready.extend(&rebuilt);
                self.state = match framing {
                    Framing::None => State::Head,
                    Framing::Length(remaining) => State::Body { remaining },
                    Framing::Chunked => State::Passthrough,
                };
            }
            Err(refusal) => self.refuse(refusal),
        }
    }

    /// Passes on the stand-in request for a refused head; nothing after it is read.
    fn refuse(&mut self, refusal: Refusal) {
        tracing::debug!(status = refusal.status, "request head refused: {}", refusal.message);
        self.head = Vec::new();
        self.request_line_end = None;
        self.ready.extend(
            format!(
                "GET / HTTP/1.1\r\nhost: localhost\r\n{REFUSED_HEADER}: {}\r\nconnection: close\r\n\r\n",
                refusal.header_value()
            )
            .as_bytes(),
        );
        self.state = State::Refused;
    }
}

impl LenientStream {
    /// A write's outcome, or a timeout when the client has taken no bytes for [`WRITE_STALL`].
    fn stalled(&mut self, cx: &mut Context<'_>, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if written.is_ready() {
            self.stall = None;
            return written;
        }
        let stall = self.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading the answer")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether [`rewrite_request_line`] would leave `line` as it is: two spaces, nothing to escape.
fn is_plain_request_line(line: &[u8]) -> bool {
    let text = line.strip_suffix(b"\r\n").or_else(|| line.strip_suffix(b"\n")).unwrap_or(line);
    text.iter().filter(|&&b| b == b' ').count() == 2
        && text.first() != Some(&b' ')
        && text.last() != Some(&b' ')
        && !text.windows(2).any(|w| w == b"  ")
        && !text.iter().any(|&b| needs_escape(b))
}

/// `METHOD target VERSION\r\n` with the target's refused bytes percent-encoded. The version
/// is the last space-separated word, so a target containing raw spaces is rejoined with `%20`.
fn rewrite_request_line(line: &[u8]) -> Vec<u8> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(_) => return line.to_vec(),
    };
    let trimmed = text.trim_end_matches(['\r', '\n']);
    let ending = &text[trimmed.len()..];
    let (Some(first), Some(last)) = (trimmed.find(' '), trimmed.rfind(' ')) else {
        return line.to_vec();
    };
    if first >= last {
        return line.to_vec();
    }
    let method = &trimmed[..first];
    let target = trimmed[first + 1..last].replace(' ', "%20");
    let version = &trimmed[last + 1..];
    format!("{method} {} {version}{ending}", encode_request_target(&target)).into_bytes()
}

impl AsyncRead for LenientStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.ready.is_empty() {
                let n = self.ready.len().min(buf.remaining());
                let (a, b) = self.ready.as_slices();
                let from_a = n.min(a.len());
                buf.put_slice(&a[..from_a]);
                buf.put_slice(&b[..n - from_a]);
                self.ready.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if self.state == State::Refused {
                // The stand-in request asks hyper to close after its answer; it reads no more.
                return Poll::Pending;
            }
            if self.eof {
                // An unfinished head is dropped: the client went away before finishing it.
                return Poll::Ready(Ok(()));
            }
            let mut chunk = std::mem::take(&mut self.read_buf);
            let mut read = ReadBuf::new(&mut chunk);
            let polled = Pin::new(&mut self.inner).poll_read(cx, &mut read);
            let filled = read.filled().len();
            match polled {
                Poll::Ready(Ok(())) if filled == 0 => self.eof = true,
                Poll::Ready(Ok(())) => self.feed(&chunk[..filled]),
                _ => {}
            }
            self.read_buf = chunk;
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
        }
    }
}

impl AsyncWrite for LenientStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.stalled(cx, written)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    /// After a refusal, the end of the answer is sent and then what the client still sends is
    /// read and dropped for a moment ([`LINGER`]): closing a socket with unread data resets the
    /// connection, and the client might lose the answer.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state != State::Refused {
            return Pin::new(&mut self.inner).poll_shutdown(cx);
        }
        if self.linger.is_none() {
            std::task::ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.linger = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        loop {
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if !read.filled().is_empty() && self.lingered < MAX_LINGER_BYTES => {
                    self.lingered += read.filled().len();
                }
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => break,
            }
        }
        match self.linger.as_mut().map(|sleep| sleep.as_mut().poll(cx)) {
            Some(Poll::Pending) => Poll::Pending,
            _ => Poll::Ready(Ok(())),
        }
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.stalled(cx, written)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_rewritten() {
        assert_eq!(
            rewrite_request_line(b"GET /api/v4/nodes?id>1&label=\"a b\" HTTP/1.1\r\n"),
            b"GET /api/v4/nodes?id%3E1&label=%22a%20b%22 HTTP/1.1\r\n".to_vec()
        );
        assert_eq!(rewrite_request_line(b"GET /x HTTP/1.1\r\n"), b"GET /x HTTP/1.1\r\n".to_vec());
        for line in [
            &b"GET /x HTTP/1.1\r\n"[..],
            b"GET /api/v4/nodes?id%3E1 HTTP/1.1\n",
            b"GET /a b HTTP/1.1\r\n",
            b"GET /a<b HTTP/1.1\r\n",
            b"GET  /x HTTP/1.1\r\n",
            b"GET /x  HTTP/1.1\r\n",
            b" GET /x HTTP/1.1\r\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\n",
        ] {
            // A line found plain is one the rewrite leaves alone.
            assert!(!is_plain_request_line(line) || rewrite_request_line(line) == line, "{line:?}");
        }
        assert!(is_plain_request_line(b"GET /x HTTP/1.1\r\n"));
        assert!(!is_plain_request_line(b"GET /a b HTTP/1.1\r\n"));
    }

    /// What hyper reads after `input` arrives (in pieces of `piece` bytes).
    fn through(input: &[u8], piece: usize) -> String {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (server, _) = tcp.accept().unwrap();
            server.set_nonblocking(true).unwrap();
            let mut s = LenientStream::new(TcpStream::from_std(server).unwrap());
            for chunk in input.chunks(piece) {
                s.feed(chunk);
            }
            String::from_utf8(s.ready.drain(..).collect()).unwrap()
        })
    }

    #[test]
    fn bodies_and_following_requests() {
        let input = b"POST /q?a<1 HTTP/1.1\r\nContent-Length: 5\r\n\r\n<\"x>\nGET /n?b>2 HTTP/1.1\r\n\r\n";
        let expected = "POST /q?a%3C1 HTTP/1.1\r\nContent-Length: 5\r\n\r\n<\"x>\nGET /n?b%3E2 HTTP/1.1\r\n\r\n";
        for piece in [1, 3, 1000] {
            assert_eq!(through(input, piece), expected);
        }
    }

    #[test]
    fn unfinished_heads_are_held_back() {
        assert_eq!(through(b"GET /api/v4/nodes HTTP/1.1\r\nHost: x\r\n", 1000), "");
        assert_eq!(through(b"\r\nGET / HTTP/1.1\r\n\r\n", 1000), "GET / HTTP/1.1\r\n\r\n");
    }

    fn refused(input: &[u8]) -> Option<Refusal> {
        let out = through(input, 4096);
        let line = out.lines().find_map(|l| l.strip_prefix(&format!("{REFUSED_HEADER}: ")).map(str::to_string))?;
        Refusal::from_header_value(line.as_bytes())
    }

    #[test]
    fn heads_hyper_would_refuse() {
        let status = |input: &[u8]| refused(input).map(|r| r.status);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), None);
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET));
        assert_eq!(status(long.as_bytes()), Some(414));
        let long = format!("GET /{}", "a".repeat(MAX_TARGET + 100));
        assert_eq!(status(long.as_bytes()), Some(414));
        let ok = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET - 1));
        assert_eq!(status(ok.as_bytes()), None);
        let big = format!("GET / HTTP/1.1\r\nCookie: {}\r\n\r\n", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(status(big.as_bytes()), Some(431));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        assert_eq!(status(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), Some(431));
        for bad in [
            &b"GET / HTTP/1.1 extra\r\n\r\n"[..],
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/3.0\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded\r\n\r\n",
        ] {
            assert_eq!(status(bad), Some(400), "{}", String::from_utf8_lossy(bad));
        }
        // A client cannot forge a refusal.
        let out = through(format!("GET / HTTP/1.1\r\n{REFUSED_HEADER}: 400 x\r\n\r\n").as_bytes(), 4096);
        assert_eq!(out, "GET / HTTP/1.1\r\n\r\n");
        assert_eq!(Refusal::from_header_value(b"0123456789abcdef 400 x"), None);
    }
}
