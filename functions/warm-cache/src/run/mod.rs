//! One warm run, as its stages: [`start`] (or find that a retried scheduled execution already ran),
//! [`compact`], [`warm_tenants`], [`check_sample`], [`finish`]. Each stage records what it did in the
//! run's [`Summary`]; only a run that cannot start, or that warmed nothing, is an error (which Lambda
//! retries). The tenants' SQL is in [`tenant_sql`], deciding and warming them in [`tenants`].

mod fan_out;
mod scopes;
mod tenant_sql;
mod tenants;

use std::time::{Duration, Instant};

use shared::env::chain;

use crate::deadline::Deadline;
use crate::error::WarmError;
use crate::input::Input;
use crate::report::{self, Summary};
use crate::state::WarmState;
use crate::{job, upkeep};
use tenants::Warmer;

/// How long a scheduled run spends folding deltas before it warms.
const RUN_COMPACTION_BUDGET: Duration = Duration::from_secs(30);

/// Runs `input`, records the run row and the metrics line, and returns the summary.
pub async fn warm(state: &WarmState, input: &Input, deadline: Deadline) -> Result<Summary, WarmError> {
    let started = Instant::now();
    let (mut summary, warmed_since_ms) = match start(state, input).await? {
        Started::AlreadyDone(summary) => return Ok(summary),
        Started::Skipped(summary) => return finish(state, summary, started).await,
        Started::Run {
            summary,
            warmed_since_ms,
        } => (summary, warmed_since_ms),
    };
    let scheduled = matches!(input, Input::Schedule { .. });
    if scheduled {
        compact(state, deadline, &mut summary).await;
    }
    warm_tenants(state, input, warmed_since_ms, deadline, &mut summary).await;
    if scheduled && !deadline.passed() {
        check_sample(state, &mut summary).await;
    }
    finish(state, summary, started).await
}

enum Started {
    /// This scheduled execution already ran to the end in an earlier attempt: nothing to redo.
    AlreadyDone(Summary),
    /// A firing of the schedule while the job is off: recorded, nothing done.
    Skipped(Summary),
    /// A new run; for the retry of an execution, tenants computed since `warmed_since_ms` are left.
    Run {
        summary: Summary,
        warmed_since_ms: Option<i64>,
    },
}

/// Records the run's row, or finds that a retried scheduled execution already ran to the end, or
/// (for a firing of the schedule while `cron_job.is_active` is false) records a skipped run.
async fn start(state: &WarmState, input: &Input) -> Result<Started, WarmError> {
    let db = &state.db;
    let execution_id = match input {
        Input::Schedule { execution_id, .. } => execution_id.as_deref(),
        _ => None,
    };
    // A retry of a scheduled execution (Lambda's, after a timeout) must not redo its work.
    let earlier = match execution_id {
        Some(id) => report::attempt_of(db, id)
            .await
            .inspect_err(|e| tracing::error!(error = %chain(e), "cannot look up earlier attempts"))
            .map_err(WarmError::DatabaseUnavailable)?,
        None => None,
    };
    if let Some(attempt) = earlier.filter(|a| a.finished) {
        tracing::info!(run_id = %attempt.run_id, "this scheduled execution already ran to the end");
        return Ok(Started::AlreadyDone(Summary {
            run_id: attempt.run_id,
            trigger: input.trigger(),
            already_done: true,
            ..Summary::default()
        }));
    }
    if let Input::Schedule { by_hand: false, .. } = input {
        let active = job::is_active(db, &state.warm, state.clock.now())
            .await
            .inspect_err(|e| tracing::error!(error = %chain(e), "cannot read cron_job"))
            .map_err(WarmError::DatabaseUnavailable)?;
        if !active {
            return skip(state, input, execution_id, JOB_OFF).await;
        }
    }
    let parent = match input {
        Input::Chunk { parent_run_id, .. } => *parent_run_id,
        _ => earlier.map(|a| a.run_id),
    };
    let run_id = report::start(db, input.trigger(), parent, execution_id)
        .await
        .inspect_err(|e| tracing::error!(error = %chain(e), "cannot record the run: Postgres unavailable"))
        .map_err(WarmError::DatabaseUnavailable)?;
    Ok(Started::Run {
        summary: Summary {
            run_id,
            trigger: input.trigger(),
            mode: state.warm.policy.mode.as_str(),
            ..Summary::default()
        },
        warmed_since_ms: earlier.map(|a| a.started_at_ms),
    })
}

/// Why a firing of the schedule did nothing while the job is off.
const JOB_OFF: &str = "cron_job.is_active is false";

/// A firing that does nothing, for `reason`: its run row says so (and `cron_job` shows it as the last
/// run), and its metrics line is printed like any run's.
async fn skip(
    state: &WarmState,
    input: &Input,
    execution_id: Option<&str>,
    reason: &'static str,
) -> Result<Started, WarmError> {
    tracing::info!(reason, "scheduled warm skipped");
    let run_id = report::start(&state.db, input.trigger(), None, execution_id)
        .await
        .map_err(WarmError::DatabaseUnavailable)?;
    Ok(Started::Skipped(Summary {
        run_id,
        trigger: input.trigger(),
        mode: state.warm.policy.mode.as_str(),
        skipped: Some(reason),
        ..Summary::default()
    }))
}

/// Folds change deltas first, so every bundle this run computes reads fewer; within a budget, so that
/// a backlog (the compact schedule failing for a while) never eats the run.
async fn compact(state: &WarmState, deadline: Deadline, summary: &mut Summary) {
    match upkeep::compact(&state.db, deadline.within(RUN_COMPACTION_BUDGET)).await {
        Ok(folded) => summary.deltas_compacted = folded,
        Err(e) => summary.record_error(format!("compaction failed: {}", chain(&e))),
    }
}

/// Warms the tenants `input` names, or those the schedule picks (directly or through the fan-out),
/// then, for the schedule, the global view.
async fn warm_tenants(
    state: &WarmState,
    input: &Input,
    warmed_since_ms: Option<i64>,
    deadline: Deadline,
    summary: &mut Summary,
) {
    let warmer = Warmer {
        bundles: &state.bundles,
        db: &state.db,
        config: &state.warm,
        fanout: state.fanout.as_ref(),
        warmed_since_ms,
        now: state.clock.now(),
        invalid_zones: Default::default(),
    };
    // Boxed: the run's future nests the whole bundle computation, deep enough to exceed the
    // compiler's layout depth limit in release builds when inlined into `main`'s future.
    let listed = Box::pin(warmer.run(input, deadline, summary)).await;
    summary.invalid_zones = warmer.invalid_zones.into_inner();
    if let Err(e) = &listed {
        summary.failures += 1;
        summary.record_error(format!("listing tenants failed: {}", chain(e)));
    }
}

/// Recomputes a sample of tenants the slow way and repairs any drift of the maintained stats.
async fn check_sample(state: &WarmState, summary: &mut Summary) {
    match upkeep::check_sample(&state.db, state.warm.check_sample).await {
        Ok(checked) => {
            summary.stats_checked = checked.tenants;
            summary.stats_drifted = checked.drifted;
            summary.untracked_tables = checked.untracked;
        }
        Err(e) => summary.record_error(format!("exactness check failed: {}", chain(&e))),
    }
}

/// Records the run's result, writes its metrics and log lines; a run that did nothing is an error.
async fn finish(state: &WarmState, mut summary: Summary, started: Instant) -> Result<Summary, WarmError> {
    summary.duration_ms = millis(started.elapsed());
    let run_id = summary.run_id;
    if let Err(e) = report::finish(&state.db, &state.warm, &summary, state.clock.now()).await {
        tracing::error!(%run_id, error = %chain(&e), "cannot record the run's result");
    }
    let document = report::emf_document(&summary, chrono::Utc::now().timestamp_millis());
    shared::platform::log::metrics(&document.to_string());
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
        return Err(WarmError::NothingWarmed {
            run_id,
            errors: summary.errors.join("; "),
        });
    }
    Ok(summary)
}

/// Elapsed time as whole milliseconds.
pub fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}
