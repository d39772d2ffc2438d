//! The one error type of the HTTP layer. Every failure becomes a JSON `{"message": ...}` answer
//! with a status that tells the client whose fault it was.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::query::QueryError;
use crate::storage::db::DbError;
use crate::storage::repository::RepoError;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (query string, parameter values, ...).
    #[error("{0}")]
    BadRequest(String),
    /// The URL is well-formed but names something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No route matches; the answer lists the routes that exist, as the reference does.
    #[error("The requested URL is not found on the server.")]
    UnknownRoute(Vec<String>),
    #[error("The method is not allowed for the requested URL.")]
    MethodNotAllowed(&'static str),
    #[error("{0}")]
    NotImplemented(String),
    /// The storage cannot be reached right now (e.g. the database server is down).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }
    /// The 405 for what is not a GET (nor a HEAD, answered as a GET), for the operational
    /// endpoints that only report (`/metrics`, `/health`, `/ready`).
    pub fn unless_get(method: &axum::http::Method) -> Option<Self> {
        (*method != axum::http::Method::GET).then_some(Self::MethodNotAllowed("GET, HEAD"))
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) | Self::UnknownRoute(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            crate::storage::ratelog::server_error(status.as_u16(), &self);
        }
        let body = match &self {
            Self::UnknownRoute(endpoints) => {
                json!({"available_endpoints": endpoints, "message": self.to_string()})
            }
            // Internal details stay in the log; the client learns only that it was not its fault.
            Self::Internal(_) => json!({"message": "Internal server error; the details are in the server log."}),
            _ => json!({"message": self.to_string()}),
        };
        let mut response = (status, crate::model::pyjson::to_string(&body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Self::MethodNotAllowed(allow) = self {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(msg) => Self::Unavailable(msg),
            DbError::InvalidValue(msg) => Self::BadRequest(msg),
            DbError::Timeout => Self::Unavailable(
                "The query took longer than the server's time limit; narrow it down with filters or a smaller limit."
                    .into(),
            ),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::BadRequest(msg) => Self::BadRequest(msg),
            QueryError::NotFound(msg) => Self::NotFound(msg),
            QueryError::Unavailable(msg) => Self::Unavailable(msg),
            QueryError::Internal(msg) => Self::Internal(msg),
            QueryError::Db(err) => err.into(),
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::InvalidPath(_) => Self::BadRequest(err.to_string()),
            RepoError::NotFound(_) | RepoError::NotADirectory(_) | RepoError::NotAFile(_) => {
                Self::NotFound(err.to_string())
            }
            RepoError::MissingObject(_) => Self::NotFound(err.to_string()),
            RepoError::TooLarge { .. } => {
                Self::BadRequest(format!("{err}: too large to convert; download the file itself with /repo/contents"))
            }
            other => Self::Internal(other.to_string()),
        }
    }
}
