//! The previous runbook against the warmer: `POST /api/cron/execute` warms by hand (when the dev
//! route is on), and the `cron_job` view shows the job's last run, next run and metadata.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sqlx::PgPool;
use test_support::{self as testing, event, with_body, with_method, TestEnv};

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

#[sqlx::test(migrations = "../../migrations")]
async fn cron_job_shows_the_job_before_its_first_run(pool: PgPool) {
    let (schedule, last_run): (String, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT schedule, last_run FROM cron_job WHERE function_name = 'warmDashboardBundleCache'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    assert_eq!((schedule.as_str(), last_run), ("cron(0 0 * * ? *)", None));
}
