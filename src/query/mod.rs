//! The query layer: the tables a client may reach, filters turned into SQL, and the
//! QueryBuilder dialect.

pub mod error;
pub mod filter;
pub mod querybuilder;
pub mod tables;

pub use error::{QueryError, QueryResult};
