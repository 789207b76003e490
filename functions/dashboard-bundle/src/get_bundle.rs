//! `GET /api/reports/dashboard-bundle`: authenticate, validate, serve through the cache.

use std::time::Instant;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use shared::auth::{AssigneeAccess, Claims, Drill, Forbidden, Role};
use shared::bundle::identity::{parse_tenant_id, Assignees, BundleId, Scope, Widgets};
use shared::bundle::team_access::manager_shares;
use shared::bundle::BundleError;
use shared::env::chain;
use shared::http::{auth_failure, bad_request, error_response, forbidden, json_response};
use shared::serving::{CacheStatus, Level, Read, Served};
use uuid::Uuid;

use crate::state::State;

/// The validated query string.
#[derive(Debug, PartialEq, Eq)]
struct Query {
    tenant_id: Option<Uuid>,
    include_test_data: bool,
    bust_cache: bool,
    drill: Drill,
    widgets: Option<Widgets>,
}

pub(crate) async fn get_bundle(state: &State, req: &Request) -> Response<Body> {
    respond(state, req).await.unwrap_or_else(|refusal| refusal)
}

async fn respond(state: &State, req: &Request) -> Result<Response<Body>, Response<Body>> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + state.config.request_deadline;
    let claims = state
        .auth
        .authenticate(req.headers())
        .await
        .map_err(|e| auth_failure(&e))?;
    let query = parse_query(req).map_err(bad_request)?;
    let scope = claims.read_scope(query.tenant_id).map_err(forbidden)?;
    let assignees = assignees(state, &claims, scope, query.drill, deadline).await?;
    let read = read_mode(&claims, query.bust_cache).map_err(forbidden)?;
    let id = BundleId {
        assignees,
        widgets: query.widgets,
        ..BundleId::new(scope, query.include_test_data)
    };
    let served = state
        .bundles
        .get_bundle(id, read, deadline)
        .await
        .map_err(|e| failure(id, e))?;
    let duration_ms = started.elapsed().as_millis() as u64;
    log_served(&served, &claims.sub, duration_ms);
    Ok(success(served))
}

/// What a served bundle writes: the INFO line, and the metrics document whatever the log level (the
/// template's dashboard and alarms are built on it). Public for the benchmark, which times it.
pub fn log_served(served: &Served, sub: &str, duration_ms: u64) {
    tracing::info!(
        cache = served.status.as_str(),
        cache_level = served.level.as_str(),
        key = %served.key,
        duration_ms,
        sub,
        "dashboard bundle"
    );
    shared::platform::log::metrics(&metrics_document(
        served.status,
        served.level,
        duration_ms,
        chrono::Utc::now().timestamp_millis(),
    ));
}

/// One CloudWatch EMF document per served bundle: `Requests` (1), `MemoryHits` (1 when served from the
/// in-memory level, else 0) and `RequestDurationMs`, dimension `Cache`; `CacheLevel` as a property.
/// Written as text: every value is a number or a fixed name, and a JSON tree cost each hit a few µs.
fn metrics_document(status: CacheStatus, level: Level, duration_ms: u64, timestamp_ms: i64) -> String {
    format!(
        concat!(
            r#"{{"_aws":{{"Timestamp":{timestamp},"CloudWatchMetrics":[{{"Namespace":"DashboardCache","#,
            r#""Dimensions":[["Cache"]],"Metrics":[{{"Name":"Requests","Unit":"Count"}},"#,
            r#"{{"Name":"MemoryHits","Unit":"Count"}},{{"Name":"RequestDurationMs","Unit":"Milliseconds"}}]}}]}},"#,
            r#""Cache":"{cache}","CacheLevel":"{level}","Requests":1,"MemoryHits":{memory},"RequestDurationMs":{duration}}}"#,
        ),
        timestamp = timestamp_ms,
        cache = status.as_str(),
        level = level.as_str(),
        memory = u8::from(level == Level::Memory),
        duration = duration_ms,
    )
}

/// Whose records of the tenant the caller reads ([`Claims::assignees`]); a manager's drill-down is
/// checked against `team_members`. The global view has no drill-down.
async fn assignees(
    state: &State,
    claims: &Claims,
    scope: Scope,
    drill: Drill,
    deadline: tokio::time::Instant,
) -> Result<Assignees, Response<Body>> {
    let Scope::Tenant(tenant) = scope else {
        return match drill {
            Drill::None => Ok(Assignees::All),
            _ => Err(bad_request(
                "assigned_to and team_id need tenant_id in the global view",
            )),
        };
    };
    match claims.assignees(drill).map_err(forbidden)? {
        AssigneeAccess::Granted(assignees) => Ok(assignees),
        AssigneeAccess::IfManagerShares { manager, assignees } => {
            let check = manager_shares(&state.db, tenant, manager, assignees);
            match tokio::time::timeout_at(deadline, check).await {
                Ok(Ok(true)) => Ok(assignees),
                Ok(Ok(false)) => Err(forbidden(Forbidden::NotInManagersTeams)),
                Ok(Err(e)) => {
                    tracing::error!(%tenant, error = %chain(&e), "team membership check failed");
                    Err(unavailable())
                }
                Err(_) => Err(unavailable()),
            }
        }
    }
}

fn unavailable() -> Response<Body> {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
        "the dashboard data is temporarily unavailable, retry shortly",
    )
}

/// `bust_cache=true` costs a recomputation: only those who may clear the cache may ask for it.
fn read_mode(claims: &Claims, bust_cache: bool) -> Result<Read, Forbidden> {
    match (bust_cache, claims.role) {
        (false, _) => Ok(Read::Cached),
        (true, Role::Superadmin | Role::Admin) => Ok(Read::Bust),
        (true, _) => Err(Forbidden::RoleCannotBust),
    }
}

fn failure(id: BundleId, e: BundleError) -> Response<Body> {
    match e {
        BundleError::TenantNotFound(tenant) => error_response(
            StatusCode::NOT_FOUND,
            "tenant_not_found",
            format!("tenant {tenant} does not exist"),
        ),
        e @ (BundleError::Database(_) | BundleError::DeadlineExceeded | BundleError::Serialize(_)) => {
            tracing::error!(bundle = %id, error = %chain(&e), "bundle computation failed");
            unavailable()
        }
    }
}

/// `{"status":"success","data":<bundle>,"cached":<bool>}`, written around the stored JSON so a hit
/// never parses the bundle.
fn success(served: Served) -> Response<Body> {
    let cached = served.status.cached();
    let mut body = String::with_capacity(served.json.len() + 48);
    body.push_str(r#"{"status":"success","data":"#);
    body.push_str(&served.json);
    body.push_str(if cached {
        r#","cached":true}"#
    } else {
        r#","cached":false}"#
    });
    let mut response = json_response(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.insert("x-cache", HeaderValue::from_static(served.status.as_str()));
    headers.insert("x-cache-level", HeaderValue::from_static(served.level.as_str()));
    response
}

fn parse_query(req: &Request) -> Result<Query, String> {
    let mut query = Query {
        tenant_id: None,
        include_test_data: true,
        bust_cache: false,
        drill: Drill::None,
        widgets: None,
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
            "assigned_to" | "team_id" => {
                if query.drill != Drill::None {
                    return Err("give assigned_to or team_id, not both".into());
                }
                let id = parse_tenant_id(value).ok_or(format!("parameter {name} must be a UUID"))?;
                query.drill = if name == "team_id" {
                    Drill::Team(id)
                } else {
                    Drill::Employee(id)
                };
                seen.push(name);
            }
            "widgets" => {
                query.widgets = Some(Widgets::parse(value).ok_or(
                    "parameter widgets must be a comma list of recentActivities, recentLeads, \
                     salesPipeline and leadSourceChart, each at most once",
                )?);
                seen.push("widgets");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_document_carries_the_cache_outcome_as_dimension() {
        let line: serde_json::Value = serde_json::from_str(&metrics_document(
            CacheStatus::Hit,
            Level::Memory,
            12,
            1_795_478_400_000,
        ))
        .unwrap_or_default();
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Cache"]])
        );
        assert_eq!(
            (line["Cache"].as_str(), line["Requests"].as_u64()),
            (Some("HIT"), Some(1))
        );
        assert_eq!(
            (line["CacheLevel"].as_str(), line["MemoryHits"].as_u64()),
            (Some("memory"), Some(1))
        );
        assert_eq!(line["RequestDurationMs"], 12);
        assert_eq!(line["_aws"]["Timestamp"], 1_795_478_400_000_i64);
        let metrics = &line["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(metrics[2]["Unit"], "Milliseconds");
        for status in [
            CacheStatus::Hit,
            CacheStatus::Miss,
            CacheStatus::Bypass,
            CacheStatus::Stale,
        ] {
            for level in [Level::Memory, Level::Redis, Level::Postgres] {
                let text = metrics_document(status, level, 0, 0);
                assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{text}");
            }
        }
    }
}
