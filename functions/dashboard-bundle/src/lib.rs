//! The dashboard-bundle function: `GET /api/reports/dashboard-bundle` and `GET /api/system/health`.

pub mod config;
mod get_bundle;
mod health;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::auth::Authenticator;
use shared::bundle_cache::BundleCache;
use shared::cache::{LocalLevel, RedisCache};
use shared::clock::Clock;
use shared::db::Database;
use shared::error::StartupError;
use shared::http::{error_response, method_not_allowed};
use shared::keys::Keys;

use crate::config::Config;
use crate::health::HealthCheck;

/// What the function builds once per cold start and shares across invocations.
pub struct State {
    pub config: Config,
    pub auth: Authenticator,
    pub bundles: BundleCache,
    pub(crate) db: Database,
    health: HealthCheck,
}

impl State {
    /// Builds clients without connecting: the first request connects.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let db = Database::connect_lazy(&config.database)?;
        Self::with_database(config, db, Clock::default())
    }

    /// The same over an existing database and clock (tests pass a per-test database, a pooler or a
    /// fault proxy, and a clock they move).
    pub fn with_database(config: Config, db: Database, clock: Clock) -> Result<Self, StartupError> {
        let redis = RedisCache::new(&config.redis)?;
        let keys = Keys::new(config.key_prefix.clone());
        Ok(Self {
            auth: Authenticator::new(config.auth.clone()),
            bundles: BundleCache::new(db.clone(), redis, keys, config.freshness, clock)
                .with_local_level(LocalLevel::new(config.local)),
            db,
            health: HealthCheck::default(),
            config,
        })
    }
}

/// Routes one API Gateway request, with CORS headers for an allowed browser origin. Every expected
/// failure is an `Ok` response with a JSON error body.
pub async fn route(state: &State, req: Request) -> Result<Response<Body>, Error> {
    let cors = state.config.cors.check(req.method(), req.headers());
    if let Some(preflight) = cors.preflight() {
        return Ok(preflight);
    }
    let path = req.raw_http_path().trim_end_matches('/');
    let health = path.ends_with("/system/health");
    // An empty path is a Lambda function URL or `cargo lambda invoke` with no path: this function
    // serves one resource besides health, so that is the bundle.
    let bundle = path.ends_with("/reports/dashboard-bundle") || path.is_empty();
    let response = if !health && !bundle {
        error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
    } else if req.method() != Method::GET {
        method_not_allowed("GET")
    } else if health {
        health::get_health(state).await
    } else {
        get_bundle::get_bundle(state, &req).await
    };
    Ok(cors.apply(response))
}
