//! Upkeep of the maintained bundle counters: compaction (deltas folded into base rows, so reads and
//! storage stay bounded) and the exactness check (a sample of tenants recomputed the slow way, drift
//! logged, counted and repaired; tables whose rows the triggers cannot see reported by name). The SQL
//! lives in the migrations (`dashboard_cache.bundle_stats_compact`, `bundle_stats_repair`,
//! `untracked_tables`).

use shared::env::chain;
use shared::platform::db::Database;
use uuid::Uuid;

use crate::deadline::Deadline;

/// Deltas folded per statement: one transaction stays short whatever the backlog.
pub const COMPACT_BATCH: i32 = 20_000;

/// Folds deltas in batches until none are left, another compaction holds the lock, or `deadline`
/// passes. Returns how many were folded.
pub async fn compact(db: &Database, deadline: Deadline) -> Result<u64, sqlx::Error> {
    let mut total = 0u64;
    loop {
        let folded: Option<i64> = db
            .transaction(async |tx| {
                let folded = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact($1)")
                    .persistent(db.persistent())
                    .bind(COMPACT_BATCH)
                    .fetch_one(&mut *tx)
                    .await?;
                Ok(folded)
            })
            .await?;
        let Some(folded) = folded else {
            tracing::info!("another compaction is running");
            return Ok(total);
        };
        total += u64::try_from(folded).unwrap_or(0);
        if folded < i64::from(COMPACT_BATCH) || deadline.passed() {
            return Ok(total);
        }
    }
}

/// What one exactness check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checked {
    pub tenants: u64,
    /// Tenants whose maintained counters differed from the recomputation (now repaired).
    pub drifted: u64,
    /// Inheritance children and partitions of the CRM tables (`schema.table`): writes into them fire
    /// their own triggers, not the parent's, so the counters never see those rows.
    pub untracked: Vec<String>,
}

/// Recomputes `sample` random active tenants (and the rows without a tenant) from the tables and
/// repairs any difference. A tenant that cannot be checked is logged and skipped.
pub async fn check_sample(db: &Database, sample: u32) -> Result<Checked, sqlx::Error> {
    let mut checked = Checked::default();
    if sample == 0 {
        return Ok(checked);
    }
    let (ids, untracked): (Vec<Uuid>, Vec<String>) = db
        .transaction(async |tx| {
            let ids = sqlx::query_scalar(
                "SELECT id FROM tenant WHERE status = 'active' ORDER BY random() LIMIT $1",
            )
            .persistent(db.persistent())
            .bind(i64::from(sample))
            .fetch_all(&mut *tx)
            .await?;
            let untracked = sqlx::query_scalar(
                "SELECT table_name FROM dashboard_cache.untracked_tables ORDER BY table_name",
            )
            .persistent(db.persistent())
            .fetch_all(&mut *tx)
            .await?;
            Ok((ids, untracked))
        })
        .await?;
    if !untracked.is_empty() {
        tracing::error!(
            tables = ?untracked,
            "rows in these children of the CRM tables are not counted by the dashboard bundle"
        );
    }
    checked.untracked = untracked;
    for tenant in ids.into_iter().map(Some).chain([None]) {
        match repair(db, tenant).await {
            Ok(0) => checked.tenants += 1,
            Ok(groups) => {
                checked.tenants += 1;
                checked.drifted += 1;
                tracing::error!(
                    tenant = ?tenant,
                    groups,
                    "maintained bundle stats drifted from the tables; repaired"
                );
            }
            Err(e) => tracing::warn!(tenant = ?tenant, error = %chain(&e), "exactness check failed"),
        }
    }
    Ok(checked)
}

/// Checks and repairs one tenant (`None`: the rows without a tenant); returns the drifted groups.
pub async fn repair(db: &Database, tenant: Option<Uuid>) -> Result<i64, sqlx::Error> {
    db.transaction(async |tx| {
        let groups = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_repair($1)")
            .persistent(db.persistent())
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
        Ok(groups)
    })
    .await
}
