//! `POST /api/reports/clear-cache`: who may clear what, the request's body, and the JSON answer.

use std::time::Instant;

use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use shared::auth::ClearTarget;
use shared::bundle::identity::parse_tenant_id;
use shared::env::chain;
use shared::http::{auth_failure, bad_request, error_response, forbidden, json_response, method_not_allowed};
use uuid::Uuid;

use crate::state::State;

/// A clear request is a few dozen bytes; anything much larger is not one.
const MAX_BODY_BYTES: usize = 4 * 1024;

pub(crate) async fn post_clear_cache(state: &State, req: &Request) -> Result<Response<Body>, Response<Body>> {
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
