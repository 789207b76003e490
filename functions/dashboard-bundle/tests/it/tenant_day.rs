//! The tenant's own day: its 30-day figures, and the "same day" freshness rule, count in
//! `tenant.timezone` (UTC without one, or with a name that is not a zone).

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::Value;
use shared::platform::clock::Clock;
use sqlx::PgPool;
use test_support::{self as testing, TestEnv};
use uuid::Uuid;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

async fn tenant_in(pool: &PgPool, zone: Option<&str>) -> Uuid {
    let tenant = testing::insert_tenant(pool, "acme").await;
    sqlx::query("UPDATE tenant SET timezone = $2 WHERE id = $1")
        .bind(tenant)
        .bind(zone)
        .execute(pool)
        .await
        .unwrap();
    tenant
}

async fn lead_created(pool: &PgPool, tenant: Uuid, at: DateTime<Utc>) {
    sqlx::query("INSERT INTO leads (tenant_id, created_date) VALUES ($1, $2)")
        .bind(tenant)
        .bind(at)
        .execute(pool)
        .await
        .unwrap();
}

fn new_leads(body: &Value) -> i64 {
    body["data"]["stats"]["newLeadsLast30Days"].as_i64().unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_thirty_day_window_starts_at_the_tenants_local_midnight(pool: PgPool) {
    let env = TestEnv::new();
    let tokyo = tenant_in(&pool, Some("Asia/Tokyo")).await;
    // 1 April 01:00 in Tokyo: the window starts 2 March 00:00 JST = 1 March 15:00 UTC.
    let clock = Clock::starting_at(utc(2026, 3, 31, 16, 0));
    lead_created(&pool, tokyo, utc(2026, 3, 1, 14, 59)).await;
    lead_created(&pool, tokyo, utc(2026, 3, 1, 15, 0)).await;
    let state = crate::app::state_over(&env, env.database(&pool), clock);

    let (_, body) = crate::app::outcome_and_body(&state, tokyo).await;

    assert_eq!(
        new_leads(&body),
        1,
        "only the lead of 2 March, Tokyo time, counts"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_invalid_zone_counts_in_utc_and_still_answers(pool: PgPool) {
    let env = TestEnv::new();
    let tenant = tenant_in(&pool, Some("Mars/Olympus_Mons")).await;
    let clock = Clock::starting_at(utc(2026, 3, 31, 16, 0));
    lead_created(&pool, tenant, utc(2026, 2, 28, 23, 59)).await;
    lead_created(&pool, tenant, utc(2026, 3, 1, 0, 0)).await;
    let state = crate::app::state_over(&env, env.database(&pool), clock);

    let (x_cache, body) = crate::app::outcome_and_body(&state, tenant).await;

    assert_eq!((x_cache.as_str(), new_leads(&body)), ("MISS", 1));
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_bundle_is_current_until_the_tenants_local_midnight_not_utcs(pool: PgPool) {
    let env = TestEnv::new();
    let tokyo = tenant_in(&pool, Some("Asia/Tokyo")).await;
    // 23:30 in Tokyo, 14:30 UTC.
    let clock = Clock::starting_at(utc(2026, 3, 10, 14, 30));
    let state = crate::app::state_over(&env, env.database(&pool), clock.clone());
    assert_eq!(crate::app::outcome_and_body(&state, tokyo).await.0, "MISS");

    clock.advance(TimeDelta::minutes(20));
    assert_eq!(
        crate::app::outcome_and_body(&state, tokyo).await.0,
        "HIT",
        "23:50 in Tokyo: same local day"
    );
    clock.advance(TimeDelta::minutes(20));
    assert_eq!(
        crate::app::outcome_and_body(&state, tokyo).await.0,
        "MISS",
        "00:10 in Tokyo: a new local day, although still 10 March in UTC"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_bundle_stays_current_across_utc_midnight_inside_the_local_day(pool: PgPool) {
    let env = TestEnv::new();
    let la = tenant_in(&pool, Some("America/Los_Angeles")).await;
    // 15:30 in Los Angeles (PDT), 22:30 UTC; nothing changes until 09:00 local the next morning.
    let clock = Clock::starting_at(utc(2026, 4, 10, 22, 30));
    let state = crate::app::state_over(&env, env.database(&pool), clock.clone());
    assert_eq!(crate::app::outcome_and_body(&state, la).await.0, "MISS");

    clock.advance(TimeDelta::hours(2));
    assert_eq!(
        crate::app::outcome_and_body(&state, la).await.0,
        "HIT",
        "UTC's midnight is not the tenant's"
    );
    clock.advance(TimeDelta::hours(7));
    assert_eq!(
        crate::app::outcome_and_body(&state, la).await.0,
        "MISS",
        "LA's midnight moved its window"
    );
    testing::cleanup_prefix(&env.prefix()).await;
}
