//! CORS as the reference's Flask-Cors configures it: any origin may read the APIs.
//!
//! For the paths under a mounted prefix (`path::Prefixes`: by text, as Flask-Cors matches,
//! `/api/v4x` included), `edge::Inner` answers preflights itself (everything is allowed)
//! and adds `Access-Control-Allow-Origin` (`*`, or the caller's origin echoed with
//! `Vary: Origin`) to every answer, and `Access-Control-Expose-Headers` to the answers that
//! carry `X-Total-Count` (and `Link`) so that browser clients can page.
//!
//! [`Origins`] restricts this to a list of origins (`--cors-origin`): the caller's origin is
//! echoed when it is on the list, and no `Access-Control-Allow-Origin` is sent otherwise.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

/// The origins that may read the APIs: any (`*`, the default, as aiida-core), or a list.
#[derive(Debug, Clone, Default)]
pub enum Origins {
    #[default]
    Any,
    List(Arc<[String]>),
}

impl Origins {
    /// From `--cors-origin` values: `*` anywhere means any; else the origins, trailing `/` aside.
    pub fn from_list<S: AsRef<str>>(items: &[S]) -> Self {
        let items: Vec<String> = items
            .iter()
            .flat_map(|item| item.as_ref().split(','))
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() || items.iter().any(|s| s == "*") { Origins::Any } else { Origins::List(items.into()) }
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            Origins::Any => true,
            Origins::List(list) => origin.to_str().is_ok_and(|o| list.iter().any(|allowed| allowed == o)),
        }
    }
}

/// The answer to a preflight request, which the routes never see; `None` for other requests.
pub fn preflight_answer(request: &Request) -> Option<Response> {
    is_preflight(request).then(|| preflight(request.headers()))
}

/// Adds the CORS headers to an answer under a mounted prefix: the allowed origin (for the
/// caller's `origin`) and, on paged answers, the headers browsers may read.
pub fn finish(origins: &Origins, origin: Option<HeaderValue>, response: &mut Response) {
    expose_paging(response.headers_mut());
    match (origins, origin) {
        (Origins::Any, origin) => allow_origin(response.headers_mut(), origin),
        (_, Some(origin)) if origins.allows(&origin) => allow_origin(response.headers_mut(), Some(origin)),
        // Not on the list: the browser keeps the answer from the page.
        _ => {
            response.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight: every method, and the headers the caller asks for.
fn preflight(request: &HeaderMap) -> Response {
    let mut response = StatusCode::OK.into_response();
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"),
    );
    if let Some(requested) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    response
}

/// `*`, or the caller's origin echoed (with `Vary: Origin`).
fn allow_origin(out: &mut HeaderMap, origin: Option<HeaderValue>) {
    match origin {
        Some(origin) => {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        None => {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
    }
}

/// Paged answers let browsers read `X-Total-Count` and, when there is one, `Link`.
fn expose_paging(out: &mut HeaderMap) {
    if !out.contains_key("x-total-count") || out.contains_key(header::ACCESS_CONTROL_EXPOSE_HEADERS) {
        return;
    }
    let expose = if out.contains_key(header::LINK) { "X-Total-Count,Link" } else { "X-Total-Count" };
    out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(expose));
}
