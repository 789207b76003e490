//! A cache hit through the real handler vs redis-benchmark GET of a value of the same size, and what
//! each part of the hit costs, measured in the same loop as the requests (so noise falls on all
//! alike). The requests run on a single-threaded runtime, as the HTTP functions' `main` sets up.
//! Rounds of requests alternate with runs of the floor: this machine's loopback round trip moves by
//! a quarter within minutes, so a ratio is taken within each round and the rounds' median reported.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use shared::auth::Role;
use shared::bundle::identity::{BundleId, Scope};
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use shared::serving::{CacheStatus, Level, Read, Served};
use shared::store::{read_history, Entry, Recording};
use test_support::{self as testing, event, request, with_token};

use super::context::{far_deadline, percentile, ratio, spread, Context};
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
    let (port, size) = (ctx.redis_port, stored.len());
    let key = state.bundles.keys().bundle(id);
    let mut parts = std::thread::spawn(move || -> Result<Parts> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            // A pool of this runtime's own; hits never use it.
            let db = Database::connect_lazy(&config.database)?;
            let state = dashboard_bundle::State::with_database(config, db, Clock::default())?;
            let ev = with_token(
                event("dashboard-bundle.json"),
                Some(&testing::token(Role::Admin, Some(huge))),
            );
            let headers = request(&ev).headers().clone();
            let redis = state.bundles.redis();
            let reads = state.bundles.keys().tenant_reads(huge);
            let field = read_history::field(chrono::Utc::now());
            let recording = Recording {
                hash: &reads,
                fields: &[&field],
                keep_for: read_history::KEEP_FOR,
            };
            let mut parts = Parts::default();
            for round in 0..ROUNDS {
                let warm_up = if round == 0 { WARM_UP } else { ROUND_WARM_UP };
                let mut route = Vec::with_capacity(PER_ROUND);
                for i in 0..warm_up + PER_ROUND {
                    let req = request(&ev);
                    let started = Instant::now();
                    let response = dashboard_bundle::route(&state, req)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    let took = started.elapsed();
                    anyhow::ensure!(response.headers()["x-cache"] == "HIT", "not a hit");
                    let started = Instant::now();
                    let bytes = redis.get(&key).await?.context("stored")?;
                    let get = started.elapsed();
                    let started = Instant::now();
                    redis.get_recording(&key, &recording).await?;
                    let get_recording = started.elapsed();
                    let started = Instant::now();
                    state.auth.authenticate(&headers).await?;
                    let token = started.elapsed();
                    let started = Instant::now();
                    Entry::decode(&bytes).context("decoded")?;
                    let decode = started.elapsed();
                    let started = Instant::now();
                    log_lines(took);
                    let log = started.elapsed();
                    if i >= warm_up {
                        route.push(took);
                        parts.get.push(get);
                        parts.get_recording.push(get_recording);
                        parts.token.push(token);
                        parts.decode.push(decode);
                        parts.log.push(log);
                    }
                }
                route.sort();
                let floor = floors::redis_get(port, size, FLOOR_REQUESTS)?;
                parts.rounds.push((percentile(&route, 0.5), floor.0, floor.1));
                parts.route.extend(route);
            }
            Ok(parts)
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the hit thread panicked"))??;
    let mut latencies = std::mem::take(&mut parts.route);
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let median = |v: Vec<f64>| spread(&v).0;
    let floor50 = median(parts.rounds.iter().map(|r| r.1).collect());
    let floor99 = median(parts.rounds.iter().map(|r| r.2).collect());
    let ratios: Vec<f64> = parts.rounds.iter().map(|r| r.0 / r.1).collect();
    let (ratio50, ratio_min, ratio_max) = spread(&ratios);
    let spread = format!("{ratio_min:.2}–{ratio_max:.2}, {ROUNDS} rounds");
    Ok(vec![Row {
        part: "",
        label: "Cache hit, handler in-process (large tenant's bundle)".into(),
        ours: format!("p50 {p50:.3} ms, p99 {p99:.3} ms"),
        floor: format!(
            "redis-benchmark GET {size} B: p50 {floor50:.3} ms, p99 {floor99:.3} ms (medians of the rounds)"
        ),
        ratio: format!("p50 {ratio50:.2}× ({spread}), p99 {}", ratio(p99, floor99)),
        goal: "p50 ≤ 1.3×".into(),
        checks: vec![Check::new(
            Goal::AtMost(1.3),
            ratio50,
            format!("p50 {ratio50:.2}× ({spread})"),
        )],
        how: format!(
            "{ROUNDS} rounds of {PER_ROUND} sequential requests through dashboard_bundle::route on a current-thread runtime \
             ({WARM_UP} warm-up before the first round, {ROUND_WARM_UP} before each other): JWT check, query parse, GET, decode, response, \
             the INFO log line and the metrics document (Lambda's JSON lines, written to a sink); a tenant's read is recorded once an hour \
             per process, so these hits are plain GETs; after each round the floor, redis-benchmark with one client, {FLOOR_REQUESTS} GETs, \
             same Redis; ratio: the median of the rounds' p50 ratios"
        ),
    }, parts.row(p50, floor50)])
}

const ROUNDS: usize = 5;
const PER_ROUND: usize = 1_000;
const WARM_UP: usize = 500;
const ROUND_WARM_UP: usize = 50;
const FLOOR_REQUESTS: u32 = 4_000;

/// Each part of a hit, timed alone in the same loop as the requests.
#[derive(Default)]
struct Parts {
    /// Per round: the requests' p50, and the floor's p50 and p99 right after them (ms).
    rounds: Vec<(f64, f64, f64)>,
    route: Vec<Duration>,
    get: Vec<Duration>,
    get_recording: Vec<Duration>,
    token: Vec<Duration>,
    decode: Vec<Duration>,
    log: Vec<Duration>,
}

impl Parts {
    fn row(mut self, route_p50: f64, floor_p50: f64) -> Row {
        let p50 = |v: &mut Vec<Duration>| {
            v.sort();
            percentile(v, 0.5)
        };
        let get = p50(&mut self.get);
        let recording = p50(&mut self.get_recording) - get;
        let token = p50(&mut self.token);
        let decode = p50(&mut self.decode);
        let log = p50(&mut self.log);
        let rest = route_p50 - get - token - decode - log;
        let us = |ms: f64| format!("{:.1} µs", ms * 1000.0);
        Row {
            part: "b",
            label: "Cache hit: what each part costs (p50)".into(),
            ours: format!(
                "our client's GET {}, token check {}, decompression {}, log line + metrics {}, the rest (routing, query, response) {}",
                us(get),
                us(token),
                us(decode),
                us(log),
                us(rest.max(0.0)),
            ),
            floor: format!("redis-benchmark GET {}", us(floor_p50)),
            ratio: format!("client GET {}", ratio(get, floor_p50)),
            goal: "(context)".into(),
            checks: vec![],
            how: format!(
                "each part timed alone in the request loop: RedisCache::get of the same key; Authenticator::authenticate; \
                 Entry::decode (zstd with the dictionary); the handler's INFO line and EMF document through the Lambda JSON layer; \
                 the rest = the request's p50 minus the parts. Recording the read in the same pipeline (GET + HSET + EXPIRE), \
                 now once an hour per tenant and process, cost {} more than the GET",
                us(recording)
            ),
        }
    }
}

/// The lines a served bundle writes (the handler's own function), for a hit from Redis.
fn log_lines(took: Duration) {
    let served = Served {
        json: String::new(),
        status: CacheStatus::Hit,
        level: Level::Redis,
        key: "dashboard:bundle:00000000-0000-0000-0000-000000000000:include=true".into(),
    };
    dashboard_bundle::log_served(
        &served,
        "00000000-0000-0000-0000-000000000000",
        took.as_millis() as u64,
    );
}
