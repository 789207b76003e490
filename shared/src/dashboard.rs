//! Serving a bundle through the cache: the one code path of the dashboard function and the warmer, so
//! a warmed entry has the same key and bytes as one computed on request.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::auth::ClearTarget;
use crate::bundle;
use crate::cache::{Cache, Entry};
use crate::clock::Clock;
use crate::error::{chain, BundleError, CacheError};
use crate::keys::{Keys, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from Redis.
    Hit,
    /// Computed from Postgres and stored.
    Miss,
    /// Computed from Postgres; Redis was unavailable, so nothing was read or stored.
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

/// A bundle as served: its JSON bytes and where they came from.
#[derive(Debug)]
pub struct Served {
    pub json: Vec<u8>,
    pub status: CacheStatus,
    pub key: String,
}

pub struct Dashboard {
    pool: PgPool,
    cache: Cache,
    keys: Keys,
    bundle_ttl: Duration,
    clock: Clock,
}

impl Dashboard {
    pub fn new(pool: PgPool, cache: Cache, keys: Keys, bundle_ttl: Duration, clock: Clock) -> Self {
        Self {
            pool,
            cache,
            keys,
            bundle_ttl,
            clock,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The bundle of `scope`: from Redis when present (unless `bust`), otherwise computed and stored.
    /// Fails only when Postgres must be asked and cannot answer; a sick Redis is bypassed.
    pub async fn serve(
        &self,
        scope: Scope,
        include_test_data: bool,
        bust: bool,
    ) -> Result<Served, BundleError> {
        let key = self.keys.bundle(scope, include_test_data);
        let mut cache_up = true;
        if !bust {
            match self.cache.get(&key).await {
                Ok(Some(bytes)) => match Entry::decode(&bytes) {
                    Some(entry) => {
                        return Ok(Served {
                            json: entry.json,
                            status: CacheStatus::Hit,
                            key,
                        })
                    }
                    None => tracing::warn!(%key, "unreadable cache entry, recomputing"),
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%key, error = %chain(&e), "cache read failed, bypassing cache");
                    cache_up = false;
                }
            }
        }
        let json = self.compute(scope, include_test_data).await?;
        let status = if cache_up && self.store(&key, &json, self.bundle_ttl).await {
            CacheStatus::Miss
        } else {
            CacheStatus::Bypass
        };
        Ok(Served { json, status, key })
    }

    /// Computes the bundle of `scope` and stores it for `ttl`, whatever is cached: what the warmer does.
    /// Returns whether the store succeeded.
    pub async fn refresh(
        &self,
        scope: Scope,
        include_test_data: bool,
        ttl: Duration,
    ) -> Result<bool, BundleError> {
        let key = self.keys.bundle(scope, include_test_data);
        let json = self.compute(scope, include_test_data).await?;
        Ok(self.store(&key, &json, ttl).await)
    }

    /// Deletes the cached bundles of `target` and returns how many keys were deleted. A tenant's keys
    /// are deleted by name; clearing everything walks the bundle namespace with SCAN and UNLINKs in
    /// batches. Nothing outside the bundle namespace is touched.
    pub async fn clear(&self, target: ClearTarget) -> Result<u64, CacheError> {
        match target {
            ClearTarget::Tenant(id) => {
                self.cache
                    .unlink(&self.keys.bundles_of(Scope::Tenant(id)))
                    .await
            }
            ClearTarget::All => {
                self.cache
                    .unlink_matching(&self.keys.bundle_scan_pattern())
                    .await
            }
        }
    }

    async fn compute(&self, scope: Scope, include_test_data: bool) -> Result<Vec<u8>, BundleError> {
        let started = Instant::now();
        let bundle = bundle::compute(
            &self.pool,
            scope,
            include_test_data,
            self.clock.now(),
            self.bundle_ttl.as_secs(),
        )
        .await?;
        let json = serde_json::to_vec(&bundle).expect("bundle serialization cannot fail");
        tracing::debug!(%scope, include_test_data, elapsed_ms = started.elapsed().as_millis() as u64, "bundle computed");
        Ok(json)
    }

    async fn store(&self, key: &str, json: &[u8], ttl: Duration) -> bool {
        if ttl.is_zero() {
            return false;
        }
        let entry = Entry {
            generated_at_ms: self.clock.now().timestamp_millis(),
            data_version: 0,
            json: json.to_vec(),
        };
        match self.cache.set(key, &entry.encode(), ttl).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%key, error = %chain(&e), "cache write failed");
                false
            }
        }
    }
}
