//! The query layer: the tables a client may reach, filters turned into SQL, and the
//! QueryBuilder dialect.

pub mod error;
pub mod lists;
pub mod node_classes;
pub mod nodes;
pub mod querybuilder;
pub mod rows;
pub mod schema;
pub mod stats;

pub use error::{QueryError, QueryResult};
