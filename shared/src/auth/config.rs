//! The `JWT_*` settings: which keys sign tokens (an IdP's JWKS, HS256 secrets or both), which issuers,
//! audiences and algorithms are accepted, and where the tenant and role live in the claims.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use lambda_http::http::Uri;
use secrecy::SecretString;

use super::Role;
use crate::env::{ConfigError, Env};

/// The smallest HS256 secret accepted: RFC 7518 asks for a key at least as long as the hash output.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Algorithms accepted for JWKS keys when `JWT_ALGORITHMS` is not set.
pub const DEFAULT_JWKS_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Everything the authenticator needs, read once per cold start. Secrets are redacted from `Debug`.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Where the IdP's public keys come from; `None`: HS256 secrets only.
    pub jwks: Option<JwksSource>,
    /// `JWT_ISSUER`: when not empty, `iss` must equal one of them.
    pub issuers: Vec<String>,
    /// `JWT_AUDIENCE`: when not empty, `aud` (or Cognito's `client_id`) must contain one of them.
    pub audiences: Vec<String>,
    /// Accepted `alg` values, HS256 included exactly when a secret is configured.
    pub algorithms: Vec<Algorithm>,
    /// `JWT_SECRET` then `JWT_SECRET_PREVIOUS`: HS256 tokens signed with either are accepted.
    pub secrets: Vec<SecretString>,
    pub tenant_claim: ClaimPath,
    pub role_claim: ClaimPath,
    /// `JWT_EMPLOYEE_CLAIM`: where the caller's employee id (a UUID, the `assigned_to` of their
    /// records) is; `sub` by default.
    pub employee_claim: ClaimPath,
    /// Role claim value to product role: `admin`, `manager` and `employee` map to themselves unless
    /// overridden, `superadmin` only as [`AuthConfig::role_for`] says.
    pub role_map: HashMap<String, Role>,
    /// Clock skew allowed on `exp`, `nbf` and `iat` (`JWT_LEEWAY_SECONDS`).
    pub leeway: Duration,
    /// Bound on one key fetch, discovery included (`JWT_JWKS_TIMEOUT_MS`): a cold start with an
    /// unreachable IdP answers 503 after this long instead of hanging.
    pub fetch_timeout: Duration,
    /// A token with an unknown `kid` re-fetches the keys at most this often, so random `kid`s cannot
    /// hammer the IdP.
    pub refetch_interval: Duration,
    /// Keys older than this are re-fetched on the next request (a failed fetch keeps them), so a key the
    /// IdP withdrew stops working in long-lived environments.
    pub max_key_age: Duration,
}

/// Which key verified a token's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The deployment's own HS256 secret (`JWT_SECRET`): dev tokens, legacy projects.
    Secret,
    /// A key of the IdP's JWKS.
    IdentityProvider,
}

/// Where the JWKS document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `JWT_JWKS_URL`.
    Url(Uri),
    /// `JWT_ISSUER` alone: `jwks_uri` of `{issuer}/.well-known/openid-configuration`.
    Discovery { issuer: String },
}

/// Where a claim is: a top-level name (which may contain `:` or `/`), or an RFC 6901 JSON Pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimPath {
    Name(String),
    Pointer(String),
}

impl ClaimPath {
    /// A value starting with `/` is a JSON Pointer; anything else is a top-level claim name.
    pub fn parse(name: &'static str, raw: &str) -> Result<Self, ConfigError> {
        if !raw.starts_with('/') {
            return Ok(Self::Name(raw.to_owned()));
        }
        // RFC 6901: `~` is only ever `~0` or `~1`.
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(invalid(
                    name,
                    format!("{raw:?} is not a JSON Pointer (~ must be ~0 or ~1)"),
                ));
            }
        }
        Ok(Self::Pointer(raw.to_owned()))
    }

    pub fn find<'a>(&self, claims: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        match self {
            Self::Name(name) => claims.get(name),
            Self::Pointer(pointer) => claims.pointer(pointer),
        }
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(s) | Self::Pointer(s) => f.write_str(s),
        }
    }
}

impl AuthConfig {
    /// HS256 with one secret and default claims: dev tokens and tests. No length check.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            jwks: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            algorithms: vec![Algorithm::HS256],
            secrets: vec![SecretString::from(secret.into())],
            tenant_claim: ClaimPath::Name("tenant_id".into()),
            role_claim: ClaimPath::Name("role".into()),
            employee_claim: ClaimPath::Name("sub".into()),
            role_map: product_roles(),
            leeway: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(2),
            refetch_interval: Duration::from_secs(30),
            max_key_age: Duration::from_secs(3600),
        }
    }

    /// The product role a value of the role claim maps to. An IdP's value (a group an IdP administrator
    /// may name at will) becomes `superadmin` only through an explicit `JWT_ROLE_MAP` entry; the value
    /// `superadmin` maps to itself only in tokens signed with the deployment's own secret.
    pub fn role_for(&self, value: &str, signer: Signer) -> Option<Role> {
        match self.role_map.get(value) {
            Some(role) => Some(*role),
            None if signer == Signer::Secret && value == Role::Superadmin.as_str() => Some(Role::Superadmin),
            None => None,
        }
    }

    /// Reads the `JWT_*` variables. At least one of `JWT_JWKS_URL`, `JWT_ISSUER` and `JWT_SECRET` must
    /// be set.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            env.optional(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let issuers = list(get("JWT_ISSUER"));
        let audiences = list(get("JWT_AUDIENCE"));

        let mut secrets = Vec::new();
        for name in ["JWT_SECRET", "JWT_SECRET_PREVIOUS"] {
            // Secrets are taken as given: trimming would change the key.
            if let Some(secret) = env.optional(name) {
                if secret.len() < MIN_JWT_SECRET_BYTES {
                    return Err(invalid(
                        name,
                        format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                    ));
                }
                secrets.push(SecretString::from(secret));
            }
        }
        if env.optional("JWT_SECRET").is_none() && !secrets.is_empty() {
            return Err(invalid("JWT_SECRET_PREVIOUS", "is set without JWT_SECRET".into()));
        }

        let explicit = get("JWT_ALGORITHMS")
            .map(|raw| parse_algorithms(&raw))
            .transpose()?;
        let asymmetric_listed = explicit
            .as_ref()
            .is_none_or(|algs| algs.iter().any(|a| *a != Algorithm::HS256));
        let jwks = match get("JWT_JWKS_URL") {
            Some(raw) => Some(JwksSource::Url(parse_key_url("JWT_JWKS_URL", &raw)?)),
            // With only HS256 listed, JWT_ISSUER is just the `iss` check: no discovery.
            None if !issuers.is_empty() && asymmetric_listed => {
                if issuers.len() > 1 {
                    return Err(invalid(
                        "JWT_ISSUER",
                        "several issuers need JWT_JWKS_URL (discovery needs exactly one)".into(),
                    ));
                }
                let issuer = issuers[0].clone();
                parse_key_url("JWT_ISSUER", &discovery_url(&issuer))?;
                Some(JwksSource::Discovery { issuer })
            }
            None => None,
        };
        if jwks.is_none() && secrets.is_empty() {
            return Err(ConfigError::Missing("JWT_JWKS_URL, JWT_ISSUER or JWT_SECRET"));
        }
        // An IdP signs tokens for every application it serves: without an audience, a token issued to
        // any of them would be accepted here.
        if jwks.is_some() && audiences.is_empty() {
            return Err(invalid(
                "JWT_AUDIENCE",
                "must be set when a JWKS is configured (JWT_JWKS_URL or JWT_ISSUER)".into(),
            ));
        }
        let algorithms = match explicit {
            None => {
                let mut algs = Vec::new();
                if jwks.is_some() {
                    algs.extend(DEFAULT_JWKS_ALGORITHMS);
                }
                if !secrets.is_empty() {
                    algs.push(Algorithm::HS256);
                }
                algs
            }
            Some(algs) => {
                let has_hs = algs.contains(&Algorithm::HS256);
                if has_hs && secrets.is_empty() {
                    return Err(invalid("JWT_ALGORITHMS", "HS256 needs JWT_SECRET".into()));
                }
                if !has_hs && !secrets.is_empty() {
                    return Err(invalid(
                        "JWT_ALGORITHMS",
                        "JWT_SECRET is set but HS256 is not listed".into(),
                    ));
                }
                if jwks.is_some() && !algs.iter().any(|a| *a != Algorithm::HS256) {
                    return Err(invalid(
                        "JWT_ALGORITHMS",
                        "a JWKS is configured but no public-key algorithm is listed".into(),
                    ));
                }
                algs
            }
        };

        let claim = |name: &'static str, default: &str| match get(name) {
            Some(raw) => ClaimPath::parse(name, &raw),
            None => Ok(ClaimPath::Name(default.to_owned())),
        };
        let millis = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
            number(name, get(name), default).map(Duration::from_millis)
        };
        let defaults = Self::hs256(String::new());
        Ok(Self {
            jwks,
            issuers,
            audiences,
            algorithms,
            secrets,
            tenant_claim: claim("JWT_TENANT_CLAIM", "tenant_id")?,
            role_claim: claim("JWT_ROLE_CLAIM", "role")?,
            employee_claim: claim("JWT_EMPLOYEE_CLAIM", "sub")?,
            role_map: parse_role_map(get("JWT_ROLE_MAP").as_deref())?,
            leeway: Duration::from_secs(number("JWT_LEEWAY_SECONDS", get("JWT_LEEWAY_SECONDS"), 30)?),
            fetch_timeout: millis("JWT_JWKS_TIMEOUT_MS", 2_000)?,
            ..defaults
        })
    }
}

/// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0, section 4).
pub(crate) fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Key material is only fetched over https, or plain http from this machine (tests, local IdPs).
pub(crate) fn parse_key_url(name: &'static str, raw: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = raw
        .parse()
        .map_err(|_| invalid(name, format!("{raw:?} is not a URL")))?;
    let host = uri
        .host()
        .ok_or_else(|| invalid(name, format!("{raw:?} has no host")))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        _ => Err(invalid(
            name,
            format!("{raw:?} must be https (plain http only for loopback hosts)"),
        )),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn list(raw: Option<String>) -> Vec<String> {
    raw.map(|raw| {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

fn parse_algorithms(raw: &str) -> Result<Vec<Algorithm>, ConfigError> {
    let mut algs = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let alg = match name {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            "HS256" => Algorithm::HS256,
            other => {
                return Err(invalid(
                    "JWT_ALGORITHMS",
                    format!("{other:?} is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256"),
                ))
            }
        };
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    if algs.is_empty() {
        return Err(invalid("JWT_ALGORITHMS", "lists no algorithm".into()));
    }
    Ok(algs)
}

/// The roles that map to themselves without an entry. Not `superadmin`: see [`AuthConfig::role_for`].
fn product_roles() -> HashMap<String, Role> {
    [Role::Admin, Role::Manager, Role::Employee]
        .into_iter()
        .map(|role| (role.as_str().to_owned(), role))
        .collect()
}

/// `idp-value=role,...`; entries may override the product roles' identity mapping (`admin=employee`),
/// and are the only way an IdP's value becomes `superadmin` (`crm-superadmins=superadmin`).
fn parse_role_map(raw: Option<&str>) -> Result<HashMap<String, Role>, ConfigError> {
    let mut map = product_roles();
    for entry in raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (from, to) = entry
            .rsplit_once('=')
            .map(|(f, t)| (f.trim(), t.trim()))
            .filter(|(f, _)| !f.is_empty())
            .ok_or_else(|| invalid("JWT_ROLE_MAP", format!("{entry:?} is not idp-value=role")))?;
        let role = Role::parse(to).ok_or_else(|| {
            invalid(
                "JWT_ROLE_MAP",
                format!("{to:?} is not one of superadmin, admin, manager, employee"),
            )
        })?;
        map.insert(from.to_owned(), role);
    }
    Ok(map)
}

fn number(name: &'static str, raw: Option<String>, default: u64) -> Result<u64, ConfigError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e| invalid(name, format!("{raw:?}: {e}"))),
    }
}

fn invalid(name: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { name, reason }
}

#[cfg(test)]
mod tests;
