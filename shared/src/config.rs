//! Typed configuration, read once per cold start from the environment.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::AuthConfig;
use crate::error::ConfigError;

/// Everything the functions read from the environment. Secrets are redacted from `Debug`.
#[derive(Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    /// The `JWT_*` variables: how bearer tokens are verified and mapped.
    pub auth: AuthConfig,
    /// Freshness window of a cached bundle (`BUNDLE_TTL_SECONDS`): within it an entry is served as is,
    /// after it the entry is revalidated against the tenant's data version.
    pub bundle_ttl: Duration,
    /// How long an entry stays in Redis at all (`BUNDLE_MAX_AGE_SECONDS`): long enough to reach the
    /// next warm run.
    pub bundle_max_age: Duration,
    /// Lifetime of the lease that lets one caller recompute an entry (`BUNDLE_LEASE_MS`); a crashed
    /// holder blocks the key for at most this long.
    pub recompute_lease: Duration,
    /// Prepended to every Redis key (`CACHE_KEY_PREFIX`), empty in production.
    pub cache_key_prefix: String,
}

#[derive(Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
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

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can supply variables without touching the process.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let auth = AuthConfig::from_lookup(&lookup)?;
        Ok(Self {
            database: DatabaseConfig {
                url: env.required("DATABASE_URL")?,
                max_connections: env.parsed("DB_POOL_SIZE", 4)?,
                acquire_timeout: env.millis("DB_ACQUIRE_TIMEOUT_MS", 3_000)?,
                statement_timeout: env.millis("DB_STATEMENT_TIMEOUT_MS", 15_000)?,
            },
            redis: RedisConfig {
                url: env.required("REDIS_URL")?,
                cluster: env.parsed("REDIS_CLUSTER", false)?,
                ca_file: env.optional("REDIS_CA_FILE").map(PathBuf::from),
                connect_timeout: env.millis("REDIS_CONNECT_TIMEOUT_MS", 500)?,
                response_timeout: env.millis("REDIS_RESPONSE_TIMEOUT_MS", 250)?,
            },
            auth,
            bundle_ttl: Duration::from_secs(env.parsed("BUNDLE_TTL_SECONDS", 300)?),
            bundle_max_age: Duration::from_secs(env.parsed("BUNDLE_MAX_AGE_SECONDS", 25 * 3600)?),
            recompute_lease: env.millis("BUNDLE_LEASE_MS", 5_000)?,
            cache_key_prefix: env.optional("CACHE_KEY_PREFIX").unwrap_or_default(),
        })
    }
}

/// Settings of the warm-cache function, on top of [`Config`].
#[derive(Debug, Clone)]
pub struct WarmConfig {
    /// Tenants warmed at once (`WARM_CONCURRENCY`), by default the Postgres pool size.
    pub concurrency: usize,
    /// Redis lifetime of a warmed entry (`WARM_TTL_SECONDS`): long enough to reach the next run.
    pub ttl: Duration,
    /// Above this many active tenants, a scheduled run fans out in chunks (`WARM_FANOUT_THRESHOLD`).
    pub fanout_threshold: u64,
    /// Tenants per fan-out event (`WARM_CHUNK_SIZE`, at most [`MAX_WARM_CHUNK_SIZE`]).
    pub chunk_size: usize,
    /// The EventBridge bus chunk events go to (`WARM_EVENT_BUS_NAME`); no fan-out without it.
    pub event_bus_name: Option<String>,
    /// No new tenant is started when less than this remains before the deadline (`WARM_DEADLINE_MARGIN_MS`).
    pub deadline_margin: Duration,
    /// Bound on warming one tenant's two bundles (`WARM_TENANT_TIMEOUT_MS`).
    pub tenant_timeout: Duration,
}

/// 500 tenant ids make a ~20 KB event; ten of them stay under PutEvents' 256 KB request limit.
pub const MAX_WARM_CHUNK_SIZE: usize = 500;

impl WarmConfig {
    pub fn from_env(base: &Config) -> Result<Self, ConfigError> {
        Self::from_lookup(base, |name| std::env::var(name).ok())
    }

    pub fn from_lookup(base: &Config, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let chunk_size = env.parsed("WARM_CHUNK_SIZE", 250)?;
        if chunk_size == 0 || chunk_size > MAX_WARM_CHUNK_SIZE {
            return Err(ConfigError::Invalid {
                name: "WARM_CHUNK_SIZE",
                reason: format!("must be between 1 and {MAX_WARM_CHUNK_SIZE}"),
            });
        }
        let concurrency = env.parsed("WARM_CONCURRENCY", base.database.max_connections as usize)?;
        if concurrency == 0 {
            return Err(ConfigError::Invalid {
                name: "WARM_CONCURRENCY",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            concurrency,
            ttl: Duration::from_secs(env.parsed("WARM_TTL_SECONDS", 25 * 3600)?),
            fanout_threshold: env.parsed("WARM_FANOUT_THRESHOLD", 2_000)?,
            chunk_size,
            event_bus_name: env.optional("WARM_EVENT_BUS_NAME"),
            deadline_margin: env.millis("WARM_DEADLINE_MARGIN_MS", 15_000)?,
            tenant_timeout: env.millis("WARM_TENANT_TIMEOUT_MS", 30_000)?,
        })
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
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

    fn millis(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.parsed(name, default).map(Duration::from_millis)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database", &self.database)
            .field("redis", &self.redis)
            .field("auth", &self.auth)
            .field("bundle_ttl", &self.bundle_ttl)
            .field("bundle_max_age", &self.bundle_max_age)
            .field("recompute_lease", &self.recompute_lease)
            .field("cache_key_prefix", &self.cache_key_prefix)
            .finish()
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
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

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn missing_database_url_is_named_in_the_error() {
        let err =
            Config::from_lookup(lookup(&[("JWT_SECRET", SECRET), ("REDIS_URL", "redis://x")])).unwrap_err();
        assert_eq!(err.to_string(), "missing environment variable DATABASE_URL");
    }

    #[test]
    fn short_jwt_secret_is_rejected() {
        let err = Config::from_lookup(lookup(&[("JWT_SECRET", "short")])).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn malformed_number_names_the_variable() {
        let err = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("DATABASE_URL", "postgres://x"),
            ("REDIS_URL", "redis://x"),
            ("BUNDLE_TTL_SECONDS", "five"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("BUNDLE_TTL_SECONDS"), "{err}");
    }

    #[test]
    fn defaults_apply_and_secrets_stay_out_of_debug() {
        let config = Config::from_lookup(lookup(&[
            ("JWT_SECRET", SECRET),
            ("DATABASE_URL", "postgres://user:hunter2@db/crm"),
            ("REDIS_URL", "redis://x"),
        ]))
        .unwrap();
        assert_eq!(config.bundle_ttl, Duration::from_secs(300));
        assert_eq!(config.cache_key_prefix, "");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2") && !debug.contains(SECRET), "{debug}");
    }
}
