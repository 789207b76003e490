use super::*;
use lambda_http::http::HeaderValue;

const SECRET: &str = "test-secret-test-secret-test-secret!";

fn claims(role: Role, tenant: Option<Uuid>, exp: i64) -> Claims {
    Claims {
        sub: "user-1".into(),
        role,
        tenant_id: tenant,
        exp,
        employee_id: None,
    }
}

fn headers(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    h
}

fn far_future() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

#[tokio::test]
async fn valid_token_yields_its_claims() {
    let c = claims(Role::Admin, Some(Uuid::new_v4()), far_future());
    let auth = Authenticator::new(AuthConfig::hs256(SECRET));
    let got = auth
        .authenticate(&headers(&format!(
            "Bearer {}",
            issue_token(SECRET, &c).expect("test token")
        )))
        .await
        .unwrap();
    assert_eq!(got, c);
}

#[tokio::test]
async fn expired_token_is_reported_as_expired() {
    let c = claims(
        Role::Admin,
        Some(Uuid::new_v4()),
        chrono::Utc::now().timestamp() - 60, // past the 30 s leeway
    );
    let auth = Authenticator::new(AuthConfig::hs256(SECRET));
    let err = auth
        .authenticate(&headers(&format!(
            "Bearer {}",
            issue_token(SECRET, &c).expect("test token")
        )))
        .await;
    assert_eq!(err, Err(AuthError::Expired));
}

/// A token passes its signature check once a while (VERIFIED_FOR), but its time on every request.
#[tokio::test]
async fn a_token_verified_before_is_refused_once_it_expires() {
    let c = claims(
        Role::Admin,
        Some(Uuid::new_v4()),
        chrono::Utc::now().timestamp() + 1,
    );
    let auth = Authenticator::new(AuthConfig {
        leeway: std::time::Duration::ZERO,
        ..AuthConfig::hs256(SECRET)
    });
    let h = headers(&format!(
        "Bearer {}",
        issue_token(SECRET, &c).expect("test token")
    ));
    assert_eq!(auth.authenticate(&h).await, Ok(c.clone()));
    assert_eq!(auth.authenticate(&h).await, Ok(c));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(auth.authenticate(&h).await, Err(AuthError::Expired));
}

#[tokio::test]
async fn wrong_secret_and_alg_none_are_invalid() {
    let c = claims(Role::Superadmin, None, far_future());
    let auth = Authenticator::new(AuthConfig::hs256(SECRET));
    let forged = issue_token("another-secret-another-secret-another", &c).expect("test token");
    assert_eq!(
        auth.authenticate(&headers(&format!("Bearer {forged}"))).await,
        Err(AuthError::Invalid)
    );

    let payload = forged.split('.').nth(1).unwrap();
    // {"alg":"none","typ":"JWT"}
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    assert_eq!(
        auth.authenticate(&headers(&format!("Bearer {none}"))).await,
        Err(AuthError::Algorithm)
    );
}

#[tokio::test]
async fn missing_header_or_other_scheme_is_missing() {
    let auth = Authenticator::new(AuthConfig::hs256(SECRET));
    assert_eq!(
        auth.authenticate(&HeaderMap::new()).await,
        Err(AuthError::Missing)
    );
    assert_eq!(
        auth.authenticate(&headers("Basic abc")).await,
        Err(AuthError::Missing)
    );
}

#[tokio::test]
async fn previous_secret_is_accepted_during_a_rotation() {
    const OLD: &str = "old-secret-old-secret-old-secret-old!";
    let c = claims(Role::Admin, Some(Uuid::new_v4()), far_future());
    let mut config = AuthConfig::hs256(SECRET);
    config.secrets.push(OLD.into());
    let auth = Authenticator::new(config);
    for secret in [SECRET, OLD] {
        let token = issue_token(secret, &c).expect("test token");
        assert_eq!(
            auth.authenticate(&headers(&format!("Bearer {token}"))).await,
            Ok(c.clone())
        );
    }
    let only_new = Authenticator::new(AuthConfig::hs256(SECRET));
    let token = issue_token(OLD, &c).expect("test token");
    assert_eq!(
        only_new.authenticate(&headers(&format!("Bearer {token}"))).await,
        Err(AuthError::Invalid)
    );
}

#[test]
fn non_superadmin_reads_only_its_own_tenant() {
    let own = Uuid::new_v4();
    let c = claims(Role::Employee, Some(own), 0);
    assert_eq!(c.read_scope(None), Ok(Scope::Tenant(own)));
    assert_eq!(c.read_scope(Some(own)), Ok(Scope::Tenant(own)));
    assert_eq!(c.read_scope(Some(Uuid::new_v4())), Err(Forbidden::OtherTenant));
}

#[test]
fn superadmin_without_tenant_reads_global_view() {
    let c = claims(Role::Superadmin, None, 0);
    assert_eq!(c.read_scope(None), Ok(Scope::Global));
}

#[test]
fn clear_rules_follow_roles() {
    let own = Uuid::new_v4();
    let admin = claims(Role::Admin, Some(own), 0);
    assert_eq!(admin.clear_target(None), Ok(ClearTarget::Tenant(own)));
    assert_eq!(
        admin.clear_target(Some(Uuid::new_v4())),
        Err(Forbidden::OtherTenant)
    );
    let manager = claims(Role::Manager, Some(own), 0);
    assert_eq!(manager.clear_target(None), Err(Forbidden::RoleCannotClear));
    let root = claims(Role::Superadmin, None, 0);
    assert_eq!(root.clear_target(None), Ok(ClearTarget::All));
}
