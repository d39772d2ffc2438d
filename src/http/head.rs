//! HEAD, as Werkzeug answers it: the request is handled as a GET, and the answer keeps the
//! GET answer's status and headers, its length included, without the body. Every answer
//! whose length is known states it ([`state_length`]). `edge::Outer`
//! turns the request into a GET and strips the answer with [`strip_body`].

use axum::body::{Body, HttpBody};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// The headers of `response`, with the length of the body that is not sent when it is known.
/// A 304 or 204 has no body to speak of, so it gets no length (RFC 9110 8.6).
pub fn strip_body(response: Response) -> Response {
    if has_no_body(response.status()) {
        return response;
    }
    let (parts, _) = state_length(response).into_parts();
    Response::from_parts(parts, Body::empty())
}

/// `response` with a `Content-Length` header when its body's length is known and none is
/// set. The server would write it anyway; stating it here gives every caller of the
/// application (the tests' `oneshot` too) the same headers.
pub fn state_length(mut response: Response) -> Response {
    if !has_no_body(response.status())
        && !response.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(len) = response.body().size_hint().exact()
    {
        response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    response
}

/// A 304 or 204 has no body to speak of, so it gets no length (RFC 9110 8.6): its body is
/// empty, and stating `Content-Length: 0` would misstate the length of the answer a 304 stands
/// for.
fn has_no_body(status: StatusCode) -> bool {
    matches!(status, StatusCode::NOT_MODIFIED | StatusCode::NO_CONTENT)
}
