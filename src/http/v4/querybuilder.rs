//! `POST /querybuilder`: a QueryBuilder dictionary run by the query layer and answered in the
//! reference's shape.

use std::sync::Mutex;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::qb_respond as respond;
use crate::http::error::ApiResult;
use crate::http::{Ctx, json_response};
use crate::query::querybuilder::{self, parse};
use crate::storage::db::Db;

pub const GET_MESSAGE: &str = "Method Not Allowed. Use HTTP POST requests to use the AiiDA QueryBuilder. \
POST JSON data, which MUST be a valid QueryBuilder.as_dict() dictionary as a JSON object. \
See the documentation at https://aiida.readthedocs.io/projects/aiida-core/en/latest/topics/database.html\
#converting-the-querybuilder-to-from-a-dictionary for more information.";

/// `GET /querybuilder`: how to use it, with status 405, in the reference's envelope. Like every
/// 4xx of this server it also carries a top-level `message`.
pub fn method_not_allowed(ctx: &Ctx) -> Response {
    let mut body = envelope(ctx, json!({ "message": GET_MESSAGE }));
    body["message"] = Value::String(GET_MESSAGE.into());
    json_response(StatusCode::METHOD_NOT_ALLOWED, &body, Some(1), None)
}

/// `POST /querybuilder` with `body`. The answer is kept in [`ANSWERS`] while the storage is
/// unchanged (by its fingerprint), so a repeated query (the explorer's landing page) is not
/// run again.
pub async fn post(db: &Db, ctx: &Ctx, body: &[u8], max_rows: i64) -> ApiResult<Response> {
    let qb = parse::parse_body(body)?;
    // Read before the query runs: an answer is never stored under a newer fingerprint than
    // the data it saw.
    let key = db.fingerprint().await.map(|fingerprint| answer_key(db, &fingerprint, ctx, body, max_rows));
    if let Some(key) = &key
        && let Some((text, count)) = ANSWERS.get(key)
    {
        return Ok(answer(text, count));
    }
    let (rows, count) = querybuilder::run(db, &qb, max_rows).await?;
    let mut text = String::with_capacity(256 + rows.len() * 256);
    text.push_str("{\"data\":");
    if count == 0 || rows.is_empty() {
        text.push_str("{}");
    } else {
        respond::write_data(&mut text, &qb, rows, db.dialect());
    }
    // The rest of the envelope: "data" is its first key, so its text follows the data's.
    let rest = crate::model::pyjson::to_string(&envelope(ctx, Value::Null));
    text.push_str(rest.strip_prefix("{\"data\":null").expect("data is the first key of the envelope"));
    let text = Bytes::from(text);
    if let Some(key) = key {
        ANSWERS.put(key, text.clone(), count);
    }
    Ok(answer(text, count))
}

/// What an answer depends on: the database and its state, what the envelope echoes, the
/// row limit and the query.
fn answer_key(db: &Db, fingerprint: &str, ctx: &Ctx, body: &[u8], max_rows: i64) -> Vec<u8> {
    let database = match db {
        Db::Sqlite(pool) => pool.path().display().to_string(),
        Db::Postgres(pool) => pool.target().to_string(),
    };
    let mut key = Vec::with_capacity(body.len() + 256);
    for part in [
        database.as_bytes(),
        fingerprint.as_bytes(),
        ctx.origin.as_bytes(),
        ctx.raw_path.as_bytes(),
        ctx.raw_query.as_deref().unwrap_or("\0").as_bytes(),
        max_rows.to_string().as_bytes(),
    ] {
        key.extend_from_slice(&(part.len() as u64).to_le_bytes());
        key.extend_from_slice(part);
    }
    key.extend_from_slice(body);
    key
}

fn answer(text: Bytes, count: i64) -> Response {
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("x-total-count", HeaderValue::from(count));
    response
}

/// The answers kept, at most [`CACHE_BYTES`] in all (keys included), the least recently used
/// dropped first; an answer of more than a quarter of that is not kept.
static ANSWERS: AnswerCache = AnswerCache::new();

/// 32 MiB: about 25 answers of 5000 rows of the landing query (1.2 MB each).
pub const CACHE_BYTES: usize = 32 << 20;

struct AnswerCache {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    key: Vec<u8>,
    text: Bytes,
    count: i64,
    used: u64,
}

impl AnswerCache {
    const fn new() -> Self {
        Self { entries: Mutex::new(Vec::new()) }
    }

    fn get(&self, key: &[u8]) -> Option<(Bytes, i64)> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = entries.iter().map(|e| e.used).max().unwrap_or(0) + 1;
        let entry = entries.iter_mut().find(|e| e.key == key)?;
        entry.used = now;
        Some((entry.text.clone(), entry.count))
    }

    fn put(&self, key: Vec<u8>, text: Bytes, count: i64) {
        let size = |e: &Entry| e.key.len() + e.text.len();
        let entry = Entry { key, text, count, used: 0 };
        if size(&entry) > CACHE_BYTES / 4 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = entries.iter().map(|e| e.used).max().unwrap_or(0) + 1;
        entries.retain(|e| e.key != entry.key);
        while entries.iter().map(size).sum::<usize>() + size(&entry) > CACHE_BYTES {
            let oldest = entries.iter().enumerate().min_by_key(|(_, e)| e.used).map(|(i, _)| i);
            match oldest {
                Some(i) => entries.swap_remove(i),
                None => break,
            };
        }
        entries.push(Entry { used: now, ..entry });
    }
}

/// The envelope without `id`; the reference echoes this endpoint's query string undecoded.
fn envelope(ctx: &Ctx, data: Value) -> Value {
    let mut body = ctx.envelope("QueryBuilder", None, data);
    if ctx.method == axum::http::Method::POST {
        body["query_string"] = Value::String(ctx.raw_query.clone().unwrap_or_default());
    }
    body
}
