//! Routing on the percent-decoded path, as Werkzeug routes: `/api/v4/n%6Fdes` is `/nodes`,
//! `/api/v%34/nodes` is under `/api/v4`, and `%2F` separates segments.
//!
//! axum matches routes and strips nest prefixes on the request URI's path as received. The
//! [`decode`] middleware runs before routing and rewrites that path to its canonical spelling:
//! decoded, then re-encoded only where a URI path cannot hold the character raw (`%`, `?`, `#`,
//! spaces, controls, non-ASCII, ...). Every router below it sees the segments Werkzeug sees, and
//! decoding the canonical path once more gives back the decoded path, so a handler that decodes
//! what it receives reads the same text either way. The URI as received is kept in the request's
//! extensions as [`ReceivedUri`]: answers echo it (`path`, `url`) and build links from it.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::Uri;
use axum::http::uri::PathAndQuery;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::request::unquote;

/// The request URI as the client sent it (after the listener's escapes), before
/// [`decode`] canonicalised it and before any nest prefix was stripped.
#[derive(Debug, Clone)]
pub struct ReceivedUri(pub Uri);

/// The prefixes of the mounted APIs. A path is under one when its decoded text starts with it,
/// the way Flask-Cors matches its resource pattern (`<prefix>/*`) in the reference: `/api/v4x`
/// is covered (though no API routes it), `//api/v4` is not. CORS and the body limit apply to
/// the covered paths.
#[derive(Debug, Clone)]
pub struct Prefixes(pub Arc<[String]>);

impl Prefixes {
    pub fn cover(&self, decoded_path: &str) -> bool {
        self.0.iter().any(|prefix| decoded_path.starts_with(prefix.as_str()))
    }
}

/// What stays encoded in a canonical path: everything but the unreserved characters, `/`,
/// and the sub-delimiters, `:` and `@` that RFC 3986 allows in a path segment.
const ENCODED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The canonical spelling of a received path: decoded (bad UTF-8 replaced, as Python's
/// `unquote` does), then re-encoded where needed. Decoding it gives [`unquote`] of `path`.
pub fn canonical(path: &str) -> String {
    utf8_percent_encode(&unquote(path), ENCODED).to_string()
}

/// Keeps the received URI as [`ReceivedUri`] and makes the request's path canonical, so that
/// routing sees the decoded segments. Called by `edge::Outer` before anything routes.
pub fn decode(request: &mut Request) {
    let received = request.uri().clone();
    if let Some(uri) = canonical_uri(&received) {
        *request.uri_mut() = uri;
    }
    request.extensions_mut().insert(ReceivedUri(received));
}

/// Whether `path` is canonical as it is: nothing to decode, nothing to encode. Most paths are,
/// and this answers without allocating. (The bytes refused are those of [`ENCODED`].)
fn is_canonical(path: &str) -> bool {
    path.bytes().all(|b| b.is_ascii_graphic() && !b"\"#%<>?[\\]^`{|}".contains(&b))
}

/// `uri` with its path canonical and its query untouched, or `None` when it already is.
fn canonical_uri(uri: &Uri) -> Option<Uri> {
    if is_canonical(uri.path()) {
        return None;
    }
    let path = canonical(uri.path());
    if path == uri.path() {
        return None;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths() {
        assert_eq!(canonical("/api/v4/nodes"), "/api/v4/nodes");
        assert_eq!(canonical("/api/v%34/n%6Fdes/"), "/api/v4/nodes/");
        assert_eq!(canonical("/api/v4%2Fnodes"), "/api/v4/nodes");
        assert_eq!(canonical("/a%3Fb%23c%25d%20e"), "/a%3Fb%23c%25d%20e");
        assert_eq!(canonical("/%C3%A9"), "/%C3%A9");
        assert_eq!(canonical("/%FF"), "/%EF%BF%BD");
        assert_eq!(canonical("/%ZZ%"), "/%25ZZ%25");
        assert_eq!(canonical("/a+b;c=d:e@f!$&'()*,~"), "/a+b;c=d:e@f!$&'()*,~");
        for path in ["/a%3Fb", "/%FF%FE", "/%25", "/%", "/%ZZ", "/%00", "/x%2e%2e", "/%C3%A9%20"] {
            assert_eq!(unquote(&canonical(path)), unquote(path), "{path}");
            assert_eq!(canonical(&canonical(path)), canonical(path), "{path}");
        }
    }

    #[test]
    fn query_is_kept() {
        let uri: Uri = "/api/v4/n%6Fdes?label=%22a%26b%22&id%3E3".parse().unwrap();
        assert_eq!(canonical_uri(&uri).unwrap().to_string(), "/api/v4/nodes?label=%22a%26b%22&id%3E3");
        assert!(canonical_uri(&"/api/v4/nodes?x=%41".parse().unwrap()).is_none());
        assert!(is_canonical("/api/v4/nodes/3/contents/attributes"));
        for path in ["/api/v4/nodes", "/a+b;c=d:e@f!$&'()*,~", "/a%41", "/a%25", "/x{y}", "/a|b", "/a^b", "/a[0]", "/é"]
        {
            // A path found canonical is one that canonicalising leaves alone.
            assert!(!is_canonical(path) || canonical(path) == path, "{path}");
        }
    }
}
