//! `/<resource>/projectable_properties`: fixed descriptions of the fields of each resource,
//! kept as data so they match the reference answer for answer.

use std::sync::LazyLock;

use axum::response::Response;
use serde_json::Value;

use crate::http::error::{ApiError, ApiResult};

use super::routes::Resource;
use crate::http::request::Ctx;

static PROPERTIES: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(include_str!("projectable_properties.json")).expect("valid embedded JSON"));

pub fn projectable_properties(ctx: &Ctx, resource: Resource) -> ApiResult<Response> {
    // The reference ignores the query string of /processes only.
    if resource != Resource::Processes && !ctx.query.is_empty() {
        return Err(ApiError::bad_request("projectable_properties requests do not allow specifying a query string"));
    }
    let data = PROPERTIES
        .get(resource.name())
        .cloned()
        .ok_or_else(|| ApiError::Internal(format!("no properties for {}", resource.name())))?;
    Ok(ctx.answer(resource.name(), Some(&Value::Null), &data, Some(1), None))
}
