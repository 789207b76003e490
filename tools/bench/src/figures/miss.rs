//! A miss on the large tenant vs the same SQL run by pgbench, and vs the previous system's dozen
//! queries.

use std::time::Instant;

use anyhow::Result;
use chrono::Utc;
use shared::bundle::identity::{BundleId, Scope};
use shared::bundle::query as bundle;

use super::context::{percentile, ratio, Context};
use crate::floors;
use crate::report::{Check, Goal, Row};

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let scope = Scope::Tenant(ctx.huge);
    let runs = 15;
    let mut times = Vec::new();
    for i in 0..runs + 3 {
        let started = Instant::now();
        let computed = bundle::compute(&ctx.db(), BundleId::new(scope, true), Utc::now(), 300).await?;
        let _json = serde_json::to_vec(&computed.bundle)?;
        if i >= 3 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    let ours = percentile(&times, 0.5);
    let tenant = format!("'{}'", ctx.huge);
    let same = ctx.script("miss-same.sql", &ctx.literal_sql(&tenant, "true"))?;
    let (floor, _) = floors::pgbench(&ctx.database_url, &same, 1, runs)?;
    // The previous system: each figure its own query, the pipeline summed in the application over at
    // most 1,000 rows, each list its own query.
    let t = format!("tenant_id = {tenant}::uuid");
    let since = format!(
        "'{}'::timestamptz",
        bundle::recent_window_start(Utc::now(), shared::bundle::tenant_time::Zone::Utc).to_rfc3339()
    );
    let previous: Vec<String> = vec![
        format!("SELECT count(*) FROM contacts WHERE {t};"),
        format!("SELECT count(*) FROM accounts WHERE {t};"),
        format!("SELECT count(*) FROM leads WHERE {t};"),
        format!("SELECT count(*) FROM opportunities WHERE {t};"),
        format!("SELECT count(*) FROM leads WHERE {t} AND (status IS NULL OR status NOT IN ('converted', 'lost'));"),
        format!("SELECT count(*) FROM opportunities WHERE {t} AND stage IN ('won', 'closed_won');"),
        format!("SELECT count(*) FROM opportunities WHERE {t} AND (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost'));"),
        format!("SELECT count(*) FROM leads WHERE {t} AND coalesce(created_date, created_at) >= {since};"),
        format!("SELECT count(*) FROM activities WHERE {t} AND coalesce(created_date, created_at) >= {since};"),
        format!("SELECT amount, stage FROM opportunities WHERE {t} LIMIT 1000;"),
        format!("SELECT id, type, subject, status, created_at, created_date, assigned_to FROM activities WHERE {t} ORDER BY created_at DESC LIMIT 10;"),
        format!("SELECT id, first_name, last_name, company, created_date, status FROM leads WHERE {t} ORDER BY coalesce(created_date, created_at) DESC LIMIT 5;"),
        format!("SELECT id, name, amount, stage, updated_at FROM opportunities WHERE {t} ORDER BY updated_at DESC LIMIT 5;"),
    ];
    let previous_path = ctx.script("miss-previous.sql", &previous)?;
    let (previous_ms, _) = floors::pgbench(&ctx.database_url, &previous_path, 1, runs)?;
    Ok(vec![
        Row {
            part: "",
            label: "Miss: large tenant (115,000 rows), compute + serialize".into(),
            ours: format!("p50 {ours:.1} ms"),
            floor: format!("same SQL by pgbench: {floor:.1} ms"),
            ratio: ratio(ours, floor),
            goal: "≤ 1.5×".into(),
            checks: vec![Check::new(Goal::AtMost(1.5), ours / floor, ratio(ours, floor))],
            how: format!("{runs} runs of bundle::compute after 3 warm-up; pgbench -t {runs} -c 1 of the same statements in one read-only transaction"),
        },
        Row {
            part: "b",
            label: "Miss vs the previous system's 13 separate queries".into(),
            ours: format!("p50 {ours:.1} ms"),
            floor: format!("13 queries by pgbench: {previous_ms:.1} ms"),
            ratio: ratio(ours, previous_ms),
            goal: "(context)".into(),
            checks: Vec::new(),
            how: "the old approach also summed the pipeline over at most 1,000 rows, so its figures were wrong for large tenants".into(),
        },
    ])
}
