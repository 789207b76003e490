//! Supabase-, Cognito- and Auth0-shaped tokens end to end through the handler, each configured only
//! through the `JWT_*` variables the README shows, keys and tokens minted by PyJWT/cryptography and
//! served by a local IdP. Each caller reads only its own tenant.

use dashboard_bundle::{config::Config, route as handle, State};
use lambda_http::Body;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::idp::{self as idp_testing, mint, now, LocalIdp, Minted};
use test_support::{self as testing, event, request, with_query, with_token, TestEnv};
use uuid::Uuid;

struct Reply {
    status: u16,
    body: Value,
    text: String,
}

struct Fixture {
    state: State,
    pool: PgPool,
    acme: Uuid,
    globex: Uuid,
}

impl Fixture {
    async fn new(pool: PgPool, env: &[(&str, &str)]) -> Self {
        let acme = testing::insert_tenant(&pool, "acme").await;
        let globex = testing::insert_tenant(&pool, "globex").await;
        sqlx::query("INSERT INTO leads (tenant_id) VALUES ($1), ($1), ($2)")
            .bind(acme)
            .bind(globex)
            .execute(&pool)
            .await
            .unwrap();
        let test_env = TestEnv::new();
        let mut config = Config::from_env(&test_env.as_env()).expect("test config");
        config.auth = idp_testing::config(env);
        Self {
            state: crate::app::state_with(config, test_env.database(&pool), Default::default()),
            pool,
            acme,
            globex,
        }
    }

    async fn get(&self, token: &str, query: &str) -> Reply {
        let ev = with_query(with_token(event("dashboard-bundle.json"), Some(token)), query);
        let response = handle(&self.state, request(&ev))
            .await
            .expect("handlers never return Err");
        let text = match response.body() {
            Body::Text(t) => t.clone(),
            other => panic!("unexpected body {other:?}"),
        };
        Reply {
            status: response.status().as_u16(),
            body: serde_json::from_str(&text).expect("JSON body"),
            text,
        }
    }

    /// `acme_token` reads acme (2 leads) and is refused globex; `globex_token` the reverse (1 lead).
    async fn assert_each_reads_only_its_tenant(&self, acme_token: &str, globex_token: &str) {
        for (token, own, other, leads) in [
            (acme_token, self.acme, self.globex, 2),
            (globex_token, self.globex, self.acme, 1),
        ] {
            let mine = self.get(token, "").await;
            assert_eq!(mine.status, 200, "{}", mine.text);
            assert_eq!(mine.body["data"]["meta"]["tenant_id"], own.to_string());
            assert_eq!(mine.body["data"]["stats"]["totalLeads"], leads);
            let theirs = self.get(token, &format!("tenant_id={other}")).await;
            assert_eq!(theirs.status, 403, "{}", theirs.text);
        }
    }

    async fn cleanup(self) {
        testing::cleanup_prefix(self.state.config.keys.prefix()).await;
        drop(self.pool);
    }
}

fn tokens(keys: Value, tokens: Vec<Value>) -> Minted {
    mint(&json!({"keys": keys, "tokens": tokens}))
}

#[sqlx::test(migrations = "../../migrations")]
async fn supabase_tokens_read_their_own_tenant(pool: PgPool) {
    // Supabase: ES256 keys at {project}/auth/v1/.well-known/jwks.json, `role: authenticated`,
    // `aud: authenticated`, the tenant in `app_metadata` (which only the service role can write).
    let iss = "https://project-ref.supabase.co/auth/v1";
    let idp = LocalIdp::start(json!({"keys": []})).await;
    let url = idp.jwks_url();
    let f = Fixture::new(
        pool,
        &[
            ("JWT_JWKS_URL", &url),
            ("JWT_ISSUER", iss),
            ("JWT_AUDIENCE", "authenticated"),
            ("JWT_TENANT_CLAIM", "/app_metadata/tenant_id"),
            ("JWT_ROLE_MAP", "authenticated=employee"),
        ],
    )
    .await;
    let supabase = |name: &str, tenant: Uuid| {
        json!({"name": name, "alg": "ES256", "key": "ec", "claims": {
            "iss": iss, "aud": "authenticated", "sub": Uuid::new_v4().to_string(), "role": "authenticated",
            "email": "ada@example.com", "app_metadata": {"provider": "email", "tenant_id": tenant.to_string()},
            "user_metadata": {}, "iat": now(), "exp": now() + 3600, "session_id": Uuid::new_v4().to_string(),
        }})
    };
    let m = tokens(
        json!([{"name": "ec", "type": "EC", "kid": "supabase-ec-1", "jwk": {"alg": "ES256", "use": "sig"}}]),
        vec![supabase("acme", f.acme), supabase("globex", f.globex)],
    );
    idp.set_jwks(m.jwks(&["ec"]));
    f.assert_each_reads_only_its_tenant(m.token("acme"), m.token("globex"))
        .await;
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn cognito_id_and_access_tokens_read_their_own_tenant(pool: PgPool) {
    // Cognito: RS256, iss = the user pool URL (discovery), groups in `cognito:groups`, the tenant as
    // `custom:tenant_id`; access tokens carry `client_id` instead of `aud`.
    let idp = LocalIdp::start(json!({"keys": []})).await;
    let iss = idp.issuer();
    let client_id = "5m3clientid0123456789abcd";
    let f = Fixture::new(
        pool,
        &[
            ("JWT_ISSUER", &iss),
            ("JWT_AUDIENCE", client_id),
            ("JWT_TENANT_CLAIM", "custom:tenant_id"),
            ("JWT_ROLE_CLAIM", "cognito:groups"),
            ("JWT_ROLE_MAP", "crm-admins=admin,crm-staff=employee"),
        ],
    )
    .await;
    let id_token = |name: &str, tenant: Uuid, groups: Value| {
        json!({"name": name, "alg": "RS256", "key": "rsa", "claims": {
            "sub": Uuid::new_v4().to_string(), "iss": iss, "aud": client_id, "token_use": "id",
            "cognito:username": "ada", "cognito:groups": groups, "custom:tenant_id": tenant.to_string(),
            "auth_time": now(), "iat": now(), "exp": now() + 3600,
        }})
    };
    let access_token = |name: &str, tenant: Uuid| {
        json!({"name": name, "alg": "RS256", "key": "rsa", "claims": {
            "sub": Uuid::new_v4().to_string(), "iss": iss, "client_id": client_id, "token_use": "access",
            "scope": "aws.cognito.signin.user.admin", "username": "bob", "cognito:groups": ["crm-staff"],
            "custom:tenant_id": tenant.to_string(), "auth_time": now(), "iat": now(), "exp": now() + 3600,
        }})
    };
    let m = tokens(
        json!([{"name": "rsa", "type": "RSA", "kid": "cognito-rsa-1", "jwk": {"alg": "RS256", "use": "sig"}}]),
        vec![
            id_token("id-acme", f.acme, json!(["eu-users", "crm-admins"])),
            id_token("id-globex", f.globex, json!(["crm-staff"])),
            id_token("id-no-crm-group", f.acme, json!(["eu-users"])),
            access_token("access-acme", f.acme),
            access_token("access-globex", f.globex),
        ],
    );
    idp.set_jwks(m.jwks(&["rsa"]));
    f.assert_each_reads_only_its_tenant(m.token("id-acme"), m.token("id-globex"))
        .await;
    f.assert_each_reads_only_its_tenant(m.token("access-acme"), m.token("access-globex"))
        .await;
    let refused = f.get(m.token("id-no-crm-group"), "").await;
    assert_eq!(
        refused.status, 403,
        "a genuine token without a mapped group: {}",
        refused.text
    );
    assert_eq!(refused.body["error"], "forbidden");
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn auth0_tokens_with_namespaced_claims_read_their_own_tenant(pool: PgPool) {
    // Auth0: RS256, iss with a trailing slash, `aud` a list (API + userinfo), namespaced custom claims.
    let idp = LocalIdp::start(json!({"keys": []})).await;
    let url = idp.jwks_url();
    let iss = "https://crm-tenant.eu.auth0.com/";
    let api = "https://crm.example.com/api";
    let f = Fixture::new(
        pool,
        &[
            ("JWT_JWKS_URL", &url),
            ("JWT_ISSUER", iss),
            ("JWT_AUDIENCE", api),
            ("JWT_TENANT_CLAIM", "https://crm.example.com/tenant_id"),
            ("JWT_ROLE_CLAIM", "https://crm.example.com/roles"),
            ("JWT_ROLE_MAP", "CRM Manager=manager,CRM Admin=admin"),
            // Auth0's `sub` is not a UUID: the CRM's employee id is a claim of its own.
            ("JWT_EMPLOYEE_CLAIM", "https://crm.example.com/employee_id"),
        ],
    )
    .await;
    let auth0 = |name: &str, tenant: Uuid, roles: Value| {
        json!({"name": name, "alg": "RS256", "key": "rsa", "claims": {
            "iss": iss, "sub": "auth0|65f0c0ffee", "aud": [api, "https://crm-tenant.eu.auth0.com/userinfo"],
            "azp": "spa-client", "scope": "openid profile", "iat": now(), "exp": now() + 86400,
            "https://crm.example.com/tenant_id": tenant.to_string(), "https://crm.example.com/roles": roles,
            "https://crm.example.com/employee_id": Uuid::new_v4().to_string(),
        }})
    };
    let m = tokens(
        json!([{"name": "rsa", "type": "RSA", "kid": "auth0-key-1"}]),
        vec![
            auth0("acme", f.acme, json!(["CRM Manager"])),
            auth0("globex", f.globex, json!(["CRM Admin", "CRM Manager"])),
        ],
    );
    idp.set_jwks(m.jwks(&["rsa"]));
    f.assert_each_reads_only_its_tenant(m.token("acme"), m.token("globex"))
        .await;
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn refused_tokens_are_401_json_that_never_echo_the_token(pool: PgPool) {
    let idp = LocalIdp::start(json!({"keys": []})).await;
    let url = idp.jwks_url();
    let f = Fixture::new(pool, &[("JWT_JWKS_URL", &url), ("JWT_AUDIENCE", "crm")]).await;
    let claims = |aud: &str, exp: i64| json!({"sub": "mallory", "aud": aud, "role": "superadmin", "iat": now(), "exp": exp});
    let m = tokens(
        json!([{"name": "rsa", "type": "RSA", "kid": "k1"}, {"name": "other", "type": "RSA", "kid": "k1"}]),
        vec![
            json!({"name": "forged", "alg": "RS256", "key": "other", "claims": claims("crm", now() + 600)}),
            json!({"name": "expired", "alg": "RS256", "key": "rsa", "claims": claims("crm", now() - 600)}),
            json!({"name": "wrong-aud", "alg": "RS256", "key": "rsa", "claims": claims("billing", now() + 600)}),
            json!({"name": "none", "alg": "none", "claims": claims("crm", now() + 600)}),
            json!({"name": "jku", "alg": "RS256", "key": "rsa", "headers": {"jku": "http://127.0.0.1:1/k"},
                   "claims": claims("crm", now() + 600)}),
        ],
    );
    idp.set_jwks(m.jwks(&["rsa"]));
    for name in ["forged", "expired", "wrong-aud", "none", "jku"] {
        let token = m.token(name);
        let r = f.get(token, "").await;
        assert_eq!(r.status, 401, "{name}: {}", r.text);
        assert_eq!(r.body["status"], "error");
        assert_eq!(r.body["error"], "unauthorized");
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!r.text.contains(part), "{name}: the response echoes the token");
        }
    }
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn unreachable_idp_at_cold_start_is_a_503_json(pool: PgPool) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{closed}/jwks.json");
    let f = Fixture::new(pool, &[("JWT_JWKS_URL", &url), ("JWT_AUDIENCE", "crm")]).await;
    let m = tokens(
        json!([{"name": "rsa", "type": "RSA", "kid": "k1"}]),
        vec![json!({"name": "t", "alg": "RS256", "key": "rsa",
                    "claims": {"sub": "u", "role": "admin", "tenant_id": f.acme.to_string(), "exp": now() + 600}})],
    );
    let r = f.get(m.token("t"), "").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["status"], "error");
    assert_eq!(r.body["error"], "auth_unavailable");
    f.cleanup().await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn an_idp_superadmin_claim_needs_an_explicit_role_map_entry(pool: PgPool) {
    let idp = LocalIdp::start(json!({"keys": []})).await;
    let url = idp.jwks_url();
    let f = Fixture::new(
        pool,
        &[
            ("JWT_JWKS_URL", &url),
            ("JWT_AUDIENCE", "crm"),
            ("JWT_ROLE_MAP", "crm-root=superadmin"),
        ],
    )
    .await;
    let claims =
        |role: &str| json!({"sub": "u", "aud": "crm", "role": role, "iat": now(), "exp": now() + 600});
    let m = tokens(
        json!([{"name": "rsa", "type": "RSA", "kid": "k1"}]),
        vec![
            json!({"name": "superadmin", "alg": "RS256", "key": "rsa", "claims": claims("superadmin")}),
            json!({"name": "crm-root", "alg": "RS256", "key": "rsa", "claims": claims("crm-root")}),
        ],
    );
    idp.set_jwks(m.jwks(&["rsa"]));
    // The IdP's own "superadmin" (any IdP administrator may name a group so) is not ours...
    let r = f
        .get(m.token("superadmin"), &format!("tenant_id={}", f.acme))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"], "forbidden");
    // ...the value the role map names is.
    let r = f
        .get(m.token("crm-root"), &format!("tenant_id={}", f.globex))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["meta"]["tenant_id"], f.globex.to_string());
    f.cleanup().await;
}

#[tokio::test]
async fn a_jwks_without_an_audience_stops_the_cold_start() {
    let idp = LocalIdp::start(json!({"keys": []})).await;
    for (name, value) in [("JWT_JWKS_URL", idp.jwks_url()), ("JWT_ISSUER", idp.issuer())] {
        let env = TestEnv::new().set("JWT_SECRET", "").set(name, value);
        let err = Config::from_env(&env.as_env())
            .map(|_| "started")
            .unwrap_err()
            .to_string();
        assert!(err.contains("JWT_AUDIENCE"), "{name}: {err}");
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn without_a_jwt_secret_hs256_is_off(pool: PgPool) {
    // JwtSecretArn left empty: no JWT_SECRET, so a token signed with any secret is refused.
    let idp = LocalIdp::start(json!({"keys": []})).await;
    let env = TestEnv::new()
        .set("JWT_SECRET", "")
        .set("JWT_JWKS_URL", idp.jwks_url())
        .set("JWT_AUDIENCE", "crm");
    let config = Config::from_env(&env.as_env()).expect("starts without JWT_SECRET");
    assert!(config.auth.secrets.is_empty());
    let state = crate::app::state_with(config, env.database(&pool), Default::default());
    let forged = testing::token(shared::auth::Role::Superadmin, None);
    let ev = with_token(event("dashboard-bundle.json"), Some(&forged));
    let response = handle(&state, request(&ev))
        .await
        .expect("handlers never return Err");
    assert_eq!(response.status().as_u16(), 401);
    testing::cleanup_prefix(state.config.keys.prefix()).await;
}
