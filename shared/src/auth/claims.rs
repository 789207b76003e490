//! From a verified token's payload to [`Claims`]: time window, issuer and audience, then the tenant
//! and role found where the configuration says and mapped to the product's roles.

use serde_json::Value;

use super::config::{AuthConfig, Signer};
use super::{AuthError, Claims, Role};
use crate::bundle::identity::parse_tenant_id;

/// Checks a payload whose signature `signer`'s key verified against `config` at `now` (seconds since
/// the epoch) and maps it.
pub(crate) fn map(
    config: &AuthConfig,
    signer: Signer,
    payload: &Value,
    now: i64,
) -> Result<Claims, AuthError> {
    let leeway = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
    let exp = numeric_date(payload, "exp")?.ok_or(AuthError::BadClaim("exp"))?;
    if now > exp.saturating_add(leeway) {
        return Err(AuthError::Expired);
    }
    if numeric_date(payload, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(AuthError::NotYetValid);
    }
    if numeric_date(payload, "iat")?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(AuthError::NotYetValid);
    }
    if !config.issuers.is_empty() {
        let iss = payload.get("iss").and_then(Value::as_str);
        if !iss.is_some_and(|iss| config.issuers.iter().any(|i| i == iss)) {
            return Err(AuthError::WrongIssuer);
        }
    }
    if !config.audiences.is_empty() && !audience_matches(config, payload) {
        return Err(AuthError::WrongAudience);
    }
    let sub = match payload.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => return Err(AuthError::BadClaim("sub")),
    };
    let tenant_id = match config.tenant_claim.find(payload) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(parse_tenant_id(s).ok_or(AuthError::BadClaim("tenant"))?),
        Some(_) => return Err(AuthError::BadClaim("tenant")),
    };
    let role = role(config, signer, payload)?;
    // Not a UUID (or absent): the token reads no employee scope (a 403 where one is needed).
    let employee_id = config
        .employee_claim
        .find(payload)
        .and_then(Value::as_str)
        .and_then(parse_tenant_id);
    Ok(Claims {
        sub,
        role,
        tenant_id,
        exp,
        employee_id,
    })
}

/// A NumericDate (RFC 7519 section 2): seconds, possibly fractional.
fn numeric_date(payload: &Value, name: &'static str) -> Result<Option<i64>, AuthError> {
    match payload.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
            .map(Some)
            .ok_or(AuthError::BadClaim(name)),
        Some(_) => Err(AuthError::BadClaim(name)),
    }
}

/// `aud` (a string or a list) contains a configured audience; without `aud`, Cognito access tokens'
/// `client_id` stands in for it.
fn audience_matches(config: &AuthConfig, payload: &Value) -> bool {
    let accepted = |v: &Value| {
        v.as_str()
            .is_some_and(|s| config.audiences.iter().any(|a| a == s))
    };
    match payload.get("aud") {
        Some(Value::Array(list)) => list.iter().any(accepted),
        Some(aud) => accepted(aud),
        None => payload.get("client_id").is_some_and(accepted),
    }
}

/// The most privileged product role among the claim's mapped values. No role claim, or no value that
/// maps, is a 403: the token is genuine but grants nothing here.
fn role(config: &AuthConfig, signer: Signer, payload: &Value) -> Result<Role, AuthError> {
    let values: Vec<&str> = match config.role_claim.find(payload) {
        None | Some(Value::Null) => return Err(AuthError::NoRole),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().ok_or(AuthError::BadClaim("role")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(AuthError::BadClaim("role")),
    };
    if values.is_empty() {
        return Err(AuthError::NoRole);
    }
    let best = values
        .iter()
        .filter_map(|v| config.role_for(v, signer))
        .max_by_key(|role| role.rank());
    match best {
        Some(role) => Ok(role),
        None => {
            // The values are the IdP's group or role names, not credentials: worth a log line to fix
            // JWT_ROLE_MAP, never the response.
            tracing::info!(values = ?values, claim = %config.role_claim, "token role is not mapped");
            Err(AuthError::UnmappedRole)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::config::ClaimPath;
    use serde_json::json;
    use uuid::Uuid;

    const NOW: i64 = 1_800_000_000;
    const IDP: Signer = Signer::IdentityProvider;

    fn config() -> AuthConfig {
        AuthConfig::hs256("unused")
    }

    fn base(extra: Value) -> Value {
        let mut payload = json!({"sub": "u1", "exp": NOW + 60, "role": "admin"});
        if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        payload
    }

    #[test]
    fn leeway_applies_to_exp_nbf_and_iat() {
        let c = config();
        assert!(map(&c, IDP, &base(json!({"exp": NOW - 20})), NOW).is_ok());
        assert_eq!(
            map(&c, IDP, &base(json!({"exp": NOW - 31})), NOW),
            Err(AuthError::Expired)
        );
        assert!(map(&c, IDP, &base(json!({"nbf": NOW + 20, "iat": NOW + 20})), NOW).is_ok());
        assert_eq!(
            map(&c, IDP, &base(json!({"nbf": NOW + 31})), NOW),
            Err(AuthError::NotYetValid)
        );
        assert_eq!(
            map(&c, IDP, &base(json!({"iat": NOW + 31})), NOW),
            Err(AuthError::NotYetValid)
        );
        assert_eq!(
            map(&c, IDP, &json!({"sub": "u", "role": "admin"}), NOW),
            Err(AuthError::BadClaim("exp"))
        );
        assert_eq!(
            map(&c, IDP, &base(json!({"exp": "soon"})), NOW),
            Err(AuthError::BadClaim("exp"))
        );
    }

    #[test]
    fn audience_is_a_string_a_list_or_cognito_client_id() {
        let mut c = config();
        c.audiences = vec!["app".into(), "other".into()];
        assert!(map(&c, IDP, &base(json!({"aud": "app"})), NOW).is_ok());
        assert!(map(&c, IDP, &base(json!({"aud": ["x", "other"]})), NOW).is_ok());
        assert!(map(&c, IDP, &base(json!({"client_id": "app"})), NOW).is_ok());
        assert_eq!(
            map(&c, IDP, &base(json!({"aud": "x"})), NOW),
            Err(AuthError::WrongAudience)
        );
        assert_eq!(
            map(&c, IDP, &base(json!({"aud": "x", "client_id": "app"})), NOW),
            Err(AuthError::WrongAudience),
            "client_id only stands in when aud is absent"
        );
        assert_eq!(map(&c, IDP, &base(json!({})), NOW), Err(AuthError::WrongAudience));
    }

    #[test]
    fn role_list_takes_the_most_privileged_mapped_value() {
        let mut c = config();
        c.role_claim = ClaimPath::Name("cognito:groups".into());
        c.role_map.insert("crm-admins".into(), Role::Admin);
        c.role_map.insert("crm-staff".into(), Role::Employee);
        let p = base(json!({"cognito:groups": ["crm-staff", "eu-users", "crm-admins"]}));
        assert_eq!(map(&c, IDP, &p, NOW).map(|c| c.role), Ok(Role::Admin));
        let p = base(json!({"cognito:groups": ["eu-users"]}));
        assert_eq!(map(&c, IDP, &p, NOW), Err(AuthError::UnmappedRole));
        let p = base(json!({"cognito:groups": []}));
        assert_eq!(map(&c, IDP, &p, NOW), Err(AuthError::NoRole));
        assert_eq!(
            map(&c, IDP, &json!({"sub": "u", "exp": NOW}), NOW),
            Err(AuthError::NoRole)
        );
    }

    #[test]
    fn tenant_is_found_by_pointer_and_must_be_a_uuid() {
        let mut c = config();
        c.tenant_claim = ClaimPath::Pointer("/app_metadata/tenant_id".into());
        let id = Uuid::new_v4();
        let p = base(json!({"app_metadata": {"tenant_id": id.to_string()}}));
        assert_eq!(map(&c, IDP, &p, NOW).map(|c| c.tenant_id), Ok(Some(id)));
        assert_eq!(map(&c, IDP, &base(json!({})), NOW).map(|c| c.tenant_id), Ok(None));
        let p = base(json!({"app_metadata": {"tenant_id": "acme"}}));
        assert_eq!(map(&c, IDP, &p, NOW), Err(AuthError::BadClaim("tenant")));
    }
}
