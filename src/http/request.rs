//! What a handler knows about the request it answers, and the JSON envelope every answer wears.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::path::ReceivedUri;
use crate::model::pyjson;

/// The parts of a request that appear in the envelope.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub method: Method,
    /// Percent-decoded path, as the reference echoes it.
    pub path: String,
    /// The query exactly as received (still percent-encoded), without the `?`.
    pub raw_query: Option<String>,
    /// The percent-decoded query: what the grammar parses and the envelope echoes. `+` stays `+`.
    pub query: String,
    /// `scheme://host[:port]`, or the public base URL: see [`Origin`].
    pub origin: String,
    /// Path as received (still percent-encoded), for building links.
    pub raw_path: String,
}

/// Python's `urllib.parse.unquote`: decodes `%XX`, leaves `+` alone, replaces bad UTF-8.
pub fn unquote(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The start of every absolute URL an answer writes (`url`, `url_root`, `Link`), without a
/// trailing slash: the public base URL the server was given (`--public-url`), or
/// `scheme://host[:port]` of the request. The server (`http::serve`) puts it into each request's
/// extensions after checking the request's Host; [`Ctx`] reads it from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(pub String);

/// Whether `text` is `host[:port]` as a Host header or URL authority may hold it (RFC 9110
/// 7.2, RFC 3986 3.2.2): a name or IPv4 address of letters, digits and `-._~`, or an IPv6
/// literal in brackets, then an optional port of 1 to 5 digits up to 65535. No user info,
/// no percent-encoding, nothing that would need escaping in a URL.
pub fn is_valid_authority(text: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((literal, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        (literal.parse::<std::net::Ipv6Addr>().is_ok(), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        let ok = !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        (ok, port)
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    });
    host_ok && port_ok
}

/// The origin of a request's answers from its target and Host header, checked as RFC 9112 3.2
/// asks: more than one Host header, or none in an HTTP/1.1 request, or an invalid one, is an
/// error (the message of a 400). For an absolute-form target (`GET http://host/path`) its
/// authority is the origin and the Host header's value is ignored (RFC 9112 3.2.2). An
/// HTTP/1.0 request without Host gets `listening` (the address it came in on), or `localhost`.
pub fn request_origin(
    version: Version,
    uri: &Uri,
    headers: &HeaderMap,
    listening: Option<std::net::SocketAddr>,
) -> Result<String, String> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err("The request has more than one Host header.".into());
    }
    let old = version < Version::HTTP_11;
    if host.is_none() && !old {
        return Err("The request has no Host header (HTTP/1.1 requires one).".into());
    }
    if let Some(authority) = uri.authority() {
        let scheme = uri.scheme_str().unwrap_or("http");
        if !matches!(scheme, "http" | "https") {
            return Err("The request target is an absolute URL that is not http or https.".into());
        }
        if !is_valid_authority(authority.as_str()) {
            return Err("The host of the request target is not a valid host[:port].".into());
        }
        return Ok(format!("{scheme}://{authority}"));
    }
    match host {
        Some(value) => match value.to_str() {
            Ok(text) if is_valid_authority(text) => Ok(format!("http://{text}")),
            _ => Err("The Host header is not a valid host[:port].".into()),
        },
        None => Ok(match listening {
            Some(address) => format!("http://{address}"),
            None => "http://localhost".into(),
        }),
    }
}

/// The origin that `--public-url` gives: an `http` or `https` URL with a valid host[:port] and
/// an optional path (a trailing `/` is dropped), no query or fragment.
pub fn public_origin(url: &str) -> Result<Origin, String> {
    let why = || format!("{url:?} is not an http(s) URL like https://example.org/aiida");
    let uri: Uri = url.parse().map_err(|_| why())?;
    let scheme = uri.scheme_str().ok_or_else(why)?;
    let authority = uri.authority().ok_or_else(why)?.as_str();
    if !matches!(scheme, "http" | "https") || !is_valid_authority(authority) || uri.query().is_some() {
        return Err(why());
    }
    if url.contains('#') {
        return Err(why());
    }
    Ok(Origin(format!("{scheme}://{authority}{}", uri.path().trim_end_matches('/'))))
}

impl Ctx {
    /// The context of a request outside the server (`oneshot` in tests): the origin is the
    /// request's, as [`request_origin`] finds it, or `http://localhost` when that is invalid
    /// (an invalid Host is never echoed).
    pub fn new(method: Method, uri: &Uri, headers: &HeaderMap) -> Self {
        let origin = request_origin(Version::HTTP_11, uri, headers, None).unwrap_or_else(|_| "http://localhost".into());
        Self::with_origin(method, uri, Origin(origin))
    }

    /// The context of a request whose origin is known.
    pub fn with_origin(method: Method, uri: &Uri, origin: Origin) -> Self {
        let raw_query = uri.query().map(str::to_string);
        Self {
            method,
            path: unquote(uri.path()),
            query: raw_query.as_deref().map(unquote).unwrap_or_default(),
            raw_query,
            origin: origin.0,
            raw_path: uri.path().to_string(),
        }
    }

    pub fn url(&self) -> String {
        self.url_parts().concat()
    }

    pub fn url_root(&self) -> String {
        format!("{}/", self.origin)
    }

    /// `url` in pieces: the origin, the path, and `?` and the query when there is one.
    fn url_parts(&self) -> [&str; 4] {
        match &self.raw_query {
            Some(q) if !q.is_empty() => [&self.origin, &self.path, "?", &self.query],
            _ => [&self.origin, &self.path, "", ""],
        }
    }

    /// The envelope's fields after `data` and `id`, each key with its value in pieces, in the
    /// order of the keys (Flask sorts them). Both spellings of the envelope, [`Ctx::envelope`]
    /// and [`Ctx::answer`], write these.
    fn envelope_fields<'a>(&'a self, resource_type: &'a str) -> [(&'static str, [&'a str; 4]); 6] {
        [
            ("method", [self.method.as_str(), "", "", ""]),
            ("path", [&self.path, "", "", ""]),
            ("query_string", [&self.query, "", "", ""]),
            ("resource_type", [resource_type, "", "", ""]),
            ("url", self.url_parts()),
            ("url_root", [&self.origin, "/", "", ""]),
        ]
    }

    /// The envelope around `data`; `id` is omitted when `None` (server info, querybuilder).
    /// For an answer to change before it is sent; [`Ctx::answer`] writes one straight out.
    pub fn envelope(&self, resource_type: &str, id: Option<Value>, data: Value) -> Value {
        let mut map = Map::new();
        map.insert("data".into(), data);
        if let Some(id) = id {
            map.insert("id".into(), id);
        }
        for (key, parts) in self.envelope_fields(resource_type) {
            map.insert(key.into(), Value::String(parts.concat()));
        }
        Value::Object(map)
    }

    /// The 200 answer of `data` in its envelope, as [`json_response`] would send
    /// `self.envelope(..)`, written straight into the answer's text: no map of the envelope,
    /// no copies of its strings.
    pub fn answer(
        &self,
        resource_type: &str,
        id: Option<&Value>,
        data: &Value,
        total: Option<i64>,
        link: Option<String>,
    ) -> Response {
        let mut text = String::with_capacity(512);
        text.push_str("{\"data\":");
        pyjson::write_value(&mut text, data);
        if let Some(id) = id {
            text.push_str(",\"id\":");
            pyjson::write_value(&mut text, id);
        }
        for (key, parts) in self.envelope_fields(resource_type) {
            text.push_str(",\"");
            text.push_str(key);
            text.push_str("\":");
            pyjson::write_str_parts(&mut text, &parts);
        }
        text.push_str("}\n");
        text_response(StatusCode::OK, text, total, link)
    }

    /// `Link` header for page `page` of `last` pages: prev, next, first, last, each a complete
    /// URL of the same request on another page.
    pub fn page_links(&self, page: u64, last: u64) -> String {
        let mut segments: Vec<&str> = self.raw_path.split('/').filter(|s| !s.is_empty()).collect();
        // Drop the trailing `page/<n>` or `page`.
        if let Some(pos) = segments.iter().rposition(|s| *s == "page") {
            segments.truncate(pos);
        }
        let base = format!("{}/{}/page/", self.origin, segments.join("/"));
        let query = match &self.raw_query {
            Some(q) => format!("?{q}"),
            None => String::new(),
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(format!("<{base}{}{query}>; rel=\"prev\"", page - 1));
        }
        if page < last {
            links.push(format!("<{base}{}{query}>; rel=\"next\"", page + 1));
        }
        links.push(format!("<{base}1{query}>; rel=\"first\""));
        links.push(format!("<{base}{last}{query}>; rel=\"last\""));
        links.join(", ")
    }
}

/// A handler's `Ctx` argument: the request as received (before the path was canonicalised and
/// a nest prefix stripped), so answers echo the full path whatever the router did with it.
impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Ctx::of(parts))
    }
}

impl Ctx {
    /// The context of a request as the server hands it on: the URI as received (before the
    /// path was canonicalised and a nest prefix stripped), the origin the server checked.
    pub fn of(parts: &Parts) -> Self {
        let uri = parts.extensions.get::<ReceivedUri>().map_or(&parts.uri, |received| &received.0);
        match parts.extensions.get::<Origin>() {
            Some(origin) => Ctx::with_origin(parts.method.clone(), uri, origin.clone()),
            None => Ctx::new(parts.method.clone(), uri, &parts.headers),
        }
    }
}

/// A file download with the reference's headers (v2 and v4 send the same).
pub fn attachment(body: axum::body::Body, size: Option<u64>, filename: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Some(size) = size {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    // Quotes and control characters cannot appear inside the quoted name.
    let safe: String = filename.chars().map(|c| if c == '"' || c.is_control() { '_' } else { c }).collect();
    let value = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    headers.insert(header::CONTENT_DISPOSITION, value);
    response
}

/// A JSON answer with the reference's headers (the CORS layer adds
/// `Access-Control-Expose-Headers` to those with a total).
pub fn json_response(status: StatusCode, body: &Value, total: Option<i64>, link: Option<String>) -> Response {
    text_response(status, pyjson::to_string(body), total, link)
}

/// [`json_response`] of a JSON text already written.
fn text_response(status: StatusCode, text: String, total: Option<i64>, link: Option<String>) -> Response {
    let mut response = (status, text).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(total) = total {
        headers.insert("x-total-count", HeaderValue::from(total));
    }
    if let Some(link) = link
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        headers.insert(header::LINK, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(uri: &str) -> Ctx {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.org:5000"));
        Ctx::new(Method::GET, &uri.parse().unwrap(), &headers)
    }

    #[test]
    fn decoding_keeps_plus() {
        let c = ctx("/api/v4/nodes?orderby=+id&label=%22%C3%A9%22");
        assert_eq!(c.query, "orderby=+id&label=\"é\"");
        assert_eq!(c.url(), "http://example.org:5000/api/v4/nodes?orderby=+id&label=\"é\"");
        assert_eq!(c.url_root(), "http://example.org:5000/");
    }

    /// The two spellings of the envelope give the same text, headers and status.
    #[tokio::test]
    async fn answer_is_the_envelope_written_out() {
        use http_body_util::BodyExt;
        let data = serde_json::json!({"b": [1, 2.5, "é\"\n"], "a": {"z": null, "y": true}});
        for uri in
            ["/api/v4/nodes?orderby=+id&label=%22%C3%A9%22", "/api/v4/server", "/api/v4/x?", "/p%C3%A9/%F0%9F%98%80"]
        {
            let c = ctx(uri);
            for id in [None, Some(Value::Null), Some(Value::from(7)), Some(Value::from("ab-c"))] {
                let link = Some("<http://x/page/2>; rel=\"next\"".to_string());
                let written = c.answer("nodes", id.as_ref(), &data, Some(3), link.clone());
                let mapped =
                    json_response(StatusCode::OK, &c.envelope("nodes", id.clone(), data.clone()), Some(3), link);
                assert_eq!(written.status(), mapped.status());
                assert_eq!(written.headers(), mapped.headers(), "{uri}");
                let text = |r: Response| async { r.into_body().collect().await.unwrap().to_bytes() };
                assert_eq!(text(written).await, text(mapped).await, "{uri} {id:?}");
            }
        }
    }

    #[test]
    fn links_are_well_formed() {
        let c = ctx("/api/v4/nodes/page/2/?perpage=2&orderby=-id");
        assert_eq!(
            c.page_links(2, 7),
            "<http://example.org:5000/api/v4/nodes/page/1?perpage=2&orderby=-id>; rel=\"prev\", \
             <http://example.org:5000/api/v4/nodes/page/3?perpage=2&orderby=-id>; rel=\"next\", \
             <http://example.org:5000/api/v4/nodes/page/1?perpage=2&orderby=-id>; rel=\"first\", \
             <http://example.org:5000/api/v4/nodes/page/7?perpage=2&orderby=-id>; rel=\"last\""
        );
        let c = ctx("/api/v4/users/page");
        assert_eq!(
            c.page_links(1, 1),
            "<http://example.org:5000/api/v4/users/page/1>; rel=\"first\", <http://example.org:5000/api/v4/users/page/1>; rel=\"last\""
        );
    }

    fn origin(version: Version, uri: &str, hosts: &[&str]) -> Result<String, String> {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        request_origin(version, &uri.parse().unwrap(), &headers, Some("127.0.0.1:5000".parse().unwrap()))
    }

    #[test]
    fn hosts() {
        for good in ["example.org", "example.org:5000", "127.0.0.1", "[::1]", "[::1]:80", "a_b-c.d~e", "h:65535"] {
            assert!(is_valid_authority(good), "{good}");
        }
        for bad in [
            "",
            ":80",
            "a\"b<script>",
            "a b",
            "h:",
            "h:65536",
            "h:123456",
            "h:x",
            "[::1",
            "[zz]",
            "[::1]x",
            "a:1:2",
            "user@h",
            "h/x",
            "%41",
            "[::1]:",
        ] {
            assert!(!is_valid_authority(bad), "{bad}");
        }
        let v11 = Version::HTTP_11;
        assert_eq!(origin(v11, "/x", &["example.org:5000"]).unwrap(), "http://example.org:5000");
        assert!(origin(v11, "/x", &[]).is_err());
        assert!(origin(v11, "/x", &["a", "a"]).is_err());
        assert!(origin(v11, "/x", &["a\"b<script>"]).is_err());
        assert_eq!(origin(Version::HTTP_10, "/x", &[]).unwrap(), "http://127.0.0.1:5000");
        // The absolute-form target's authority wins over Host (RFC 9112 3.2.2).
        assert_eq!(origin(v11, "http://example.org/api/v4/", &["other:1"]).unwrap(), "http://example.org");
        assert!(origin(v11, "http://example.org/api/v4/", &[]).is_err());
        assert!(origin(v11, "http://u@example.org/", &["x"]).is_err());
        assert!(origin(v11, "ftp://example.org/", &["x"]).is_err());
        // In-process contexts never echo an invalid Host.
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("a\"b<script>"));
        let c = Ctx::new(Method::GET, &"/api/v4/nodes".parse().unwrap(), &headers);
        assert_eq!(c.url_root(), "http://localhost/");
    }

    #[test]
    fn public_urls() {
        assert_eq!(public_origin("https://example.org/aiida/").unwrap(), Origin("https://example.org/aiida".into()));
        assert_eq!(public_origin("http://[::1]:8080").unwrap(), Origin("http://[::1]:8080".into()));
        for bad in
            ["example.org", "ftp://example.org/", "https://example.org/?a=1", "https://u@example.org/", "https://a/#x"]
        {
            assert!(public_origin(bad).is_err(), "{bad}");
        }
        let c = Ctx::with_origin(
            Method::GET,
            &"/api/v4/nodes/page/2?perpage=1".parse().unwrap(),
            public_origin("https://example.org/aiida").unwrap(),
        );
        assert_eq!(c.url(), "https://example.org/aiida/api/v4/nodes/page/2?perpage=1");
        assert_eq!(c.url_root(), "https://example.org/aiida/");
        assert!(c.page_links(2, 3).starts_with("<https://example.org/aiida/api/v4/nodes/page/1?perpage=1>"));
    }
}
