//! The dashboard-bundle function: `GET /api/reports/dashboard-bundle` and `GET /api/system/health`.

// Public for main, the tests and the benchmark, which read the config the same way; the rest is private.
pub mod config;
mod get_bundle;
mod health;
mod state;

pub use get_bundle::log_served;
pub use state::State;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::http::{error_response, method_not_allowed};

/// Routes one API Gateway request. Every expected failure is an `Ok` response with a JSON error body;
/// a method other than GET (a stray CORS preflight among them: CORS is API Gateway's) is a 405.
pub async fn route(state: &State, req: Request) -> Result<Response<Body>, Error> {
    let path = req.raw_http_path().trim_end_matches('/');
    let health = path.ends_with("/system/health");
    // An empty path is a Lambda function URL or `cargo lambda invoke` with no path: this function
    // serves one resource besides health, so that is the bundle.
    let bundle = path.ends_with("/reports/dashboard-bundle") || path.is_empty();
    Ok(if !health && !bundle {
        error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
    } else if req.method() != Method::GET {
        method_not_allowed("GET")
    } else if health {
        state.health.respond(state.bundles.redis(), &state.db).await
    } else {
        get_bundle::get_bundle(state, &req).await
    })
}
