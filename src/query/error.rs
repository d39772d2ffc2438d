//! The one error type of the query layer. It says whose fault a failure is; the HTTP layer maps
//! it to a status (`http::error`).

use crate::storage::db::DbError;

pub type QueryResult<T> = Result<T, QueryError>;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The request asks for something malformed or unknown (a column, an operator, a value).
    #[error("{0}")]
    BadRequest(String),
    /// The request is well-formed but names something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The storage cannot answer now (busy, or the database server is away).
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the server or of the stored data, not of the request.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl QueryError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::NotFound(msg.into())
    }
}
