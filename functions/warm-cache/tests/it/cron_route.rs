//! The previous runbook against the warmer: `POST /api/cron/execute` warms by hand (when the dev
//! route is on), `cron_job` shows the job's last run, next run and metadata, and its `is_active` and
//! `schedule`, changed by an operator with the documented grants, rule the minute heartbeat.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::Value;
use sqlx::PgPool;
use test_support::{self as testing, event, readme_grants, with_body, with_method, DbRole, TestEnv};

use crate::app::TestWarmer;

fn state(pool: &PgPool, env: &TestEnv, at: DateTime<Utc>) -> TestWarmer {
    TestWarmer::at(pool, env.clone(), at)
}

/// Far enough for any run here.
const DEADLINE: Duration = Duration::from_secs(600);

fn route_env() -> TestEnv {
    TestEnv::new().set("WARM_CRON_ROUTE", "true")
}

/// `curl -X POST http://localhost:4001/api/cron/execute -d '<body>'` as `cargo lambda watch` hands it on.
fn cron_execute(body: &str) -> Value {
    let mut ev = with_method(with_body(event("dashboard-bundle.json"), Some(body)), "POST");
    ev["rawPath"] = "/api/cron/execute".into();
    ev["requestContext"]["http"]["path"] = "/api/cron/execute".into();
    ev["headers"]["content-type"] = "application/x-www-form-urlencoded".into();
    ev
}

fn http(response: &Value) -> (u64, Value) {
    let body = serde_json::from_str(response["body"].as_str().expect("a body")).expect("JSON body");
    (response["statusCode"].as_u64().expect("a status"), body)
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_runbooks_cron_execute_warms_and_cron_job_shows_the_run(pool: PgPool) {
    testing::insert_tenant(&pool, "a").await;
    testing::insert_tenant(&pool, "b").await;
    let env = route_env();
    let warm = state(&pool, &env, Utc.with_ymd_and_hms(2026, 3, 10, 13, 5, 0).unwrap());

    let (status, body) = http(
        &warm
            .invoke(
                cron_execute(r#"{"function_name": "warmDashboardBundleCache"}"#),
                DEADLINE,
            )
            .await
            .unwrap(),
    );

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["bundles_warmed"], 2 * 2 + 2);
    let (id, name, last_run, next_run, metadata): (
        String,
        String,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Value,
    ) = sqlx::query_as(
        "SELECT id, name, last_run, next_run, metadata FROM cron_job
              WHERE function_name = 'warmDashboardBundleCache' ORDER BY last_run DESC",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (id.as_str(), name.as_str()),
        ("warm-dashboard-bundle-cache", "Warm Dashboard Bundle Cache")
    );
    assert!(last_run.is_some());
    assert_eq!(
        next_run,
        Some(Utc.with_ymd_and_hms(2026, 3, 11, 0, 0, 0).unwrap()),
        "the next midnight UTC"
    );
    assert_eq!(metadata["run_time"], "midnight_utc");
    assert_eq!(metadata["mode"], "all");
    assert_eq!(metadata["tenants_warmed"], 2);
    assert_eq!(metadata["bundles_warmed"], 6);
    testing::cleanup_prefix(&env.prefix()).await;
}

#[test]
fn the_answer_is_a_complete_api_gateway_v2_response() {
    // What `cargo lambda watch` (and API Gateway) read the function's answer as.
    let response = warm_cache::cron_route::response(404, &serde_json::json!({"error": "x"}));
    let parsed: Result<lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse, _> =
        serde_json::from_value(response);
    assert!(parsed.is_ok(), "{parsed:?}");
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_unknown_function_or_a_bad_body_is_a_json_error_and_runs_nothing(pool: PgPool) {
    let env = route_env();
    let warm = state(&pool, &env, Utc::now());

    let (status, body) = http(
        &warm
            .invoke(cron_execute(r#"{"function_name": "sendNewsletter"}"#), DEADLINE)
            .await
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_function")),
        "{body}"
    );
    for bad in [
        "",
        "function_name=warmDashboardBundleCache",
        r#"{"function_name": null}"#,
    ] {
        let (status, body) = http(&warm.invoke(cron_execute(bad), DEADLINE).await.unwrap());
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {body}"
        );
    }

    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM cache_warm_run")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(runs, 0);
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn without_the_dev_route_an_http_event_is_refused(pool: PgPool) {
    let env = TestEnv::new();
    let warm = state(&pool, &env, Utc::now());

    let result = warm
        .invoke(
            cron_execute(r#"{"function_name": "warmDashboardBundleCache"}"#),
            DEADLINE,
        )
        .await;

    assert!(result.is_err(), "{result:?}");
}

/// The template's heartbeat, as the Scheduler sends it for execution `execution_id`.
fn heartbeat(execution_id: &str) -> Value {
    let mut ev = event("warm-cache-heartbeat.json");
    ev["execution_id"] = execution_id.into();
    ev
}

fn utc(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
}

async fn job(pool: &PgPool) -> (bool, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>, Value) {
    sqlx::query_as(
        "SELECT is_active, schedule, last_run, next_run, metadata FROM cron_job
          WHERE function_name = 'warmDashboardBundleCache'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// `sql` run as an operator holding exactly the grants docs/database.md lists for operators.
async fn as_operator(pool: &PgPool, sql: &str) -> Result<u64, sqlx::Error> {
    let operator = DbRole::create(pool, "operator_db", &readme_grants("operators")).await;
    let mut conn = operator.connect().await;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .map(|done| done.rows_affected())
}

async fn run_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM cache_warm_run")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_heartbeat_fires_the_schedule_once_when_it_is_due(pool: PgPool) {
    testing::insert_tenant(&pool, "a").await;
    let env = TestEnv::new();
    let warm = state(&pool, &env, utc(10, 13, 5));

    let early = warm.invoke(heartbeat("beat-1"), DEADLINE).await.unwrap();
    warm.clock.advance(TimeDelta::hours(11)); // 00:05, past midnight
    let due = warm.invoke(heartbeat("beat-2"), DEADLINE).await.unwrap();
    warm.clock.advance(TimeDelta::minutes(1));
    let next_beat = warm.invoke(heartbeat("beat-3"), DEADLINE).await.unwrap();
    let retried = warm.invoke(heartbeat("beat-2"), DEADLINE).await.unwrap();

    assert_eq!(early["due"], false, "{early}");
    assert_eq!(early["next_run"], "2026-03-11T00:00:00Z", "{early}");
    assert_eq!(
        (&due["trigger"], &due["bundles_warmed"]),
        (&"schedule".into(), &(2 + 2).into()),
        "{due}"
    );
    assert_eq!(next_beat["due"], false, "{next_beat}");
    assert_eq!(next_beat["next_run"], "2026-03-12T00:00:00Z", "{next_beat}");
    assert_eq!(
        retried["already_done"], true,
        "a retry of the firing's execution: {retried}"
    );
    assert_eq!(run_count(&pool).await, 1);
    let (_, _, last_run, next_run, metadata) = job(&pool).await;
    assert!(last_run.is_some());
    assert_eq!(next_run, Some(utc(12, 0, 0)));
    assert_eq!(metadata["bundles_warmed"], 4, "{metadata}");
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn while_the_job_is_off_each_firing_records_a_skipped_run_and_the_manual_execute_still_runs(
    pool: PgPool,
) {
    testing::insert_tenant(&pool, "a").await;
    let env = route_env();
    let warm = state(&pool, &env, utc(10, 23, 59));
    warm.invoke(heartbeat("beat-1"), DEADLINE).await.unwrap();

    let updated = as_operator(
        &pool,
        "UPDATE cron_job SET is_active = false WHERE function_name = 'warmDashboardBundleCache'",
    )
    .await
    .unwrap();
    warm.clock.advance(TimeDelta::minutes(2));
    let firing = warm.invoke(heartbeat("beat-2"), DEADLINE).await.unwrap();
    let make_warm = warm
        .invoke(event("warm-cache-schedule.json"), DEADLINE)
        .await
        .unwrap();
    let (status, manual) = http(
        &warm
            .invoke(
                cron_execute(r#"{"function_name": "warmDashboardBundleCache"}"#),
                DEADLINE,
            )
            .await
            .unwrap(),
    );

    assert_eq!(updated, 1);
    for skipped in [&firing, &make_warm] {
        assert_eq!(skipped["skipped"], "cron_job.is_active is false", "{skipped}");
        assert_eq!(skipped["bundles_warmed"], 0, "{skipped}");
    }
    assert_eq!(
        (status, &manual["data"]["bundles_warmed"]),
        (200, &4.into()),
        "{manual}"
    );
    let skipped_runs: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT trigger, skipped FROM cache_warm_run WHERE skipped IS NOT NULL ORDER BY started_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        skipped_runs,
        vec![
            (
                "schedule".to_owned(),
                Some("cron_job.is_active is false".to_owned())
            );
            2
        ]
    );

    as_operator(
        &pool,
        "UPDATE cron_job SET is_active = true WHERE function_name = 'warmDashboardBundleCache'",
    )
    .await
    .unwrap();
    warm.clock.advance(TimeDelta::days(1));
    let back_on = warm.invoke(heartbeat("beat-3"), DEADLINE).await.unwrap();
    assert_eq!(back_on["bundles_warmed"], 4, "{back_on}");
    assert!(back_on.get("skipped").is_none(), "{back_on}");
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_operator_moves_the_schedule_and_next_run_and_the_firing_follow(pool: PgPool) {
    testing::insert_tenant(&pool, "a").await;
    let env = TestEnv::new();
    let warm = state(&pool, &env, Utc::now());
    warm.invoke(heartbeat("beat-1"), DEADLINE).await.unwrap();

    as_operator(
        &pool,
        "UPDATE cron_job SET schedule = 'cron:0 2 * * *' WHERE function_name = 'warmDashboardBundleCache'",
    )
    .await
    .unwrap();
    let (_, schedule, _, next_run, _) = job(&pool).await;
    let next_run = next_run.expect("a next run");
    warm.clock
        .advance(next_run - warm.clock.now() - TimeDelta::minutes(1));
    let before = warm.invoke(heartbeat("beat-2"), DEADLINE).await.unwrap();
    warm.clock.advance(TimeDelta::minutes(1));
    let at_two = warm.invoke(heartbeat("beat-3"), DEADLINE).await.unwrap();

    assert_eq!(schedule, "cron:0 2 * * *");
    assert_eq!(next_run.format("%H:%M").to_string(), "02:00");
    assert!(
        next_run > Utc::now() && next_run <= Utc::now() + TimeDelta::days(1),
        "{next_run}"
    );
    assert_eq!(before["due"], false, "{before}");
    assert_eq!(at_two["bundles_warmed"], 4, "{at_two}");
    assert_eq!(job(&pool).await.3, Some(next_run + TimeDelta::days(1)));

    // EventBridge's form, a zone, weekdays (Monday to Friday, Sunday being 1).
    as_operator(
        &pool,
        "UPDATE cron_job SET schedule = 'cron(30 6 ? * 2-6 *)', schedule_timezone = 'Europe/Paris'
          WHERE function_name = 'warmDashboardBundleCache'",
    )
    .await
    .unwrap();
    let (paris_time, iso_weekday): (String, f64) = sqlx::query_as(
        "SELECT to_char(next_run AT TIME ZONE 'Europe/Paris', 'HH24:MI'),
                extract(isodow FROM next_run AT TIME ZONE 'Europe/Paris')::float8
           FROM cron_job WHERE function_name = 'warmDashboardBundleCache'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(paris_time, "06:30");
    assert!(iso_weekday <= 5.0, "Monday to Friday, not {iso_weekday}");
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_unreadable_schedule_is_refused_with_an_error_that_says_why(pool: PgPool) {
    let env = TestEnv::new();
    state(&pool, &env, Utc::now())
        .invoke(heartbeat("beat-1"), DEADLINE)
        .await
        .unwrap();
    let before = job(&pool).await;

    for (schedule, says) in [
        ("cron:0 2 * *", "cannot read the schedule"),
        ("0 2 * * *", "cannot read the schedule"),
        ("rate(1 day)", "cannot read the schedule"),
        ("cron:0 25 * * *", "the hour field \"25\" is outside 0-23"),
        ("cron:61 2 * * *", "the minute field \"61\" is outside 0-59"),
        ("cron:0 2 * * MON", "cannot read the day-of-week field \"MON\""),
        ("cron(0 2 * * ? 2030)", "cannot read the schedule"),
        ("cron:0 0 30 2 *", "never fires"),
    ] {
        let refused = as_operator(
            &pool,
            &format!(
                "UPDATE cron_job SET schedule = '{schedule}' WHERE function_name = 'warmDashboardBundleCache'"
            ),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(refused.contains(says), "{schedule}: {refused}");
    }
    let refused = as_operator(&pool, "UPDATE cron_job SET schedule_timezone = 'Mars/Olympus'")
        .await
        .unwrap_err()
        .to_string();

    assert!(refused.contains("unknown schedule_timezone"), "{refused}");
    assert_eq!(job(&pool).await, before);
    testing::cleanup_prefix(&env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_deployments_schedule_is_only_the_initial_one(pool: PgPool) {
    let initial = TestEnv::new().set("WARM_SCHEDULE", "cron:0 3 * * *");
    state(&pool, &initial, utc(10, 13, 5))
        .invoke(heartbeat("beat-1"), DEADLINE)
        .await
        .unwrap();
    let first = job(&pool).await;
    as_operator(
        &pool,
        "UPDATE cron_job SET schedule = 'cron:0 4 * * *' WHERE function_name = 'warmDashboardBundleCache'",
    )
    .await
    .unwrap();

    let redeployed = TestEnv::new().set("WARM_SCHEDULE", "cron(0 5 * * ? *)");
    state(&pool, &redeployed, utc(10, 13, 6))
        .invoke(heartbeat("beat-2"), DEADLINE)
        .await
        .unwrap();

    assert_eq!(
        (first.0, first.1.as_str(), first.2),
        (true, "cron:0 3 * * *", None)
    );
    assert_eq!(first.3, Some(utc(11, 3, 0)));
    assert_eq!(job(&pool).await.1, "cron:0 4 * * *");
    for env in [initial, redeployed] {
        testing::cleanup_prefix(&env.prefix()).await;
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_operator_may_not_change_the_job_beyond_its_controls(pool: PgPool) {
    let env = TestEnv::new();
    state(&pool, &env, Utc::now())
        .invoke(heartbeat("beat-1"), DEADLINE)
        .await
        .unwrap();

    for sql in [
        "UPDATE cron_job SET next_run = now() WHERE function_name = 'warmDashboardBundleCache'",
        "UPDATE cron_job SET function_name = 'x'",
        "DELETE FROM cron_job",
        "INSERT INTO cron_job (id, name, schedule, function_name) VALUES ('x', 'x', 'cron:0 0 * * *', 'x')",
    ] {
        let refused = as_operator(&pool, sql).await.unwrap_err().to_string();
        assert!(refused.contains("permission denied"), "{sql}: {refused}");
    }
    testing::cleanup_prefix(&env.prefix()).await;
}
