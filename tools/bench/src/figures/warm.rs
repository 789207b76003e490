//! Warming every active tenant vs pgbench running the same queries at the same concurrency.

use std::time::{Duration, Instant};

use anyhow::Result;
use shared::bundle::identity::{BundleId, Scope};
use uuid::Uuid;
use warm_cache::deadline::Deadline;
use warm_cache::input::Input;

use super::context::{status_kib, Context, Statements};
use crate::floors;
use crate::report::{Check, Goal, Row};

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let concurrency = 8u32;
    let env = ctx
        .env()
        .set("WARM_CONCURRENCY", concurrency.to_string())
        .set("WARM_TTL_SECONDS", "90000")
        // The run's own pool (see warm_on_own_runtime), one connection per tenant in flight.
        .set("DB_POOL_SIZE", concurrency.to_string())
        .set("WARM_FANOUT_THRESHOLD", u64::MAX.to_string())
        .set("WARM_TENANT_TIMEOUT_MS", "120000")
        .set("WARM_DEADLINE_MARGIN_MS", "120000");
    let config = warm_cache::config::Config::from_env(&env.as_env()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = warm_cache::WarmState::with_database(config.clone(), ctx.db(), None)?;
    let active: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM tenant WHERE status = 'active' ORDER BY id")
        .fetch_all(&ctx.pool)
        .await?;
    // Peak memory of the run alone: reset the high-water mark first.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let cpu_before = floors::postgres_cpu_seconds();
    let (warmer_before, redis_before) = (floors::cpu_seconds("bench"), floors::cpu_seconds("redis-server"));
    let started = Instant::now();
    let (bundles_warmed, failures) = warm_on_own_runtime(
        config.clone(),
        Input::Manual {
            tenant_ids: active.clone(),
        },
    )?;
    let tenants_wall = started.elapsed().as_secs_f64();
    let db_ms = per_bundle_ms(cpu_before, floors::postgres_cpu_seconds(), bundles_warmed);
    let warmer_ms = per_bundle_ms(warmer_before, floors::cpu_seconds("bench"), bundles_warmed);
    let redis_ms = per_bundle_ms(redis_before, floors::cpu_seconds("redis-server"), bundles_warmed);
    let peak_mb = status_kib("VmHWM").map(|kb| kb as f64 / 1024.0).unwrap_or(0.0);
    let global_started = Instant::now();
    for include in [true, false] {
        state
            .bundles
            .refresh(BundleId::new(Scope::Global, include), Duration::from_secs(90_000))
            .await?;
    }
    let global_wall = global_started.elapsed().as_secs_f64();
    let rate = bundles_warmed as f64 / tenants_wall;

    let mut script = vec![
        "\\set n random(2, 10000)".to_owned(),
        "\\set inc random(0, 1)".to_owned(),
        "SELECT id AS tid FROM bench_tenant WHERE n = :n \\gset".to_owned(),
    ];
    script.extend(ctx.literal_sql(":tid", "(:inc = 1)"));
    let path = ctx.script("warm.sql", &script)?;
    let transactions = 2 * active.len() as u32 / concurrency;
    let floor = |path: &std::path::Path, mode: &str| -> Result<(f64, String)> {
        let before = floors::postgres_cpu_seconds();
        let (_, tps) = floors::pgbench_in_mode(&ctx.database_url, path, concurrency, transactions, "", mode)?;
        Ok((
            tps,
            per_bundle_ms(
                before,
                floors::postgres_cpu_seconds(),
                u64::from(transactions * concurrency),
            ),
        ))
    };
    let (tps, floor_db_ms) = floor(&path, "prepared")?;
    let (unprepared_tps, unprepared_db_ms) = floor(&path, "extended")?;
    // What the warmer sends: a tenant's statements as calls of their functions, as text (pgbench
    // writes a variable's value into the text in simple mode, so the UUID is quoted here).
    let mut calls = script[..3].to_vec();
    calls.extend(ctx.literal_sql_of(Some("':tid'"), "(:inc = 1)", Statements::Calls));
    let calls = ctx.script("warm-calls.sql", &calls)?;
    let (calls_tps, calls_db_ms) = floor(&calls, "simple")?;
    Ok(vec![Row {
        part: "",
        label: format!("Warm: {} active tenants × 2 variants", active.len()),
        ours: format!(
            "{tenants_wall:.1} s, {rate:.0} bundles/s ({} failures), database CPU {db_ms} per bundle, peak RSS {peak_mb:.0} MB; + global view {global_wall:.1} s",
            failures
        ),
        floor: format!("pgbench -M prepared, same queries, {concurrency} clients: {tps:.0} bundles/s, database CPU {floor_db_ms} per bundle"),
        ratio: format!("{:.0}%", 100.0 * rate / tps),
        goal: "≥ 80%".into(),
        checks: vec![Check::new(
            Goal::AtLeast(0.80),
            rate / tps,
            format!("{:.0}%", 100.0 * rate / tps),
        )],
        how: format!("warm_cache::warm on a current-thread runtime, as its main sets up, with WARM_CONCURRENCY={concurrency} (compute, serialize, compress, SET; warm times recorded 200 tenants a statement); pgbench -c {concurrency} -t {transactions}, a random tenant and variant per transaction, no Redis; database CPU = the CPU time of the server's processes over the run (/proc), per bundle"),
    }, Row {
        part: "b",
        label: "Warm: where the time goes".into(),
        ours: format!("{rate:.0} bundles/s, per bundle: database CPU {db_ms}, the warmer's own CPU {warmer_ms} (rows, JSON, compression, Redis client), Redis's {redis_ms}"),
        floor: format!("pgbench -M extended (each statement parsed and planned on every run, as the warmer's must be through a pooler): {unprepared_tps:.0} bundles/s, database CPU {unprepared_db_ms} per bundle"),
        ratio: format!("{:.0}%", 100.0 * rate / unprepared_tps),
        goal: "(context)".into(),
        checks: vec![],
        how: "the same statements and clients as the row above; the gap between -M prepared and -M extended is Postgres parsing and planning each statement".into(),
    }, Row {
        part: "c",
        label: "Warm: the statements as the warmer sends them".into(),
        ours: format!("{rate:.0} bundles/s, database CPU {db_ms} per bundle"),
        floor: format!("pgbench -M simple of the same transactions, a tenant's statements as calls of their functions (dashboard_cache.tenant_stats, ...): {calls_tps:.0} bundles/s, database CPU {calls_db_ms} per bundle"),
        ratio: format!("{:.0}%", 100.0 * rate / calls_tps),
        goal: "(context)".into(),
        checks: vec![],
        how: "the same clients, each statement a round trip of its own (the warmer sends a bundle's statements in two batches); each function keeps its statement's generic plan per server connection".into(),
    }])
}

/// The database's CPU since `before`, per bundle, as text ("n.a." where /proc cannot say).
fn per_bundle_ms(before: Option<f64>, after: Option<f64>, bundles: u64) -> String {
    match (before, after) {
        (Some(before), Some(after)) if bundles > 0 => {
            format!("{:.2} ms", 1000.0 * (after - before) / bundles as f64)
        }
        _ => "n.a.".into(),
    }
}

/// `warm_cache::warm` on a current-thread runtime of its own, as the function's `main` sets it up
/// (with its own pool and Redis connection, whose sockets belong to that runtime). Returns the bundles
/// warmed and the failures.
fn warm_on_own_runtime(config: warm_cache::config::Config, input: Input) -> Result<(u64, u64)> {
    std::thread::spawn(move || -> Result<_> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let db = shared::platform::db::Database::connect_lazy(&config.database)?;
            let state = warm_cache::WarmState::with_database(config, db, None)?;
            let summary = warm_cache::warm(&state, &input, Deadline::none())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok((summary.bundles_warmed, summary.failures))
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the warm thread panicked"))?
}
