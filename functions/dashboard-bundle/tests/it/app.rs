//! The function under test, built one way: its state over a test's environment and database, and
//! requests sent through its router as API Gateway would send them.

use std::net::SocketAddr;

use dashboard_bundle::{config::Config, route, State};
use serde_json::Value;
use shared::auth::Role;
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use sqlx::PgPool;
use test_support::{event, reply, request, with_query, with_token, Reply, TestEnv};
use uuid::Uuid;

pub fn config(env: &TestEnv) -> Config {
    Config::from_env(&env.as_env()).expect("test config")
}

/// The function as one Lambda environment would run it, over the test's database.
pub fn state(env: &TestEnv, pool: &PgPool) -> State {
    state_over(env, env.database(pool), Clock::default())
}

pub fn state_over(env: &TestEnv, db: Database, clock: Clock) -> State {
    state_with(config(env), db, clock)
}

/// The same with a config a test changed (its sign-in, its deadlines).
pub fn state_with(config: Config, db: Database, clock: Clock) -> State {
    State::with_database(config, db, clock).expect("test state")
}

/// Sends `ev` through the router, as API Gateway would.
pub async fn send(state: &State, ev: &Value) -> Reply {
    reply(
        route(state, request(ev))
            .await
            .expect("handlers never return Err"),
    )
}

/// An admin of `tenant` opening the tenant's whole dashboard.
pub async fn get(state: &State, tenant: Uuid) -> Reply {
    let token = test_support::token(Role::Admin, Some(tenant));
    get_with(state, Some(&token), "").await
}

/// [`get`], as the cache's outcome (`X-Cache`, or the status) and the body.
pub async fn outcome_and_body(state: &State, tenant: Uuid) -> (String, Value) {
    let reply = get(state, tenant).await;
    (reply.outcome(), reply.body)
}

/// `GET /api/reports/dashboard-bundle?<query>` with `token` as the bearer (none: no header).
pub async fn get_with(state: &State, token: Option<&str>, query: &str) -> Reply {
    send(
        state,
        &with_query(with_token(event("dashboard-bundle.json"), token), query),
    )
    .await
}

/// The address of the test run's Redis (`REDIS_URL`), for a proxy in front of it.
pub fn shared_redis_addr() -> SocketAddr {
    std::env::var("REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .expect("REDIS_URL is redis://ip:port")
}

/// The address of the Postgres server behind `pool`, for a proxy in front of it.
pub fn pg_addr(pool: &PgPool) -> SocketAddr {
    let options = pool.connect_options();
    let host = match options.get_host() {
        "localhost" => "127.0.0.1",
        host => host,
    };
    format!("{host}:{}", options.get_port())
        .parse()
        .expect("Postgres on an IP address")
}
