//! Test support for the functions' tests (feature `testing`): per-test state over a fresh database and
//! a unique Redis prefix, tokens, and the JSON events in `events/`.

use std::path::PathBuf;
use std::time::Duration;

use lambda_http::Request;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::{issue_token, AuthConfig, Claims, Role};
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
        auth: AuthConfig::hs256(TEST_JWT_SECRET),
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

/// `REDIS_URL` of the test cluster (`make unit-test` starts it on 7000-7002).
pub fn cluster_config() -> RedisConfig {
    RedisConfig {
        url: std::env::var("TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| "redis://127.0.0.1:7000".to_owned()),
        cluster: true,
        ..config().redis
    }
}

/// The TLS-only test server (`make unit-test` starts it on 6390) and the CA that signed its certificate
/// (`scripts/services.sh` keeps it in `~/.cache/dashboard-cache/services/tls`).
pub fn tls_config() -> RedisConfig {
    let ca = std::env::var("TEST_REDIS_TLS_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/dashboard-cache/services/tls/ca.crt")
        });
    RedisConfig {
        url: std::env::var("TEST_REDIS_TLS_URL").unwrap_or_else(|_| "rediss://localhost:6390".to_owned()),
        ca_file: Some(ca),
        ..config().redis
    }
}

/// A redis-server of one test's own, on a free port, stopped when dropped: for the tests that kill
/// connections, stop or restart Redis, which must not disturb the shared server.
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("own-redis-{port}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port,
            dir,
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start on {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Closes every client connection, as a server-side load balancer or a frozen environment would.
    pub async fn kill_clients(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut admin = client.get_multiplexed_async_connection().await.unwrap();
        let _: i64 = redis::cmd("CLIENT")
            .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"][..])
            .query_async(&mut admin)
            .await
            .unwrap();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
