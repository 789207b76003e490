//! `GET /api/system/health`: checks Redis and Postgres with bounded waits. No auth.

use std::time::{Duration, Instant};

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::json;
use shared::error::chain;
use shared::http::json_response;
use shared::state::AppState;

/// No check waits longer than this, whatever the clients' own timeouts are.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn handle(state: &AppState) -> Response<Body> {
    let redis = async {
        let started = Instant::now();
        let result = tokio::time::timeout(CHECK_TIMEOUT, state.dashboard.cache().ping()).await;
        let outcome = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(chain(&e)),
            Err(_) => Err("timed out".to_owned()),
        };
        (outcome, started.elapsed())
    };
    let database = async {
        let started = Instant::now();
        let query = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(state.dashboard.pool());
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, query).await {
            Ok(Ok(_)) => Ok(()),
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
    json_response(status, body.to_string())
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}
