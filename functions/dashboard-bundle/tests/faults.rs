//! Faults: a sick cache never fails a read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashboard_bundle::handle;
use shared::auth::Role;
use shared::state::AppState;
use shared::testing::{self, event, request, with_token, OwnRedis};
use sqlx::PgPool;
use uuid::Uuid;

/// Every cache call is bounded by the connect and response timeouts; a request may pay both, twice
/// (one reconnect), plus the computation.
const REQUEST_BOUND: Duration = Duration::from_secs(3);

async fn get(state: &AppState, tenant: Uuid) -> (u16, String, Duration) {
    let started = Instant::now();
    let token = testing::token(Role::Employee, Some(tenant));
    let response = handle(
        state,
        request(&with_token(event("dashboard-bundle.json"), Some(&token))),
    )
    .await
    .expect("handlers never return Err");
    let x_cache = response
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), x_cache, started.elapsed())
}

#[sqlx::test(migrations = "../../migrations")]
async fn redis_stopped_under_load_still_answers_every_request_and_hits_resume_after_restart(pool: PgPool) {
    let mut redis = OwnRedis::start();
    let tenant = testing::insert_tenant(&pool, "acme").await;
    let mut config = testing::config();
    config.redis.url = redis.url();
    let state = Arc::new(testing::state(config, pool));
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
    let restarted = Instant::now();
    loop {
        let (status, x_cache, _) = get(&state, tenant).await;
        assert_eq!(status, 200);
        if x_cache == "HIT" {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(1),
            "no hit within 1 s of the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrations = "../../migrations")]
async fn bounded_load_has_no_errors_and_a_bounded_number_of_connections(pool: PgPool) {
    let redis = OwnRedis::start();
    let tenants: Vec<Uuid> = {
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(testing::insert_tenant(&pool, &format!("t{i}")).await);
        }
        ids
    };
    let mut config = testing::config();
    config.redis.url = redis.url();
    let state = Arc::new(testing::state(config, pool.clone()));

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
        state.dashboard.pool().size() <= 10,
        "Postgres connections: {}",
        state.dashboard.pool().size()
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
