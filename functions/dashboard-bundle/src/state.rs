//! What the function builds once per cold start (config, token verification, the bundle cache over
//! Postgres and Redis) and shares across invocations; handlers take it by reference.

use shared::auth::Authenticator;
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use shared::platform::secrets::{self, RotatingSecret};
use shared::serving::{BundleCache, StartupError};
use shared::store::{LocalLevel, RedisCache};

use crate::config::Config;
use crate::health::HealthCheck;

/// What the function builds once per cold start and shares across invocations.
pub struct State {
    pub config: Config,
    pub auth: Authenticator,
    pub bundles: BundleCache,
    pub(crate) db: Database,
    pub(crate) health: HealthCheck,
}

impl State {
    /// Builds clients without connecting: the first request connects. Secrets that `env` read from
    /// Secrets Manager are read again when they stop working (a rotation).
    pub fn new(config: Config, env: &secrets::Environment) -> Result<Self, StartupError> {
        let url_secret = env.rotating("DATABASE_URL", shared::platform::db::CREDENTIALS_REREAD_INTERVAL);
        let db = Database::connect_lazy_rotating(&config.database, url_secret)?;
        let jwt_secret = env.rotating("JWT_SECRET", shared::auth::SECRET_REREAD_INTERVAL);
        Self::build(config, db, Clock::default(), jwt_secret)
    }

    /// The same over an existing database and clock (tests pass a per-test database, a pooler or a
    /// fault proxy, and a clock they move).
    pub fn with_database(config: Config, db: Database, clock: Clock) -> Result<Self, StartupError> {
        Self::build(config, db, clock, None)
    }

    fn build(
        config: Config,
        db: Database,
        clock: Clock,
        jwt_secret: Option<RotatingSecret>,
    ) -> Result<Self, StartupError> {
        let redis = RedisCache::new(&config.redis)?;
        let keys = config.keys.clone();
        Ok(Self {
            auth: Authenticator::rotating(config.auth.clone(), jwt_secret),
            bundles: BundleCache::new(db.clone(), redis, keys, config.freshness, clock)
                .with_local_level(LocalLevel::new(config.local)),
            db,
            health: HealthCheck::default(),
            config,
        })
    }
}
