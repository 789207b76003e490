//! The configuration pieces the functions share (Postgres, Redis, key prefix, freshness; auth has its
//! own in `auth::config`), each read from the environment by its own function. Each function composes its own
//! config struct from these and reads it once per cold start.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::bundle_cache::Freshness;
use crate::error::ConfigError;

#[derive(Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
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

#[derive(Clone)]
pub struct RedisConfig {
    pub url: String,
    /// Use the cluster protocol (`REDIS_CLUSTER=true`), as ElastiCache Serverless requires.
    pub cluster: bool,
    /// Extra root certificate for `rediss://` (`REDIS_CA_FILE`), for test servers with their own CA.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
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
            url: env.required("DATABASE_URL")?,
            max_connections: env.parsed("DB_POOL_SIZE", 4)?,
            acquire_timeout: env.millis("DB_ACQUIRE_TIMEOUT_MS", 3_000)?,
            statement_timeout: env.millis("DB_STATEMENT_TIMEOUT_MS", 5_000)?,
            statement_mode,
            proxy_host: env.optional("DB_PROXY_ENDPOINT"),
        })
    }
}

impl RedisConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            url: env.required("REDIS_URL")?,
            cluster: env.parsed("REDIS_CLUSTER", false)?,
            ca_file: env.optional("REDIS_CA_FILE").map(PathBuf::from),
            connect_timeout: env.millis("REDIS_CONNECT_TIMEOUT_MS", 500)?,
            response_timeout: env.millis("REDIS_RESPONSE_TIMEOUT_MS", 250)?,
        })
    }
}

impl Freshness {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            fresh_for: Duration::from_secs(env.parsed("BUNDLE_TTL_SECONDS", 300)?),
            max_age: Duration::from_secs(env.parsed("BUNDLE_MAX_AGE_SECONDS", 25 * 3600)?),
            lease: env.millis("BUNDLE_LEASE_MS", 5_000)?,
            bust_interval: env.millis("BUST_INTERVAL_MS", 10_000)?,
        })
    }
}

/// `CACHE_KEY_PREFIX`: prepended to every Redis key, empty in production.
pub fn cache_key_prefix(env: &Env) -> String {
    env.optional("CACHE_KEY_PREFIX").unwrap_or_default()
}

/// A source of environment variables: the process's, or a test's map.
pub struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self(lookup)
    }

    /// A variable's value; unset and empty are the same.
    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: format!("{raw:?}: {e}"),
            }),
        }
    }

    pub fn millis(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.parsed(name, default).map(Duration::from_millis)
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("statement_mode", &self.statement_mode)
            .field("proxy_host", &self.proxy_host)
            .finish()
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"<redacted>")
            .field("cluster", &self.cluster)
            .field("ca_file", &self.ca_file)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with<T>(vars: &[(&str, &str)], read: impl Fn(&Env) -> T) -> T {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |name: &str| map.get(name).cloned();
        read(&Env::new(&lookup))
    }

    #[test]
    fn missing_database_url_is_named_in_the_error() {
        let err = with(&[], DatabaseConfig::from_env).unwrap_err();
        assert_eq!(err.to_string(), "missing environment variable DATABASE_URL");
    }

    #[test]
    fn malformed_number_names_the_variable() {
        let err = with(&[("BUNDLE_TTL_SECONDS", "five")], Freshness::from_env).unwrap_err();
        assert!(err.to_string().contains("BUNDLE_TTL_SECONDS"), "{err}");
    }

    #[test]
    fn unknown_statement_mode_is_refused_and_the_default_works_through_poolers() {
        let url = ("DATABASE_URL", "postgres://x");
        let err = with(&[url, ("DB_STATEMENT_MODE", "named")], DatabaseConfig::from_env).unwrap_err();
        assert!(err.to_string().contains("DB_STATEMENT_MODE"), "{err}");
        let config = with(&[url], DatabaseConfig::from_env).unwrap();
        assert_eq!(config.statement_mode, StatementMode::Unnamed);
    }

    #[test]
    fn defaults_apply_and_the_database_password_stays_out_of_debug() {
        let config = with(
            &[("DATABASE_URL", "postgres://user:hunter2@db/crm")],
            DatabaseConfig::from_env,
        )
        .unwrap();
        assert_eq!(config.statement_timeout, Duration::from_secs(5));
        assert_eq!(
            with(&[], Freshness::from_env).unwrap().fresh_for,
            Duration::from_secs(300)
        );
        assert_eq!(with(&[], cache_key_prefix), "");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
