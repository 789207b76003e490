//! The warm-cache crate's integration tests: one binary, a module per area.

mod app;
mod cron_route;
mod local_warm;
mod scoped_warm;
mod warm_cache;
