//! Postgres: the pool, how statements are sent (pooler-safe or prepared), and the embedded migrations.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::{DatabaseConfig, StatementMode};

/// The migrations in `migrations/`, compiled in, so every binary and test applies the same schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The pool and the settings every query honours.
#[derive(Debug, Clone)]
pub struct Database {
    pool: PgPool,
    mode: StatementMode,
    statement_timeout: Duration,
}

impl Database {
    /// A small pool that connects on first use: a cold start does no I/O, and a Postgres outage turns
    /// into a bounded wait (`DB_ACQUIRE_TIMEOUT_MS`) and an error rather than a failed start.
    ///
    /// Nothing is sent as a startup parameter beyond what every pooler accepts: PgBouncer refuses
    /// unknown ones (`options`, `extra_float_digits`) or, told to ignore them, drops them silently. The
    /// statement timeout is therefore set inside each bundle's transaction instead.
    pub fn connect_lazy(config: &DatabaseConfig) -> Result<Self, sqlx::Error> {
        let mut options: PgConnectOptions = config.url.parse()?;
        if let Some(host) = &config.proxy_host {
            options = options.host(host);
        }
        let options = options
            .application_name("dashboard-bundle-cache")
            .extra_float_digits(None);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_lazy_with(options);
        Ok(Self::new(pool, config))
    }

    /// Over an existing pool (tests pass a per-test database).
    pub fn new(pool: PgPool, config: &DatabaseConfig) -> Self {
        Self {
            pool,
            mode: config.statement_mode,
            statement_timeout: config.statement_timeout,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// What to pass to sqlx's `persistent()`: named prepared statements fail behind transaction-mode
    /// poolers (`prepared statement "sqlx_s_1" already exists`). Unnamed ones work there only inside a
    /// transaction: sqlx sends an unnamed statement's Parse and its Execute in two round trips, and
    /// outside a transaction the pooler may hand the second to another server ("unnamed prepared
    /// statement does not exist"). So every query with parameters runs in a transaction (see
    /// [`Database::begin`]).
    pub fn persistent(&self) -> bool {
        self.mode == StatementMode::Prepared
    }

    /// A transaction, which keeps one server connection behind a transaction-mode pooler.
    /// It carries the statement timeout, like every transaction here.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        let begin = format!("BEGIN; {}", self.statement_timeout_sql());
        self.pool.begin_with(sqlx::AssertSqlSafe(begin)).await
    }

    /// `SET LOCAL statement_timeout` for the start of a transaction: it holds behind any pooler.
    pub fn statement_timeout_sql(&self) -> String {
        format!(
            "SET LOCAL statement_timeout = {}",
            self.statement_timeout.as_millis().max(1)
        )
    }
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
