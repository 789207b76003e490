//! The authenticator against a local IdP, with keys and tokens minted by PyJWT/cryptography: accepted
//! key types, key rotation, the IdP going away, and every refusal of issue 14.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::auth::{AuthConfig, AuthError, Authenticator, Role};
use test_support::idp::{bearer, config, mint, now, LocalIdp, Minted};
use uuid::Uuid;

const ISS: &str = "https://idp.example/";
const AUD: &str = "crm-api";

fn claims(extra: Value) -> Value {
    let mut c = json!({
        "sub": "user-1", "iss": ISS, "aud": AUD, "role": "admin",
        "tenant_id": Uuid::nil().to_string(), "iat": now(), "exp": now() + 600,
    });
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    c
}

fn keys() -> Value {
    json!([
        {"name": "rsa", "type": "RSA", "kid": "rsa-1", "jwk": {"alg": "RS256", "use": "sig"}},
        {"name": "ec", "type": "EC", "kid": "ec-1"},
        {"name": "ed", "type": "OKP", "kid": "ed-1"},
        {"name": "rsa2", "type": "RSA", "kid": "rsa-2"},
        {"name": "evil", "type": "RSA", "kid": "rsa-1"},
    ])
}

fn token(name: &str, alg: &str, key: &str, extra: Value) -> Value {
    json!({"name": name, "alg": alg, "key": key, "claims": claims(extra)})
}

/// An authenticator over a local IdP publishing `published`, with iss/aud checks.
async fn setup(minted: &Minted, published: &[&str], extra_env: &[(&str, &str)]) -> (LocalIdp, Authenticator) {
    let idp = LocalIdp::start(minted.jwks(published)).await;
    let url = idp.jwks_url();
    let mut env = vec![
        ("JWT_JWKS_URL", url.as_str()),
        ("JWT_ISSUER", ISS),
        ("JWT_AUDIENCE", AUD),
    ];
    env.extend_from_slice(extra_env);
    (idp, Authenticator::new(config(&env)))
}

async fn check(auth: &Authenticator, token: &str) -> Result<Role, AuthError> {
    auth.authenticate(&bearer(token)).await.map(|c| c.role)
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_from_the_jwks_are_accepted() {
    let m = mint(&json!({"keys": keys(), "tokens": [
        token("rs", "RS256", "rsa", json!({})),
        token("es", "ES256", "ec", json!({})),
        token("ed", "EdDSA", "ed", json!({})),
    ]}));
    let (idp, auth) = setup(&m, &["rsa", "ec", "ed"], &[]).await;
    for name in ["rs", "es", "ed"] {
        let claims = auth.authenticate(&bearer(m.token(name))).await;
        let claims = claims.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((claims.sub.as_str(), claims.role), ("user-1", Role::Admin));
        assert_eq!(claims.tenant_id, Some(Uuid::nil()));
    }
    assert_eq!(idp.jwks_requests(), 1, "keys are fetched once and cached");
}

#[tokio::test]
async fn a_key_added_while_running_is_picked_up_by_one_refetch() {
    let m = mint(&json!({"keys": keys(), "tokens": [
        token("old", "RS256", "rsa", json!({})),
        token("new", "RS256", "rsa2", json!({})),
    ]}));
    let (idp, auth) = setup(&m, &["rsa"], &[]).await;
    assert_eq!(check(&auth, m.token("old")).await, Ok(Role::Admin));
    idp.set_jwks(m.jwks(&["rsa", "rsa2"]));
    tokio::time::sleep(Duration::from_millis(250)).await; // past the re-fetch interval
    assert_eq!(check(&auth, m.token("new")).await, Ok(Role::Admin));
    assert_eq!(check(&auth, m.token("old")).await, Ok(Role::Admin));
    assert_eq!(idp.jwks_requests(), 2);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let forged: Vec<Value> = (0..20)
        .map(|i| {
            json!({"name": format!("t{i}"), "alg": "RS256", "key": "rsa2",
                   "headers": {"kid": format!("random-{i}")}, "claims": claims(json!({}))})
        })
        .collect();
    let m = mint(&json!({"keys": keys(), "tokens": forged}));
    let (idp, auth) = setup(&m, &["rsa"], &[]).await;
    for i in 0..20 {
        assert_eq!(
            check(&auth, m.token(&format!("t{i}"))).await,
            Err(AuthError::UnknownKey)
        );
    }
    assert_eq!(
        idp.jwks_requests(),
        1,
        "the first fetch; the rest are rate-limited"
    );
}

#[tokio::test]
async fn cached_keys_keep_working_when_the_idp_goes_down() {
    let m = mint(&json!({"keys": keys(), "tokens": [token("t", "ES256", "ec", json!({}))]}));
    let (mut idp, auth) = setup(&m, &["ec"], &[]).await;
    assert_eq!(check(&auth, m.token("t")).await, Ok(Role::Admin));
    idp.stop();
    assert_eq!(check(&auth, m.token("t")).await, Ok(Role::Admin));

    // Even when the keys are due for a refresh, a failed refresh keeps them.
    let (idp, _) = setup(&m, &["ec"], &[]).await;
    let mut cfg = config(&[
        ("JWT_JWKS_URL", &idp.jwks_url()),
        ("JWT_ISSUER", ISS),
        ("JWT_AUDIENCE", AUD),
    ]);
    cfg.max_key_age = Duration::from_millis(1);
    let auth = Authenticator::new(cfg);
    assert_eq!(check(&auth, m.token("t")).await, Ok(Role::Admin));
    idp.hang();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(check(&auth, m.token("t")).await, Ok(Role::Admin));
}

#[tokio::test]
async fn cold_start_without_reachable_keys_is_unavailable_quickly() {
    let m = mint(&json!({"keys": keys(), "tokens": [token("t", "RS256", "rsa", json!({}))]}));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let auth = Authenticator::new(config(&[
        ("JWT_JWKS_URL", &format!("http://127.0.0.1:{closed}/jwks.json")),
        ("JWT_AUDIENCE", AUD),
    ]));
    assert_eq!(check(&auth, m.token("t")).await, Err(AuthError::KeysUnavailable));

    let idp = LocalIdp::start(m.jwks(&["rsa"])).await;
    idp.hang();
    let auth = Authenticator::new(config(&[
        ("JWT_JWKS_URL", &idp.jwks_url()),
        ("JWT_AUDIENCE", AUD),
    ]));
    let started = Instant::now();
    assert_eq!(check(&auth, m.token("t")).await, Err(AuthError::KeysUnavailable));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the fetch timeout"
    );
    // Within the retry window the answer comes at once, without another fetch.
    let started = Instant::now();
    assert_eq!(check(&auth, m.token("t")).await, Err(AuthError::KeysUnavailable));
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn issuer_alone_finds_the_keys_through_discovery() {
    // The issuer (the IdP's URL) is known only once it listens; its keys are minted after.
    let idp = LocalIdp::start(json!({"keys": []})).await;
    let issuer = idp.issuer();
    let auth = Authenticator::new(config(&[("JWT_ISSUER", &issuer), ("JWT_AUDIENCE", AUD)]));
    let m2 = mint(&json!({"keys": keys(), "tokens": [token("t", "EdDSA", "ed", json!({"iss": issuer}))]}));
    idp.set_jwks(m2.jwks(&["ed"]));
    assert_eq!(check(&auth, m2.token("t")).await, Ok(Role::Admin));

    // A discovery document naming another issuer is not trusted.
    let other = LocalIdp::start(m2.jwks(&["ed"])).await;
    other.set_discovery_issuer("http://127.0.0.1:1");
    let auth = Authenticator::new(config(&[("JWT_ISSUER", &other.issuer()), ("JWT_AUDIENCE", AUD)]));
    assert_eq!(check(&auth, m2.token("t")).await, Err(AuthError::KeysUnavailable));
}

#[tokio::test]
async fn every_refusal_has_its_reason() {
    const SECRET: &str = "a-secret-the-idp-does-not-know-0123456789";
    let m = mint(&json!({"keys": keys(), "tokens": [
        {"name": "none", "alg": "none", "claims": claims(json!({}))},
        token("ps256", "PS256", "rsa2", json!({})),
        token("rs512_on_rs256_key", "RS512", "rsa", json!({})),
        {"name": "es_on_rsa_kid", "alg": "ES256", "key": "ec", "headers": {"kid": "rsa-1"}, "claims": claims(json!({}))},
        {"name": "hs256", "alg": "HS256", "secret": SECRET, "claims": claims(json!({}))},
        {"name": "rsa_pem_as_hmac", "alg": "HS256", "hmac_with_public_pem_of": "rsa", "claims": claims(json!({}))},
        {"name": "jku", "alg": "RS256", "key": "rsa", "headers": {"jku": "http://127.0.0.1:1/jwks.json"}, "claims": claims(json!({}))},
        {"name": "x5u", "alg": "RS256", "key": "rsa", "headers": {"x5u": "http://127.0.0.1:1/cert.pem"}, "claims": claims(json!({}))},
        {"name": "jwk", "alg": "RS256", "key": "evil", "headers": {"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}, "claims": claims(json!({}))},
        {"name": "unknown_kid", "alg": "RS256", "key": "rsa", "headers": {"kid": "nope"}, "claims": claims(json!({}))},
        token("forged_same_kid", "RS256", "evil", json!({})),
        token("expired", "RS256", "rsa", json!({"exp": now() - 120, "iat": now() - 720})),
        token("not_yet", "RS256", "rsa", json!({"nbf": now() + 600})),
        token("future_iat", "RS256", "rsa", json!({"iat": now() + 600})),
        token("wrong_iss", "RS256", "rsa", json!({"iss": "https://evil.example/"})),
        token("wrong_aud", "RS256", "rsa", json!({"aud": ["other-app"]})),
        token("no_role", "RS256", "rsa", json!({"role": null})),
        token("unmapped_role", "RS256", "rsa", json!({"role": "owner"})),
        token("bad_tenant", "RS256", "rsa", json!({"tenant_id": "acme"})),
        token("no_sub", "RS256", "rsa", json!({"sub": null})),
    ]}));
    let (_idp, auth) = setup(&m, &["rsa", "ec"], &[]).await;
    let cases = [
        ("none", AuthError::Algorithm),
        ("ps256", AuthError::Algorithm),
        ("rs512_on_rs256_key", AuthError::Algorithm),
        ("es_on_rsa_kid", AuthError::Algorithm),
        ("hs256", AuthError::Algorithm),
        ("rsa_pem_as_hmac", AuthError::Algorithm),
        ("jku", AuthError::KeyHeader),
        ("x5u", AuthError::KeyHeader),
        ("jwk", AuthError::KeyHeader),
        ("unknown_kid", AuthError::UnknownKey),
        ("forged_same_kid", AuthError::Invalid),
        ("expired", AuthError::Expired),
        ("not_yet", AuthError::NotYetValid),
        ("future_iat", AuthError::NotYetValid),
        ("wrong_iss", AuthError::WrongIssuer),
        ("wrong_aud", AuthError::WrongAudience),
        ("no_role", AuthError::NoRole),
        ("unmapped_role", AuthError::UnmappedRole),
        ("bad_tenant", AuthError::BadClaim("tenant")),
        ("no_sub", AuthError::BadClaim("sub")),
    ];
    for (name, expected) in cases {
        assert_eq!(check(&auth, m.token(name)).await, Err(expected), "{name}");
    }
    // RS512 is refused even when allowed, because the key says RS256.
    let (_idp2, auth) = setup(&m, &["rsa"], &[("JWT_ALGORITHMS", "RS256,RS512")]).await;
    assert_eq!(
        check(&auth, m.token("rs512_on_rs256_key")).await,
        Err(AuthError::Algorithm)
    );
    // With a secret configured too, the PEM-as-HMAC token reaches HS256 and fails the signature.
    let (_idp3, auth) = setup(&m, &["rsa"], &[("JWT_SECRET", SECRET)]).await;
    assert_eq!(
        check(&auth, m.token("rsa_pem_as_hmac")).await,
        Err(AuthError::Invalid)
    );
    assert_eq!(
        check(&auth, m.token("hs256")).await,
        Ok(Role::Admin),
        "the secret route itself works"
    );
}

#[tokio::test]
async fn refusal_messages_never_echo_the_token() {
    let m = mint(
        &json!({"keys": keys(), "tokens": [token("t", "RS256", "evil", json!({"sub": "s3cr3t-subject"}))]}),
    );
    let (_idp, auth) = setup(&m, &["rsa"], &[]).await;
    let err = auth.authenticate(&bearer(m.token("t"))).await.unwrap_err();
    let message = err.to_string();
    assert!(
        !message.contains("s3cr3t") && !message.contains("eyJ"),
        "{message}"
    );
}

#[tokio::test]
async fn an_idp_value_becomes_superadmin_only_through_an_explicit_role_map_entry() {
    const SECRET: &str = "the-deployments-own-secret-0123456789";
    let m = mint(&json!({"keys": keys(), "tokens": [
        token("idp_superadmin", "RS256", "rsa", json!({"role": "superadmin"})),
        token("idp_superadmin_in_a_list", "RS256", "rsa", json!({"role": ["employee", "superadmin"]})),
        token("idp_root_group", "RS256", "rsa", json!({"role": ["crm-root"]})),
        {"name": "hs256_superadmin", "alg": "HS256", "secret": SECRET,
         "claims": claims(json!({"role": "superadmin"}))},
    ]}));
    // No entry: an IdP's "superadmin" (a group any IdP administrator may create) grants nothing.
    let (_idp, auth) = setup(&m, &["rsa"], &[("JWT_SECRET", SECRET)]).await;
    assert_eq!(
        check(&auth, m.token("idp_superadmin")).await,
        Err(AuthError::UnmappedRole)
    );
    assert_eq!(
        check(&auth, m.token("idp_superadmin_in_a_list")).await,
        Ok(Role::Employee)
    );
    assert_eq!(
        check(&auth, m.token("idp_root_group")).await,
        Err(AuthError::UnmappedRole)
    );
    // The deployment's own HS256 tokens (`make dev`'s) keep their superadmin.
    assert_eq!(
        check(&auth, m.token("hs256_superadmin")).await,
        Ok(Role::Superadmin)
    );
    // An explicit entry maps it, whatever the IdP calls the group.
    let (_idp2, auth) = setup(
        &m,
        &["rsa"],
        &[("JWT_ROLE_MAP", "crm-root=superadmin, superadmin=superadmin")],
    )
    .await;
    for name in ["idp_superadmin", "idp_superadmin_in_a_list", "idp_root_group"] {
        assert_eq!(check(&auth, m.token(name)).await, Ok(Role::Superadmin), "{name}");
    }
}

#[tokio::test]
async fn a_jwks_without_an_audience_refuses_to_start() {
    // What an IdP signs for any of its applications would otherwise be accepted here.
    let m = mint(&json!({"keys": keys(), "tokens": [
        token("other_app", "RS256", "rsa", json!({"aud": "billing-app"})),
    ]}));
    let idp = LocalIdp::start(m.jwks(&["rsa"])).await;
    for jwks in [("JWT_JWKS_URL", idp.jwks_url()), ("JWT_ISSUER", idp.issuer())] {
        let vars = [(jwks.0, jwks.1.clone())];
        let err = AuthConfig::from_env(&shared::env::Env::new(|name| {
            vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        }))
        .map(|_| "started")
        .unwrap_err()
        .to_string();
        assert!(err.contains("JWT_AUDIENCE"), "{}: {err}", jwks.0);
    }
    // With one, the other application's token is refused.
    let (_idp, auth) = setup(&m, &["rsa"], &[]).await;
    assert_eq!(
        check(&auth, m.token("other_app")).await,
        Err(AuthError::WrongAudience)
    );
}
