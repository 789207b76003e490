//! Postgres: the pool, how statements are sent (pooler-safe or prepared), new credentials after a
//! rotation, and the embedded migrations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

use secrecy::{ExposeSecret, SecretString};

use super::secrets::{Reread, RotatingSecret};
use crate::env::{chain, ConfigError, Env};

/// A refused password reads `DATABASE_URL`'s secret again at most this often.
pub const CREDENTIALS_REREAD_INTERVAL: Duration = Duration::from_secs(30);

/// The migrations in `migrations/`, compiled in, so every binary and test applies the same schema.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How to reach Postgres and what every query is held to.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`, with the password: a secret, so `Debug` shows it redacted.
    pub url: SecretString,
    /// `DB_POOL_SIZE`.
    pub max_connections: u32,
    /// `DB_ACQUIRE_TIMEOUT_MS`.
    pub acquire_timeout: Duration,
    /// `DB_STATEMENT_TIMEOUT_MS`.
    pub statement_timeout: Duration,
    pub statement_mode: StatementMode,
    /// `DB_PROXY_ENDPOINT`: a pooler (RDS Proxy) to connect to instead of the URL's host; the rest of
    /// the URL (user, password, database, port) is kept.
    pub proxy_host: Option<String>,
}

/// How queries reach Postgres (`DB_STATEMENT_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementMode {
    /// `unnamed` (the default): every query is an unnamed statement, which works through
    /// transaction-mode poolers (PgBouncer, RDS Proxy, Supabase's pooler) as well as directly.
    Unnamed,
    /// `prepared`: named prepared statements cached per connection; only for direct connections.
    Prepared,
}

impl DatabaseConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let statement_mode = match env.optional("DB_STATEMENT_MODE").as_deref() {
            None | Some("unnamed") => StatementMode::Unnamed,
            Some("prepared") => StatementMode::Prepared,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "DB_STATEMENT_MODE",
                    reason: format!("{other:?}: must be unnamed or prepared"),
                })
            }
        };
        Ok(Self {
            url: env.required("DATABASE_URL")?.into(),
            max_connections: env.parsed("DB_POOL_SIZE", 4)?,
            acquire_timeout: env.millis("DB_ACQUIRE_TIMEOUT_MS", 3_000)?,
            statement_timeout: env.millis("DB_STATEMENT_TIMEOUT_MS", 5_000)?,
            statement_mode,
            proxy_host: env.optional("DB_PROXY_ENDPOINT"),
        })
    }
}

/// The pool and the settings every query honours.
#[derive(Debug, Clone)]
pub struct Database {
    pool: PgPool,
    mode: StatementMode,
    statement_timeout: Duration,
    /// Where the URL came from, when a rotation can change it.
    credentials: Option<Arc<Credentials>>,
}

/// The secret holding the URL, and what was applied of it.
#[derive(Debug)]
struct Credentials {
    secret: RotatingSecret,
    /// The secret's version the pool connects with.
    applied: AtomicU64,
    proxy_host: Option<String>,
}

impl Database {
    /// A small pool that connects on first use: a cold start does no I/O, and a Postgres outage turns
    /// into a bounded wait (`DB_ACQUIRE_TIMEOUT_MS`) and an error rather than a failed start.
    ///
    /// Nothing is sent as a startup parameter beyond what every pooler accepts: PgBouncer refuses
    /// unknown ones (`options`, `extra_float_digits`) or, told to ignore them, drops them silently. The
    /// statement timeout is therefore set inside each bundle's transaction instead.
    pub fn connect_lazy(config: &DatabaseConfig) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            // No ping before each use (a round trip on every request's path): a connection found
            // dead fails its first statement, and reads and transactions are tried again on another.
            .test_before_acquire(false)
            .connect_lazy_with(connect_options(
                config.url.expose_secret(),
                config.proxy_host.as_deref(),
            )?);
        Ok(Self::new(pool, config))
    }

    /// The same, with `secret` the Secrets Manager secret `config.url` was read from: when Postgres
    /// refuses the credentials (a rotated password), the secret is read again and the pool's new
    /// connections use the new URL.
    pub fn connect_lazy_rotating(
        config: &DatabaseConfig,
        secret: Option<RotatingSecret>,
    ) -> Result<Self, sqlx::Error> {
        let mut db = Self::connect_lazy(config)?;
        db.credentials = secret.map(|secret| {
            Arc::new(Credentials {
                secret,
                applied: AtomicU64::new(0),
                proxy_host: config.proxy_host.clone(),
            })
        });
        Ok(db)
    }

    /// Over an existing pool (tests pass a per-test database).
    pub fn new(pool: PgPool, config: &DatabaseConfig) -> Self {
        Self {
            pool,
            mode: config.statement_mode,
            statement_timeout: config.statement_timeout,
            credentials: None,
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
        self.begin_with(format!("BEGIN; {}", self.transaction_settings_sql()))
            .await
    }

    /// A transaction opened with `begin` (which must start it and end with the statement timeout).
    /// Credentials refused and renewed, it is tried once more.
    pub async fn begin_with(
        &self,
        begin: String,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        match self.pool.begin_with(sqlx::AssertSqlSafe(begin.clone())).await {
            Err(e) if self.renew_credentials(&e).await => {
                self.pool.begin_with(sqlx::AssertSqlSafe(begin)).await
            }
            result => result,
        }
    }

    /// Runs `work` in a transaction of its own (with the statement timeout) and commits; the whole
    /// transaction is tried again, on a new connection, when it fails with a transient error
    /// ([`retry_transient`]). For idempotent work only: a commit whose answer was lost may have
    /// happened.
    pub async fn transaction<T>(
        &self,
        mut work: impl AsyncFnMut(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        retry_transient(async || {
            let mut tx = self.begin().await?;
            let value = work(&mut tx).await?;
            tx.commit().await?;
            Ok(value)
        })
        .await
    }

    /// `SELECT 1` (the health check), with the same renewal of refused credentials.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        // No parameters: the simple query protocol, one round trip, fine behind any pooler.
        let select = || sqlx::raw_sql("SELECT 1").execute(&self.pool);
        match select().await {
            Err(e) if self.renew_credentials(&e).await => select().await.map(drop),
            result => result.map(drop),
        }
    }

    /// After `e`, whether the pool now has other credentials to try: when Postgres refused the
    /// credentials and the URL came from Secrets Manager, the secret is read again (at most once per
    /// [`CREDENTIALS_REREAD_INTERVAL`], concurrent failures sharing one read) and a new URL becomes
    /// the pool's for its new connections. Connections already open keep theirs.
    pub async fn renew_credentials(&self, e: &sqlx::Error) -> bool {
        let Some(credentials) = self.credentials.as_deref() else {
            return false;
        };
        if !is_refused_credentials(e) {
            return false;
        }
        let secret = &credentials.secret;
        let applied = credentials.applied.load(Ordering::Acquire);
        let (url, version) = match secret.reread(applied).await {
            Ok(Reread::Changed { value, version }) => (value, version),
            Ok(outcome) => {
                tracing::warn!(
                    ?outcome,
                    name = secret.name(),
                    "Postgres refused the credentials; no new ones"
                );
                return false;
            }
            Err(e) => {
                tracing::error!(error = %chain(&e), "Postgres refused the credentials; re-reading them failed");
                return false;
            }
        };
        match connect_options(&url, credentials.proxy_host.as_deref()) {
            Ok(options) => {
                self.pool.set_connect_options(options);
                credentials.applied.store(version, Ordering::Release);
                tracing::info!(version, "Postgres credentials renewed from Secrets Manager");
                true
            }
            Err(e) => {
                // The error names no part of the URL, so it may be logged.
                tracing::error!(error = %chain(&e), "the re-read DATABASE_URL is not a Postgres URL; keeping the old one");
                false
            }
        }
    }

    /// What every transaction starts with, as `SET LOCAL` so that it holds behind any pooler: the
    /// statement timeout, and no JIT compilation. Every statement here reads a few index ranges, but
    /// the bundle's never-taken full-scan branches make its estimated cost grow with the tables; past
    /// `jit_above_cost` Postgres would compile it first (about 30 ms of a 5 ms miss at 10^7 rows).
    /// For the same reason no parallel workers: a scoped bundle's estimate for the unassigned
    /// records' rows can pass the parallel thresholds, and starting workers took about 8 ms of a
    /// 3 ms read (`make bench` figure 15).
    pub fn transaction_settings_sql(&self) -> String {
        format!(
            "SET LOCAL statement_timeout = {}; SET LOCAL jit = off; SET LOCAL max_parallel_workers_per_gather = 0",
            self.statement_timeout.as_millis().max(1)
        )
    }
}

/// The pool's options for `url`: the proxy host instead of the URL's when set, and nothing sent at
/// startup that a pooler would refuse.
fn connect_options(url: &str, proxy_host: Option<&str>) -> Result<PgConnectOptions, sqlx::Error> {
    let mut options: PgConnectOptions = url.parse()?;
    if let Some(host) = proxy_host {
        options = options.host(host);
    }
    Ok(options
        .application_name("dashboard-bundle-cache")
        .extra_float_digits(None))
}

/// Whether Postgres refused the connection's credentials: 28P01 invalid_password, or 28000
/// invalid_authorization_specification (no such role, or pg_hba refuses it).
pub fn is_refused_credentials(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| matches!(code.as_ref(), "28P01" | "28000")),
        _ => false,
    }
}

/// Attempts of [`retry_transient`], the first included.
pub(crate) const TRANSIENT_ATTEMPTS: u32 = 3;

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

/// Whether `e` lost the connection itself (a dead socket, the session terminated or timed out): what a
/// read on the request's path tries again at once, on another connection. Not a full pool, which a
/// retry would only wait on again.
pub fn is_lost_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P05 idle_session_timeout, 08xxx.
            matches!(code.as_ref(), "57P01" | "57P02" | "57P05") || code.starts_with("08")
        }),
        _ => false,
    }
}

/// Runs `op` again (after a short pause) when it fails with a transient error, up to three attempts.
/// For idempotent work only.
async fn retry_transient<T>(mut op: impl AsyncFnMut() -> Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < TRANSIENT_ATTEMPTS && is_transient(&e) => {
                tracing::warn!(attempt, error = %e, "transient database error, retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&'static str, &'static str)]) -> Result<DatabaseConfig, ConfigError> {
        DatabaseConfig::from_env(&Env::new(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }))
    }

    #[test]
    fn a_missing_url_or_unknown_statement_mode_is_named_and_the_default_works_through_poolers() {
        assert_eq!(
            config(&[]).unwrap_err().to_string(),
            "missing environment variable DATABASE_URL"
        );
        let url = ("DATABASE_URL", "postgres://x");
        let err = config(&[url, ("DB_STATEMENT_MODE", "named")]).unwrap_err();
        assert!(err.to_string().contains("DB_STATEMENT_MODE"), "{err}");
        assert_eq!(config(&[url]).unwrap().statement_mode, StatementMode::Unnamed);
    }

    #[test]
    fn defaults_apply_and_the_password_stays_out_of_debug() {
        let config = config(&[("DATABASE_URL", "postgres://user:hunter2@db/crm")]).unwrap();
        assert_eq!(config.statement_timeout, Duration::from_secs(5));
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn lost_connections_are_transient_and_query_errors_are_not() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_transient(&io));
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
        assert!(!is_transient(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[test]
    fn a_re_read_url_keeps_the_proxy_host_and_the_pooler_safe_startup() {
        let options =
            connect_options("postgres://app:new@db.internal:5433/crm", Some("proxy.internal")).unwrap();
        assert_eq!(options.get_host(), "proxy.internal");
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_database(), Some("crm"));
        assert_eq!(options.get_application_name(), Some("dashboard-bundle-cache"));
    }

    #[tokio::test]
    async fn retry_gives_up_after_three_attempts() {
        let mut calls = 0;
        let result: Result<(), _> = retry_transient(async || {
            calls += 1;
            Err(sqlx::Error::PoolTimedOut)
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 3);
    }
}
