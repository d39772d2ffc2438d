//! AiiDA knowledge without I/O: node classes, Python-compatible number and JSON spelling,
//! timestamps.

pub mod node_class;
pub mod pyjson;
pub mod time;
