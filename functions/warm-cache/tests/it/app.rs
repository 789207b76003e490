//! The warmer under test, built one way: its state over a test's environment, database and clock,
//! and events handed to its handler as Lambda would hand them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use sqlx::PgPool;
use test_support::TestEnv;
use warm_cache::{config::Config, fanout::Fanout, warm_event, WarmState};

/// The warmer's pacing in these tests (four tenants at once, generous bounds); adjust with `.set(..)`.
pub fn warm_env() -> TestEnv {
    TestEnv::new()
        .set("WARM_CONCURRENCY", "4")
        .set("WARM_TENANT_TIMEOUT_MS", "10000")
        .set("WARM_DEADLINE_MARGIN_MS", "10000")
}

pub struct TestWarmer {
    pub env: TestEnv,
    pub state: WarmState,
    pub clock: Clock,
}

impl std::ops::Deref for TestWarmer {
    type Target = WarmState;
    fn deref(&self) -> &WarmState {
        &self.state
    }
}

impl TestWarmer {
    /// Over the test's database (through PgBouncer in the second pass), on the real clock.
    pub fn new(pool: &PgPool, env: TestEnv, fanout: Option<Fanout>) -> Self {
        let db = env.database(pool);
        Self::over(env, db, fanout, Clock::default())
    }

    /// The same on a simulated clock starting at `at`.
    pub fn at(pool: &PgPool, env: TestEnv, at: chrono::DateTime<chrono::Utc>) -> Self {
        let db = env.database(pool);
        Self::over(env, db, None, Clock::starting_at(at))
    }

    /// Over any database (a proxy, a dead one) and with a fan-out of the test's.
    pub fn over(env: TestEnv, db: Database, fanout: Option<Fanout>, clock: Clock) -> Self {
        let config = Config::from_env(&env.as_env()).expect("warm config");
        let state = WarmState::with_clock(config, db, fanout, clock.clone()).expect("warm state");
        Self { env, state, clock }
    }

    /// Invokes the handler with a deadline `deadline_in` from now; the error as text.
    pub async fn invoke(&self, payload: Value, deadline_in: Duration) -> Result<Value, String> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let mut context = Context::default();
        context.deadline = now_ms + deadline_in.as_millis() as u64;
        warm_event(&self.state, LambdaEvent::new(payload, context))
            .await
            .map_err(|e| e.to_string())
    }
}
