//! aiida-rest: a read-only REST server for AiiDA provenance databases, wire-compatible with
//! aiida-core's REST API v4.

pub mod aiida_config;
pub mod api;
pub mod db;
pub mod error;
pub mod export;
pub mod json;
pub mod listener;
pub mod querybuilder;
pub mod querystring;
pub mod repository;
pub mod schema;
pub mod storage;
pub mod timefmt;
