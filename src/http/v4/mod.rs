//! REST API v4, as served by aiida-core's `verdi restapi`.

pub mod collection;
pub mod node;
pub mod properties;
mod qb_respond;
pub mod querybuilder;
pub mod routes;
pub mod server;
pub mod types;
