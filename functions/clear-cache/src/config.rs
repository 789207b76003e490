//! What the clear-cache function reads from the environment, once per cold start. It never touches
//! Postgres, so it needs no database settings.

use shared::auth::AuthConfig;
use shared::config::{self, Env, RedisConfig};
use shared::cors::CorsConfig;
use shared::error::ConfigError;

#[derive(Clone)]
pub struct Config {
    pub redis: RedisConfig,
    pub key_prefix: String,
    /// The `JWT_*` variables: how bearer tokens are verified and mapped.
    pub auth: AuthConfig,
    /// Browser origins allowed to call the API (`CORS_ALLOWED_ORIGINS`); `make dev`'s page.
    pub cors: CorsConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("redis", &self.redis)
            .field("key_prefix", &self.key_prefix)
            .field("auth", &self.auth)
            .field("cors", &self.cors)
            .finish()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        Ok(Self {
            redis: RedisConfig::from_env(&env)?,
            key_prefix: config::cache_key_prefix(&env),
            auth: AuthConfig::from_lookup(&lookup)?,
            cors: CorsConfig::from_lookup(&lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_no_database_and_keeps_the_secret_out_of_debug() {
        let secret = "s".repeat(40);
        let vars = |name: &str| match name {
            "REDIS_URL" => Some("redis://r".to_owned()),
            "JWT_SECRET" => Some("s".repeat(40)),
            _ => None,
        };
        let config = Config::from_lookup(vars).unwrap();
        assert!(!format!("{config:?}").contains(&secret));
    }
}
