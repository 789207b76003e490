//! The in-memory level in front of Redis: copies of entries this process read from Redis, kept for
//! the most-read bundles so that a hit costs neither a round trip nor a decompression.
//!
//! The guarantee: a copy is served only while Redis itself would serve the entry without a check (the
//! caller's freshness test, which [`crate::serving`] applies on every memory hit), and for at most
//! [`LocalConfig::max_age`] after it was read from Redis. So whatever Redis reflects (a clear, a
//! recompute after a write) is seen by every process within `max_age`.
//!
//! Like Redis, the level never goes backwards: a copy is replaced only by an entry whose
//! [`Entry::fence`] is not less than its own.
//!
//! Bounded by memory: each copy weighs its JSON and key bytes plus a fixed overhead, and the cache
//! evicts (least frequently/recently used, moka's TinyLFU) to stay within `capacity_bytes`.
//! Concurrent reads of one key that is not in memory are coalesced into one Redis read.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::ops::compute::Op;

use super::CacheError;
use super::Entry;
use crate::env::ConfigError;
use crate::env::Env;

/// What one copy costs beyond its key and JSON (the entry's fields, moka's node, the `Arc`s).
const OVERHEAD_BYTES: u32 = 256;

/// `LOCAL_CACHE_MB` and `LOCAL_CACHE_MAX_AGE_MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalConfig {
    /// 0 turns the level off.
    pub capacity_bytes: u64,
    pub max_age: Duration,
}

impl LocalConfig {
    pub const DEFAULT_MB: u64 = 16;
    pub const DEFAULT_MAX_AGE_MS: u64 = 1_000;

    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let mb: u64 = env.parsed("LOCAL_CACHE_MB", Self::DEFAULT_MB)?;
        let capacity_bytes = mb.checked_mul(1 << 20).ok_or(ConfigError::Invalid {
            name: "LOCAL_CACHE_MB",
            reason: format!("{mb} MB is out of range"),
        })?;
        Ok(Self {
            capacity_bytes,
            max_age: env.millis("LOCAL_CACHE_MAX_AGE_MS", Self::DEFAULT_MAX_AGE_MS)?,
        })
    }

    /// The level off: every read goes to Redis.
    pub fn off() -> Self {
        Self {
            capacity_bytes: 0,
            max_age: Duration::ZERO,
        }
    }

    fn enabled(&self) -> bool {
        self.capacity_bytes > 0 && !self.max_age.is_zero()
    }
}

/// One entry as read from Redis, and when.
#[derive(Debug)]
struct Held {
    entry: Entry,
    read_at: Instant,
}

/// Where a read through the level found its entry.
#[derive(Debug)]
pub enum Found {
    /// A copy in memory, inside both bounds.
    Memory(Entry),
    /// Read from Redis now (by this caller or by a concurrent one for the same key): the entry, if
    /// any, and whether it was servable without a check (only then is it kept in memory).
    Redis(Option<Entry>),
}

/// Why a coalesced Redis read kept nothing; shared by every caller that waited on it.
#[derive(Debug, thiserror::Error)]
enum NotKept {
    #[error("no servable entry")]
    NotServable(Option<Entry>),
    #[error(transparent)]
    Redis(#[from] CacheError),
}

#[derive(Clone)]
pub struct LocalLevel {
    cache: Option<Cache<String, Arc<Held>>>,
    max_age: Duration,
}

impl LocalLevel {
    pub fn new(config: LocalConfig) -> Self {
        let cache = config.enabled().then(|| {
            Cache::builder()
                .max_capacity(config.capacity_bytes)
                .weigher(|key: &String, copy: &Arc<Held>| {
                    let bytes = key.len().saturating_add(copy.entry.json.len());
                    u32::try_from(bytes)
                        .unwrap_or(u32::MAX)
                        .saturating_add(OVERHEAD_BYTES)
                })
                // Memory is given back once a copy can no longer be served; reads check the bound
                // themselves too (moka's expiry is not exact to the millisecond).
                .time_to_live(config.max_age)
                .build()
        });
        Self {
            cache,
            max_age: config.max_age,
        }
    }

    pub fn off() -> Self {
        Self::new(LocalConfig::off())
    }

    pub fn is_enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// The entry under `key`: from memory when a copy is inside `max_age` and `servable` accepts it,
    /// otherwise from Redis by `fetch` (one fetch for all concurrent callers of this key), keeping the
    /// result in memory when `servable` accepts it. With the level off, `fetch` alone.
    pub async fn read(
        &self,
        key: &str,
        fetch: impl Future<Output = Result<Option<Vec<u8>>, CacheError>>,
        servable: impl Fn(&Entry) -> bool,
    ) -> Result<Found, CacheError> {
        let Some(cache) = &self.cache else {
            return Ok(Found::Redis(decode(fetch.await?, key)));
        };
        if let Some(copy) = cache.get(key).await {
            if copy.read_at.elapsed() < self.max_age && servable(&copy.entry) {
                return Ok(Found::Memory(copy.entry.clone()));
            }
            cache.invalidate(key).await;
        }
        let read = cache
            .try_get_with_by_ref(key, async {
                let entry = decode(fetch.await?, key);
                match entry {
                    Some(entry) if servable(&entry) => Ok(Arc::new(Held {
                        entry,
                        read_at: Instant::now(),
                    })),
                    other => Err(NotKept::NotServable(other)),
                }
            })
            .await;
        match read {
            Ok(copy) => Ok(Found::Redis(Some(copy.entry.clone()))),
            Err(not_kept) => match &*not_kept {
                NotKept::NotServable(entry) => Ok(Found::Redis(entry.clone())),
                NotKept::Redis(_) => Err(CacheError::Shared(not_kept.clone())),
            },
        }
    }

    /// Keeps `entry`, just written to Redis (or revalidated there) by this process, in place of any
    /// older copy of `key`: what Redis now serves is what memory serves. A copy with a greater
    /// [`Entry::fence`] (one read from Redis after another process stored a newer entry) stays.
    pub async fn keep(&self, key: &str, entry: &Entry) {
        let Some(cache) = &self.cache else { return };
        cache
            .entry_by_ref(key)
            .and_compute_with(|held| {
                let op = match held {
                    Some(held) if held.value().entry.fence() > entry.fence() => Op::Nop,
                    _ => Op::Put(Arc::new(Held {
                        entry: entry.clone(),
                        read_at: Instant::now(),
                    })),
                };
                std::future::ready(op)
            })
            .await;
    }

    /// Bytes held now (after moka's pending evictions have run).
    pub async fn weighted_size(&self) -> u64 {
        match &self.cache {
            Some(cache) => {
                cache.run_pending_tasks().await;
                cache.weighted_size()
            }
            None => 0,
        }
    }

    /// Copies held now (after moka's pending evictions have run).
    pub async fn entry_count(&self) -> u64 {
        match &self.cache {
            Some(cache) => {
                cache.run_pending_tasks().await;
                cache.entry_count()
            }
            None => 0,
        }
    }
}

/// A stored entry, or `None` (logged) when the bytes are not one.
pub(crate) fn decode(bytes: Option<Vec<u8>>, key: &str) -> Option<Entry> {
    let entry = Entry::decode(&bytes?);
    if entry.is_none() {
        tracing::warn!(%key, "unreadable cache entry, recomputing");
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(data_version: i64, generated_at_ms: i64, json: &str) -> Entry {
        Entry {
            generated_at_ms,
            validated_at_ms: generated_at_ms,
            data_version,
            day_ends_at_ms: i64::MAX,
            json: json.to_owned(),
        }
    }

    async fn served(level: &LocalLevel, key: &str) -> Option<String> {
        let fetch = async { Err(CacheError::CoolingDown) };
        match level.read(key, fetch, |_| true).await {
            Ok(Found::Memory(entry)) => Some(entry.json),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_copy_is_never_replaced_by_an_older_entry() {
        let level = LocalLevel::new(LocalConfig {
            capacity_bytes: 1 << 20,
            max_age: Duration::from_secs(60),
        });
        level.keep("k", &entry(2, 100, "v2")).await;
        level
            .keep("k", &entry(1, 200, "older version, computed later"))
            .await;
        level
            .keep("k", &entry(2, 50, "same version, computed earlier"))
            .await;
        assert_eq!(served(&level, "k").await.as_deref(), Some("v2"));

        let mut revalidated = entry(2, 100, "v2 revalidated");
        revalidated.validated_at_ms = 300;
        level.keep("k", &revalidated).await;
        assert_eq!(served(&level, "k").await.as_deref(), Some("v2 revalidated"));
        level.keep("k", &entry(3, 10, "v3")).await;
        assert_eq!(served(&level, "k").await.as_deref(), Some("v3"));
    }
}
