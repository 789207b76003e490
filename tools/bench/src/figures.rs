//! Each figure: what is measured, how, and the floor it is compared with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use chrono::{TimeDelta, Utc};
use shared::auth::Role;
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::bundle::query::{self as bundle, Sql};
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use shared::serving::Read;
use shared::store::Entry;
use sqlx::PgPool;
use test_support::{self as testing, event, request, with_token, TestEnv};
use uuid::Uuid;
use warm_cache::deadline::Deadline;
use warm_cache::input::Input;

use crate::{floors, Row};

mod local_level;
pub use local_level::local_level;

pub struct Context {
    pub pool: PgPool,
    pub database_url: String,
    redis_port: u16,
    /// Tenant no. 1: 115,000 rows.
    huge: Uuid,
    /// A tenant of median size.
    typical: Uuid,
    prefix: String,
    dir: PathBuf,
}

impl Context {
    pub async fn new(pool: PgPool, database_url: String, redis_port: u16) -> Result<Self> {
        let huge = sqlx::query_scalar("SELECT id FROM bench_tenant WHERE n = 1")
            .fetch_one(&pool)
            .await?;
        let typical = sqlx::query_scalar(
            "SELECT id FROM bench_tenant WHERE n > 1 ORDER BY size, n OFFSET (SELECT count(*) / 2 FROM bench_tenant) LIMIT 1",
        )
        .fetch_one(&pool)
        .await?;
        let dir = std::env::temp_dir().join(format!("dashboard-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            pool,
            database_url,
            redis_port,
            huge,
            typical,
            prefix: format!("bench:{}:", Uuid::new_v4().simple()),
            dir,
        })
    }

    /// The functions' environment in the benchmark: long timeouts, a prefix of this run's own.
    pub(crate) fn env(&self) -> TestEnv {
        TestEnv::new()
            .set("DATABASE_URL", self.database_url.clone())
            .set("REDIS_URL", format!("redis://127.0.0.1:{}", self.redis_port))
            .set("CACHE_KEY_PREFIX", self.prefix.clone())
            .set("DB_POOL_SIZE", "8")
            .set("DB_ACQUIRE_TIMEOUT_MS", "30000")
            .set("DB_STATEMENT_TIMEOUT_MS", "120000")
            .set("REQUEST_DEADLINE_MS", "120000")
            .set("REDIS_CONNECT_TIMEOUT_MS", "1000")
            .set("REDIS_RESPONSE_TIMEOUT_MS", "2000")
            .set("BUNDLE_MAX_AGE_SECONDS", "90000")
            .set("BUNDLE_LEASE_MS", "30000")
    }

    pub fn db(&self) -> Database {
        self.env().database(&self.pool)
    }

    fn dashboard_config(&self) -> dashboard_bundle::config::Config {
        dashboard_bundle::config::Config::from_env(&self.env().as_env()).expect("bench config")
    }

    fn state(&self, clock: &Clock) -> dashboard_bundle::State {
        dashboard_bundle::State::with_database(self.dashboard_config(), self.db(), clock.clone())
            .expect("bench state")
    }

    pub async fn cleanup(&self) {
        let cache = shared::store::RedisCache::new(&self.env().redis()).expect("redis config");
        let _ = cache.unlink_matching(&format!("{}*", self.prefix)).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The bundle statements of `tenant` with literal values, for pgbench: what `bundle::compute` runs.
    fn literal_sql(&self, tenant: &str, include: &str) -> Vec<String> {
        self.literal_sql_of(Some(tenant), include, false)
    }

    /// The bundle statements of a tenant (`None`: the global view) with literal values, the stats from
    /// the maintained counters or (`full_scan`) by the reference full scan of the tables.
    pub fn literal_sql_of(&self, tenant: Option<&str>, include: &str, full_scan: bool) -> Vec<String> {
        let since =
            bundle::recent_window_start(Utc::now(), shared::bundle::tenant_time::Zone::Utc).to_rfc3339();
        let sql = Sql::for_scope(match tenant {
            Some(_) => Scope::Tenant(Uuid::nil()),
            None => Scope::Global,
        });
        let literal = tenant
            .map(|t| format!("{t}::uuid"))
            .unwrap_or_else(|| "NULL::uuid".to_owned());
        let fill = |s: &str| {
            s.replace("$1::uuid", &literal)
                .replace("$2::bool", include)
                .replace("$3::timestamptz", &format!("'{since}'::timestamptz"))
        };
        let version = match tenant {
            Some(_) => shared::bundle::version::TENANT_VERSION_SQL.replace("$1::uuid", &literal),
            None => shared::bundle::version::GLOBAL_VERSION_SQL.to_owned(),
        };
        let stats = if full_scan {
            &sql.stats
        } else {
            &sql.maintained_stats
        };
        vec![
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;".to_owned(),
            format!("{};", one_line(&version)),
            format!("{};", one_line(&fill(stats))),
            format!("{};", one_line(&fill(&sql.recent_activities))),
            format!("{};", one_line(&fill(&sql.recent_leads))),
            format!("{};", one_line(&fill(&sql.recent_opportunities))),
            "COMMIT;".to_owned(),
        ]
    }

    pub fn script(&self, name: &str, lines: &[String]) -> Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok(path)
    }
}

/// Figure 7: Redis going silent. A flow dropped without FIN or RST (new flows work), then a wedged
/// server (accepts, never answers) that recovers: time back to `HIT` and the p99 of requests meanwhile,
/// beside the configured bounds.
pub async fn silent_drop(ctx: &Context) -> Result<Vec<Row>> {
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
        Some(&testing::token(Role::Employee, Some(ctx.typical))),
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
        figure: "7. Silent Redis drop (new flows work): back to HIT".into(),
        ours: format!(
            "{:.0} ms; worst request {:.0} ms",
            recovered.as_secs_f64() * 1000.0,
            percentile(&latencies, 1.0)
        ),
        floor: format!("response timeout {response_ms} ms"),
        ratio: ratio(recovered.as_secs_f64() * 1000.0, response_ms as f64),
        goal: "HIT within 1 s".into(),
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
        figure: "7. Wedged Redis (3 s), then healed: requests meanwhile, back to HIT".into(),
        ours: format!(
            "p50 {:.0} ms, p99 {:.0} ms during; HIT {:.0} ms after healing",
            percentile(&during, 0.5),
            percentile(&during, 0.99),
            recovered.as_secs_f64() * 1000.0
        ),
        floor: format!("bound {bound:.0} ms (2 × connect timeout) + the computation"),
        ratio: ratio(percentile(&during, 0.99), bound),
        goal: "p99 ≤ bound + miss; HIT within 1 s".into(),
        how: format!(
            "{} requests while the proxy accepted and never answered (BYPASS, median tenant)",
            during.len()
        ),
    });
    Ok(rows)
}

/// A request deadline no benchmark reaches.
pub fn far_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(600)
}

/// pgbench reads one statement per line.
pub fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub fn ratio(ours: f64, floor: f64) -> String {
    format!("{:.2}×", ours / floor)
}

/// Figure 1: A cache hit through the real handler vs redis-benchmark GET of a value of the same size.
/// The requests run on a single-threaded runtime, as the HTTP functions' `main` sets up.
pub async fn hit(ctx: &Context) -> Result<Vec<Row>> {
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
        figure: "1. Cache hit, handler in-process (large tenant's bundle)".into(),
        ours: format!("p50 {p50:.3} ms, p99 {p99:.3} ms"),
        floor: format!("redis-benchmark GET {} B: p50 {floor50:.3} ms, p99 {floor99:.3} ms", stored.len()),
        ratio: format!("p50 {}, p99 {}", ratio(p50, floor50), ratio(p99, floor99)),
        goal: "p50 ≤ 1.3×".into(),
        how: format!(
            "{n} sequential requests (after 500 warm-up) through dashboard_bundle::route on a current-thread runtime: \
             JWT check, query parse, GET, decode, response, INFO log line (formatted, written to a sink); floor: one client, same Redis"
        ),
    }])
}

/// Figure 2: A miss on the large tenant vs the same SQL run by pgbench, and vs the previous system's dozen queries.
pub async fn miss(ctx: &Context) -> Result<Vec<Row>> {
    let scope = Scope::Tenant(ctx.huge);
    let runs = 15;
    let mut times = Vec::new();
    for i in 0..runs + 3 {
        let started = Instant::now();
        let computed = bundle::compute(&ctx.db(), BundleId::new(scope, true), Utc::now(), 300).await?;
        let _json = serde_json::to_vec(&computed.bundle)?;
        if i >= 3 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    let ours = percentile(&times, 0.5);
    let tenant = format!("'{}'", ctx.huge);
    let same = ctx.script("miss-same.sql", &ctx.literal_sql(&tenant, "true"))?;
    let (floor, _) = floors::pgbench(&ctx.database_url, &same, 1, runs)?;
    // The previous system: each figure its own query, the pipeline summed in the application over at
    // most 1,000 rows, each list its own query.
    let t = format!("tenant_id = {tenant}::uuid");
    let since = format!(
        "'{}'::timestamptz",
        bundle::recent_window_start(Utc::now(), shared::bundle::tenant_time::Zone::Utc).to_rfc3339()
    );
    let previous: Vec<String> = vec![
        format!("SELECT count(*) FROM contacts WHERE {t};"),
        format!("SELECT count(*) FROM accounts WHERE {t};"),
        format!("SELECT count(*) FROM leads WHERE {t};"),
        format!("SELECT count(*) FROM opportunities WHERE {t};"),
        format!("SELECT count(*) FROM leads WHERE {t} AND (status IS NULL OR status NOT IN ('converted', 'lost'));"),
        format!("SELECT count(*) FROM opportunities WHERE {t} AND stage IN ('won', 'closed_won');"),
        format!("SELECT count(*) FROM opportunities WHERE {t} AND (stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost'));"),
        format!("SELECT count(*) FROM leads WHERE {t} AND coalesce(created_date, created_at) >= {since};"),
        format!("SELECT count(*) FROM activities WHERE {t} AND coalesce(created_date, created_at) >= {since};"),
        format!("SELECT amount, stage FROM opportunities WHERE {t} LIMIT 1000;"),
        format!("SELECT id, type, subject, status, created_at, created_date, assigned_to FROM activities WHERE {t} ORDER BY created_at DESC LIMIT 10;"),
        format!("SELECT id, first_name, last_name, company, created_date, status FROM leads WHERE {t} ORDER BY coalesce(created_date, created_at) DESC LIMIT 5;"),
        format!("SELECT id, name, amount, stage, updated_at FROM opportunities WHERE {t} ORDER BY updated_at DESC LIMIT 5;"),
    ];
    let previous_path = ctx.script("miss-previous.sql", &previous)?;
    let (previous_ms, _) = floors::pgbench(&ctx.database_url, &previous_path, 1, runs)?;
    Ok(vec![
        Row {
            figure: "2. Miss: large tenant (115,000 rows), compute + serialize".into(),
            ours: format!("p50 {ours:.1} ms"),
            floor: format!("same SQL by pgbench: {floor:.1} ms"),
            ratio: ratio(ours, floor),
            goal: "≤ 1.5×".into(),
            how: format!("{runs} runs of bundle::compute after 3 warm-up; pgbench -t {runs} -c 1 of the same statements in one read-only transaction"),
        },
        Row {
            figure: "2b. Miss vs the previous system's 13 separate queries".into(),
            ours: format!("p50 {ours:.1} ms"),
            floor: format!("13 queries by pgbench: {previous_ms:.1} ms"),
            ratio: ratio(ours, previous_ms),
            goal: "(context)".into(),
            how: "the old approach also summed the pipeline over at most 1,000 rows, so its figures were wrong for large tenants".into(),
        },
    ])
}

/// Figure 5: Bytes stored per hit vs the raw JSON.
pub async fn bytes(ctx: &Context) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (name, tenant) in [("large tenant", ctx.huge), ("median tenant", ctx.typical)] {
        let computed = bundle::compute(
            &ctx.db(),
            BundleId::new(Scope::Tenant(tenant), true),
            Utc::now(),
            300,
        )
        .await?;
        let json = serde_json::to_string(&computed.bundle)?;
        let raw = json.len();
        let stored = Entry {
            generated_at_ms: 0,
            validated_at_ms: 0,
            data_version: 0,
            day_ends_at_ms: 0,
            json,
        }
        .encode()
        .len();
        rows.push(Row {
            figure: format!("5. Bytes per hit, {name}"),
            ours: format!("{stored} B stored"),
            floor: format!("{raw} B raw JSON"),
            ratio: format!("{:.2}", stored as f64 / raw as f64),
            goal: "≤ 0.33".into(),
            how: "Entry::encode (29-byte header + zstd level 3 when smaller) of the bundle's JSON".into(),
        });
    }
    Ok(rows)
}

/// Figure 4: 200 concurrent requests, each through its own instance, on an expired key and on a cold key.
pub async fn stampede(ctx: &Context) -> Result<Vec<Row>> {
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
            Some(&testing::token(Role::Employee, Some(ctx.huge))),
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
            figure: format!("4. Stampede: 200 concurrent on {} key (large tenant)", if expired { "an expired" } else { "a cold" }),
            ours: format!("{recomputes} recompute(s); p50 {:.1} ms, p99 {:.1} ms", percentile(&latencies, 0.5), percentile(&latencies, 0.99)),
            floor: "1 recompute".into(),
            ratio: format!("{recomputes}×"),
            goal: "1 recompute".into(),
            how: format!("200 function states (own Redis connection each, as 200 Lambda environments) via tokio::spawn; responses: {mix}"),
        });
    }
    Ok(rows)
}

/// Figure 3: Warming every active tenant vs pgbench running the same queries at the same concurrency.
pub async fn warm(ctx: &Context) -> Result<Vec<Row>> {
    let concurrency = 8u32;
    let env = ctx
        .env()
        .set("WARM_CONCURRENCY", concurrency.to_string())
        .set("WARM_TTL_SECONDS", "90000")
        .set("WARM_FANOUT_THRESHOLD", u64::MAX.to_string())
        .set("WARM_TENANT_TIMEOUT_MS", "120000")
        .set("WARM_DEADLINE_MARGIN_MS", "120000");
    let config = warm_cache::config::Config::from_env(&env.as_env()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = warm_cache::WarmState::with_database(config, ctx.db(), None)?;
    let active: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM tenant WHERE status = 'active' ORDER BY id")
        .fetch_all(&ctx.pool)
        .await?;
    // Peak memory of the run alone: reset the high-water mark first.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let summary = warm_cache::warm(
        &state,
        &Input::Manual {
            tenant_ids: active.clone(),
        },
        Deadline::none(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenants_wall = started.elapsed().as_secs_f64();
    let peak_mb = vm_hwm_kb().map(|kb| kb as f64 / 1024.0).unwrap_or(0.0);
    let global_started = Instant::now();
    for include in [true, false] {
        state
            .bundles
            .refresh(BundleId::new(Scope::Global, include), Duration::from_secs(90_000))
            .await?;
    }
    let global_wall = global_started.elapsed().as_secs_f64();
    let rate = summary.bundles_warmed as f64 / tenants_wall;

    let mut script = vec![
        "\\set n random(2, 10000)".to_owned(),
        "\\set inc random(0, 1)".to_owned(),
        "SELECT id AS tid FROM bench_tenant WHERE n = :n \\gset".to_owned(),
    ];
    script.extend(ctx.literal_sql(":tid", "(:inc = 1)"));
    let path = ctx.script("warm.sql", &script)?;
    let transactions = 2 * active.len() as u32 / concurrency;
    let (_, tps) = floors::pgbench(&ctx.database_url, &path, concurrency, transactions)?;
    Ok(vec![Row {
        figure: format!("3. Warm: {} active tenants × 2 variants", active.len()),
        ours: format!(
            "{tenants_wall:.1} s, {rate:.0} bundles/s ({} failures), peak RSS {peak_mb:.0} MB; + global view {global_wall:.1} s",
            summary.failures
        ),
        floor: format!("pgbench, same queries, {concurrency} clients: {tps:.0} bundles/s"),
        ratio: format!("{:.0}%", 100.0 * rate / tps),
        goal: "≥ 70%".into(),
        how: format!("warm_cache::warm with WARM_CONCURRENCY={concurrency} (compute, serialize, compress, SET); pgbench -c {concurrency} -t {transactions}, a random tenant and variant per transaction, no Redis"),
    }])
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Figure 6: Release artefacts: arm64 bootstrap sizes, and time from process start to ready (the process's
/// first call to the Lambda runtime API) of host builds of the same code.
pub async fn artefacts(ctx: &Context) -> Result<Vec<Row>> {
    let target = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned()));
    let mut rows = Vec::new();
    for function in ["dashboard-bundle", "clear-cache", "warm-cache"] {
        let bootstrap = target.join("lambda").join(function).join("bootstrap");
        let size = std::fs::metadata(&bootstrap)
            .map(|m| m.len() as f64 / 1_048_576.0)
            .ok();
        let host = target.join("release").join(function);
        let mut ready = Vec::new();
        for _ in 0..5 {
            ready.push(time_to_ready(&host, ctx).await?);
        }
        ready.sort();
        rows.push(Row {
            figure: format!("6. Artefact: {function}"),
            ours: format!(
                "{}; ready in {:.1} ms (median of 5)",
                size.map(|mb| format!("{mb:.2} MB")).unwrap_or_else(|| "not built".into()),
                ready[2].as_secs_f64() * 1000.0
            ),
            floor: "-".into(),
            ratio: "-".into(),
            goal: match size {
                Some(mb) if mb > 8.0 => format!(
                    "≤ 8 MB: missed by {:.2} MB (the AWS SDK for EventBridge with its own HTTP and TLS stack)",
                    mb - 8.0
                ),
                _ => "≤ 8 MB".into(),
            },
            how: "size of target/lambda/<function>/bootstrap (cargo lambda build --release --arm64); ready = host release binary's first request to a local runtime API".into(),
        });
    }
    Ok(rows)
}

async fn time_to_ready(binary: &std::path::Path, ctx: &Context) -> Result<Duration> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    let env = ctx.env();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("DATABASE_URL", env.get("DATABASE_URL").unwrap_or_default())
        .env("REDIS_URL", env.get("REDIS_URL").unwrap_or_default())
        .env("JWT_SECRET", testing::TEST_JWT_SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} (run make bench, which builds it)", binary.display()))?;
    let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
    let ready = started.elapsed();
    let _ = child.kill().await;
    accepted.context("no call to the runtime API within 10 s")??;
    Ok(ready)
}
