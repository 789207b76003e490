//! JSON responses shared by the HTTP functions: every expected failure is a 4xx/5xx with
//! `{"status":"error","error":<code>,"message":<text>}`, never an `Err` (API Gateway's 502). The top
//! layer: it maps auth's errors to responses. CORS is API Gateway's (template.yaml), not the functions'.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::auth::{AuthError, Forbidden};

/// A response with a JSON body that was already serialized.
pub fn json_response(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Bundles are per-tenant data behind a token: no shared cache may keep them.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

pub fn error_response(status: StatusCode, error: &str, message: impl Into<String>) -> Response<Body> {
    let body = json!({ "status": "error", "error": error, "message": message.into() });
    json_response(status, body.to_string())
}

pub fn bad_request(message: impl Into<String>) -> Response<Body> {
    error_response(StatusCode::BAD_REQUEST, "bad_request", message)
}

pub fn unauthorized(err: &AuthError) -> Response<Body> {
    let mut response = error_response(StatusCode::UNAUTHORIZED, "unauthorized", err.to_string());
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The response to a refused token: 401, 403 (genuine token, no role here) or 503 (keys unavailable).
pub fn auth_failure(err: &AuthError) -> Response<Body> {
    match err.status() {
        StatusCode::FORBIDDEN => error_response(StatusCode::FORBIDDEN, "forbidden", err.to_string()),
        StatusCode::SERVICE_UNAVAILABLE => {
            let mut response = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_unavailable",
                err.to_string(),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
        _ => unauthorized(err),
    }
}

pub fn forbidden(err: Forbidden) -> Response<Body> {
    error_response(StatusCode::FORBIDDEN, "forbidden", err.to_string())
}

pub fn method_not_allowed(allowed: &'static str) -> Response<Body> {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("use {allowed}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}
