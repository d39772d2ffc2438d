//! The integration tests: one binary, one module per subject, one harness.
//!
//! `cargo test --test it` runs them all; `cargo test --test it golden::profile::v4` one golden
//! file on one storage (see `golden.rs` for selecting single entries with `GOLDEN=`).

mod harness;

mod api;
mod apidocs;
mod caching;
mod claims;
mod coldstart;
mod connections;
mod damaged;
mod deep_pages;
mod exporters;
mod formats;
mod golden;
mod hardening;
mod operations;
mod optimade;
mod postgres;
mod querybuilder;
mod querybuilder_fuzz;
mod robustness;
mod several_databases;
mod storage;
mod streaming;
mod types;
mod v2;
