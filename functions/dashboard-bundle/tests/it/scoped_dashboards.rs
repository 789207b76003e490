//! Scoped dashboards (issue 26): an employee's own figures, team drill-downs, the widgets and the two
//! breakdowns, and who may read which scope, through the handler over real Postgres and Redis.

use serde_json::{json, Value};
use shared::auth::Role;
use sqlx::PgPool;
use test_support::{self as testing, Reply, TestEnv};
use uuid::Uuid;

use crate::app::get_with;

const E1: Uuid = Uuid::from_u128(0xe1);
const E2: Uuid = Uuid::from_u128(0xe2);
const E3: Uuid = Uuid::from_u128(0xe3);
const MANAGER: Uuid = Uuid::from_u128(0x3a);
/// The manager and E1.
const TEAM_A: Uuid = Uuid::from_u128(0x7ea);
/// E2 alone.
const TEAM_B: Uuid = Uuid::from_u128(0x7eb);
/// No members.
const TEAM_EMPTY: Uuid = Uuid::from_u128(0x7ee);

struct Fixture {
    env: TestEnv,
    pool: PgPool,
    state: dashboard_bundle::State,
    tenant: Uuid,
}

impl Fixture {
    async fn new(pool: PgPool, env: TestEnv) -> Self {
        let tenant = testing::insert_tenant(&pool, "acme").await;
        let other = testing::insert_tenant(&pool, "globex").await;
        let seed = format!(
            "INSERT INTO team_members (tenant_id, team_id, employee_id) VALUES
               ('{tenant}', '{TEAM_A}', '{MANAGER}'), ('{tenant}', '{TEAM_A}', '{E1}'), ('{tenant}', '{TEAM_B}', '{E2}');
             INSERT INTO leads (tenant_id, assigned_to, source, status) VALUES
               ('{tenant}', '{E1}', 'web', 'new'), ('{tenant}', '{E1}', NULL, 'lost'), ('{tenant}', '{E2}', 'ads', 'new'),
               ('{tenant}', NULL, 'web', NULL), ('{tenant}', '{MANAGER}', '', 'new'), ('{tenant}', '{E3}', 'web', 'new'),
               ('{other}', '{E1}', 'web', 'new');
             INSERT INTO opportunities (tenant_id, assigned_to, name, stage, amount) VALUES
               ('{tenant}', '{E1}', 'a', 'won', 100.50), ('{tenant}', '{E2}', 'b', 'proposal', 50),
               ('{tenant}', NULL, 'c', 'lost', 10), ('{tenant}', '{MANAGER}', 'd', 'won', 'NaN'),
               ('{tenant}', '{MANAGER}', 'e', NULL, 7)"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(seed))
            .execute(&pool)
            .await
            .expect("seed");
        Self {
            state: crate::app::state(&env, &pool),
            env,
            pool,
            tenant,
        }
    }

    async fn get(&self, role: Role, employee: Uuid, query: &str) -> Reply {
        let token = testing::employee_token(role, Some(self.tenant), employee);
        get_with(&self.state, Some(&token), query).await
    }

    async fn cleanup(self) {
        testing::cleanup_prefix(&self.env.prefix()).await;
    }
}

fn stat(reply: &Reply, name: &str) -> Value {
    reply.body["data"]["stats"][name].clone()
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_employee_sees_their_records_and_the_unassigned_ones(pool: PgPool) {
    let f = Fixture::new(pool, TestEnv::new()).await;

    let mine = f.get(Role::Employee, E1, "").await;

    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(stat(&mine, "totalLeads"), 3, "E1's two and the unassigned one");
    assert_eq!(stat(&mine, "openLeads"), 2);
    assert_eq!(stat(&mine, "leadsBySource"), json!({"other": 1, "web": 2}));
    assert_eq!(stat(&mine, "wonValue"), json!(100.50));
    assert_eq!(
        mine.body["data"]["funnel"],
        json!([{"stage": "lost", "count": 1, "amount": 10.00}, {"stage": "won", "count": 1, "amount": 100.50}])
    );
    let meta = &mine.body["data"]["meta"];
    assert_eq!(
        (meta["scope"].as_str(), meta["scope_id"].as_str()),
        (Some("employee"), Some(&*E1.to_string()))
    );
    // Naming themselves is the same dashboard, from the same entry.
    let again = f.get(Role::Employee, E1, &format!("assigned_to={E1}")).await;
    assert_eq!(
        (again.x_cache.as_deref(), &again.body["data"]),
        (Some("HIT"), &mine.body["data"])
    );
    // A manager without a drill-down reads their own scope too.
    let manager = f.get(Role::Manager, MANAGER, "").await;
    assert_eq!(
        stat(&manager, "totalLeads"),
        2,
        "the manager's one and the unassigned one"
    );
    assert_eq!(
        stat(&manager, "pipelineValue"),
        json!(7.00),
        "a NaN amount is in no sum"
    );
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_team_counts_its_members_records_only_and_an_empty_team_counts_nothing(pool: PgPool) {
    let f = Fixture::new(pool, TestEnv::new()).await;

    let team = f.get(Role::Admin, E3, &format!("team_id={TEAM_A}")).await;
    let empty = f.get(Role::Admin, E3, &format!("team_id={TEAM_EMPTY}")).await;
    let tenant = f.get(Role::Admin, E3, "").await;

    assert_eq!(team.status, 200, "{}", team.body);
    assert_eq!(
        stat(&team, "totalLeads"),
        3,
        "E1's two and the manager's one, no unassigned"
    );
    assert_eq!(stat(&team, "totalOpportunities"), 3);
    assert_eq!(stat(&team, "leadsBySource"), json!({"other": 2, "web": 1}));
    assert_eq!(team.body["data"]["meta"]["scope"], "team");
    assert_eq!(stat(&empty, "totalLeads"), 0);
    assert_eq!(empty.body["data"]["lists"]["recentLeads"], json!([]));
    assert_eq!(empty.body["data"]["funnel"], json!([]));
    assert_eq!(stat(&tenant, "totalLeads"), 6);
    assert_eq!(tenant.body["data"]["meta"]["scope"], "tenant");
    assert_eq!(
        stat(&tenant, "leadsBySource"),
        json!({"ads": 1, "other": 2, "web": 3}),
        "the whole tenant's sources, another tenant's lead left out"
    );
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn every_drill_down_a_role_may_not_make_is_refused(pool: PgPool) {
    let f = Fixture::new(pool, TestEnv::new()).await;
    let cases = [
        (Role::Employee, E1, format!("assigned_to={E2}"), 403),
        (Role::Employee, E1, format!("team_id={TEAM_A}"), 403),
        (Role::Manager, MANAGER, format!("team_id={TEAM_B}"), 403),
        (Role::Manager, MANAGER, format!("assigned_to={E2}"), 403),
        (Role::Manager, MANAGER, format!("assigned_to={E3}"), 403),
        (Role::Manager, E2, format!("team_id={TEAM_A}"), 403),
        (Role::Manager, MANAGER, format!("team_id={TEAM_A}"), 200),
        (Role::Manager, MANAGER, format!("assigned_to={E1}"), 200),
        (Role::Manager, E2, format!("team_id={TEAM_B}"), 200),
        (Role::Admin, E3, format!("assigned_to={E2}"), 200),
        (Role::Admin, E3, format!("team_id={TEAM_B}"), 200),
    ];
    for (role, employee, query, status) in &cases {
        let reply = f.get(*role, *employee, query).await;
        assert_eq!(
            reply.status, *status,
            "{role:?} {employee} {query}: {}",
            reply.body
        );
        if *status == 403 {
            assert_eq!(reply.body["error"], "forbidden", "{query}");
        }
    }
    // A token whose employee id is not a UUID has no dashboard of its own.
    let not_a_uuid = shared::auth::issue_token(
        testing::TEST_JWT_SECRET,
        &shared::auth::Claims {
            sub: "mallory".into(),
            role: Role::Employee,
            tenant_id: Some(f.tenant),
            exp: chrono::Utc::now().timestamp() + 600,
            employee_id: None,
        },
    )
    .expect("token");
    let reply = get_with(&f.state, Some(&not_a_uuid), "").await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    // The superadmin drills into a tenant it names; the global view has none.
    let root = testing::token(Role::Superadmin, None);
    let reply = get_with(&f.state, Some(&root), &format!("team_id={TEAM_A}")).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let reply = get_with(
        &f.state,
        Some(&root),
        &format!("tenant_id={}&team_id={TEAM_A}", f.tenant),
    )
    .await;
    assert_eq!((reply.status, stat(&reply, "totalLeads")), (200, json!(3)));
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn malformed_repeated_or_conflicting_scope_parameters_are_400s_naming_them(pool: PgPool) {
    let f = Fixture::new(pool, TestEnv::new()).await;
    let cases = [
        ("assigned_to=bob", "assigned_to"),
        ("team_id=", "team_id"),
        (&*format!("team_id={TEAM_A}&team_id={TEAM_B}"), "team_id"),
        (&*format!("assigned_to={E1}&team_id={TEAM_A}"), "team_id"),
        ("widgets=funnel", "widgets"),
        ("widgets=recentLeads,recentLeads", "widgets"),
        ("widgets=", "widgets"),
    ];
    for (query, parameter) in cases {
        let reply = f.get(Role::Admin, E3, query).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(message.contains(parameter), "{query}: {message}");
    }
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn widgets_return_only_their_parts_and_the_stats(pool: PgPool) {
    let f = Fixture::new(pool, TestEnv::new()).await;

    let some = f
        .get(Role::Employee, E1, "widgets=recentLeads,leadSourceChart")
        .await;
    let all = f.get(Role::Employee, E1, "").await;

    let data = &some.body["data"];
    assert_eq!(some.status, 200, "{}", some.body);
    assert_eq!(data["stats"]["totalLeads"], 3);
    assert_eq!(
        data["stats"]["leadsBySource"],
        all.body["data"]["stats"]["leadsBySource"]
    );
    assert_eq!(
        data["lists"]["recentLeads"],
        all.body["data"]["lists"]["recentLeads"]
    );
    assert!(data["lists"].get("recentActivities").is_none(), "{data}");
    assert!(data["lists"].get("recentOpportunities").is_none(), "{data}");
    assert!(data.get("funnel").is_none(), "{data}");
    assert_eq!(data["meta"]["widgets"], "leadSourceChart_recentLeads");
    let pipeline = f.get(Role::Employee, E1, "widgets=salesPipeline").await;
    assert_eq!(pipeline.body["data"]["funnel"], all.body["data"]["funnel"]);
    assert!(pipeline.body["data"]["stats"].get("leadsBySource").is_none());
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn reassignments_and_team_changes_show_in_the_next_response(pool: PgPool) {
    let f = Fixture::new(pool, TestEnv::new().set("BUNDLE_TTL_SECONDS", "0")).await;
    let team = format!("team_id={TEAM_B}");
    assert_eq!(stat(&f.get(Role::Admin, E3, &team).await, "totalLeads"), 1);
    assert_eq!(
        f.get(Role::Admin, E3, &team).await.x_cache.as_deref(),
        Some("HIT")
    );

    sqlx::query("UPDATE leads SET assigned_to = $1 WHERE assigned_to = $2")
        .bind(E2)
        .bind(E1)
        .execute(&f.pool)
        .await
        .unwrap();
    let moved = f.get(Role::Admin, E3, &team).await;
    assert_eq!(
        (moved.x_cache.as_deref(), stat(&moved, "totalLeads")),
        (Some("MISS"), json!(3))
    );
    let e1 = f.get(Role::Employee, E1, "").await;
    assert_eq!(
        stat(&e1, "totalLeads"),
        1,
        "only the unassigned lead is left to E1"
    );

    sqlx::query("INSERT INTO team_members (tenant_id, team_id, employee_id) VALUES ($1, $2, $3)")
        .bind(f.tenant)
        .bind(TEAM_B)
        .bind(E3)
        .execute(&f.pool)
        .await
        .unwrap();
    let joined = f.get(Role::Admin, E3, &team).await;
    assert_eq!(
        (joined.x_cache.as_deref(), stat(&joined, "totalLeads")),
        (Some("MISS"), json!(4))
    );
    f.cleanup().await;
}
