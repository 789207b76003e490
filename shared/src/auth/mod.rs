//! Bearer-token authentication and the rules of who may read or clear which bundles.
//!
//! Tokens are verified against an identity provider's published keys (JWKS, [`jwks`]) and/or HS256
//! secrets, checked for time, issuer and audience, and mapped to the product's [`Claims`] ([`claims`])
//! as the `JWT_*` variables say ([`config`]).

mod claims;
pub mod config;
mod hs256;
mod jwks;

use std::str::FromStr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::http::{header::AUTHORIZATION, HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use self::config::{AuthConfig, ClaimPath, JwksSource, Signer};
pub use self::hs256::{REPLACED_SECRET_OVERLAP, SECRET_REREAD_INTERVAL};
use self::jwks::KeyCache;
use crate::bundle::identity::{Assignees, Scope};
use crate::platform::secrets::RotatingSecret;

/// No IdP issues bearer tokens anywhere near this size; refusing larger ones bounds the work per request.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// How long a token whose signature a key verified passes without its signature being checked again,
/// and how many bytes of such tokens a process keeps. A caller's next requests skip the signature
/// (the larger part of a hit's token check); the token's time, issuer and audience are checked on every
/// request. A token signed with a key withdrawn since passes for at most this long.
pub const VERIFIED_FOR: std::time::Duration = std::time::Duration::from_secs(60);
const VERIFIED_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Superadmin,
    Admin,
    Manager,
    Employee,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Superadmin => "superadmin",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Employee => "employee",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Role::Superadmin, Role::Admin, Role::Manager, Role::Employee]
            .into_iter()
            .find(|role| role.as_str() == text)
    }

    /// Higher is more privileged: the winner when a token carries several roles.
    pub fn rank(self) -> u8 {
        match self {
            Role::Superadmin => 3,
            Role::Admin => 2,
            Role::Manager => 1,
            Role::Employee => 0,
        }
    }
}

/// Who the caller is, whichever IdP issued the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default)]
    pub tenant_id: Option<Uuid>,
    pub exp: i64,
    /// The employee id ([`AuthConfig::employee_claim`]), when it is a UUID. Not part of an issued
    /// token: dev tokens carry it as `sub`.
    #[serde(skip)]
    pub employee_id: Option<Uuid>,
}

/// Why a token is refused. Messages name the reason, never the token or its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token algorithm is not accepted")]
    Algorithm,
    #[error("tokens carrying jku, x5u, x5c, jwk or crit headers are not accepted")]
    KeyHeader,
    #[error("token signing key is unknown")]
    UnknownKey,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token claim {0} is missing or malformed")]
    BadClaim(&'static str),
    #[error("token carries no role")]
    NoRole,
    #[error("token role is not mapped to a product role")]
    UnmappedRole,
    #[error("the identity provider's signing keys are unavailable, retry shortly")]
    KeysUnavailable,
}

impl AuthError {
    /// 401 for a token that proves nothing, 403 for a genuine token that grants no role here, 503 when
    /// the keys to check it could not be had.
    pub fn status(self) -> StatusCode {
        match self {
            AuthError::NoRole | AuthError::UnmappedRole => StatusCode::FORBIDDEN,
            AuthError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
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
    #[error("this token's employee id is not a UUID, so it has no dashboard of its own")]
    NoEmployeeId,
    #[error("an employee sees only their own dashboard")]
    EmployeeCannotDrill,
    #[error("a manager may drill into their own teams and their members only")]
    NotInManagersTeams,
}

/// The drill-down a request asks for (`assigned_to` or `team_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drill {
    None,
    Employee(Uuid),
    Team(Uuid),
}

/// Whose records of the tenant a caller may read: granted outright, or once the database confirms
/// that `manager` is a member of the team asked for (or shares a team with the employee asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeAccess {
    Granted(Assignees),
    IfManagerShares { manager: Uuid, assignees: Assignees },
}

/// What a clear-cache call deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearTarget {
    Tenant(Uuid),
    All,
}

/// Verifies bearer tokens. Built once per cold start; cheap to clone (the key cache is shared).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    config: AuthConfig,
    secrets: hs256::Secrets,
    keys: Option<KeyCache>,
    /// Tokens verified lately ([`VERIFIED_FOR`]): the key that signed each, and its payload.
    verified: moka::future::Cache<String, Arc<(Signer, Value)>>,
}

impl Authenticator {
    /// Fetches nothing yet: the first token that needs the IdP's keys fetches them.
    pub fn new(config: AuthConfig) -> Self {
        Self::rotating(config, None)
    }

    /// The same, with `jwt_secret` the Secrets Manager secret `JWT_SECRET` was read from: an HS256
    /// token whose signature fails reads it again (at most once per [`SECRET_REREAD_INTERVAL`]).
    pub fn rotating(config: AuthConfig, jwt_secret: Option<RotatingSecret>) -> Self {
        let secrets = hs256::Secrets::new(&config.secrets, jwt_secret);
        let keys = config.jwks.clone().map(|source| {
            KeyCache::new(
                source,
                config.fetch_timeout,
                config.refetch_interval,
                config.max_key_age,
            )
        });
        Self {
            inner: Arc::new(Inner {
                config,
                secrets,
                keys,
                verified: moka::future::Cache::builder()
                    .max_capacity(VERIFIED_BYTES)
                    .weigher(|token: &String, _| u32::try_from(token.len()).unwrap_or(u32::MAX))
                    .time_to_live(VERIFIED_FOR)
                    .build(),
            }),
        }
    }

    /// Verifies `Authorization: Bearer <jwt>` and maps its claims.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, AuthError> {
        let token = bearer(headers)?;
        let inner = &*self.inner;
        let now = chrono::Utc::now().timestamp();
        if let Some(verified) = inner.verified.get(token).await {
            let (signer, payload) = &*verified;
            return claims::map(&inner.config, *signer, payload, now);
        }
        let header = TokenHeader::read(token)?;
        if !inner.config.algorithms.contains(&header.alg) {
            return Err(AuthError::Algorithm);
        }
        let (signer, payload) = if header.alg == Algorithm::HS256 {
            // Each secret in turn: JWT_SECRET_PREVIOUS keeps tokens signed before a rotation valid.
            let check = |key: &DecodingKey| verify(token, key, header.alg).ok();
            let payload = match inner.secrets.find_map(check) {
                Some(payload) => payload,
                // Maybe signed with a secret rotated since the cold start.
                None if inner.secrets.renew().await => {
                    inner.secrets.find_map(check).ok_or(AuthError::Invalid)?
                }
                None => return Err(AuthError::Invalid),
            };
            (Signer::Secret, payload)
        } else {
            // HS256 never reaches here, so a public key can never serve as an HMAC secret.
            let cache = inner.keys.as_ref().ok_or(AuthError::Algorithm)?;
            let keys = cache.keys_for(header.kid.as_deref()).await?;
            let key = keys.find(header.kid.as_deref(), header.alg)?;
            (Signer::IdentityProvider, verify(token, &key.key, header.alg)?)
        };
        let claims = claims::map(&inner.config, signer, &payload, now)?;
        inner
            .verified
            .insert(token.into(), Arc::new((signer, payload)))
            .await;
        Ok(claims)
    }
}

fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
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
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::Invalid);
    }
    Ok(token)
}

/// What is read from the JOSE header before any key is chosen.
struct TokenHeader {
    alg: Algorithm,
    kid: Option<String>,
}

impl TokenHeader {
    fn read(token: &str) -> Result<Self, AuthError> {
        let segment = token.split('.').next().ok_or(AuthError::Invalid)?;
        let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| AuthError::Invalid)?;
        let header: serde_json::Map<String, Value> =
            serde_json::from_slice(&bytes).map_err(|_| AuthError::Invalid)?;
        // Keys or key locations chosen by the token's author are never followed, nor are extensions
        // this code does not implement: such a token is refused outright.
        if ["jku", "x5u", "x5c", "jwk", "crit"]
            .iter()
            .any(|h| header.contains_key(*h))
        {
            return Err(AuthError::KeyHeader);
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(AuthError::Invalid)?;
        // `none` and unknown names fail here.
        let alg = Algorithm::from_str(alg).map_err(|_| AuthError::Algorithm)?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(AuthError::Invalid),
        };
        Ok(Self { alg, kid })
    }
}

/// Checks the signature with `key` for exactly `alg`; the claims are checked by [`claims::map`].
fn verify(token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Value, AuthError> {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(token, key, &validation).map_err(|_| AuthError::Invalid)?;
    match data.claims {
        payload @ Value::Object(_) => Ok(payload),
        _ => Err(AuthError::Invalid),
    }
}

/// Signs `claims` with `secret` (HS256): dev tokens and tests. An empty secret is refused.
pub fn issue_token(secret: &str, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    let key = EncodingKey::from_secret(secret.as_bytes())?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
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

    /// Whose records of the tenant this caller reads in `scope`, for the drill-down asked for:
    /// - an employee (and a manager without a drill-down) their own scope, their records and the
    ///   unassigned ones; an employee may name only themselves;
    /// - a manager a team they are in, or an employee sharing one of their teams (the database decides:
    ///   [`AssigneeAccess::IfManagerShares`]);
    /// - an admin or superadmin the whole tenant, or any team or employee of it.
    ///
    /// The global view has no drill-down: the caller of this names a tenant first.
    pub fn assignees(&self, drill: Drill) -> Result<AssigneeAccess, Forbidden> {
        let own = || self.employee_id.ok_or(Forbidden::NoEmployeeId);
        let granted = |assignees| Ok(AssigneeAccess::Granted(assignees));
        match (self.role, drill) {
            (Role::Superadmin | Role::Admin, Drill::None) => granted(Assignees::All),
            (Role::Superadmin | Role::Admin, Drill::Employee(id)) => granted(Assignees::Employee(id)),
            (Role::Superadmin | Role::Admin, Drill::Team(id)) => granted(Assignees::Team(id)),
            (Role::Employee | Role::Manager, Drill::None) => granted(Assignees::Employee(own()?)),
            (Role::Employee | Role::Manager, Drill::Employee(id)) if id == own()? => {
                granted(Assignees::Employee(id))
            }
            (Role::Employee, _) => Err(Forbidden::EmployeeCannotDrill),
            (Role::Manager, Drill::Employee(id)) => Ok(AssigneeAccess::IfManagerShares {
                manager: own()?,
                assignees: Assignees::Employee(id),
            }),
            (Role::Manager, Drill::Team(id)) => Ok(AssigneeAccess::IfManagerShares {
                manager: own()?,
                assignees: Assignees::Team(id),
            }),
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
mod tests;
