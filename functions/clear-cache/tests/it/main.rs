//! The clear-cache crate's integration tests: one binary, a module per area.

mod abuse;
mod app;
mod clear_cache;
