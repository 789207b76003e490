//! What a bundle is, without Redis: which one is meant ([`identity`]), its exact definition ([`query`],
//! its JSON shape in [`shape`], its statements in [`sql`], a scoped bundle's in [`assignee_sql`]), the data version it is computed from ([`version`]) and
//! the tenant's day its 30-day figures count in ([`tenant_time`]). Uses the platform's database (the
//! `postgres` feature: `query`, `version` and [`BundleError`]).

pub mod assignee_sql;
pub mod identity;
#[cfg(feature = "postgres")]
pub mod query;
#[cfg(feature = "postgres")]
pub mod shape;
pub mod sql;
#[cfg(feature = "postgres")]
pub mod team_access;
pub mod tenant_time;
#[cfg(feature = "postgres")]
pub mod version;

#[cfg(feature = "postgres")]
use uuid::Uuid;

/// Whose counters a row of `dashboard_cache.bundle_stats_base` holds: the SQL enum `stats_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsKind {
    /// One tenant's rows.
    Tenant,
    /// The rows whose `tenant_id` is NULL (they count in the global view only).
    NoTenant,
    /// Every row: the global view's counters.
    Global,
    /// TRUNCATEs and invalidations: part of every version.
    Epoch,
}

impl StatsKind {
    /// The enum's label as a SQL literal, for statement texts.
    pub const fn sql(self) -> &'static str {
        match self {
            Self::Tenant => "'tenant'",
            Self::NoTenant => "'no_tenant'",
            Self::Global => "'global'",
            Self::Epoch => "'epoch'",
        }
    }
}

/// Computing a bundle from Postgres.
#[cfg(feature = "postgres")]
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
