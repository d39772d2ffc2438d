//! What a handler knows about the request it answers, and the JSON envelope every answer wears.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::path::ReceivedUri;

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
    /// `scheme://host`
    pub origin: String,
    /// Path as received (still percent-encoded), for building links.
    pub raw_path: String,
}

/// Python's `urllib.parse.unquote`: decodes `%XX`, leaves `+` alone, replaces bad UTF-8.
pub fn unquote(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

impl Ctx {
    pub fn new(method: Method, uri: &Uri, headers: &HeaderMap) -> Self {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let raw_query = uri.query().map(str::to_string);
        Self {
            method,
            path: unquote(uri.path()),
            query: raw_query.as_deref().map(unquote).unwrap_or_default(),
            raw_query,
            origin: format!("http://{host}"),
            raw_path: uri.path().to_string(),
        }
    }

    pub fn url(&self) -> String {
        match &self.raw_query {
            Some(q) if !q.is_empty() => format!("{}{}?{}", self.origin, self.path, self.query),
            _ => format!("{}{}", self.origin, self.path),
        }
    }

    pub fn url_root(&self) -> String {
        format!("{}/", self.origin)
    }

    /// The envelope around `data`; `id` is omitted when `None` (server info, querybuilder).
    pub fn envelope(&self, resource_type: &str, id: Option<Value>, data: Value) -> Value {
        let mut map = Map::new();
        map.insert("data".into(), data);
        if let Some(id) = id {
            map.insert("id".into(), id);
        }
        map.insert("method".into(), Value::String(self.method.as_str().to_string()));
        map.insert("path".into(), Value::String(self.path.clone()));
        map.insert("query_string".into(), Value::String(self.query.clone()));
        map.insert("resource_type".into(), Value::String(resource_type.to_string()));
        map.insert("url".into(), Value::String(self.url()));
        map.insert("url_root".into(), Value::String(self.url_root()));
        Value::Object(map)
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
        let uri = parts.extensions.get::<ReceivedUri>().map_or(&parts.uri, |received| &received.0);
        Ok(Ctx::new(parts.method.clone(), uri, &parts.headers))
    }
}

/// A JSON answer with the reference's headers (the CORS layer adds
/// `Access-Control-Expose-Headers` to those with a total).
pub fn json_response(status: StatusCode, body: &Value, total: Option<i64>, link: Option<String>) -> Response {
    let mut response = (status, crate::model::pyjson::to_string(body)).into_response();
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
}
