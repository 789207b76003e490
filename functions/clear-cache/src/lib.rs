//! The clear-cache function: `POST /api/reports/clear-cache`.
//!
//! Body `{}` (or none) clears every bundle (superadmin) or the caller's own tenant (admin);
//! `{"tenant_id": "<uuid>"}` clears that tenant's two bundles.

mod clear;
// Public for main, the tests and the benchmark, which read the config the same way; the rest is private.
pub mod config;
mod state;

pub use state::State;

use lambda_http::{Body, Error, Request, Response};

/// Routes one API Gateway request: this function serves one route, so only the method is checked
/// (any other, a stray CORS preflight among them, is a JSON 405). CORS is API Gateway's.
pub async fn route(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(clear::post_clear_cache(state, &req)
        .await
        .unwrap_or_else(|refusal| refusal))
}
