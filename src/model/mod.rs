//! AiiDA knowledge without I/O: Python-compatible number and JSON spelling, timestamps.

pub mod pyjson;
pub mod time;
