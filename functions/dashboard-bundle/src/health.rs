//! `GET /api/system/health`: checks Redis and Postgres with bounded waits. No auth, so a flood must
//! stay cheap: one check runs at a time and its result answers every request for [`REUSE_FOR`].

use std::time::{Duration, Instant};

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;
use shared::env::chain;
use shared::http::json_response;
use shared::platform::db::Database;
use shared::store::RedisCache;
use tokio::sync::Mutex;

/// No check waits longer than this, whatever the clients' own timeouts are.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// A result this recent answers the request without touching Redis or Postgres.
const REUSE_FOR: Duration = Duration::from_secs(2);

/// The last result, shared by concurrent requests; its lock also makes them wait for one check.
#[derive(Default)]
pub(crate) struct HealthCheck {
    last: Mutex<Option<(Instant, StatusCode, String)>>,
}

impl HealthCheck {
    /// The health response: the last result while recent, else a new check of `redis` and `db`.
    pub(crate) async fn respond(&self, redis: &RedisCache, db: &Database) -> Response<Body> {
        let mut last = self.last.lock().await;
        if let Some((at, status, body)) = last.as_ref() {
            if at.elapsed() < REUSE_FOR {
                return json_response(*status, body.clone());
            }
        }
        let (status, body) = check(redis, db).await;
        *last = Some((Instant::now(), status, body.clone()));
        json_response(status, body)
    }
}

async fn check(redis_cache: &RedisCache, db: &Database) -> (StatusCode, String) {
    let redis = async {
        let started = Instant::now();
        let result = tokio::time::timeout(CHECK_TIMEOUT, redis_cache.ping()).await;
        let outcome = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(chain(&e)),
            Err(_) => Err("timed out".to_owned()),
        };
        (outcome, started.elapsed())
    };
    let database = async {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, db.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(chain(&e)),
            Err(_) => Err("timed out".to_owned()),
        };
        (outcome, started.elapsed())
    };
    let ((redis, redis_took), (database, database_took)) = tokio::join!(redis, database);
    for (part, outcome) in [("redis_cache", &redis), ("database", &database)] {
        if let Err(e) = outcome {
            tracing::warn!(part, error = %e, "health check failed");
        }
    }
    let healthy = redis.is_ok() && database.is_ok();
    let word = |ok: bool| if ok { "connected" } else { "disconnected" };
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "redis_cache": word(redis.is_ok()),
        "database": word(database.is_ok()),
        "latency_ms": {
            "redis_cache": millis(redis_took),
            "database": millis(database_took),
        },
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body.to_string())
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}
