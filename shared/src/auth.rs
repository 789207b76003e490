//! Bearer-token authentication (HS256 JWT) and the rules of who may read or clear which bundles.

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::http::{header::AUTHORIZATION, HeaderMap};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;
use crate::keys::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Superadmin,
    Admin,
    Manager,
    Employee,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default)]
    pub tenant_id: Option<Uuid>,
    pub exp: i64,
}

/// Why an authenticated caller is refused (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Forbidden {
    #[error("this token may only access its own tenant")]
    OtherTenant,
    #[error("this token is not bound to a tenant")]
    NoTenant,
    #[error("only admins and superadmins may clear the cache")]
    RoleCannotClear,
    #[error("only admins and superadmins may bypass the cache (bust_cache)")]
    RoleCannotBust,
}

/// What a clear-cache call deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearTarget {
    Tenant(Uuid),
    All,
}

#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl Authenticator {
    pub fn new(secret: &str) -> Self {
        // Only HS256 is accepted: `alg: none` and every other algorithm fail validation.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 0;
        Self {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Verifies `Authorization: Bearer <jwt>`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, AuthError> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let value = values.next().ok_or(AuthError::Missing)?;
        if values.next().is_some() {
            return Err(AuthError::Invalid);
        }
        let value = value.to_str().map_err(|_| AuthError::Invalid)?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(AuthError::Missing),
        };
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
    }
}

/// Signs `claims` with `secret` (HS256): dev tokens and tests.
pub fn issue_token(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing with an in-memory key cannot fail")
}

impl Claims {
    /// The bundle this caller reads for `requested` (the `tenant_id` parameter).
    /// A superadmin reads any tenant, or the global view when none is named; everyone else reads only
    /// the tenant of the token.
    pub fn read_scope(&self, requested: Option<Uuid>) -> Result<Scope, Forbidden> {
        if self.role == Role::Superadmin {
            return Ok(requested.map_or(Scope::Global, Scope::Tenant));
        }
        let own = self.tenant_id.ok_or(Forbidden::NoTenant)?;
        match requested {
            Some(id) if id != own => Err(Forbidden::OtherTenant),
            _ => Ok(Scope::Tenant(own)),
        }
    }

    /// What this caller may clear for `requested` (the body's `tenant_id`).
    pub fn clear_target(&self, requested: Option<Uuid>) -> Result<ClearTarget, Forbidden> {
        match self.role {
            Role::Superadmin => Ok(requested.map_or(ClearTarget::All, ClearTarget::Tenant)),
            Role::Admin => {
                let own = self.tenant_id.ok_or(Forbidden::NoTenant)?;
                match requested {
                    Some(id) if id != own => Err(Forbidden::OtherTenant),
                    _ => Ok(ClearTarget::Tenant(own)),
                }
            }
            Role::Manager | Role::Employee => Err(Forbidden::RoleCannotClear),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    const SECRET: &str = "test-secret-test-secret-test-secret!";

    fn claims(role: Role, tenant: Option<Uuid>, exp: i64) -> Claims {
        Claims {
            sub: "user-1".into(),
            role,
            tenant_id: tenant,
            exp,
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

    #[test]
    fn valid_token_yields_its_claims() {
        let c = claims(Role::Admin, Some(Uuid::new_v4()), far_future());
        let auth = Authenticator::new(SECRET);
        let got = auth
            .authenticate(&headers(&format!("Bearer {}", issue_token(SECRET, &c))))
            .unwrap();
        assert_eq!(got, c);
    }

    #[test]
    fn expired_token_is_reported_as_expired() {
        let c = claims(
            Role::Admin,
            Some(Uuid::new_v4()),
            chrono::Utc::now().timestamp() - 10,
        );
        let auth = Authenticator::new(SECRET);
        let err = auth.authenticate(&headers(&format!("Bearer {}", issue_token(SECRET, &c))));
        assert_eq!(err, Err(AuthError::Expired));
    }

    #[test]
    fn wrong_secret_and_alg_none_are_invalid() {
        let c = claims(Role::Superadmin, None, far_future());
        let auth = Authenticator::new(SECRET);
        let forged = issue_token("another-secret-another-secret-another", &c);
        assert_eq!(
            auth.authenticate(&headers(&format!("Bearer {forged}"))),
            Err(AuthError::Invalid)
        );

        let payload = forged.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert_eq!(
            auth.authenticate(&headers(&format!("Bearer {none}"))),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn missing_header_or_other_scheme_is_missing() {
        let auth = Authenticator::new(SECRET);
        assert_eq!(auth.authenticate(&HeaderMap::new()), Err(AuthError::Missing));
        assert_eq!(auth.authenticate(&headers("Basic abc")), Err(AuthError::Missing));
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
}
