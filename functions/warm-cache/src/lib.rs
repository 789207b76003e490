//! The warm-cache function: invoked by an EventBridge schedule (midnight UTC for `WARM_MODE=all`,
//! hourly for `local`), by hand, or by its own fan-out chunks, it stores the bundles of the tenants
//! the run picks (see [`plan`]) so the morning's first request hits.

pub mod config;
pub mod cron_route;
pub mod deadline;
pub mod fanout;
pub mod input;
pub mod job;
pub mod plan;
pub mod report;
pub mod run;
pub mod upkeep;

use std::time::Instant;

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use shared::env::chain;
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use shared::platform::secrets;
use shared::serving::BundleCache;
use shared::serving::StartupError;
use shared::store::RedisCache;

use crate::config::{Config, WarmConfig};
use crate::deadline::Deadline;
use crate::fanout::Fanout;
use crate::report::Summary;
use crate::run::{millis, Warmer};

/// How long a scheduled run spends folding deltas before it warms.
const RUN_COMPACTION_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// What the function builds once per cold start and shares across invocations.
pub struct WarmState {
    pub db: Database,
    pub bundles: BundleCache,
    pub warm: WarmConfig,
    pub fanout: Option<Fanout>,
    /// The time runs decide by (tests and the benchmark move it).
    pub clock: Clock,
}

impl WarmState {
    /// Builds clients without connecting: the first run connects. A database URL that `env` read from
    /// Secrets Manager is read again when Postgres refuses it (a rotation).
    pub fn new(
        config: Config,
        fanout: Option<Fanout>,
        env: &secrets::Environment,
    ) -> Result<Self, StartupError> {
        let url_secret = env.rotating("DATABASE_URL", shared::platform::db::CREDENTIALS_REREAD_INTERVAL);
        let db = Database::connect_lazy_rotating(&config.database, url_secret)?;
        Self::with_database(config, db, fanout)
    }

    /// The same over an existing database (tests pass a per-test database or a pooler).
    pub fn with_database(config: Config, db: Database, fanout: Option<Fanout>) -> Result<Self, StartupError> {
        Self::with_clock(config, db, fanout, Clock::default())
    }

    /// The same with a clock of the caller's (a simulated day).
    pub fn with_clock(
        config: Config,
        db: Database,
        fanout: Option<Fanout>,
        clock: Clock,
    ) -> Result<Self, StartupError> {
        let redis = RedisCache::new(&config.redis)?;
        let keys = config.keys.clone();
        Ok(Self {
            bundles: BundleCache::new(db.clone(), redis, keys, config.freshness, clock.clone()),
            db,
            warm: config.warm,
            fanout,
            clock,
        })
    }
}

/// Handles one invocation. Returns the run's summary; an `Err` only when the event is not one this
/// function understands, or when nothing at all could be warmed (so that EventBridge's retry helps).
pub async fn warm_event(state: &WarmState, event: LambdaEvent<Value>) -> Result<Value, Error> {
    // The run's futures are boxed: nested in `main`'s future they exceed the compiler's layout depth
    // limit in release builds.
    if state.warm.cron_route && cron_route::is_http_event(&event.payload) {
        return Ok(Box::pin(cron_execute(state, &event)).await);
    }
    let input =
        input::parse(&event.payload).inspect_err(|e| tracing::error!(error = %e, "rejected event"))?;
    let deadline = Deadline::from_epoch_ms(event.context.deadline, state.warm.deadline_margin);
    if input == input::Input::Compact {
        return compact(state, deadline).await;
    }
    let summary = Box::pin(warm(state, &input, deadline)).await?;
    Ok(serde_json::to_value(&summary)?)
}

/// `POST /api/cron/execute` (make dev): the runbook's manual warm, answered as an HTTP response.
async fn cron_execute(state: &WarmState, event: &LambdaEvent<Value>) -> Value {
    use serde_json::json;
    match cron_route::parse(&event.payload) {
        cron_route::Request::Refused(response) => response,
        cron_route::Request::Warm => {
            let deadline = Deadline::from_epoch_ms(event.context.deadline, state.warm.deadline_margin);
            let input = input::Input::Schedule { execution_id: None };
            match Box::pin(warm(state, &input, deadline)).await {
                Ok(summary) => cron_route::response(
                    200,
                    &json!({"status": "success", "function_name": cron_route::WARM_FUNCTION_NAME, "data": summary}),
                ),
                Err(e) => {
                    tracing::error!(error = %e, "runbook warm failed");
                    cron_route::response(
                        503,
                        &json!({"status": "error", "error": "warm_failed",
                                "message": "the warm run did nothing (Postgres or Redis unavailable); see cache_warm_run and the log"}),
                    )
                }
            }
        }
    }
}

/// `{"action": "compact"}`: folds the change deltas (an `Err`, retried, when Postgres fails).
pub async fn compact(state: &WarmState, deadline: Deadline) -> Result<Value, Error> {
    let started = Instant::now();
    let folded = upkeep::compact(&state.db, deadline)
        .await
        .inspect_err(|e| tracing::error!(error = %chain(e), "compaction failed"))?;
    let duration_ms = millis(started.elapsed());
    tracing::info!(deltas_compacted = folded, duration_ms, "compaction finished");
    Ok(serde_json::json!({"deltas_compacted": folded, "duration_ms": duration_ms}))
}

/// Runs `input`, records the run row and the metrics line, and returns the summary.
pub async fn warm(state: &WarmState, input: &input::Input, deadline: Deadline) -> Result<Summary, Error> {
    let started = Instant::now();
    let db = &state.db;
    let execution_id = match input {
        input::Input::Schedule { execution_id } => execution_id.as_deref(),
        _ => None,
    };
    // A retry of a scheduled execution (Lambda's, after a timeout) must not redo its work.
    let earlier = match execution_id {
        Some(id) => report::attempt_of(db, id)
            .await
            .inspect_err(|e| tracing::error!(error = %chain(e), "cannot look up earlier attempts"))?,
        None => None,
    };
    if let Some(attempt) = earlier.filter(|a| a.finished) {
        tracing::info!(run_id = %attempt.run_id, "this scheduled execution already ran to the end");
        return Ok(Summary {
            run_id: attempt.run_id,
            trigger: input.trigger(),
            already_done: true,
            ..Summary::default()
        });
    }
    let parent = match input {
        input::Input::Chunk { parent_run_id, .. } => *parent_run_id,
        _ => earlier.map(|a| a.run_id),
    };
    let run_id = report::start(db, input.trigger(), parent, execution_id)
        .await
        .inspect_err(|e| tracing::error!(error = %chain(e), "cannot record the run: Postgres unavailable"))?;
    if matches!(input, input::Input::Schedule { .. }) {
        if let Err(e) = job::record(db, &state.warm, state.clock.now()).await {
            tracing::warn!(error = %chain(&e), "cannot record the job's schedule for cron_job");
        }
    }
    let mut summary = Summary {
        run_id,
        trigger: input.trigger(),
        mode: state.warm.policy.mode.as_str(),
        ..Summary::default()
    };
    let warmer = Warmer {
        bundles: &state.bundles,
        db: &state.db,
        config: &state.warm,
        fanout: state.fanout.as_ref(),
        warmed_since_ms: earlier.map(|a| a.started_at_ms),
        now: state.clock.now(),
        invalid_zones: Default::default(),
    };
    if matches!(input, input::Input::Schedule { .. }) {
        // Fewer deltas for every bundle this run computes, within a budget so that a backlog (the
        // compact schedule failing for a while) never eats the run; the compact schedule does the rest.
        match upkeep::compact(db, deadline.within(RUN_COMPACTION_BUDGET)).await {
            Ok(folded) => summary.deltas_compacted = folded,
            Err(e) => summary.record_error(format!("compaction failed: {}", chain(&e))),
        }
    }
    // Boxed: the run's future nests the whole bundle computation, deep enough to exceed the
    // compiler's layout depth limit in release builds when inlined into `main`'s future.
    let listed = Box::pin(warmer.run(input, deadline, &mut summary)).await;
    summary.invalid_zones = warmer.invalid_zones.into_inner();
    if let Err(e) = &listed {
        summary.failures += 1;
        summary.record_error(format!("listing tenants failed: {}", chain(e)));
    }
    if matches!(input, input::Input::Schedule { .. }) && !deadline.passed() {
        match upkeep::check_sample(db, state.warm.check_sample).await {
            Ok(checked) => {
                summary.stats_checked = checked.tenants;
                summary.stats_drifted = checked.drifted;
                summary.untracked_tables = checked.untracked;
            }
            Err(e) => summary.record_error(format!("exactness check failed: {}", chain(&e))),
        }
    }
    summary.duration_ms = millis(started.elapsed());
    if let Err(e) = report::finish(db, &summary).await {
        tracing::error!(%run_id, error = %chain(&e), "cannot record the run's result");
    }
    println!(
        "{}",
        report::emf_line(&summary, chrono::Utc::now().timestamp_millis())
    );
    tracing::info!(
        %run_id,
        trigger = summary.trigger,
        mode = summary.mode,
        tenants_total = summary.tenants_total,
        tenants_warmed = summary.tenants_warmed,
        tenants_skipped = summary.tenants_skipped,
        invalid_zones = summary.invalid_zones,
        bundles_warmed = summary.bundles_warmed,
        failures = summary.failures,
        skipped_deadline = summary.skipped_deadline,
        chunks_published = summary.chunks_published,
        deltas_compacted = summary.deltas_compacted,
        stats_checked = summary.stats_checked,
        stats_drifted = summary.stats_drifted,
        duration_ms = summary.duration_ms,
        "warm run finished"
    );
    if summary.nothing_done() {
        return Err(format!("warm run {run_id} warmed nothing: {}", summary.errors.join("; ")).into());
    }
    Ok(summary)
}
