//! `/nodes/statistics`, `/nodes/full_types`, `/nodes/full_types_count` and
//! `/nodes/download_formats`: (being written)

use axum::response::Response;

use crate::db::Db;
use crate::error::{ApiError, ApiResult};

use super::request::Ctx;

pub async fn statistics(_db: &Db, ctx: &Ctx) -> ApiResult<Response> {
    Err(ApiError::NotImplemented(format!("{} is not implemented yet", ctx.path)))
}

pub async fn full_types(_db: &Db, ctx: &Ctx, _counts: bool) -> ApiResult<Response> {
    Err(ApiError::NotImplemented(format!("{} is not implemented yet", ctx.path)))
}

pub async fn download_formats(ctx: &Ctx) -> ApiResult<Response> {
    Err(ApiError::NotImplemented(format!("{} is not implemented yet", ctx.path)))
}
