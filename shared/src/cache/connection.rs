//! Reaching Redis: one lazily opened multiplexed connection per process (standalone, or the cluster
//! protocol that ElastiCache Serverless requires), explicit connect and response timeouts, and a
//! short cool-down after a failed connect so that a sick Redis costs each request one bounded wait.
//!
//! A connection whose state is unknown is never reused: a closed socket is replaced at once (and the
//! command tried once more), and a command that times out retires its connection, since a silently
//! dropped flow (a NAT or load balancer forgetting it, a wedged server) never recovers by itself.
//! The next command opens a new one.
//!
//! Every error here means "the cache is unavailable"; callers serve without it, never fail because of it.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncCommands, AsyncConnectionConfig, Client, Cmd, ErrorKind, Pipeline, RedisFuture, RedisResult, Value,
};

use crate::cache::entry::{Entry, DATA_VERSION_OFFSET, MAGIC, STORE_UNLESS_NEWER, VALIDATED_AT_OFFSET};
use crate::config::RedisConfig;
use crate::error::CacheError;

/// After a failed connect, requests skip Redis for this long instead of each waiting for a timeout.
const CONNECT_COOLDOWN: Duration = Duration::from_millis(500);
/// Keys asked for per SCAN step and deleted per UNLINK during a namespace clear.
pub const SCAN_BATCH: usize = 1_000;

/// A read to record beside a `GET`: `field` of `hash`, which is kept `keep_for` after the last one.
#[derive(Debug, Clone)]
pub struct Recording<'a> {
    pub hash: &'a str,
    pub field: &'a str,
    pub keep_for: Duration,
}

/// How the process reaches Redis.
enum Backend {
    Standalone {
        client: Client,
        config: AsyncConnectionConfig,
    },
    Cluster(ClusterClient),
}

/// A connection to either kind of server; cheap to clone, shared by every request.
#[derive(Clone)]
pub enum Connection {
    Standalone(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Standalone(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Standalone(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Standalone(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// The process's way to Redis; shared by every request.
pub struct RedisCache {
    backend: Backend,
    /// The current connection and its generation number, so that a request retires only the
    /// connection it used, never a newer one another request has already opened.
    connection: Mutex<Option<(u64, Connection)>>,
    generation: AtomicU64,
    /// Held while connecting, so a burst of requests opens one connection; holds the last failure time.
    connect_gate: tokio::sync::Mutex<Option<Instant>>,
    connect_timeout: Duration,
}

impl RedisCache {
    /// Builds the client without any I/O: the first command connects.
    pub fn new(config: &RedisConfig) -> Result<Self, CacheError> {
        let root_cert = match &config.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                CacheError::Config(format!("cannot read REDIS_CA_FILE {}: {e}", path.display()))
            })?),
            None => None,
        };
        let certificates = |root_cert| redis::TlsCertificates {
            client_tls: None,
            root_cert,
        };
        let backend = if config.cluster {
            let mut builder = ClusterClientBuilder::new(vec![config.url.as_str()])
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.response_timeout)
                // Fail fast rather than retry for seconds: the caller serves without the cache.
                .retries(1)
                .overall_response_timeout(Some(config.response_timeout * 3));
            if root_cert.is_some() {
                builder = builder.certs(certificates(root_cert));
            }
            Backend::Cluster(builder.build()?)
        } else {
            let client = match root_cert {
                Some(_) => Client::build_with_tls(config.url.as_str(), certificates(root_cert))?,
                None => Client::open(config.url.as_str())?,
            };
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.response_timeout));
            Backend::Standalone { client, config }
        };
        Ok(Self {
            backend,
            connection: Mutex::new(None),
            generation: AtomicU64::new(0),
            connect_gate: tokio::sync::Mutex::new(None),
            connect_timeout: config.connect_timeout,
        })
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.run(|mut c| async move { c.get(key).await }).await
    }

    /// `GET key` and, in the same round trip, `HSET hash field 1` + `EXPIRE hash` (a read recorded
    /// at no cost to the hit path): one pipeline on a standalone server; in a cluster, where the two
    /// keys live in different slots, the commands are sent at once rather than one after the other.
    /// Every command is idempotent, so the retry after a closed connection stays harmless.
    pub async fn get_recording(
        &self,
        key: &str,
        record: &Recording<'_>,
    ) -> Result<Option<Vec<u8>>, CacheError> {
        let seconds = record.keep_for.as_secs().max(1) as i64;
        self.run(|c| async move {
            match c {
                Connection::Standalone(mut c) => {
                    // Each reply on its own: a refused HSET (a full `noeviction` server) must not
                    // fail the GET, as in the cluster branch.
                    type Reply<T> = redis::RedisResult<T>;
                    let (value, recorded, _): (Reply<Option<Vec<u8>>>, Reply<i64>, Reply<i64>) =
                        redis::pipe()
                            .get(key)
                            .hset(record.hash, record.field, 1)
                            .expire(record.hash, seconds)
                            .ignore_errors()
                            .query_async(&mut c)
                            .await?;
                    if let Err(e) = recorded {
                        tracing::debug!(error = %e, "read not recorded");
                    }
                    value
                }
                Connection::Cluster(c) => {
                    let (mut a, mut b) = (c.clone(), c);
                    let get = async move { a.get::<_, Option<Vec<u8>>>(key).await };
                    let put = async move {
                        redis::pipe()
                            .hset(record.hash, record.field, 1)
                            .ignore()
                            .expire(record.hash, seconds)
                            .ignore()
                            .query_async::<()>(&mut b)
                            .await
                    };
                    let (value, recorded) = futures::join!(get, put);
                    if let Err(e) = recorded {
                        tracing::debug!(error = %e, "read not recorded");
                    }
                    value
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
        let ms = expire_after.as_millis().max(1) as u64;
        let bytes = entry.encode();
        let stored: i64 = self
            .run(|mut c| {
                let bytes = &bytes;
                async move {
                    STORE_UNLESS_NEWER
                        .key(key)
                        .arg(&bytes[..])
                        .arg(ms)
                        .invoke_async(&mut c)
                        .await
                }
            })
            .await?;
        Ok(stored == 1)
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

    /// Deletes every key matching `pattern`, walking the keyspace with SCAN (never KEYS) in batches on
    /// every primary. Returns the exact number of keys deleted.
    pub async fn unlink_matching(&self, pattern: &str) -> Result<u64, CacheError> {
        let mut deleted = 0;
        for node in self.primaries().await? {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) =
                    self.run(|c| scan_step(c, node.clone(), cursor, pattern)).await?;
                deleted += self.unlink(&keys).await?;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(deleted)
    }

    /// What to SCAN: `[None]` (the one server) when standalone; in a cluster every primary's address,
    /// since a SCAN through a cluster connection reaches only one node.
    async fn primaries(&self) -> Result<Vec<Option<(String, u16)>>, CacheError> {
        if matches!(self.backend, Backend::Standalone { .. }) {
            return Ok(vec![None]);
        }
        let slots: Value = self
            .run(|mut c| async move { redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut c).await })
            .await?;
        // CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]
        let mut primaries = BTreeSet::new();
        if let Value::Array(ranges) = slots {
            for range in ranges {
                let Value::Array(fields) = range else { continue };
                let Some(Value::Array(primary)) = fields.get(2) else {
                    continue;
                };
                let host = primary
                    .first()
                    .and_then(|v| redis::from_redis_value_ref::<String>(v).ok());
                let port = primary
                    .get(1)
                    .and_then(|v| redis::from_redis_value_ref::<u16>(v).ok());
                if let (Some(host), Some(port)) = (host, port) {
                    primaries.insert((host, port));
                }
            }
        }
        if primaries.is_empty() {
            return Err(CacheError::Config("CLUSTER SLOTS listed no primaries".to_owned()));
        }
        Ok(primaries.into_iter().map(Some).collect())
    }

    /// Marks the entry under `key` as found current at `at_ms`, in place and keeping its expiry, but
    /// only if it is still an entry of this format computed from `data_version`: a revalidation must
    /// never mark an entry that another caller replaced meanwhile. Does nothing if the key is gone (a
    /// plain SETRANGE would create it, zero-padded and without an expiry).
    pub async fn mark_validated(&self, key: &str, data_version: i64, at_ms: i64) -> Result<bool, CacheError> {
        static MARK_VALIDATED: LazyLock<redis::Script> = LazyLock::new(|| {
            redis::Script::new(
                "if redis.call('GETRANGE', KEYS[1], 0, ARGV[1] - 1) == ARGV[2]
                    and redis.call('GETRANGE', KEYS[1], ARGV[3], ARGV[3] + 7) == ARGV[4] then
                   redis.call('SETRANGE', KEYS[1], ARGV[5], ARGV[6])
                   return 1
                 end
                 return 0",
            )
        });
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

    /// Takes the lease `key` for `lifetime` if nobody holds it; returns the token that releases it.
    /// `SET NX GET` returns the value it found: our own token means an earlier attempt of this very
    /// call succeeded and only its reply was lost, so the lease is ours.
    pub async fn acquire_lease(&self, key: &str, lifetime: Duration) -> Result<Option<String>, CacheError> {
        let token = uuid::Uuid::new_v4().to_string();
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .get(true)
            .with_expiration(redis::SetExpiry::PX(lifetime.as_millis().max(1) as u64));
        let found: Option<String> = self
            .run(|mut c| {
                let (token, options) = (&token, options.clone());
                async move { c.set_options(key, token, options).await }
            })
            .await?;
        Ok(match found {
            None => Some(token),
            Some(holder) if holder == token => Some(token),
            Some(_) => None,
        })
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

    /// Round trip to the server.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }

    /// Runs `op` on the shared connection. A closed connection (a server-side disconnect, a socket
    /// that died while the Lambda environment was frozen) is replaced and `op` runs once more; any other
    /// failure that leaves the connection's state unknown (a timeout above all) retires it, so the
    /// next call connects afresh. Every command issued through here is idempotent.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, CacheError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let (generation, connection) = self.connection().await?;
        match op(connection).await {
            Err(e) if e.is_connection_dropped() => {
                tracing::warn!(error = %e, "redis connection closed, reconnecting once");
                self.retire(generation);
                let (generation, connection) = self.connection().await?;
                op(connection).await.map_err(|e| self.failed(generation, e))
            }
            result => result.map_err(|e| self.failed(generation, e)),
        }
    }

    /// Retires the connection `e` happened on unless the server itself answered with an error, which
    /// says the connection works.
    fn failed(&self, generation: u64, e: redis::RedisError) -> CacheError {
        if !server_answered(&e) {
            tracing::warn!(error = %e, "redis connection state unknown, retiring it");
            self.retire(generation);
        }
        e.into()
    }

    async fn connection(&self) -> Result<(u64, Connection), CacheError> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let mut last_failure = self.connect_gate.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        if last_failure.is_some_and(|at| at.elapsed() < CONNECT_COOLDOWN) {
            return Err(CacheError::CoolingDown);
        }
        match self.connect().await {
            Ok(c) => {
                *last_failure = None;
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                *self.slot() = Some((generation, c.clone()));
                Ok((generation, c))
            }
            Err(e) => {
                *last_failure = Some(Instant::now());
                Err(e)
            }
        }
    }

    /// Opens a connection, the whole handshake bounded: a server that accepts and never answers must
    /// cost one bounded wait, not a hang.
    async fn connect(&self) -> Result<Connection, CacheError> {
        let connect = async {
            Ok::<_, CacheError>(match &self.backend {
                Backend::Standalone { client, config } => Connection::Standalone(
                    client
                        .get_multiplexed_async_connection_with_config(config)
                        .await?,
                ),
                Backend::Cluster(client) => Connection::Cluster(client.get_async_connection().await?),
            })
        };
        // Discovering a cluster's slots takes a few round trips.
        let bound = match self.backend {
            Backend::Standalone { .. } => self.connect_timeout * 2,
            Backend::Cluster(_) => self.connect_timeout * 3,
        };
        tokio::time::timeout(bound, connect)
            .await
            .map_err(|_| CacheError::ConnectTimeout)?
    }

    fn slot(&self) -> MutexGuard<'_, Option<(u64, Connection)>> {
        // The guarded value is replaced whole, never left half-written: a poisoned lock is still usable.
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Option<(u64, Connection)> {
        self.slot().clone()
    }

    /// Drops connection `generation` if it is still the current one.
    fn retire(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
            *slot = None;
        }
    }
}

/// One SCAN step on `node` (a cluster primary), or on the one server.
async fn scan_step(
    mut connection: Connection,
    node: Option<(String, u16)>,
    cursor: u64,
    pattern: &str,
) -> RedisResult<(u64, Vec<String>)> {
    let mut scan = redis::cmd("SCAN");
    scan.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_BATCH);
    match (&mut connection, node) {
        (Connection::Cluster(cluster), Some((host, port))) => {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
            Ok(redis::from_redis_value(
                cluster.route_command(scan, routing).await?,
            )?)
        }
        _ => scan.query_async(&mut connection).await,
    }
}

/// Whether the server replied (with an error): the connection is then known to work.
fn server_answered(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(_) | ErrorKind::UnexpectedReturnType | ErrorKind::Parse
    ) && !e.is_unrecoverable_error()
}
