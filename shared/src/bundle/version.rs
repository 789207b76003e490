//! Data versions: sums of the `changes` that the change-tracking triggers append to
//! `dashboard_cache.bundle_stats_delta` (see `migrations/20261205000002_dashboard_cache_tables.sql`), read to decide whether a
//! cached bundle still describes the data.
//!
//! A version is a sum over what the reader's snapshot sees: writers only add rows and compaction
//! moves them into base rows without changing any sum, so every committed write raises the version of
//! every later snapshot, whatever order concurrent transactions commit in.

use sqlx::PgExecutor;

use super::identity::Scope;
use super::StatsKind;

/// The epoch (TRUNCATEs, invalidations): part of every version, so it moves tenants with no row yet.
fn epoch() -> String {
    format!(
        "(SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_base WHERE kind = {epoch})
     + (SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_delta WHERE epoch)",
        epoch = StatsKind::Epoch.sql()
    )
}

/// The version of tenant `$1`: its own changes and the epoch.
fn tenant_version(tenant: &str) -> String {
    format!(
        "((SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_base
            WHERE kind = {kind} AND tenant_id = {tenant} AND bucket IS NULL)
        + (SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_delta WHERE tenant_id = {tenant} AND bucket IS NULL)
        + {epoch})::int8",
        kind = StatsKind::Tenant.sql(),
        epoch = epoch(),
    )
}

/// The global version: every change anywhere (the epoch rows among the deltas are counted once).
pub static GLOBAL_VERSION_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT ((SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_base
            WHERE kind IN ({global}, {epoch}) AND tenant_id IS NULL AND bucket IS NULL)
        + (SELECT coalesce(sum(changes), 0) FROM dashboard_cache.bundle_stats_delta WHERE bucket IS NULL))::int8",
        global = StatsKind::Global.sql(),
        epoch = StatsKind::Epoch.sql(),
    )
});

static CURRENT_TENANT_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {}", tenant_version("$1::uuid")));

/// The current data version of `scope` (0 for a tenant before any write, in a fresh database), or the
/// global one. Read it in the bundle's own snapshot so the two agree.
/// `persistent` is sqlx's: whether to use a named prepared statement (see [`crate::platform::db::Database`]).
pub async fn current<'c>(
    executor: impl PgExecutor<'c>,
    scope: Scope,
    persistent: bool,
) -> Result<i64, sqlx::Error> {
    match scope {
        Scope::Tenant(id) => {
            sqlx::query_scalar(CURRENT_TENANT_SQL.as_str())
                .persistent(persistent)
                .bind(id)
                .fetch_one(executor)
                .await
        }
        Scope::Global => {
            sqlx::query_scalar(GLOBAL_VERSION_SQL.as_str())
                .persistent(persistent)
                .fetch_one(executor)
                .await
        }
    }
}

/// The statement [`current`] runs, with its value written in (for a batch, see
/// [`crate::platform::snapshot`]).
pub fn current_sql(scope: Scope) -> String {
    match scope {
        Scope::Tenant(id) => super::sql::with_values(&CURRENT_TENANT_SQL, Some(id), false, None),
        Scope::Global => GLOBAL_VERSION_SQL.clone(),
    }
}

/// The data version and the stored time zone name of tenant `$1`, no row if no such tenant exists:
/// the statement [`TENANT_VERSION_AND_ZONE_CALL`]'s function runs (the definition the exactness check
/// compares it with, and the benchmark's floor runs).
pub static TENANT_VERSION_AND_ZONE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {}, t.timezone FROM tenant t WHERE t.id = $1::uuid",
        tenant_version("t.id")
    )
});

/// What a bundle computation reads first: [`TENANT_VERSION_AND_ZONE_SQL`] through its function
/// (`migrations/20261207000001_dashboard_cache_tenant_reads.sql`), planned once per server connection.
pub const TENANT_VERSION_AND_ZONE_CALL: &str =
    "SELECT * FROM dashboard_cache.tenant_version_and_zone($1::uuid)";
