//! CORS through the dashboard function's router: the dev dashboard page on another origin.

use dashboard_bundle::{config::Config, route as handle, State};
use shared::auth::{issue_token, Claims, Role};
use sqlx::PgPool;
use test_support::cors::{assert_preflight_allowed, header, preflight, PAGE};
use test_support::{self as testing, event, request, with_header, with_token, TestEnv};

fn state(pool: PgPool) -> State {
    let env = TestEnv::new().set("CORS_ALLOWED_ORIGINS", PAGE);
    let config = Config::from_env(&env.as_env()).unwrap();
    crate::app::state_with(config, env.database(&pool), Default::default())
}

#[sqlx::test(migrations = "../../migrations")]
async fn preflight_from_the_dashboard_page_is_answered_without_a_token(pool: PgPool) {
    let state = state(pool);
    let ev = preflight(
        with_token(event("dashboard-bundle.json"), None),
        "GET",
        "authorization",
    );

    let response = handle(&state, request(&ev)).await.unwrap();

    assert_preflight_allowed(&response);
}

#[sqlx::test(migrations = "../../migrations")]
async fn get_from_the_dashboard_page_exposes_x_cache_and_errors_stay_readable(pool: PgPool) {
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = state(pool);
    let token = testing::token(Role::Admin, Some(tenant));
    let ev = with_header(
        with_token(event("dashboard-bundle.json"), Some(&token)),
        "origin",
        PAGE,
    );

    let response = handle(&state, request(&ev)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-cache"), Some("MISS"));
    assert_eq!(header(&response, "access-control-allow-origin"), Some(PAGE));
    assert_eq!(
        header(&response, "access-control-expose-headers"),
        Some("X-Cache, X-Cache-Level")
    );
    assert_eq!(header(&response, "vary"), Some("Origin"));

    // The page shows a 401's message, so the error must be readable cross-origin too.
    let expired = Claims {
        sub: "admin-user".into(),
        role: Role::Admin,
        tenant_id: Some(tenant),
        exp: chrono::Utc::now().timestamp() - 3600,
    };
    let expired = issue_token(testing::TEST_JWT_SECRET, &expired).expect("test token");
    let ev = with_header(
        with_token(event("dashboard-bundle.json"), Some(&expired)),
        "origin",
        PAGE,
    );
    let response = handle(&state, request(&ev)).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(PAGE));

    let ev = with_header(
        with_token(event("dashboard-bundle.json"), Some(&token)),
        "origin",
        "http://evil.test",
    );
    let response = handle(&state, request(&ev)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    testing::cleanup_prefix(state.config.keys.prefix()).await;
}
