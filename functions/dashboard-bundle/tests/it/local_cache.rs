//! The in-memory level: what it serves, for how long, and what it saves Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use dashboard_bundle::State;
use shared::platform::clock::Clock;
use sqlx::PgPool;
use test_support::{self as testing, OwnRedis, Reply, TestEnv};

/// The level on, at the default size, with `max_age_ms`.
fn with_level(env: TestEnv, max_age_ms: u64) -> TestEnv {
    env.set("LOCAL_CACHE_MB", "16")
        .set("LOCAL_CACHE_MAX_AGE_MS", max_age_ms.to_string())
}

fn outcome(reply: &Reply) -> (String, String) {
    (reply.outcome(), reply.level.clone().unwrap_or_default())
}

fn hit(level: &str) -> (String, String) {
    ("HIT".to_owned(), level.to_owned())
}

/// `GET` calls the server has answered so far.
async fn redis_gets(url: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_repeated_read_is_served_from_memory_without_touching_redis(pool: PgPool) {
    let redis = OwnRedis::start();
    let env = with_level(TestEnv::new().set("REDIS_URL", redis.url()), 60_000);
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = crate::app::state(&env, &pool);

    let first = crate::app::get(&state, tenant).await;
    assert_eq!(outcome(&first), ("MISS".to_owned(), "postgres".to_owned()));
    let gets = redis_gets(&redis.url()).await;
    for _ in 0..5 {
        let again = crate::app::get(&state, tenant).await;
        assert_eq!(outcome(&again), hit("memory"));
        assert_eq!(again.body["data"], first.body["data"]);
    }
    assert_eq!(
        redis_gets(&redis.url()).await,
        gets,
        "memory hits read nothing from Redis"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn with_the_level_off_every_read_goes_to_redis(pool: PgPool) {
    let env = TestEnv::new().set("LOCAL_CACHE_MB", "0");
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = crate::app::state(&env, &pool);

    assert_eq!(outcome(&crate::app::get(&state, tenant).await).0, "MISS");
    for _ in 0..3 {
        assert_eq!(outcome(&crate::app::get(&state, tenant).await), hit("redis"));
    }
    assert_eq!(state.bundles.local().entry_count().await, 0);
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_clear_in_another_instance_is_seen_within_the_max_age(pool: PgPool) {
    let env = with_level(TestEnv::new(), 400);
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let reader = crate::app::state(&env, &pool);
    assert_eq!(outcome(&crate::app::get(&reader, tenant).await).0, "MISS");
    assert_eq!(outcome(&crate::app::get(&reader, tenant).await), hit("memory"));

    // Another environment clears the tenant (what clear-cache does: the keys go from Redis).
    let cleared_at = Instant::now();
    let redis = shared::store::RedisCache::new(&env.redis()).unwrap();
    let removed = redis
        .unlink_matching(&format!("{}dashboard:bundle:{tenant}:*", env.prefix()))
        .await
        .unwrap();
    assert_eq!(removed, 1);

    loop {
        let reply = crate::app::get(&reader, tenant).await;
        if reply.outcome() == "MISS" {
            break;
        }
        assert_eq!(outcome(&reply), hit("memory"));
        assert!(
            cleared_at.elapsed() < Duration::from_millis(400),
            "a copy older than LOCAL_CACHE_MAX_AGE_MS was served"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_copy_past_its_freshness_window_is_checked_against_postgres(pool: PgPool) {
    let env = with_level(TestEnv::new().set("BUNDLE_TTL_SECONDS", "60"), 600_000);
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let clock = Clock::default();
    let state = crate::app::state_over(&env, env.database(&pool), clock.clone());
    assert_eq!(outcome(&crate::app::get(&state, tenant).await).0, "MISS");
    assert_eq!(outcome(&crate::app::get(&state, tenant).await), hit("memory"));

    // Past the window, with a write in between: memory must not answer for it.
    clock.advance(TimeDelta::seconds(61));
    sqlx::query("INSERT INTO contacts (tenant_id) VALUES ($1)")
        .bind(tenant)
        .execute(&pool)
        .await
        .unwrap();
    let after_write = crate::app::get(&state, tenant).await;
    assert_eq!(outcome(&after_write), ("MISS".to_owned(), "postgres".to_owned()));
    assert_eq!(after_write.body["data"]["stats"]["totalContacts"], 1);
    // The recomputed entry is what memory serves next.
    let next = crate::app::get(&state, tenant).await;
    assert_eq!(outcome(&next), hit("memory"));
    assert_eq!(next.body["data"]["stats"]["totalContacts"], 1);

    // Past the window without a write: revalidated in Redis, and memory takes the revalidation.
    clock.advance(TimeDelta::seconds(61));
    assert_eq!(outcome(&crate::app::get(&state, tenant).await), hit("redis"));
    assert_eq!(outcome(&crate::app::get(&state, tenant).await), hit("memory"));
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_copy_from_yesterday_is_not_served_after_midnight(pool: PgPool) {
    let env = with_level(TestEnv::new().set("BUNDLE_TTL_SECONDS", "3600"), 600_000);
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let before_midnight = (chrono::Utc::now().date_naive())
        .and_hms_opt(23, 59, 50)
        .unwrap()
        .and_utc();
    let clock = Clock::starting_at(before_midnight);
    let state = crate::app::state_over(&env, env.database(&pool), clock.clone());
    assert_eq!(outcome(&crate::app::get(&state, tenant).await).0, "MISS");
    assert_eq!(outcome(&crate::app::get(&state, tenant).await), hit("memory"));
    clock.advance(TimeDelta::seconds(20));
    assert_eq!(outcome(&crate::app::get(&state, tenant).await).0, "MISS");
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_bust_is_never_served_from_memory_and_replaces_the_copy(pool: PgPool) {
    let env = with_level(TestEnv::new().set("BUST_INTERVAL_MS", "0"), 600_000);
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = crate::app::state(&env, &pool);
    assert_eq!(outcome(&crate::app::get(&state, tenant).await).0, "MISS");
    let token = testing::token(shared::auth::Role::Admin, Some(tenant));
    let bust = testing::with_query(
        testing::with_token(testing::event("dashboard-bundle.json"), Some(&token)),
        "bust_cache=true",
    );
    let busted = crate::app::send(&state, &bust).await;
    assert_eq!(outcome(&busted), ("MISS".to_owned(), "postgres".to_owned()));
    let next = crate::app::get(&state, tenant).await;
    assert_eq!(outcome(&next), hit("memory"));
    assert_eq!(
        next.body["data"]["meta"]["generated_at"], busted.body["data"]["meta"]["generated_at"],
        "memory serves the bust's entry, not the one before it"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn concurrent_reads_of_one_key_in_one_process_make_one_redis_read(pool: PgPool) {
    let redis = OwnRedis::start();
    let env = with_level(TestEnv::new().set("REDIS_URL", redis.url()), 60_000);
    let tenant = testing::insert_tenant(&pool, "acme").await;
    // One environment computes and stores; another, with empty memory, takes 50 reads at once.
    let writer = crate::app::state(&env, &pool);
    assert_eq!(outcome(&crate::app::get(&writer, tenant).await).0, "MISS");
    let reader: Arc<State> = Arc::new(crate::app::state(&env, &pool));

    let gets = redis_gets(&redis.url()).await;
    let reads: Vec<_> = (0..50)
        .map(|_| {
            let reader = reader.clone();
            tokio::spawn(async move { crate::app::get(&reader, tenant).await })
        })
        .collect();
    for read in reads {
        let reply = read.await.unwrap();
        assert_eq!(reply.outcome(), "HIT");
    }
    assert_eq!(
        redis_gets(&redis.url()).await - gets,
        1,
        "one GET for 50 concurrent reads"
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn copies_inside_their_bounds_are_served_while_redis_is_down(pool: PgPool) {
    let mut redis = OwnRedis::start();
    let env = with_level(
        TestEnv::new()
            .set("REDIS_URL", redis.url())
            .set("REDIS_CONNECT_TIMEOUT_MS", "200")
            .set("REDIS_RESPONSE_TIMEOUT_MS", "200"),
        60_000,
    );
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let other = testing::insert_tenant(&pool, "other").await;
    let state = crate::app::state(&env, &pool);
    assert_eq!(outcome(&crate::app::get(&state, tenant).await).0, "MISS");

    redis.stop();
    let started = Instant::now();
    assert_eq!(outcome(&crate::app::get(&state, tenant).await), hit("memory"));
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "no Redis call was waited for"
    );
    // A tenant with nothing in memory is computed without Redis, as before.
    assert_eq!(outcome(&crate::app::get(&state, other).await).0, "BYPASS");
}

#[sqlx::test(migrations = "../../migrations")]
async fn memory_stays_within_local_cache_mb(pool: PgPool) {
    let env = with_level(TestEnv::new(), 60_000).set("LOCAL_CACHE_MB", "1");
    // Bundles of about 14 KB each (long list texts), 200 tenants: 2.8 MB against a 1 MB level.
    let state = crate::app::state(&env, &pool);
    let mut tenants = Vec::new();
    for i in 0..200 {
        let tenant = testing::insert_tenant(&pool, &format!("t{i}")).await;
        sqlx::query(
            "INSERT INTO activities (tenant_id, type, subject, status)
             SELECT $1, repeat(md5(g::text), 15), repeat(md5(g::text || 's'), 15), repeat('x', 400)
               FROM generate_series(1, 10) g",
        )
        .bind(tenant)
        .execute(&pool)
        .await
        .unwrap();
        tenants.push(tenant);
    }
    let mut total_json = 0;
    for tenant in &tenants {
        let reply = crate::app::get(&state, *tenant).await;
        assert_eq!(reply.outcome(), "MISS", "{}", reply.body);
        total_json += reply.body["data"].to_string().len();
    }
    assert!(
        total_json > 2 << 20,
        "the bundles together outweigh the level: {total_json} bytes"
    );
    let held = state.bundles.local().weighted_size().await;
    assert!(held <= 1 << 20, "{held} bytes held by a 1 MB level");
    assert!(
        state.bundles.local().entry_count().await > 0,
        "the level keeps what fits"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn another_tenants_copy_is_never_served(pool: PgPool) {
    let env = with_level(TestEnv::new(), 60_000);
    let a = testing::insert_tenant(&pool, "a").await;
    let b = testing::insert_tenant(&pool, "b").await;
    sqlx::query("INSERT INTO contacts (tenant_id) VALUES ($1)")
        .bind(a)
        .execute(&pool)
        .await
        .unwrap();
    let state = crate::app::state(&env, &pool);
    assert_eq!(
        crate::app::get(&state, a).await.body["data"]["stats"]["totalContacts"],
        1
    );
    let of_b = crate::app::get(&state, b).await;
    assert_eq!(of_b.outcome(), "MISS");
    assert_eq!(of_b.body["data"]["stats"]["totalContacts"], 0);
    assert_eq!(of_b.body["data"]["meta"]["tenant_id"], b.to_string());
    testing::cleanup_prefix(&env.prefix()).await;
}
