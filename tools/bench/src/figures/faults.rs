//! Redis going silent. A flow dropped without FIN or RST (new flows work), then a wedged
//! server (accepts, never answers) that recovers: time back to `HIT` and the p99 of requests meanwhile,
//! beside the configured bounds.

use std::time::{Duration, Instant};

use anyhow::Result;
use shared::auth::Role;
use shared::platform::clock::Clock;
use test_support::{self as testing, event, request, with_token};

use super::context::{percentile, ratio, Context};
use crate::report::{Check, Goal, Row};

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    use test_support::{FaultProxy, Mode};
    let redis: std::net::SocketAddr = format!("127.0.0.1:{}", ctx.redis_port).parse()?;
    let proxy = FaultProxy::start(redis).await;
    let (response_ms, connect_ms) = (250u64, 250u64);
    let env = ctx
        .env()
        .set("REDIS_URL", format!("redis://{}", proxy.addr()))
        .set("REDIS_RESPONSE_TIMEOUT_MS", response_ms.to_string())
        .set("REDIS_CONNECT_TIMEOUT_MS", connect_ms.to_string());
    let config =
        dashboard_bundle::config::Config::from_env(&env.as_env()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = dashboard_bundle::State::with_database(config, ctx.db(), Clock::default())?;
    let ev = with_token(
        event("dashboard-bundle.json"),
        Some(&testing::token(Role::Admin, Some(ctx.typical))),
    );
    let get = || async {
        let started = Instant::now();
        let response = dashboard_bundle::route(&state, request(&ev))
            .await
            .expect("handler");
        let x_cache = response
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (started.elapsed(), x_cache)
    };
    get().await;
    // Requests until a HIT: (time to it, latencies on the way).
    let until_hit = |limit: Duration| async move {
        let started = Instant::now();
        let mut latencies = Vec::new();
        loop {
            let (took, x_cache) = get().await;
            latencies.push(took);
            if x_cache == "HIT" || started.elapsed() > limit {
                return (started.elapsed(), latencies);
            }
        }
    };
    let mut rows = Vec::new();
    proxy.set(Mode::DropExisting);
    let (recovered, mut latencies) = until_hit(Duration::from_secs(10)).await;
    latencies.sort();
    rows.push(Row {
        part: "",
        label: "Silent Redis drop (new flows work): back to HIT".into(),
        ours: format!(
            "{:.0} ms; worst request {:.0} ms",
            recovered.as_secs_f64() * 1000.0,
            percentile(&latencies, 1.0)
        ),
        floor: format!("response timeout {response_ms} ms"),
        ratio: ratio(recovered.as_secs_f64() * 1000.0, response_ms as f64),
        goal: "HIT within 1 s".into(),
        checks: vec![Check::new(
            Goal::AtMost(1000.0),
            recovered.as_secs_f64() * 1000.0,
            format!("HIT after {:.0} ms", recovered.as_secs_f64() * 1000.0),
        )],
        how: format!(
            "FaultProxy stops forwarding the open flow; {} requests until a HIT",
            latencies.len()
        ),
    });

    proxy.set(Mode::Wedged);
    let mut during = Vec::new();
    let wedged = Instant::now();
    while wedged.elapsed() < Duration::from_secs(3) {
        during.push(get().await.0);
    }
    during.sort();
    proxy.set(Mode::Healed);
    let (recovered, _) = until_hit(Duration::from_secs(10)).await;
    let bound = (2 * connect_ms).max(response_ms) as f64;
    rows.push(Row {
        part: "",
        label: "Wedged Redis (3 s), then healed: requests meanwhile, back to HIT".into(),
        ours: format!(
            "p50 {:.0} ms, p99 {:.0} ms during; HIT {:.0} ms after healing",
            percentile(&during, 0.5),
            percentile(&during, 0.99),
            recovered.as_secs_f64() * 1000.0
        ),
        floor: format!("bound {bound:.0} ms (2 × connect timeout) + the computation"),
        ratio: ratio(percentile(&during, 0.99), bound),
        goal: "p99 ≤ bound + miss; HIT within 1 s".into(),
        // The miss it allows for is not measured here.
        checks: Vec::new(),
        how: format!(
            "{} requests while the proxy accepted and never answered (BYPASS, median tenant)",
            during.len()
        ),
    });
    Ok(rows)
}
