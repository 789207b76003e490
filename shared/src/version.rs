//! Data versions: the change counters that the `tenant_data_version` triggers move, read to decide
//! whether a cached bundle still describes the data.

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::keys::Scope;

/// The current data version of `scope`: the tenant's counter (0 before its first write), or the sum of
/// every counter for the global view. Read it in the bundle's own snapshot so the two agree.
/// `persistent` is sqlx's: whether to use a named prepared statement (see [`crate::db::Database`]).
pub async fn current<'c>(
    executor: impl PgExecutor<'c>,
    scope: Scope,
    persistent: bool,
) -> Result<i64, sqlx::Error> {
    match scope {
        Scope::Tenant(id) => {
            sqlx::query_scalar(
                "SELECT coalesce((SELECT version FROM tenant_data_version WHERE tenant_id = $1), 0)",
            )
            .persistent(persistent)
            .bind(id)
            .fetch_one(executor)
            .await
        }
        Scope::Global => {
            sqlx::query_scalar("SELECT coalesce(sum(version), 0)::int8 FROM tenant_data_version")
                .persistent(persistent)
                .fetch_one(executor)
                .await
        }
    }
}

/// The data version of tenant `id`, or `None` if no such tenant exists: one round trip for both.
pub async fn of_existing_tenant<'c>(
    executor: impl PgExecutor<'c>,
    id: Uuid,
    persistent: bool,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(TENANT_VERSION_SQL)
        .persistent(persistent)
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// Used by [`of_existing_tenant`]; public for the benchmark, which runs the very same statement.
pub const TENANT_VERSION_SQL: &str = "SELECT coalesce(v.version, 0) FROM tenant t
       LEFT JOIN tenant_data_version v ON v.tenant_id = t.id
      WHERE t.id = $1";

/// The data version and the stored time zone name of tenant `id`, or `None` if no such tenant exists:
/// one round trip for both (what a bundle computation reads first).
pub async fn of_existing_tenant_with_zone<'c>(
    executor: impl PgExecutor<'c>,
    id: Uuid,
    persistent: bool,
) -> Result<Option<(i64, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(v.version, 0), t.timezone FROM tenant t
           LEFT JOIN tenant_data_version v ON v.tenant_id = t.id
          WHERE t.id = $1",
    )
    .persistent(persistent)
    .bind(id)
    .fetch_optional(executor)
    .await
}
