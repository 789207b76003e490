//! Faults: a sick cache or database never fails a read, and every request ends within its bound.
//! Closed sockets (a stopped server) and silent ones (a flow a NAT forgot, a wedged server: the fault
//! proxy) alike.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use dashboard_bundle::State;
use shared::platform::clock::Clock;
use sqlx::PgPool;
use test_support::{self as testing, FaultProxy, Mode, OwnRedis, TestEnv};
use uuid::Uuid;

/// Every cache call is bounded by the connect and response timeouts; a request may pay both, twice
/// (one reconnect), plus the computation.
const REQUEST_BOUND: Duration = Duration::from_secs(3);

async fn get(state: &State, tenant: Uuid) -> (u16, String, Duration) {
    let started = Instant::now();
    let reply = crate::app::get(state, tenant).await;
    (reply.status, reply.x_cache.unwrap_or_default(), started.elapsed())
}

/// Short Redis timeouts, so that silence costs little test time.
fn fast_env(redis_url: &str) -> TestEnv {
    TestEnv::new()
        .set("REDIS_URL", redis_url)
        .set("REDIS_CONNECT_TIMEOUT_MS", "250")
        .set("REDIS_RESPONSE_TIMEOUT_MS", "250")
}

/// Requests until one answers `HIT`; returns how long that took. Every request must be a 200 within
/// `bound`, and a hit must come within `within`.
async fn time_to_hit(state: &State, tenant: Uuid, bound: Duration, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, x_cache, took) = get(state, tenant).await;
        assert_eq!(status, 200, "{x_cache}");
        assert!(took < bound, "a request took {took:?}");
        if x_cache == "HIT" {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "no HIT within {within:?} (last: {x_cache})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn redis_addr(url: &str) -> SocketAddr {
    url.trim_start_matches("redis://")
        .parse()
        .expect("redis://ip:port")
}

#[sqlx::test(migrations = "../../migrations")]
async fn redis_stopped_under_load_still_answers_every_request_and_hits_resume_after_restart(pool: PgPool) {
    let mut redis = OwnRedis::start();
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = Arc::new(crate::app::state(
        &TestEnv::new().set("REDIS_URL", redis.url()),
        &pool,
    ));
    assert_eq!(get(&state, tenant).await.1, "MISS");
    assert_eq!(get(&state, tenant).await.1, "HIT");

    let workers: Vec<_> = (0..8)
        .map(|_| {
            let state = state.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..25 {
                    seen.push(get(&state, tenant).await);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(60)).await;
    redis.stop();
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.extend(worker.await.unwrap());
    }
    for (status, x_cache, took) in &outcomes {
        assert_eq!(*status, 200, "{x_cache}");
        assert!(
            ["HIT", "MISS", "BYPASS", "STALE"].contains(&x_cache.as_str()),
            "{x_cache}"
        );
        assert!(*took < REQUEST_BOUND, "{took:?}");
    }
    assert!(
        outcomes.iter().any(|(_, x, _)| x == "BYPASS"),
        "Redis was down for part of the run"
    );

    redis.restart();
    time_to_hit(&state, tenant, REQUEST_BOUND, Duration::from_secs(1)).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_silently_dropped_redis_connection_is_retired_and_hits_resume_within_a_second(pool: PgPool) {
    let redis = OwnRedis::start();
    let proxy = FaultProxy::start(redis_addr(&redis.url())).await;
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = crate::app::state(&fast_env(&format!("redis://{}", proxy.addr())), &pool);
    assert_eq!(get(&state, tenant).await.1, "MISS");
    assert_eq!(get(&state, tenant).await.1, "HIT");
    let flows_before = proxy.flows();

    // The flow goes silent: no FIN, no RST, packets just stop. New flows work.
    proxy.set(Mode::DropExisting);
    let recovered = time_to_hit(&state, tenant, Duration::from_secs(2), Duration::from_secs(1)).await;
    assert!(proxy.flows() > flows_before, "a new connection was opened");

    // And it stays healthy: no request after recovery waits out a timeout.
    for _ in 0..20 {
        let (status, x_cache, took) = get(&state, tenant).await;
        assert_eq!((status, x_cache.as_str()), (200, "HIT"));
        assert!(took < Duration::from_millis(200), "{took:?}");
    }
    println!("recovered to HIT {recovered:?} after the drop");
    testing::cleanup_prefix(&TestEnv::new().prefix()).await;
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_wedged_redis_costs_each_request_one_bounded_wait_and_hits_resume_after_it_recovers(pool: PgPool) {
    let redis = OwnRedis::start();
    let proxy = FaultProxy::start(redis_addr(&redis.url())).await;
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let state = crate::app::state(&fast_env(&format!("redis://{}", proxy.addr())), &pool);
    assert_eq!(get(&state, tenant).await.1, "MISS");

    // Accepts connections, answers nothing.
    proxy.set(Mode::Wedged);
    let mut outcomes = Vec::new();
    let wedged_for = Instant::now();
    while wedged_for.elapsed() < Duration::from_secs(2) {
        outcomes.push(get(&state, tenant).await);
    }
    for (status, x_cache, took) in &outcomes {
        assert_eq!((*status, x_cache.as_str()), (200, "BYPASS"));
        // One response timeout or one bounded connect, plus the computation.
        assert!(*took < Duration::from_millis(900), "{took:?}");
    }

    proxy.set(Mode::Healed);
    let recovered = time_to_hit(&state, tenant, Duration::from_secs(2), Duration::from_secs(1)).await;
    println!(
        "{} requests while wedged; HIT {recovered:?} after it recovered",
        outcomes.len()
    );
}

#[sqlx::test(migrations = "../../migrations")]
async fn a_silent_postgres_serves_the_cached_entry_within_the_request_deadline(pool: PgPool) {
    let proxy = FaultProxy::start(crate::app::pg_addr(&pool)).await;
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let env = TestEnv::new()
        .set("REQUEST_DEADLINE_MS", "1500")
        .set("DB_ACQUIRE_TIMEOUT_MS", "1000");
    let clock = Clock::default();
    let proxied = testing::pool_at(&pool, proxy.addr());
    let db = shared::platform::db::Database::new(proxied.clone(), &env.database_config());
    let state = crate::app::state_over(&env, db, clock.clone());
    let other = testing::insert_tenant(&pool, "globex").await;
    assert_eq!(get(&state, tenant).await.1, "MISS");
    // The pool hands a used connection back in the background: wait until it is idle again, or the
    // next request could open a new one after the proxy goes silent (a busy test run did).
    while proxied.num_idle() < proxied.size() as usize {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Past the freshness window a request must ask Postgres, whose connections have gone silent
    // (an RDS failover leaves sockets to the old primary hanging).
    clock.advance(TimeDelta::minutes(10));
    proxy.set(Mode::DropExisting);
    let (status, x_cache, took) = get(&state, tenant).await;
    assert_eq!((status, x_cache.as_str()), (200, "STALE"));
    assert!(took < Duration::from_millis(1_800), "{took:?}");

    // A tenant with nothing cached gets a JSON 503 in the same bound, never a hang.
    proxy.set(Mode::Wedged);
    let (status, _, took) = get(&state, other).await;
    assert_eq!(status, 503);
    assert!(took < Duration::from_millis(1_800), "{took:?}");

    // Once Postgres answers new connections again, requests are served from it again.
    proxy.set(Mode::Healed);
    let started = Instant::now();
    loop {
        let (status, x_cache, took) = get(&state, other).await;
        assert!(took < Duration::from_millis(1_800), "{took:?}");
        if status == 200 {
            assert_eq!(x_cache, "MISS");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "Postgres never came back"
        );
    }
    testing::cleanup_prefix(&env.prefix()).await;
    // The silenced flows' server sessions end once the proxy lets their sockets go: wait for that,
    // or dropping the test database races them ("being accessed by other users").
    drop(state);
    proxied.close().await;
    drop(proxy);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if others < i64::from(pool.size()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn bounded_load_has_no_errors_and_a_bounded_number_of_connections(pool: PgPool) {
    let redis = OwnRedis::start();
    let mut tenants = Vec::new();
    for i in 0..20 {
        tenants.push(testing::insert_tenant(&pool, &format!("t{i}")).await);
    }
    let env = TestEnv::new().set("REDIS_URL", redis.url());
    let db = env.database(&pool);
    let state = Arc::new(crate::app::state_over(&env, db.clone(), Clock::default()));

    let requests = 2_000;
    let mut tasks = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..requests {
        let (state, limit, tenant) = (state.clone(), limit.clone(), tenants[i % tenants.len()]);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            get(&state, tenant).await.0
        });
    }
    let mut ok = 0;
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
        ok += 1;
    }
    assert_eq!(ok, requests);

    assert!(
        db.pool().size() <= 10,
        "Postgres connections: {}",
        db.pool().size()
    );
    let client = redis::Client::open(redis.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .unwrap();
    // Ours and this admin connection.
    assert_eq!(clients.lines().count(), 2, "{clients}");
}
