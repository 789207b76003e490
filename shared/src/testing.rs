//! Test support for the functions' tests (feature `testing`): per-test state over a fresh database and
//! a unique Redis prefix, tokens, and the JSON events in `events/`.

use std::path::PathBuf;
use std::time::Duration;

use lambda_http::Request;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::{issue_token, Claims, Role};
use crate::clock::Clock;
use crate::config::{Config, DatabaseConfig, RedisConfig};
use crate::state::AppState;

pub const TEST_JWT_SECRET: &str = "test-only-secret-test-only-secret-0123";

/// `REDIS_URL` of the test run, the local server by default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A Redis URL where nothing listens: the "Redis down" case.
pub const DEAD_REDIS_URL: &str = "redis://127.0.0.1:1";
/// A Postgres URL where nothing listens: the "Postgres down" case.
pub const DEAD_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:1/none";

/// Configuration of one test: its own key prefix, short timeouts.
pub fn config() -> Config {
    Config {
        database: DatabaseConfig {
            url: std::env::var("DATABASE_URL").unwrap_or_default(),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(10),
        },
        redis: RedisConfig {
            url: redis_url(),
            cluster: false,
            ca_file: None,
            connect_timeout: Duration::from_millis(500),
            response_timeout: Duration::from_millis(500),
        },
        jwt_secret: TEST_JWT_SECRET.to_owned(),
        bundle_ttl: Duration::from_secs(300),
        bundle_max_age: Duration::from_secs(25 * 3600),
        recompute_lease: Duration::from_secs(5),
        cache_key_prefix: format!("test:{}:", Uuid::new_v4().simple()),
    }
}

pub fn state(config: Config, pool: PgPool) -> AppState {
    AppState::with_pool(config, pool, Clock::default()).expect("test state")
}

/// A pool whose every connection attempt fails quickly.
pub fn dead_pool() -> PgPool {
    let mut db = config().database;
    db.url = DEAD_DATABASE_URL.to_owned();
    db.acquire_timeout = Duration::from_millis(500);
    crate::db::lazy_pool(&db).expect("dead pool")
}

pub fn token(role: Role, tenant_id: Option<Uuid>) -> String {
    let claims = Claims {
        sub: format!("{role:?}-user").to_lowercase(),
        role,
        tenant_id,
        exp: chrono::Utc::now().timestamp() + 3600,
    };
    issue_token(TEST_JWT_SECRET, &claims)
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// An event file of `events/`, as JSON to adjust before sending.
pub fn event(name: &str) -> Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sets (or with `None` removes) the bearer token of an HTTP API event.
pub fn with_token(mut event: Value, token: Option<&str>) -> Value {
    let headers = event["headers"].as_object_mut().expect("event has headers");
    match token {
        Some(t) => headers.insert("authorization".into(), format!("Bearer {t}").into()),
        None => headers.remove("authorization"),
    };
    event
}

/// Replaces the query string of an HTTP API event.
pub fn with_query(mut event: Value, raw_query: &str) -> Value {
    event["rawQueryString"] = raw_query.into();
    event
        .as_object_mut()
        .expect("event object")
        .remove("queryStringParameters");
    event
}

/// Replaces the body of an HTTP API event.
pub fn with_body(mut event: Value, body: Option<&str>) -> Value {
    event["body"] = body.map_or(Value::Null, Value::from);
    event["isBase64Encoded"] = false.into();
    event
}

/// Turns an event into the request lambda_http hands the handler.
pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("valid HTTP API event")
}

/// Inserts a tenant and returns its id.
pub async fn insert_tenant(pool: &PgPool, slug: &str) -> Uuid {
    sqlx::query_scalar("INSERT INTO tenant (slug, name) VALUES ($1, $1) RETURNING id")
        .bind(slug)
        .fetch_one(pool)
        .await
        .expect("insert tenant")
}

/// Deletes every key under `prefix`, so tests leave the shared Redis as they found it.
pub async fn cleanup_prefix(prefix: &str) {
    let cache = crate::cache::Cache::new(&config().redis).expect("redis config");
    cache
        .unlink_matching(&format!("{prefix}*"))
        .await
        .expect("cleanup");
}
