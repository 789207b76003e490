//! The functions under test, built one way: clear-cache over a test's environment, and the dashboard
//! function beside it (over the test's database) to show what a clear did.

use clear_cache::{config::Config, State};
use sqlx::PgPool;
use test_support::TestEnv;

pub fn clear_state(env: &TestEnv) -> State {
    let config = Config::from_env(&env.as_env()).expect("clear-cache config");
    State::new(&config, &Default::default()).expect("clear-cache state")
}

pub fn dashboard_state(env: &TestEnv, pool: &PgPool) -> dashboard_bundle::State {
    let config = dashboard_bundle::config::Config::from_env(&env.as_env()).expect("dashboard config");
    dashboard_bundle::State::with_database(config, env.database(pool), Default::default())
        .expect("dashboard state")
}

/// A client of the test run's Redis, to look at keys the way an operator would.
pub async fn raw_redis(env: &TestEnv) -> redis::aio::MultiplexedConnection {
    redis::Client::open(env.redis_url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}
