//! The in-memory level of dashboard-bundle: its hit latency beside the Redis GET floor (a), what it
//! saves Redis under a Zipf-skewed workload over every tenant (b), and what it costs in memory (c).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::platform::clock::Clock;
use shared::serving::{Level, Read};
use shared::store::Entry;
use uuid::Uuid;

use super::context::{far_deadline, percentile, ratio, status_kib, Context};
use crate::floors;
use crate::report::{Check, Goal, Row};
use crate::rng::SplitMix;

/// Function environments the workload is spread over.
const INSTANCES: usize = 4;
/// Requests per second over all environments, and for how long.
const RATE: u64 = 400;
const SECONDS: u64 = 30;
/// Zipf exponent of tenant popularity.
const ZIPF_S: f64 = 1.0;

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let tenants: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM bench_tenant ORDER BY n")
        .fetch_all(&ctx.pool)
        .await?;
    // One typical bundle, stored under every tenant's key: the figure is about reads, not contents.
    let seed = ctx.state(&Clock::default());
    let typical = BundleId::new(Scope::Tenant(ctx.typical), true);
    seed.bundles
        .get_bundle(typical, Read::Bust, far_deadline())
        .await?;
    let keys = seed.bundles.keys();
    let stored = seed
        .bundles
        .redis()
        .get(&keys.bundle(typical))
        .await?
        .context("stored")?;
    let entry = Entry::decode(&stored).context("decodable")?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let copy = Entry {
        generated_at_ms: now_ms,
        validated_at_ms: now_ms,
        ..entry
    }
    .encode();
    for tenant in &tenants {
        let key = keys.bundle(BundleId::new(Scope::Tenant(*tenant), true));
        seed.bundles
            .redis()
            .set(&key, &copy, Duration::from_secs(3600))
            .await?;
    }

    let mut rows = vec![latency(ctx, typical, copy.len()).await?];
    let off = workload(ctx, &tenants, "0").await?;
    let on = workload(ctx, &tenants, "16").await?;
    // ElastiCache Serverless bills a read 1 ECPU per KB transferred, at least 1.
    let ecpu_per_read = (copy.len() as f64 / 1024.0).max(1.0);
    let per_request = |w: &Workload| w.redis_reads as f64 * ecpu_per_read / w.requests as f64;
    let redis_bytes = |w: &Workload| (w.redis_reads * copy.len() as u64) as f64 / w.requests as f64;
    let describe = |w: &Workload| {
        format!(
            "{:.1} % from memory, {:.0} B and {:.2} ECPU from Redis per request",
            100.0 * w.memory as f64 / w.requests as f64,
            redis_bytes(w),
            per_request(w),
        )
    };
    rows.push(Row {
        part: "b",
        label: format!("Zipf workload over {} tenants, {INSTANCES} environments", tenants.len()),
        ours: format!("level on (16 MB, 1 s): {}", describe(&on)),
        floor: format!("level off: {}", describe(&off)),
        ratio: format!("Redis ECPU {}", ratio(per_request(&on), per_request(&off))),
        goal: "fewer Redis bytes per request".into(),
        checks: vec![Check::new(
            Goal::Below(1.0),
            redis_bytes(&on) / redis_bytes(&off),
            format!("{:.0} B vs {:.0} B", redis_bytes(&on), redis_bytes(&off)),
        )],
        how: format!(
            "{RATE} req/s for {SECONDS} s of real time, tenant by Zipf(s = {ZIPF_S}) over every tenant (fixed seed), \
             environment chosen at random; every key holds a {} B entry (a typical bundle), fresh for the whole run; \
             ECPU = reads × max(1, KB per read)",
            copy.len()
        ),
    });
    rows.push(memory(ctx, &tenants).await?);
    Ok(rows)
}

/// Memory hits through `BundleCache::get_bundle` (what replaces the Redis round trip), one at a time
/// on a current-thread runtime, beside `redis-benchmark` GET of the same entry.
async fn latency(ctx: &Context, id: BundleId, size: usize) -> Result<Row> {
    let config = level_on_for_the_run(ctx)?;
    let db = ctx.db();
    let n = 20_000;
    let mut latencies = std::thread::spawn(move || -> Result<Vec<Duration>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let state = dashboard_bundle::State::with_database(config, db, Clock::default())?;
            let mut latencies = Vec::with_capacity(n);
            for i in 0..n + 1_000 {
                let started = Instant::now();
                let served = state.bundles.get_bundle(id, Read::Cached, far_deadline()).await?;
                let took = started.elapsed();
                if i > 0 {
                    anyhow::ensure!(served.level == Level::Memory, "served from {:?}", served.level);
                }
                if i >= 1_000 {
                    latencies.push(took);
                }
            }
            Ok(latencies)
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("latency thread panicked"))??;
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let (floor50, floor99) = floors::redis_get(ctx.redis_port, size, 20_000)?;
    Ok(Row {
        part: "a",
        label: "Cache hit from the in-memory level (typical tenant)".into(),
        ours: format!("p50 {p50:.4} ms, p99 {p99:.4} ms"),
        floor: format!("redis-benchmark GET {size} B: p50 {floor50:.3} ms, p99 {floor99:.3} ms"),
        ratio: format!("p50 {}, p99 {}", ratio(p50, floor50), ratio(p99, floor99)),
        goal: "p50 ≤ 0.3×".into(),
        checks: vec![Check::new(
            Goal::AtMost(0.3),
            p50 / floor50,
            format!("p50 {}", ratio(p50, floor50)),
        )],
        how: format!(
            "{n} sequential BundleCache::get_bundle calls (after 1,000 warm-up) on a current-thread runtime: freshness \
             check, copy of the JSON; floor: one client, same Redis"
        ),
    })
}

/// The dashboard function's config with the level at its default size and copies kept for the whole
/// figure (the age bound is not what these figures measure).
fn level_on_for_the_run(ctx: &Context) -> Result<dashboard_bundle::config::Config> {
    let env = ctx
        .env()
        .set("LOCAL_CACHE_MB", "16")
        .set("LOCAL_CACHE_MAX_AGE_MS", "600000");
    let config = dashboard_bundle::config::Config::from_env(&env.as_env())?;
    Ok(config)
}

struct Workload {
    requests: u64,
    memory: u64,
    redis_reads: u64,
}

/// The Zipf workload through `INSTANCES` function states with `LOCAL_CACHE_MB=mb`.
async fn workload(ctx: &Context, tenants: &[Uuid], mb: &str) -> Result<Workload> {
    let env = ctx.env().set("LOCAL_CACHE_MB", mb);
    let instances: Vec<Arc<dashboard_bundle::State>> = (0..INSTANCES)
        .map(|_| {
            let config = dashboard_bundle::config::Config::from_env(&env.as_env())?;
            Ok(Arc::new(dashboard_bundle::State::with_database(
                config,
                ctx.db(),
                Clock::default(),
            )?))
        })
        .collect::<Result<_>>()?;
    let zipf = Zipf::new(tenants.len(), ZIPF_S);
    let mut random = SplitMix(0x5eed_1ead);
    let interval = Duration::from_micros(1_000_000 / RATE);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..RATE * SECONDS {
        tokio::time::sleep_until(started + interval * i as u32).await;
        let tenant = tenants[zipf.sample(random.unit())];
        let state = instances[(random.next() % INSTANCES as u64) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let id = BundleId::new(Scope::Tenant(tenant), true);
            let served = state.bundles.get_bundle(id, Read::Cached, far_deadline()).await;
            served.map(|s| s.level)
        }));
    }
    let mut w = Workload {
        requests: 0,
        memory: 0,
        redis_reads: 0,
    };
    for task in tasks {
        w.requests += 1;
        match task.await?? {
            Level::Memory => w.memory += 1,
            Level::Redis => w.redis_reads += 1,
            Level::Postgres => anyhow::bail!("a request was computed: every key holds a fresh entry"),
        }
    }
    Ok(w)
}

/// Resident memory of this process taken by one environment's level filled past its default size.
async fn memory(ctx: &Context, tenants: &[Uuid]) -> Result<Row> {
    let config = level_on_for_the_run(ctx)?;
    let capacity = config.local.capacity_bytes;
    let before = status_kib("VmRSS").unwrap_or(0);
    let state = dashboard_bundle::State::with_database(config, ctx.db(), Clock::default())?;
    for tenant in tenants {
        let id = BundleId::new(Scope::Tenant(*tenant), true);
        state.bundles.get_bundle(id, Read::Cached, far_deadline()).await?;
    }
    let held = state.bundles.local().weighted_size().await;
    let copies = state.bundles.local().entry_count().await;
    let grown_mib = status_kib("VmRSS").unwrap_or(0).saturating_sub(before) as f64 / 1024.0;
    Ok(Row {
        part: "c",
        label: "Memory of the level at the default LOCAL_CACHE_MB=16".into(),
        ours: format!(
            "{copies} copies, {:.1} MB counted; process resident +{grown_mib:.1} MiB",
            held as f64 / 1e6
        ),
        floor: format!("{:.1} MB configured", capacity as f64 / 1e6),
        ratio: ratio(held as f64, capacity as f64),
        goal: "≤ 1× counted; resident well inside a 256 MB function".into(),
        // "Well inside" is for a reader to judge.
        checks: Vec::new(),
        how: format!(
            "one environment reads every one of {} tenants once (each a typical bundle); counted = moka's weighted size \
             (JSON + key + 256 B per copy); resident = VmRSS before and after",
            tenants.len()
        ),
    })
}

/// Ranks 0..n by a Zipf law, by inverse transform over the cumulative weights.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        Self {
            cumulative: cumulative.iter().map(|c| c / total).collect(),
        }
    }

    fn sample(&self, u: f64) -> usize {
        self.cumulative
            .partition_point(|&c| c < u)
            .min(self.cumulative.len() - 1)
    }
}
