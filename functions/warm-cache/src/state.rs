//! What the function builds once per cold start (Postgres, the bundle cache, the run's settings, the
//! fan-out's client, the clock) and shares across invocations.

use shared::platform::clock::Clock;
use shared::platform::db::Database;
use shared::platform::secrets;
use shared::serving::{BundleCache, StartupError};
use shared::store::RedisCache;

use crate::config::{Config, WarmConfig};
use crate::fanout::Fanout;

/// What the function builds once per cold start and shares across invocations.
pub struct WarmState {
    pub db: Database,
    pub bundles: BundleCache,
    pub warm: WarmConfig,
    pub fanout: Option<Fanout>,
    /// The time runs decide by (tests and the benchmark move it).
    pub clock: Clock,
}

impl WarmState {
    /// Builds clients without connecting: the first run connects. A database URL that `env` read from
    /// Secrets Manager is read again when Postgres refuses it (a rotation).
    pub fn new(
        config: Config,
        fanout: Option<Fanout>,
        env: &secrets::Environment,
    ) -> Result<Self, StartupError> {
        let url_secret = env.rotating("DATABASE_URL", shared::platform::db::CREDENTIALS_REREAD_INTERVAL);
        let db = Database::connect_lazy_rotating(&config.database, url_secret)?;
        Self::with_database(config, db, fanout)
    }

    /// The same over an existing database (tests pass a per-test database or a pooler).
    pub fn with_database(config: Config, db: Database, fanout: Option<Fanout>) -> Result<Self, StartupError> {
        Self::with_clock(config, db, fanout, Clock::default())
    }

    /// The same with a clock of the caller's (a simulated day).
    pub fn with_clock(
        config: Config,
        db: Database,
        fanout: Option<Fanout>,
        clock: Clock,
    ) -> Result<Self, StartupError> {
        let redis = RedisCache::new(&config.redis)?;
        let keys = config.keys.clone();
        Ok(Self {
            bundles: BundleCache::new(db.clone(), redis, keys, config.freshness, clock.clone()),
            db,
            warm: config.warm,
            fanout,
            clock,
        })
    }
}
