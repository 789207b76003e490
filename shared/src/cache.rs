//! Redis access: one lazily opened multiplexed connection per process (standalone, or the cluster
//! protocol that ElastiCache Serverless requires), explicit connect and response timeouts, one retry on
//! a dead connection, and a short cool-down after a failed connect so that a sick Redis costs each
//! request at most one bounded wait.
//!
//! Every error here means "the cache is unavailable"; callers serve without it, never fail because of it.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncCommands, AsyncConnectionConfig, Client, Cmd, Pipeline, RedisFuture, RedisResult, Value};
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::config::RedisConfig;
use crate::error::CacheError;

/// After a failed connect, requests skip Redis for this long instead of each waiting for a timeout.
const CONNECT_COOLDOWN: Duration = Duration::from_millis(500);
/// Keys asked for per SCAN step and deleted per UNLINK during a namespace clear.
pub const SCAN_BATCH: usize = 1_000;

/// How the process reaches Redis.
enum Backend {
    Standalone {
        client: Client,
        config: AsyncConnectionConfig,
    },
    Cluster {
        client: ClusterClient,
        connect_timeout: Duration,
    },
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

pub struct Cache {
    backend: Backend,
    connection: Mutex<Option<Connection>>,
    /// Held while connecting, so a burst of requests opens one connection; holds the last failure time.
    connect_gate: tokio::sync::Mutex<Option<Instant>>,
}

impl Cache {
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
            Backend::Cluster {
                client: builder.build()?,
                connect_timeout: config.connect_timeout,
            }
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
            connect_gate: tokio::sync::Mutex::new(None),
        })
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.run(|mut c| async move { c.get(key).await }).await
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        self.run(|mut c| async move { c.pset_ex(key, value, ttl_ms).await })
            .await
    }

    /// Remaining time to live of `key`, `None` when it does not exist or never expires.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
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

    /// Overwrites `bytes.len()` bytes of the value at `offset`, keeping the key's TTL; does nothing if
    /// the key is gone (a plain SETRANGE would create it, zero-padded and without a TTL, forever).
    pub async fn set_range(&self, key: &str, offset: usize, bytes: &[u8]) -> Result<(), CacheError> {
        static SET_RANGE_IF_EXISTS: LazyLock<redis::Script> = LazyLock::new(|| {
            redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('SETRANGE', KEYS[1], ARGV[1], ARGV[2]) end return 0",
            )
        });
        self.run(|mut c| async move {
            SET_RANGE_IF_EXISTS
                .key(key)
                .arg(offset)
                .arg(bytes)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(drop)
    }

    /// Takes the lease `key` for `ttl` if nobody holds it; returns the token that releases it.
    pub async fn acquire_lease(&self, key: &str, ttl: Duration) -> Result<Option<String>, CacheError> {
        let token = uuid::Uuid::new_v4().to_string();
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(ttl.as_millis().max(1) as u64));
        let taken: Option<String> = self
            .run(|mut c| {
                let (token, options) = (&token, options.clone());
                async move { c.set_options(key, token, options).await }
            })
            .await?;
        Ok(taken.map(|_| token))
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

    /// Runs `op` on the shared connection; if the connection turns out to be dead (a server-side
    /// disconnect, or a socket that died while the Lambda environment was frozen), reconnects and
    /// runs it once more. Every command issued through here is idempotent.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, CacheError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let connection = self.connection().await?;
        match op(connection).await {
            Err(e) if is_dead_connection(&e) => {
                tracing::warn!(error = %e, "redis connection lost, reconnecting once");
                self.forget_connection();
                Ok(op(self.connection().await?).await?)
            }
            other => Ok(other?),
        }
    }

    async fn connection(&self) -> Result<Connection, CacheError> {
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
                *self.connection.lock().expect("cache connection lock") = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                *last_failure = Some(Instant::now());
                Err(e)
            }
        }
    }

    async fn connect(&self) -> Result<Connection, CacheError> {
        match &self.backend {
            Backend::Standalone { client, config } => Ok(Connection::Standalone(
                client
                    .get_multiplexed_async_connection_with_config(config)
                    .await?,
            )),
            Backend::Cluster {
                client,
                connect_timeout,
            } => {
                // Discovering the slots takes a few round trips; bound them all.
                match tokio::time::timeout(*connect_timeout * 3, client.get_async_connection()).await {
                    Ok(connection) => Ok(Connection::Cluster(connection?)),
                    Err(_) => Err(CacheError::ConnectTimeout),
                }
            }
        }
    }

    fn current(&self) -> Option<Connection> {
        self.connection.lock().expect("cache connection lock").clone()
    }

    fn forget_connection(&self) {
        *self.connection.lock().expect("cache connection lock") = None;
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

fn is_dead_connection(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// What is stored under a bundle key: when and from which data version the bundle was computed, when it
/// was last found current, and the bundle's JSON bytes, zstd-compressed with a dictionary of bundle JSON
/// when that makes them smaller.
///
/// Layout: `DBC1` | flags (1 byte) | generated_at, validated_at (unix ms, i64 BE) | data version (i64 BE)
/// | payload. `validated_at` sits at a fixed offset so a revalidation rewrites it in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub generated_at_ms: i64,
    pub validated_at_ms: i64,
    pub data_version: i64,
    /// The bundle's JSON, uncompressed.
    pub json: Vec<u8>,
}

const MAGIC: &[u8; 4] = b"DBC1";
const HEADER_LEN: usize = 4 + 1 + 8 + 8 + 8;
/// Where `validated_at` is, for [`Cache::set_range`].
pub const VALIDATED_AT_OFFSET: usize = 4 + 1 + 8;
const FLAG_PLAIN: u8 = 0;
/// zstd without a dictionary (written by earlier versions; still read).
const FLAG_ZSTD: u8 = 1;
/// zstd with [`DICTIONARY`]. A retrained dictionary needs a new flag value: entries written with the
/// old one then read as unreadable, which is a miss.
const FLAG_ZSTD_DICTIONARY_1: u8 = 2;
/// Below this, compression's frame overhead outweighs what it saves.
const COMPRESS_MIN_BYTES: usize = 256;
const ZSTD_LEVEL: i32 = 3;
/// No bundle comes near this; a larger declared size is corruption.
const MAX_BUNDLE_BYTES: u64 = 16 << 20;

/// Trained on bundles of the benchmark dataset (`cargo run --release -p bench -- train-dictionary`):
/// keys, number and timestamp formats recur in every bundle, and one bundle alone is too small for the
/// compressor to learn them.
static DICTIONARY: &[u8] = include_bytes!("bundle.dict");
static ENCODER_DICTIONARY: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICTIONARY, ZSTD_LEVEL));
static DECODER_DICTIONARY: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICTIONARY));

thread_local! {
    // One (de)compression context per thread, reused: allocating one per entry costs more than the
    // decompression itself.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> =
        RefCell::new(Compressor::with_prepared_dictionary(&ENCODER_DICTIONARY).ok());
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> =
        RefCell::new(Decompressor::with_prepared_dictionary(&DECODER_DICTIONARY).ok());
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let compressed = (self.json.len() >= COMPRESS_MIN_BYTES)
            .then(|| COMPRESSOR.with(|c| c.borrow_mut().as_mut()?.compress(&self.json).ok()))
            .flatten()
            .filter(|c| c.len() < self.json.len());
        let (flags, payload) = match &compressed {
            Some(c) => (FLAG_ZSTD_DICTIONARY_1, c.as_slice()),
            None => (FLAG_PLAIN, self.json.as_slice()),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.push(flags);
        out.extend_from_slice(&self.generated_at_ms.to_be_bytes());
        out.extend_from_slice(&self.validated_at_ms.to_be_bytes());
        out.extend_from_slice(&self.data_version.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// `None` for bytes this version cannot read (another format, corruption): treated as a miss.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
            return None;
        }
        let field = |at: usize| bytes[at..at + 8].try_into().ok().map(i64::from_be_bytes);
        let generated_at_ms = field(5)?;
        let validated_at_ms = field(VALIDATED_AT_OFFSET)?;
        let data_version = field(21)?;
        let payload = &bytes[HEADER_LEN..];
        let json = match bytes[4] {
            FLAG_PLAIN => payload.to_vec(),
            FLAG_ZSTD => zstd::stream::decode_all(payload).ok()?,
            FLAG_ZSTD_DICTIONARY_1 => {
                let size = zstd::zstd_safe::get_frame_content_size(payload).ok()??;
                if size > MAX_BUNDLE_BYTES {
                    return None;
                }
                DECOMPRESSOR.with(|d| d.borrow_mut().as_mut()?.decompress(payload, size as usize).ok())?
            }
            _ => return None,
        };
        Some(Self {
            generated_at_ms,
            validated_at_ms,
            data_version,
            json,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trips_small_and_large_payloads() {
        for json in [
            b"{}".to_vec(),
            format!("[{}]", "\"abc\",".repeat(400) + "1").into_bytes(),
        ] {
            let entry = Entry {
                generated_at_ms: 1_700_000_000_123,
                validated_at_ms: 1_700_000_000_456,
                data_version: 42,
                json,
            };
            assert_eq!(Entry::decode(&entry.encode()), Some(entry));
        }
    }

    #[test]
    fn large_payload_is_stored_compressed() {
        let json = format!("[{}]", "{\"status\":\"pending\"},".repeat(200) + "1").into_bytes();
        let entry = Entry {
            generated_at_ms: 0,
            validated_at_ms: 0,
            data_version: 0,
            json,
        };
        assert!(entry.encode().len() * 3 < entry.json.len());
    }

    #[test]
    fn validated_at_can_be_patched_in_place() {
        let entry = Entry {
            generated_at_ms: 1,
            validated_at_ms: 2,
            data_version: 3,
            json: b"{}".to_vec(),
        };
        let mut bytes = entry.encode();
        bytes[VALIDATED_AT_OFFSET..VALIDATED_AT_OFFSET + 8].copy_from_slice(&99i64.to_be_bytes());
        assert_eq!(Entry::decode(&bytes).unwrap().validated_at_ms, 99);
    }

    #[test]
    fn entries_without_a_dictionary_are_still_read() {
        let json = format!("[{}]", "{\"status\":\"pending\"},".repeat(50) + "1").into_bytes();
        let mut bytes = Entry {
            generated_at_ms: 1,
            validated_at_ms: 2,
            data_version: 3,
            json: vec![],
        }
        .encode();
        bytes[4] = FLAG_ZSTD;
        bytes.extend(zstd::bulk::compress(&json, 3).unwrap());
        assert_eq!(Entry::decode(&bytes).unwrap().json, json);
    }

    #[test]
    fn foreign_bytes_decode_as_nothing() {
        assert_eq!(Entry::decode(b"{\"stats\":{}}"), None);
        assert_eq!(Entry::decode(b"DBC1\x07aaaaaaaabbbbbbbbcccccccc"), None);
    }
}
