//! Response compression negotiated with `Accept-Encoding` (gzip or brotli), by tower-http's
//! `CompressionLayer`.
//!
//! Compressed: JSON and text answers (`application/json`, `text/*`) of at least
//! [`MIN_SIZE`] bytes. Not compressed: smaller answers (the headers would outweigh the
//! saving), and repository file downloads (`application/octet-stream`): they are streamed with
//! their exact `Content-Length`, are often already compressed (archives, images, HDF5), and
//! whether one is text cannot be known without reading it first.
//!
//! A client that does not ask for an encoding gets the answer exactly as before, with its
//! `Content-Length`; a compressed answer has `Content-Encoding`, no `Content-Length` (it is
//! streamed as it is compressed) and `Vary: Accept-Encoding`, so caches keep the variants apart.
//! Brotli runs at quality 4 and gzip at level 6, the usual on-the-fly settings.
//!
//! Compressing the explorer's landing answer (1.2 MB of JSON) takes longer than serving it
//! from the querybuilder's answer cache, so answers of [`MEMO_MIN_SIZE`] or more are
//! compressed by [`memo`] instead, which keeps the compressed text (brotli whenever the
//! client accepts it, else gzip) and sends it with its exact `Content-Length`.

use std::io::Write;
use std::sync::Mutex;

use axum::body::{Body, HttpBody};
use axum::http::header::{self, HeaderMap};
use axum::http::{Extensions, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};

/// The smallest answer worth compressing, in bytes.
pub const MIN_SIZE: u64 = 1024;

/// Whether an answer of this type may be compressed: JSON and text.
fn compressible(_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json") || essence.starts_with("text/")
}

/// Which answers are compressed: JSON and text answers of at least [`MIN_SIZE`] bytes.
fn worth_compressing() -> impl Predicate {
    SizeAbove::new(MIN_SIZE).and(compressible as fn(StatusCode, Version, &HeaderMap, &Extensions) -> bool)
}

/// The layer: gzip and brotli for the answers [`worth_compressing`].
pub fn layer() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().gzip(true).br(true).compress_when(worth_compressing())
}

/// Whether a request can get a compressed answer at all. One that names no encoding cannot, and
/// `edge` sends it past the layer: the layer would wrap every answer in its body type (several
/// KiB, moved into a box per answer) only to pass the bytes through.
pub fn negotiates(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ACCEPT_ENCODING)
}

/// For an answer that went past the layer: what the layer says of the uncompressed variant of
/// an answer it would have compressed for a client asking for it, `Vary: Accept-Encoding`, so
/// that a cache keeps the variants apart.
pub fn mark_variant(response: &mut Response) {
    let headers = response.headers();
    if headers.contains_key(header::CONTENT_ENCODING)
        || headers.contains_key(header::CONTENT_RANGE)
        || !worth_compressing().should_compress(response)
    {
        return;
    }
    vary_on_encoding(response.headers_mut());
}

/// Adds `Vary: Accept-Encoding` unless the answer already says so.
fn vary_on_encoding(headers: &mut HeaderMap) {
    let varies = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| v.split(',').any(|name| name.trim().eq_ignore_ascii_case("accept-encoding")))
    });
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// Large answers are compressed once: [`memo`] keeps their compressed text.
pub const MEMO_MIN_SIZE: u64 = 256 << 10;
/// The most memory the kept compressed texts take.
pub const MEMO_BYTES: usize = 16 << 20;

/// Below [`layer`] (called by `edge::Inner`): a JSON or text answer of at least
/// [`MEMO_MIN_SIZE`] bytes is compressed here, with the client's [`preferred`] encoding, and
/// its compressed text kept (by a hash of the answer and the encoding) so that the same answer
/// asked again (the explorer's landing query, kept by `v4::querybuilder`) is not compressed
/// again. The layer above leaves answers that already have a `Content-Encoding` alone; these
/// have an exact `Content-Length`.
pub async fn memo(encoding: Encoding, response: Response) -> Response {
    let size = response.body().size_hint().exact();
    if response.status() != StatusCode::OK
        || response.headers().contains_key(header::CONTENT_ENCODING)
        || response.headers().contains_key(header::CONTENT_RANGE)
        || !size.is_some_and(|size| (MEMO_MIN_SIZE..=MEMO_BYTES as u64 / 4).contains(&size))
        || !compressible(StatusCode::OK, Version::HTTP_11, response.headers(), response.extensions())
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(text) = axum::body::to_bytes(body, MEMO_BYTES).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let key = (crate::http::etag::digest(&text), encoding);
    let compressed = match COMPRESSED.get(&key) {
        Some(compressed) => compressed,
        None => {
            let Ok(compressed) = tokio::task::spawn_blocking(move || encoding.compress(&text)).await else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            COMPRESSED.put(key, compressed.clone());
            compressed
        }
    };
    let headers = &mut parts.headers;
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding.name()));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(compressed.len()));
    headers.remove(header::ACCEPT_RANGES);
    vary_on_encoding(headers);
    Response::from_parts(parts, Body::from(compressed))
}

/// An encoding [`memo`] compresses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// At the settings of the layer: brotli quality 4, gzip level 6.
    fn compress(self, text: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(text.len() / 8);
        match self {
            Encoding::Brotli => {
                let params = brotli::enc::BrotliEncoderParams { quality: 4, ..Default::default() };
                let _ = brotli::BrotliCompress(&mut &text[..], &mut out, &params);
            }
            Encoding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(6));
                let _ = encoder.write_all(text);
                let _ = encoder.finish();
            }
        }
        Bytes::from(out)
    }
}

/// The encoding [`memo`] answers with: brotli if `Accept-Encoding` accepts it, else gzip,
/// else none (the layer then decides). `*` accepts both.
pub fn preferred(headers: &HeaderMap) -> Option<Encoding> {
    let mut accepted = (false, false);
    for value in headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()) {
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
                .next()
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            match name.as_str() {
                "br" => accepted.0 = true,
                "gzip" | "x-gzip" => accepted.1 = true,
                "*" => accepted = (true, true),
                _ => {}
            }
        }
    }
    match accepted {
        (true, _) => Some(Encoding::Brotli),
        (false, true) => Some(Encoding::Gzip),
        _ => None,
    }
}

static COMPRESSED: Memo = Memo { entries: Mutex::new(Vec::new()) };

/// The compressed texts, at most [`MEMO_BYTES`], the least recently used dropped first.
struct Memo {
    entries: Mutex<Vec<(u64, MemoKey, Bytes)>>,
}

/// The digest of an answer and the encoding of its compressed text.
type MemoKey = (u64, Encoding);

impl Memo {
    fn get(&self, key: &MemoKey) -> Option<Bytes> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = entries.iter().map(|e| e.0).max().unwrap_or(0) + 1;
        let entry = entries.iter_mut().find(|e| e.1 == *key)?;
        entry.0 = now;
        Some(entry.2.clone())
    }

    fn put(&self, key: MemoKey, compressed: Bytes) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = entries.iter().map(|e| e.0).max().unwrap_or(0) + 1;
        entries.retain(|e| e.1 != key);
        while !entries.is_empty() && entries.iter().map(|e| e.2.len()).sum::<usize>() + compressed.len() > MEMO_BYTES {
            let oldest = entries.iter().enumerate().min_by_key(|(_, e)| e.0).map(|(i, _)| i).expect("not empty");
            entries.swap_remove(oldest);
        }
        entries.push((now, key, compressed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn negotiation() {
        assert_eq!(preferred(&HeaderMap::new()), None);
        assert_eq!(preferred(&accept("gzip, deflate, br, zstd")), Some(Encoding::Brotli));
        assert_eq!(preferred(&accept("gzip;q=1.0, br;q=0")), Some(Encoding::Gzip));
        assert_eq!(preferred(&accept("identity")), None);
        assert_eq!(preferred(&accept("*")), Some(Encoding::Brotli));
        assert_eq!(preferred(&accept("deflate")), None);
    }

    #[test]
    fn compressed_texts_decompress() {
        use std::io::Read;
        let text = "{\"a\":1}".repeat(1000);
        let gz = Encoding::Gzip.compress(text.as_bytes());
        let mut back = String::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut back).unwrap();
        assert_eq!(back, text);
        let br = Encoding::Brotli.compress(text.as_bytes());
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut back).unwrap();
        assert_eq!(back, text.as_bytes());
    }
}
