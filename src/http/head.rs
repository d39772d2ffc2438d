//! HEAD, as Werkzeug answers it: the request is handled as a GET, and the answer keeps the
//! GET answer's status and headers, its length included, without the body. `edge::Outer`
//! turns the request into a GET and strips the answer with [`strip_body`].

use axum::body::{Body, HttpBody};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// The headers of `response`, with the length of the body that is not sent when it is known.
/// A 304 or 204 has no body to speak of, so it gets no length (RFC 9110 8.6).
pub fn strip_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    if matches!(parts.status, StatusCode::NOT_MODIFIED | StatusCode::NO_CONTENT) {
        // Their body is already empty, and of no stated size: an empty body of known size
        // would be given `Content-Length: 0` on the way out.
        return Response::from_parts(parts, body);
    }
    if !parts.headers.contains_key(header::CONTENT_LENGTH)
        && let Some(len) = body.size_hint().exact()
    {
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, Body::empty())
}
