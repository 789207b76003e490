//! Handler tests: the JSON events of `events/`, fed to the handler over real Postgres and Redis.

use crate::app::send;
use dashboard_bundle::State;
use serde_json::Value;
use shared::auth::Role;
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::store::RedisCache;
use sqlx::PgPool;
use test_support::{self as testing, event, log_lines, with_token, Reply, TestEnv};
use uuid::Uuid;

struct Fixture {
    env: TestEnv,
    state: State,
    tenant: Uuid,
    other: Uuid,
}

impl Fixture {
    async fn new(pool: PgPool) -> Self {
        let tenant = testing::insert_tenant(&pool, "acme").await;
        let other = testing::insert_tenant(&pool, "globex").await;
        sqlx::query("INSERT INTO leads (tenant_id, status) VALUES ($1, 'new'), ($1, 'lost'), ($2, 'new')")
            .bind(tenant)
            .bind(other)
            .execute(&pool)
            .await
            .unwrap();
        let env = TestEnv::new();
        Self {
            state: crate::app::state(&env, &pool),
            env,
            tenant,
            other,
        }
    }

    async fn get(&self, token: Option<&str>, query: &str) -> Reply {
        crate::app::get_with(&self.state, token, query).await
    }

    fn admin(&self) -> String {
        testing::token(Role::Admin, Some(self.tenant))
    }

    fn cache(&self) -> &RedisCache {
        self.state.bundles.redis()
    }

    fn key(&self, tenant: Uuid, include: bool) -> String {
        self.state
            .bundles
            .keys()
            .bundle(BundleId::new(Scope::Tenant(tenant), include))
    }

    async fn cleanup(self) {
        testing::cleanup_prefix(&self.env.prefix()).await;
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn first_request_misses_and_second_hits_with_same_data(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let first = f.get(Some(&f.admin()), "").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.x_cache.as_deref(), Some("MISS"));
    assert_eq!(first.body["status"], "success");
    assert_eq!(first.body["cached"], false);
    assert_eq!(first.body["data"]["stats"]["totalLeads"], 2);
    assert_eq!(first.body["data"]["meta"]["tenant_id"], f.tenant.to_string());

    let second = f.get(Some(&f.admin()), "").await;
    assert_eq!(second.x_cache.as_deref(), Some("HIT"));
    assert_eq!(second.body["cached"], true);
    assert_eq!(second.body["data"], first.body["data"]);
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn stored_entry_lives_for_the_max_age(pool: PgPool) {
    let f = Fixture::new(pool).await;
    f.get(Some(&f.admin()), "include_test_data=false").await;
    let ttl = f
        .cache()
        .expires_in(&f.key(f.tenant, false))
        .await
        .unwrap()
        .expect("key stored with a TTL");
    let max_age = f.state.config.freshness.max_age;
    assert!(
        ttl > max_age - std::time::Duration::from_secs(10) && ttl <= max_age,
        "{ttl:?}"
    );
    assert_eq!(
        f.cache().expires_in(&f.key(f.tenant, true)).await.unwrap(),
        None,
        "other variant untouched"
    );
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn bust_cache_recomputes_and_sees_new_rows(pool: PgPool) {
    let f = Fixture::new(pool.clone()).await;
    f.get(Some(&f.admin()), "").await;
    sqlx::query("INSERT INTO leads (tenant_id) VALUES ($1)")
        .bind(f.tenant)
        .execute(&pool)
        .await
        .unwrap();

    let cached = f.get(Some(&f.admin()), "").await;
    assert_eq!(cached.body["data"]["stats"]["totalLeads"], 2);
    let busted = f.get(Some(&f.admin()), "bust_cache=true").await;
    assert_eq!(busted.x_cache.as_deref(), Some("MISS"));
    assert_eq!(busted.body["data"]["stats"]["totalLeads"], 3);
    let after = f.get(Some(&f.admin()), "").await;
    assert_eq!(after.x_cache.as_deref(), Some("HIT"));
    assert_eq!(
        after.body["data"]["stats"]["totalLeads"], 3,
        "bust stored the fresh bundle"
    );
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn tenant_id_in_any_case_reads_the_same_key(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let upper = f.tenant.to_string().to_uppercase();
    let first = f.get(Some(&f.admin()), &format!("tenant_id={upper}")).await;
    assert_eq!(first.status, 200);
    let second = f.get(Some(&f.admin()), &format!("tenant_id={}", f.tenant)).await;
    assert_eq!(second.x_cache.as_deref(), Some("HIT"));
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn malformed_parameters_are_400_naming_the_parameter(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let cases = [
        ("tenant_id=not-a-uuid", "tenant_id"),
        ("tenant_id=*", "tenant_id"),
        ("include_test_data=yes", "include_test_data"),
        ("bust_cache=1", "bust_cache"),
        ("bust_cache=true&bust_cache=false", "bust_cache"),
        ("color=blue", "color"),
    ];
    for (query, parameter) in cases {
        let r = f.get(Some(&f.admin()), query).await;
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.body["status"], "error");
        assert!(
            r.body["message"].as_str().unwrap().contains(parameter),
            "{query}: {}",
            r.body
        );
    }
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn missing_garbage_and_expired_tokens_are_401(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let expired = shared::auth::issue_token(
        testing::TEST_JWT_SECRET,
        &shared::auth::Claims {
            sub: "u".into(),
            role: Role::Admin,
            tenant_id: Some(f.tenant),
            exp: 1,
            employee_id: None,
        },
    )
    .expect("test token");
    for token in [None, Some("garbage"), Some(expired.as_str())] {
        let r = f.get(token, "").await;
        assert_eq!(r.status, 401, "{token:?}");
        assert_eq!(r.body["error"], "unauthorized");
    }
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn reading_another_tenant_is_403_and_caches_nothing(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let r = f.get(Some(&f.admin()), &format!("tenant_id={}", f.other)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], "forbidden");
    assert_eq!(f.cache().get(&f.key(f.other, true)).await.unwrap(), None);
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn superadmin_reads_any_tenant_or_the_global_view(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let root = testing::token(Role::Superadmin, None);
    let other = f.get(Some(&root), &format!("tenant_id={}", f.other)).await;
    assert_eq!(other.body["data"]["stats"]["totalLeads"], 1);

    let ev = with_token(event("dashboard-bundle-global.json"), Some(&root));
    let global = send(&f.state, &ev).await;
    assert_eq!(global.status, 200);
    assert_eq!(global.body["data"]["stats"]["totalLeads"], 3);
    assert_eq!(global.body["data"]["meta"]["tenant_id"], Value::Null);
    let key = f.state.bundles.keys().bundle(BundleId::new(Scope::Global, true));
    assert!(key.ends_with("dashboard:bundle:SUPERADMIN_GLOBAL:include=true"));
    assert!(f.cache().get(&key).await.unwrap().is_some());
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn superadmin_asking_for_unknown_tenant_is_404(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let root = testing::token(Role::Superadmin, None);
    let r = f.get(Some(&root), &format!("tenant_id={}", Uuid::new_v4())).await;
    assert_eq!(r.status, 404);
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn redis_down_bypasses_cache_quickly(pool: PgPool) {
    // Why a bypass failed is only in the function's log: kept, and shown if one does (this test
    // failed once in CI with a 503, a cause not found since).
    let lines = log_lines::capture("dashboard-bundle");
    let env = TestEnv::new().set("REDIS_URL", testing::DEAD_REDIS_URL);
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = crate::app::state(&env, &pool);
    let token = testing::token(Role::Employee, Some(tenant));
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let ev = with_token(event("dashboard-bundle.json"), Some(&token));
        let r = send(&state, &ev).await;
        assert_eq!(
            r.status,
            200,
            "after {:?}: {:?}",
            started.elapsed(),
            lines.warnings_mentioning(&tenant.to_string())
        );
        assert_eq!(r.x_cache.as_deref(), Some("BYPASS"));
        assert_eq!(r.body["cached"], false);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn postgres_down_is_503_and_caches_nothing(_pool: PgPool) {
    let env = TestEnv::new();
    let state = crate::app::state_over(&env, testing::dead_database(), Default::default());
    let tenant = Uuid::new_v4();
    let ev = with_token(
        event("dashboard-bundle.json"),
        Some(&testing::token(Role::Admin, Some(tenant))),
    );
    let r = send(&state, &ev).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["error"], "database_unavailable");
    let key = state
        .bundles
        .keys()
        .bundle(BundleId::new(Scope::Tenant(tenant), true));
    assert_eq!(state.bundles.redis().get(&key).await.unwrap(), None);
}

#[sqlx::test(migrations = "../../migrations")]
async fn health_reports_both_dependencies(pool: PgPool) {
    let state = crate::app::state(&TestEnv::new(), &pool);
    let r = send(&state, &event("health.json")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["redis_cache"], "connected");
    assert_eq!(r.body["database"], "connected");
    assert!(r.body["latency_ms"]["redis_cache"].is_number());
}

#[sqlx::test(migrations = "../../migrations")]
async fn health_names_the_failing_dependency(pool: PgPool) {
    let env = TestEnv::new().set("REDIS_URL", testing::DEAD_REDIS_URL);
    let state = crate::app::state(&env, &pool);
    let r = send(&state, &event("health.json")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["redis_cache"], "disconnected");
    assert_eq!(r.body["database"], "connected");
}

#[sqlx::test(migrations = "../../migrations")]
async fn the_readme_grants_are_enough_for_a_miss_a_revalidation_and_health(pool: PgPool) {
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let role = testing::DbRole::create(
        &pool,
        "dashboard_bundle_db",
        &testing::readme_grants("dashboard-bundle"),
    )
    .await;
    let env = TestEnv::new().set("BUNDLE_TTL_SECONDS", "0");
    let db = shared::platform::db::Database::new(role.pool(), &env.database_config());
    let state = crate::app::state_over(&env, db, shared::platform::clock::Clock::default());

    let miss = crate::app::get(&state, tenant).await;
    let revalidated = crate::app::get(&state, tenant).await;
    let recomputes = state.bundles.recomputes();
    sqlx::query("INSERT INTO leads (tenant_id, status) VALUES ($1, 'new')")
        .bind(tenant)
        .execute(&pool)
        .await
        .unwrap();
    let after_write = crate::app::get(&state, tenant).await;
    let health = send(&state, &event("health.json")).await;
    // A manager's team drill-down: the membership check and the per-assignee counters.
    let (manager, team) = (Uuid::from_u128(0x3a), Uuid::from_u128(0x7ea));
    sqlx::query("INSERT INTO team_members (tenant_id, team_id, employee_id) VALUES ($1, $2, $3)")
        .bind(tenant)
        .bind(team)
        .bind(manager)
        .execute(&pool)
        .await
        .unwrap();
    let token = testing::employee_token(Role::Manager, Some(tenant), manager);
    let team_bundle = crate::app::get_with(&state, Some(&token), &format!("team_id={team}")).await;
    assert_eq!(team_bundle.status, 200, "{}", team_bundle.body);
    assert_eq!(team_bundle.body["data"]["meta"]["scope"], "team");

    assert_eq!(
        (miss.status, miss.outcome()),
        (200, "MISS".to_owned()),
        "{}",
        miss.body
    );
    assert_eq!(revalidated.outcome(), "HIT");
    assert_eq!(recomputes, 1, "revalidated by a version read");
    assert_eq!(after_write.outcome(), "MISS");
    assert_eq!(after_write.body["data"]["stats"]["totalLeads"], 1);
    assert_eq!(
        (health.status, &health.body["database"]),
        (200, &Value::from("connected"))
    );
    testing::cleanup_prefix(&env.prefix()).await;

    // And nothing more: the read-only role cannot write the change table or run the warmer's upkeep.
    let mut session = role.connect().await;
    for sql in [
        "INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, changes) VALUES (NULL, false, -1)",
        "SELECT dashboard_cache.bundle_stats_compact(10)",
        "INSERT INTO leads (tenant_id) VALUES (NULL)",
    ] {
        let refused = sqlx::query(sql).execute(&mut session).await.unwrap_err();
        assert_eq!(
            refused.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("42501"),
            "{sql}"
        );
    }
}
