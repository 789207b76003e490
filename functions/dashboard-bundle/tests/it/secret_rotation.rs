//! Secrets read from Secrets Manager (moto, which `make test-rust` starts) are read again when they stop
//! working, in the same Lambda environment: a rotated database credential and a rotated JWT secret.
//!
//! The database tests connect to Postgres directly even when the run sets `TEST_PGBOUNCER_ADDR`:
//! PgBouncer authenticates clients itself (its own user list), so it would not see a password or role
//! change in Postgres. The shared test Postgres trusts connections from 127.0.0.1, so a changed
//! password is tested on a server of the test's own that checks passwords (28P01); the
//! alternating-users rotation (the old role no longer allowed to log in, 28000) on the shared one.

use crate::app::send;
use aws_sdk_secretsmanager::Client;
use dashboard_bundle::{config::Config, State};
use shared::auth::Role;
use shared::platform::secrets::{environment_from, Environment};
use sqlx::PgPool;
use test_support::{
    event, insert_tenant, secrets_manager, token, token_with, with_token, OwnPostgres, TestEnv,
};
use uuid::Uuid;

/// What `main` builds: the environment with its secrets read, then the state over it.
async fn cold_start(sm: &Client, vars: &TestEnv) -> (State, Environment) {
    let env = environment_from(vars.vars(), &["DATABASE_URL", "JWT_SECRET"], sm)
        .await
        .expect("secrets");
    let config = Config::from_env(&env.vars()).expect("config");
    let state = State::new(config, &env).expect("state");
    (state, env)
}

async fn bundle(state: &State, bearer: &str) -> test_support::Reply {
    send(state, &with_token(event("dashboard-bundle.json"), Some(bearer))).await
}

fn tenant_token(tenant: Uuid) -> String {
    token(Role::Employee, Some(tenant))
}

/// A role of this test that may read the test database, with its URL.
async fn reader_role(pool: &PgPool, name: &str) -> String {
    for sql in [
        format!("CREATE ROLE {name} LOGIN PASSWORD 'rotation-test'"),
        format!("GRANT pg_read_all_data TO {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("create role");
    }
    let options = pool.connect_options();
    format!(
        "postgres://{name}:rotation-test@{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().expect("test database name")
    )
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_rotated_database_credential_is_read_again_without_a_cold_start(pool: PgPool) {
    let sm = secrets_manager::client().await;
    let run = Uuid::new_v4().simple().to_string();
    let (old_role, new_role) = (format!("rot_{run}_a"), format!("rot_{run}_b"));
    let old_url = reader_role(&pool, &old_role).await;
    let new_url = reader_role(&pool, &new_role).await;
    let arn = secrets_manager::create(&sm, &old_url).await;
    let vars = TestEnv::new()
        .set("DATABASE_URL", "")
        .set("DATABASE_URL_SECRET_ARN", &arn);
    let (state, _env) = cold_start(&sm, &vars).await;
    let before = insert_tenant(&pool, "before-rotation").await;
    let after = insert_tenant(&pool, "after-rotation").await;
    let first = bundle(&state, &tenant_token(before)).await;
    assert_eq!(
        (first.status, first.outcome()),
        (200, "MISS".to_owned()),
        "{:?}",
        first.body
    );

    // The rotation: the secret names the other role, the old one may no longer log in, and its open
    // connections end (a restart, an idle timeout).
    secrets_manager::put(&sm, &arn, &new_url).await;
    for sql in [
        format!("ALTER ROLE {old_role} NOLOGIN"),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{old_role}'"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect("rotate");
    }

    let replies = [
        bundle(&state, &tenant_token(after)).await,
        bundle(&state, &tenant_token(after)).await,
    ];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    // The request that met the refusal may fail; the one after it must not.
    assert_eq!(statuses[1], 200, "{statuses:?}: {:?}", replies[1].body);
    let connected_as: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT usename::text FROM pg_stat_activity WHERE usename IN ($1, $2)")
            .bind(&old_role)
            .bind(&new_role)
            .fetch_all(&pool)
            .await
            .expect("sessions");
    assert_eq!(connected_as, vec![new_role.clone()]);

    drop(state);
    drop_roles(&pool, &[&old_role, &new_role]).await;
}

/// Roles are the cluster's, not the test database's: they go when the test ends.
async fn drop_roles(pool: &PgPool, roles: &[&str]) {
    for role in roles {
        for sql in [
            format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"),
            format!("DROP ROLE {role}"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(pool)
                .await
                .expect("drop role");
        }
    }
}

#[tokio::test]
async fn a_rotated_database_password_is_read_again_without_a_cold_start() {
    let server = OwnPostgres::start();
    let admin = PgPool::connect(&server.superuser_url())
        .await
        .expect("own postgres");
    shared::platform::db::MIGRATOR
        .run(&admin)
        .await
        .expect("migrations");
    for sql in [
        "CREATE ROLE app LOGIN PASSWORD 'first-password'",
        "GRANT pg_read_all_data TO app",
    ] {
        sqlx::raw_sql(sql).execute(&admin).await.expect("create role");
    }
    let sm = secrets_manager::client().await;
    let arn = secrets_manager::create(&sm, &server.url("app", "first-password")).await;
    let vars = TestEnv::new()
        .set("DATABASE_URL", "")
        .set("DATABASE_URL_SECRET_ARN", &arn);
    let (state, _env) = cold_start(&sm, &vars).await;
    let before = insert_tenant(&admin, "before-rotation").await;
    let after = insert_tenant(&admin, "after-rotation").await;
    let first = bundle(&state, &tenant_token(before)).await;
    assert_eq!(
        (first.status, first.outcome()),
        (200, "MISS".to_owned()),
        "{:?}",
        first.body
    );

    // Single-user rotation: a new password in Postgres and in the secret; open connections end.
    sqlx::raw_sql("ALTER ROLE app PASSWORD 'second-password'")
        .execute(&admin)
        .await
        .expect("new password");
    secrets_manager::put(&sm, &arn, &server.url("app", "second-password")).await;
    sqlx::raw_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'")
        .execute(&admin)
        .await
        .expect("end sessions");

    let replies = [
        bundle(&state, &tenant_token(after)).await,
        bundle(&state, &tenant_token(after)).await,
    ];
    // The request that met the refusal may fail; the one after it must not.
    assert_eq!(replies[1].status, 200, "{:?}", replies[1].body);
}

/// The test database's URL, as the superuser.
fn database_url(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().expect("test database name")
    )
}

const FIRST: &str = "first-jwt-secret-first-jwt-secret-0001";
const SECOND: &str = "second-jwt-secret-second-jwt-secret-02";

/// The state of an environment whose `JWT_SECRET` came from a new secret holding [`FIRST`], and a
/// tenant to read.
async fn jwt_from_secret(sm: &Client, pool: &PgPool) -> (State, String, Uuid) {
    let arn = secrets_manager::create(sm, FIRST).await;
    let vars = TestEnv::new()
        .set("DATABASE_URL", database_url(pool))
        .set("JWT_SECRET", "")
        .set("JWT_SECRET_ARN", &arn);
    let (state, _env) = cold_start(sm, &vars).await;
    (state, arn, insert_tenant(pool, "jwt-rotation").await)
}

fn signed(secret: &str, tenant: Uuid) -> String {
    token_with(
        secret,
        Role::Employee,
        Some(tenant),
        chrono::Utc::now().timestamp() + 600,
    )
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_rotated_jwt_secret_is_read_again_and_the_replaced_one_still_accepted(pool: PgPool) {
    let sm = secrets_manager::client().await;
    let (state, arn, tenant) = jwt_from_secret(&sm, &pool).await;
    assert_eq!(bundle(&state, &signed(FIRST, tenant)).await.status, 200);

    secrets_manager::put(&sm, &arn, SECOND).await;
    let new = bundle(&state, &signed(SECOND, tenant)).await;
    assert_eq!(new.status, 200, "{:?}", new.body);
    let replaced = bundle(&state, &signed(FIRST, tenant)).await;
    assert_eq!(
        replaced.status, 200,
        "tokens signed before the rotation stay valid for the overlap"
    );
    let forged = bundle(&state, &signed("forged-secret-forged-secret-forged-0003", tenant)).await;
    assert_eq!(forged.status, 401);
}

#[sqlx::test(migrations = "../../migrations")]
async fn forged_tokens_read_the_jwt_secret_again_at_most_once_a_minute(pool: PgPool) {
    let sm = secrets_manager::client().await;
    let (state, arn, tenant) = jwt_from_secret(&sm, &pool).await;
    // A forged token reads the secret again: it has not changed.
    let forged = bundle(&state, &signed("forged-secret-forged-secret-forged-0003", tenant)).await;
    assert_eq!(forged.status, 401);

    // A rotation within the minute is not seen yet: the failure right after the forged one did not
    // make another read.
    secrets_manager::put(&sm, &arn, SECOND).await;
    assert_eq!(bundle(&state, &signed(SECOND, tenant)).await.status, 401);
    assert_eq!(bundle(&state, &signed(FIRST, tenant)).await.status, 200);
}
