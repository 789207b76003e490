//! Serving a bundle through Redis: the one code path of the dashboard function and the warmer, so a
//! warmed entry has the same key and bytes as one computed on request.
//!
//! Freshness: an entry is served as is for `fresh_for` after it was computed or last revalidated, on
//! the day it was computed: the tenant's local day (its `tenant.timezone`; UTC without one and for the
//! global view), the day its 30-day figures count in, which the entry carries as `day_ends_at`. After that, one primary-key read
//! compares the data version it was computed from with the current one; unchanged, it is served again
//! and marked revalidated. Otherwise one caller, holding a short Redis lease, recomputes while the
//! others serve the previous entry (`STALE`) or, for a key with no entry, wait for the holder's value
//! (taking the lease themselves if the holder disappears). Postgres failing, or the request's deadline
//! passing, while an entry exists serves that entry (`STALE`).
//!
//! Stores never go backwards: Redis refuses an entry older, by (data version, generated_at), than the
//! one it holds (see [`crate::store::entry`]), so a slow writer cannot put back data a user has seen
//! replaced. And an entry found after this request read the data version is a `HIT` only if it was
//! computed from at least that version: outside the freshness window, a `HIT` has every write
//! committed before the request.
//!
//! In the dashboard function a cached read first looks in the process's in-memory level
//! ([`LocalLevel`]): a copy read from Redis at most `LOCAL_CACHE_MAX_AGE_MS` ago that is still inside
//! the window above is served from there (`HIT`, level memory) with no Redis round trip.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::bundle::identity::BundleId;
use crate::bundle::version;
use crate::bundle::BundleError;
use crate::env::{chain, ConfigError, Env};
use crate::platform::clock::Clock;
use crate::platform::db::Database;
use crate::store::keys::Keys;
use crate::store::read_history::{self, RecordedThisHour};
use crate::store::CacheError;
use crate::store::{local, Entry, Found, LocalLevel, Recording, RedisCache};

mod recompute;
mod warming;

use recompute::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from Redis, fresh or revalidated.
    Hit,
    /// Computed from Postgres and stored (or not, because a newer entry was stored meanwhile).
    Miss,
    /// Computed from Postgres; Redis was unavailable, so nothing was read or stored.
    Bypass,
    /// An older entry, served while another caller recomputes, while Postgres is unavailable, or
    /// because the request's deadline passed before a newer one was ready.
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

/// How a request reads its bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Within the freshness window, whatever is cached.
    Cached,
    /// `bust_cache=true`: check the data version now, whatever the window says, and recompute through
    /// the lease (so concurrent busts coalesce), at most once per `bust_interval` for unchanged data.
    Bust,
}

/// Which level a bundle's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// This process's in-memory level (always a `HIT`).
    Memory,
    Redis,
    /// Computed by this request (`MISS`, `BYPASS`).
    Postgres,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Memory => "memory",
            Level::Redis => "redis",
            Level::Postgres => "postgres",
        }
    }
}

/// A bundle as served: its JSON and where it came from.
#[derive(Debug)]
pub struct Served {
    pub json: String,
    pub status: CacheStatus,
    pub level: Level,
    pub key: String,
}

/// Freshness and lifetime settings of cached entries.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// Served without any check for this long after computation or revalidation.
    pub fresh_for: Duration,
    /// Redis expiry of an entry computed on request.
    pub max_age: Duration,
    /// Lifetime of the recompute lease.
    pub lease: Duration,
    /// A bust of unchanged data recomputes only when the entry is older than this.
    pub bust_interval: Duration,
}

impl Freshness {
    /// `BUNDLE_TTL_SECONDS`, `BUNDLE_MAX_AGE_SECONDS`, `BUNDLE_LEASE_MS`, `BUST_INTERVAL_MS`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            fresh_for: Duration::from_secs(env.parsed("BUNDLE_TTL_SECONDS", 300)?),
            max_age: Duration::from_secs(env.parsed("BUNDLE_MAX_AGE_SECONDS", 25 * 3600)?),
            lease: env.millis("BUNDLE_LEASE_MS", 5_000)?,
            bust_interval: env.millis("BUST_INTERVAL_MS", 10_000)?,
        })
    }
}

/// Building a function's clients at cold start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid DATABASE_URL")]
    Database(#[from] sqlx::Error),
    #[error("invalid redis settings")]
    Cache(#[from] CacheError),
}

pub struct BundleCache {
    db: Database,
    redis: RedisCache,
    keys: Keys,
    freshness: Freshness,
    clock: Clock,
    local: LocalLevel,
    recomputes: AtomicU64,
    recorded: RecordedThisHour,
}

impl BundleCache {
    /// Without an in-memory level: every read goes to Redis.
    pub fn new(db: Database, redis: RedisCache, keys: Keys, freshness: Freshness, clock: Clock) -> Self {
        Self {
            db,
            redis,
            keys,
            freshness,
            clock,
            local: LocalLevel::off(),
            recomputes: AtomicU64::new(0),
            recorded: RecordedThisHour::default(),
        }
    }

    /// Serves `Read::Cached` requests from `local` while its bounds and the freshness window allow.
    pub fn with_local_level(mut self, local: LocalLevel) -> Self {
        self.local = local;
        self
    }

    pub fn local(&self) -> &LocalLevel {
        &self.local
    }

    /// The Redis behind this cache: for the health check and for tests that inspect what is stored.
    pub fn redis(&self) -> &RedisCache {
        &self.redis
    }

    /// The key scheme in use: for tests and the benchmark, which look at what is stored.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// How many bundles this instance has computed from Postgres.
    pub fn recomputes(&self) -> u64 {
        self.recomputes.load(Ordering::Relaxed)
    }

    /// The bundle `id`, as fresh as the configured window allows, answered by `deadline`. Fails only
    /// when Postgres must be asked and cannot answer in time, and no older entry exists.
    pub async fn get_bundle(
        &self,
        id: BundleId,
        read: Read,
        deadline: Instant,
    ) -> Result<Served, BundleError> {
        let key = self.keys.bundle(id);
        let now = self.clock.now();
        let cached = tokio::time::timeout_at(deadline, self.read(id, &key, read, now))
            .await
            .map_err(|_| BundleError::DeadlineExceeded)?;
        let entry = match cached {
            Ok(Found::Memory(entry)) => {
                return Ok(Served {
                    level: Level::Memory,
                    ..served(entry, CacheStatus::Hit, key)
                })
            }
            Ok(Found::Redis(entry)) => entry,
            Err(e) => {
                tracing::warn!(%key, error = %chain(&e), "cache read failed, bypassing cache");
                let computed = tokio::time::timeout_at(deadline, self.compute_and_store(id, key, Store::No));
                return computed.await.unwrap_or(Err(BundleError::DeadlineExceeded));
            }
        };
        match entry {
            Some(entry) if read == Read::Cached && self.is_fresh(&entry, now) => {
                Ok(served(entry, CacheStatus::Hit, key))
            }
            entry => {
                let checked =
                    tokio::time::timeout_at(deadline, self.check(id, &key, entry.as_ref(), read, now));
                match (checked.await, entry) {
                    (Ok(result), _) => result,
                    (Err(_), Some(entry)) => {
                        tracing::warn!(%key, "request deadline passed, serving the cached entry");
                        Ok(served(entry, CacheStatus::Stale, key))
                    }
                    (Err(_), None) => Err(BundleError::DeadlineExceeded),
                }
            }
        }
    }

    /// The entry under `key`: through the in-memory level for a cached read, from Redis for a bust.
    /// A read that reaches Redis records the tenant's read in the same round trip; a memory hit
    /// records nothing (its process read Redis, and recorded, less than `LOCAL_CACHE_MAX_AGE_MS` ago).
    async fn read(
        &self,
        id: BundleId,
        key: &str,
        read: Read,
        now: DateTime<Utc>,
    ) -> Result<Found, crate::store::CacheError> {
        let fetch = self.read_and_record(id, key, now);
        match read {
            Read::Cached => self.local.read(key, fetch, |e| self.is_fresh(e, now)).await,
            Read::Bust => Ok(Found::Redis(local::decode(fetch.await?, key))),
        }
    }

    /// The entry under `key`, recording a tenant's read in the same round trip the first time this
    /// process reads the bundle in an hour (see [`crate::store::read_history`]): the hour, and for a
    /// scoped bundle also its day and spec. The global view's reads are not recorded.
    async fn read_and_record(
        &self,
        id: BundleId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, crate::store::CacheError> {
        let Some(tenant) = id
            .scope
            .tenant_id()
            .filter(|_| self.recorded.needs_recording(id, now))
        else {
            return self.redis.get(key).await;
        };
        let hash = self.keys.tenant_reads(tenant);
        let hour = read_history::field(now);
        let scope = id.is_scoped().then(|| read_history::scope_field(now, &id.spec()));
        let fields: Vec<&str> = [Some(hour.as_str()), scope.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let recording = Recording {
            hash: &hash,
            fields: &fields,
            keep_for: read_history::KEEP_FOR,
        };
        let (value, recorded) = self.redis.get_recording(key, &recording).await?;
        if recorded {
            self.recorded.recorded(id, now);
        }
        Ok(value)
    }

    /// Within the freshness window and on the (tenant-local) day it was computed.
    fn is_fresh(&self, entry: &Entry, now: DateTime<Utc>) -> bool {
        // Stamped ahead of this clock (another environment's runs fast), an entry is of age zero, not
        // younger: with `BUNDLE_TTL_SECONDS=0` it is checked like any other.
        let age_ms = (now.timestamp_millis() - entry.validated_at_ms).max(0);
        age_ms < self.freshness.fresh_for.as_millis() as i64 && same_day(entry, now)
    }

    /// An entry past its window (or a bust, or no entry): compare versions, then serve or recompute.
    async fn check(
        &self,
        id: BundleId,
        key: &str,
        entry: Option<&Entry>,
        read: Read,
        now: DateTime<Utc>,
    ) -> Result<Served, BundleError> {
        let Some(entry) = entry else {
            return self.recompute_once(id, key, None, None).await;
        };
        if !same_day(entry, now) {
            return self.recompute_once(id, key, Some(entry), None).await;
        }
        match self.current_version(id).await {
            // The entry was read before the version, so it cannot be of a later version unless the
            // versions went back (the database restored from a backup): only an equal one is current.
            Ok(current) if entry.data_version == current => {
                let age_ms = now.timestamp_millis() - entry.generated_at_ms;
                if read == Read::Bust && age_ms >= self.freshness.bust_interval.as_millis() as i64 {
                    return self.recompute_once(id, key, Some(entry), Some(current)).await;
                }
                let stamp = now.timestamp_millis();
                match self.redis.mark_validated(key, entry.data_version, stamp).await {
                    Ok(true) => {
                        let revalidated = Entry {
                            validated_at_ms: stamp,
                            ..entry.clone()
                        };
                        self.local.keep(key, &revalidated).await;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(%key, error = %chain(&e), "could not mark entry revalidated"),
                }
                Ok(served(entry.clone(), CacheStatus::Hit, key.to_owned()))
            }
            Ok(current) => self.recompute_once(id, key, Some(entry), Some(current)).await,
            Err(e) => {
                tracing::warn!(%key, error = %chain(&e), "version check failed, serving stale entry");
                Ok(served(entry.clone(), CacheStatus::Stale, key.to_owned()))
            }
        }
    }

    /// The data version of `id` now, in a transaction of its own: one round trip.
    async fn current_version(&self, id: BundleId) -> Result<i64, sqlx::Error> {
        let results = self.db.read(&[version::current_sql(id.scope)]).await?;
        let row = results
            .first()
            .and_then(|rows| rows.first())
            .ok_or(sqlx::Error::RowNotFound)?;
        sqlx::Row::try_get(row, 0)
    }
}

fn served(entry: Entry, status: CacheStatus, key: String) -> Served {
    let level = match status {
        CacheStatus::Hit | CacheStatus::Stale => Level::Redis,
        CacheStatus::Miss | CacheStatus::Bypass => Level::Postgres,
    };
    Served {
        json: entry.json,
        status,
        level,
        key,
    }
}

/// Still the day `entry` was computed on: its figures' 30-day window has not moved.
/// Only the end counts: another environment's clock running a little ahead makes its entries look
/// computed "in the future", which must not make them yesterday's.
fn same_day(entry: &Entry, now: DateTime<Utc>) -> bool {
    now.timestamp_millis() < entry.day_ends_at_ms
}
