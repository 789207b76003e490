//! Tenant-local and read-driven warming, through the handler, with a simulated clock: hourly runs
//! warm each tenant once per local day at its hour (DST days included), a missed run is caught up,
//! an invalid zone is reported and counted as UTC, and idle or never-read tenants are skipped.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::Value;
use shared::store::read_history;
use shared::store::Recording;
use sqlx::PgPool;
use test_support::{self as testing, TestEnv};
use uuid::Uuid;
use warm_cache::warm_event;

use crate::app::TestWarmer;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn warmer(pool: &PgPool, env: TestEnv, at: DateTime<Utc>) -> TestWarmer {
    let env = env
        .set("WARM_CONCURRENCY", "4")
        .set("WARM_TENANT_TIMEOUT_MS", "10000")
        .set("WARM_DEADLINE_MARGIN_MS", "10000");
    TestWarmer::at(pool, env, at)
}

fn local_env() -> TestEnv {
    TestEnv::new().set("WARM_MODE", "local")
}

async fn run(warm: &TestWarmer) -> Value {
    // Each hourly run is its own Scheduler execution.
    warm_event(&warm.state, testing::scheduled_warm(warm.clock.now()))
        .await
        .expect("run")
}

async fn tenant(pool: &PgPool, slug: &str, zone: Option<&str>, warm_hour: Option<i16>) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO tenant (slug, name, timezone, warm_hour) VALUES ($1, $1, $2, $3) RETURNING id",
    )
    .bind(slug)
    .bind(zone)
    .bind(warm_hour)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// When each tenant was last warmed, to the minute (the simulated clock runs on in real time).
async fn last_warmed(pool: &PgPool) -> BTreeMap<Uuid, DateTime<Utc>> {
    sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(
        "SELECT tenant_id, date_trunc('minute', last_warmed_at) FROM tenant_warm_state",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Runs hourly (at minute 1) from `from` for `hours` runs, skipping the runs listed in `missed`;
/// returns, per tenant, the run times at which it was warmed.
async fn hourly(
    pool: &PgPool,
    warm: &TestWarmer,
    hours: i64,
    missed: &[i64],
) -> BTreeMap<Uuid, Vec<DateTime<Utc>>> {
    let mut warmed: BTreeMap<Uuid, Vec<DateTime<Utc>>> = BTreeMap::new();
    let mut seen = last_warmed(pool).await;
    for hour in 0..hours {
        if !missed.contains(&hour) {
            run(warm).await;
            for (id, at) in last_warmed(pool).await {
                if seen.get(&id) != Some(&at) {
                    warmed.entry(id).or_default().push(at);
                    seen.insert(id, at);
                }
            }
        }
        warm.clock.advance(TimeDelta::hours(1));
    }
    warmed
}

/// Marks reads of `tenant` at `at` as the request path records them.
async fn read_at(warm: &TestWarmer, tenant: Uuid, at: DateTime<Utc>) {
    let hash = warm.state.bundles.keys().tenant_reads(tenant);
    let field = read_history::field(at);
    let recording = Recording {
        hash: &hash,
        fields: &[&field],
        keep_for: read_history::KEEP_FOR,
    };
    warm.state
        .bundles
        .redis()
        .get_recording("unused", &recording)
        .await
        .unwrap();
}

async fn reads_recorded_since(warm: &TestWarmer, at: DateTime<Utc>) {
    warm.state.bundles.reads_recorded_since(at).await.unwrap();
}

#[sqlx::test(migrations = "../../migrations")]
async fn hourly_runs_warm_each_tenant_once_at_five_local_in_zones_without_dst(pool: PgPool) {
    let tokyo = tenant(&pool, "tokyo", Some("Asia/Tokyo"), None).await;
    let kolkata = tenant(&pool, "kolkata", Some("Asia/Kolkata"), None).await;
    let utc_tenant = tenant(&pool, "utc", None, None).await;
    let late = tenant(&pool, "late", Some("Asia/Tokyo"), Some(9)).await;
    // A day without a DST change anywhere here: 10 March 2026, hourly from 00:01 UTC.
    let warm = warmer(&pool, local_env(), utc(2026, 3, 10, 0, 1));

    let warmed = hourly(&pool, &warm, 24, &[]).await;

    // 00:01 UTC is 09:01 in Tokyo: its 05:00 has passed unwarmed, so the first run catches it up;
    // then 05:00 on 11 March, Tokyo time.
    assert_eq!(warmed[&tokyo], [utc(2026, 3, 10, 0, 1), utc(2026, 3, 10, 20, 1)]);
    // Kolkata is UTC+5:30: 05:00 local is 23:30 UTC, so the 00:01 UTC run (05:31 local) warms it.
    assert_eq!(warmed[&kolkata], [utc(2026, 3, 10, 0, 1)]);
    assert_eq!(warmed[&utc_tenant], [utc(2026, 3, 10, 5, 1)]);
    assert_eq!(
        warmed[&late],
        [utc(2026, 3, 10, 0, 1)],
        "tenant.warm_hour 9 in Tokyo: 00:00 UTC"
    );
    let rows: Vec<(String, i32, i32, Value)> = sqlx::query_as(
        "SELECT mode, tenants_warmed, tenants_skipped, skip_reasons FROM cache_warm_run ORDER BY started_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 24);
    assert_eq!(rows[5].0, "local");
    assert_eq!(
        (rows[5].1, rows[5].2),
        (1, 3),
        "05:01 UTC warms the UTC tenant only"
    );
    assert_eq!(rows[5].3, serde_json::json!({"not_due": 3}));
    testing::cleanup_prefix(&warm.env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_23_hour_day_warms_once_at_the_first_existing_time_after_a_skipped_hour(pool: PgPool) {
    // 8 March 2026 in New York: 02:00-03:00 does not exist. Warm hour 2 becomes 03:00 EDT = 07:00 UTC.
    let ny = tenant(&pool, "ny", Some("America/New_York"), Some(2)).await;
    let paris = tenant(&pool, "paris", Some("Europe/Paris"), Some(2)).await;
    let warm = warmer(&pool, local_env(), utc(2026, 3, 8, 5, 0));

    let warmed = hourly(&pool, &warm, 24, &[]).await;

    assert_eq!(warmed[&ny], [utc(2026, 3, 8, 7, 0)]);
    // Paris has no change that day: the first run (06:00 CET) catches up its 02:00, then 02:00 CET
    // on the 9th is 01:00 UTC.
    assert_eq!(warmed[&paris], [utc(2026, 3, 8, 5, 0), utc(2026, 3, 9, 1, 0)]);
    testing::cleanup_prefix(&warm.env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_25_hour_day_warms_once_although_its_warm_hour_happens_twice(pool: PgPool) {
    // 1 November 2026 in New York: 01:00-02:00 happens twice (05:00 EDT and 06:00 EST in UTC).
    let ny = tenant(&pool, "ny", Some("America/New_York"), Some(1)).await;
    let warm = warmer(&pool, local_env(), utc(2026, 11, 1, 4, 0));

    // From 00:00 EDT on the 1st to 00:00 EST on the 2nd: the whole 25-hour local day.
    let warmed = hourly(&pool, &warm, 25, &[]).await;

    assert_eq!(warmed[&ny], [utc(2026, 11, 1, 5, 0)], "the first 01:00 only");
    testing::cleanup_prefix(&warm.env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_missed_hourly_run_is_caught_up_by_the_next_one(pool: PgPool) {
    let t = tenant(&pool, "utc", Some("UTC"), None).await;
    let warm = warmer(&pool, local_env(), utc(2026, 3, 10, 3, 0));

    // Runs at 03:00, 04:00, (05:00 missed), 06:00, 07:00.
    let warmed = hourly(&pool, &warm, 5, &[2]).await;

    assert_eq!(warmed[&t], [utc(2026, 3, 10, 6, 0)]);
    testing::cleanup_prefix(&warm.env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_invalid_zone_is_warmed_in_utc_and_reported(pool: PgPool) {
    let t = tenant(&pool, "mars", Some("Mars/Olympus_Mons"), None).await;
    let warm = warmer(&pool, local_env(), utc(2026, 3, 10, 5, 0));

    let summary = run(&warm).await;

    assert_eq!(summary["tenants_warmed"], 1);
    assert_eq!(summary["invalid_zones"], 1);
    assert_eq!(last_warmed(&pool).await.get(&t), Some(&utc(2026, 3, 10, 5, 0)));
    let recorded: i32 = sqlx::query_scalar("SELECT invalid_zones FROM cache_warm_run")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(recorded, 1);
    testing::cleanup_prefix(&warm.env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn idle_tenants_are_skipped_once_reads_were_recorded_long_enough(pool: PgPool) {
    let recent = tenant(&pool, "recent", None, None).await;
    let _stale = tenant(&pool, "stale", None, None).await;
    let _never = tenant(&pool, "never", None, None).await;
    let now = utc(2026, 3, 10, 0, 0);
    let warm = warmer(&pool, TestEnv::new().set("WARM_IDLE_DAYS", "7"), now);
    reads_recorded_since(&warm, now - TimeDelta::days(20)).await;
    read_at(&warm, recent, now - TimeDelta::days(2)).await;
    read_at(&warm, _stale, now - TimeDelta::days(9)).await;

    let summary = run(&warm).await;

    assert_eq!(summary["tenants_warmed"], 1);
    assert_eq!(summary["tenants_skipped"], 2);
    assert_eq!(summary["skip_reasons"], serde_json::json!({"idle": 2}));
    assert_eq!(
        last_warmed(&pool).await.keys().copied().collect::<Vec<_>>(),
        [recent]
    );
    let reasons: Value = sqlx::query_scalar("SELECT skip_reasons FROM cache_warm_run")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(reasons, serde_json::json!({"idle": 2}));
    testing::cleanup_prefix(&warm.env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn tenants_without_history_are_warmed_while_reads_have_been_recorded_only_briefly(pool: PgPool) {
    tenant(&pool, "a", None, None).await;
    tenant(&pool, "b", None, None).await;
    let now = utc(2026, 3, 10, 0, 0);
    let warm = warmer(&pool, TestEnv::new().set("WARM_IDLE_DAYS", "7"), now);
    reads_recorded_since(&warm, now - TimeDelta::days(3)).await;

    let summary = run(&warm).await;

    assert_eq!(
        (
            summary["tenants_warmed"].as_u64(),
            summary["tenants_skipped"].as_u64()
        ),
        (Some(2), Some(0))
    );
    testing::cleanup_prefix(&warm.env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn predictive_local_mode_warms_an_hour_before_the_usual_first_read_and_skips_unread_weekends(
    pool: PgPool,
) {
    let paris = tenant(&pool, "paris", Some("Europe/Paris"), None).await;
    let newcomer = tenant(&pool, "newcomer", Some("Europe/Paris"), None).await;
    // Weekday first reads at 09:20 Paris time (08:20 UTC in CET) for two weeks; never on weekends.
    let start = utc(2026, 3, 2, 0, 0); // a Monday
    let warm = warmer(&pool, local_env(), utc(2026, 3, 16, 0, 0));
    reads_recorded_since(&warm, start).await;
    for day in 0..14 {
        let at = start + TimeDelta::days(day) + TimeDelta::minutes(8 * 60 + 20);
        if !matches!(day % 7, 5 | 6) {
            read_at(&warm, paris, at).await;
        }
    }

    // Monday 16 March, hourly from 00:00 UTC.
    let warmed = hourly(&pool, &warm, 24, &[]).await;

    assert_eq!(
        warmed[&paris],
        [utc(2026, 3, 16, 7, 0)],
        "08:00 Paris, an hour before 09:xx"
    );
    assert_eq!(
        warmed[&newcomer],
        [utc(2026, 3, 16, 4, 0)],
        "no history: the fixed 05:00"
    );

    // Saturday 21 March: the regular tenant is not expected; the newcomer still warms at 05:00.
    warm.clock.advance(TimeDelta::days(4));
    let warmed = hourly(&pool, &warm, 24, &[]).await;
    assert!(!warmed.contains_key(&paris), "{warmed:?}");
    assert_eq!(warmed[&newcomer], [utc(2026, 3, 21, 4, 0)]);
    let reasons: Value =
        sqlx::query_scalar("SELECT skip_reasons FROM cache_warm_run ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(reasons["not_expected"], 1);
    testing::cleanup_prefix(&warm.env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn local_mode_warms_the_global_view_once_per_utc_day(pool: PgPool) {
    tenant(&pool, "a", None, None).await;
    let warm = warmer(&pool, local_env(), utc(2026, 3, 10, 22, 0));

    let mut global = Vec::new();
    for _ in 0..4 {
        let summary = run(&warm).await;
        global.push(summary["global_warmed"].clone());
        warm.clock.advance(TimeDelta::hours(1));
    }

    // 22:00 (first of the day for this warmer), 23:00 (done), 00:00 (a new UTC day), 01:00 (done).
    assert_eq!(
        global,
        [Value::Bool(true), Value::Null, Value::Bool(true), Value::Null]
    );
    testing::cleanup_prefix(&warm.env.prefix()).await;
}
