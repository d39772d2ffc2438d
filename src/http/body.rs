//! Request bodies: read whole, up to a limit, before routing. Only `POST /querybuilder` takes
//! a body; the limit keeps a client from filling the memory.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::path::Prefixes;
use super::request::{json_response, unquote};

/// Largest request body read.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Middleware (`from_fn_with_state`): the body of a POST under a mounted prefix is read into
/// memory (413 when it is larger than [`MAX_BODY_BYTES`] or cannot be read), before the
/// route or the method is checked. Other requests' bodies are not read here.
pub async fn limit(State(prefixes): State<Prefixes>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !prefixes.cover(&unquote(request.uri().path())) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(_) => too_large(),
    }
}

/// The 413 answer.
pub fn too_large() -> Response {
    let message = format!("The request body could not be read or is larger than {} MiB.", MAX_BODY_BYTES >> 20);
    json_response(StatusCode::PAYLOAD_TOO_LARGE, &serde_json::json!({ "message": message }), None, None)
}
