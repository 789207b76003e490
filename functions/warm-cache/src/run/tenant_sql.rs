//! The run's SQL about tenants: how many are active, the active ones page by page with their zone,
//! warm hour and last warm, and recording, in batches, when tenants were warmed. Each in a transaction of its own,
//! retried when the connection was lost.

use chrono::{DateTime, Utc};
use shared::bundle::tenant_time::Zone;
use shared::platform::db::Database;
use uuid::Uuid;

use crate::plan;

pub(super) async fn count_active(db: &Database) -> Result<u64, sqlx::Error> {
    // No parameters, so the simple query protocol: one round trip.
    db.transaction(async |tx| {
        let row = sqlx::raw_sql("SELECT count(*)::text FROM tenant WHERE status = 'active'")
            .fetch_one(&mut *tx)
            .await?;
        let text: String = sqlx::Row::try_get(&row, 0)?;
        text.parse::<u64>().map_err(|e| sqlx::Error::Decode(e.into()))
    })
    .await
}

/// What a run reads of one active tenant.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct TenantRow {
    pub id: Uuid,
    timezone: Option<String>,
    warm_hour: Option<i16>,
    last_warmed_at: Option<DateTime<Utc>>,
}

impl TenantRow {
    pub fn plan_tenant(&self) -> plan::Tenant {
        plan::Tenant {
            id: self.id,
            zone: Zone::parse(self.timezone.as_deref()),
            warm_hour: self.warm_hour.and_then(|h| u32::try_from(h).ok()),
            last_warmed_at: self.last_warmed_at,
        }
    }
}

/// Up to `limit` active tenants after `after`, in id order (keyset paging); retried on a lost
/// connection. In a transaction of its own (see `Database::persistent`).
pub(super) async fn tenant_rows(
    db: &Database,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<TenantRow>, sqlx::Error> {
    db.transaction(async |tx| {
        let page = sqlx::query_as(
            "SELECT t.id, t.timezone, t.warm_hour, s.last_warmed_at
               FROM tenant t LEFT JOIN tenant_warm_state s ON s.tenant_id = t.id
              WHERE t.status = 'active' AND ($1::uuid IS NULL OR t.id > $1)
              ORDER BY t.id LIMIT $2",
        )
        .persistent(db.persistent())
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        Ok(page)
    })
    .await
}

/// Warm times are written this many tenants to a statement: one commit per tenant was a quarter of
/// the database's work in a run (bench figure 5). A run cut short loses at most this many records,
/// and those tenants are only warmed again.
const RECORD_BATCH: usize = 200;

/// The warm times of a run's tenants (whose bundles are both stored), written [`RECORD_BATCH`] at a
/// time; a failed write is logged, never failing the run. The run drives each batch's write beside
/// the warms: awaited on its own, a write stopped the warms in flight from being polled while they
/// held the pool's connections it waited for (every write then timed out, bench figure 5).
pub(super) struct WarmTimes<'a> {
    db: &'a Database,
    at: DateTime<Utc>,
    tenants: Vec<Uuid>,
}

impl<'a> WarmTimes<'a> {
    /// Warm times of `at`, the run's time.
    pub fn new(db: &'a Database, at: DateTime<Utc>) -> Self {
        Self {
            db,
            at,
            tenants: Vec::with_capacity(RECORD_BATCH),
        }
    }

    /// Adds `tenant`; whether a batch is full (to be written, [`WarmTimes::write`]).
    pub fn add(&mut self, tenant: Uuid) -> bool {
        self.tenants.push(tenant);
        self.tenants.len() == RECORD_BATCH
    }

    /// The write of what is waiting (which nothing waits for any more).
    pub fn write(&mut self) -> impl std::future::Future<Output = ()> + 'a {
        let tenants = std::mem::replace(&mut self.tenants, Vec::with_capacity(RECORD_BATCH));
        let (db, at) = (self.db, self.at);
        async move {
            if tenants.is_empty() {
                return;
            }
            if let Err(e) = record_warmed(db, &tenants, at).await {
                tracing::warn!(tenants = tenants.len(), error = %shared::env::chain(&e), "could not record the warm time");
            }
        }
    }
}

/// Records that the bundles of `tenants` were stored at `at` (never moving a time back), in one
/// statement; a tenant deleted since is left out rather than failing the others.
async fn record_warmed(db: &Database, tenants: &[Uuid], at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    db.transaction(async |tx| {
        sqlx::query(
            "INSERT INTO tenant_warm_state (tenant_id, last_warmed_at)
             SELECT t.id, $2::timestamptz
               FROM tenant t
              WHERE t.id IN (SELECT unnest($1::uuid[]))
             ON CONFLICT (tenant_id) DO UPDATE
                SET last_warmed_at = greatest(tenant_warm_state.last_warmed_at, excluded.last_warmed_at)",
        )
        .persistent(db.persistent())
        .bind(tenants)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    })
    .await
}
