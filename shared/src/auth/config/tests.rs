//! Reading the `JWT_*` settings: what is accepted, what stops a cold start, how roles map.

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const AUD: (&str, &str) = ("JWT_AUDIENCE", "crm-api");

fn read(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    AuthConfig::from_env(&Env::new(move |name| vars.get(name).cloned()))
}

#[test]
fn nothing_configured_names_the_three_routes() {
    let err = read(&[]).unwrap_err().to_string();
    assert!(
        err.contains("JWT_JWKS_URL") && err.contains("JWT_SECRET"),
        "{err}"
    );
}

#[test]
fn secret_alone_accepts_only_hs256() {
    let config = read(&[("JWT_SECRET", SECRET)]).unwrap();
    assert_eq!(config.algorithms, vec![Algorithm::HS256]);
    assert!(config.jwks.is_none());
    assert!(!format!("{config:?}").contains(SECRET));
}

#[test]
fn issuer_alone_uses_discovery_and_public_key_algorithms() {
    let config = read(&[
        ("JWT_ISSUER", "https://tenant.example/"),
        ("JWT_AUDIENCE", "a, b"),
    ])
    .unwrap();
    assert_eq!(
        config.jwks,
        Some(JwksSource::Discovery {
            issuer: "https://tenant.example/".into()
        })
    );
    assert_eq!(config.algorithms, DEFAULT_JWKS_ALGORITHMS.to_vec());
    assert_eq!(config.audiences, vec!["a", "b"]);
    assert_eq!(
        discovery_url("https://tenant.example/"),
        "https://tenant.example/.well-known/openid-configuration"
    );
}

#[test]
fn plain_http_is_only_for_loopback() {
    for ok in [
        "http://127.0.0.1:9/jwks",
        "http://localhost/jwks",
        "http://[::1]:8/k",
        "https://idp.example/k",
    ] {
        assert!(read(&[("JWT_JWKS_URL", ok), AUD]).is_ok(), "{ok}");
    }
    for bad in [
        "http://idp.example/jwks",
        "ftp://127.0.0.1/x",
        "not a url",
        "http://10.0.0.1/k",
    ] {
        let err = read(&[("JWT_JWKS_URL", bad), AUD]).unwrap_err().to_string();
        assert!(err.contains("JWT_JWKS_URL"), "{bad}: {err}");
    }
    let err = read(&[("JWT_ISSUER", "http://idp.example"), AUD]).unwrap_err();
    assert!(err.to_string().contains("JWT_ISSUER"), "{err}");
}

#[test]
fn algorithms_must_agree_with_the_routes() {
    let url = ("JWT_JWKS_URL", "https://idp.example/jwks");
    assert!(read(&[url, AUD, ("JWT_ALGORITHMS", "none")]).is_err());
    let err = read(&[url, AUD, ("JWT_ALGORITHMS", "HS256")]).unwrap_err();
    assert!(err.to_string().contains("HS256 needs JWT_SECRET"), "{err}");
    assert!(read(&[url, AUD, ("JWT_SECRET", SECRET), ("JWT_ALGORITHMS", "RS256")]).is_err());
    let both = read(&[
        url,
        AUD,
        ("JWT_SECRET", SECRET),
        ("JWT_ALGORITHMS", "RS256,HS256"),
    ])
    .unwrap();
    assert_eq!(both.algorithms, vec![Algorithm::RS256, Algorithm::HS256]);
    // Only HS256 listed: the issuer is an `iss` check, not a discovery URL.
    let hs = read(&[
        ("JWT_ISSUER", "https://x.example/auth/v1"),
        ("JWT_SECRET", SECRET),
        ("JWT_ALGORITHMS", "HS256"),
    ])
    .unwrap();
    assert!(hs.jwks.is_none());
}

#[test]
fn secrets_are_checked_and_previous_needs_current() {
    assert!(read(&[("JWT_SECRET", "short")]).is_err());
    assert!(read(&[("JWT_SECRET_PREVIOUS", SECRET)]).is_err());
    let config = read(&[("JWT_SECRET", SECRET), ("JWT_SECRET_PREVIOUS", &SECRET.repeat(2))]).unwrap();
    assert_eq!(config.secrets.len(), 2);
}

#[test]
fn claim_paths_and_role_map_parse() {
    let config = read(&[
        ("JWT_SECRET", SECRET),
        ("JWT_TENANT_CLAIM", "/app_metadata/tenant_id"),
        ("JWT_ROLE_CLAIM", "https://crm.example.com/role"),
        ("JWT_ROLE_MAP", "authenticated=employee, crm-admins = admin"),
    ])
    .unwrap();
    assert_eq!(
        config.tenant_claim,
        ClaimPath::Pointer("/app_metadata/tenant_id".into())
    );
    assert_eq!(
        config.role_claim,
        ClaimPath::Name("https://crm.example.com/role".into())
    );
    assert_eq!(config.role_map["authenticated"], Role::Employee);
    assert_eq!(config.role_map["crm-admins"], Role::Admin);
    assert_eq!(config.role_map["manager"], Role::Manager);
    assert!(read(&[("JWT_SECRET", SECRET), ("JWT_ROLE_MAP", "x=owner")]).is_err());
    assert!(read(&[("JWT_SECRET", SECRET), ("JWT_TENANT_CLAIM", "/a~2b")]).is_err());
}

#[test]
fn a_jwks_needs_an_audience_and_a_secret_alone_does_not() {
    for jwks in [
        ("JWT_JWKS_URL", "https://idp.example/jwks"),
        ("JWT_ISSUER", "https://idp.example/"),
    ] {
        let err = read(&[jwks]).unwrap_err().to_string();
        assert!(err.contains("JWT_AUDIENCE"), "{err}");
        assert!(read(&[jwks, AUD]).is_ok());
    }
    // HS256 only: the issuer is an `iss` check, no keys are fetched.
    assert!(read(&[
        ("JWT_ISSUER", "https://x.example/auth/v1"),
        ("JWT_SECRET", SECRET),
        ("JWT_ALGORITHMS", "HS256"),
    ])
    .is_ok());
}

#[test]
fn superadmin_is_implicit_only_for_the_deployments_own_secret() {
    let plain = read(&[("JWT_SECRET", SECRET)]).unwrap();
    assert_eq!(
        plain.role_for("superadmin", Signer::Secret),
        Some(Role::Superadmin)
    );
    assert_eq!(plain.role_for("superadmin", Signer::IdentityProvider), None);
    assert_eq!(
        plain.role_for("admin", Signer::IdentityProvider),
        Some(Role::Admin)
    );
    let mapped = read(&[
        ("JWT_SECRET", SECRET),
        ("JWT_ROLE_MAP", "crm-root=superadmin,superadmin=employee"),
    ])
    .unwrap();
    assert_eq!(
        mapped.role_for("crm-root", Signer::IdentityProvider),
        Some(Role::Superadmin)
    );
    assert_eq!(
        mapped.role_for("superadmin", Signer::Secret),
        Some(Role::Employee)
    );
}
