//! What a run leaves behind: its `cache_warm_run` row and one CloudWatch Embedded Metric Format line.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use shared::platform::db::Database;
use uuid::Uuid;

use crate::config::WarmConfig;
use crate::job;
use crate::plan::Skip;

/// At most this many failures are itemised in the summary and the run row; the count is always exact.
pub const MAX_ERRORS_KEPT: usize = 20;

/// Counts of one run; also the invocation's JSON result.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub run_id: Uuid,
    pub trigger: &'static str,
    /// `WARM_MODE` of the run: `all` or `local`.
    pub mode: &'static str,
    pub tenants_total: u64,
    pub tenants_warmed: u64,
    pub bundles_warmed: u64,
    pub failures: u64,
    pub skipped_deadline: u64,
    /// Tenants the run looked at and chose not to warm, in all and by reason (`not_due`, `idle`,
    /// `not_expected`).
    pub tenants_skipped: u64,
    pub skip_reasons: BTreeMap<&'static str, u64>,
    /// Tenants whose `timezone` is not a known zone (warmed in UTC).
    pub invalid_zones: u64,
    /// Whether the two SUPERADMIN_GLOBAL bundles were warmed (scheduled runs only).
    pub global_warmed: Option<bool>,
    pub chunks_published: u64,
    /// Tenants an earlier attempt of the same scheduled execution had already warmed.
    pub skipped_fresh: u64,
    /// This execution already ran to the end in an earlier attempt: nothing was done again.
    pub already_done: bool,
    /// Why this firing of the schedule did nothing (the job is off in `cron_job`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
    pub stopped_early: bool,
    pub duration_ms: u64,
    /// Change deltas folded into the base counters at the start of the run.
    pub deltas_compacted: u64,
    /// Tenants whose maintained stats were recomputed the slow way, and how many of them had drifted
    /// (each repaired).
    pub stats_checked: u64,
    pub stats_drifted: u64,
    /// Inheritance children and partitions of the CRM tables: their rows are never counted.
    pub untracked_tables: Vec<String>,
    pub errors: Vec<String>,
}

impl Summary {
    /// Nothing warmed or published and something failed: the invocation is an error, to be retried.
    pub fn nothing_done(&self) -> bool {
        self.bundles_warmed == 0 && self.chunks_published == 0 && self.failures > 0
    }

    pub fn skip(&mut self, reason: Skip) {
        self.tenants_skipped += 1;
        *self.skip_reasons.entry(reason.as_str()).or_default() += 1;
    }

    fn skipped_for(&self, reason: Skip) -> u64 {
        self.skip_reasons.get(reason.as_str()).copied().unwrap_or(0)
    }

    pub fn record_error(&mut self, error: String) {
        tracing::warn!(%error, "warm failure");
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(error);
        }
    }

    fn error_summary(&self) -> Option<String> {
        if self.errors.is_empty() {
            return None;
        }
        let mut text = self.errors.join("\n");
        if self.failures as usize > self.errors.len() {
            text.push_str(&format!(
                "\n(and {} more)",
                self.failures as usize - self.errors.len()
            ));
        }
        Some(text)
    }
}

/// An earlier attempt of one scheduled execution.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub run_id: Uuid,
    pub started_at_ms: i64,
    pub finished: bool,
}

/// The earlier attempts of scheduled execution `execution_id`, if any, taken together: the latest one's
/// id, when the first began, and whether any of them ran to the end and did its work.
pub async fn attempt_of(db: &Database, execution_id: &str) -> Result<Option<Attempt>, sqlx::Error> {
    let row: Option<(Uuid, i64, bool)> = db
        .transaction(async |tx| {
            let row = sqlx::query_as(
                "SELECT (array_agg(id ORDER BY started_at DESC))[1],
                    (extract(epoch FROM min(started_at)) * 1000)::int8,
                    coalesce(bool_or(finished_at IS NOT NULL AND succeeded), false)
               FROM cache_warm_run WHERE execution_id = $1 HAVING count(*) > 0",
            )
            .persistent(db.persistent())
            .bind(execution_id)
            .fetch_optional(&mut *tx)
            .await?;
            Ok(row)
        })
        .await?;
    Ok(row.map(|(run_id, started_at_ms, finished)| Attempt {
        run_id,
        started_at_ms,
        finished,
    }))
}

/// Inserts the run's row. Retried on a lost connection; in the rare case that the lost attempt's commit
/// went through unseen, its row stays unfinished beside this run's (it did nothing else).
pub async fn start(
    db: &Database,
    trigger: &str,
    parent_run_id: Option<Uuid>,
    execution_id: Option<&str>,
) -> Result<Uuid, sqlx::Error> {
    db.transaction(async |tx| {
        let id = sqlx::query_scalar(
            "INSERT INTO cache_warm_run (trigger, parent_run_id, execution_id) VALUES ($1, $2, $3) RETURNING id",
        )
        .persistent(db.persistent())
        .bind(trigger)
        .bind(parent_run_id)
        .bind(execution_id)
        .fetch_one(&mut *tx)
        .await?;
        Ok(id)
    })
    .await
}

/// Completes the run's row; a scheduled or manual run is also the job's last run in `cron_job`.
pub async fn finish(
    db: &Database,
    config: &WarmConfig,
    summary: &Summary,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let error_summary = summary.error_summary();
    db.transaction(async |tx| {
        sqlx::query(
            "UPDATE cache_warm_run
                SET finished_at = now(), tenants_total = $2, bundles_warmed = $3, failures = $4,
                    skipped_deadline = $5, chunks_published = $6, error_summary = $7, skipped_fresh = $8,
                    succeeded = $9, mode = $10, tenants_warmed = $11, tenants_skipped = $12,
                    skip_reasons = $13, invalid_zones = $14, global_warmed = $15,
                    deltas_compacted = $16, stats_checked = $17, stats_drifted = $18,
                    untracked_tables = $19, skipped = $20
              WHERE id = $1",
        )
        .persistent(db.persistent())
        .bind(summary.run_id)
        .bind(saturating_i32(summary.tenants_total))
        .bind(saturating_i32(summary.bundles_warmed))
        .bind(saturating_i32(summary.failures))
        .bind(saturating_i32(summary.skipped_deadline))
        .bind(saturating_i32(summary.chunks_published))
        .bind(error_summary.clone())
        .bind(saturating_i32(summary.skipped_fresh))
        .bind(!summary.nothing_done())
        .bind(summary.mode)
        .bind(saturating_i32(summary.tenants_warmed))
        .bind(saturating_i32(summary.tenants_skipped))
        .bind(sqlx::types::Json(&summary.skip_reasons))
        .bind(saturating_i32(summary.invalid_zones))
        .bind(summary.global_warmed)
        .bind(i64::try_from(summary.deltas_compacted).unwrap_or(i64::MAX))
        .bind(saturating_i32(summary.stats_checked))
        .bind(saturating_i32(summary.stats_drifted))
        .bind(&summary.untracked_tables)
        .bind(summary.skipped)
        .execute(&mut *tx)
        .await?;
        if matches!(summary.trigger, "schedule" | "manual") {
            job::record_run(tx, db, config, summary, now).await?;
        }
        Ok(())
    })
    .await
}

fn saturating_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One EMF document: CloudWatch turns it into metrics of namespace `DashboardCache`, dimension `Trigger`.
pub fn emf_document(summary: &Summary, timestamp_ms: i64) -> serde_json::Value {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "DashboardCache",
                "Dimensions": [["Trigger"]],
                "Metrics": [
                    { "Name": "WarmDurationMs", "Unit": "Milliseconds" },
                    { "Name": "BundlesWarmed", "Unit": "Count" },
                    { "Name": "WarmFailures", "Unit": "Count" },
                    { "Name": "TenantsLeft", "Unit": "Count" },
                    { "Name": "TenantsWarmed", "Unit": "Count" },
                    { "Name": "TenantsSkipped", "Unit": "Count" },
                    { "Name": "SkippedNotDue", "Unit": "Count" },
                    { "Name": "SkippedIdle", "Unit": "Count" },
                    { "Name": "SkippedNotExpected", "Unit": "Count" },
                    { "Name": "InvalidZones", "Unit": "Count" },
                    { "Name": "StatsDrifted", "Unit": "Count" },
                ],
            }],
        },
        "Trigger": summary.trigger,
        "RunId": summary.run_id,
        "WarmDurationMs": summary.duration_ms,
        "BundlesWarmed": summary.bundles_warmed,
        "WarmFailures": summary.failures,
        "TenantsLeft": summary.skipped_deadline,
        "TenantsWarmed": summary.tenants_warmed,
        "TenantsSkipped": summary.tenants_skipped,
        "SkippedNotDue": summary.skipped_for(Skip::NotDue),
        "SkippedIdle": summary.skipped_for(Skip::Idle),
        "SkippedNotExpected": summary.skipped_for(Skip::NotExpected),
        "InvalidZones": summary.invalid_zones,
        "Mode": summary.mode,
        "StatsDrifted": summary.stats_drifted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_declares_the_metrics_with_their_values() {
        let mut summary = Summary {
            trigger: "schedule",
            bundles_warmed: 12,
            failures: 1,
            skipped_deadline: 3,
            duration_ms: 450,
            ..Summary::default()
        };
        summary.skip(Skip::Idle);
        summary.skip(Skip::Idle);
        summary.skip(Skip::NotDue);
        let line = emf_document(&summary, 1_795_478_400_000);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "DashboardCache");
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "WarmDurationMs",
                "BundlesWarmed",
                "WarmFailures",
                "TenantsLeft",
                "TenantsWarmed",
                "TenantsSkipped",
                "SkippedNotDue",
                "SkippedIdle",
                "SkippedNotExpected",
                "InvalidZones",
                "StatsDrifted"
            ]
        );
        assert_eq!(line["_aws"]["Timestamp"], 1_795_478_400_000i64);
        assert_eq!(line["Trigger"], "schedule");
        assert_eq!(
            (line["BundlesWarmed"].as_u64(), line["WarmFailures"].as_u64()),
            (Some(12), Some(1))
        );
        assert_eq!(
            (line["TenantsLeft"].as_u64(), line["WarmDurationMs"].as_u64()),
            (Some(3), Some(450))
        );
        assert_eq!(
            (
                line["TenantsSkipped"].as_u64(),
                line["SkippedIdle"].as_u64(),
                line["SkippedNotDue"].as_u64()
            ),
            (Some(3), Some(2), Some(1))
        );
    }

    #[test]
    fn error_summary_counts_what_it_does_not_list() {
        let mut summary = Summary::default();
        for i in 0..25 {
            summary.failures += 1;
            summary.record_error(format!("tenant {i}: boom"));
        }
        let text = summary.error_summary().unwrap();
        assert_eq!(text.lines().count(), MAX_ERRORS_KEPT + 1);
        assert!(text.ends_with("(and 5 more)"), "{text}");
    }
}
