//! Request bodies: read whole, up to a limit, before routing. Only `POST /querybuilder` takes
//! a body; the limit keeps a client from filling the memory.

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;

use super::request::json_response;

/// Largest request body read.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The request with its body read into memory, or the 413 answer when it is larger than
/// [`MAX_BODY_BYTES`] or cannot be read. `edge::Inner` calls it for a POST under a mounted
/// prefix, before the route or the method is checked; other requests' bodies are not read.
pub async fn read_whole(request: Request) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Err(_) => Err(too_large()),
    }
}

/// The 413 answer.
pub fn too_large() -> Response {
    let message = format!("The request body could not be read or is larger than {} MiB.", MAX_BODY_BYTES >> 20);
    json_response(StatusCode::PAYLOAD_TOO_LARGE, &serde_json::json!({ "message": message }), None, None)
}
