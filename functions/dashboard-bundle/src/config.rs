//! What the dashboard-bundle function reads from the environment, once per cold start.

use std::time::Duration;

use shared::auth::AuthConfig;
use shared::env::ConfigError;
use shared::env::Env;
use shared::platform::db::DatabaseConfig;
use shared::serving::Freshness;
use shared::store::keys::Keys;
use shared::store::LocalConfig;
use shared::store::RedisConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub keys: Keys,
    pub freshness: Freshness,
    /// The in-memory level (`LOCAL_CACHE_MB`, `LOCAL_CACHE_MAX_AGE_MS`).
    pub local: LocalConfig,
    /// The `JWT_*` variables: how bearer tokens are verified and mapped.
    pub auth: AuthConfig,
    /// Every request is answered within this (`REQUEST_DEADLINE_MS`), well before the function's own
    /// timeout: with the cached entry (`STALE`) if there is one, otherwise a JSON 503.
    pub request_deadline: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseConfig::from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            keys: Keys::from_env(env)?,
            freshness: Freshness::from_env(env)?,
            local: LocalConfig::from_env(env)?,
            auth: AuthConfig::from_env(env)?,
            request_deadline: env.millis("REQUEST_DEADLINE_MS", 8_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_required_variable_is_named_and_secrets_stay_out_of_debug() {
        let err = Config::from_env(&Env::new(|_| None)).unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
        let vars = |name: &str| match name {
            "DATABASE_URL" => Some("postgres://u:hunter2@db/crm".to_owned()),
            "REDIS_URL" => Some("redis://r".to_owned()),
            "JWT_SECRET" => Some("s".repeat(40)),
            _ => None,
        };
        let config = Config::from_env(&Env::new(vars)).unwrap();
        assert_eq!(config.request_deadline, Duration::from_secs(8));
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains(&"s".repeat(40)),
            "{debug}"
        );
    }
}
