//! The dashboard-bundle crate's integration tests: one binary, a module per area.

mod app;
mod dashboard_bundle;
mod faults;
mod freshness;
mod identity_providers;
mod local_cache;
mod logs;
mod read_recording;
mod round_trips;
mod scoped_dashboards;
mod secret_rotation;
mod tenant_day;
