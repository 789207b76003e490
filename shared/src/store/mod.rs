//! Where bundles are kept: Redis and the in-memory level in front of it. [`connection`] reaches the
//! server (standalone or cluster, bounded, self-healing), [`commands`] is what the product asks of it,
//! [`entry`] is the byte format of what is stored under a bundle key (with the scripts that read it in
//! place), [`local`] the in-memory level, [`keys`] every key, [`read_history`] the hours a tenant's
//! dashboard was read. Uses the bundle's identity; knows nothing of freshness or leases' policy.

pub mod commands;
pub mod connection;
pub mod entry;
pub mod keys;
pub mod local;
pub mod read_history;

pub use commands::Recording;
pub use connection::{RedisCache, RedisConfig, SCAN_BATCH};
pub use entry::Entry;
pub use local::{Found, LocalConfig, LocalLevel};

/// Talking to Redis. Callers treat every variant as "the cache is unavailable", never as a failed request.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis command failed")]
    Redis(#[from] redis::RedisError),
    #[error("redis is unavailable (recent connection failure, retrying shortly)")]
    CoolingDown,
    #[error("timed out connecting to the redis cluster")]
    ConnectTimeout,
    #[error("invalid redis configuration: {0}")]
    Config(String),
    /// A read made once for several concurrent callers (the in-memory level) failed.
    #[error("redis read failed")]
    Shared(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync>),
}
