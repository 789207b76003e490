//! What the scoped dashboards install (issue 26), tried as an attacker would: the warmer's role, which
//! may append corrections to the per-assignee counters, cannot append a row that would break a
//! response, a fold or a repair, and a repair undoes whatever sane rows it appended; installing never
//! replaces a CRM trigger that bears one of our names; a scope's recent lists read one index range per
//! assignee; and the days compaction folds (before the horizon) stay exact through repairs and aging.
//! (Their exactness under a workload is checked with the tenant counters', in `incremental_stats`.)

use chrono::{TimeDelta, Utc};
use shared::bundle::query::recent_window_start;
use shared::bundle::tenant_time::Zone;
use sqlx::{AssertSqlSafe, PgPool};
use test_support::exactness::{assert_exact, compact_all, EMPLOYEES};
use test_support::{insert_tenant, readme_grants, sqlstate, DbRole};
use uuid::Uuid;

use crate::bundle_queries::generic_plan;
use crate::database_footprint::{run, since};

#[sqlx::test(migrations = "../migrations")]
async fn the_warmers_role_cannot_append_scope_rows_that_break_a_fold_a_repair_or_a_response(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    sqlx::query("INSERT INTO opportunities (tenant_id, name, stage, amount) VALUES ($1, 'o', 'won', 10)")
        .bind(tenant)
        .execute(&pool)
        .await
        .unwrap();
    let warmer = DbRole::create(&pool, "warm_cache_db", &readme_grants("warm-cache")).await;
    let mut session = warmer.connect().await;
    let long = "x".repeat(10_000);

    for values in [
        // An infinite amount: a response cannot carry it, and its repair would leave a NaN for good.
        "('opportunity_stage', 'won', NULL, 0, 'Infinity')".to_owned(),
        "('opportunity_stage', 'won', NULL, 0, 'NaN')".to_owned(),
        // A label no facet function writes: too large for the base rows' key, every fold would fail.
        format!("('lead_source', '{long}', NULL, 1, 0)"),
        // Shapes the triggers never append.
        "('contacts', 'label', NULL, 1, 0)".to_owned(),
        "('contacts', NULL, now(), 1, 0)".to_owned(),
        "('leads_day', NULL, NULL, 1, 0)".to_owned(),
        "('lead_status', 'new', NULL, 1, 5)".to_owned(),
        "('activities', NULL, NULL, 10000000000000, 0)".to_owned(),
    ] {
        let appended = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, bucket, n, amount)
             SELECT '{tenant}', NULL, false, f::dashboard_cache.scope_facet, l, b::timestamptz, n::int8, a::numeric
               FROM (VALUES {values}) AS v (f, l, b, n, a)"
        )))
        .execute(&mut session)
        .await;
        assert_eq!(
            sqlstate(&appended).as_deref(),
            Some("23514"),
            "{values} was appended"
        );
    }
    let drifted: i64 = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_repair($1)")
        .bind(tenant)
        .fetch_one(&mut session)
        .await
        .unwrap();
    assert_eq!(drifted, 0);
    assert_exact(&pool, &[tenant], since(), "after the attempts").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_repair_undoes_sane_rows_of_the_warmers_role_whose_sum_no_one_row_could_hold(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO leads (tenant_id, status) VALUES ('{tenant}', 'new');
         INSERT INTO opportunities (tenant_id, name, stage, amount) VALUES ('{tenant}', 'o', 'won', 10.5)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let warmer = DbRole::create(&pool, "warm_cache_db", &readme_grants("warm-cache")).await;
    let mut session = warmer.connect().await;
    // Each row within the deltas' checks; together, corrections one delta row cannot carry.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO dashboard_cache.scope_stats_delta (tenant_id, assignee, is_test, facet, label, bucket, n, amount)
         VALUES ('{tenant}', NULL, false, 'leads_day', NULL, '2000-01-01', 1000000000000, 0),
                ('{tenant}', NULL, false, 'leads_day', NULL, '2001-01-01', 1000000000000, 0),
                ('{tenant}', NULL, false, 'lead_status', 'new', NULL, 1000000000000, 0),
                ('{tenant}', NULL, false, 'lead_status', 'new', NULL, 999999999999, 0),
                ('{tenant}', NULL, false, 'opportunity_stage', 'won', NULL, 0, 1e30),
                ('{tenant}', NULL, false, 'opportunity_stage', 'won', NULL, 0, 0.123e30);
         INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, changes, leads, pipeline)
         VALUES ('{tenant}', false, 0, 1000000000000, 1e30), ('{tenant}', false, 0, 1000000000000, 0.5)"
    )))
    .execute(&mut session)
    .await
    .unwrap();
    sqlx::query("SELECT dashboard_cache.bundle_stats_compact(100000)")
        .execute(&pool)
        .await
        .unwrap();

    let drifted: i64 = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_repair($1)")
        .bind(tenant)
        .fetch_one(&mut session)
        .await
        .expect("the repair");

    assert!(drifted > 0, "{drifted}");
    let window = since();
    assert_exact(&pool, &[tenant], window, "after the repair").await;
    compact_all(&pool).await;
    assert_exact(&pool, &[tenant], window, "after folding the repair").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn installing_again_is_idempotent_and_never_replaces_a_crm_trigger_of_one_of_our_names(pool: PgPool) {
    let call = "CALL dashboard_cache.install(pg_catalog.current_schema())";
    sqlx::raw_sql(call)
        .execute(&pool)
        .await
        .expect("a second install");
    sqlx::raw_sql(
        "DROP TRIGGER leads_scopes_insert ON leads;
         CREATE FUNCTION crm_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
         CREATE TRIGGER leads_scopes_insert AFTER INSERT ON leads FOR EACH STATEMENT EXECUTE FUNCTION crm_audit()",
    )
    .execute(&pool)
    .await
    .unwrap();

    let refused = sqlx::raw_sql(call).execute(&pool).await;

    let message = refused.expect_err("the CRM's trigger was replaced").to_string();
    assert!(
        message.contains("has a trigger of a name the dashboard cache installs"),
        "{message}"
    );
    let function: String = sqlx::query_scalar(
        "SELECT p.proname::text FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid
          WHERE g.tgrelid = 'leads'::regclass AND g.tgname = 'leads_scopes_insert'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(function, "crm_audit");
}

#[sqlx::test(migrations = "../migrations")]
async fn scoped_lists_read_one_index_range_per_assignee(pool: PgPool) {
    use shared::bundle::identity::Assignees;
    crate::bundle_queries::seed(&pool).await;
    sqlx::raw_sql("ANALYZE").execute(&pool).await.unwrap();
    let mut n = 0;
    for assignees in [
        Assignees::Employee(Uuid::from_u128(1)),
        Assignees::Team(Uuid::from_u128(2)),
    ] {
        let sql = shared::bundle::query::Sql::for_assignees(assignees).unwrap();
        for statement in [
            &sql.recent_activities,
            &sql.recent_leads,
            &sql.recent_opportunities,
        ] {
            n += 1;
            let plan = generic_plan(
                &pool,
                &format!("scoped_list_{n}"),
                "SET enable_seqscan = off;",
                "uuid, bool, timestamptz, uuid",
                statement,
                "'00000000-0000-0000-0000-00000000000a', false, now(), '00000000-0000-0000-0000-000000000001'",
            )
            .await;
            assert!(
                plan.contains("_assignee_recent_idx"),
                "{assignees:?}: no assignee index in\n{plan}"
            );
            assert!(!plan.contains("Seq Scan"), "{assignees:?}: a scan in\n{plan}");
        }
    }
}

/// A tenant with 60 days of records, a lead every 6 hours (every other one assigned to an employee)
/// and an activity a day (assigned), compacted: the days before the horizon are in the folds.
async fn sixty_days_of_assigned_records(pool: &PgPool) -> Uuid {
    let tenant = insert_tenant(pool, "t").await;
    let employee = EMPLOYEES[0];
    run(
        pool,
        &format!(
            "INSERT INTO leads (tenant_id, created_date, assigned_to)
             SELECT '{tenant}', now() - n * interval '6 hours', CASE WHEN n % 2 = 0 THEN '{employee}'::uuid END
               FROM generate_series(0, 60 * 4 - 1) n;
             INSERT INTO activities (tenant_id, type, created_date, assigned_to)
             SELECT '{tenant}', 'call', now() - n * interval '1 day', '{employee}' FROM generate_series(0, 59) n;"
        ),
    )
    .await;
    compact_all(pool).await;
    tenant
}

#[sqlx::test(migrations = "../migrations")]
async fn resync_corrects_the_folded_days_of_old_records_written_past_the_triggers(pool: PgPool) {
    let tenant = sixty_days_of_assigned_records(&pool).await;
    let employee = EMPLOYEES[0];
    // Old records (before the horizon, so in the -infinity folds) written past the triggers.
    run(
        &pool,
        &format!(
            "SET session_replication_role = replica;
             INSERT INTO leads (tenant_id, created_date, assigned_to)
             VALUES ('{tenant}', now() - interval '50 days', '{employee}'), ('{tenant}', now() - interval '51 days', NULL);
             DELETE FROM activities WHERE tenant_id = '{tenant}' AND created_date < now() - interval '55 days';
             RESET session_replication_role"
        ),
    )
    .await;

    let drifted: i64 = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_resync()")
        .fetch_one(&pool)
        .await
        .unwrap();

    assert!(drifted > 0, "{drifted}");
    assert_exact(&pool, &[tenant], since(), "after resyncing old records").await;
    compact_all(&pool).await;
    assert_exact(&pool, &[tenant], since(), "after folding the resync").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_day_of_aging_folds_the_scopes_days_before_the_new_horizon_and_later_windows_stay_exact(
    pool: PgPool,
) {
    let tenant = sixty_days_of_assigned_records(&pool).await;

    // Twenty days later, as compaction's daily step would (the horizon 20 days on).
    run(
        &pool,
        "UPDATE dashboard_cache.bundle_stats_horizon SET folded_before = folded_before + interval '20 days';
         SELECT dashboard_cache.scope_stats_age(folded_before) FROM dashboard_cache.bundle_stats_horizon;",
    )
    .await;

    let later = recent_window_start(Utc::now() + TimeDelta::days(20), Zone::Utc);
    assert_exact(&pool, &[tenant], later, "a window after the moved horizon").await;
}
