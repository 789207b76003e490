//! `GET /api/reports/dashboard-bundle`: authenticate, validate, serve through the cache.

use std::time::Instant;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::dashboard::Served;
use shared::error::{chain, BundleError};
use shared::http::{auth_failure, bad_request, error_response, forbidden, json_response};
use shared::keys::parse_tenant_id;
use shared::state::AppState;
use uuid::Uuid;

/// The validated query string.
#[derive(Debug, PartialEq, Eq)]
struct Query {
    tenant_id: Option<Uuid>,
    include_test_data: bool,
    bust_cache: bool,
}

pub async fn handle(state: &AppState, req: &Request) -> Response<Body> {
    let started = Instant::now();
    let claims = match state.auth.authenticate(req.headers()).await {
        Ok(claims) => claims,
        Err(e) => return auth_failure(&e),
    };
    let query = match parse_query(req) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let scope = match claims.read_scope(query.tenant_id) {
        Ok(scope) => scope,
        Err(e) => return forbidden(e),
    };
    match state
        .dashboard
        .serve(scope, query.include_test_data, query.bust_cache)
        .await
    {
        Ok(served) => {
            tracing::info!(
                cache = served.status.as_str(),
                key = %served.key,
                duration_ms = started.elapsed().as_millis() as u64,
                sub = %claims.sub,
                "dashboard bundle"
            );
            success(served)
        }
        Err(BundleError::TenantNotFound(id)) => error_response(
            StatusCode::NOT_FOUND,
            "tenant_not_found",
            format!("tenant {id} does not exist"),
        ),
        Err(e @ BundleError::Database(_)) => {
            tracing::error!(%scope, error = %chain(&e), "bundle computation failed");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the dashboard data is temporarily unavailable, retry shortly",
            )
        }
    }
}

/// `{"status":"success","data":<bundle>,"cached":<bool>}`, written around the stored bytes so a hit
/// never parses the bundle.
fn success(served: Served) -> Response<Body> {
    let cached = served.status.cached();
    let data = String::from_utf8(served.json).expect("bundles are serialized as UTF-8 JSON");
    let mut body = String::with_capacity(data.len() + 48);
    body.push_str(r#"{"status":"success","data":"#);
    body.push_str(&data);
    body.push_str(if cached {
        r#","cached":true}"#
    } else {
        r#","cached":false}"#
    });
    let mut response = json_response(StatusCode::OK, body);
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static(served.status.as_str()));
    response
}

fn parse_query(req: &Request) -> Result<Query, String> {
    let mut query = Query {
        tenant_id: None,
        include_test_data: true,
        bust_cache: false,
    };
    let mut seen: Vec<&str> = Vec::new();
    let params = req.query_string_parameters();
    for (name, value) in params.iter() {
        if seen.contains(&name) {
            return Err(format!("parameter {name} is given more than once"));
        }
        match name {
            "tenant_id" => {
                query.tenant_id = Some(parse_tenant_id(value).ok_or("parameter tenant_id must be a UUID")?);
                seen.push("tenant_id");
            }
            "include_test_data" => {
                query.include_test_data =
                    parse_bool(value).ok_or("parameter include_test_data must be true or false")?;
                seen.push("include_test_data");
            }
            "bust_cache" => {
                query.bust_cache = parse_bool(value).ok_or("parameter bust_cache must be true or false")?;
                seen.push("bust_cache");
            }
            _ => return Err(format!("unknown parameter {}", printable(name))),
        }
    }
    Ok(query)
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A parameter name as it may be echoed in an error message: bounded and without control characters.
fn printable(name: &str) -> String {
    let mut out: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if name.chars().count() > 64 {
        out.push('…');
    }
    format!("{out:?}")
}
