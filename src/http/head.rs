//! HEAD, as Werkzeug answers it: the request is handled as a GET, and the answer keeps the
//! GET answer's status and headers, its length included, without the body.

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// Middleware: handlers below it never see HEAD.
pub async fn head(mut request: Request, next: Next) -> Response {
    if request.method() != Method::HEAD {
        return next.run(request).await;
    }
    *request.method_mut() = Method::GET;
    strip_body(next.run(request).await)
}

/// The headers of `response`, with the length of the body that is not sent when it is known.
/// A 304 or 204 has no body to speak of, so it gets no length (RFC 9110 8.6).
fn strip_body(response: Response) -> Response {
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
