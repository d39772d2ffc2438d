//! The query layer: the tables a client may reach (`tables`, one model for the REST resources
//! and the QueryBuilder), the filter model and its one translator into SQL (`filter`), and the
//! QueryBuilder dialect (`querybuilder`). Its errors are [`QueryError`]s, mapped to HTTP at the
//! edge; it knows nothing of HTTP.

pub mod error;
pub mod filter;
pub mod lists;
pub mod node_classes;
pub mod nodes;
pub mod optimade;
pub mod querybuilder;
pub mod rows;
pub mod stats;
pub mod tables;

pub use error::{QueryError, QueryResult};
