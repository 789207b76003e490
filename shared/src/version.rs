//! Data versions: the change counters that the `tenant_data_version` triggers move, read to decide
//! whether a cached bundle still describes the data.

use sqlx::PgExecutor;

use crate::keys::Scope;

/// The current data version of `scope`: the tenant's counter (0 before its first write), or the sum of
/// every counter for the global view. Read it in the bundle's own snapshot so the two agree.
pub async fn current<'c>(executor: impl PgExecutor<'c>, scope: Scope) -> Result<i64, sqlx::Error> {
    match scope {
        Scope::Tenant(id) => {
            sqlx::query_scalar(
                "SELECT coalesce((SELECT version FROM tenant_data_version WHERE tenant_id = $1), 0)",
            )
            .bind(id)
            .fetch_one(executor)
            .await
        }
        Scope::Global => {
            sqlx::query_scalar("SELECT coalesce(sum(version), 0)::int8 FROM tenant_data_version")
                .fetch_one(executor)
                .await
        }
    }
}
