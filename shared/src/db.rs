//! The Postgres pool and the embedded migrations.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::DatabaseConfig;

/// The migrations in `migrations/`, compiled in, so every binary and test applies the same schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A small pool that connects on first use: a cold start does no I/O, and a Postgres outage turns into
/// a bounded wait (`DB_ACQUIRE_TIMEOUT_MS`) and an error rather than a failed start.
pub fn lazy_pool(config: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = config.url.parse()?;
    let options = options.application_name("dashboard-bundle-cache").options([(
        "statement_timeout",
        format!("{}ms", config.statement_timeout.as_millis()),
    )]);
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect_lazy_with(options))
}
