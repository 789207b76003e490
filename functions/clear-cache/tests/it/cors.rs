//! CORS through the clear-cache function: the dev dashboard page's "clear this tenant" button.

use clear_cache::{route as handle, State};
use shared::auth::Role;
use sqlx::PgPool;
use test_support::cors::{assert_preflight_allowed, header, preflight, PAGE};
use test_support::{self as testing, event, request, with_body, with_header, with_token, TestEnv};

fn state() -> State {
    crate::app::clear_state(&TestEnv::new().set("CORS_ALLOWED_ORIGINS", PAGE))
}

#[tokio::test]
async fn preflight_of_a_json_post_is_answered_without_a_token() {
    let state = state();
    let ev = preflight(
        with_token(event("clear-cache-tenant.json"), None),
        "POST",
        "authorization,content-type",
    );

    let response = handle(&state, request(&ev)).await.unwrap();

    assert_preflight_allowed(&response);
}

#[sqlx::test(migrations = "../../migrations")]
async fn post_from_the_dashboard_page_carries_cors_headers(pool: PgPool) {
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = state();
    let token = testing::token(Role::Admin, Some(tenant));
    let body = format!(r#"{{"tenant_id": "{tenant}"}}"#);
    let ev = with_body(
        with_token(event("clear-cache-tenant.json"), Some(&token)),
        Some(&body),
    );
    let ev = with_header(ev, "origin", PAGE);

    let response = handle(&state, request(&ev)).await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(PAGE));
    assert_eq!(header(&response, "vary"), Some("Origin"));

    let ev = with_header(
        with_token(event("clear-cache-all.json"), None),
        "origin",
        "http://evil.test",
    );
    let response = handle(&state, request(&ev)).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}
