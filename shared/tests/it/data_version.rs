//! The change-tracking triggers: one bump per statement per touched tenant.

use shared::bundle::identity::Scope;
use shared::bundle::version::current;
use sqlx::PgPool;
use test_support::insert_tenant as tenant;
use uuid::Uuid;

async fn exec(pool: &PgPool, sql: &str, a: Uuid, b: Uuid) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(a)
        .bind(b)
        .execute(pool)
        .await
        .unwrap();
}

async fn versions(pool: &PgPool, a: Uuid, b: Uuid) -> (i64, i64, i64) {
    (
        current(pool, Scope::Tenant(a), false).await.unwrap(),
        current(pool, Scope::Tenant(b), false).await.unwrap(),
        current(pool, Scope::Global, false).await.unwrap(),
    )
}

#[sqlx::test(migrations = "../migrations")]
async fn a_multi_row_statement_bumps_each_touched_tenant_once(pool: PgPool) {
    let (a, b) = (tenant(&pool, "a").await, tenant(&pool, "b").await);
    assert_eq!(versions(&pool, a, b).await, (0, 0, 0));
    exec(
        &pool,
        "INSERT INTO leads (tenant_id) SELECT CASE WHEN g % 3 = 0 THEN $2 ELSE $1 END FROM generate_series(1, 100) g",
        a,
        b,
    )
    .await;
    assert_eq!(versions(&pool, a, b).await, (1, 1, 2));
    exec(
        &pool,
        "UPDATE leads SET status = 'lost' WHERE tenant_id = $1 AND $2::uuid IS NOT NULL",
        a,
        b,
    )
    .await;
    assert_eq!(versions(&pool, a, b).await, (2, 1, 3));
}

#[sqlx::test(migrations = "../migrations")]
async fn moving_a_row_between_tenants_bumps_both(pool: PgPool) {
    let (a, b) = (tenant(&pool, "a").await, tenant(&pool, "b").await);
    exec(
        &pool,
        "INSERT INTO accounts (tenant_id, name) VALUES ($1, 'x'), ($2, 'y')",
        a,
        b,
    )
    .await;
    exec(
        &pool,
        "UPDATE accounts SET tenant_id = $2 WHERE tenant_id = $1",
        a,
        b,
    )
    .await;
    assert_eq!(versions(&pool, a, b).await, (2, 2, 4));
}

#[sqlx::test(migrations = "../migrations")]
async fn deletes_and_truncates_move_versions_but_empty_statements_do_not(pool: PgPool) {
    let (a, b) = (tenant(&pool, "a").await, tenant(&pool, "b").await);
    exec(
        &pool,
        "INSERT INTO activities (tenant_id, type) VALUES ($1, 'call'), ($2, 'call')",
        a,
        b,
    )
    .await;
    exec(
        &pool,
        "DELETE FROM activities WHERE tenant_id = $1 AND $2::uuid IS NOT NULL",
        a,
        b,
    )
    .await;
    assert_eq!(versions(&pool, a, b).await, (2, 1, 3));
    exec(
        &pool,
        "DELETE FROM activities WHERE tenant_id = $1 AND $2::uuid IS NULL",
        a,
        b,
    )
    .await;
    assert_eq!(
        versions(&pool, a, b).await,
        (2, 1, 3),
        "nothing deleted, nothing moved"
    );
    sqlx::query("TRUNCATE opportunities")
        .execute(&pool)
        .await
        .unwrap();
    let (va, vb, global) = versions(&pool, a, b).await;
    assert!(va > 2 && vb > 1 && global > 3, "{va} {vb} {global}");
}

#[sqlx::test(migrations = "../migrations")]
async fn rows_without_a_tenant_move_the_global_version(pool: PgPool) {
    let (a, b) = (tenant(&pool, "a").await, tenant(&pool, "b").await);
    sqlx::query("INSERT INTO contacts (tenant_id) VALUES (NULL)")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(versions(&pool, a, b).await, (0, 0, 1));
}
