//! The warm job's row in `cron_job`, the previous runbook's table: warm-cache inserts it on its first
//! invocation (the deployment's `WARM_SCHEDULE` is its initial schedule), each heartbeat claims the
//! due firing of its schedule, a firing while `is_active` is false records a skipped run, and each
//! run leaves its result in `last_run` and `metadata`. The database reads the schedule
//! (`dashboard_cache.cron_next_run`): it refuses one it cannot read and keeps `next_run` current.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use shared::platform::db::Database;
use sqlx::PgConnection;

use crate::config::WarmConfig;
use crate::cron_route::WARM_FUNCTION_NAME;
use crate::report::Summary;

const JOB_ID: &str = "warm-dashboard-bundle-cache";
const JOB_NAME: &str = "Warm Dashboard Bundle Cache";

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// A firing of the schedule is due (or this execution claimed it before and is retried): warm.
    Due,
    /// Nothing due before `next_run`.
    NotDue { next_run: Option<DateTime<Utc>> },
}

/// Inserts the job's row unless it exists, then claims the firing due at `now`, if any: one
/// transaction, so two beats never both claim one firing, and a retried execution finds its claim.
pub async fn beat(
    db: &Database,
    config: &WarmConfig,
    now: DateTime<Utc>,
    execution_id: Option<&str>,
) -> Result<Beat, sqlx::Error> {
    db.transaction(async |tx| {
        ensure(tx, db, config, now).await?;
        let claimed: Option<bool> = sqlx::query_scalar(
            "UPDATE cron_job
                SET next_run = dashboard_cache.cron_next_run(schedule, schedule_timezone, $2),
                    claimed_by = $3
              WHERE function_name = $1 AND (next_run IS NULL OR next_run <= $2 OR claimed_by = $3)
             RETURNING true",
        )
        .persistent(db.persistent())
        .bind(WARM_FUNCTION_NAME)
        .bind(now)
        .bind(execution_id)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_some() {
            return Ok(Beat::Due);
        }
        let next_run = sqlx::query_scalar("SELECT next_run FROM cron_job WHERE function_name = $1")
            .persistent(db.persistent())
            .bind(WARM_FUNCTION_NAME)
            .fetch_one(&mut *tx)
            .await?;
        Ok(Beat::NotDue { next_run })
    })
    .await
}

/// Whether the job is on (`cron_job.is_active`), inserting its row first when it is missing.
pub async fn is_active(db: &Database, config: &WarmConfig, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    db.transaction(async |tx| {
        ensure(tx, db, config, now).await?;
        sqlx::query_scalar("SELECT is_active FROM cron_job WHERE function_name = $1")
            .persistent(db.persistent())
            .bind(WARM_FUNCTION_NAME)
            .fetch_one(&mut *tx)
            .await
    })
    .await
}

/// The job's row as the deployment first defines it; an existing row (perhaps changed by an
/// operator) is left as it is.
async fn ensure(
    conn: &mut PgConnection,
    db: &Database,
    config: &WarmConfig,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        // The deployment's schedule is read only when the row is created: once it exists (perhaps
        // changed by an operator), a schedule the database cannot read must not fail every beat.
        "INSERT INTO cron_job (id, name, schedule, schedule_timezone, function_name, next_run, metadata)
         SELECT $1, $2, $3, $4, $5, dashboard_cache.cron_next_run($3, $4, $6), $7
          WHERE NOT EXISTS (SELECT FROM cron_job WHERE function_name = $5)
         ON CONFLICT (function_name) DO NOTHING",
    )
    .persistent(db.persistent())
    .bind(JOB_ID)
    .bind(JOB_NAME)
    .bind(&config.schedule)
    .bind(&config.schedule_timezone)
    .bind(WARM_FUNCTION_NAME)
    .bind(now)
    .bind(sqlx::types::Json(settings(config)))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a scheduled or manual run's result as the job's last run (in the run's own transaction),
/// inserting the job's row first when it is missing.
pub async fn record_run(
    conn: &mut PgConnection,
    db: &Database,
    config: &WarmConfig,
    summary: &Summary,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    ensure(conn, db, config, now).await?;
    let mut metadata = settings(config);
    if let (Value::Object(m), Value::Object(run)) = (&mut metadata, last_run(summary)) {
        m.extend(run.into_iter().filter(|(_, v)| !v.is_null()));
    }
    sqlx::query(
        "UPDATE cron_job SET last_run = (SELECT started_at FROM cache_warm_run WHERE id = $2), metadata = $3
          WHERE function_name = $1",
    )
    .persistent(db.persistent())
    .bind(WARM_FUNCTION_NAME)
    .bind(summary.run_id)
    .bind(sqlx::types::Json(metadata))
    .execute(conn)
    .await?;
    Ok(())
}

/// How the deployment runs the job (shown in `metadata`).
fn settings(config: &WarmConfig) -> Value {
    json!({
        "mode": config.policy.mode.as_str(),
        "run_time": match config.policy.mode {
            crate::plan::Mode::All => "midnight_utc".to_owned(),
            crate::plan::Mode::Local => format!("{:02}:00 tenant-local", config.policy.local_hour),
        },
        "local_hour": config.policy.local_hour,
        "idle_days": config.policy.idle_days,
        "predictive": config.policy.predictive,
    })
}

/// The last run's fields in `metadata` (the names the previous runbook's queries read).
fn last_run(summary: &Summary) -> Value {
    json!({
        "last_run_id": summary.run_id,
        "last_trigger": summary.trigger,
        "skipped": summary.skipped,
        "succeeded": !summary.nothing_done(),
        "tenants_total": summary.tenants_total,
        "tenants_warmed": summary.tenants_warmed,
        "tenants_skipped": summary.tenants_skipped,
        "skip_reasons": summary.skip_reasons,
        "bundles_warmed": summary.bundles_warmed,
        "failures": summary.failures,
        "invalid_zones": summary.invalid_zones,
    })
}
