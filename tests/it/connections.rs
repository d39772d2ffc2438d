//! The connection level of the real server (the `aiida-rest` binary on the demo archive, on a
//! loopback port), spoken to over raw TCP: unfinished requests are closed in time, a normal
//! client is served while hundreds of stuck ones are held, SIGTERM ends the process within
//! its grace period, the errors of the HTTP layer are JSON, and the Host header is checked.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `aiida-rest serve` of the demo archive; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with the environment `env`; `open_files` lowers its file limit
    /// (soft and hard) before it starts.
    fn start(env: &[(&str, &str)], open_files: Option<u64>) -> Server {
        let exe = env!("CARGO_BIN_EXE_aiida-rest");
        let mut command = match open_files {
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), exe]);
                c
            }
            None => Command::new(exe),
        };
        // As `harness::server_command`: no statistics cache in the user's home.
        command.env("AIIDA_REST_NO_CACHE_DIR", "1");
        command.args(["serve", "--host", "127.0.0.1", "--port", "0"]);
        command.env("RUST_LOG", "aiida_rest=info");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix(" * REST API running on http://") {
                    let addr: SocketAddr = rest.trim_end_matches("/api/v4").parse().unwrap();
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start: {}", log.lock().unwrap());
            }
        };
        Server { child, addr, log }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        stream
    }

    /// Sends `raw` on a new connection and reads the answers until the server closes it.
    fn exchange(&self, raw: &[u8]) -> Vec<Answer> {
        let mut stream = self.connect();
        stream.write_all(raw).unwrap();
        let mut bytes = Vec::new();
        match stream.read_to_end(&mut bytes) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("no end of the answer to {:?}: {e}", String::from_utf8_lossy(&raw[..raw.len().min(200)])),
        }
        parse_answers(&bytes)
    }

    /// The one answer to `raw` (which should ask to close the connection).
    fn ask(&self, raw: &[u8]) -> Answer {
        let mut answers = self.exchange(raw);
        assert_eq!(answers.len(), 1, "one answer to {:?}", String::from_utf8_lossy(&raw[..raw.len().min(200)]));
        answers.remove(0)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} not JSON ({e}): {:?}", self.status, String::from_utf8_lossy(&self.body)))
    }

    /// A JSON error with this status and a message.
    fn assert_json_error(&self, status: u16) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        assert!(self.json()["message"].as_str().is_some_and(|m| !m.is_empty()), "{self:?}");
    }
}

/// The answers in `bytes`, each framed by its Content-Length.
fn parse_answers(mut bytes: &[u8]) -> Vec<Answer> {
    let mut answers = Vec::new();
    while !bytes.is_empty() {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete answer head") + 4;
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(bytes.len() - end, |(_, v)| v.parse().unwrap());
        answers.push(Answer { status, headers, body: bytes[end..end + length].to_vec() });
        bytes = &bytes[end + length..];
    }
    answers
}

/// Waits until the server closes `stream`; how long that took, or `None` after `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(start.elapsed()),
            Err(_) => return None,
        }
        if start.elapsed() > limit {
            return None;
        }
    }
}

const GET_SERVER: &[u8] = b"GET /api/v4/server HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

#[test]
fn unfinished_requests_are_closed_after_the_header_timeout() {
    let server = Server::start(&[("AIIDA_REST_HEADER_TIMEOUT", "1")], None);
    let limit = Duration::from_secs(5);
    // Part of a request head.
    let mut partial = server.connect();
    partial.write_all(b"GET /api/v4/server HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: ").unwrap();
    // Nothing at all.
    let mut silent = server.connect();
    // One byte a while, never a complete head.
    let mut slow = server.connect();
    // A kept-alive connection after its answer.
    let mut idle = server.connect();
    idle.write_all(b"GET /api/v4/server HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    // A body shorter than announced.
    let mut short = server.connect();
    short
        .write_all(b"POST /api/v4/querybuilder HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"path\"")
        .unwrap();
    let start = Instant::now();
    for b in b"GET /api/v4/server HTTP/1.1" {
        if slow.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        if start.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    for (name, stream) in [
        ("partial", &mut partial),
        ("silent", &mut silent),
        ("slow", &mut slow),
        ("idle", &mut idle),
        ("short body", &mut short),
    ] {
        let took = closed_within(stream, limit);
        assert!(took.is_some(), "the {name} connection is still open after {limit:?} with a 1 s header timeout");
    }
    // The server still serves.
    assert_eq!(server.ask(GET_SERVER).status, 200);
}

#[test]
fn a_client_is_served_while_hundreds_of_stuck_ones_are_held() {
    // A file limit of 256 and 300 stuck connections: without a cap on open connections, the
    // server runs out of file descriptors and stops accepting.
    let server = Server::start(&[("AIIDA_REST_HEADER_TIMEOUT", "120")], Some(256));
    let stuck: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            let _ = s.write_all(b"GET /api/v4/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n");
            s
        })
        .collect();
    for round in 0..3 {
        let start = Instant::now();
        let answer = server.ask(GET_SERVER);
        assert_eq!(answer.status, 200, "round {round}");
        assert!(start.elapsed() < Duration::from_secs(5), "round {round} took {:?}", start.elapsed());
    }
    drop(stuck);
    let log = server.log();
    assert!(log.matches("accept failed").count() <= 1, "accept errors are logged at most once a minute:\n{log}");
}

fn wait_exit(server: &mut Server, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = server.child.try_wait().unwrap() {
            return Some((status, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn sigterm_lets_requests_finish_and_exits_within_the_grace_period() {
    let mut server = Server::start(&[("AIIDA_REST_SHUTDOWN_GRACE", "3"), ("AIIDA_REST_HEADER_TIMEOUT", "120")], None);
    // A client that never finishes its request head.
    let mut partial = server.connect();
    partial.write_all(b"GET /api/v4/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    // A request under way whose body arrives after the signal.
    let body = br#"{"path": [{"entity_type": "", "orm_base": "node", "tag": "n"}], "limit": 1}"#;
    let mut finishing = server.connect();
    write!(
        finishing,
        "POST /api/v4/querybuilder HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    finishing.write_all(&body[..10]).unwrap();
    // A request under way whose body never ends.
    let mut stuck_body = server.connect();
    stuck_body
        .write_all(b"POST /api/v4/querybuilder HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let signalled = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(500));
    finishing.write_all(&body[10..]).unwrap();
    let mut answer = Vec::new();
    let _ = finishing.read_to_end(&mut answer);
    let answers = parse_answers(&answer);
    assert_eq!(answers.first().map(|a| a.status), Some(200), "the request under way is answered during the grace");

    let exited = wait_exit(&mut server, Duration::from_secs(3 + 4));
    let log = server.log();
    let Some((status, _)) = exited else {
        panic!("still running {:?} after SIGTERM with a 3 s grace period:\n{log}", signalled.elapsed());
    };
    assert!(status.success(), "exit status {status}:\n{log}");
    assert!(signalled.elapsed() >= Duration::from_secs(2), "the unfinished body had its grace period");
    drop((partial, stuck_body));
}

#[test]
fn errors_of_the_http_layer_are_json() {
    let server = Server::start(&[], None);
    // A URL over 64 KiB.
    let long = format!("GET /api/v4/nodes?label={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "a".repeat(70_000));
    server.ask(long.as_bytes()).assert_json_error(414);
    // Header fields too large: one huge, or too many.
    let big = format!("GET /api/v4/server HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {}\r\n\r\n", "c".repeat(70_000));
    server.ask(big.as_bytes()).assert_json_error(431);
    let many: String = (0..150).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    let many = format!("GET /api/v4/server HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}\r\n");
    server.ask(many.as_bytes()).assert_json_error(431);
    // Malformed request lines and header lines.
    for raw in [
        &b"GET /api/v4/server HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n"[..],
        b"G(T /api/v4/server HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /api/v4/server HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET\r\n\r\n",
        // A TLS handshake: refused without waiting for a line end.
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET /api/v4/server HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n",
        b"GET /api/v4/server HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ten\r\n\r\n",
        b"POST /api/v4/querybuilder HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ] {
        let answer = server.ask(raw);
        answer.assert_json_error(400);
        assert_eq!(answer.header("connection"), Some("close"));
    }
    // Behind a good request on the same connection, in order.
    let mut pipelined = b"GET /api/v4/server HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec();
    pipelined.extend(b"GET /api/v4/server HTTP/1.1 junk\r\n\r\n");
    let answers = server.exchange(&pipelined);
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].status, 200);
    answers[1].assert_json_error(400);
    // Query strings with raw `"`, `<`, `>` are still accepted.
    assert_eq!(
        server.ask(b"GET /api/v4/nodes?id>0&limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").status,
        200
    );
}

#[test]
fn the_host_header_is_checked() {
    let server = Server::start(&[], None);
    let get = |path: &str, headers: &str| {
        server.ask(format!("GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").as_bytes())
    };
    // Missing, repeated or invalid: 400.
    get("/api/v4/server", "").assert_json_error(400);
    get("/api/v4/server", "Host: a.org\r\nHost: b.org\r\n").assert_json_error(400);
    for host in ["a\"b<script>", "a b", "a.org:x", "a.org:99999", "[::1", "user@a.org", "a.org/x", ""] {
        let answer = get("/api/v4/nodes/page/1?perpage=1", &format!("Host: {host}\r\n"));
        answer.assert_json_error(400);
        assert!(answer.header("link").is_none());
    }
    // Valid ones are echoed.
    let answer = get("/api/v4/server", "Host: example.org:8080\r\n");
    assert_eq!(answer.json()["url_root"], "http://example.org:8080/");
    let answer = get("/api/v4/server", "Host: [::1]:5000\r\n");
    assert_eq!(answer.json()["url_root"], "http://[::1]:5000/");
    let answer = get("/api/v4/nodes/page/1?perpage=1", "Host: example.org\r\n");
    assert_eq!(answer.status, 200);
    assert!(answer.header("link").unwrap().starts_with("<http://example.org/api/v4/nodes/page/"));
    // The absolute-form target's authority wins over Host (RFC 9112 3.2.2).
    let answer = get("http://example.org:81/api/v4/server", "Host: other.org\r\n");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["url"], "http://example.org:81/api/v4/server");
    assert_eq!(answer.json()["url_root"], "http://example.org:81/");
    // HTTP/1.0 without Host: the listening address.
    let answer = server.ask(b"GET /api/v4/server HTTP/1.0\r\n\r\n");
    assert_eq!(answer.json()["url_root"], format!("http://{}/", server.addr));

    // With a public URL, every absolute URL starts with it.
    let public = Server::start(&[("AIIDA_REST_PUBLIC_URL", "https://example.org/aiida/")], None);
    let answer =
        public.ask(b"GET /api/v4/nodes/page/2?perpage=1 HTTP/1.1\r\nHost: internal:5000\r\nConnection: close\r\n\r\n");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["url"], "https://example.org/aiida/api/v4/nodes/page/2?perpage=1");
    assert_eq!(answer.json()["url_root"], "https://example.org/aiida/");
    let link = answer.header("link").unwrap();
    assert!(link.starts_with("<https://example.org/aiida/api/v4/nodes/page/1?perpage=1>; rel=\"prev\""), "{link}");
    assert!(!link.contains("internal"));
}
