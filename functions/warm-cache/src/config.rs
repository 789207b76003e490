//! What the warm-cache function reads from the environment, once per cold start. It verifies no
//! tokens, so it needs no JWT secret.

use std::time::Duration;

use shared::bundle_cache::Freshness;
use shared::config::{self, DatabaseConfig, Env, RedisConfig};
use shared::error::ConfigError;

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub key_prefix: String,
    pub freshness: Freshness,
    pub warm: WarmConfig,
}

/// How runs are paced and bounded.
#[derive(Debug, Clone)]
pub struct WarmConfig {
    /// Tenants warmed at once (`WARM_CONCURRENCY`), by default the Postgres pool size.
    pub concurrency: usize,
    /// Redis expiry of a warmed entry (`WARM_TTL_SECONDS`): long enough to reach the next run.
    pub expire_after: Duration,
    /// Above this many active tenants, a scheduled run fans out in chunks (`WARM_FANOUT_THRESHOLD`).
    pub fanout_threshold: u64,
    /// Tenants per fan-out event (`WARM_CHUNK_SIZE`, at most [`MAX_WARM_CHUNK_SIZE`]).
    pub chunk_size: usize,
    /// The EventBridge bus chunk events go to (`WARM_EVENT_BUS_NAME`); no fan-out without it.
    pub event_bus_name: Option<String>,
    /// Bound on warming one tenant's two bundles together (`WARM_TENANT_TIMEOUT_MS`).
    pub tenant_timeout: Duration,
    /// No new tenant is started when less than this remains before the invocation's deadline
    /// (`WARM_DEADLINE_MARGIN_MS`); at least the tenant bound, so a tenant started just before the
    /// margin still ends before the deadline.
    pub deadline_margin: Duration,
    /// Active tenants a scheduled run recomputes the slow way to check the maintained stats
    /// (`WARM_CHECK_SAMPLE`; 0: no check).
    pub check_sample: u32,
}

/// 500 tenant ids make a ~20 KB event; ten of them stay under PutEvents' 256 KB request limit.
pub const MAX_WARM_CHUNK_SIZE: usize = 500;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let database = DatabaseConfig::from_env(&env)?;
        let warm = WarmConfig::from_env(&env, database.max_connections as usize)?;
        Ok(Self {
            database,
            redis: RedisConfig::from_env(&env)?,
            key_prefix: config::cache_key_prefix(&env),
            freshness: Freshness::from_env(&env)?,
            warm,
        })
    }
}

impl WarmConfig {
    fn from_env(env: &Env, pool_size: usize) -> Result<Self, ConfigError> {
        let invalid = |name, reason: String| ConfigError::Invalid { name, reason };
        let chunk_size = env.parsed("WARM_CHUNK_SIZE", 250)?;
        if chunk_size == 0 || chunk_size > MAX_WARM_CHUNK_SIZE {
            return Err(invalid(
                "WARM_CHUNK_SIZE",
                format!("must be between 1 and {MAX_WARM_CHUNK_SIZE}"),
            ));
        }
        let concurrency = env.parsed("WARM_CONCURRENCY", pool_size)?;
        if concurrency == 0 {
            return Err(invalid("WARM_CONCURRENCY", "must be at least 1".into()));
        }
        let tenant_timeout = env.millis("WARM_TENANT_TIMEOUT_MS", 10_000)?;
        let deadline_margin = env.millis("WARM_DEADLINE_MARGIN_MS", 15_000)?;
        if deadline_margin < tenant_timeout {
            return Err(invalid(
                "WARM_DEADLINE_MARGIN_MS",
                format!("must be at least WARM_TENANT_TIMEOUT_MS ({tenant_timeout:?})"),
            ));
        }
        Ok(Self {
            concurrency,
            expire_after: Duration::from_secs(env.parsed("WARM_TTL_SECONDS", 25 * 3600)?),
            fanout_threshold: env.parsed("WARM_FANOUT_THRESHOLD", 2_000)?,
            chunk_size,
            event_bus_name: env.optional("WARM_EVENT_BUS_NAME"),
            tenant_timeout,
            deadline_margin,
            check_sample: env.parsed("WARM_CHECK_SAMPLE", 20)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| match name {
            "DATABASE_URL" => Some("postgres://x".to_owned()),
            "REDIS_URL" => Some("redis://r".to_owned()),
            _ => extra.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()),
        }
    }

    #[test]
    fn needs_no_jwt_secret() {
        let config = Config::from_lookup(vars(&[])).unwrap();
        assert_eq!(config.warm.concurrency, 4);
    }

    #[test]
    fn a_margin_shorter_than_one_tenant_is_refused() {
        let err = Config::from_lookup(vars(&[
            ("WARM_TENANT_TIMEOUT_MS", "30000"),
            ("WARM_DEADLINE_MARGIN_MS", "15000"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("WARM_DEADLINE_MARGIN_MS"), "{err}");
    }

    #[test]
    fn oversized_chunks_are_refused() {
        let err = Config::from_lookup(vars(&[("WARM_CHUNK_SIZE", "501")])).unwrap_err();
        assert!(err.to_string().contains("WARM_CHUNK_SIZE"), "{err}");
    }
}
