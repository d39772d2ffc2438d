//! aiida-rest: a read-only REST server for AiiDA provenance databases, wire-compatible with
//! aiida-core's REST API v4.
//!
//! The layers are the top-level modules, and each uses only the ones below it:
//! `http` → `query`, `export` → `storage`, `model`.

pub mod export;
pub mod http;
pub mod model;
pub mod query;
pub mod storage;
