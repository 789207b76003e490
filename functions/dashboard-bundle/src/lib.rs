//! The dashboard-bundle function: `GET /api/reports/dashboard-bundle` and `GET /api/system/health`.

mod bundle;
mod health;

use lambda_http::{http::Method, Body, Error, Request, RequestExt, Response};
use shared::http::{error_response, method_not_allowed};
use shared::state::AppState;

/// Answers one API Gateway request, with CORS headers for an allowed browser origin.
pub async fn handle(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    let cors = state.config.cors.check(req.method(), req.headers());
    match cors.preflight() {
        Some(preflight) => Ok(preflight),
        None => route(state, req).await.map(|response| cors.apply(response)),
    }
}

/// Routes one API Gateway request. Every expected failure is an `Ok` response with a JSON error body.
async fn route(state: &AppState, req: Request) -> Result<Response<Body>, Error> {
    let path = req.raw_http_path().trim_end_matches('/');
    let response = if path.ends_with("/system/health") {
        if req.method() != Method::GET {
            return Ok(method_not_allowed("GET"));
        }
        health::handle(state).await
    } else if path.ends_with("/reports/dashboard-bundle") || path.is_empty() {
        if req.method() != Method::GET {
            return Ok(method_not_allowed("GET"));
        }
        bundle::handle(state, &req).await
    } else {
        error_response(
            lambda_http::http::StatusCode::NOT_FOUND,
            "not_found",
            "no such route",
        )
    };
    Ok(response)
}
