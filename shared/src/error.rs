//! Error types of the library, one enum per concern.

use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("invalid environment variable {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Computing a bundle from Postgres.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("database query failed")]
    Database(#[from] sqlx::Error),
    #[error("tenant {0} does not exist")]
    TenantNotFound(Uuid),
    #[error("the bundle could not be serialized")]
    Serialize(#[source] serde_json::Error),
    #[error("the request's deadline passed before the bundle was ready")]
    DeadlineExceeded,
}

/// Building a function's clients at cold start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid DATABASE_URL")]
    Database(#[from] sqlx::Error),
    #[error("invalid redis settings")]
    Cache(#[from] CacheError),
}

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

/// Verifying a bearer token (defined with the rest of auth).
pub use crate::auth::AuthError;

/// Formats an error with its whole `source()` chain, for logs.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
