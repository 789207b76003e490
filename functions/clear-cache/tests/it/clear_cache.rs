//! clear-cache handler tests over real Redis (and Postgres, to prove MISS/HIT afterwards).

use clear_cache::{route, State};
use serde_json::Value;
use shared::auth::Role;
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use sqlx::PgPool;
use test_support::{self as testing, event, reply, request, with_body, with_token, TestEnv};
use uuid::Uuid;

use crate::app::{clear_state, dashboard_state, raw_redis};

async fn send(state: &State, ev: &Value) -> (u16, Value) {
    let r = reply(
        route(state, request(ev))
            .await
            .expect("handlers never return Err"),
    );
    (r.status, r.body)
}

async fn post(state: &State, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    send(
        state,
        &with_body(with_token(event("clear-cache-all.json"), token), body),
    )
    .await
}

async fn exists(key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut raw_redis(&TestEnv::new()).await)
        .await
        .unwrap();
    n == 1
}

/// The X-Cache of the dashboard function, for an admin of `tenant` (its whole dashboard unless `query`
/// drills down), with query `query`.
async fn dashboard_cache_header(dash: &dashboard_bundle::State, tenant: Uuid, query: &str) -> String {
    let token = testing::token(Role::Admin, Some(tenant));
    let ev = testing::with_query(with_token(event("dashboard-bundle.json"), Some(&token)), query);
    let r = reply(dashboard_bundle::route(dash, request(&ev)).await.unwrap());
    assert_eq!(r.status, 200);
    r.outcome()
}

struct Fixture {
    env: TestEnv,
    clear: State,
    dash: dashboard_bundle::State,
    a: Uuid,
    b: Uuid,
    /// Keys of the same Redis outside the bundle namespace.
    unrelated: Vec<String>,
}

impl Fixture {
    async fn new(pool: PgPool) -> Self {
        let a = testing::insert_tenant(&pool, "a").await;
        let b = testing::insert_tenant(&pool, "b").await;
        let env = TestEnv::new();
        let dash = dashboard_state(&env, &pool);
        let prefix = env.prefix();
        let unrelated = vec![
            format!("{prefix}session:{a}"),
            format!("{prefix}dashboard:other:{a}"),
            format!("{prefix}dashboard:bundlex:{a}"),
        ];
        let mut conn = raw_redis(&TestEnv::new()).await;
        for key in &unrelated {
            let _: () = redis::cmd("SET")
                .arg(key)
                .arg("keep")
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        // Warm both variants of both tenants through the real dashboard function.
        for tenant in [a, b] {
            dashboard_cache_header(&dash, tenant, "").await;
            dashboard_cache_header(&dash, tenant, "include_test_data=false").await;
        }
        Self {
            clear: clear_state(&env),
            env,
            dash,
            a,
            b,
            unrelated,
        }
    }

    async fn hit_or_miss(&self, tenant: Uuid) -> String {
        dashboard_cache_header(&self.dash, tenant, "").await
    }

    async fn unrelated_intact(&self) {
        for key in &self.unrelated {
            assert!(exists(key).await, "{key} was deleted");
        }
    }

    async fn cleanup(self) {
        testing::cleanup_prefix(&self.env.prefix()).await;
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn tenant_clear_makes_that_tenant_miss_and_keeps_others_hit(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let root = testing::token(Role::Superadmin, None);
    let (status, body) = post(
        &f.clear,
        Some(&root),
        Some(&format!(r#"{{"tenant_id": "{}"}}"#, f.a)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["cleared"], true);
    assert_eq!(body["data"]["scope"], "tenant");
    assert_eq!(body["data"]["tenant_id"], f.a.to_string());
    assert_eq!(body["data"]["deleted"], 2, "both include= variants");

    assert_eq!(f.hit_or_miss(f.a).await, "MISS");
    assert_eq!(f.hit_or_miss(f.b).await, "HIT");
    f.unrelated_intact().await;
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn tenant_clear_removes_every_scoped_and_widget_bundle_of_that_tenant_only(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let employee = Uuid::from_u128(0xe1);
    let team = Uuid::from_u128(0x7ea);
    let scoped = [
        format!("assigned_to={employee}"),
        format!("team_id={team}&include_test_data=false"),
        "widgets=recentLeads,leadSourceChart".to_owned(),
        format!("assigned_to={employee}&widgets=salesPipeline"),
    ];
    for tenant in [f.a, f.b] {
        for query in &scoped {
            assert_eq!(
                dashboard_cache_header(&f.dash, tenant, query).await,
                "MISS",
                "{query}"
            );
            assert_eq!(
                dashboard_cache_header(&f.dash, tenant, query).await,
                "HIT",
                "{query}"
            );
        }
    }
    let admin = testing::token(Role::Admin, Some(f.a));

    let (status, body) = post(&f.clear, Some(&admin), None).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["deleted"],
        2 + scoped.len(),
        "the whole bundles and every scoped one"
    );
    for query in &scoped {
        assert_eq!(
            dashboard_cache_header(&f.dash, f.a, query).await,
            "MISS",
            "{query}"
        );
        assert_eq!(
            dashboard_cache_header(&f.dash, f.b, query).await,
            "HIT",
            "{query}"
        );
    }
    f.unrelated_intact().await;
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn admin_with_empty_body_clears_its_own_tenant(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let admin = testing::token(Role::Admin, Some(f.b));
    for body in [None, Some("{}"), Some("  ")] {
        let (status, reply) = post(&f.clear, Some(&admin), body).await;
        assert_eq!(status, 200, "{body:?}: {reply}");
        assert_eq!(reply["data"]["scope"], "tenant");
        assert_eq!(reply["data"]["tenant_id"], f.b.to_string());
    }
    let key_of_a = f.clear.keys.bundle(BundleId::new(Scope::Tenant(f.a), true));
    assert!(exists(&key_of_a).await, "another tenant's bundle survived");
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn global_clear_deletes_every_bundle_key_and_nothing_else(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let keys = f.clear.keys.clone();
    let mut conn = raw_redis(&TestEnv::new()).await;
    let extra = 10_000;
    for chunk in (0..extra).collect::<Vec<_>>().chunks(1_000) {
        let mut pipe = redis::pipe();
        for _ in chunk {
            pipe.cmd("SET")
                .arg(keys.bundle(BundleId::new(Scope::Tenant(Uuid::new_v4()), true)))
                .arg("x")
                .ignore();
        }
        let _: () = pipe.query_async(&mut conn).await.unwrap();
    }
    let root = testing::token(Role::Superadmin, None);
    let (status, body) = post(&f.clear, Some(&root), Some("{}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["scope"], "all");
    assert_eq!(body["data"]["tenant_id"], Value::Null);
    assert_eq!(
        body["data"]["deleted"],
        extra + 4,
        "10,000 planted + 2 tenants x 2 variants"
    );

    let mut left: Vec<String> = Vec::new();
    let mut iter: redis::AsyncIter<String> = conn.scan_match(keys.bundle_scan_pattern()).await.unwrap();
    while let Some(key) = iter.next_item().await {
        left.push(key.unwrap());
    }
    assert!(left.is_empty(), "{} bundle keys left", left.len());
    f.unrelated_intact().await;
    f.cleanup().await;
}

use redis::AsyncCommands;

#[sqlx::test(migrations = "../../migrations")]
async fn roles_that_may_not_clear_are_403(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let cases = [
        (Role::Manager, Some(f.a), "{}".to_owned()),
        (Role::Employee, Some(f.a), "{}".to_owned()),
        (Role::Admin, Some(f.a), format!(r#"{{"tenant_id":"{}"}}"#, f.b)),
    ];
    for (role, tenant, body) in cases {
        let (status, reply) = post(&f.clear, Some(&testing::token(role, tenant)), Some(&body)).await;
        assert_eq!(status, 403, "{role:?} {body}: {reply}");
        assert_eq!(reply["error"], "forbidden");
    }
    assert_eq!(f.hit_or_miss(f.a).await, "HIT");
    assert_eq!(f.hit_or_miss(f.b).await, "HIT");
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn missing_or_invalid_token_is_401(pool: PgPool) {
    let f = Fixture::new(pool).await;
    for token in [None, Some("not.a.jwt")] {
        let (status, _) = post(&f.clear, token, Some("{}")).await;
        assert_eq!(status, 401);
    }
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn malformed_bodies_are_400_and_clear_nothing(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let root = testing::token(Role::Superadmin, None);
    let bodies = [
        "not json",
        "[]",
        "null",
        r#"{"tenant_id": "nope"}"#,
        r#"{"tenant_id": "*"}"#,
        r#"{"tenant_id": null}"#,
        r#"{"tenant_id": 42}"#,
        r#"{"tenant": "a11dfb63-4b18-4eb8-872e-747af2e37c46"}"#,
        r#"{"tenant_id": "a11dfb63-4b18-4eb8-872e-747af2e37c46", "all": true}"#,
        r#"{"tenant_id": "{a11dfb63-4b18-4eb8-872e-747af2e37c46}"}"#,
    ];
    for body in bodies {
        let (status, reply) = post(&f.clear, Some(&root), Some(body)).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["status"], "error");
    }
    assert_eq!(f.hit_or_miss(f.a).await, "HIT");
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn oversized_body_and_wrong_method_or_type_are_refused(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let root = testing::token(Role::Superadmin, None);
    let big = format!(r#"{{"tenant_id": "{}"}}"#, "a".repeat(10_000));
    assert_eq!(post(&f.clear, Some(&root), Some(&big)).await.0, 413);

    let mut ev = with_body(with_token(event("clear-cache-all.json"), Some(&root)), Some("{}"));
    ev["headers"]["content-type"] = "text/plain".into();
    assert_eq!(send(&f.clear, &ev).await.0, 415);

    let mut ev = with_token(event("clear-cache-all.json"), Some(&root));
    ev["requestContext"]["http"]["method"] = "GET".into();
    assert_eq!(send(&f.clear, &ev).await.0, 405);
    assert_eq!(f.hit_or_miss(f.a).await, "HIT");
    f.cleanup().await;
}

#[tokio::test]
async fn redis_down_is_503_with_cleared_false() {
    let state = clear_state(&TestEnv::new().set("REDIS_URL", testing::DEAD_REDIS_URL));
    let root = testing::token(Role::Superadmin, None);
    for body in ["{}", r#"{"tenant_id": "a11dfb63-4b18-4eb8-872e-747af2e37c46"}"#] {
        let (status, reply) = post(&state, Some(&root), Some(body)).await;
        assert_eq!(status, 503, "{reply}");
        assert_eq!(reply["data"]["cleared"], false);
        assert_eq!(reply["status"], "error");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn committed_events_parse_as_clear_requests(pool: PgPool) {
    let f = Fixture::new(pool).await;
    let root = testing::token(Role::Superadmin, None);
    let ev = with_token(event("clear-cache-tenant.json"), Some(&root));
    let (status, body) = send(&f.clear, &ev).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["tenant_id"], "a11dfb63-4b18-4eb8-872e-747af2e37c46");
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_dashboard_environment_with_an_in_memory_level_sees_a_clear_within_its_max_age(pool: PgPool) {
    let tenant = testing::insert_tenant(&pool, "a").await;
    let env = TestEnv::new()
        .set("LOCAL_CACHE_MB", "16")
        .set("LOCAL_CACHE_MAX_AGE_MS", "300");
    let dash = dashboard_state(&env, &pool);
    assert_eq!(dashboard_cache_header(&dash, tenant, "").await, "MISS");
    assert_eq!(dashboard_cache_header(&dash, tenant, "").await, "HIT");

    let admin = testing::token(Role::Admin, Some(tenant));
    let cleared_at = std::time::Instant::now();
    let (status, body) = post(&clear_state(&env), Some(&admin), Some("{}")).await;
    assert_eq!(status, 200, "{body}");
    loop {
        let outcome = dashboard_cache_header(&dash, tenant, "").await;
        if outcome == "MISS" {
            break;
        }
        assert_eq!(outcome, "HIT");
        assert!(
            cleared_at.elapsed() < std::time::Duration::from_millis(300),
            "the cleared bundle was served past LOCAL_CACHE_MAX_AGE_MS"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    testing::cleanup_prefix(&env.prefix()).await;
}
