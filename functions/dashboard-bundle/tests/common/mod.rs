//! What every test file of this function builds: the function's state over a test's environment.
#![allow(dead_code)]

use dashboard_bundle::{config::Config, route, State};
use serde_json::Value;
use shared::auth::Role;
use shared::clock::Clock;
use shared::db::Database;
use sqlx::PgPool;
use test_support::{event, reply, request, with_token, Reply, TestEnv};
use uuid::Uuid;

pub fn config(env: &TestEnv) -> Config {
    Config::from_lookup(env.lookup()).expect("test config")
}

/// The function as one Lambda environment would run it, over the test's database.
pub fn state(env: &TestEnv, pool: &PgPool) -> State {
    state_over(env, env.database(pool), Clock::default())
}

pub fn state_over(env: &TestEnv, db: Database, clock: Clock) -> State {
    State::with_database(config(env), db, clock).expect("test state")
}

/// Sends `ev` through the router, as API Gateway would.
pub async fn send(state: &State, ev: &Value) -> Reply {
    reply(
        route(state, request(ev))
            .await
            .expect("handlers never return Err"),
    )
}

/// An employee of `tenant` opening the dashboard.
pub async fn get(state: &State, tenant: Uuid) -> Reply {
    let token = test_support::token(Role::Employee, Some(tenant));
    send(state, &with_token(event("dashboard-bundle.json"), Some(&token))).await
}
