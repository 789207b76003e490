//! `BENCH_FIGURES=changes`, after the write cost of `write_cost.rs`: what a miss costs at growing data
//! sizes with change tracking, each beside the same work done the slow way (the full-scan SQL) in the
//! same run, and what compacting a burst of writes takes (b). Rows per tenant are grown by tenants of
//! their own (`bench-scale-*`), generated once, through the triggers.

use std::time::Instant;

use anyhow::Result;
use chrono::Utc;
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::bundle::query as bundle;
use uuid::Uuid;

use super::context::{percentile, ratio, Context, Statements};
use crate::floors;
use crate::report::{Check, Goal, Row};

/// A tenant of `rows` rows across the five tables (proportions of the large tenant), made once.
async fn scale_tenant(ctx: &Context, rows: i64) -> Result<Uuid> {
    tenant_of(ctx, &format!("bench-scale-{rows}"), rows, "NULL").await
}

/// A tenant `slug` of `rows` rows (proportions of the large tenant), each row `g` assigned to the
/// employee the SQL expression `assigned` gives, made once, through the triggers.
pub(super) async fn tenant_of(ctx: &Context, slug: &str, rows: i64, assigned: &str) -> Result<Uuid> {
    let existing: Option<Uuid> = sqlx::query_scalar("SELECT id FROM tenant WHERE slug = $1")
        .bind(slug)
        .fetch_optional(&ctx.pool)
        .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let started = Instant::now();
    let mut tx = ctx.pool.begin().await?;
    let id: Uuid = sqlx::query_scalar("INSERT INTO tenant (slug, name) VALUES ($1, $1) RETURNING id")
        .bind(slug)
        .fetch_one(&mut *tx)
        .await?;
    let common = "is_test_data, created_at, created_date, updated_at, assigned_to";
    let values = format!(
        "g % 13 = 0, now() - make_interval(secs => (g * 7919) % 34560000),
         CASE WHEN g % 3 = 0 THEN NULL ELSE now() - make_interval(secs => (g * 7919) % 34560000 + 3600) END,
         now() - make_interval(secs => (g * 104729) % 7776000), {assigned}"
    );
    for (table, share, extra_cols, extra) in [
        ("contacts", 20, ", first_name", ", 'First ' || g"),
        ("accounts", 10, ", name", ", 'Account ' || g"),
        (
            "leads",
            30,
            ", status, source",
            ", (ARRAY['new', 'new', 'contacted', 'qualified', 'converted', 'lost', NULL])[1 + g % 7],
               (ARRAY['web', 'referral', 'event', 'ads', NULL])[1 + g % 5]",
        ),
        (
            "opportunities",
            25,
            ", name, stage, amount",
            ", 'Deal ' || g, (ARRAY['qualification', 'proposal', 'negotiation', 'won', 'closed_won', 'lost',
               'closed_lost', NULL])[1 + g % 8], CASE WHEN g % 10 = 0 THEN NULL ELSE ((g * 37) % 250000 + 500)::numeric / 4 END",
        ),
        ("activities", 30, ", type", ", (ARRAY['call', 'email', 'meeting', 'task'])[1 + g % 4]"),
    ] {
        let n = rows * share / 115;
        let sql = format!(
            "INSERT INTO {table} (tenant_id, {common}{extra_cols})
               SELECT '{id}', {values}{extra} FROM generate_series(1::int8, {n}) g"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    sqlx::raw_sql("ANALYZE").execute(&ctx.pool).await?;
    eprintln!("bench: generated {slug} in {:.1?}", started.elapsed());
    Ok(id)
}

/// p50 of `bundle::compute` + serialisation of `id`, after warm-up.
pub(super) async fn compute_p50(ctx: &Context, id: BundleId, runs: usize) -> Result<f64> {
    let mut times = Vec::new();
    for i in 0..runs + 2 {
        let started = Instant::now();
        let computed = bundle::compute(&ctx.db(), id, Utc::now(), 300).await?;
        let _json = serde_json::to_vec(&computed.bundle)?;
        if i >= 2 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    Ok(percentile(&times, 0.5))
}

/// The full-scan statements of `tenant` (`None`: global), by pgbench: average ms.
fn full_scan_ms(ctx: &Context, tenant: Option<Uuid>, runs: u32) -> Result<f64> {
    let literal = tenant.map(|t| format!("'{t}'"));
    let lines = ctx.literal_sql_of(literal.as_deref(), "true", Statements::FullScan);
    let name = format!(
        "full-scan-{}.sql",
        tenant.map(|t| t.to_string()).unwrap_or_else(|| "global".into())
    );
    let path = ctx.script(&name, &lines)?;
    Ok(floors::pgbench(&ctx.database_url, &path, 1, runs)?.0)
}

async fn total_rows(ctx: &Context) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT ((SELECT count(*) FROM contacts) + (SELECT count(*) FROM accounts) + (SELECT count(*) FROM leads)
               + (SELECT count(*) FROM opportunities) + (SELECT count(*) FROM activities))::int8",
    )
    .fetch_one(&ctx.pool)
    .await?)
}

async fn global_row(ctx: &Context) -> Result<Row> {
    ctx.compact_all().await?;
    let rows = total_rows(ctx).await?;
    let ours = compute_p50(ctx, BundleId::new(Scope::Global, true), 15).await?;
    let full = full_scan_ms(ctx, None, 3)?;
    Ok(Row {
        part: "",
        label: format!("Miss: global view, {:.1} M rows", rows as f64 / 1e6),
        ours: format!("p50 {ours:.1} ms"),
        floor: format!("full-scan SQL by pgbench: {full:.0} ms"),
        ratio: format!("{:.4}×", ours / full),
        goal: "≤ 50 ms at 10 M rows, flat".into(),
        checks: vec![Check::new(Goal::AtMost(50.0), ours, format!("p50 {ours:.1} ms"))],
        how: "bundle::compute (maintained stats, cross-tenant list indexes) after compaction; pgbench -t 3 of the full-scan statements".into(),
    })
}

/// The misses at scale, then the compaction of a burst of writes.
pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let mut rows = miss_scale(ctx).await?;
    rows.extend(compaction(ctx).await?);
    Ok(rows)
}

/// A miss at 10^3, 10^5 and 10^6 rows per tenant, and the global view at the dataset's size and (with
/// `BENCH_GLOBAL_ROWS`, default 10 M) at that many rows.
async fn miss_scale(ctx: &Context) -> Result<Vec<Row>> {
    let mut rows = vec![global_row(ctx).await?];
    for size in [1_000i64, 100_000, 1_000_000] {
        let tenant = scale_tenant(ctx, size).await?;
        ctx.compact_all().await?;
        let ours = compute_p50(ctx, BundleId::new(Scope::Tenant(tenant), true), 15).await?;
        let full = full_scan_ms(ctx, Some(tenant), if size >= 1_000_000 { 3 } else { 10 })?;
        rows.push(Row {
            part: "",
            label: format!("Miss: tenant of {size} rows"),
            ours: format!("p50 {ours:.2} ms"),
            floor: format!("full-scan SQL by pgbench: {full:.1} ms"),
            ratio: ratio(ours, full),
            goal: "≤ 5 ms, flat".into(),
            checks: vec![Check::new(Goal::AtMost(5.0), ours, format!("p50 {ours:.2} ms"))],
            how: "bundle::compute + serialise after compaction, 15 runs; pgbench of the same bundle with the full-scan stats".into(),
        });
    }
    let target: i64 = std::env::var("BENCH_GLOBAL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let mut filler = 0;
    while total_rows(ctx).await? < target {
        filler += 1;
        scale_tenant(ctx, 1_000_000 + filler).await?;
    }
    if filler > 0 || total_rows(ctx).await? >= target {
        rows.push(global_row(ctx).await?);
    }
    Ok(rows)
}

/// Folded and unfolded reads: how long the compaction of one write burst takes.
async fn compaction(ctx: &Context) -> Result<Vec<Row>> {
    ctx.compact_all().await?;
    let tenant = scale_tenant(ctx, 1_000).await?;
    sqlx::query(
        "UPDATE leads SET created_date = coalesce(created_date, created_at) + interval '1 minute'
          WHERE tenant_id = $1",
    )
    .bind(tenant)
    .execute(&ctx.pool)
    .await?;
    let deltas: i64 = sqlx::query_scalar("SELECT count(*) FROM dashboard_cache.bundle_stats_delta")
        .fetch_one(&ctx.pool)
        .await?;
    let unfolded = compute_p50(ctx, BundleId::new(Scope::Tenant(tenant), true), 10).await?;
    let started = Instant::now();
    let _: Option<i64> = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact(100000)")
        .fetch_one(&ctx.pool)
        .await?;
    let took = started.elapsed();
    ctx.compact_all().await?;
    let folded = compute_p50(ctx, BundleId::new(Scope::Tenant(tenant), true), 10).await?;
    Ok(vec![Row {
        part: "b",
        label: format!("Compaction of {deltas} deltas"),
        ours: format!("{:.1} ms", took.as_secs_f64() * 1000.0),
        floor: format!("miss {unfolded:.2} ms before, {folded:.2} ms after"),
        ratio: ratio(unfolded, folded.max(f64::EPSILON)),
        goal: "(context)".into(),
        checks: Vec::new(),
        how: "one bundle_stats_compact call after one UPDATE of every lead of the 1,000-row tenant; misses after a vacuum".into(),
    }])
}
