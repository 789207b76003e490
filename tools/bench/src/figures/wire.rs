//! What a request waits for where the network is not loopback. Proxies in front of Postgres and Redis
//! delay every packet by a fixed one-way time (0, 0.5 and 1 ms: round trips of 0, 1 and 2 ms, what a
//! Lambda in a VPC pays to ElastiCache and to RDS or a pooler) and count the round trips each request
//! makes. Beside each latency, its floor: the round trips on the request's path times the round-trip
//! time, plus the same request's time on loopback through the same proxies (the servers' and the
//! handler's own work).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use chrono::{TimeDelta, Utc};
use shared::auth::Role;
use shared::bundle::identity::Scope;
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use test_support::{self as testing, event, request, with_query, with_token, FaultProxy};

use super::context::{percentile, Context};
use crate::report::{Check, Goal, Row};

/// One-way delays measured, in microseconds.
const DELAYS_US: [u64; 3] = [0, 500, 1_000];
/// Requests per kind and delay.
const SAMPLES: usize = 30;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Miss,
    Hit,
    Revalidation,
    GlobalMiss,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Miss, Kind::Hit, Kind::Revalidation, Kind::GlobalMiss];

    fn label(self) -> &'static str {
        match self {
            Kind::Miss => "MISS, a tenant",
            Kind::Hit => "HIT (memory level off)",
            Kind::Revalidation => "revalidation (past the fresh window, data unchanged)",
            Kind::GlobalMiss => "MISS, the superadmin's global view",
        }
    }

    /// Round trips on the request's path the issue allows: (Postgres, Redis).
    fn goal(self) -> (u64, u64) {
        match self {
            Kind::Miss | Kind::GlobalMiss => (2, 3),
            Kind::Hit => (0, 1),
            Kind::Revalidation => (1, 2),
        }
    }
}

/// What one kind of request did at one delay.
struct Measured {
    p50: f64,
    p99: f64,
    /// Median round trips per request: (Postgres, Redis), the pool's release check included.
    flights: (u64, u64),
}

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    // The steady state: deltas folded, as the compaction schedule keeps them (figure 11 does the same).
    ctx.compact_all().await?;
    let pg = FaultProxy::start(ctx.postgres_addr()?).await;
    let redis = FaultProxy::start(format!("127.0.0.1:{}", ctx.redis_port).parse()?).await;
    let env = ctx
        .env()
        .set("REDIS_URL", format!("redis://{}", redis.addr()))
        .set("BUNDLE_TTL_SECONDS", "60")
        .set("LOCAL_CACHE_MB", "0");
    let db = Database::new(testing::pool_at(&ctx.pool, pg.addr()), &env.database_config());
    let config = dashboard_bundle::config::Config::from_env(&env.as_env())?;
    // Early in a UTC day, so that the revalidations' simulated minutes never reach the next one.
    let start = Utc::now()
        .date_naive()
        .and_hms_opt(0, 10, 0)
        .unwrap_or_default()
        .and_utc();
    let clock = Clock::starting_at(start);
    let state = dashboard_bundle::State::with_database(config, db, clock.clone())?;
    let tenant = with_token(
        event("dashboard-bundle.json"),
        Some(&testing::token(Role::Admin, Some(ctx.typical))),
    );
    let global = with_query(
        with_token(
            event("dashboard-bundle.json"),
            Some(&testing::token(Role::Superadmin, None)),
        ),
        "",
    );
    let keys = state.bundles.keys().clone();
    // Both variants (with and without test data) of each bundle asked for.
    let tenant_keys = keys.bundles_of(Scope::Tenant(ctx.typical));
    let global_keys = keys.bundles_of(Scope::Global);

    let mut results: Vec<(u64, Kind, Measured)> = Vec::new();
    for delay in DELAYS_US {
        pg.set_delay(Duration::from_micros(delay));
        redis.set_delay(Duration::from_micros(delay));
        for kind in Kind::ALL {
            let mut times = Vec::with_capacity(SAMPLES);
            let mut flights = Vec::with_capacity(SAMPLES);
            // One unmeasured request first: connections open, the entry in place.
            for i in 0..=SAMPLES {
                match kind {
                    Kind::Miss => state.bundles.redis().unlink(&tenant_keys).await.map(drop)?,
                    Kind::GlobalMiss => state.bundles.redis().unlink(&global_keys).await.map(drop)?,
                    Kind::Hit => {}
                    Kind::Revalidation => clock.advance(TimeDelta::minutes(2)),
                }
                let ev = if kind == Kind::GlobalMiss {
                    &global
                } else {
                    &tenant
                };
                let (pg_before, redis_before) = (pg.flights(), redis.flights());
                let started = Instant::now();
                let response = dashboard_bundle::route(&state, request(ev))
                    .await
                    .map_err(|e| anyhow::anyhow!("handler: {e}"))?;
                let took = started.elapsed();
                // The pool's check of the returned connection runs beside the request: let it land
                // before counting, and before the next request.
                tokio::time::sleep(Duration::from_micros(2 * delay + 2_000)).await;
                let outcome = response
                    .headers()
                    .get("x-cache")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none");
                let expected = match kind {
                    Kind::Miss | Kind::GlobalMiss => "MISS",
                    Kind::Hit | Kind::Revalidation => "HIT",
                };
                ensure!(outcome == expected, "{}: {outcome}, not {expected}", kind.label());
                if i > 0 {
                    times.push(took);
                    flights.push((pg.flights() - pg_before, redis.flights() - redis_before));
                }
            }
            times.sort();
            flights.sort();
            results.push((
                delay,
                kind,
                Measured {
                    p50: percentile(&times, 0.5),
                    p99: percentile(&times, 0.99),
                    flights: flights[flights.len() / 2],
                },
            ));
        }
    }
    state.bundles.redis().unlink(&tenant_keys).await?;
    state.bundles.redis().unlink(&global_keys).await?;
    Ok(rows(&results))
}

fn rows(results: &[(u64, Kind, Measured)]) -> Vec<Row> {
    let of = |delay: u64, kind: Kind| {
        results
            .iter()
            .find(|(d, k, _)| *d == delay && *k == kind)
            .map(|(_, _, m)| m)
    };
    let parts = ["", "b", "c", "d"];
    Kind::ALL
        .iter()
        .zip(parts)
        .filter_map(|(&kind, part)| {
            let loopback = of(0, kind)?;
            let far = of(DELAYS_US[2], kind)?;
            let (pg, redis) = far.flights;
            let (goal_pg, goal_redis) = kind.goal();
            // Postgres's count includes the pool's check of the connection it took back, which the
            // request does not wait for; the floor counts what the request waits for.
            let waited_pg = pg.saturating_sub(u64::from(pg > 0));
            let rtt_ms = 2.0 * DELAYS_US[2] as f64 / 1000.0;
            let floor = (waited_pg + redis) as f64 * rtt_ms + loopback.p50;
            let latencies = DELAYS_US
                .iter()
                .filter_map(|&d| of(d, kind).map(|m| format!("{:.1} ms RTT p50 {:.2} / p99 {:.2}", 2.0 * d as f64 / 1000.0, m.p50, m.p99)))
                .collect::<Vec<_>>()
                .join("; ");
            Some(Row {
                part,
                label: format!("{}: round trips and latency at a 0 / 1 / 2 ms round trip", kind.label()),
                ours: format!("Postgres {waited_pg} (+{} release check), Redis {redis}; {latencies}", pg - waited_pg),
                floor: format!("{} round trips × {rtt_ms:.0} ms + {:.2} ms on loopback = {floor:.2} ms", waited_pg + redis, loopback.p50),
                ratio: format!("{:.2}× at 2 ms", far.p50 / floor),
                goal: format!("≤ {goal_pg} Postgres, ≤ {goal_redis} Redis round trips"),
                checks: vec![
                    Check::new(Goal::AtMost(goal_pg as f64), waited_pg as f64, format!("Postgres {waited_pg}")),
                    Check::new(Goal::AtMost(goal_redis as f64), redis as f64, format!("Redis {redis}")),
                ],
                how: format!(
                    "{SAMPLES} requests per kind and delay (after one unmeasured) through dashboard_bundle::route, \
                     proxies (test-support FaultProxy) in front of Postgres and Redis delaying each packet by 0, 0.5 \
                     and 1 ms one way and counting round trips (a client send after an answer); the median tenant, \
                     both statement modes alike (simple query protocol)"
                ),
            })
        })
        .collect()
}
