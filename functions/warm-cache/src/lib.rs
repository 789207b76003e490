//! The warm-cache function: invoked at midnight UTC by an EventBridge schedule (or by hand, or by its
//! own fan-out chunks), it stores every active tenant's bundles so the morning's first request hits.

pub mod config;
pub mod deadline;
pub mod fanout;
pub mod input;
pub mod report;
pub mod run;
pub mod upkeep;

use std::time::Instant;

use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use shared::bundle_cache::BundleCache;
use shared::cache::RedisCache;
use shared::clock::Clock;
use shared::db::Database;
use shared::error::{chain, StartupError};
use shared::keys::Keys;

use crate::config::{Config, WarmConfig};
use crate::deadline::Deadline;
use crate::fanout::Fanout;
use crate::report::Summary;
use crate::run::{millis, Warmer};

/// What the function builds once per cold start and shares across invocations.
pub struct WarmState {
    pub db: Database,
    pub bundles: BundleCache,
    pub warm: WarmConfig,
    pub fanout: Option<Fanout>,
}

impl WarmState {
    /// Builds clients without connecting: the first run connects.
    pub fn new(config: Config, fanout: Option<Fanout>) -> Result<Self, StartupError> {
        let db = Database::connect_lazy(&config.database)?;
        Self::with_database(config, db, fanout)
    }

    /// The same over an existing database (tests pass a per-test database or a pooler).
    pub fn with_database(config: Config, db: Database, fanout: Option<Fanout>) -> Result<Self, StartupError> {
        let redis = RedisCache::new(&config.redis)?;
        let keys = Keys::new(config.key_prefix.clone());
        Ok(Self {
            bundles: BundleCache::new(db.clone(), redis, keys, config.freshness, Clock::default()),
            db,
            warm: config.warm,
            fanout,
        })
    }
}

/// Handles one invocation. Returns the run's summary; an `Err` only when the event is not one this
/// function understands, or when nothing at all could be warmed (so that EventBridge's retry helps).
pub async fn warm_event(state: &WarmState, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let input =
        input::parse(&event.payload).inspect_err(|e| tracing::error!(error = %e, "rejected event"))?;
    let deadline = Deadline::from_epoch_ms(event.context.deadline, state.warm.deadline_margin);
    if input == input::Input::Compact {
        return compact(state, deadline).await;
    }
    let summary = warm(state, &input, deadline).await?;
    Ok(serde_json::to_value(&summary)?)
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
    let mut summary = Summary {
        run_id,
        trigger: input.trigger(),
        ..Summary::default()
    };
    let warmer = Warmer {
        bundles: &state.bundles,
        db: &state.db,
        config: &state.warm,
        fanout: state.fanout.as_ref(),
        warmed_since_ms: earlier.map(|a| a.started_at_ms),
    };
    if matches!(input, input::Input::Schedule { .. }) {
        // Fewer deltas for every bundle this run computes; the compact schedule does the rest.
        match upkeep::compact(db, deadline).await {
            Ok(folded) => summary.deltas_compacted = folded,
            Err(e) => summary.record_error(format!("compaction failed: {}", chain(&e))),
        }
    }
    // Boxed: the run's future nests the whole bundle computation, deep enough to exceed the
    // compiler's layout depth limit in release builds when inlined into `main`'s future.
    let listed = Box::pin(warmer.run(input, deadline, &mut summary)).await;
    if let Err(e) = &listed {
        summary.failures += 1;
        summary.record_error(format!("listing tenants failed: {}", chain(e)));
    }
    if matches!(input, input::Input::Schedule { .. }) && !deadline.passed() {
        match upkeep::check_sample(db, state.warm.check_sample).await {
            Ok(checked) => {
                summary.stats_checked = checked.tenants;
                summary.stats_drifted = checked.drifted;
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
        tenants_total = summary.tenants_total,
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
