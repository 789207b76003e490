//! Warming where read (issue 26): beside a tenant's two whole bundles, a run warms the scoped bundles
//! (an employee's, a team's, a widget selection) read in the read history's window, the most read
//! first and at most `WARM_SCOPES_PER_TENANT` of them; a scoped read then hits.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use shared::bundle::identity::{Assignees, BundleId, Scope, Widgets};
use shared::store::read_history;
use shared::store::Recording;
use sqlx::PgPool;
use test_support::{self as testing};
use uuid::Uuid;

use crate::app::{warm_env, TestWarmer};

/// Records reads of `bundle` on each of `days_ago`, as the request path records them.
async fn read_on(warm: &TestWarmer, bundle: BundleId, days_ago: &[i64]) {
    let tenant = bundle.scope.tenant_id().expect("a tenant's bundle");
    let hash = warm.state.bundles.keys().tenant_reads(tenant);
    for days in days_ago {
        let at = Utc::now() - TimeDelta::days(*days);
        let (hour, scope) = (
            read_history::field(at),
            read_history::scope_field(at, &bundle.spec()),
        );
        let recording = Recording {
            hash: &hash,
            fields: &[&hour, &scope],
            keep_for: read_history::KEEP_FOR,
        };
        warm.state
            .bundles
            .redis()
            .get_recording("unused", &recording)
            .await
            .expect("recorded");
    }
}

async fn stored(warm: &TestWarmer, bundle: BundleId) -> bool {
    let key = warm.state.bundles.keys().bundle(bundle);
    warm.state
        .bundles
        .redis()
        .get(&key)
        .await
        .expect("redis")
        .is_some()
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_run_warms_the_most_read_scopes_of_each_tenant_up_to_the_bound(pool: PgPool) {
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let whole = BundleId::new(Scope::Tenant(tenant), true);
    let employee = BundleId {
        assignees: Assignees::Employee(Uuid::from_u128(0xe1)),
        ..whole
    };
    let team = BundleId {
        assignees: Assignees::Team(Uuid::from_u128(0x7ea)),
        include_test_data: false,
        ..whole
    };
    let widgets = BundleId {
        widgets: Some(Widgets::RECENT_LEADS),
        ..whole
    };
    let long_ago = BundleId {
        assignees: Assignees::Employee(Uuid::from_u128(0xe2)),
        ..whole
    };
    let warm = TestWarmer::new(&pool, warm_env().set("WARM_SCOPES_PER_TENANT", "2"), None);
    read_on(&warm, employee, &[1, 2, 3]).await;
    read_on(&warm, team, &[1, 2]).await;
    read_on(&warm, widgets, &[1]).await;
    read_on(&warm, long_ago, &[40, 41, 42, 43]).await;

    let summary = warm
        .invoke(
            serde_json::json!({ "tenant_ids": [tenant] }),
            Duration::from_secs(600),
        )
        .await
        .expect("run");

    assert_eq!(summary["bundles_warmed"], 4, "{summary}");
    for (bundle, warmed) in [
        (whole, true),
        (employee, true),
        (team, true),
        (widgets, false),
        (long_ago, false),
    ] {
        assert_eq!(stored(&warm, bundle).await, warmed, "{bundle}");
    }
    testing::cleanup_prefix(&warm.env.prefix()).await;
}
