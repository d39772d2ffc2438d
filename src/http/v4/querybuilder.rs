//! `POST /querybuilder`: a QueryBuilder dictionary run by the query layer and answered in the
//! reference's shape.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

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

/// `POST /querybuilder` with `body`.
pub async fn post(db: &Db, ctx: &Ctx, body: &[u8], max_rows: i64) -> ApiResult<Response> {
    let qb = parse::parse_body(body)?;
    let (rows, count) = querybuilder::run(db, &qb, max_rows).await?;
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
