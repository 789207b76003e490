//! What the product asks of Redis, as named commands over the transport of [`super::connection`]:
//! reading a bundle entry (and recording the read beside it), storing one unless a newer one is
//! there, marking one revalidated (the scripts live with the entry's byte offsets in
//! [`super::entry`]), the recompute lease, the read histories, expiries and deletes.

use std::sync::LazyLock;
use std::time::Duration;

use redis::AsyncCommands;

use crate::store::connection::{Connection, RedisCache};
use crate::store::entry::{
    Entry, DATA_VERSION_OFFSET, MAGIC, MARK_VALIDATED, STORE_AND_RELEASE, STORE_UNLESS_NEWER,
    VALIDATED_AT_OFFSET,
};
use crate::store::CacheError;

/// A read to record beside a `GET`: `fields` of `hash` (set to 1), which is kept `keep_for` after the
/// last one.
#[derive(Debug, Clone)]
pub struct Recording<'a> {
    pub hash: &'a str,
    pub fields: &'a [&'a str],
    pub keep_for: Duration,
}

impl RedisCache {
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.run(|mut c| async move { c.get(key).await }).await
    }

    /// `GET key` and, in the same round trip, `HSET hash field 1 ...` + `EXPIRE hash` (a read recorded
    /// at no cost to the hit path): one pipeline on a standalone server; in a cluster, where the two
    /// keys live in different slots, the commands are sent at once rather than one after the other.
    /// Every command is idempotent, so the retry after a closed connection stays harmless. Also says
    /// whether the read was recorded: a refused `HSET` (a full `noeviction` server) does not fail the
    /// `GET`.
    pub async fn get_recording(
        &self,
        key: &str,
        record: &Recording<'_>,
    ) -> Result<(Option<Vec<u8>>, bool), CacheError> {
        let seconds = record.keep_for.as_secs().max(1) as i64;
        // `HSET hash f1 1 f2 1 ...` (HMSET's reply is not a count).
        let fields: Vec<(&str, i64)> = record.fields.iter().map(|f| (*f, 1)).collect();
        let fields = &fields;
        self.run(|c| async move {
            match c {
                Connection::Standalone(mut c) => {
                    // Each reply on its own: a refused HSET (a full `noeviction` server) must not
                    // fail the GET, as in the cluster branch.
                    type Reply<T> = redis::RedisResult<T>;
                    let (value, recorded, _): (Reply<Option<Vec<u8>>>, Reply<i64>, Reply<i64>) =
                        redis::pipe()
                            .get(key)
                            .cmd("HSET")
                            .arg(record.hash)
                            .arg(fields)
                            .expire(record.hash, seconds)
                            .ignore_errors()
                            .query_async(&mut c)
                            .await?;
                    if let Err(e) = &recorded {
                        tracing::debug!(error = %e, "read not recorded");
                    }
                    Ok((value?, recorded.is_ok()))
                }
                Connection::Cluster(c) => {
                    let (mut a, mut b) = (c.clone(), c);
                    let get = async move { a.get::<_, Option<Vec<u8>>>(key).await };
                    let put = async move {
                        redis::pipe()
                            .cmd("HSET")
                            .arg(record.hash)
                            .arg(fields)
                            .ignore()
                            .expire(record.hash, seconds)
                            .ignore()
                            .query_async::<()>(&mut b)
                            .await
                    };
                    let (value, recorded) = futures::join!(get, put);
                    if let Err(e) = &recorded {
                        tracing::debug!(error = %e, "read not recorded");
                    }
                    Ok((value?, recorded.is_ok()))
                }
            }
        })
        .await
    }

    /// Every field of each hash in `keys` (empty for a missing key), pipelined on a standalone server,
    /// sent at once in a cluster.
    pub async fn hash_fields(&self, keys: &[String]) -> Result<Vec<Vec<String>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.run(|c| async move {
            match c {
                Connection::Standalone(mut c) => {
                    let mut pipe = redis::pipe();
                    for key in keys {
                        pipe.hkeys(key);
                    }
                    pipe.query_async(&mut c).await
                }
                Connection::Cluster(c) => {
                    let each = keys.iter().map(|key| {
                        let mut c = c.clone();
                        async move { c.hkeys::<_, Vec<String>>(key).await }
                    });
                    futures::future::try_join_all(each).await
                }
            }
        })
        .await
    }

    /// Deletes `fields` of hash `key`.
    pub async fn hash_delete(&self, key: &str, fields: &[String]) -> Result<(), CacheError> {
        if fields.is_empty() {
            return Ok(());
        }
        self.run(|mut c| async move { c.hdel::<_, _, ()>(key, fields).await })
            .await
    }

    /// Sets `key` to `value` (no expiry) unless it exists; returns the value now stored.
    pub async fn set_once(&self, key: &str, value: &str) -> Result<String, CacheError> {
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .get(true);
        let found: Option<String> = self
            .run(|mut c| {
                let options = options.clone();
                async move { c.set_options(key, value, options).await }
            })
            .await?;
        Ok(found.unwrap_or_else(|| value.to_owned()))
    }

    /// Stores `value` under `key`; Redis deletes it after `expire_after`.
    pub async fn set(&self, key: &str, value: &[u8], expire_after: Duration) -> Result<(), CacheError> {
        let ms = expire_after.as_millis().max(1) as u64;
        self.run(|mut c| async move { c.pset_ex(key, value, ms).await })
            .await
    }

    /// Stores `entry` under `key`, Redis deleting it after `expire_after`, unless `key` holds a newer
    /// entry (see [`STORE_UNLESS_NEWER`]); returns whether it was stored. One round trip, and safe to
    /// retry: a second attempt of the same store finds an equal entry and stores again.
    pub async fn store_entry(
        &self,
        key: &str,
        entry: &Entry,
        expire_after: Duration,
    ) -> Result<bool, CacheError> {
        self.store(key, entry, expire_after, None).await
    }

    /// How long until Redis deletes `key`; `None` when it does not exist or never expires.
    pub async fn expires_in(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let ms: i64 = self.run(|mut c| async move { c.pttl(key).await }).await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    /// Deletes `keys` (non-blocking on the server) and returns how many existed. In a cluster the
    /// client splits the command by slot and sums the counts.
    pub async fn unlink(&self, keys: &[String]) -> Result<u64, CacheError> {
        if keys.is_empty() {
            return Ok(0);
        }
        self.run(|mut c| async move { c.unlink(keys).await }).await
    }

    /// Marks the entry under `key` as found current at `at_ms`, in place and keeping its expiry, but
    /// only if it is still an entry of this format computed from `data_version`: a revalidation must
    /// never mark an entry that another caller replaced meanwhile. Does nothing if the key is gone (a
    /// plain SETRANGE would create it, zero-padded and without an expiry).
    pub async fn mark_validated(&self, key: &str, data_version: i64, at_ms: i64) -> Result<bool, CacheError> {
        let version = data_version.to_be_bytes();
        let stamp = at_ms.to_be_bytes();
        let marked: i64 = self
            .run(|mut c| async move {
                MARK_VALIDATED
                    .key(key)
                    .arg(MAGIC.len())
                    .arg(&MAGIC[..])
                    .arg(DATA_VERSION_OFFSET)
                    .arg(&version[..])
                    .arg(VALIDATED_AT_OFFSET)
                    .arg(&stamp[..])
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(marked == 1)
    }

    /// Takes the lease `key` for `lifetime` if nobody holds it, and reads `value_key` after it, in one
    /// round trip (the two keys share a slot, see [`crate::store::keys::Keys::recompute_lease`]);
    /// returns the token that releases the lease, if taken, and what `value_key` held then. `SET NX
    /// GET` returns the value it found: our own token means an earlier attempt of this very call
    /// succeeded and only its reply was lost, so the lease is ours.
    pub async fn acquire_lease_reading(
        &self,
        key: &str,
        lifetime: Duration,
        value_key: &str,
    ) -> Result<(Option<String>, Option<Vec<u8>>), CacheError> {
        let token = uuid::Uuid::new_v4().to_string();
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .get(true)
            .with_expiration(redis::SetExpiry::PX(lifetime.as_millis().max(1) as u64));
        let (found, value): (Option<String>, Option<Vec<u8>>) = self
            .run(|mut c| {
                let (token, options) = (&token, options.clone());
                async move {
                    redis::pipe()
                        .set_options(key, token, options)
                        .get(value_key)
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        let lease = match found {
            None => Some(token),
            Some(holder) if holder == token => Some(token),
            Some(_) => None,
        };
        Ok((lease, value))
    }

    /// [`RedisCache::store_entry`], then the lease `lease_key` released if `token` still holds it:
    /// one round trip (see [`STORE_AND_RELEASE`]); returns whether the entry was stored.
    pub async fn store_entry_releasing(
        &self,
        key: &str,
        entry: &Entry,
        expire_after: Duration,
        lease_key: &str,
        token: &str,
    ) -> Result<bool, CacheError> {
        self.store(key, entry, expire_after, Some((lease_key, token)))
            .await
    }

    /// The store of [`RedisCache::store_entry`], releasing `lease` (its key and token) in the same
    /// script when given.
    async fn store(
        &self,
        key: &str,
        entry: &Entry,
        expire_after: Duration,
        lease: Option<(&str, &str)>,
    ) -> Result<bool, CacheError> {
        let ms = expire_after.as_millis().max(1) as u64;
        let bytes = entry.encode();
        let stored: i64 = self
            .run(|mut c| {
                let bytes = &bytes;
                async move {
                    let mut script = match lease {
                        None => STORE_UNLESS_NEWER.key(key),
                        Some(_) => STORE_AND_RELEASE.key(key),
                    };
                    script.arg(&bytes[..]).arg(ms);
                    if let Some((lease_key, token)) = lease {
                        script.key(lease_key).arg(token);
                    }
                    script.invoke_async(&mut c).await
                }
            })
            .await?;
        Ok(stored == 1)
    }

    /// Releases the lease `key` if `token` still holds it (it may have expired and been retaken).
    pub async fn release_lease(&self, key: &str, token: &str) -> Result<(), CacheError> {
        static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
            redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            )
        });
        self.run(|mut c| async move { RELEASE.key(key).arg(token).invoke_async::<i64>(&mut c).await })
            .await
            .map(drop)
    }
}
