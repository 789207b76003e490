//! Recomputing a bundle: at most one caller per key across all instances (the lease), the others
//! serving the previous entry as `STALE` or waiting for the holder's; the store, fenced so that an
//! older entry never replaces a newer one; and the warmer's refresh.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{same_day, served, BundleCache, CacheStatus, Served};
use crate::bundle::identity::{BundleId, Scope};
use crate::bundle::query;
use crate::bundle::BundleError;
use crate::env::chain;
use crate::store::Entry;

/// How often a caller waiting for another's recompute looks for the value (plus up to as much jitter,
/// so that waiters do not retake an abandoned lease in lockstep).
const WAIT_POLL: Duration = Duration::from_millis(20);

/// Whether a computed bundle is written to Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Store {
    Yes,
    /// Redis is unavailable: compute, serve, keep nothing.
    No,
}

/// What became of a computed entry's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    Yes,
    /// Redis already held a newer entry, which stays.
    Superseded,
    /// Redis was unavailable (or not to be written).
    No,
}

impl Stored {
    /// Superseded, the entry computed is still this request's answer: computed after the request
    /// began, it has every write committed before.
    fn status(self) -> CacheStatus {
        match self {
            Stored::Yes | Stored::Superseded => CacheStatus::Miss,
            Stored::No => CacheStatus::Bypass,
        }
    }
}

impl BundleCache {
    /// Recomputes `key` with at most one caller at a time across all instances: the lease holder
    /// computes; the others serve `previous` as STALE or, with no previous entry, wait for the holder's
    /// value, retaking the lease if the holder disappears without storing one. `current` is the data
    /// version this request read, if it read one: nothing older is served as a HIT.
    pub(super) async fn recompute_once(
        &self,
        id: BundleId,
        key: &str,
        previous: Option<&Entry>,
        mut current: Option<i64>,
    ) -> Result<Served, BundleError> {
        let lease_key = self.keys.recompute_lease(id);
        // A waiter's find that lacks writes this request must see: served only as STALE.
        let mut outdated: Option<Entry> = None;
        loop {
            let previous = previous.or(outdated.as_ref());
            let lease = self
                .redis
                .acquire_lease_reading(&lease_key, self.freshness.lease, key)
                .await;
            match lease {
                Ok((Some(token), found)) => {
                    let holder = Holder {
                        lease_key: &lease_key,
                        token: &token,
                    };
                    return self
                        .compute_as_holder(id, key, previous, current, holder, found)
                        .await;
                }
                Ok((None, _)) => {
                    if let Some(entry) = previous {
                        return Ok(served(entry.clone(), CacheStatus::Stale, key.to_owned()));
                    }
                    tokio::time::sleep(WAIT_POLL + jitter(WAIT_POLL)).await;
                    let found = match self.redis.get(key).await {
                        Ok(bytes) => bytes.as_deref().and_then(Entry::decode),
                        Err(_) => return self.compute_and_store(id, key.to_owned(), Store::No).await,
                    };
                    let Some(entry) = found else { continue };
                    // The holder may have computed from a snapshot older than this request: a HIT
                    // only if it has every write committed before the request began.
                    let version = match current {
                        Some(version) => Ok(version),
                        None => self.current_version(id).await,
                    };
                    match version {
                        Ok(version) if entry.data_version >= version => {
                            return Ok(served(entry, CacheStatus::Hit, key.to_owned()))
                        }
                        Ok(version) => {
                            current = Some(version);
                            outdated = Some(entry);
                        }
                        Err(e) => {
                            tracing::warn!(%key, error = %chain(&e), "version check failed, serving stale entry");
                            return Ok(served(entry, CacheStatus::Stale, key.to_owned()));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(%key, error = %chain(&e), "lease unavailable, recomputing without it");
                    let result = self.compute_and_store(id, key.to_owned(), Store::Yes).await;
                    return stale_if_database_failed(result, previous, key);
                }
            }
        }
    }

    /// The lease holder's part: compute, then store and release the lease in one round trip, unless
    /// another caller stored an entry that may be served instead between our read and our lease
    /// (`found`, read with the lease); serve `previous` if Postgres fails.
    async fn compute_as_holder(
        &self,
        id: BundleId,
        key: &str,
        previous: Option<&Entry>,
        current: Option<i64>,
        holder: Holder<'_>,
        found: Option<Vec<u8>>,
    ) -> Result<Served, BundleError> {
        if let Some(newer) = self.stored_since(id, found, previous, current).await {
            self.release(holder).await;
            return Ok(served(newer, CacheStatus::Hit, key.to_owned()));
        }
        let result = match self.compute(id).await {
            Ok(entry) => {
                let max_age = self.freshness.max_age;
                let stored = self
                    .redis
                    .store_entry_releasing(key, &entry, max_age, holder.lease_key, holder.token)
                    .await;
                let stored = self.kept(key, &entry, stored).await;
                if stored == Stored::No {
                    self.release(holder).await;
                }
                Ok(served(entry, stored.status(), key.to_owned()))
            }
            Err(e) => {
                self.release(holder).await;
                Err(e)
            }
        };
        stale_if_database_failed(result, previous, key)
    }

    async fn release(&self, holder: Holder<'_>) {
        if let Err(e) = self.redis.release_lease(holder.lease_key, holder.token).await {
            let lease_key = holder.lease_key;
            tracing::warn!(%lease_key, error = %chain(&e), "lease release failed; it will expire");
        }
    }

    /// The entry `found` under the key if it may be served as a HIT instead of recomputing: stored
    /// after `previous` (a greater [`Entry::fence`]), computed today, and from at least data version
    /// `current` (read now when this request has not read one; only when such an entry exists).
    async fn stored_since(
        &self,
        id: BundleId,
        found: Option<Vec<u8>>,
        previous: Option<&Entry>,
        current: Option<i64>,
    ) -> Option<Entry> {
        let entry = Entry::decode(&found?)?;
        let newer = previous.is_none_or(|p| entry.fence() > p.fence());
        if !newer || !same_day(&entry, self.clock.now()) {
            return None;
        }
        let current = match current {
            Some(version) => version,
            None => self.current_version(id).await.ok()?,
        };
        (entry.data_version >= current).then_some(entry)
    }

    pub(super) async fn compute_and_store(
        &self,
        id: BundleId,
        key: String,
        store: Store,
    ) -> Result<Served, BundleError> {
        let entry = self.compute(id).await?;
        let stored = match store {
            Store::Yes => self.store(&key, &entry, self.freshness.max_age).await,
            Store::No => Stored::No,
        };
        Ok(served(entry, stored.status(), key))
    }

    /// Computes bundle `id` and stores it to expire after `expire_after`, whatever is cached: what the
    /// warmer does. Returns whether Redis now holds it or a newer entry (one stored while it
    /// computed, which its store does not replace); `false` when Redis was unavailable.
    pub async fn refresh(&self, id: BundleId, expire_after: Duration) -> Result<bool, BundleError> {
        let entry = self.compute(id).await?;
        Ok(self.store(&self.keys.bundle(id), &entry, expire_after).await != Stored::No)
    }

    /// Both whole bundles of `scope` computed in one snapshot ([`query::compute_both`]) and stored
    /// as [`BundleCache::refresh`] stores one, the two stores sent together: what the warmer does for
    /// each tenant. Returns whether Redis now holds each (or a newer entry).
    pub async fn refresh_both(&self, scope: Scope, expire_after: Duration) -> Result<[bool; 2], BundleError> {
        let started = std::time::Instant::now();
        let now = self.clock.now();
        self.recomputes.fetch_add(2, Ordering::Relaxed);
        let ttl = self.freshness.fresh_for.as_secs();
        let [first, second] = query::compute_both(&self.db, scope, now, ttl).await?;
        let [first_id, second_id] = BundleId::both(scope);
        let (first, second) = (entry(first, now)?, entry(second, now)?);
        tracing::debug!(%scope, elapsed_ms = started.elapsed().as_millis() as u64, "both bundles computed");
        let (first_key, second_key) = (self.keys.bundle(first_id), self.keys.bundle(second_id));
        let (first, second) = futures::join!(
            self.store(&first_key, &first, expire_after),
            self.store(&second_key, &second, expire_after)
        );
        Ok([first != Stored::No, second != Stored::No])
    }

    async fn compute(&self, id: BundleId) -> Result<Entry, BundleError> {
        let started = std::time::Instant::now();
        let now = self.clock.now();
        self.recomputes.fetch_add(1, Ordering::Relaxed);
        let computed = query::compute(&self.db, id, now, self.freshness.fresh_for.as_secs()).await?;
        let entry = entry(computed, now)?;
        tracing::debug!(bundle = %id, elapsed_ms = started.elapsed().as_millis() as u64, "bundle computed");
        Ok(entry)
    }

    async fn store(&self, key: &str, entry: &Entry, expire_after: Duration) -> Stored {
        let stored = self.redis.store_entry(key, entry, expire_after).await;
        self.kept(key, entry, stored).await
    }

    /// What a store's answer means, the memory level keeping what Redis kept.
    async fn kept(&self, key: &str, entry: &Entry, stored: Result<bool, crate::store::CacheError>) -> Stored {
        match stored {
            Ok(true) => {
                self.local.keep(key, entry).await;
                Stored::Yes
            }
            Ok(false) => {
                tracing::debug!(%key, "a newer entry was stored meanwhile; keeping it");
                Stored::Superseded
            }
            Err(e) => {
                tracing::warn!(%key, error = %chain(&e), "cache write failed");
                Stored::No
            }
        }
    }
}

/// The recompute lease a caller holds.
#[derive(Clone, Copy)]
struct Holder<'a> {
    lease_key: &'a str,
    token: &'a str,
}

/// The cache entry of a bundle computed at `now`.
fn entry(computed: query::Computed, now: chrono::DateTime<chrono::Utc>) -> Result<Entry, BundleError> {
    Ok(Entry {
        generated_at_ms: now.timestamp_millis(),
        validated_at_ms: now.timestamp_millis(),
        data_version: computed.data_version,
        day_ends_at_ms: computed.zone.day_end(now).timestamp_millis(),
        json: serde_json::to_string(&computed.bundle).map_err(BundleError::Serialize)?,
    })
}

/// `previous` as STALE when a recompute failed because Postgres did; otherwise `result` itself.
fn stale_if_database_failed(
    result: Result<Served, BundleError>,
    previous: Option<&Entry>,
    key: &str,
) -> Result<Served, BundleError> {
    match (result, previous) {
        (Err(BundleError::Database(e)), Some(entry)) => {
            tracing::warn!(%key, error = %chain(&e), "recompute failed, serving stale entry");
            Ok(served(entry.clone(), CacheStatus::Stale, key.to_owned()))
        }
        (result, _) => result,
    }
}

/// Up to `max`, from the clock's sub-millisecond noise: enough to spread waiters apart.
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    Duration::from_nanos(u64::from(nanos) % max.as_nanos().max(1) as u64)
}
