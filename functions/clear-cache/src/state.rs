//! What the function builds once per cold start (token verification, Redis, the key scheme) and
//! shares across invocations, and the one thing it does with them: delete a target's bundles.

use shared::auth::{Authenticator, ClearTarget};
use shared::bundle::identity::Scope;
use shared::platform::secrets;
use shared::store::keys::Keys;
use shared::store::{CacheError, RedisCache};

use crate::config::Config;

/// What the function builds once per cold start and shares across invocations.
pub struct State {
    pub auth: Authenticator,
    pub redis: RedisCache,
    pub keys: Keys,
}

impl State {
    /// Builds clients without connecting: the first request connects. A JWT secret that `env` read
    /// from Secrets Manager is read again when a token's signature fails (a rotation).
    pub fn new(config: &Config, env: &secrets::Environment) -> Result<Self, CacheError> {
        let jwt_secret = env.rotating("JWT_SECRET", shared::auth::SECRET_REREAD_INTERVAL);
        Ok(Self {
            auth: Authenticator::rotating(config.auth.clone(), jwt_secret),
            redis: RedisCache::new(&config.redis)?,
            keys: config.keys.clone(),
        })
    }

    /// Deletes the cached bundles of `target` and returns how many keys were deleted. A tenant's whole
    /// bundles are deleted by name, its scoped and widget bundles (any number) by a SCAN of their
    /// pattern; clearing everything walks the bundle namespace with SCAN and UNLINKs in
    /// batches. Nothing outside the bundle namespace is touched.
    pub async fn clear(&self, target: ClearTarget) -> Result<u64, CacheError> {
        match target {
            ClearTarget::Tenant(id) => {
                let whole = self
                    .redis
                    .unlink(&self.keys.bundles_of(Scope::Tenant(id)))
                    .await?;
                let scoped = self
                    .redis
                    .unlink_matching(&self.keys.scoped_bundles_pattern(id))
                    .await?;
                Ok(whole + scoped)
            }
            ClearTarget::All => self.redis.unlink_matching(&self.keys.bundle_scan_pattern()).await,
        }
    }
}
