//! `BENCH_FIGURES=warm-replay` (part of the full run): the headline predictive policy of
//! `warm-modes` replayed through the real warmer and the real request path for a sample of the same
//! simulated tenants, with a simulated clock, beside the reduced model on the same sample.
//!
//! The sample's tenants (with their zones) live in a database of their own
//! (`<bench database>_warm_replay`, recreated each run, migrated); its reads are `GET
//! /api/reports/dashboard-bundle` requests through `dashboard_bundle::route` with an employee token
//! (status from `X-Cache`); its writes insert a lead (the change triggers move the tenant's version);
//! and each hourly run is a Scheduler event through `warm_cache::warm_event`, reading the histories the
//! requests recorded in Redis. One clock, set to each step's time, drives both functions (it runs on in
//! real time within a step, so an entry is stamped a few milliseconds after its step). Like every
//! figure but `warm-modes`, it runs after the bench dataset exists (generated once).

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, Result};
use chrono::{DateTime, NaiveDate, Utc};
use shared::auth::Role;
use shared::bundle::tenant_time::Zone;
use shared::platform::clock::Clock;
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};
use test_support::{event, request, with_token, TestEnv};
use uuid::Uuid;

use super::context::Context;
use super::warm_modes::policy::{self, Step};
use super::warm_modes::population::{self, Kind};
use super::warm_modes::HEADLINE;
use crate::report::{Check, Goal, Row};

/// Tenants of the simulated population replayed for real (about half of them ever read).
const SAMPLE: usize = 200;

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let url = replay_database_url(&ctx.database_url)?;
    if Postgres::database_exists(&url).await? {
        Postgres::force_drop_database(&url).await?;
    }
    Postgres::create_database(&url).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await?;
    let prefix = format!("bench-replay:{}:", Uuid::new_v4().simple());
    let env = ctx
        .env()
        .set("DATABASE_URL", url.clone())
        .set("CACHE_KEY_PREFIX", prefix.clone());
    let replayed = replay(&pool, env.clone()).await;
    // Cleaned up whatever the replay's outcome.
    if let Ok(cache) = shared::store::RedisCache::new(&env.redis()) {
        if let Err(e) = cache.unlink_matching(&format!("{prefix}*")).await {
            eprintln!("bench: could not remove the replay's Redis keys: {e}");
        }
    }
    pool.close().await;
    if let Err(e) = Postgres::force_drop_database(&url).await {
        eprintln!("bench: could not drop the replay database: {e}");
    }
    replayed
}

async fn replay(pool: &PgPool, env: TestEnv) -> Result<Vec<Row>> {
    let start = population::start();
    let (name, policy) = policy::headline_policy();
    let (zone_names, habits) = population::population_of(HEADLINE, 0);
    let zones: Vec<Zone> = zone_names.iter().map(|n| Zone::parse(Some(n))).collect();
    let (events, _) = population::workload(start, &zones, &habits, 0);
    let events: Vec<population::Event> = events
        .into_iter()
        .filter(|(_, _, t)| (*t as usize) < SAMPLE)
        .collect();
    let model = policy::replay(start, &policy, &zones[..SAMPLE], &events);

    shared::platform::db::MIGRATOR
        .run(pool)
        .await
        .context("migrating the replay database")?;
    let mut ids = Vec::with_capacity(SAMPLE);
    for (t, zone) in zone_names.iter().take(SAMPLE).enumerate() {
        let id: Uuid =
            sqlx::query_scalar("INSERT INTO tenant (slug, name, timezone) VALUES ($1, $1, $2) RETURNING id")
                .bind(format!("sim-{t}"))
                .bind(zone)
                .fetch_one(pool)
                .await?;
        ids.push(id);
    }
    let index: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(t, id)| (*id, t)).collect();

    let env = env
        .set("WARM_MODE", policy.mode.as_str())
        .set("WARM_LOCAL_HOUR", policy.local_hour.to_string())
        .set("WARM_PREDICTIVE", policy.predictive.to_string())
        .set("WARM_LEAD_MINUTES", policy.lead.num_minutes().to_string())
        .set(
            "WARM_IDLE_DAYS",
            policy.idle_days.map(|d| d.to_string()).unwrap_or_default(),
        )
        .set("BUNDLE_TTL_SECONDS", policy::FRESH_FOR.num_seconds().to_string())
        .set("WARM_CHECK_SAMPLE", "0")
        .set("WARM_CONCURRENCY", "4");
    let clock = Clock::starting_at(start);
    let db = env.database(pool);
    let warm_config = warm_cache::config::Config::from_env(&env.as_env())
        .map_err(|e| anyhow::anyhow!("warm config: {e}"))?;
    let warmer = warm_cache::WarmState::with_clock(warm_config, db.clone(), None, clock.clone())?;
    let dashboard_config = dashboard_bundle::config::Config::from_env(&env.as_env())
        .map_err(|e| anyhow::anyhow!("dashboard config: {e}"))?;
    let dashboard = dashboard_bundle::State::with_database(dashboard_config, db, clock.clone())?;
    let tokens: Vec<String> = ids
        .iter()
        .map(|id| test_support::token(Role::Admin, Some(*id)))
        .collect();
    // Reads counted as recorded from the first run's instant exactly, as the model has it (the first
    // run would store its own clock, a few milliseconds on, and so believe "idle" that much later).
    warmer.bundles.reads_recorded_since(start).await?;

    let mut real = Real::default();
    let mut last_read_day: Vec<Option<NaiveDate>> = vec![None; SAMPLE];
    // The clock runs on in real time between steps; each step sets it back to the step's instant.
    let set = |at: DateTime<Utc>| clock.advance(at - clock.now());
    for step in policy::steps(start, &policy, &events) {
        match step {
            Step::Run(at) => {
                set(at);
                let summary = scheduled_run(&warmer, at).await?;
                real.failures += summary["failures"]
                    .as_u64()
                    .context("the run's summary has no failures count")?;
                // The tenants this run warmed, each counted on its own local day.
                let warmed: Vec<Uuid> =
                    sqlx::query_scalar("SELECT tenant_id FROM tenant_warm_state WHERE last_warmed_at >= $1")
                        .bind(at)
                        .fetch_all(pool)
                        .await?;
                for id in warmed {
                    let t = index
                        .get(&id)
                        .context("a warmed tenant the replay did not create")?;
                    if population::measured_date(start, zones[*t].date_at(at)) {
                        real.warm_computations += 1;
                    }
                }
            }
            Step::Event((at, Kind::Write, t)) => {
                sqlx::query("INSERT INTO leads (tenant_id, created_date) VALUES ($1, $2)")
                    .bind(ids[t as usize])
                    .bind(at)
                    .execute(pool)
                    .await?;
            }
            Step::Event((at, Kind::Read, t)) => {
                set(at);
                let t = t as usize;
                let ev = with_token(event("dashboard-bundle.json"), Some(&tokens[t]));
                let response = dashboard_bundle::route(&dashboard, request(&ev))
                    .await
                    .map_err(|e| anyhow::anyhow!("dashboard route: {e}"))?;
                let hit = response
                    .headers()
                    .get("x-cache")
                    .is_some_and(|v| v.as_bytes() == b"HIT");
                if !response.status().is_success() {
                    real.failures += 1;
                }
                let day = zones[t].date_at(at);
                if population::measured_date(start, day) {
                    real.request_computations += u64::from(!hit);
                    if last_read_day[t] != Some(day) {
                        real.firsts.insert((t as u32, day), hit);
                    }
                }
                last_read_day[t] = Some(day);
            }
        }
    }
    Ok(report(name, &model, &real))
}

#[derive(Default)]
struct Real {
    firsts: BTreeMap<(u32, NaiveDate), bool>,
    warm_computations: u64,
    request_computations: u64,
    /// Runs' failures and reads that were not answered 200.
    failures: u64,
}

fn report(name: &str, model: &policy::Outcome, real: &Real) -> Vec<Row> {
    let share = |hits: usize, of: usize| 100.0 * hits as f64 / of.max(1) as f64;
    let real_hits = real.firsts.values().filter(|hit| **hit).count();
    let agree = model
        .firsts
        .iter()
        .filter(|(t, day, hit)| real.firsts.get(&(*t, *day)) == Some(hit))
        .count();
    let compared = model.firsts.len().max(real.firsts.len());
    let agreement = format!("{agree} of {compared} first reads agree");
    let days = population::MEASURED_DAYS as f64;
    let how = format!("{SAMPLE} tenants of the headline population, real handlers, simulated clock");
    vec![
        Row {
            part: "a",
            label: format!("First read of a tenant-day that is a HIT, real path, {name}"),
            ours: format!(
                "{:.2} % of {}",
                share(real_hits, real.firsts.len()),
                real.firsts.len()
            ),
            floor: format!(
                "model on the same tenants: {:.2} % of {}",
                share(model.first_read_hits as usize, model.firsts.len()),
                model.firsts.len()
            ),
            ratio: agreement.clone(),
            goal: "all agree".into(),
            checks: vec![Check::new(
                Goal::Exactly(compared as f64),
                agree as f64,
                agreement,
            )],
            how: how.clone(),
        },
        Row {
            part: "b",
            label: format!("Tenants warmed / bundles computed on requests per day, real path, {name}"),
            ours: format!(
                "{:.1} / {:.1}",
                real.warm_computations as f64 / days,
                real.request_computations as f64 / days
            ),
            floor: format!(
                "model: {:.1} / {:.1}",
                model.warm_computations as f64 / days,
                model.request_computations as f64 / days
            ),
            ratio: format!("{} failures", real.failures),
            goal: "0 failures".into(),
            checks: vec![Check::new(
                Goal::Exactly(0.0),
                real.failures as f64,
                format!("{} failures", real.failures),
            )],
            how,
        },
    ]
}

/// One hourly Scheduler execution of the warmer at `at`.
async fn scheduled_run(warmer: &warm_cache::WarmState, at: DateTime<Utc>) -> Result<serde_json::Value> {
    warm_cache::warm_event(warmer, test_support::scheduled_warm(at))
        .await
        .map_err(|e| anyhow::anyhow!("warm run at {at}: {e}"))
}

/// The bench database's URL with `_warm_replay` appended to its database name.
fn replay_database_url(bench: &str) -> Result<String> {
    let mut url = url::Url::parse(bench).context("BENCH_DATABASE_URL is not a URL")?;
    let name = url.path().trim_matches('/');
    let name = if name.is_empty() { "postgres" } else { name };
    let replay = format!("/{name}_warm_replay");
    url.set_path(&replay);
    Ok(url.to_string())
}
