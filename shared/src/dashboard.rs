//! Serving a bundle through the cache: the one code path of the dashboard function and the warmer, so
//! a warmed entry has the same key and bytes as one computed on request.
//!
//! Freshness: an entry is served as is for `BUNDLE_TTL_SECONDS` after it was computed or last
//! revalidated. After that, one primary-key read compares the data version it was computed from with
//! the current one; unchanged (and still the same UTC day, since the 30-day figures move at midnight)
//! it is served again and marked revalidated. Otherwise one caller, holding a short Redis lease,
//! recomputes while the others serve the previous entry (`STALE`) or, for a key with no entry, wait for
//! the winner's value. Postgres failing while an entry exists serves that entry (`STALE`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::auth::ClearTarget;
use crate::bundle;
use crate::cache::{Cache, Entry, VALIDATED_AT_OFFSET};
use crate::clock::Clock;
use crate::error::{chain, BundleError, CacheError};
use crate::keys::{Keys, Scope};
use crate::version;

/// How often a caller waiting for another's recompute looks for the value.
const WAIT_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from Redis, fresh or revalidated.
    Hit,
    /// Computed from Postgres and stored.
    Miss,
    /// Computed from Postgres; Redis was unavailable, so nothing was read or stored.
    Bypass,
    /// An older entry, served while another caller recomputes or while Postgres is unavailable.
    Stale,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
            CacheStatus::Stale => "STALE",
        }
    }

    /// Whether the bytes came from the cache rather than this request's own computation.
    pub fn cached(self) -> bool {
        matches!(self, CacheStatus::Hit | CacheStatus::Stale)
    }
}

/// A bundle as served: its JSON bytes and where they came from.
#[derive(Debug)]
pub struct Served {
    pub json: Vec<u8>,
    pub status: CacheStatus,
    pub key: String,
}

/// Freshness and lifetime settings of cached entries.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Served without any check for this long after computation or revalidation.
    pub fresh_for: Duration,
    /// Redis TTL of an entry computed on request.
    pub max_age: Duration,
    /// Lifetime of the recompute lease.
    pub lease: Duration,
}

pub struct Dashboard {
    pool: PgPool,
    cache: Cache,
    keys: Keys,
    lifetimes: Lifetimes,
    clock: Clock,
    recomputes: AtomicU64,
}

impl Dashboard {
    pub fn new(pool: PgPool, cache: Cache, keys: Keys, lifetimes: Lifetimes, clock: Clock) -> Self {
        Self {
            pool,
            cache,
            keys,
            lifetimes,
            clock,
            recomputes: AtomicU64::new(0),
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

    /// How many bundles this instance has computed from Postgres.
    pub fn recomputes(&self) -> u64 {
        self.recomputes.load(Ordering::Relaxed)
    }

    /// The bundle of `scope`, as fresh as the configured window allows. `bust` skips the cache read.
    /// Fails only when Postgres must be asked, cannot answer, and no older entry exists.
    pub async fn serve(
        &self,
        scope: Scope,
        include_test_data: bool,
        bust: bool,
    ) -> Result<Served, BundleError> {
        let key = self.keys.bundle(scope, include_test_data);
        if bust {
            return self.compute_and_store(scope, include_test_data, key, true).await;
        }
        let entry = match self.cache.get(&key).await {
            Ok(bytes) => bytes.and_then(|b| {
                let entry = Entry::decode(&b);
                if entry.is_none() {
                    tracing::warn!(%key, "unreadable cache entry, recomputing");
                }
                entry
            }),
            Err(e) => {
                tracing::warn!(%key, error = %chain(&e), "cache read failed, bypassing cache");
                return self.compute_and_store(scope, include_test_data, key, false).await;
            }
        };
        let Some(entry) = entry else {
            return self.recompute_once(scope, include_test_data, key, None).await;
        };
        let now = self.clock.now();
        if now.timestamp_millis() - entry.validated_at_ms < self.lifetimes.fresh_for.as_millis() as i64 {
            return Ok(served(entry, CacheStatus::Hit, key));
        }
        if !same_utc_day(entry.generated_at_ms, now) {
            return self
                .recompute_once(scope, include_test_data, key, Some(entry))
                .await;
        }
        match version::current(&self.pool, scope).await {
            Ok(current) if current == entry.data_version => {
                let stamp = now.timestamp_millis().to_be_bytes();
                if let Err(e) = self.cache.set_range(&key, VALIDATED_AT_OFFSET, &stamp).await {
                    tracing::warn!(%key, error = %chain(&e), "could not mark entry revalidated");
                }
                Ok(served(entry, CacheStatus::Hit, key))
            }
            Ok(_) => {
                self.recompute_once(scope, include_test_data, key, Some(entry))
                    .await
            }
            Err(e) => {
                tracing::warn!(%key, error = %chain(&e), "version check failed, serving stale entry");
                Ok(served(entry, CacheStatus::Stale, key))
            }
        }
    }

    /// Recomputes `key` with at most one caller at a time across all instances: the lease holder
    /// computes; the others serve `previous` as STALE, or, with no previous entry, wait for the
    /// holder's value and compute themselves only if the holder disappears.
    async fn recompute_once(
        &self,
        scope: Scope,
        include_test_data: bool,
        key: String,
        previous: Option<Entry>,
    ) -> Result<Served, BundleError> {
        let lease_key = self.keys.recompute_lease(scope, include_test_data);
        let waiting_since = Instant::now();
        loop {
            match self.cache.acquire_lease(&lease_key, self.lifetimes.lease).await {
                Ok(Some(token)) => {
                    // The previous holder may have stored a newer entry between our read and our
                    // lease: serve that rather than compute the same bundle twice.
                    if let Some(newer) = self.newer_than(&key, previous.as_ref()).await {
                        let _ = self.cache.release_lease(&lease_key, &token).await;
                        return Ok(served(newer, CacheStatus::Hit, key));
                    }
                    let result = self
                        .compute_and_store(scope, include_test_data, key.clone(), true)
                        .await;
                    if let Err(e) = self.cache.release_lease(&lease_key, &token).await {
                        tracing::warn!(%lease_key, error = %chain(&e), "lease release failed; it will expire");
                    }
                    return match (result, previous) {
                        (Err(BundleError::Database(e)), Some(entry)) => {
                            tracing::warn!(%key, error = %chain(&e), "recompute failed, serving stale entry");
                            Ok(served(entry, CacheStatus::Stale, key))
                        }
                        (result, _) => result,
                    };
                }
                Ok(None) => {
                    if let Some(entry) = previous {
                        return Ok(served(entry, CacheStatus::Stale, key));
                    }
                    // Someone else is computing a key that has no entry yet: wait for their value,
                    // but never longer than a lease can live.
                    if waiting_since.elapsed() > self.lifetimes.lease + WAIT_POLL {
                        tracing::warn!(%key, "gave up waiting for another recompute");
                        return self.compute_and_store(scope, include_test_data, key, true).await;
                    }
                    tokio::time::sleep(WAIT_POLL).await;
                    match self.cache.get(&key).await {
                        Ok(Some(bytes)) => {
                            if let Some(entry) = Entry::decode(&bytes) {
                                return Ok(served(entry, CacheStatus::Hit, key));
                            }
                        }
                        Ok(None) => {}
                        Err(_) => return self.compute_and_store(scope, include_test_data, key, false).await,
                    }
                }
                Err(e) => {
                    tracing::warn!(%key, error = %chain(&e), "lease unavailable, recomputing without it");
                    return self.compute_and_store(scope, include_test_data, key, true).await;
                }
            }
        }
    }

    /// The entry now under `key` if it was stored after `previous` (or `previous` is `None`).
    async fn newer_than(&self, key: &str, previous: Option<&Entry>) -> Option<Entry> {
        let entry = Entry::decode(&self.cache.get(key).await.ok()??)?;
        match previous {
            Some(p) if entry.generated_at_ms <= p.generated_at_ms => None,
            _ => Some(entry),
        }
    }

    /// Computes the bundle and, if `store`, writes it for `BUNDLE_MAX_AGE_SECONDS`.
    async fn compute_and_store(
        &self,
        scope: Scope,
        include_test_data: bool,
        key: String,
        store: bool,
    ) -> Result<Served, BundleError> {
        let entry = self.compute(scope, include_test_data).await?;
        let stored = store && self.store(&key, &entry, self.lifetimes.max_age).await;
        let status = if stored {
            CacheStatus::Miss
        } else {
            CacheStatus::Bypass
        };
        Ok(served(entry, status, key))
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
        let entry = self.compute(scope, include_test_data).await?;
        Ok(self.store(&key, &entry, ttl).await)
    }

    /// Deletes the cached bundles of `target` and returns how many keys were deleted. A tenant's keys
    /// are deleted by name; clearing everything walks the bundle namespace with SCAN and UNLINKs in
    /// batches. Nothing outside the bundle namespace is touched.
    pub async fn clear(&self, target: ClearTarget) -> Result<u64, CacheError> {
        match target {
            ClearTarget::Tenant(id) => self.cache.unlink(&self.keys.bundles_of(Scope::Tenant(id))).await,
            ClearTarget::All => self.cache.unlink_matching(&self.keys.bundle_scan_pattern()).await,
        }
    }

    async fn compute(&self, scope: Scope, include_test_data: bool) -> Result<Entry, BundleError> {
        let started = Instant::now();
        let now = self.clock.now();
        self.recomputes.fetch_add(1, Ordering::Relaxed);
        let computed = bundle::compute(
            &self.pool,
            scope,
            include_test_data,
            now,
            self.lifetimes.fresh_for.as_secs(),
        )
        .await?;
        let json = serde_json::to_vec(&computed.bundle).expect("bundle serialization cannot fail");
        tracing::debug!(%scope, include_test_data, elapsed_ms = started.elapsed().as_millis() as u64, "bundle computed");
        Ok(Entry {
            generated_at_ms: now.timestamp_millis(),
            validated_at_ms: now.timestamp_millis(),
            data_version: computed.data_version,
            json,
        })
    }

    async fn store(&self, key: &str, entry: &Entry, ttl: Duration) -> bool {
        match self.cache.set(key, &entry.encode(), ttl).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%key, error = %chain(&e), "cache write failed");
                false
            }
        }
    }
}

fn served(entry: Entry, status: CacheStatus, key: String) -> Served {
    Served {
        json: entry.json,
        status,
        key,
    }
}

fn same_utc_day(at_ms: i64, now: DateTime<Utc>) -> bool {
    DateTime::<Utc>::from_timestamp_millis(at_ms).is_some_and(|at| at.date_naive() == now.date_naive())
}
