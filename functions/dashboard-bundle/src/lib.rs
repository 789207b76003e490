//! The dashboard-bundle function: `GET /api/reports/dashboard-bundle` and `GET /api/system/health`.

pub mod config;
mod get_bundle;
mod health;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::auth::Authenticator;
use shared::http::{error_response, method_not_allowed};
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use shared::platform::secrets::{self, RotatingSecret};
use shared::serving::BundleCache;
use shared::serving::StartupError;
use shared::store::{LocalLevel, RedisCache};

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
    /// Builds clients without connecting: the first request connects. Secrets that `env` read from
    /// Secrets Manager are read again when they stop working (a rotation).
    pub fn new(config: Config, env: &secrets::Environment) -> Result<Self, StartupError> {
        let url_secret = env.rotating("DATABASE_URL", shared::platform::db::CREDENTIALS_REREAD_INTERVAL);
        let db = Database::connect_lazy_rotating(&config.database, url_secret)?;
        let jwt_secret = env.rotating("JWT_SECRET", shared::auth::SECRET_REREAD_INTERVAL);
        Self::build(config, db, Clock::default(), jwt_secret)
    }

    /// The same over an existing database and clock (tests pass a per-test database, a pooler or a
    /// fault proxy, and a clock they move).
    pub fn with_database(config: Config, db: Database, clock: Clock) -> Result<Self, StartupError> {
        Self::build(config, db, clock, None)
    }

    fn build(
        config: Config,
        db: Database,
        clock: Clock,
        jwt_secret: Option<RotatingSecret>,
    ) -> Result<Self, StartupError> {
        let redis = RedisCache::new(&config.redis)?;
        let keys = config.keys.clone();
        Ok(Self {
            auth: Authenticator::rotating(config.auth.clone(), jwt_secret),
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
