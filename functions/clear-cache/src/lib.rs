//! The clear-cache function: `POST /api/reports/clear-cache`.
//!
//! Body `{}` (or none) clears every bundle (superadmin) or the caller's own tenant (admin);
//! `{"tenant_id": "<uuid>"}` clears that tenant's two bundles.

pub mod config;

use std::time::Instant;

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;
use shared::auth::{Authenticator, ClearTarget};
use shared::bundle::identity::parse_tenant_id;
use shared::bundle::identity::Scope;
use shared::env::chain;
use shared::http::cors::CorsConfig;
use shared::http::{auth_failure, bad_request, error_response, forbidden, json_response, method_not_allowed};
use shared::platform::secrets;
use shared::serving::StartupError;
use shared::store::keys::Keys;
use shared::store::CacheError;
use shared::store::RedisCache;
use uuid::Uuid;

use crate::config::Config;

/// A clear request is a few dozen bytes; anything much larger is not one.
const MAX_BODY_BYTES: usize = 4 * 1024;

/// What the function builds once per cold start and shares across invocations.
pub struct State {
    pub auth: Authenticator,
    pub cors: CorsConfig,
    pub redis: RedisCache,
    pub keys: Keys,
}

impl State {
    /// Builds clients without connecting: the first request connects. A JWT secret that `env` read
    /// from Secrets Manager is read again when a token's signature fails (a rotation).
    pub fn new(config: &Config, env: &secrets::Environment) -> Result<Self, StartupError> {
        let jwt_secret = env.rotating("JWT_SECRET", shared::auth::SECRET_REREAD_INTERVAL);
        Ok(Self {
            auth: Authenticator::rotating(config.auth.clone(), jwt_secret),
            cors: config.cors.clone(),
            redis: RedisCache::new(&config.redis)?,
            keys: config.keys.clone(),
        })
    }

    /// Deletes the cached bundles of `target` and returns how many keys were deleted. A tenant's keys
    /// are deleted by name; clearing everything walks the bundle namespace with SCAN and UNLINKs in
    /// batches. Nothing outside the bundle namespace is touched.
    pub async fn clear(&self, target: ClearTarget) -> Result<u64, CacheError> {
        match target {
            ClearTarget::Tenant(id) => self.redis.unlink(&self.keys.bundles_of(Scope::Tenant(id))).await,
            ClearTarget::All => self.redis.unlink_matching(&self.keys.bundle_scan_pattern()).await,
        }
    }
}

/// Routes one API Gateway request, with CORS headers for an allowed browser origin: this function
/// serves one route, so only the method is checked.
pub async fn route(state: &State, req: Request) -> Result<Response<Body>, Error> {
    let cors = state.cors.check(req.method(), req.headers());
    if let Some(preflight) = cors.preflight() {
        return Ok(preflight);
    }
    let response = post_clear_cache(state, &req)
        .await
        .unwrap_or_else(|refusal| refusal);
    Ok(cors.apply(response))
}

async fn post_clear_cache(state: &State, req: &Request) -> Result<Response<Body>, Response<Body>> {
    let started = Instant::now();
    if req.method() != Method::POST {
        return Err(method_not_allowed("POST"));
    }
    let claims = state
        .auth
        .authenticate(req.headers())
        .await
        .map_err(|e| auth_failure(&e))?;
    let requested = parse_body(req).map_err(Rejection::response)?;
    let target = claims.clear_target(requested).map_err(forbidden)?;
    let (scope, tenant_id) = match target {
        ClearTarget::Tenant(id) => ("tenant", Some(id)),
        ClearTarget::All => ("all", None),
    };
    Ok(match state.clear(target).await {
        Ok(deleted) => {
            tracing::info!(
                scope,
                tenant_id = tenant_id.map(|id| id.to_string()),
                deleted,
                sub = %claims.sub,
                duration_ms = started.elapsed().as_millis() as u64,
                "dashboard cache cleared"
            );
            let message = match tenant_id {
                Some(id) => format!("cleared {deleted} dashboard bundle(s) of tenant {id}"),
                None => format!("cleared {deleted} dashboard bundle(s) of every tenant"),
            };
            let body = json!({
                "status": "success",
                "message": message,
                "data": { "cleared": true, "scope": scope, "tenant_id": tenant_id, "deleted": deleted },
            });
            json_response(StatusCode::OK, body.to_string())
        }
        Err(e) => {
            tracing::error!(scope, sub = %claims.sub, error = %chain(&e), "dashboard cache clear failed");
            let body = json!({
                "status": "error",
                "error": "cache_unavailable",
                "message": "the cache could not be reached; nothing was cleared, retry shortly",
                "data": { "cleared": false, "scope": scope, "tenant_id": tenant_id },
            });
            json_response(StatusCode::SERVICE_UNAVAILABLE, body.to_string())
        }
    })
}

/// Why a body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    TooLarge,
    UnsupportedType,
    BadShape,
    BadTenantId,
}

impl Rejection {
    fn response(self) -> Response<Body> {
        match self {
            Rejection::TooLarge => error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body must be at most {MAX_BODY_BYTES} bytes"),
            ),
            Rejection::UnsupportedType => error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ),
            Rejection::BadShape => bad_request(r#"the body must be {} or {"tenant_id": "<uuid>"}"#),
            Rejection::BadTenantId => bad_request("tenant_id must be a UUID"),
        }
    }
}

/// The tenant named by the body, `None` for an empty (or blank) body or `{}`.
fn parse_body(req: &Request) -> Result<Option<Uuid>, Rejection> {
    let bytes: &[u8] = req.body();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Rejection::TooLarge);
    }
    if !content_type_accepted(req) {
        return Err(Rejection::UnsupportedType);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    // Parsed by hand rather than into `Option<_>`: `{"tenant_id": null}` must not read as `{}`, which
    // for a superadmin means "clear everything".
    let body: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| Rejection::BadShape)?;
    let object = body.as_object().ok_or(Rejection::BadShape)?;
    if object.keys().any(|k| k != "tenant_id") {
        return Err(Rejection::BadShape);
    }
    match object.get("tenant_id") {
        None => Ok(None),
        Some(value) => value
            .as_str()
            .and_then(parse_tenant_id)
            .map(Some)
            .ok_or(Rejection::BadTenantId),
    }
}

/// JSON is expected. A missing type is accepted, and so is the form type `curl -d` sends by default,
/// since the body is parsed as JSON either way; anything else is refused.
fn content_type_accepted(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return true;
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}
