//! `POST /querybuilder`: AiiDA's QueryBuilder dictionary (`QueryBuilder.as_dict()`) run
//! against the database and answered in the reference's shape.
//!
//! - `parse`: the dictionary → a checked query (400 for anything malformed or unknown);
//! - `sql`: the query → one SQL statement per dialect, every value bound;
//! - `respond`: rows → `{tag: [row, ...]}`.
//!
//! Bounds: the body size is limited by the HTTP layer; the size of a query (conditions, JSON
//! values, projections, order items, path items, walks, patterns) by `parse` (see the limits
//! at its top); the rows of one answer by `max_rows` (a query without limit, or with a larger
//! one, gets the first `max_rows` rows, while `X-Total-Count` still reports what the query
//! itself selects); every statement by the database pool's time limit; and the QueryBuilder
//! statements running at once by [`MAX_RUNNING`], so that they leave the pool's other
//! connections to the rest of the API.

pub mod ojson;
pub mod parse;
pub mod respond;
pub mod sql;
pub mod tables;

use std::sync::LazyLock;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::api::{Ctx, json_response};
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use tokio::sync::Semaphore;

/// Most QueryBuilder queries that use the database at once, in the whole process; others wait.
pub const MAX_RUNNING: usize = 4;
/// How long a query waits for its turn before it is answered with a 503.
const MAX_WAIT: Duration = Duration::from_secs(30);
static RUNNING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(MAX_RUNNING));

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

/// `POST /querybuilder` with `body`.
pub async fn post(db: &Db, ctx: &Ctx, body: &[u8], max_rows: i64) -> ApiResult<Response> {
    let qb = parse::parse_body(body)?;
    let requested = qb.limit.filter(|l| *l >= 0);
    let cap = requested.unwrap_or(i64::MAX).min(max_rows.max(0));
    let rows_query = sql::rows_query(&qb, db.dialect(), cap)?;
    let permit = match tokio::time::timeout(MAX_WAIT, RUNNING.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => return Err(ApiError::Internal("the QueryBuilder semaphore is closed".into())),
        Err(_) => {
            return Err(ApiError::Unavailable(format!(
                "the server is busy: {MAX_RUNNING} QueryBuilder queries kept running for {} s; try again later",
                MAX_WAIT.as_secs()
            )));
        }
    };
    let rows = db.fetch_all(rows_query).await?;
    // The count honours the query's own limit and offset. Only when the server's bound cut
    // the rows short is a second statement needed to know it.
    let truncated = rows.len() as i64 >= cap && requested.is_none_or(|l| l > cap);
    let count = if truncated { db.fetch_count(sql::count_query(&qb, db.dialect())?).await? } else { rows.len() as i64 };
    drop(permit);
    let data =
        if count == 0 || rows.is_empty() { Value::Object(Map::new()) } else { respond::data(&qb, rows, db.dialect()) };
    let body = envelope(ctx, data);
    Ok(json_response(StatusCode::OK, &body, Some(count), None))
}

/// The envelope without `id`; the reference echoes this endpoint's query string undecoded.
fn envelope(ctx: &Ctx, data: Value) -> Value {
    let mut body = ctx.envelope("QueryBuilder", None, data);
    if ctx.method == axum::http::Method::POST {
        body["query_string"] = Value::String(ctx.raw_query.clone().unwrap_or_default());
    }
    body
}
