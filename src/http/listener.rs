//! A TCP listener that tolerates the query strings clients of the reference send.
//!
//! The AiiDA REST grammar uses `<`, `>` and `"` in query strings (`?id>3`, `?label="x"`), and
//! common clients (curl, Python's urllib) send them unencoded. The `http` crate rejects such a
//! request target, so hyper would answer a bare 400 before any handler runs. This stream
//! wrapper percent-encodes those bytes in each request line before hyper parses it; the API
//! decodes the whole query anyway, so nothing downstream can tell the difference.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

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

/// Longest request line or header line buffered for rewriting; longer ones pass unchanged and
/// hyper rejects them.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug)]
enum State {
    RequestLine,
    Headers {
        content_length: u64,
        chunked: bool,
    },
    Body {
        remaining: u64,
    },
    /// Chunked request bodies are not tracked: the rest of the connection passes unchanged.
    Passthrough,
}

/// A connection whose request lines are rewritten on the way in.
pub struct LenientStream {
    inner: TcpStream,
    state: State,
    line: Vec<u8>,
    ready: VecDeque<u8>,
    eof: bool,
}

impl LenientStream {
    pub fn new(inner: TcpStream) -> Self {
        Self { inner, state: State::RequestLine, line: Vec::new(), ready: VecDeque::new(), eof: false }
    }

    fn feed(&mut self, data: &[u8]) {
        let mut i = 0;
        while i < data.len() {
            match &mut self.state {
                State::Passthrough => {
                    self.ready.extend(&data[i..]);
                    return;
                }
                State::Body { remaining } => {
                    let n = (*remaining).min((data.len() - i) as u64) as usize;
                    self.ready.extend(&data[i..i + n]);
                    *remaining -= n as u64;
                    i += n;
                    if *remaining == 0 {
                        self.state = State::RequestLine;
                    }
                }
                State::RequestLine | State::Headers { .. } => {
                    let b = data[i];
                    i += 1;
                    self.line.push(b);
                    if b == b'\n' || self.line.len() >= MAX_LINE {
                        self.finish_line();
                    }
                }
            }
        }
    }

    fn finish_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        match &mut self.state {
            State::RequestLine => {
                // Blank lines between requests are allowed and kept.
                if line.iter().all(|b| b.is_ascii_whitespace()) {
                    self.ready.extend(&line);
                    return;
                }
                self.ready.extend(rewrite_request_line(&line));
                self.state = State::Headers { content_length: 0, chunked: false };
            }
            State::Headers { content_length, chunked } => {
                self.ready.extend(&line);
                if line == b"\r\n" || line == b"\n" {
                    self.state = if *chunked {
                        State::Passthrough
                    } else if *content_length > 0 {
                        State::Body { remaining: *content_length }
                    } else {
                        State::RequestLine
                    };
                    return;
                }
                let text = String::from_utf8_lossy(&line);
                if let Some((name, value)) = text.split_once(':') {
                    let name = name.trim().to_ascii_lowercase();
                    if name == "content-length" {
                        *content_length = value.trim().parse().unwrap_or(0);
                    } else if name == "transfer-encoding" {
                        *chunked = true;
                    }
                }
            }
            State::Body { .. } | State::Passthrough => self.ready.extend(&line),
        }
    }
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
            if self.eof {
                // Whatever partial line is left goes out as it is.
                let rest = std::mem::take(&mut self.line);
                if rest.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                self.ready.extend(rest);
                continue;
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    let filled = read.filled().to_vec();
                    if filled.is_empty() {
                        self.eof = true;
                    } else {
                        self.feed(&filled);
                    }
                }
            }
        }
    }
}

impl AsyncWrite for LenientStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// `axum::serve` listener yielding [`LenientStream`]s.
pub struct LenientListener(pub TcpListener);

impl axum::serve::Listener for LenientListener {
    type Io = LenientStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (LenientStream::new(stream), addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
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
    }

    #[test]
    fn bodies_and_following_requests() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (server, _) = tcp.accept().unwrap();
            server.set_nonblocking(true).unwrap();
            let mut s = LenientStream::new(TcpStream::from_std(server).unwrap());
            s.feed(b"POST /q?a<1 HTTP/1.1\r\nContent-Length: 5\r\n\r\n<\"x>\nGET /n?b>2 HTTP/1.1\r\n\r\n");
            let out: Vec<u8> = s.ready.drain(..).collect();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "POST /q?a%3C1 HTTP/1.1\r\nContent-Length: 5\r\n\r\n<\"x>\nGET /n?b%3E2 HTTP/1.1\r\n\r\n"
            );
        });
    }
}
