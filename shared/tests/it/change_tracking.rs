//! Change tracking must not change how the CRM's own writes behave: concurrent writers never wait for
//! or deadlock on anything the cache installed, and every committed write moves the versions later
//! snapshots see. Each scenario runs on real concurrent connections; a short `lock_timeout` makes a
//! writer that would block fail the test instead of hanging it.

use std::time::Duration;

use shared::bundle::identity::Scope;
use shared::bundle::version::current;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};
use test_support::insert_tenant as tenant;
use uuid::Uuid;

/// A pool of its own, large enough for every connection a scenario holds at once.
fn writers(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(6)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with((*pool.connect_options()).clone())
}

/// A writer's transaction that gives up after 500 ms waiting for any lock.
async fn writer(pool: &PgPool) -> Transaction<'static, Postgres> {
    let mut tx = pool.begin().await.unwrap();
    sqlx::raw_sql("SET LOCAL lock_timeout = '500ms'; SET LOCAL statement_timeout = '5s'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

async fn insert(
    tx: &mut Transaction<'static, Postgres>,
    table: &str,
    tenant: Uuid,
) -> Result<(), sqlx::Error> {
    let sql = match table {
        "contacts" => "INSERT INTO contacts (tenant_id) VALUES ($1)",
        "leads" => "INSERT INTO leads (tenant_id) VALUES ($1)",
        "accounts" => "INSERT INTO accounts (tenant_id, name) VALUES ($1, 'a')",
        "opportunities" => "INSERT INTO opportunities (tenant_id, name, amount) VALUES ($1, 'o', 10)",
        _ => "INSERT INTO activities (tenant_id, type) VALUES ($1, 'call')",
    };
    sqlx::query(sql).bind(tenant).execute(&mut **tx).await.map(drop)
}

async fn version(pool: &PgPool, scope: Scope) -> i64 {
    current(pool, scope, false).await.unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn an_open_transaction_does_not_block_another_writer_of_the_same_tenant(pool: PgPool) {
    let t1 = tenant(&pool, "t1").await;
    let pool = writers(&pool);
    let mut a = writer(&pool).await;
    insert(&mut a, "leads", t1).await.unwrap();

    let mut b = writer(&pool).await;
    let written = insert(&mut b, "contacts", t1).await;
    assert!(written.is_ok(), "B waited for A: {written:?}");
    b.commit().await.unwrap();
    a.commit().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn crossing_writes_to_two_tenants_do_not_deadlock(pool: PgPool) {
    let (t1, t2) = (tenant(&pool, "t1").await, tenant(&pool, "t2").await);
    let pool = writers(&pool);
    let (mut a, mut b) = (writer(&pool).await, writer(&pool).await);
    insert(&mut a, "leads", t1).await.unwrap();
    insert(&mut b, "activities", t2).await.unwrap();

    let (second_a, second_b) = tokio::join!(
        insert(&mut a, "contacts", t2),
        insert(&mut b, "opportunities", t1)
    );
    assert!(second_a.is_ok(), "A: {second_a:?}");
    assert!(second_b.is_ok(), "B: {second_b:?}");
    a.commit().await.unwrap();
    b.commit().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn writers_of_rows_without_a_tenant_do_not_wait_for_each_other(pool: PgPool) {
    let pool = writers(&pool);
    let mut a = writer(&pool).await;
    sqlx::query("INSERT INTO leads (tenant_id) VALUES (NULL)")
        .execute(&mut *a)
        .await
        .unwrap();
    let mut b = writer(&pool).await;
    let written = sqlx::query("INSERT INTO contacts (tenant_id) VALUES (NULL)")
        .execute(&mut *b)
        .await;
    assert!(written.is_ok(), "{written:?}");
    b.commit().await.unwrap();
    a.commit().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn one_update_of_a_null_tenant_row_and_a_nil_uuid_tenant_row_succeeds(pool: PgPool) {
    let nil = Uuid::nil();
    sqlx::query("INSERT INTO tenant (id, slug, name) VALUES ($1, 'nil', 'nil')")
        .bind(nil)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO leads (tenant_id) VALUES (NULL), ($1)")
        .bind(nil)
        .execute(&pool)
        .await
        .unwrap();
    let (before, global_before) = (
        version(&pool, Scope::Tenant(nil)).await,
        version(&pool, Scope::Global).await,
    );

    let updated = sqlx::query("UPDATE leads SET status = 'lost' WHERE tenant_id IS NULL OR tenant_id = $1")
        .bind(nil)
        .execute(&pool)
        .await;

    assert_eq!(updated.map(|r| r.rows_affected()).ok(), Some(2));
    assert!(version(&pool, Scope::Tenant(nil)).await > before);
    assert!(version(&pool, Scope::Global).await > global_before);
}

#[sqlx::test(migrations = "../migrations")]
async fn truncate_moves_the_version_of_a_tenant_that_was_never_written(pool: PgPool) {
    let quiet = tenant(&pool, "quiet").await;
    let before = version(&pool, Scope::Tenant(quiet)).await;
    let global_before = version(&pool, Scope::Global).await;

    sqlx::query("TRUNCATE activities").execute(&pool).await.unwrap();

    assert!(version(&pool, Scope::Tenant(quiet)).await > before);
    assert!(version(&pool, Scope::Global).await > global_before);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_transaction_committing_after_a_later_one_still_moves_the_version(pool: PgPool) {
    let t1 = tenant(&pool, "t1").await;
    let pool = writers(&pool);
    // A starts first and commits last.
    let mut a = writer(&pool).await;
    insert(&mut a, "leads", t1).await.unwrap();
    let mut b = writer(&pool).await;
    insert(&mut b, "contacts", t1).await.unwrap();
    b.commit().await.unwrap();
    let after_b = version(&pool, Scope::Tenant(t1)).await;
    let global_after_b = version(&pool, Scope::Global).await;

    a.commit().await.unwrap();

    assert!(version(&pool, Scope::Tenant(t1)).await > after_b);
    assert!(version(&pool, Scope::Global).await > global_after_b);
}

async fn compact(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn compaction_changes_no_version_a_snapshot_reads(pool: PgPool) {
    let (t1, t2) = (tenant(&pool, "t1").await, tenant(&pool, "t2").await);
    for table in ["contacts", "leads", "opportunities", "activities", "accounts"] {
        for t in [t1, t2] {
            let mut tx = writer(&pool).await;
            insert(&mut tx, table, t).await.unwrap();
            tx.commit().await.unwrap();
        }
    }
    sqlx::query("INSERT INTO leads (tenant_id) VALUES (NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("TRUNCATE accounts").execute(&pool).await.unwrap();
    let scopes = [Scope::Tenant(t1), Scope::Tenant(t2), Scope::Global];
    let mut before = Vec::new();
    for scope in scopes {
        before.push(version(&pool, scope).await);
    }
    // A reader whose snapshot began before the compaction commits.
    let mut reader = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .unwrap();
    assert_eq!(
        current(&mut *reader, Scope::Global, false).await.unwrap(),
        before[2]
    );

    let folded = compact(&pool).await;

    assert!(folded.is_some_and(|n| n > 0), "{folded:?}");
    assert_eq!(
        current(&mut *reader, Scope::Global, false).await.unwrap(),
        before[2]
    );
    reader.commit().await.unwrap();
    for (scope, expected) in scopes.into_iter().zip(before) {
        assert_eq!(version(&pool, scope).await, expected, "{scope:?}");
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM dashboard_cache.bundle_stats_delta")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "every delta was folded");
}

#[sqlx::test(migrations = "../migrations")]
async fn a_second_compaction_does_not_wait_for_the_first(pool: PgPool) {
    let pool = writers(&pool);
    let mut first = pool.begin().await.unwrap();
    let folded: Option<i64> = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact()")
        .fetch_one(&mut *first)
        .await
        .unwrap();
    assert_eq!(folded, Some(0));

    let mut second = writer(&pool).await;
    let skipped: Option<i64> = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact()")
        .fetch_one(&mut *second)
        .await
        .unwrap();

    assert_eq!(skipped, None, "the lock is held: nothing folded twice");
    second.commit().await.unwrap();
    first.commit().await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn crm_writer_roles_need_no_grant_on_the_change_tables(pool: PgPool) {
    let t1 = tenant(&pool, "t1").await;
    let writer = test_support::DbRole::create(
        &pool,
        "crm_writer",
        "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON contacts, accounts, leads, opportunities, activities
           TO crm_writer",
    )
    .await;
    let role = writer.name();
    let before = version(&pool, Scope::Tenant(t1)).await;

    let mut tx = pool.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET LOCAL ROLE {role}")))
        .execute(&mut *tx)
        .await
        .unwrap();
    let denied = sqlx::query("SELECT count(*) FROM dashboard_cache.bundle_stats_delta")
        .execute(&mut *tx)
        .await;
    assert!(denied.is_err(), "the change tables are not readable by writers");
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET LOCAL ROLE {role}")))
        .execute(&mut *tx)
        .await
        .unwrap();
    insert(&mut tx, "leads", t1).await.unwrap();
    sqlx::query("UPDATE leads SET status = 'lost'")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("TRUNCATE contacts").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();

    assert!(version(&pool, Scope::Tenant(t1)).await > before);
}

#[sqlx::test(migrations = "../migrations")]
async fn changing_a_tenants_timezone_moves_its_version_and_renaming_it_does_not(pool: PgPool) {
    let acme = tenant(&pool, "acme").await;
    let other = tenant(&pool, "other").await;
    let before = (
        version(&pool, Scope::Tenant(acme)).await,
        version(&pool, Scope::Tenant(other)).await,
    );

    sqlx::query("UPDATE tenant SET name = 'Acme Inc.' WHERE id = $1")
        .bind(acme)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        version(&pool, Scope::Tenant(acme)).await,
        before.0,
        "a rename changes no figure"
    );

    sqlx::query("UPDATE tenant SET timezone = 'Asia/Tokyo'")
        .execute(&pool)
        .await
        .unwrap();
    let after = (
        version(&pool, Scope::Tenant(acme)).await,
        version(&pool, Scope::Tenant(other)).await,
    );
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "{before:?} -> {after:?}"
    );

    // Setting the same zone again is no change.
    sqlx::query("UPDATE tenant SET timezone = 'Asia/Tokyo' WHERE id = $1")
        .bind(acme)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(version(&pool, Scope::Tenant(acme)).await, after.0);
}
