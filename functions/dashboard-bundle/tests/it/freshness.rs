//! Freshness: revalidation instead of expiry, one recompute per expiry across instances, stale-if-error,
//! and stores that never go backwards: a slow instance's older entry never replaces a newer one, and a
//! `HIT` never lacks a write committed before the request.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use dashboard_bundle::State;
use serde_json::Value;
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::platform::clock::Clock;
use sqlx::PgPool;
use test_support::{self as testing, FaultProxy, Mode, TestEnv};
use uuid::Uuid;

/// 00:00:30 UTC: a warm run has just finished.
fn just_after_midnight() -> Clock {
    Clock::starting_at(Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 30).unwrap())
}

/// One Lambda environment of the function, over the test's database (or PgBouncer in front of it).
fn instance(env: &TestEnv, pool: &PgPool, clock: &Clock) -> State {
    crate::app::state_over(env, env.database(pool), clock.clone())
}

/// One Lambda environment whose Postgres and/or Redis traffic passes through a proxy, so that the
/// test can stop it part-way through its work (a slow computation, a store that lands late).
fn instance_through(
    env: &TestEnv,
    pool: &PgPool,
    clock: &Clock,
    pg: Option<&FaultProxy>,
    redis: Option<&FaultProxy>,
) -> Arc<State> {
    let env = match redis {
        // A held command waits for the test, not for a network: no response timeout in between.
        Some(proxy) => env
            .clone()
            .set("REDIS_URL", format!("redis://{}", proxy.addr()))
            .set("REDIS_RESPONSE_TIMEOUT_MS", "10000"),
        None => env.clone(),
    };
    let db = match pg {
        Some(proxy) => {
            shared::platform::db::Database::new(testing::pool_at(pool, proxy.addr()), &env.database_config())
        }
        None => env.database(pool),
    };
    Arc::new(crate::app::state_over(&env, db, clock.clone()))
}

/// Runs `state`'s `get` for `tenant` in a task of its own.
fn spawn_get(state: &Arc<State>, tenant: Uuid) -> tokio::task::JoinHandle<(String, Value)> {
    let state = state.clone();
    tokio::spawn(async move { crate::app::outcome_and_body(&state, tenant).await })
}

/// Runs a warm refresh (what the warmer does for each bundle) in a task of its own.
fn spawn_refresh(
    state: &Arc<State>,
    tenant: Uuid,
) -> tokio::task::JoinHandle<Result<bool, shared::bundle::BundleError>> {
    let state = state.clone();
    tokio::spawn(async move {
        state
            .bundles
            .refresh(
                BundleId::new(Scope::Tenant(tenant), true),
                Duration::from_secs(90_000),
            )
            .await
    })
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
    let (x_cache, body) = crate::app::outcome_and_body(&state, tenant).await;
    assert_eq!(x_cache, "HIT");
    assert_eq!(leads(&body), 1);
    assert_eq!(
        state.bundles.recomputes(),
        after_warm,
        "revalidated, not recomputed"
    );
    let (x_cache, _) = crate::app::outcome_and_body(&state, tenant).await;
    assert_eq!(x_cache, "HIT");
    assert_eq!(state.bundles.recomputes(), after_warm);
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_write_is_visible_once_the_ttl_has_passed(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let clock = just_after_midnight();
    let state = instance(&env, &pool, &clock);
    assert_eq!(crate::app::outcome_and_body(&state, tenant).await.0, "MISS");
    add_lead(&pool, tenant).await;

    clock.advance(TimeDelta::seconds(299));
    let (x_cache, body) = crate::app::outcome_and_body(&state, tenant).await;
    assert_eq!(
        (x_cache.as_str(), leads(&body)),
        ("HIT", 1),
        "within the TTL the entry is served as is"
    );
    clock.advance(TimeDelta::seconds(2));
    let (x_cache, body) = crate::app::outcome_and_body(&state, tenant).await;
    assert_eq!((x_cache.as_str(), leads(&body)), ("MISS", 2));
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn with_ttl_zero_the_very_next_request_sees_a_write(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let env = env.set("BUNDLE_TTL_SECONDS", "0");
    let state = instance(&env, &pool, &just_after_midnight());
    assert_eq!(crate::app::outcome_and_body(&state, tenant).await.0, "MISS");
    assert_eq!(
        crate::app::outcome_and_body(&state, tenant).await.0,
        "HIT",
        "unchanged data revalidates"
    );
    assert_eq!(state.bundles.recomputes(), 1);
    add_lead(&pool, tenant).await;
    let (x_cache, body) = crate::app::outcome_and_body(&state, tenant).await;
    assert_eq!((x_cache.as_str(), leads(&body)), ("MISS", 2));
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_new_utc_day_recomputes_even_without_writes(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let clock = Clock::starting_at(Utc.with_ymd_and_hms(2026, 3, 10, 23, 0, 0).unwrap());
    let state = instance(&env, &pool, &clock);
    crate::app::outcome_and_body(&state, tenant).await;
    clock.advance(TimeDelta::hours(2));
    assert_eq!(
        crate::app::outcome_and_body(&state, tenant).await.0,
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
        .map(|_| Arc::new(crate::app::state_over(env, db.clone(), clock.clone())))
        .collect();
    let tasks: Vec<_> = instances
        .iter()
        .map(|state| {
            let state = state.clone();
            tokio::spawn(async move { crate::app::outcome_and_body(&state, tenant).await })
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
    crate::app::outcome_and_body(&instance(&env, &pool, &clock), tenant).await;
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
    let id = BundleId::new(Scope::Tenant(tenant), true);
    let lease = state.bundles.keys().recompute_lease(id);
    let (taken, _) = state
        .bundles
        .redis()
        .acquire_lease_reading(
            &lease,
            Duration::from_millis(400),
            &state.bundles.keys().bundle(id),
        )
        .await
        .unwrap();
    assert!(taken.is_some());

    let started = std::time::Instant::now();
    let (x_cache, body) = crate::app::outcome_and_body(&state, tenant).await;
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
    let (_, fresh) = crate::app::outcome_and_body(&instance(&env, &pool, &clock), tenant).await;

    clock.advance(TimeDelta::hours(1));
    let down = crate::app::state_over(&env, testing::dead_database(), clock.clone());
    let (x_cache, body) = crate::app::outcome_and_body(&down, tenant).await;
    assert_eq!(x_cache, "STALE");
    assert_eq!(body["cached"], true);
    assert_eq!(
        body["data"]["meta"]["generated_at"],
        fresh["data"]["meta"]["generated_at"]
    );

    let elsewhere = crate::app::state_over(&TestEnv::new(), testing::dead_database(), clock.clone());
    assert_eq!(crate::app::outcome_and_body(&elsewhere, tenant).await.0, "503");
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_holder_whose_lease_expired_cannot_replace_the_entry_with_the_users_write(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let clock = just_after_midnight();
    let pg = FaultProxy::start(crate::app::pg_addr(&pool)).await;
    let redis = FaultProxy::start(crate::app::shared_redis_addr()).await;
    let slow = instance_through(&env, &pool, &clock, Some(&pg), Some(&redis));
    let other = instance(&env, &pool, &clock);

    // The slow instance takes the lease and stalls before its first query...
    pg.set(Mode::Held);
    let slow_request = spawn_get(&slow, tenant);
    pg.until_held().await;
    // ...long enough for its lease to expire; then it computes (one lead) and stalls again before
    // its store reaches Redis.
    let lease = other
        .bundles
        .keys()
        .recompute_lease(BundleId::new(Scope::Tenant(tenant), true));
    other.bundles.redis().unlink(&[lease]).await.unwrap();
    redis.set(Mode::Held);
    pg.set(Mode::Healed);
    redis.until_held().await;

    // The user writes and reads through another instance, which takes the free lease: their lead is there.
    add_lead(&pool, tenant).await;
    let (x_cache, body) = crate::app::outcome_and_body(&other, tenant).await;
    assert_eq!((x_cache.as_str(), leads(&body)), ("MISS", 2));

    // The slow store lands late. The user's next read, in yet another environment and within the
    // TTL, must still have their lead.
    redis.set(Mode::Healed);
    let (_, slow_body) = slow_request.await.unwrap();
    assert_eq!(leads(&slow_body), 1, "computed before the write");
    let (x_cache, body) = crate::app::outcome_and_body(&instance(&env, &pool, &clock), tenant).await;
    assert_eq!(
        (x_cache.as_str(), leads(&body)),
        ("HIT", 2),
        "the slow holder's older entry replaced the newer one"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_warm_refresh_computed_before_a_write_cannot_replace_the_entry_with_it(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let clock = just_after_midnight();
    let redis = FaultProxy::start(crate::app::shared_redis_addr()).await;
    let warmer = instance_through(&env, &pool, &clock, None, Some(&redis));

    // The warm refresh computes (one lead) and stalls before its store reaches Redis.
    redis.set(Mode::Held);
    let refresh = spawn_refresh(&warmer, tenant);
    redis.until_held().await;

    add_lead(&pool, tenant).await;
    let (x_cache, body) = crate::app::outcome_and_body(&instance(&env, &pool, &clock), tenant).await;
    assert_eq!((x_cache.as_str(), leads(&body)), ("MISS", 2));

    redis.set(Mode::Healed);
    assert!(
        refresh.await.unwrap().unwrap(),
        "a store refused for a newer entry is not a failed warm"
    );
    let (x_cache, body) = crate::app::outcome_and_body(&instance(&env, &pool, &clock), tenant).await;
    assert_eq!(
        (x_cache.as_str(), leads(&body)),
        ("HIT", 2),
        "the warm refresh's older entry replaced the newer one"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn with_ttl_zero_a_hit_never_lacks_the_users_write_even_when_a_newer_entry_lands(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let env = env.set("BUNDLE_TTL_SECONDS", "0");
    let clock = just_after_midnight();
    let pg = FaultProxy::start(crate::app::pg_addr(&pool)).await;
    let redis = FaultProxy::start(crate::app::shared_redis_addr()).await;
    let user_side = instance_through(&env, &pool, &clock, Some(&pg), None);
    let warmer = instance_through(&env, &pool, &clock, None, Some(&redis));
    assert_eq!(crate::app::outcome_and_body(&user_side, tenant).await.0, "MISS");

    // A warm refresh a second later computes the same data (one lead), and is slow to store it.
    clock.advance(TimeDelta::seconds(1));
    redis.set(Mode::Held);
    let refresh = spawn_refresh(&warmer, tenant);
    redis.until_held().await;

    // The user writes, then reads: the request finds the first entry and stalls before it reads
    // the data version...
    add_lead(&pool, tenant).await;
    pg.set(Mode::Held);
    let request = spawn_get(&user_side, tenant);
    pg.until_held().await;
    // ...while the refresh's entry lands: generated later than the one the request found, but
    // computed before the write.
    redis.set(Mode::Healed);
    assert!(refresh.await.unwrap().unwrap());
    pg.set(Mode::Healed);

    let (x_cache, body) = request.await.unwrap();
    assert_eq!(
        (x_cache.as_str(), leads(&body)),
        ("MISS", 2),
        "the user's own write is missing"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn with_ttl_zero_a_request_waiting_for_the_holder_never_gets_a_hit_without_its_write(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let env = env.set("BUNDLE_TTL_SECONDS", "0");
    let clock = just_after_midnight();
    let holder_pg = FaultProxy::start(crate::app::pg_addr(&pool)).await;
    let holder_redis = FaultProxy::start(crate::app::shared_redis_addr()).await;
    let waiter_redis = FaultProxy::start(crate::app::shared_redis_addr()).await;
    let holder = instance_through(&env, &pool, &clock, Some(&holder_pg), Some(&holder_redis));
    let waiter = instance_through(&env, &pool, &clock, None, Some(&waiter_redis));

    // The holder takes the lease of the empty key, computes (one lead), and stalls before its
    // store reaches Redis.
    holder_pg.set(Mode::Held);
    let slow_request = spawn_get(&holder, tenant);
    holder_pg.until_held().await;
    holder_redis.set(Mode::Held);
    holder_pg.set(Mode::Healed);
    holder_redis.until_held().await;

    // The user writes, then reads: nothing is cached and the lease is taken, so the request waits
    // for the holder's value (its read, the lease refused, then polls).
    add_lead(&pool, tenant).await;
    let request = spawn_get(&waiter, tenant);
    while waiter_redis.client_sends() < 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    holder_redis.set(Mode::Healed);
    assert_eq!(
        leads(&slow_request.await.unwrap().1),
        1,
        "computed before the write"
    );

    let (x_cache, body) = request.await.unwrap();
    assert_ne!(
        (x_cache.as_str(), leads(&body)),
        ("HIT", 1),
        "a HIT without the user's own write"
    );
    assert_eq!(body["status"], "success", "{body}");
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn with_ttl_zero_an_entry_stamped_by_a_clock_running_ahead_is_still_checked(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let env = env.set("BUNDLE_TTL_SECONDS", "0");
    let ahead = just_after_midnight();
    ahead.advance(TimeDelta::seconds(5));
    assert_eq!(
        crate::app::outcome_and_body(&instance(&env, &pool, &ahead), tenant)
            .await
            .0,
        "MISS"
    );

    add_lead(&pool, tenant).await;
    let (x_cache, body) =
        crate::app::outcome_and_body(&instance(&env, &pool, &just_after_midnight()), tenant).await;
    assert_eq!(
        (x_cache.as_str(), leads(&body)),
        ("MISS", 2),
        "served unchecked as if inside the window"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn after_a_restore_sets_versions_back_a_later_entry_is_not_served_as_current(pool: PgPool) {
    let (env, tenant) = setup(&pool).await;
    let env = env.set("BUNDLE_TTL_SECONDS", "0");
    let state = instance(&env, &pool, &just_after_midnight());
    add_lead(&pool, tenant).await;
    assert_eq!(crate::app::outcome_and_body(&state, tenant).await.0, "MISS");
    // A restore from a backup taken before the second lead: its row and its change are gone, so the
    // version is lower than the cached entry's.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET session_replication_role = replica;
         DELETE FROM leads WHERE id = (SELECT id FROM leads WHERE tenant_id = '{tenant}' ORDER BY created_at DESC, id LIMIT 1);
         RESET session_replication_role;
         SELECT dashboard_cache.bundle_stats_compact();
         DELETE FROM dashboard_cache.bundle_stats_base WHERE tenant_id = '{tenant}';
         SELECT dashboard_cache.bundle_stats_repair('{tenant}');"
    )))
    .execute(&pool)
    .await
    .unwrap();

    let (x_cache, body) = crate::app::outcome_and_body(&state, tenant).await;

    assert_eq!(
        (x_cache.as_str(), leads(&body)),
        ("MISS", 1),
        "the lost timeline's entry was served"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}
