//! warm-cache over real Postgres and Redis, and a local EventBridge (moto) for the fan-out.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use shared::auth::Role;
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::platform::clock::Clock;
use sqlx::PgPool;
use test_support::{self as testing, event, request, with_query, with_token, TestEnv};
use uuid::Uuid;
use warm_cache::fanout::Fanout;

use crate::app::{self, TestWarmer};

const WARM_TTL: Duration = Duration::from_secs(90_000);

/// The warmer's environment in these tests, its entries living past the next run.
fn warm_env() -> TestEnv {
    app::warm_env().set("WARM_TTL_SECONDS", WARM_TTL.as_secs().to_string())
}

/// `n` active tenants (each with one lead) and two inactive ones; returns the active ids.
async fn tenants(pool: &PgPool, n: i32) -> Vec<Uuid> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tenant (slug, name) SELECT 't' || g, 'Tenant ' || g FROM generate_series(1, {n}) g;
         INSERT INTO tenant (slug, name, status) VALUES ('gone1', 'Gone', 'inactive'), ('gone2', 'Gone', 'suspended');
         INSERT INTO leads (tenant_id, status) SELECT id, 'new' FROM tenant;"
    )))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query_scalar("SELECT id FROM tenant WHERE status = 'active' ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn run_rows(pool: &PgPool) -> Vec<(String, i32, i32, i32, i32, bool)> {
    sqlx::query_as(
        "SELECT trigger, tenants_total, bundles_warmed, failures, skipped_deadline, finished_at IS NOT NULL
           FROM cache_warm_run ORDER BY started_at",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn cleanup(state: TestWarmer) {
    testing::cleanup_prefix(&state.env.prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn scheduled_run_warms_both_bundles_of_every_active_tenant_and_global(pool: PgPool) {
    let active = tenants(&pool, 55).await;
    let s = TestWarmer::new(&pool, warm_env(), None);
    let summary = s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap();

    assert_eq!(summary["trigger"], "schedule");
    assert_eq!(summary["tenants_total"], 55);
    assert_eq!(summary["bundles_warmed"], 55 * 2 + 2);
    assert_eq!(summary["failures"], 0);
    assert_eq!(summary["global_warmed"], true);
    let keys = s.bundles.keys();
    let cache = s.bundles.redis();
    for id in &active {
        for include in [true, false] {
            let ttl = cache
                .expires_in(&keys.bundle(BundleId::new(Scope::Tenant(*id), include)))
                .await
                .unwrap()
                .expect("warmed key");
            assert!(
                ttl > WARM_TTL - Duration::from_secs(60) && ttl <= WARM_TTL,
                "{ttl:?}"
            );
        }
    }
    assert!(cache
        .expires_in(&keys.bundle(BundleId::new(Scope::Global, false)))
        .await
        .unwrap()
        .is_some());
    let inactive: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM tenant WHERE status <> 'active'")
        .fetch_all(&pool)
        .await
        .unwrap();
    for id in inactive {
        assert_eq!(
            cache
                .expires_in(&keys.bundle(BundleId::new(Scope::Tenant(id), true)))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        run_rows(&pool).await,
        vec![("schedule".into(), 55, 112, 0, 0, true)]
    );
    cleanup(s).await;
}

/// Warm times are written in batches (200 tenants a statement): a run over more than one batch
/// records every warmed tenant, the last partial batch included, at the run's time.
#[sqlx::test(migrations = "../../migrations")]
async fn a_run_records_the_warm_time_of_every_tenant_it_warmed(pool: PgPool) {
    let active = tenants(&pool, 201).await;
    let s = TestWarmer::new(&pool, warm_env(), None);
    let summary = s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(summary["bundles_warmed"], 201 * 2 + 2);
    let recorded: Vec<Uuid> =
        sqlx::query_scalar("SELECT tenant_id FROM tenant_warm_state WHERE last_warmed_at > now() - interval '10 minutes' ORDER BY tenant_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(recorded.len(), active.len(), "tenants with a warm time");
    assert_eq!(recorded, active);
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn warmed_bundle_is_served_as_a_hit_identical_to_a_computed_one(pool: PgPool) {
    let active = tenants(&pool, 3).await;
    let s = TestWarmer::new(&pool, warm_env(), None);
    s.invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap();

    let token = testing::token(Role::Admin, Some(active[0]));
    let dash = dashboard_bundle::State::with_database(
        // A bust recomputes even unchanged data only past BUST_INTERVAL_MS: make it always.
        dashboard_bundle::config::Config::from_env(&s.env.clone().set("BUST_INTERVAL_MS", "0").as_env())
            .unwrap(),
        s.db.clone(),
        Default::default(),
    )
    .unwrap();
    let get = |query: &'static str| {
        let ev = with_query(with_token(event("dashboard-bundle.json"), Some(&token)), query);
        dashboard_bundle::route(&dash, request(&ev))
    };
    let warmed = get("include_test_data=false").await.unwrap();
    assert_eq!(warmed.headers()["x-cache"], "HIT");
    let computed = get("include_test_data=false&bust_cache=true").await.unwrap();
    assert_eq!(computed.headers()["x-cache"], "MISS");
    let data = |r: &lambda_http::Response<lambda_http::Body>| {
        let mut body: Value = serde_json::from_slice(r.body()).unwrap();
        body["data"]["meta"]["generated_at"] = Value::Null;
        body["data"].clone()
    };
    assert_eq!(data(&warmed), data(&computed));
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn running_twice_is_harmless(pool: PgPool) {
    tenants(&pool, 5).await;
    let s = TestWarmer::new(&pool, warm_env(), None);
    let first = s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap();
    let second = s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(first["bundles_warmed"], second["bundles_warmed"]);
    assert_eq!(run_rows(&pool).await.len(), 2);
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn one_failing_tenant_is_counted_and_the_others_are_warmed(pool: PgPool) {
    let active = tenants(&pool, 4).await;
    let missing = Uuid::new_v4();
    let s = TestWarmer::new(&pool, warm_env(), None);
    let mut ids: Vec<Value> = active.iter().map(|id| id.to_string().into()).collect();
    ids.insert(2, missing.to_string().into());
    let summary = s
        .invoke(serde_json::json!({ "tenant_ids": ids }), Duration::from_secs(600))
        .await
        .unwrap();

    assert_eq!(summary["trigger"], "manual");
    assert_eq!(summary["tenants_total"], 5);
    assert_eq!(summary["tenants_warmed"], 4);
    assert_eq!(summary["failures"], 1);
    assert_eq!(summary["bundles_warmed"], 8);
    let error = summary["errors"][0].as_str().unwrap();
    assert!(error.contains(&missing.to_string()), "{error}");
    let summary_text: String = sqlx::query_scalar("SELECT error_summary FROM cache_warm_run")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(summary_text.contains(&missing.to_string()));
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn tiny_deadline_stops_early_and_reports_tenants_left(pool: PgPool) {
    tenants(&pool, 20).await;
    let s = TestWarmer::new(&pool, warm_env(), None);
    let summary = s
        .invoke(event("warm-cache-schedule.json"), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(summary["stopped_early"], true);
    assert_eq!(summary["skipped_deadline"], 20);
    assert_eq!(summary["bundles_warmed"], 0);
    assert_eq!(summary["global_warmed"], false);
    assert_eq!(
        run_rows(&pool).await,
        vec![("schedule".into(), 20, 0, 0, 20, true)]
    );
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn tenant_ids_event_warms_only_the_listed_tenant(pool: PgPool) {
    let others = tenants(&pool, 3).await;
    let listed: Uuid = "a11dfb63-4b18-4eb8-872e-747af2e37c46".parse().unwrap();
    sqlx::query("INSERT INTO tenant (id, slug, name) VALUES ($1, 'acme', 'Acme')")
        .bind(listed)
        .execute(&pool)
        .await
        .unwrap();
    let s = TestWarmer::new(&pool, warm_env(), None);
    let summary = s
        .invoke(event("warm-cache-tenants.json"), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(summary["bundles_warmed"], 2);
    assert_eq!(summary["global_warmed"], Value::Null);
    let (keys, cache) = (s.bundles.keys(), s.bundles.redis());
    assert!(cache
        .expires_in(&keys.bundle(BundleId::new(Scope::Tenant(listed), true)))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        cache
            .expires_in(&keys.bundle(BundleId::new(Scope::Tenant(others[0]), true)))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        cache
            .expires_in(&keys.bundle(BundleId::new(Scope::Global, true)))
            .await
            .unwrap(),
        None
    );
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn unknown_event_is_an_error_and_warms_nothing(pool: PgPool) {
    tenants(&pool, 2).await;
    let s = TestWarmer::new(&pool, warm_env(), None);
    let err = s
        .invoke(serde_json::json!({"hello": "world"}), Duration::from_secs(600))
        .await
        .unwrap_err();
    assert!(err.contains("unrecognised event"), "{err}");
    assert!(run_rows(&pool).await.is_empty());
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn postgres_down_is_an_error_so_eventbridge_retries(_pool: PgPool) {
    let s = TestWarmer::over(warm_env(), testing::dead_database(), None, Clock::default());
    assert!(s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .is_err());
}

#[sqlx::test(migrations = "../../migrations")]
async fn redis_down_warms_nothing_and_is_an_error(pool: PgPool) {
    tenants(&pool, 2).await;
    let s = TestWarmer::new(&pool, warm_env().set("REDIS_URL", testing::DEAD_REDIS_URL), None);
    let err = s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap_err();
    assert!(err.contains("cache write failed"), "{err}");
    let rows = run_rows(&pool).await;
    assert_eq!(rows[0].3, 3, "two tenants and the global view failed");
}

mod fan_out {
    use super::*;
    use aws_sdk_eventbridge::config::{Credentials, Region};

    async fn aws() -> aws_config::SdkConfig {
        let endpoint = std::env::var("TEST_AWS_ENDPOINT_URL")
            .expect("TEST_AWS_ENDPOINT_URL (a moto_server endpoint) is set by `make test`");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(endpoint)
            .load()
            .await
    }

    /// A custom bus with a rule sending chunk events to a fresh SQS queue, where the test reads them.
    async fn bus_with_capture(config: &aws_config::SdkConfig) -> (String, String) {
        let events = aws_sdk_eventbridge::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let name = format!("warm-test-{}", Uuid::new_v4().simple());
        events.create_event_bus().name(&name).send().await.unwrap();
        let queue_url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        events
            .put_rule()
            .name("chunks")
            .event_bus_name(&name)
            .event_pattern(
                serde_json::json!({
                    "source": [warm_cache::input::CHUNK_SOURCE],
                    "detail-type": [warm_cache::input::CHUNK_DETAIL_TYPE],
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(arn)
            .build()
            .unwrap();
        events
            .put_targets()
            .rule("chunks")
            .event_bus_name(&name)
            .targets(target)
            .send()
            .await
            .unwrap();
        (name, queue_url)
    }

    async fn drain(config: &aws_config::SdkConfig, queue_url: &str) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(config);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body.as_deref().unwrap()).unwrap());
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    #[sqlx::test(migrations = "../../migrations")]
    async fn large_scheduled_run_publishes_every_active_tenant_in_chunks(pool: PgPool) {
        let active = tenants(&pool, 50).await;
        let aws = aws().await;
        let (bus, queue) = bus_with_capture(&aws).await;
        let warm = warm_env()
            .set("WARM_FANOUT_THRESHOLD", "10")
            .set("WARM_CHUNK_SIZE", "7")
            .set("WARM_EVENT_BUS_NAME", bus.clone());
        let fanout = Fanout::new(aws_sdk_eventbridge::Client::new(&aws), bus);
        let s = TestWarmer::new(&pool, warm, Some(fanout));

        let summary = s
            .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(summary["chunks_published"], 8, "ceil(50 / 7)");
        assert_eq!(
            summary["tenants_warmed"], 0,
            "chunks are warmed by their own invocations"
        );
        assert_eq!(summary["global_warmed"], true);

        let chunks = drain(&aws, &queue).await;
        assert_eq!(chunks.len(), 8);
        let mut seen = HashSet::new();
        for chunk in &chunks {
            assert_eq!(chunk["detail"]["run_id"], summary["run_id"]);
            let ids = chunk["detail"]["tenant_ids"].as_array().unwrap();
            assert!(ids.len() <= 7);
            for id in ids {
                assert!(
                    seen.insert(id.as_str().unwrap().parse::<Uuid>().unwrap()),
                    "tenant in two chunks"
                );
            }
        }
        assert_eq!(seen, active.iter().copied().collect::<HashSet<_>>());

        // A delivered chunk, handed back to the function, warms exactly its tenants.
        let chunk_summary = s
            .invoke(chunks[0].clone(), Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(chunk_summary["trigger"], "chunk");
        let n = chunks[0]["detail"]["tenant_ids"].as_array().unwrap().len() as u64;
        assert_eq!(chunk_summary["bundles_warmed"], 2 * n);
        let parent: Option<Uuid> =
            sqlx::query_scalar("SELECT parent_run_id FROM cache_warm_run WHERE trigger = 'chunk'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(
            parent.map(|p| p.to_string()),
            summary["run_id"].as_str().map(str::to_owned)
        );
        cleanup(s).await;
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn postgres_dropping_connections_mid_run_tries_the_lost_reads_again_and_records_the_run(pool: PgPool) {
    let active = tenants(&pool, 150).await;
    let s = TestWarmer::new(&pool, warm_env(), None);
    // Bundle computations queue behind a lock on opportunities (the run's bookkeeping never touches
    // it); three or more of the waiting connections are terminated (an administrator, a failover),
    // then the lock is released. Each read that lost its connection is tried again on another. The watching
    // happens outside the lock's transaction, whose view of pg_stat_activity would never change.
    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE opportunities IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let mut watcher = pool.acquire().await.unwrap();
    let mut terminated = 0;
    let killer = async {
        while terminated < 3 {
            let killed: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_all(&mut *watcher)
            .await
            .unwrap();
            terminated += killed.len();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        locker.commit().await.unwrap();
    };
    let (summary, ()) = tokio::join!(
        s.invoke(event("warm-cache-schedule.json"), Duration::from_secs(600)),
        killer
    );
    let summary = summary.expect("some tenants were warmed, so the run is not an error");

    let (warmed, failed) = (
        summary["tenants_warmed"].as_u64().unwrap(),
        summary["failures"].as_u64().unwrap(),
    );
    assert!(terminated >= 3);
    assert_eq!(
        failed, 0,
        "the reads that lost their connection were tried again: {summary}"
    );
    assert_eq!(warmed, active.len() as u64, "{summary}");
    assert_eq!(summary["global_warmed"], true, "{summary}");
    let rows = run_rows(&pool).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].3 as u64, failed);
    assert!(rows[0].5, "the run row was completed");
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_tenant_with_hostile_data_is_warmed_like_any_other_and_the_run_finishes(pool: PgPool) {
    let active = tenants(&pool, 6).await;
    for hostile in [
        "INSERT INTO leads (tenant_id, created_date) VALUES ($1, 'infinity')",
        "INSERT INTO opportunities (tenant_id, name, amount) VALUES ($1, 'x', 'NaN')",
    ] {
        sqlx::query(hostile).bind(active[2]).execute(&pool).await.unwrap();
    }
    let s = TestWarmer::new(&pool, warm_env(), None);
    let summary = s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(summary["failures"], 0, "{summary}");
    assert_eq!(summary["bundles_warmed"], 6 * 2 + 2);
    assert_eq!(summary["global_warmed"], true);
    let rows = run_rows(&pool).await;
    assert!(rows[0].5, "the run row was completed");
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_retry_of_a_scheduler_execution_does_not_redo_its_work(pool: PgPool) {
    let active = tenants(&pool, 6).await;
    let s = TestWarmer::new(&pool, warm_env(), None);
    let scheduler = event("warm-cache-scheduler.json");
    let execution = scheduler["execution_id"].as_str().unwrap().to_owned();

    // An earlier attempt warmed two tenants, then timed out (its row never finished).
    sqlx::query("INSERT INTO cache_warm_run (trigger, execution_id) VALUES ('schedule', $1)")
        .bind(&execution)
        .execute(&pool)
        .await
        .unwrap();
    for id in &active[..2] {
        for bundle in BundleId::both(Scope::Tenant(*id)) {
            s.bundles.refresh(bundle, WARM_TTL).await.unwrap();
        }
    }
    let retry = s
        .invoke(scheduler.clone(), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(retry["trigger"], "schedule");
    assert_eq!(retry["skipped_fresh"], 2, "{retry}");
    assert_eq!(retry["tenants_warmed"], 4);
    assert_eq!(retry["bundles_warmed"], 4 * 2 + 2);

    // Delivered once more after it finished: nothing is done again.
    let again = s.invoke(scheduler, Duration::from_secs(600)).await.unwrap();
    assert_eq!(
        (again["already_done"].as_bool(), again["bundles_warmed"].as_u64()),
        (Some(true), Some(0))
    );
    assert_eq!(
        run_rows(&pool).await.len(),
        2,
        "no row for the duplicate delivery"
    );
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_retry_after_an_attempt_that_warmed_nothing_does_the_work(pool: PgPool) {
    tenants(&pool, 3).await;
    let scheduler = event("warm-cache-scheduler.json");
    // The first attempt ran with Redis down: it finished, warmed nothing and returned an error.
    let down = TestWarmer::new(&pool, warm_env().set("REDIS_URL", testing::DEAD_REDIS_URL), None);
    assert!(down
        .invoke(scheduler.clone(), Duration::from_secs(600))
        .await
        .is_err());

    let s = TestWarmer::new(&pool, warm_env(), None);
    let retry = s.invoke(scheduler, Duration::from_secs(600)).await.unwrap();
    assert_eq!(retry["already_done"], false, "{retry}");
    assert_eq!(retry["bundles_warmed"], 3 * 2 + 2);
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn scheduled_run_compacts_checks_a_sample_and_repairs_drift(pool: PgPool) {
    let active = tenants(&pool, 5).await;
    // A write that bypassed the triggers: the maintained stats of this tenant no longer match.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET session_replication_role = replica;
         INSERT INTO activities (tenant_id, type) VALUES ('{}', 'call');
         RESET session_replication_role",
        active[2]
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let s = TestWarmer::new(&pool, warm_env().set("WARM_CHECK_SAMPLE", "10"), None);

    let summary = s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap();

    assert!(summary["deltas_compacted"].as_u64() > Some(0), "{summary}");
    assert_eq!(
        summary["stats_checked"], 6,
        "five tenants and the rows without one"
    );
    assert_eq!(summary["stats_drifted"], 1);
    let row: (i64, i32, i32) =
        sqlx::query_as("SELECT deltas_compacted, stats_checked, stats_drifted FROM cache_warm_run")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((row.1, row.2), (6, 1));
    assert!(row.0 > 0);
    let still: i64 = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_repair($1)")
        .bind(active[2])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(still, 0, "repaired");
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn compact_action_folds_every_delta_and_records_no_run(pool: PgPool) {
    tenants(&pool, 3).await;
    let s = TestWarmer::new(&pool, warm_env(), None);

    let result = s
        .invoke(serde_json::json!({"action": "compact"}), Duration::from_secs(60))
        .await
        .unwrap();

    assert!(result["deltas_compacted"].as_u64() > Some(0), "{result}");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM dashboard_cache.bundle_stats_delta")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert!(run_rows(&pool).await.is_empty());
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_readme_grants_are_enough_for_a_scheduled_run_with_compaction_and_check(pool: PgPool) {
    let active = tenants(&pool, 3).await;
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET session_replication_role = replica;
         INSERT INTO leads (tenant_id) VALUES ('{}');
         RESET session_replication_role",
        active[0]
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let role = testing::DbRole::create(&pool, "warm_cache_db", &testing::readme_grants("warm-cache")).await;
    let env = warm_env().set("WARM_CHECK_SAMPLE", "10");
    let db = shared::platform::db::Database::new(role.pool(), &env.database_config());
    let s = TestWarmer::over(env, db, None, Clock::default());

    let summary = s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap();
    let compacted = s
        .invoke(serde_json::json!({"action": "compact"}), Duration::from_secs(60))
        .await
        .unwrap();

    assert_eq!(summary["errors"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["bundles_warmed"], 2 * 3 + 2, "{summary}");
    assert!(summary["deltas_compacted"].as_u64() > Some(0), "{summary}");
    assert_eq!(
        (&summary["stats_checked"], &summary["stats_drifted"]),
        (&4.into(), &1.into())
    );
    assert!(compacted["deltas_compacted"].is_u64(), "{compacted}");
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_exactness_check_names_child_tables_whose_rows_are_not_counted(pool: PgPool) {
    tenants(&pool, 2).await;
    sqlx::raw_sql("CREATE TABLE leads_archive () INHERITS (leads)")
        .execute(&pool)
        .await
        .unwrap();
    let s = TestWarmer::new(&pool, warm_env().set("WARM_CHECK_SAMPLE", "10"), None);

    let summary = s
        .invoke(event("warm-cache-schedule.json"), Duration::from_secs(600))
        .await
        .unwrap();

    assert_eq!(
        summary["untracked_tables"],
        serde_json::json!(["leads_archive"]),
        "{summary}"
    );
    let recorded: Vec<String> = sqlx::query_scalar("SELECT untracked_tables FROM cache_warm_run")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(recorded, ["leads_archive"]);
    cleanup(s).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_chunk_whose_parent_run_row_is_gone_still_warms(pool: PgPool) {
    let active = tenants(&pool, 2).await;
    let gone = Uuid::new_v4();
    let chunk = serde_json::json!({
        "detail-type": "Dashboard Warm Chunk",
        "source": "dashboard-bundle.warm-cache",
        "detail": {"run_id": gone, "tenant_ids": active},
    });
    let s = TestWarmer::new(&pool, warm_env(), None);

    let summary = s.invoke(chunk, Duration::from_secs(600)).await.unwrap();

    assert_eq!(summary["bundles_warmed"], 4, "{summary}");
    let parent: Option<Uuid> =
        sqlx::query_scalar("SELECT parent_run_id FROM cache_warm_run WHERE trigger = 'chunk'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(parent, Some(gone), "the chunk still names its run");
    cleanup(s).await;
}
