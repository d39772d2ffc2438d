//! The query layer: the tables a client may reach, filters turned into SQL, and the
//! QueryBuilder dialect.

pub mod error;
pub mod querybuilder;
pub mod schema;

pub use error::{QueryError, QueryResult};
