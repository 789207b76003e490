//! Freshness: revalidation instead of expiry, one recompute per expiry across instances, stale-if-error.

use std::sync::Arc;
use std::time::Duration;

mod common;

use chrono::{TimeDelta, TimeZone, Utc};
use dashboard_bundle::State;
use serde_json::Value;
use shared::clock::Clock;
use shared::keys::{BundleId, Scope};
use sqlx::PgPool;
use test_support::{self as testing, TestEnv};
use uuid::Uuid;

/// 00:00:30 UTC: a warm run has just finished.
fn just_after_midnight() -> Clock {
    Clock::starting_at(Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 30).unwrap())
}

/// One Lambda environment of the function, over the test's database (or PgBouncer in front of it).
fn instance(env: &TestEnv, pool: &PgPool, clock: &Clock) -> State {
    common::state_over(env, env.database(pool), clock.clone())
}

async fn get(state: &State, tenant: Uuid) -> (String, Value) {
    let reply = common::get(state, tenant).await;
    (reply.outcome(), reply.body)
}

async fn add_lead(pool: &PgPool, tenant: Uuid) {
    sqlx::query("INSERT INTO leads (tenant_id) VALUES ($1)")
        .bind(tenant)
        .execute(pool)
        .await
        .unwrap();
}

fn leads(body: &Value) -> i64 {
    body["data"]["stats"]["totalLeads"].as_i64().unwrap()
}

async fn setup(pool: &PgPool) -> (TestEnv, Uuid) {
    let tenant = testing::insert_tenant(pool, "acme").await;
    add_lead(pool, tenant).await;
    (TestEnv::new(), tenant)
}

#[sqlx::test(migrations = "../../migrations")]
async fn warmed_bundle_is_a_hit_eight_hours_later_without_any_recompute(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let clock = just_after_midnight();
    let state = instance(&env, &pool, &clock);
    state
        .bundles
        .refresh(
            BundleId::new(Scope::Tenant(tenant), true),
            Duration::from_secs(90_000),
        )
        .await
        .unwrap();
    let after_warm = state.bundles.recomputes();

    clock.advance(TimeDelta::hours(8));
    let (x_cache, body) = get(&state, tenant).await;
    assert_eq!(x_cache, "HIT");
    assert_eq!(leads(&body), 1);
    assert_eq!(
        state.bundles.recomputes(),
        after_warm,
        "revalidated, not recomputed"
    );
    let (x_cache, _) = get(&state, tenant).await;
    assert_eq!(x_cache, "HIT");
    assert_eq!(state.bundles.recomputes(), after_warm);
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_write_is_visible_once_the_ttl_has_passed(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let clock = just_after_midnight();
    let state = instance(&env, &pool, &clock);
    assert_eq!(get(&state, tenant).await.0, "MISS");
    add_lead(&pool, tenant).await;

    clock.advance(TimeDelta::seconds(299));
    let (x_cache, body) = get(&state, tenant).await;
    assert_eq!(
        (x_cache.as_str(), leads(&body)),
        ("HIT", 1),
        "within the TTL the entry is served as is"
    );
    clock.advance(TimeDelta::seconds(2));
    let (x_cache, body) = get(&state, tenant).await;
    assert_eq!((x_cache.as_str(), leads(&body)), ("MISS", 2));
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn with_ttl_zero_the_very_next_request_sees_a_write(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let env = env.set("BUNDLE_TTL_SECONDS", "0");
    let state = instance(&env, &pool, &just_after_midnight());
    assert_eq!(get(&state, tenant).await.0, "MISS");
    assert_eq!(get(&state, tenant).await.0, "HIT", "unchanged data revalidates");
    assert_eq!(state.bundles.recomputes(), 1);
    add_lead(&pool, tenant).await;
    let (x_cache, body) = get(&state, tenant).await;
    assert_eq!((x_cache.as_str(), leads(&body)), ("MISS", 2));
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_new_utc_day_recomputes_even_without_writes(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let clock = Clock::starting_at(Utc.with_ymd_and_hms(2026, 3, 10, 23, 0, 0).unwrap());
    let state = instance(&env, &pool, &clock);
    get(&state, tenant).await;
    clock.advance(TimeDelta::hours(2));
    assert_eq!(
        get(&state, tenant).await.0,
        "MISS",
        "the 30-day window moved at midnight"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}

/// 200 requests at once, each through its own instance (own Redis connection), as 200 Lambda
/// execution environments would. Returns the X-Cache values and the total recomputes.
async fn stampede(env: &TestEnv, pool: &PgPool, clock: &Clock, tenant: Uuid) -> (Vec<String>, u64) {
    // A lease long enough for a loaded test machine: what is tested is that waiters wait for the
    // holder, not how long a lease lives (a_dead_lease_holder_... tests that).
    let env = &env.clone().set("BUNDLE_LEASE_MS", "30000");
    let db = env.database(pool);
    let instances: Vec<Arc<State>> = (0..200)
        .map(|_| Arc::new(common::state_over(env, db.clone(), clock.clone())))
        .collect();
    let tasks: Vec<_> = instances
        .iter()
        .map(|state| {
            let state = state.clone();
            tokio::spawn(async move { get(&state, tenant).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let (x_cache, body) = task.await.unwrap();
        assert_eq!(body["status"], "success", "{body}");
        statuses.push(x_cache);
    }
    (statuses, instances.iter().map(|s| s.bundles.recomputes()).sum())
}

#[sqlx::test(migrations = "../../migrations")]
async fn two_hundred_concurrent_requests_on_a_cold_key_compute_once(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let (statuses, recomputes) = stampede(&env, &pool, &just_after_midnight(), tenant).await;
    assert_eq!(recomputes, 1);
    assert_eq!(statuses.iter().filter(|s| *s == "MISS").count(), 1);
    assert_eq!(statuses.iter().filter(|s| *s == "HIT").count(), 199);
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn two_hundred_concurrent_requests_on_an_expired_key_compute_once_and_serve_stale(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let clock = just_after_midnight();
    get(&instance(&env, &pool, &clock), tenant).await;
    add_lead(&pool, tenant).await;
    clock.advance(TimeDelta::minutes(10));

    let (statuses, recomputes) = stampede(&env, &pool, &clock, tenant).await;
    assert_eq!(recomputes, 1);
    assert_eq!(statuses.iter().filter(|s| *s == "MISS").count(), 1);
    let fast = statuses.iter().filter(|s| *s == "STALE" || *s == "HIT").count();
    assert_eq!(fast, 199, "{statuses:?}");
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_dead_lease_holder_blocks_the_key_only_until_its_lease_expires(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let state = instance(&env, &pool, &just_after_midnight());
    // A holder that took the lease and died mid-compute.
    let lease = state
        .bundles
        .keys()
        .recompute_lease(BundleId::new(Scope::Tenant(tenant), true));
    let taken = state
        .bundles
        .redis()
        .acquire_lease(&lease, Duration::from_millis(400))
        .await
        .unwrap();
    assert!(taken.is_some());

    let started = std::time::Instant::now();
    let (x_cache, body) = get(&state, tenant).await;
    assert_eq!((x_cache.as_str(), leads(&body)), ("MISS", 1));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waited for the lease"
    );
    assert_eq!(state.bundles.recomputes(), 1);
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn postgres_down_serves_the_stale_entry_and_503_without_one(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let clock = just_after_midnight();
    let (_, fresh) = get(&instance(&env, &pool, &clock), tenant).await;

    clock.advance(TimeDelta::hours(1));
    let down = common::state_over(&env, testing::dead_database(), clock.clone());
    let (x_cache, body) = get(&down, tenant).await;
    assert_eq!(x_cache, "STALE");
    assert_eq!(body["cached"], true);
    assert_eq!(
        body["data"]["meta"]["generated_at"],
        fresh["data"]["meta"]["generated_at"]
    );

    let elsewhere = common::state_over(&TestEnv::new(), testing::dead_database(), clock.clone());
    assert_eq!(get(&elsewhere, tenant).await.0, "503");
    testing::cleanup_prefix(&env.prefix()).await;
}
