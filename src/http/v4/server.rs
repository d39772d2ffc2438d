//! `/`, `/server` and `/server/endpoints`.

use axum::response::Response;
use serde_json::json;

use super::routes::available_endpoints;
use crate::http::request::Ctx;

/// The REST API version this server speaks.
pub const API_VERSION: (&str, &str, &str) = ("4", "1", "0");
/// The aiida-core release whose REST API answers this server reproduces; clients read it to
/// decide which features exist.
pub const AIIDA_VERSION: &str = "2.9.4";

pub fn info(ctx: &Ctx, prefix: &str) -> Response {
    let data = json!({
        "API_major_version": API_VERSION.0,
        "API_minor_version": API_VERSION.1,
        "API_revision_version": API_VERSION.2,
        "API_prefix": prefix,
        "AiiDA_version": AIIDA_VERSION,
    });
    ctx.answer("Info", None, &data, Some(1), None)
}

pub fn endpoints(ctx: &Ctx, prefix: &str, posting: bool) -> Response {
    let data = json!({ "available_endpoints": available_endpoints(prefix, posting) });
    ctx.answer("Info", None, &data, Some(1), None)
}
