//! Validators and caching rules of GET answers: `ETag`, `If-None-Match` → 304, and
//! `Cache-Control`.
//!
//! The `ETag` of a JSON or text answer (status 200, to GET or HEAD) is a hash of its body: it
//! is right for every storage, whatever changes it, and needs nothing from the storage. It is
//! weak (`W/"…"`) because the compression layer above may send the same answer gzip- or
//! brotli-encoded, which are other bytes but the same content. A request whose
//! `If-None-Match` lists it (or `*`) gets 304 with the same headers and no body. POST is
//! never answered 304, and repository file downloads (streamed) get no `ETag`.
//!
//! `Cache-Control`: answers of a storage that cannot change (an archive, a database opened
//! immutable) may be kept by any cache ([`IMMUTABLE`]); the others may be stored but must be
//! revalidated on every use (`no-cache`), which the `ETag` makes cheap.
//!
//! The cost is one hash of the body (SipHash, about 1 GB/s: 1 ms for the largest answers); the
//! handler still runs, so a 304 saves the transfer, not the query.

use std::hash::{DefaultHasher, Hasher};
use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::OnceCell;

use crate::storage::Storage;
use crate::storage::db::Db;

/// `Cache-Control` of the answers of a storage that cannot change.
pub const IMMUTABLE: &str = "public, max-age=3600";
/// `Cache-Control` of the answers of a storage that may change.
pub const MUTABLE: &str = "no-cache";

/// Bodies above this size are not hashed (they would be held whole in memory to do so).
const MAX_HASHED: u64 = 64 << 20;

/// The storages served under each mounted prefix, to know which answers may be cached.
#[derive(Clone, Default)]
pub struct Policy(Arc<[Mount]>);

struct Mount {
    prefix: String,
    storage: Arc<Storage>,
    immutable: OnceCell<bool>,
}

impl Policy {
    pub fn new(mounts: impl IntoIterator<Item = (String, Arc<Storage>)>) -> Self {
        let mounts: Vec<Mount> =
            mounts.into_iter().map(|(prefix, storage)| Mount { prefix, storage, immutable: OnceCell::new() }).collect();
        Self(mounts.into())
    }

    /// The mount whose storage answers `path` (the longest prefix it is under), if any.
    pub fn mount_of(&self, path: &str) -> Option<usize> {
        let under =
            |prefix: &str| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        (0..self.0.len()).filter(|&i| under(&self.0[i].prefix)).max_by_key(|&i| self.0[i].prefix.len())
    }

    /// Whether the storage of mount `index` ([`Policy::mount_of`]) cannot change. Paths under
    /// no known prefix, and PostgreSQL databases, may change.
    async fn immutable(&self, index: Option<usize>) -> bool {
        let Some(mount) = index.and_then(|i| self.0.get(i)) else {
            return false;
        };
        if let Some(known) = mount.immutable.get() {
            return *known;
        }
        // Asked once per mount: boxed, so that the future of every GET does not carry the
        // database's (3 KiB).
        *Box::pin(mount.immutable.get_or_init(|| async {
            match &mount.storage.db {
                Db::Sqlite(_) => mount.storage.db.fingerprint().await.as_deref() == Some("immutable"),
                Db::Postgres(_) => false,
            }
        }))
        .await
    }
}

/// The tags a GET request's `If-None-Match` lists (none for other methods: POST is never
/// answered 304).
pub fn wanted(request: &Request) -> Option<Vec<HeaderValue>> {
    (request.method() == Method::GET)
        .then(|| request.headers().get_all(header::IF_NONE_MATCH).iter().cloned().collect())
}

/// The answer to a GET with its `ETag` and `Cache-Control`, or the 304 when `wanted` lists its
/// tag. `mount` is [`Policy::mount_of`] the request's path. Runs below the compression layer:
/// it sees answers as the handlers wrote them.
pub async fn finish(policy: &Policy, mount: Option<usize>, wanted: &[HeaderValue], response: Response) -> Response {
    if response.status() != StatusCode::OK || !is_text(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if body.size_hint().exact().is_none_or(|len| len > MAX_HASHED) {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_HASHED as usize).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR).into_response();
    };
    let tag = tag_of(&bytes);
    parts.headers.insert(header::ETAG, tag.clone());
    let control = if policy.immutable(mount).await { IMMUTABLE } else { MUTABLE };
    parts.headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static(control));
    if matches(wanted, &tag) {
        parts.status = StatusCode::NOT_MODIFIED;
        for name in [header::CONTENT_LENGTH, header::CONTENT_TYPE] {
            parts.headers.remove(name);
        }
        // The 200 would have varied with the encoding (the compression layer above only says
        // so for the answers it compresses).
        if bytes.len() as u64 >= crate::http::compress::MIN_SIZE {
            parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        // A body of unknown length, so that axum does not state `Content-Length: 0`, which a
        // 304 must not (RFC 9110 8.6). (HEAD still gets it: `head::strip_body` strips the body.)
        return Response::from_parts(parts, Body::new(NoBody));
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The body of a 304: none, of a length it does not state.
struct NoBody;

impl HttpBody for NoBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(None)
    }
}

fn is_text(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.starts_with("text/")
}

/// A 64-bit hash of `body` and its length (SipHash).
pub fn digest(body: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(body);
    hasher.write_usize(body.len());
    hasher.finish()
}

/// `W/"<16 hex digits>"`: the [`digest`] of the body.
fn tag_of(body: &[u8]) -> HeaderValue {
    HeaderValue::from_str(&format!("W/\"{:016x}\"", digest(body))).expect("hex is a valid header")
}

/// `If-None-Match` by weak comparison (RFC 9110 13.1.2): `*`, or one of the listed tags
/// with or without `W/`.
fn matches(wanted: &[HeaderValue], tag: &HeaderValue) -> bool {
    let ours = tag.to_str().unwrap_or("").trim_start_matches("W/");
    wanted.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|candidate| {
        let candidate = candidate.trim();
        candidate == "*" || candidate.trim_start_matches("W/") == ours
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_comparison() {
        let tag = tag_of(b"{}\n");
        let bare = tag.to_str().unwrap().trim_start_matches("W/").to_string();
        let list = |s: &str| vec![HeaderValue::from_str(s).unwrap()];
        assert!(matches(&list(tag.to_str().unwrap()), &tag));
        assert!(matches(&list(&bare), &tag));
        assert!(matches(&list(&format!("\"other\", {bare}")), &tag));
        assert!(matches(&list("*"), &tag));
        assert!(!matches(&list("\"other\""), &tag));
        assert!(!matches(&[], &tag));
        assert_ne!(tag_of(b"a"), tag_of(b"b"));
    }
}
