//! A cache hit through the real handler vs redis-benchmark GET of a value of the same size.
//! The requests run on a single-threaded runtime, as the HTTP functions' `main` sets up.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use shared::auth::Role;
use shared::bundle::identity::{BundleId, Scope};
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use shared::serving::Read;
use test_support::{self as testing, event, request, with_token};

use super::context::{far_deadline, percentile, ratio, Context};
use crate::floors;
use crate::report::{Check, Goal, Row};

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let id = BundleId::new(Scope::Tenant(ctx.huge), true);
    let state = ctx.state(&Clock::default());
    state.bundles.get_bundle(id, Read::Bust, far_deadline()).await?;
    let stored = state
        .bundles
        .redis()
        .get(&state.bundles.keys().bundle(id))
        .await?
        .context("stored")?;
    let config = ctx.dashboard_config();
    let huge = ctx.huge;
    let n = 5_000;
    let mut latencies = std::thread::spawn(move || -> Result<Vec<Duration>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            // A pool of this runtime's own; hits never use it.
            let db = Database::connect_lazy(&config.database)?;
            let state = dashboard_bundle::State::with_database(config, db, Clock::default())?;
            let ev = with_token(
                event("dashboard-bundle.json"),
                Some(&testing::token(Role::Employee, Some(huge))),
            );
            let mut latencies = Vec::with_capacity(n);
            for i in 0..n + 500 {
                let req = request(&ev);
                let started = Instant::now();
                let response = dashboard_bundle::route(&state, req).await.expect("handler");
                let took = started.elapsed();
                assert_eq!(response.headers()["x-cache"], "HIT");
                if i >= 500 {
                    latencies.push(took);
                }
            }
            Ok(latencies)
        })
    })
    .join()
    .expect("hit thread")?;
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let (floor50, floor99) = floors::redis_get(ctx.redis_port, stored.len(), 20_000)?;
    Ok(vec![Row {
        part: "",
        label: "Cache hit, handler in-process (large tenant's bundle)".into(),
        ours: format!("p50 {p50:.3} ms, p99 {p99:.3} ms"),
        floor: format!("redis-benchmark GET {} B: p50 {floor50:.3} ms, p99 {floor99:.3} ms", stored.len()),
        ratio: format!("p50 {}, p99 {}", ratio(p50, floor50), ratio(p99, floor99)),
        goal: "p50 ≤ 1.3×".into(),
        checks: vec![Check::new(
            Goal::AtMost(1.3),
            p50 / floor50,
            format!("p50 {}", ratio(p50, floor50)),
        )],
        how: format!(
            "{n} sequential requests (after 500 warm-up) through dashboard_bundle::route on a current-thread runtime: \
             JWT check, query parse, GET, decode, response, INFO log line (formatted, written to a sink); floor: one client, same Redis"
        ),
    }])
}
