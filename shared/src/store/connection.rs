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
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult,
    Value,
};

use secrecy::{ExposeSecret, SecretString};

use super::CacheError;
use crate::env::{ConfigError, Env};

/// After a failed connect, requests skip Redis for this long instead of each waiting for a timeout.
const CONNECT_COOLDOWN: Duration = Duration::from_millis(500);
/// Keys asked for per SCAN step and deleted per UNLINK during a namespace clear.
pub const SCAN_BATCH: usize = 1_000;

/// How to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`, which may carry a password: a secret, so `Debug` shows it redacted.
    pub url: SecretString,
    /// Use the cluster protocol (`REDIS_CLUSTER=true`), as ElastiCache Serverless requires.
    pub cluster: bool,
    /// Extra root certificate for `rediss://` (`REDIS_CA_FILE`), for test servers with their own CA.
    pub ca_file: Option<PathBuf>,
    /// `REDIS_CONNECT_TIMEOUT_MS`.
    pub connect_timeout: Duration,
    /// `REDIS_RESPONSE_TIMEOUT_MS`.
    pub response_timeout: Duration,
}

impl RedisConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            url: env.required("REDIS_URL")?.into(),
            cluster: env.parsed("REDIS_CLUSTER", false)?,
            ca_file: env.optional("REDIS_CA_FILE").map(PathBuf::from),
            connect_timeout: env.millis("REDIS_CONNECT_TIMEOUT_MS", 500)?,
            response_timeout: env.millis("REDIS_RESPONSE_TIMEOUT_MS", 250)?,
        })
    }
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

/// Every command is sent at once (`TCP_NODELAY`; redis-rs leaves Nagle's algorithm on): on one
/// multiplexed connection, a command written while an earlier one is unanswered would otherwise wait
/// for the server's acknowledgement of it.
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
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
            let mut builder = ClusterClientBuilder::new(vec![config.url.expose_secret()])
                .tcp_settings(tcp_settings())
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
            let info = config
                .url
                .expose_secret()
                .into_connection_info()?
                .set_tcp_settings(tcp_settings());
            let client = match root_cert {
                Some(_) => Client::build_with_tls(info, certificates(root_cert))?,
                None => Client::open(info)?,
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

    /// Round trip to the server.
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }

    /// Runs `op` on the shared connection. A closed connection (a server-side disconnect, a socket
    /// that died while the Lambda environment was frozen) is replaced and `op` runs once more; any other
    /// failure that leaves the connection's state unknown (a timeout above all) retires it, so the
    /// next call connects afresh. Every command issued through here is idempotent.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, CacheError>
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
