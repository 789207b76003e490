//! Dashboard reads are recorded per tenant and hour for the warmer, in the same round trip as the
//! bundle's own Redis read: a hit costs what it cost before.

use chrono::{TimeDelta, TimeZone, Utc};
use shared::platform::clock::Clock;
use shared::store::read_history;
use sqlx::PgPool;
use test_support::{self as testing, FaultProxy, TestEnv};

#[sqlx::test(migrations = "../../migrations")]
async fn a_hit_records_its_read_in_one_round_trip(pool: PgPool) {
    let proxy = FaultProxy::start(crate::app::shared_redis_addr()).await;
    let env = TestEnv::new()
        .set("REDIS_URL", format!("redis://{}", proxy.addr()))
        // Long enough that the later hit is served without revalidation: the bare hit path.
        .set("BUNDLE_TTL_SECONDS", "7200");
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let clock = Clock::starting_at(Utc.with_ymd_and_hms(2026, 3, 10, 9, 10, 0).unwrap());
    let state = crate::app::state_over(&env, env.database(&pool), clock.clone());
    assert_eq!(crate::app::get(&state, tenant).await.outcome(), "MISS");
    clock.advance(TimeDelta::hours(1));

    let before = proxy.client_sends();
    let reply = crate::app::get(&state, tenant).await;
    let sends = proxy.client_sends() - before;

    assert_eq!(reply.outcome(), "HIT");
    assert_eq!(sends, 1, "the read is recorded in the hit's own round trip");
    let fields = state
        .bundles
        .redis()
        .hash_fields(&[state.bundles.keys().tenant_reads(tenant)])
        .await
        .unwrap()
        .remove(0);
    let mut expected = vec![
        read_history::field(Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap()),
        read_history::field(Utc.with_ymd_and_hms(2026, 3, 10, 10, 0, 0).unwrap()),
    ];
    let mut fields = fields;
    fields.sort();
    expected.sort();
    assert_eq!(fields, expected, "the miss's hour and the hit's hour");
    let kept = state
        .bundles
        .redis()
        .expires_in(&state.bundles.keys().tenant_reads(tenant))
        .await
        .unwrap()
        .expect("the history expires");
    assert!(kept > read_history::KEEP_FOR - std::time::Duration::from_secs(60));
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_global_view_records_no_tenant_read(pool: PgPool) {
    let env = TestEnv::new();
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = crate::app::state(&env, &pool);
    let token = testing::token(shared::auth::Role::Superadmin, None);
    let reply = crate::app::send(
        &state,
        &testing::with_token(testing::event("dashboard-bundle-global.json"), Some(&token)),
    )
    .await;

    assert_eq!(reply.status, 200);
    let fields = state
        .bundles
        .redis()
        .hash_fields(&[state.bundles.keys().tenant_reads(tenant)])
        .await
        .unwrap();
    assert_eq!(fields, [Vec::<String>::new()]);
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_scoped_read_records_its_hour_and_its_scope_in_one_round_trip(pool: PgPool) {
    let proxy = FaultProxy::start(crate::app::shared_redis_addr()).await;
    let env = TestEnv::new()
        .set("REDIS_URL", format!("redis://{}", proxy.addr()))
        .set("BUNDLE_TTL_SECONDS", "7200");
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let employee = uuid::Uuid::from_u128(0xe1);
    let at = Utc.with_ymd_and_hms(2026, 3, 10, 9, 10, 0).unwrap();
    let clock = Clock::starting_at(at);
    let state = crate::app::state_over(&env, env.database(&pool), clock.clone());
    let token = testing::employee_token(shared::auth::Role::Employee, Some(tenant), employee);
    let read = || crate::app::get_with(&state, Some(&token), "widgets=recentLeads");
    assert_eq!(read().await.outcome(), "MISS");
    clock.advance(TimeDelta::hours(1));

    let before = proxy.client_sends();
    let reply = read().await;
    let sends = proxy.client_sends() - before;

    assert_eq!(reply.outcome(), "HIT");
    assert_eq!(sends, 1, "recorded in the hit's own round trip");
    let mut fields = state
        .bundles
        .redis()
        .hash_fields(&[state.bundles.keys().tenant_reads(tenant)])
        .await
        .unwrap()
        .remove(0);
    fields.sort();
    let spec = format!("include=true:emp={employee}:widgets=recentLeads");
    let mut expected = vec![
        read_history::field(at),
        read_history::field(at + TimeDelta::hours(1)),
        read_history::scope_field(at, &spec),
    ];
    expected.sort();
    assert_eq!(fields, expected, "both hours, and the scope once for its day");
    testing::cleanup_prefix(&env.prefix()).await;
}
