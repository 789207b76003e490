//! The bundle's definition, checked against a hand-built dataset whose expected values are written here.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::bundle::query::{compute, compute_both};
use shared::platform::db::Database;
use sqlx::PgPool;
use test_support::TestEnv;
use uuid::Uuid;

/// "Today" of the dataset: the 30-day window starts at 2026-03-01T00:00:00Z.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 31, 12, 0, 0).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const A: u128 = 0xA;
const B: u128 = 0xB;

async fn exec(pool: &PgPool, sql: &'static str) {
    sqlx::raw_sql(sql).execute(pool).await.unwrap();
}

pub(crate) async fn seed(pool: &PgPool) {
    exec(
        pool,
        "INSERT INTO tenant (id, slug, name) VALUES
           ('00000000-0000-0000-0000-00000000000a', 'a', 'Tenant A'),
           ('00000000-0000-0000-0000-00000000000b', 'b', 'Tenant B');

         INSERT INTO contacts (tenant_id, is_test_data) VALUES
           ('00000000-0000-0000-0000-00000000000a', true),
           ('00000000-0000-0000-0000-00000000000a', NULL),
           ('00000000-0000-0000-0000-00000000000a', false),
           ('00000000-0000-0000-0000-00000000000b', false);

         INSERT INTO accounts (tenant_id, is_test_data, name) VALUES
           ('00000000-0000-0000-0000-00000000000a', true, 'x'),
           ('00000000-0000-0000-0000-00000000000a', false, 'y'),
           ('00000000-0000-0000-0000-00000000000b', false, 'z');

         -- L1 sits exactly on the window start; L2 one millisecond before it (created_date wins over
         -- created_at); L3 is test data with a NULL status; L4 has NULL is_test_data (real data).
         INSERT INTO leads (id, tenant_id, is_test_data, status, created_at, created_date, first_name) VALUES
           ('00000000-0000-0000-0000-000000000101', '00000000-0000-0000-0000-00000000000a', false, 'new',
            '2026-03-01T00:00:00Z', NULL, 'L1'),
           ('00000000-0000-0000-0000-000000000102', '00000000-0000-0000-0000-00000000000a', false, 'converted',
            '2026-03-31T00:00:00Z', '2026-02-28T23:59:59.999Z', 'L2'),
           ('00000000-0000-0000-0000-000000000103', '00000000-0000-0000-0000-00000000000a', true, NULL,
            '2026-01-01T00:00:00Z', '2026-03-15T00:00:00Z', 'L3'),
           ('00000000-0000-0000-0000-000000000104', '00000000-0000-0000-0000-00000000000a', NULL, 'lost',
            '2026-03-20T00:00:00Z', NULL, 'L4');
         INSERT INTO leads (tenant_id, status)
           SELECT '00000000-0000-0000-0000-00000000000b', 'new' FROM generate_series(1, 5);

         -- 1200 open opportunities (more than the old system's 1000-row cap) at 1000.01 each.
         INSERT INTO opportunities (tenant_id, name, stage, amount, updated_at)
           SELECT '00000000-0000-0000-0000-00000000000a', 'bulk ' || g, 'qualification', 1000.01,
                  '2026-01-01T00:00:00Z'
             FROM generate_series(1, 1200) AS g;
         INSERT INTO opportunities (id, tenant_id, is_test_data, name, stage, amount, updated_at) VALUES
           ('00000000-0000-0000-0000-000000000201', '00000000-0000-0000-0000-00000000000a', false, 'won',
            'won', 500.50, '2026-03-30T00:00:00Z'),
           ('00000000-0000-0000-0000-000000000202', '00000000-0000-0000-0000-00000000000a', false, 'closed won',
            'closed_won', NULL, '2026-03-30T00:00:00Z'),
           ('00000000-0000-0000-0000-000000000203', '00000000-0000-0000-0000-00000000000a', false, 'lost',
            'lost', 99, '2026-03-29T00:00:00Z'),
           ('00000000-0000-0000-0000-000000000204', '00000000-0000-0000-0000-00000000000a', false, 'closed lost',
            'closed_lost', 1, '2026-03-28T00:00:00Z'),
           ('00000000-0000-0000-0000-000000000205', '00000000-0000-0000-0000-00000000000a', NULL, 'no stage',
            NULL, 10.25, '2026-03-27T00:00:00Z'),
           ('00000000-0000-0000-0000-000000000206', '00000000-0000-0000-0000-00000000000a', true, 'test won',
            'won', 1000, '2026-03-31T00:00:00Z'),
           ('00000000-0000-0000-0000-000000000207', '00000000-0000-0000-0000-00000000000b', false, 'other',
            'won', 77777, '2026-03-31T00:00:00Z');

         -- 11 activities an hour apart; 301 and 302 share the newest created_at (tie broken by id);
         -- 302 has an old created_date, so it is not in the 30-day count; 301 is test data.
         INSERT INTO activities (id, tenant_id, is_test_data, type, created_at, created_date) VALUES
           ('00000000-0000-0000-0000-000000000302', '00000000-0000-0000-0000-00000000000a', false, 'call',
            '2026-03-31T11:00:00Z', '2026-01-01T00:00:00Z'),
           ('00000000-0000-0000-0000-000000000301', '00000000-0000-0000-0000-00000000000a', true, 'email',
            '2026-03-31T11:00:00Z', NULL);
         INSERT INTO activities (tenant_id, type, created_at)
           SELECT '00000000-0000-0000-0000-00000000000a', 'task',
                  timestamptz '2026-03-31T10:00:00Z' - make_interval(hours => g)
             FROM generate_series(0, 8) AS g;
         INSERT INTO activities (tenant_id, type, created_at)
           VALUES ('00000000-0000-0000-0000-00000000000b', 'call', '2026-03-31T11:30:00Z');",
    )
    .await;
}

/// The test's database as the functions see it (through PgBouncer in `make test`'s second pass).
fn db(pool: &PgPool) -> Database {
    TestEnv::new().database(pool)
}

async fn bundle(pool: &PgPool, scope: Scope, include_test_data: bool) -> Value {
    serde_json::from_str(&bundle_text(pool, scope, include_test_data).await).unwrap()
}

/// The bundle as serialized: decimals are checked here, digit for digit, since `Value` holds them as f64.
async fn bundle_text(pool: &PgPool, scope: Scope, include_test_data: bool) -> String {
    let bundle = compute(&db(pool), BundleId::new(scope, include_test_data), now(), 300)
        .await
        .unwrap();
    serde_json::to_string(&bundle.bundle).unwrap()
}

fn assert_has(text: &str, fragment: &str) {
    assert!(text.contains(fragment), "{fragment} not in {text}");
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrations = "../migrations")]
async fn tenant_bundle_with_test_data_counts_every_row_of_that_tenant(pool: PgPool) {
    seed(&pool).await;
    let b = bundle(&pool, Scope::Tenant(id(A)), true).await;
    let s = &b["stats"];
    assert_eq!(s["totalContacts"], 3);
    assert_eq!(s["totalAccounts"], 2);
    assert_eq!(s["totalLeads"], 4);
    assert_eq!(s["openLeads"], 2, "new and NULL status are open");
    assert_eq!(s["newLeadsLast30Days"], 3, "L1 on the boundary, L3, L4");
    assert_eq!(s["totalOpportunities"], 1206);
    assert_eq!(s["wonOpportunities"], 3);
    assert_eq!(s["openOpportunities"], 1201, "1200 qualification + NULL stage");
    assert_eq!(
        s["activitiesLast30Days"], 10,
        "all but the one with an old created_date"
    );
    // Exact decimal sums over all 1200+ rows, written as JSON numbers.
    let text = bundle_text(&pool, Scope::Tenant(id(A)), true).await;
    assert_has(&text, r#""pipelineValue":1200022.25,"wonValue":1500.50"#);
}

#[sqlx::test(migrations = "../migrations")]
async fn excluding_test_data_keeps_null_flagged_rows(pool: PgPool) {
    seed(&pool).await;
    let b = bundle(&pool, Scope::Tenant(id(A)), false).await;
    let s = &b["stats"];
    assert_eq!(s["totalContacts"], 2);
    assert_eq!(s["totalAccounts"], 1);
    assert_eq!(s["totalLeads"], 3);
    assert_eq!(s["openLeads"], 1);
    assert_eq!(s["newLeadsLast30Days"], 2);
    assert_eq!(s["totalOpportunities"], 1205);
    assert_eq!(s["wonOpportunities"], 2);
    assert_eq!(s["openOpportunities"], 1201);
    assert_eq!(s["activitiesLast30Days"], 9);
    assert_eq!(b["meta"]["include_test_data"], false);
    let text = bundle_text(&pool, Scope::Tenant(id(A)), false).await;
    assert_has(&text, r#""pipelineValue":1200022.25,"wonValue":500.50"#);
}

#[sqlx::test(migrations = "../migrations")]
async fn recent_lists_are_newest_first_with_ties_by_id(pool: PgPool) {
    seed(&pool).await;
    let b = bundle(&pool, Scope::Tenant(id(A)), true).await;
    let activities = ids(&b["lists"]["recentActivities"]);
    assert_eq!(activities.len(), 10);
    assert_eq!(activities[0], id(0x301).to_string());
    assert_eq!(activities[1], id(0x302).to_string());
    let first = &b["lists"]["recentActivities"][0];
    assert_eq!(first["type"], "email");
    assert_eq!(first["created_at"], "2026-03-31T11:00:00Z");
    assert_eq!(first["created_date"], Value::Null);

    // By coalesce(created_date, created_at): L4 03-20, L3 03-15, L1 03-01, L2 02-28.
    let leads = ids(&b["lists"]["recentLeads"]);
    assert_eq!(leads, [0x104, 0x103, 0x101, 0x102].map(|n| id(n).to_string()));

    let opportunities = &b["lists"]["recentOpportunities"];
    assert_eq!(
        ids(opportunities),
        [0x206, 0x201, 0x202, 0x203, 0x204].map(|n| id(n).to_string())
    );
    let text = bundle_text(&pool, Scope::Tenant(id(A)), true).await;
    assert_has(&text, r#""name":"won","amount":500.50,"#);
    assert_eq!(opportunities[2]["amount"], Value::Null);
    assert_eq!(opportunities[0]["updated_at"], "2026-03-31T00:00:00Z");
}

#[sqlx::test(migrations = "../migrations")]
async fn global_bundle_spans_every_tenant(pool: PgPool) {
    seed(&pool).await;
    let b = bundle(&pool, Scope::Global, true).await;
    assert_eq!(b["stats"]["totalContacts"], 4);
    assert_eq!(b["stats"]["totalLeads"], 9);
    assert_eq!(b["stats"]["totalOpportunities"], 1207);
    assert_has(
        &bundle_text(&pool, Scope::Global, true).await,
        r#""wonValue":79277.50"#,
    );
    assert_eq!(
        b["lists"]["recentActivities"][0]["id"],
        Value::from(activity_of_b(&pool).await.to_string())
    );
    assert_eq!(b["meta"]["tenant_id"], Value::Null);
}

async fn activity_of_b(pool: &PgPool) -> Uuid {
    sqlx::query_scalar("SELECT id FROM activities WHERE tenant_id = $1")
        .bind(id(B))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn empty_tenant_has_zero_counts_and_empty_lists(pool: PgPool) {
    seed(&pool).await;
    exec(
        &pool,
        "INSERT INTO tenant (id, slug, name) VALUES ('00000000-0000-0000-0000-00000000000c', 'c', 'C')",
    )
    .await;
    let b = bundle(&pool, Scope::Tenant(id(0xC)), true).await;
    assert_eq!(b["stats"]["totalLeads"], 0);
    assert_has(
        &bundle_text(&pool, Scope::Tenant(id(0xC)), true).await,
        r#""pipelineValue":0.00,"#,
    );
    assert_eq!(b["lists"]["recentLeads"], Value::Array(vec![]));
    assert_eq!(b["meta"]["generated_at"], "2026-03-31T12:00:00Z");
    assert_eq!(b["meta"]["ttl_seconds"], 300);
}

#[sqlx::test(migrations = "../migrations")]
async fn both_variants_computed_in_one_snapshot_equal_each_computed_alone(pool: PgPool) {
    seed(&pool).await;
    for scope in [Scope::Tenant(id(A)), Scope::Tenant(id(B)), Scope::Global] {
        let both = compute_both(&db(&pool), scope, now(), 300).await.unwrap();
        for (together, id) in both.iter().zip(BundleId::both(scope)) {
            let alone = compute(&db(&pool), id, now(), 300).await.unwrap();
            assert_eq!(
                serde_json::to_string(&together.bundle).unwrap(),
                serde_json::to_string(&alone.bundle).unwrap(),
                "{id:?}"
            );
            assert_eq!(together.data_version, alone.data_version, "{id:?}");
            assert_eq!(together.zone, alone.zone, "{id:?}");
        }
    }
    // The two differ for tenant A (it has test data), so a mix-up of the variants cannot pass.
    let [with, without] = compute_both(&db(&pool), Scope::Tenant(id(A)), now(), 300)
        .await
        .unwrap();
    assert_ne!(with.bundle.stats.total_leads, without.bundle.stats.total_leads);
    let err = compute_both(&db(&pool), Scope::Tenant(id(0xDEAD)), now(), 300)
        .await
        .unwrap_err();
    assert!(
        matches!(err, shared::bundle::BundleError::TenantNotFound(_)),
        "{err:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn unknown_tenant_is_an_error_not_zeros(pool: PgPool) {
    let err = compute(
        &db(&pool),
        BundleId::new(Scope::Tenant(id(0xDEAD)), true),
        now(),
        300,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, shared::bundle::BundleError::TenantNotFound(_)),
        "{err:?}"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn tenant_queries_use_tenant_indexes(pool: PgPool) {
    seed(&pool).await;
    exec(&pool, "ANALYZE").await;
    // The text of each statement (a tenant's bundle runs it through its function).
    let sql = shared::bundle::query::Sql::definition(Scope::Tenant(id(A)));
    for statement in [
        &sql.stats,
        &sql.recent_activities,
        &sql.recent_leads,
        &sql.recent_opportunities,
    ] {
        let explain = format!("EXPLAIN (FORMAT TEXT) {statement}")
            .replace("$1::uuid", "'00000000-0000-0000-0000-00000000000a'::uuid")
            .replace("$2::bool", "true")
            .replace("$3::timestamptz", "'2026-03-01T00:00:00Z'::timestamptz");
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan"), "sequential scan in:\n{plan}");
    }
}

/// Values Postgres accepts that JSON and the bundle cannot carry as they are: what the CRM's import
/// may write. The bundle defines what each shows (see `bundle::query`'s module documentation).
async fn seed_hostile(pool: &PgPool) {
    exec(
        pool,
        "INSERT INTO tenant (id, slug, name) VALUES ('00000000-0000-0000-0000-00000000000e', 'e', 'E');
         INSERT INTO leads (tenant_id, created_date, first_name) VALUES
           ('00000000-0000-0000-0000-00000000000e', 'infinity', 'Future'),
           ('00000000-0000-0000-0000-00000000000e', '-infinity', 'Past'),
           ('00000000-0000-0000-0000-00000000000e', '20000-01-01T00:00:00Z', 'Far');
         INSERT INTO opportunities (tenant_id, name, stage, amount, updated_at) VALUES
           ('00000000-0000-0000-0000-00000000000e', 'nan', 'qualification', 'NaN', 'infinity'),
           ('00000000-0000-0000-0000-00000000000e', 'won nan', 'won', 'NaN', now()),
           ('00000000-0000-0000-0000-00000000000e', 'real', 'qualification', 12.50, now());
         INSERT INTO activities (tenant_id, type, subject, created_at) VALUES
           ('00000000-0000-0000-0000-00000000000e', 'note', repeat('x', 3000000), '-infinity'),
           ('00000000-0000-0000-0000-00000000000e', E'ca\\x01ll', E'line\\nbreak\\ttab\\x7f', now());",
    )
    .await;
}

#[sqlx::test(migrations = "../migrations")]
async fn hostile_values_become_defined_json_for_the_tenant_and_the_global_view(pool: PgPool) {
    seed_hostile(&pool).await;
    for scope in [Scope::Tenant(id(0xE)), Scope::Global] {
        let text = bundle_text(&pool, scope, true).await;
        let b: Value = serde_json::from_str(&text).expect("valid JSON");
        let stats = &b["stats"];
        assert_eq!(stats["totalLeads"], 3);
        // +infinity and year 20000 are in the future, so within "the last 30 days"; -infinity is not.
        assert_eq!(stats["newLeadsLast30Days"], 2);
        // NaN amounts are in no sum.
        assert_has(&text, r#""pipelineValue":12.50,"#);
        assert_has(&text, r#""wonValue":0.00"#);
        assert_eq!(stats["wonOpportunities"], 1);

        let leads = b["lists"]["recentLeads"].as_array().unwrap();
        assert!(leads.iter().all(|l| l["created_date"].is_null()), "{leads:?}");
        let opportunities = b["lists"]["recentOpportunities"].as_array().unwrap();
        let nan = opportunities.iter().find(|o| o["name"] == "nan").unwrap();
        assert!(nan["amount"].is_null() && nan["updated_at"].is_null(), "{nan}");

        let activities = b["lists"]["recentActivities"].as_array().unwrap();
        let long = activities.iter().find(|a| a["type"] == "note").unwrap();
        assert_eq!(long["subject"].as_str().unwrap().chars().count(), 500);
        assert!(long["created_at"].is_null());
        let control = activities.iter().find(|a| a["type"] == "ca\u{1}ll").unwrap();
        assert_eq!(control["subject"], "line\nbreak\ttab\u{7f}");
        assert!(text.len() < 64 * 1024, "{} bytes", text.len());
    }
}

/// The plan of `statement` prepared as `name` with parameter types `types`, forced generic (what a
/// cached plan would be), after `settings`, executed with `args`.
pub(crate) async fn generic_plan(
    pool: &PgPool,
    name: &str,
    settings: &str,
    types: &str,
    statement: &str,
    args: &str,
) -> String {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET plan_cache_mode = force_generic_plan; {settings} PREPARE {name} ({types}) AS {statement}"
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (FORMAT TEXT) EXECUTE {name} ({args})"
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    plan.join("\n")
}

/// A list reads its first rows from an index in the list's own order, whatever the number of rows of
/// the tenant (or of all tenants), even in the generic plan of a prepared statement: no sort of rows.
#[sqlx::test(migrations = "../migrations")]
async fn recent_lists_are_read_in_index_order_without_sorting(pool: PgPool) {
    seed(&pool).await;
    exec(&pool, "ANALYZE").await;
    let mut n = 0;
    for scope in [Scope::Tenant(id(A)), Scope::Global] {
        let sql = shared::bundle::query::Sql::definition(scope);
        for statement in [
            &sql.recent_activities,
            &sql.recent_leads,
            &sql.recent_opportunities,
        ] {
            n += 1;
            let plan = generic_plan(
                &pool,
                &format!("list_{n}"),
                "SET enable_seqscan = off; SET enable_sort = off;",
                "uuid, bool",
                statement,
                "'00000000-0000-0000-0000-00000000000a', false",
            )
            .await;
            assert!(!plan.contains("Sort"), "{scope:?}: sort in\n{plan}");
        }
    }
}
