//! Abuse table: hostile or malformed requests against both HTTP functions. Each gets the right 4xx
//! with a JSON message, none a 5xx; afterwards no cached bundle was read, written or deleted.

use std::collections::BTreeSet;
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::Value;
use shared::auth::{issue_token, Claims, Role};
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::serving::Read;
use shared::store::keys::Keys;
use sqlx::PgPool;
use test_support::{self as testing, event, request, with_body, with_query, with_token, TestEnv};
use uuid::Uuid;

use crate::app::{clear_state, dashboard_state, raw_redis};

#[derive(Clone, Copy)]
enum Function {
    Dashboard,
    Clear,
}

enum Auth {
    None,
    Header(&'static str),
    Token(String),
}

struct Case {
    name: &'static str,
    function: Function,
    method: &'static str,
    path: Option<&'static str>,
    query: String,
    body: Option<String>,
    content_type: Option<&'static str>,
    auth: Auth,
    expect: u16,
}

fn case(name: &'static str, function: Function, auth: Auth, expect: u16) -> Case {
    let (method, body) = match function {
        Function::Dashboard => ("GET", None),
        Function::Clear => ("POST", Some("{}".to_owned())),
    };
    Case {
        name,
        function,
        method,
        path: None,
        query: String::new(),
        body,
        content_type: None,
        auth,
        expect,
    }
}

impl Case {
    fn query(mut self, query: impl Into<String>) -> Self {
        self.query = query.into();
        self
    }
    fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }
    fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = Some(content_type);
        self
    }
    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    fn path(mut self, path: &'static str) -> Self {
        self.path = Some(path);
        self
    }

    fn event(&self) -> Value {
        let file = match self.function {
            Function::Dashboard => "dashboard-bundle.json",
            Function::Clear => "clear-cache-all.json",
        };
        let mut ev = with_body(
            with_query(with_token(event(file), None), &self.query),
            self.body.as_deref(),
        );
        ev["requestContext"]["http"]["method"] = self.method.into();
        if let Some(path) = self.path {
            ev["rawPath"] = path.into();
            ev["requestContext"]["http"]["path"] = path.into();
        }
        let headers = ev["headers"].as_object_mut().unwrap();
        match &self.auth {
            Auth::None => {}
            Auth::Header(value) => {
                headers.insert("authorization".into(), (*value).into());
            }
            Auth::Token(token) => {
                headers.insert("authorization".into(), format!("Bearer {token}").into());
            }
        }
        match self.content_type {
            Some(ct) => headers.insert("content-type".into(), ct.into()),
            None => headers.remove("content-type"),
        };
        ev
    }
}

fn token(role: Role, tenant: Option<Uuid>) -> Auth {
    Auth::Token(testing::token(role, tenant))
}

fn signed(secret: &str, role: Role, tenant: Option<Uuid>, exp: i64) -> Auth {
    Auth::Token(
        issue_token(
            secret,
            &Claims {
                sub: "mallory".into(),
                role,
                tenant_id: tenant,
                exp,
                employee_id: None,
            },
        )
        .expect("test token"),
    )
}

/// `{"alg":"none"}` with a superadmin payload and no signature.
fn alg_none() -> Auth {
    let claims = serde_json::json!({"sub": "mallory", "role": "superadmin", "exp": 4_102_444_800i64});
    let b64 = |v: &Value| {
        use std::fmt::Write;
        // base64url without padding, written out to avoid a dependency for one test.
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = v.to_string().into_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                let _ = out.write_char(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    };
    Auth::Token(format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    ))
}

fn table(a: Uuid, b: Uuid) -> Vec<Case> {
    use Function::{Clear, Dashboard};
    let admin_a = || token(Role::Admin, Some(a));
    let employee_a = || token(Role::Employee, Some(a));
    let root = || token(Role::Superadmin, None);
    let expired = || signed(testing::TEST_JWT_SECRET, Role::Superadmin, None, 1_000);
    let wrong_secret = || {
        signed(
            "another-secret-another-secret-another-secret",
            Role::Superadmin,
            None,
            4_102_444_800,
        )
    };
    let a_str = a.to_string();
    vec![
        // Dashboard: tenant ids that are not UUIDs, or that carry glob characters.
        case("glob star id", Dashboard, admin_a(), 400).query("tenant_id=*"),
        case("glob question id", Dashboard, admin_a(), 400).query("tenant_id=%3F"),
        case("glob bracket id", Dashboard, admin_a(), 400).query("tenant_id=%5Babc%5D"),
        case("backslash id", Dashboard, admin_a(), 400).query("tenant_id=%5C"),
        case("uuid with star", Dashboard, admin_a(), 400).query(format!("tenant_id={}*", &a_str[..35])),
        case("uuid plus glob", Dashboard, root(), 400).query(format!("tenant_id={a_str}*")),
        case("very long id", Dashboard, admin_a(), 400).query(format!("tenant_id={}", "a".repeat(5_000))),
        case("unicode id", Dashboard, admin_a(), 400).query(format!("tenant_id={}%C3%A9", &a_str[..35])),
        case("braced uuid", Dashboard, admin_a(), 400).query(format!("tenant_id=%7B{a_str}%7D")),
        case("empty id", Dashboard, admin_a(), 400).query("tenant_id="),
        case("repeated id", Dashboard, admin_a(), 400).query(format!("tenant_id={a_str}&tenant_id={a_str}")),
        case("unknown parameter", Dashboard, admin_a(), 400).query("debug=true"),
        case("nul parameter", Dashboard, admin_a(), 400).query("%00=1"),
        case("bad boolean", Dashboard, admin_a(), 400).query("include_test_data=maybe"),
        case("numeric boolean", Dashboard, admin_a(), 400).query("bust_cache=1"),
        case("empty boolean", Dashboard, admin_a(), 400).query("include_test_data="),
        case("repeated boolean", Dashboard, admin_a(), 400).query("bust_cache=true&bust_cache=true"),
        // Dashboard: tokens.
        case("no token", Dashboard, Auth::None, 401),
        case("empty bearer", Dashboard, Auth::Header("Bearer "), 401),
        case(
            "basic auth",
            Dashboard,
            Auth::Header("Basic YWRtaW46YWRtaW4="),
            401,
        ),
        case("garbage token", Dashboard, Auth::Header("Bearer not.a.jwt"), 401),
        case("expired token", Dashboard, expired(), 401),
        case("alg none", Dashboard, alg_none(), 401),
        case("wrong secret", Dashboard, wrong_secret(), 401),
        // Dashboard: scope.
        case("tenant A reads B", Dashboard, admin_a(), 403).query(format!("tenant_id={b}")),
        case("employee A reads B", Dashboard, employee_a(), 403).query(format!("tenant_id={b}")),
        case("employee busts the cache", Dashboard, employee_a(), 403).query("bust_cache=true"),
        case("A reads B upper case", Dashboard, admin_a(), 403)
            .query(format!("tenant_id={}", b.to_string().to_uppercase())),
        case("token without tenant", Dashboard, token(Role::Manager, None), 403),
        case("POST to the bundle", Dashboard, admin_a(), 405).method("POST"),
        // CORS is API Gateway's: a preflight that reaches a function anyway is just another method.
        case("preflight to the bundle", Dashboard, Auth::None, 405).method("OPTIONS"),
        case("preflight to health", Dashboard, Auth::None, 405)
            .method("OPTIONS")
            .path("/api/system/health"),
        case("preflight to an unknown route", Dashboard, Auth::None, 404)
            .method("OPTIONS")
            .path("/api/reports/other"),
        case("PURGE the bundle", Dashboard, admin_a(), 405).method("PURGE"),
        case("unknown route", Dashboard, admin_a(), 404).path("/api/reports/../admin"),
        // Clear: tokens and roles.
        case("clear without token", Clear, Auth::None, 401),
        case("clear with garbage", Clear, Auth::Header("Bearer x.y.z"), 401),
        case("clear expired", Clear, expired(), 401),
        case("clear alg none", Clear, alg_none(), 401),
        case("clear wrong secret", Clear, wrong_secret(), 401),
        case("employee clears", Clear, employee_a(), 403),
        case("manager clears", Clear, token(Role::Manager, Some(a)), 403),
        case("admin clears B", Clear, admin_a(), 403).body(format!(r#"{{"tenant_id":"{b}"}}"#)),
        case("admin without tenant", Clear, token(Role::Admin, None), 403),
        case("admin asks global", Clear, admin_a(), 400).body(r#"{"scope":"all"}"#),
        // Clear: bodies.
        case("not json", Clear, root(), 400).body("tenant_id=*"),
        case("array body", Clear, root(), 400).body("[]"),
        case("null tenant", Clear, root(), 400).body(r#"{"tenant_id":null}"#),
        case("glob tenant", Clear, root(), 400).body(r#"{"tenant_id":"*"}"#),
        case("uuid-shaped glob", Clear, root(), 400).body(format!(r#"{{"tenant_id":"{}*"}}"#, &a_str[..35])),
        case("backslash tenant", Clear, root(), 400).body(r#"{"tenant_id":"\\"}"#),
        case("unicode tenant", Clear, root(), 400).body(format!(r#"{{"tenant_id":"{}é"}}"#, &a_str[..35])),
        case("numeric tenant", Clear, root(), 400).body(r#"{"tenant_id":7}"#),
        case("extra field", Clear, root(), 400).body(format!(r#"{{"tenant_id":"{a_str}","all":true}}"#)),
        case("deep nesting", Clear, root(), 400).body(format!("{}{}", "[".repeat(1_500), "]".repeat(1_500))),
        case("oversized body", Clear, root(), 413)
            .body(format!(r#"{{"tenant_id":"{}"}}"#, "a".repeat(20_000))),
        case("text/plain", Clear, root(), 415).content_type("text/plain"),
        case("multipart", Clear, root(), 415).content_type("multipart/form-data; boundary=x"),
        case("GET on clear", Clear, root(), 405).method("GET").body(""),
        case("preflight to clear", Clear, Auth::None, 405)
            .method("OPTIONS")
            .body(""),
        case("DELETE on clear", Clear, root(), 405).method("DELETE"),
    ]
}

async fn idle_seconds(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
}

async fn bundle_keys(conn: &mut redis::aio::MultiplexedConnection, of: &Keys) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut iter: redis::AsyncIter<String> = conn.scan_match(of.bundle_scan_pattern()).await.unwrap();
    while let Some(key) = iter.next_item().await {
        keys.insert(key.unwrap());
    }
    keys
}

#[sqlx::test(migrations = "../../migrations")]
async fn hostile_requests_get_4xx_and_touch_no_cached_bundle(pool: PgPool) {
    let a = testing::insert_tenant(&pool, "a").await;
    let b = testing::insert_tenant(&pool, "b").await;
    let env = TestEnv::new();
    let dash = dashboard_state(&env, &pool);
    let clear = clear_state(&env);
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(5);
    for tenant in [a, b] {
        for id in BundleId::both(Scope::Tenant(tenant)) {
            dash.bundles
                .get_bundle(id, Read::Cached, deadline())
                .await
                .unwrap();
        }
    }
    let global = BundleId::new(Scope::Global, true);
    dash.bundles
        .get_bundle(global, Read::Cached, deadline())
        .await
        .unwrap();
    let keys = dash.bundles.keys().clone();
    let mut conn = raw_redis(&env).await;
    let planted = bundle_keys(&mut conn, &keys).await;
    assert_eq!(planted.len(), 5);
    // Let the planted keys age, so that a read during the table would show as a reset idle time.
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let cases = table(a, b);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let req = request(&case.event());
        let response = match case.function {
            Function::Dashboard => dashboard_bundle::route(&dash, req).await,
            Function::Clear => clear_cache::route(&clear, req).await,
        }
        .expect("handlers never return Err");
        let status = response.status().as_u16();
        let body: Result<Value, _> = serde_json::from_slice(response.body());
        let has_message = body
            .as_ref()
            .is_ok_and(|b| b["message"].as_str().is_some_and(|m| !m.is_empty()));
        if status != case.expect || !has_message {
            failures.push(format!(
                "{}: got {status}, want {} ({:?})",
                case.name, case.expect, body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    assert_eq!(
        bundle_keys(&mut conn, &keys).await,
        planted,
        "no bundle written or deleted"
    );
    for key in &planted {
        assert!(idle_seconds(&mut conn, key).await >= 2, "{key} was read");
    }
    testing::cleanup_prefix(&env.prefix()).await;
}
