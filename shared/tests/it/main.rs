//! The shared crate's integration tests: one binary, a module per area.

mod auth_jwks;
mod bundle_queries;
mod cache_backends;
mod change_tracking;
mod data_version;
mod database;
mod database_footprint;
mod incremental_stats;
mod scoped_counters;
mod secret_rotation;
mod secrets;
