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

/// Attempts of [`retry_transient`], the first included.
const TRANSIENT_ATTEMPTS: u32 = 3;

/// Whether `e` is a lost or refused connection (the server restarting, an administrator terminating the
/// session, a network blip) rather than a problem with the query: worth one more try on a new connection.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 08xxx connection exceptions.
            matches!(code.as_ref(), "57P01" | "57P02" | "57P03") || code.starts_with("08")
        }),
        _ => false,
    }
}

/// Runs `op` again (after a short pause) when it fails with a transient error, up to three attempts.
/// For idempotent work only.
pub async fn retry_transient<T, F, Fut>(mut op: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < TRANSIENT_ATTEMPTS && is_transient(&e) => {
                tracing::warn!(attempt, error = %e, "transient database error, retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_transient_and_query_errors_are_not() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_transient(&io));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(!is_transient(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[tokio::test]
    async fn retry_gives_up_after_three_attempts() {
        let mut calls = 0;
        let result: Result<(), _> = retry_transient(|| {
            calls += 1;
            async { Err(sqlx::Error::PoolTimedOut) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 3);
    }
}
