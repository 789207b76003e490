//! What the clear-cache function reads from the environment, once per cold start. It never touches
//! Postgres, so it needs no database settings.

use shared::auth::AuthConfig;
use shared::env::ConfigError;
use shared::env::Env;
use shared::store::keys::Keys;
use shared::store::RedisConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub redis: RedisConfig,
    pub keys: Keys,
    /// The `JWT_*` variables: how bearer tokens are verified and mapped.
    pub auth: AuthConfig,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            redis: RedisConfig::from_env(env)?,
            keys: Keys::from_env(env)?,
            auth: AuthConfig::from_env(env)?,
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
        let config = Config::from_env(&Env::new(vars)).unwrap();
        assert!(!format!("{config:?}").contains(&secret));
    }
}
