//! What a function builds once per cold start and shares across invocations.

use sqlx::PgPool;

use crate::auth::Authenticator;
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::dashboard::{Dashboard, Lifetimes};
use crate::db;
use crate::error::CacheError;
use crate::keys::Keys;

pub struct AppState {
    pub config: Config,
    pub auth: Authenticator,
    pub dashboard: Dashboard,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid DATABASE_URL")]
    Database(#[from] sqlx::Error),
    #[error("invalid redis settings")]
    Cache(#[from] CacheError),
}

impl AppState {
    /// Builds clients without connecting: the first request connects.
    pub fn from_config(config: Config) -> Result<Self, StartupError> {
        let pool = db::lazy_pool(&config.database)?;
        Self::with_pool(config, pool, Clock::default())
    }

    /// The same, over an existing pool and clock (tests pass a per-test database and a movable clock).
    pub fn with_pool(config: Config, pool: PgPool, clock: Clock) -> Result<Self, StartupError> {
        let cache = Cache::new(&config.redis)?;
        let keys = Keys::new(config.cache_key_prefix.clone());
        let lifetimes = Lifetimes {
            fresh_for: config.bundle_ttl,
            max_age: config.bundle_max_age,
            lease: config.recompute_lease,
        };
        let dashboard = Dashboard::new(pool, cache, keys, lifetimes, clock);
        Ok(Self {
            auth: Authenticator::new(config.auth.clone()),
            dashboard,
            config,
        })
    }
}
