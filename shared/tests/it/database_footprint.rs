//! What the product installs in the CRM's database, judged as its DBA would: nothing reaches more than
//! it was granted (tried as an attacker would, with real roles), tracking installs on a populated CRM
//! without keeping its writers waiting and goes without a trace, and the counters stay bounded and
//! exact (old buckets folded, concurrent repairs, TRUNCATE under snapshot isolation, child tables).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use shared::bundle::identity::Scope;
use shared::bundle::query::recent_window_start;
use shared::bundle::tenant_time::Zone;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use test_support::exactness::{assert_exact, compact_all, EMPLOYEES};
use test_support::{insert_tenant, migration_files, readme_grants, sqlstate, DbRole};
use uuid::Uuid;

/// The change table's columns, for an attacker's look-alike in `pg_temp`.
const DELTA_COLUMNS: &str = "tenant_id uuid, is_test boolean NOT NULL, bucket timestamptz,
    epoch boolean NOT NULL DEFAULT false, changes int8 NOT NULL DEFAULT 0, contacts int8 NOT NULL DEFAULT 0,
    accounts int8 NOT NULL DEFAULT 0, leads int8 NOT NULL DEFAULT 0, open_leads int8 NOT NULL DEFAULT 0,
    opportunities int8 NOT NULL DEFAULT 0, won_opportunities int8 NOT NULL DEFAULT 0,
    open_opportunities int8 NOT NULL DEFAULT 0, pipeline numeric NOT NULL DEFAULT 0,
    won_value numeric NOT NULL DEFAULT 0, activities int8 NOT NULL DEFAULT 0";

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub(crate) async fn run(pool: &PgPool, sql: &str) {
    exec(&mut pool.acquire().await.unwrap(), sql).await;
}

/// The 30-day window of a UTC tenant, now.
pub(crate) fn since() -> DateTime<Utc> {
    recent_window_start(Utc::now(), Zone::Utc)
}

async fn version(pool: &PgPool, tenant: Uuid) -> i64 {
    shared::bundle::version::current(pool, Scope::Tenant(tenant), false)
        .await
        .unwrap()
}

/// Some rows of every kind for `tenant`, through the triggers.
async fn seed(pool: &PgPool, tenant: Uuid) {
    run(
        pool,
        &format!(
            "INSERT INTO leads (tenant_id, status) VALUES ('{tenant}', 'new'), ('{tenant}', 'lost');
             INSERT INTO opportunities (tenant_id, name, stage, amount) VALUES ('{tenant}', 'o', 'won', 10);
             INSERT INTO activities (tenant_id, type) VALUES ('{tenant}', 'call');
             INSERT INTO contacts (tenant_id) VALUES ('{tenant}')"
        ),
    )
    .await;
}

/// Applies the CRM's own tables only: the database as a customer has it before the product.
async fn crm_only(pool: &PgPool) {
    let files = migration_files();
    let (name, sql) = files.first().expect("the CRM schema migration");
    assert!(name.ends_with("_crm_schema.sql"), "{name}");
    run(pool, sql).await;
}

/// Installs the product as a deployment does: every migration, through sqlx's migrator.
async fn install(pool: &PgPool) {
    shared::platform::db::MIGRATOR
        .run(pool)
        .await
        .expect("migrations");
}

#[sqlx::test(migrations = "../migrations")]
async fn what_is_installed_is_owned_by_a_nologin_role_with_rights_on_its_own_tables_only(pool: PgPool) {
    let (login, attributes, memberships): (bool, bool, i64) = sqlx::query_as(
        "SELECT rolcanlogin, rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls,
                (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)
           FROM pg_roles r WHERE rolname = 'dashboard_cache_owner'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        !login && !attributes && memberships == 0,
        "{login} {attributes} {memberships}"
    );

    let not_owned: Vec<String> = sqlx::query_scalar(
        "SELECT c.oid::regclass::text FROM pg_class c
          WHERE c.relnamespace = 'dashboard_cache'::regnamespace AND c.relowner <> 'dashboard_cache_owner'::regrole
         UNION ALL
         SELECT p.oid::regprocedure::text FROM pg_proc p
          WHERE p.pronamespace = 'dashboard_cache'::regnamespace AND p.proowner <> 'dashboard_cache_owner'::regrole",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(not_owned.is_empty(), "owned by another role: {not_owned:?}");

    // Every function that runs as its owner: reachable by no one by default, searching pg_temp last.
    let unsafe_definers: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_proc p
          WHERE p.prosecdef AND (p.pronamespace <> 'dashboard_cache'::regnamespace
             OR p.proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp']
             OR p.proacl IS NULL
             OR EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0))
            AND p.proowner = 'dashboard_cache_owner'::regrole",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(unsafe_definers.is_empty(), "{unsafe_definers:?}");
    let triggers_elsewhere: Vec<String> = sqlx::query_scalar(
        "SELECT t.tgname::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
          WHERE NOT t.tgisinternal AND (p.pronamespace <> 'dashboard_cache'::regnamespace OR NOT p.prosecdef)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(triggers_elsewhere.is_empty(), "{triggers_elsewhere:?}");

    for table in [
        "tenant",
        "contacts",
        "accounts",
        "leads",
        "opportunities",
        "activities",
    ] {
        let any: bool = sqlx::query_scalar(
            "SELECT has_table_privilege('dashboard_cache_owner', $1, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')",
        )
        .bind(table)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(!any, "the owner has a right on the CRM's {table}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn a_writer_shadowing_the_change_table_in_pg_temp_runs_no_code_as_the_owner_and_hides_no_change(
    pool: PgPool,
) {
    let tenant = insert_tenant(&pool, "t").await;
    let writer = DbRole::create(&pool, "crm_writer", "GRANT INSERT ON leads TO crm_writer;").await;
    let before = version(&pool, tenant).await;
    let mut attacker = writer.connect().await;
    exec(
        &mut attacker,
        &format!(
            "CREATE TEMP TABLE probe_log (who text);
             CREATE FUNCTION pg_temp.probe() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO pg_temp.probe_log VALUES (current_user); RETURN NULL; END $$;
             CREATE TEMP TABLE bundle_stats_delta ({DELTA_COLUMNS});
             CREATE TRIGGER probe AFTER INSERT ON pg_temp.bundle_stats_delta
               FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.probe();"
        ),
    )
    .await;

    exec(
        &mut attacker,
        &format!("INSERT INTO leads (tenant_id, status) VALUES ('{tenant}', 'new')"),
    )
    .await;

    let ran_as: Vec<String> = sqlx::query_scalar("SELECT who FROM pg_temp.probe_log")
        .fetch_all(&mut attacker)
        .await
        .unwrap();
    assert!(ran_as.is_empty(), "the attacker's trigger ran as {ran_as:?}");
    let swallowed: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_temp.bundle_stats_delta")
        .fetch_one(&mut attacker)
        .await
        .unwrap();
    assert_eq!(swallowed, 0, "the change went into the attacker's table");
    assert!(version(&pool, tenant).await > before, "the version did not move");
    assert_exact(&pool, &[tenant], since(), "after the attacker's insert").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn compaction_by_the_warmers_role_ignores_its_temporary_tables(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    seed(&pool, tenant).await;
    let warmer = DbRole::create(&pool, "warm_cache_db", &readme_grants("warm-cache")).await;
    let before = version(&pool, tenant).await;
    let mut attacker = warmer.connect().await;
    exec(
        &mut attacker,
        &format!(
            "CREATE TEMP TABLE bundle_stats_delta ({DELTA_COLUMNS});
             INSERT INTO pg_temp.bundle_stats_delta (tenant_id, is_test, changes, pipeline)
             VALUES ('{tenant}', false, -1000, 1e9);"
        ),
    )
    .await;

    let _: Option<i64> = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact(1000)")
        .fetch_one(&mut attacker)
        .await
        .unwrap();

    assert!(version(&pool, tenant).await >= before, "the version went back");
    assert_exact(&pool, &[tenant], since(), "after the warmer's compaction").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn repair_ignores_a_temporary_view_named_like_the_truth(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    seed(&pool, tenant).await;
    let warmer = DbRole::create(&pool, "warm_cache_db", &readme_grants("warm-cache")).await;
    let mut attacker = warmer.connect().await;
    exec(
        &mut attacker,
        &format!(
            "CREATE TEMP VIEW bundle_stats_truth AS
             SELECT '{tenant}'::uuid AS tenant_id, false AS is_test, NULL::timestamptz AS bucket,
                    0::int8 AS contacts, 0::int8 AS accounts, 1000::int8 AS leads, 0::int8 AS open_leads,
                    0::int8 AS opportunities, 0::int8 AS won_opportunities, 0::int8 AS open_opportunities,
                    1e9::numeric AS pipeline, 0::numeric AS won_value, 0::int8 AS activities"
        ),
    )
    .await;

    let drifted: i64 = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_repair($1)")
        .bind(tenant)
        .fetch_one(&mut attacker)
        .await
        .unwrap();

    assert_eq!(drifted, 0, "the repair took the attacker's figures for the truth");
    assert_exact(&pool, &[tenant], since(), "after the warmer's repair").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn two_concurrent_repairs_of_one_tenant_correct_its_drift_once(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    seed(&pool, tenant).await;
    // Five leads the triggers never saw: a drift of +5.
    run(
        &pool,
        &format!(
            "SET session_replication_role = replica;
             INSERT INTO leads (tenant_id) SELECT '{tenant}' FROM generate_series(1, 5);
             RESET session_replication_role"
        ),
    )
    .await;
    let repair = "SELECT dashboard_cache.bundle_stats_repair($1)";
    let mut first = pool.begin().await.unwrap();
    let found: i64 = sqlx::query_scalar(repair)
        .bind(tenant)
        .fetch_one(&mut *first)
        .await
        .unwrap();
    assert!(found > 0);

    // The second repair starts while the first has not committed; it must wait for it and then see
    // its correction, not compute the same correction again.
    let second = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let found: i64 = sqlx::query_scalar(repair)
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            found
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.commit().await.unwrap();
    let found_again = second.await.unwrap();

    assert_eq!(found_again, 0, "the second repair corrected the same drift again");
    assert_exact(&pool, &[tenant], since(), "after two concurrent repairs").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn truncate_under_snapshot_isolation_is_refused_and_the_counters_stay_exact(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    seed(&pool, tenant).await;
    for level in ["REPEATABLE READ", "SERIALIZABLE"] {
        // The truncating transaction's snapshot predates a write committed just before its lock.
        let mut tx = pool
            .begin_with(AssertSqlSafe(format!("BEGIN ISOLATION LEVEL {level}")))
            .await
            .unwrap();
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        run(
            &pool,
            &format!("INSERT INTO leads (tenant_id) VALUES ('{tenant}')"),
        )
        .await;

        let truncated = sqlx::query("TRUNCATE leads").execute(&mut *tx).await;

        match truncated {
            Err(e) => {
                let db = e.as_database_error().expect("a database error");
                assert_eq!(db.code().as_deref(), Some("0A000"), "{level}: {db}");
                assert!(db.message().contains("refused"), "{level}: {}", db.message());
                tx.rollback().await.unwrap();
            }
            // Without the refusal the TRUNCATE commits, and the counters are wrong for good.
            Ok(_) => tx.commit().await.unwrap(),
        }
        assert_exact(&pool, &[tenant], since(), level).await;
    }

    run(&pool, "TRUNCATE leads").await;
    assert_exact(&pool, &[tenant], since(), "after a READ COMMITTED truncate").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn inheritance_children_of_crm_tables_are_listed_as_untracked(pool: PgPool) {
    run(
        &pool,
        "CREATE TABLE leads_archive () INHERITS (leads);
         CREATE TABLE leads_archive_2020 () INHERITS (leads_archive);",
    )
    .await;

    let untracked: Vec<(String, String)> =
        sqlx::query_as("SELECT table_name, parent FROM dashboard_cache.untracked_tables ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();

    assert_eq!(
        untracked,
        [
            ("leads_archive".to_owned(), "leads".to_owned()),
            ("leads_archive_2020".to_owned(), "leads".to_owned())
        ]
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn after_ninety_days_of_writes_a_tenant_keeps_buckets_of_about_thirty_five_days(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    // A lead in every 15-minute bucket of the last 90 days, an activity every hour; every third
    // assigned to an employee of a team, so that the scopes' folded days are checked too.
    let employee = EMPLOYEES[0];
    let team = Uuid::from_u128(0x7ea0);
    run(
        &pool,
        &format!(
            "INSERT INTO team_members (tenant_id, team_id, employee_id) VALUES ('{tenant}', '{team}', '{employee}');
             INSERT INTO leads (tenant_id, created_date, assigned_to)
             SELECT '{tenant}', now() - n * interval '15 minutes', CASE WHEN n % 3 = 0 THEN '{employee}'::uuid END
               FROM generate_series(0, 90 * 96 - 1) n;
             INSERT INTO activities (tenant_id, type, created_date, assigned_to)
             SELECT '{tenant}', 'call', now() - n * interval '1 hour', CASE WHEN n % 3 = 0 THEN '{employee}'::uuid END
               FROM generate_series(0, 90 * 24 - 1) n;"
        ),
    )
    .await;

    compact_all(&pool).await;

    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dashboard_cache.bundle_stats_base WHERE kind = 'tenant' AND tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&pool)
    .await
    .unwrap();
    println!("base rows of a tenant after 90 days of a lead every 15 minutes: {rows}");
    // At most 36 days of 96 buckets, the totals row and the folded -infinity bucket.
    assert!(rows <= 36 * 96 + 2, "{rows} base rows");
    let days: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dashboard_cache.scope_stats_base
          WHERE tenant_id = $1 AND facet IN ('leads_day', 'activities_day')",
    )
    .bind(tenant)
    .fetch_one(&pool)
    .await
    .unwrap();
    // Per assignee (the employee and no one) and day facet: at most 36 days and the -infinity fold.
    assert!(days <= 2 * 2 * 37, "{days} day rows of the scopes");
    assert_exact(&pool, &[tenant], since(), "after folding old buckets").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn a_window_starting_before_the_fold_horizon_is_counted_exactly(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    run(
        &pool,
        &format!(
            "INSERT INTO leads (tenant_id, created_date)
             SELECT '{tenant}', now() - n * interval '6 hours' FROM generate_series(0, 90 * 4 - 1) n;"
        ),
    )
    .await;
    compact_all(&pool).await;

    // A reader whose clock is 50 days behind the database's.
    let behind = recent_window_start(Utc::now() - TimeDelta::days(50), Zone::Utc);
    assert_exact(&pool, &[tenant], behind, "a window before the horizon").await;
}

#[sqlx::test(migrations = false)]
async fn installing_on_a_million_rows_keeps_no_writer_waiting(pool: PgPool) {
    crm_only(&pool).await;
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(insert_tenant(&pool, &format!("t{i}")).await);
    }
    let list = ids
        .iter()
        .map(|id| format!("'{id}'::uuid"))
        .collect::<Vec<_>>()
        .join(", ");
    run(
        &pool,
        &format!(
            "INSERT INTO leads (tenant_id, status, created_date)
             SELECT (ARRAY[{list}])[1 + n % 100], CASE WHEN n % 3 = 0 THEN 'lost' ELSE 'new' END,
                    now() - (n % 60) * interval '1 day'
               FROM generate_series(1, 1000000) n;
             INSERT INTO opportunities (tenant_id, name, stage, amount)
             SELECT (ARRAY[{list}])[1 + n % 100], 'o', 'won', n % 1000 FROM generate_series(1, 20000) n;
             ANALYZE leads, opportunities;"
        ),
    )
    .await;

    // A CRM writer inserting throughout, giving up (and failing the test) after 2 s waiting for a lock.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (stop, ids) = (stop.clone(), ids.clone());
        let options = (*pool.connect_options()).clone();
        async move {
            let mut conn = PgConnection::connect_with(&options).await?;
            sqlx::raw_sql("SET lock_timeout = '2s'")
                .execute(&mut conn)
                .await?;
            let (mut inserts, mut longest) = (0usize, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                sqlx::query("INSERT INTO leads (tenant_id, status) VALUES ($1, 'new')")
                    .bind(ids[inserts % ids.len()])
                    .execute(&mut conn)
                    .await?;
                longest = longest.max(started.elapsed());
                inserts += 1;
            }
            Ok::<_, sqlx::Error>((inserts, longest))
        }
    });

    let started = Instant::now();
    install(&pool).await;
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (inserts, longest) = writer
        .await
        .unwrap()
        .expect("the writer was never refused a lock");

    println!("install over 10^6 leads: {took:?}; the writer inserted {inserts} rows meanwhile, longest wait {longest:?}");
    assert!(inserts > 0);
    assert_exact(&pool, &ids, since(), "after installing under a writer").await;
}

/// The CRM tables as a DBA would compare them: columns, indexes, triggers and constraints.
async fn crm_catalog(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "WITH crm (t) AS (VALUES ('tenant'::regclass), ('contacts'), ('accounts'), ('leads'),
                                 ('opportunities'), ('activities'))
         SELECT format('column %s.%s %s %s %s', a.attrelid::regclass, a.attname,
                       format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
           FROM crm JOIN pg_attribute a ON a.attrelid = crm.t AND a.attnum > 0 AND NOT a.attisdropped
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         UNION ALL
         SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM crm JOIN pg_index i ON i.indrelid = crm.t
         UNION ALL
         SELECT format('trigger %s %s', g.tgrelid::regclass, g.tgname)
           FROM crm JOIN pg_trigger g ON g.tgrelid = crm.t AND NOT g.tgisinternal
         UNION ALL
         SELECT format('constraint %s %s', c.conname, pg_get_constraintdef(c.oid))
           FROM crm JOIN pg_constraint c ON c.conrelid = crm.t
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A digest of every CRM row (the tenant's columns as the CRM defines them).
async fn crm_rows(pool: &PgPool) -> Vec<String> {
    let mut digests = Vec::new();
    for select in [
        "SELECT id, slug, name, status, created_at FROM tenant",
        "SELECT * FROM contacts",
        "SELECT * FROM accounts",
        "SELECT * FROM leads",
        "SELECT * FROM opportunities",
        "SELECT * FROM activities",
    ] {
        let digest: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT md5(string_agg(r::text, '|' ORDER BY r::text)) FROM ({select}) r"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        digests.push(format!("{select}: {digest:?}"));
    }
    digests
}

#[sqlx::test(migrations = false)]
async fn uninstalling_leaves_the_crm_tables_and_their_rows_as_before(pool: PgPool) {
    crm_only(&pool).await;
    let tenant = insert_tenant(&pool, "t").await;
    seed(&pool, tenant).await;
    let catalog_before = crm_catalog(&pool).await;
    install(&pool).await;
    seed(&pool, tenant).await;
    run(
        &pool,
        &format!(
            "UPDATE leads SET status = 'converted' WHERE tenant_id = '{tenant}' AND status = 'new';
                         DELETE FROM contacts WHERE tenant_id = '{tenant}'"
        ),
    )
    .await;
    let rows_before = crm_rows(&pool).await;

    let options = pool.connect_options();
    let url = format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/uninstall.sql");
    let out = std::process::Command::new("psql")
        .args([url.as_str(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&script)
        .output()
        .expect("psql");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    assert_eq!(crm_catalog(&pool).await, catalog_before);
    assert_eq!(crm_rows(&pool).await, rows_before);
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname = 'dashboard_cache'
         UNION ALL
         SELECT oid::regclass::text FROM pg_class
          WHERE relname IN ('cache_warm_run', 'tenant_warm_state', 'cron_job', '_sqlx_migrations')
         UNION ALL
         SELECT 'depends on the owner role: ' || classid::regclass::text FROM pg_shdepend
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = 'dashboard_cache_owner')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[sqlx::test(migrations = false)]
async fn migrating_refuses_while_other_roles_may_create_in_a_schema_of_its_search_path(pool: PgPool) {
    crm_only(&pool).await;
    run(&pool, "GRANT CREATE ON SCHEMA public TO PUBLIC").await;

    let refused = shared::platform::db::MIGRATOR
        .run(&pool)
        .await
        .unwrap_err()
        .to_string();

    assert!(refused.contains("may CREATE in schema(s) public"), "{refused}");
    let installed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'dashboard_cache')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!installed);
}

/// A log of calls to functions planted in `public`, and the planting of `sql` (which calls
/// `public.planted_call(name)` from the planted function).
async fn plant(pool: &PgPool, sql: &str) {
    run(
        pool,
        &format!(
            "CREATE TABLE public.planted_log (name text, who text);
             CREATE FUNCTION public.planted_call(name text) RETURNS void LANGUAGE sql AS
               $$ INSERT INTO public.planted_log VALUES (name, current_user) $$;
             {sql}"
        ),
    )
    .await;
}

async fn planted_calls(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT name, who FROM public.planted_log")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn the_bucket_function_is_bound_to_pg_catalog_whatever_the_migrators_schemas_hold(pool: PgPool) {
    crm_only(&pool).await;
    // An overload of date_bin matching the bucket function's literals more exactly than pg_catalog's.
    plant(
        &pool,
        "CREATE FUNCTION public.date_bin(text, timestamptz, text) RETURNS timestamptz LANGUAGE plpgsql AS
           $$ BEGIN PERFORM public.planted_call('date_bin');
                    RETURN pg_catalog.date_bin($1::interval, $2, $3::timestamptz); END $$;",
    )
    .await;
    install(&pool).await;
    let tenant = insert_tenant(&pool, "t").await;

    seed(&pool, tenant).await;

    assert_eq!(planted_calls(&pool).await, []);
    assert_exact(&pool, &[tenant], since(), "after planting date_bin").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn calling_install_again_runs_no_operator_planted_in_the_callers_schemas(pool: PgPool) {
    // Operators with the exact argument types of comparisons of catalog oids with regclass and
    // regnamespace, for which pg_catalog has no exact match.
    plant(
        &pool,
        "CREATE FUNCTION public.oid_eq_regclass(oid, regclass) RETURNS bool LANGUAGE plpgsql AS
           $$ BEGIN PERFORM public.planted_call('oid = regclass'); RETURN $1 = $2::oid; END $$;
         CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.oid_eq_regclass);
         CREATE FUNCTION public.oid_eq_regnamespace(oid, regnamespace) RETURNS bool LANGUAGE plpgsql AS
           $$ BEGIN PERFORM public.planted_call('oid = regnamespace'); RETURN $1 = $2::oid; END $$;
         CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regnamespace, FUNCTION = public.oid_eq_regnamespace);",
    )
    .await;

    run(&pool, "CALL dashboard_cache.install()").await;

    assert_eq!(planted_calls(&pool).await, []);
}

#[sqlx::test(migrations = false)]
async fn a_pre_existing_owner_role_with_members_or_default_privileges_is_refused(pool: PgPool) {
    crm_only(&pool).await;
    let owner_sql = migration_files()
        .into_iter()
        .find(|(name, _)| name.ends_with("_dashboard_cache_owner.sql"))
        .map(|(_, sql)| sql)
        .expect("the owner migration");
    let member = DbRole::create(&pool, "crm_writer", "").await;
    let cases = [
        format!("GRANT dashboard_cache_owner TO {};", member.name()),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE dashboard_cache_owner GRANT ALL ON TABLES TO {};",
            member.name()
        ),
        String::new(),
    ];
    for (i, setup) in cases.iter().enumerate() {
        // The owner migration as it is, for a role of its own name: the cluster's real owner role is
        // in use by every other test database.
        let owner = DbRole::create(
            &pool,
            "dashboard_cache_owner",
            &format!("ALTER ROLE dashboard_cache_owner NOLOGIN; {setup}"),
        )
        .await;
        let sql = owner_sql
            .replace("dashboard_cache_owner", owner.name())
            .replace("SCHEMA dashboard_cache ", &format!("SCHEMA dc_{i} "));
        let mut conn = pool.acquire().await.unwrap();
        let result = sqlx::raw_sql(AssertSqlSafe(format!("BEGIN; {sql}")))
            .execute(&mut *conn)
            .await;
        exec(&mut conn, "ROLLBACK").await;
        if setup.is_empty() {
            result.expect("a new NOLOGIN role is accepted");
        } else {
            let refused = result.expect_err(setup).to_string();
            assert!(
                refused.contains("beyond a new NOLOGIN role"),
                "{setup}: {refused}"
            );
        }
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn no_role_can_stop_compaction_or_repair_by_holding_a_lock(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    seed(&pool, tenant).await;
    let nobody = DbRole::create(&pool, "crm_reader", "").await;
    let mut squatter = nobody.connect().await;
    // The locks any role can take: advisory locks, here the keys compaction and repair once used.
    exec(
        &mut squatter,
        &format!(
            "SELECT pg_advisory_lock(hashtext('dashboard_cache.bundle_stats_compact')),
                    pg_advisory_lock(hashtext('dashboard_cache.bundle_stats_repair'), hashtext('{tenant}'))"
        ),
    )
    .await;
    let row_lock = sqlx::query("SELECT FROM dashboard_cache.bundle_stats_horizon FOR UPDATE")
        .execute(&mut squatter)
        .await;
    assert!(row_lock.is_err(), "the squatter locked the horizon row");

    let mut conn = pool.acquire().await.unwrap();
    exec(&mut conn, "SET statement_timeout = '5s'").await;
    let folded: Option<i64> = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact(1000)")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let repaired: Result<i64, _> = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_repair($1)")
        .bind(tenant)
        .fetch_one(&mut *conn)
        .await;

    assert!(folded.is_some_and(|n| n > 0), "compaction skipped: {folded:?}");
    assert_eq!(repaired.expect("the repair ran"), 0);
}

#[sqlx::test(migrations = "../migrations")]
async fn the_warmers_role_cannot_append_a_change_that_moves_a_version_back_or_poisons_a_sum(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    seed(&pool, tenant).await;
    let before = version(&pool, tenant).await;
    let warmer = DbRole::create(&pool, "warm_cache_db", &readme_grants("warm-cache")).await;
    let mut session = warmer.connect().await;

    for values in [
        format!("('{tenant}', false, false, -3, 0, 0)"),
        format!("('{tenant}', false, false, 0, 'NaN', 0)"),
        format!("('{tenant}', false, false, 0, 0, -9223372036854775808)"),
        "(NULL, false, true, 5, 0, 0)".to_owned(),
    ] {
        let appended = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, epoch, changes, pipeline, contacts)
             VALUES {values}"
        )))
        .execute(&mut session)
        .await;
        assert_eq!(
            sqlstate(&appended).as_deref(),
            Some("23514"),
            "{values} was appended"
        );
    }
    assert!(version(&pool, tenant).await >= before);
    assert_exact(&pool, &[tenant], since(), "after the warmer's appends").await;
}

#[sqlx::test(migrations = "../migrations")]
async fn repair_refuses_while_row_level_security_hides_crm_rows_from_its_caller(pool: PgPool) {
    let tenant = insert_tenant(&pool, "t").await;
    seed(&pool, tenant).await;
    let warmer = DbRole::create(&pool, "warm_cache_db", &readme_grants("warm-cache")).await;
    run(&pool, "ALTER TABLE leads ENABLE ROW LEVEL SECURITY").await;

    let repaired = sqlx::query_scalar::<_, i64>("SELECT dashboard_cache.bundle_stats_repair($1)")
        .bind(tenant)
        .fetch_one(&mut warmer.connect().await)
        .await;

    assert_eq!(
        sqlstate(&repaired).as_deref(),
        Some("42501"),
        "the repair ran without seeing the leads"
    );
    run(&pool, "ALTER TABLE leads DISABLE ROW LEVEL SECURITY").await;
    assert_exact(&pool, &[tenant], since(), "after the refused repair").await;
}
