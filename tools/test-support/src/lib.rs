//! Test-only support, a dev-dependency of the functions and the shared crate (never linked into a
//! function): a per-test environment (its own Redis key prefix, short timeouts), dev tokens, the JSON
//! events of `events/`, reading responses, Redis and Postgres servers of a test's own, and a
//! fault-injecting proxy.

mod db_role;
pub mod exactness;
mod fault_proxy;
pub mod idp;
pub mod log_lines;
mod own_postgres;
mod own_redis;
pub mod secrets_manager;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shared::auth::{issue_token, Claims, Role};
use shared::env::Env;
use shared::platform::db::Database;
use shared::platform::db::DatabaseConfig;
use shared::store::RedisConfig;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use uuid::Uuid;

pub use db_role::{readme_grants, DbRole};
pub use fault_proxy::{FaultProxy, Mode};
pub use own_postgres::{OwnPostgres, OWN_POSTGRES_PASSWORD};
pub use own_redis::OwnRedis;

pub const TEST_JWT_SECRET: &str = "test-only-secret-test-only-secret-0123";
/// A Redis URL where nothing listens: the "Redis down" case.
pub const DEAD_REDIS_URL: &str = "redis://127.0.0.1:1";
/// A Postgres URL where nothing listens: the "Postgres down" case.
pub const DEAD_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:1/none";

/// The environment variables one test's function reads, as a map: the test run's Postgres and Redis,
/// the test secret, a key prefix of its own and short timeouts. Adjust with [`TestEnv::set`].
#[derive(Debug, Clone)]
pub struct TestEnv {
    vars: BTreeMap<String, String>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let from_run = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let vars = [
            (
                "DATABASE_URL",
                from_run("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
            ),
            ("REDIS_URL", from_run("REDIS_URL", "redis://127.0.0.1:6379")),
            ("JWT_SECRET", TEST_JWT_SECRET.to_owned()),
            ("CACHE_KEY_PREFIX", format!("test:{}:", Uuid::new_v4().simple())),
            ("REDIS_CONNECT_TIMEOUT_MS", "500".to_owned()),
            ("REDIS_RESPONSE_TIMEOUT_MS", "500".to_owned()),
            ("DB_ACQUIRE_TIMEOUT_MS", "2000".to_owned()),
            ("DB_STATEMENT_TIMEOUT_MS", "10000".to_owned()),
            // Tests see Redis directly, as with the level off; tests of the in-memory level set it.
            ("LOCAL_CACHE_MB", "0".to_owned()),
        ];
        Self {
            vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    /// Sets (or, with an empty value, unsets) one variable.
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned().filter(|v| !v.is_empty())
    }

    /// Every variable that is set, as a process environment would hold them.
    pub fn vars(&self) -> std::collections::HashMap<String, String> {
        self.vars
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The settings a function's `Config::from_env` reads.
    pub fn as_env(&self) -> Env<'_> {
        Env::new(|name| self.get(name))
    }

    pub fn prefix(&self) -> String {
        self.get("CACHE_KEY_PREFIX").unwrap_or_default()
    }

    /// `REDIS_URL`, for a test's own client.
    pub fn redis_url(&self) -> String {
        self.get("REDIS_URL").unwrap_or_default()
    }

    pub fn redis(&self) -> RedisConfig {
        RedisConfig::from_env(&self.as_env()).expect("test redis settings")
    }

    pub fn database_config(&self) -> DatabaseConfig {
        DatabaseConfig::from_env(&self.as_env()).expect("test database settings")
    }

    /// The function's view of a test's database: `pool` itself, or, when the run sets
    /// `TEST_PGBOUNCER_ADDR` (`make test` does, for its second pass), the same database reached through
    /// PgBouncer in transaction mode.
    pub fn database(&self, pool: &PgPool) -> Database {
        let config = self.database_config();
        match std::env::var("TEST_PGBOUNCER_ADDR")
            .ok()
            .and_then(|a| a.parse().ok())
        {
            Some(addr) => Database::new(pool_at(pool, addr), &config),
            None => Database::new(pool.clone(), &config),
        }
    }
}

/// A lazy pool to the database of `pool`, at another address (a pooler or a fault proxy).
pub fn pool_at(pool: &PgPool, addr: std::net::SocketAddr) -> PgPool {
    let options: PgConnectOptions = (*pool.connect_options())
        .clone()
        .host(&addr.ip().to_string())
        .port(addr.port())
        .extra_float_digits(None);
    // Like the functions' pools (`Database::connect_lazy`): no ping before each use.
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .test_before_acquire(false)
        .connect_lazy_with(options)
}

/// A database whose every connection attempt fails quickly.
pub fn dead_database() -> Database {
    let env = TestEnv::new()
        .set("DATABASE_URL", DEAD_DATABASE_URL)
        .set("DB_ACQUIRE_TIMEOUT_MS", "500");
    Database::connect_lazy(&env.database_config()).expect("dead pool")
}

pub fn token(role: Role, tenant_id: Option<Uuid>) -> String {
    token_with(
        TEST_JWT_SECRET,
        role,
        tenant_id,
        chrono::Utc::now().timestamp() + 3600,
    )
}

pub fn token_with(secret: &str, role: Role, tenant_id: Option<Uuid>, exp: i64) -> String {
    employee_token_with(secret, role, tenant_id, default_employee(role), exp)
}

/// The employee id (`sub`) of [`token`]'s tokens of `role`: one per role.
pub fn default_employee(role: Role) -> Uuid {
    Uuid::from_u128(0xe000 + u128::from(role.rank()))
}

/// A token of `role` whose employee id (`sub`) is `employee`.
pub fn employee_token(role: Role, tenant_id: Option<Uuid>, employee: Uuid) -> String {
    let exp = chrono::Utc::now().timestamp() + 3600;
    employee_token_with(TEST_JWT_SECRET, role, tenant_id, employee, exp)
}

fn employee_token_with(
    secret: &str,
    role: Role,
    tenant_id: Option<Uuid>,
    employee: Uuid,
    exp: i64,
) -> String {
    let claims = Claims {
        sub: employee.hyphenated().to_string(),
        role,
        tenant_id,
        exp,
        employee_id: None,
    };
    issue_token(secret, &claims).expect("test token")
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// An event file of `events/`, as JSON to adjust before sending.
pub fn event(name: &str) -> Value {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One Scheduler execution of the warmer (its own execution id) scheduled at `at`, with ten
/// minutes to run.
pub fn scheduled_warm(at: chrono::DateTime<chrono::Utc>) -> lambda_http::lambda_runtime::LambdaEvent<Value> {
    let mut context = lambda_http::lambda_runtime::Context::default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    context.deadline = now_ms + Duration::from_secs(600).as_millis() as u64;
    let mut payload = event("warm-cache-scheduler.json");
    payload["execution_id"] = Uuid::new_v4().to_string().into();
    payload["scheduled_time"] = at.to_rfc3339().into();
    lambda_http::lambda_runtime::LambdaEvent::new(payload, context)
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

/// Sets a header of an HTTP API event (names in lower case, as API Gateway sends them).
pub fn with_header(mut event: Value, name: &str, value: &str) -> Value {
    event["headers"][name] = value.into();
    event
}

/// Replaces the HTTP method of an HTTP API event.
pub fn with_method(mut event: Value, method: &str) -> Value {
    event["requestContext"]["http"]["method"] = method.into();
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

/// A response as tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub x_cache: Option<String>,
    /// `X-Cache-Level`: memory, redis or postgres.
    pub level: Option<String>,
    pub body: Value,
}

impl Reply {
    /// `X-Cache`, or the status code when there is none: one string to compare.
    pub fn outcome(&self) -> String {
        self.x_cache.clone().unwrap_or_else(|| self.status.to_string())
    }
}

pub fn reply(response: Response<Body>) -> Reply {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let x_cache = header("x-cache");
    let level = header("x-cache-level");
    let body = match response.body() {
        Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
        Body::Empty => Value::Null,
        Body::Binary(b) => serde_json::from_slice(b).expect("JSON body"),
        _ => panic!("unexpected body"),
    };
    Reply {
        status,
        x_cache,
        level,
        body,
    }
}

/// The migrations as files, in the order they apply: (file name, SQL). For tests that apply some of
/// them by hand (the CRM's own schema first, the product later) or read one's text.
pub fn migration_files() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let sql = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, sql)
        })
        .collect()
}

/// The SQLSTATE a statement failed with; `None` when it succeeded or failed outside the database.
pub fn sqlstate<T>(result: &Result<T, sqlx::Error>) -> Option<String> {
    let error = result.as_ref().err()?;
    Some(error.as_database_error()?.code()?.into_owned())
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
    let cache = shared::store::RedisCache::new(&TestEnv::new().redis()).expect("redis config");
    cache
        .unlink_matching(&format!("{prefix}*"))
        .await
        .expect("cleanup");
}

/// The test cluster (`make test-rust` starts it on 7000-7002).
pub fn cluster_config() -> RedisConfig {
    RedisConfig {
        url: std::env::var("TEST_REDIS_CLUSTER_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:7000".to_owned())
            .into(),
        cluster: true,
        ..TestEnv::new().redis()
    }
}

/// The TLS-only test server (`make test-rust` starts it on 6390) and the CA that signed its
/// certificate (`scripts/services.sh` keeps it in `~/.cache/dashboard-cache/services/tls`).
pub fn tls_config() -> RedisConfig {
    let ca = std::env::var("TEST_REDIS_TLS_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/dashboard-cache/services/tls/ca.crt")
        });
    RedisConfig {
        url: std::env::var("TEST_REDIS_TLS_URL")
            .unwrap_or_else(|_| "rediss://localhost:6390".to_owned())
            .into(),
        ca_file: Some(ca),
        ..TestEnv::new().redis()
    }
}
