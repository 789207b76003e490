//! What a request waits for on the wire, counted by proxies in front of Postgres and Redis (round
//! trips, not time): in a VPC each one costs 0.3-1 ms, more than the queries themselves. A HIT is one
//! Redis round trip; a revalidation (entry past its fresh window, data unchanged) one Postgres round
//! trip and at most two Redis ones; a MISS at most two Postgres and three Redis round trips, for a
//! tenant and for the global view, in both statement modes (and through PgBouncer in its pass).
//!
//! Postgres counts one more: sqlx checks each connection it takes back into the pool (an empty
//! `Sync`), from a task of its own once the read is done, while the request goes on to Redis.

use chrono::{TimeDelta, TimeZone, Utc};
use shared::auth::Role;
use shared::platform::clock::Clock;
use sqlx::PgPool;
use test_support::{self as testing, FaultProxy, TestEnv};

use crate::app;

/// Postgres as the functions reach it in this pass: directly, or PgBouncer in the second pass.
fn postgres_addr(pool: &PgPool) -> std::net::SocketAddr {
    std::env::var("TEST_PGBOUNCER_ADDR")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| app::pg_addr(pool))
}

/// Round trips (Postgres, Redis) that `request` made.
async fn counted<F: std::future::Future<Output = testing::Reply>>(
    pg: &FaultProxy,
    redis: &FaultProxy,
    pool: &PgPool,
    request: F,
) -> (u64, u64, String) {
    // The pool checks each connection it takes back from a task of its own: let the earlier
    // requests' checks land before counting (a loaded run delayed them into the next count).
    let started = std::time::Instant::now();
    while pool.num_idle() < pool.size() as usize && started.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (pg_before, redis_before) = (pg.flights(), redis.flights());
    let reply = request.await;
    (
        pg.flights() - pg_before,
        redis.flights() - redis_before,
        reply.outcome(),
    )
}

#[sqlx::test(migrations = "../../migrations")]
async fn each_request_kind_makes_its_few_round_trips_in_both_statement_modes(pool: PgPool) {
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let other = testing::insert_tenant(&pool, "other").await;
    let superadmin = testing::token(Role::Superadmin, None);
    for mode in ["unnamed", "prepared"] {
        let pg = FaultProxy::start(postgres_addr(&pool)).await;
        let redis = FaultProxy::start(app::shared_redis_addr()).await;
        let env = TestEnv::new()
            .set("REDIS_URL", format!("redis://{}", redis.addr()))
            .set("DB_STATEMENT_MODE", mode)
            .set("DB_POOL_SIZE", "1")
            .set("BUNDLE_TTL_SECONDS", "60");
        let proxied = testing::pool_at(&pool, pg.addr());
        let db = shared::platform::db::Database::new(proxied.clone(), &env.database_config());
        let clock = Clock::starting_at(Utc.with_ymd_and_hms(2026, 3, 10, 9, 10, 0).unwrap());
        let state = app::state_over(&env, db, clock.clone());
        // Connections opened (and, prepared, statements prepared) before counting: what a warm
        // environment has.
        assert_eq!(app::get(&state, other).await.outcome(), "MISS");
        let warm_global = app::get_with(&state, Some(&superadmin), "bust_cache=true").await;
        assert_eq!(warm_global.status, 200, "{:?}", warm_global.body);

        let miss = counted(&pg, &redis, &proxied, app::get(&state, tenant)).await;
        let hit = counted(&pg, &redis, &proxied, app::get(&state, tenant)).await;
        clock.advance(TimeDelta::minutes(2));
        let revalidation = counted(&pg, &redis, &proxied, app::get(&state, tenant)).await;
        clock.advance(TimeDelta::minutes(2));
        testing::cleanup_prefix(&env.prefix()).await;
        let global_miss = counted(
            &pg,
            &redis,
            &proxied,
            app::get_with(&state, Some(&superadmin), ""),
        )
        .await;

        let at_most = |(pg, redis, outcome): (u64, u64, String), kind: &str, max_pg: u64, max_redis: u64| {
            assert!(
                pg <= max_pg && redis <= max_redis,
                "{mode}: {kind} ({outcome}) made {pg} Postgres and {redis} Redis round trips, at most {max_pg} and {max_redis} wanted"
            );
            outcome
        };
        // Postgres: the reads, plus the pool's check of the returned connection.
        assert_eq!(at_most(miss, "miss", 2 + 1, 3), "MISS");
        assert_eq!(at_most(hit, "hit", 0, 1), "HIT");
        assert_eq!(at_most(revalidation, "revalidation", 1 + 1, 2), "HIT");
        assert_eq!(at_most(global_miss, "global miss", 2 + 1, 3), "MISS");
        testing::cleanup_prefix(&env.prefix()).await;
    }
}
