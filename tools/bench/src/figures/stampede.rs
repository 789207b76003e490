//! 200 concurrent requests, each through its own instance, on an expired key and on a cold key.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use chrono::TimeDelta;
use shared::auth::Role;
use shared::bundle::identity::{BundleId, Scope};
use shared::platform::clock::Clock;
use shared::serving::Read;
use test_support::{self as testing, event, request, with_token};

use super::context::{far_deadline, percentile, Context};
use crate::report::{Check, Goal, Row};

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for expired in [true, false] {
        let clock = Clock::default();
        let first = ctx.state(&clock);
        let id = BundleId::new(Scope::Tenant(ctx.huge), true);
        let key = first.bundles.keys().bundle(id);
        if expired {
            first.bundles.get_bundle(id, Read::Bust, far_deadline()).await?;
            // A write moves the tenant's version (the data itself is left as generated).
            sqlx::query("INSERT INTO dashboard_cache.bundle_stats_delta (tenant_id, is_test, changes) VALUES ($1, false, 1)")
                .bind(ctx.huge)
                .execute(&ctx.pool)
                .await?;
            clock.advance(TimeDelta::minutes(10));
        } else {
            first.bundles.redis().unlink(&[key]).await?;
        }
        let instances: Vec<Arc<dashboard_bundle::State>> =
            (0..200).map(|_| Arc::new(ctx.state(&clock))).collect();
        let ev = with_token(
            event("dashboard-bundle.json"),
            Some(&testing::token(Role::Admin, Some(ctx.huge))),
        );
        let mut tasks = Vec::new();
        for state in &instances {
            let (state, req) = (state.clone(), request(&ev));
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let response = dashboard_bundle::route(&state, req).await.expect("handler");
                (
                    started.elapsed(),
                    response.headers()["x-cache"].to_str().unwrap_or("").to_owned(),
                    response.status(),
                )
            }));
        }
        let mut latencies = Vec::new();
        let mut statuses = std::collections::BTreeMap::<String, usize>::new();
        for task in tasks {
            let (took, x_cache, status) = task.await?;
            assert!(status.is_success(), "{status}");
            latencies.push(took);
            *statuses.entry(x_cache).or_default() += 1;
        }
        latencies.sort();
        let recomputes: u64 = instances.iter().map(|s| s.bundles.recomputes()).sum();
        let mix = statuses
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(Row {
            part: "",
            label: format!("Stampede: 200 concurrent on {} key (large tenant)", if expired { "an expired" } else { "a cold" }),
            ours: format!("{recomputes} recompute(s); p50 {:.1} ms, p99 {:.1} ms", percentile(&latencies, 0.5), percentile(&latencies, 0.99)),
            floor: "1 recompute".into(),
            ratio: format!("{recomputes}×"),
            goal: "1 recompute".into(),
            checks: vec![Check::new(
                Goal::Exactly(1.0),
                recomputes as f64,
                format!("{recomputes} recompute(s)"),
            )],
            how: format!("200 function states (own Redis connection each, as 200 Lambda environments) via tokio::spawn; responses: {mix}"),
        });
    }
    Ok(rows)
}
