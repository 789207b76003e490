//! The warm-cache function: invoked by a minute heartbeat that fires the warm schedule `cron_job`
//! holds (midnight UTC for `WARM_MODE=all`, hourly for `local`, until an operator changes it), by
//! hand, or by its own fan-out chunks, it stores the bundles of the tenants
//! the run picks (see [`plan`]) so the morning's first request hits.

// Public for the tests and the benchmark, which build the function's config, events and fan-out, and
// replay its plan; the rest is the function's own.
pub mod config;
pub mod cron_route;
pub mod deadline;
pub mod error;
pub mod fanout;
pub mod input;
pub mod plan;

mod job;
mod report;
mod run;
mod state;
mod upkeep;

pub use state::WarmState;

use std::time::Instant;

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::env::chain;

use crate::deadline::Deadline;
use crate::error::WarmError;
use crate::run::millis;

pub use crate::run::warm;

/// Handles one invocation. Returns the run's summary; an `Err` only when the event is not one this
/// function understands, or when Postgres is unavailable or nothing at all could be warmed (so that
/// Lambda's retry helps); the error's type says which ([`WarmError`]).
pub async fn warm_event(state: &WarmState, event: LambdaEvent<Value>) -> Result<Value, WarmError> {
    // The run's futures are boxed: nested in `main`'s future they exceed the compiler's layout depth
    // limit in release builds.
    if state.warm.cron_route && cron_route::is_http_event(&event.payload) {
        return Ok(Box::pin(cron_execute(state, &event)).await);
    }
    let input =
        input::parse(&event.payload).inspect_err(|e| tracing::error!(error = %e, "rejected event"))?;
    let deadline = Deadline::from_epoch_ms(event.context.deadline, state.warm.deadline_margin);
    let input = match input {
        input::Input::Compact => return compact(state, deadline).await,
        // No run row and no metrics line when nothing is due: 1,440 beats a day say nothing.
        input::Input::Heartbeat { execution_id } => match beat(state, execution_id.as_deref()).await? {
            job::Beat::Due => input::Input::Schedule {
                execution_id,
                by_hand: false,
            },
            job::Beat::NotDue { next_run } => {
                return Ok(serde_json::json!({"due": false, "next_run": next_run}))
            }
        },
        input => input,
    };
    let summary = Box::pin(warm(state, &input, deadline)).await?;
    Ok(serde_json::to_value(&summary)?)
}

/// The minute heartbeat asks `cron_job` whether a firing of the warm schedule is due.
async fn beat(state: &WarmState, execution_id: Option<&str>) -> Result<job::Beat, WarmError> {
    job::beat(&state.db, &state.warm, state.clock.now(), execution_id)
        .await
        .inspect_err(|e| tracing::error!(error = %chain(e), "heartbeat: cannot read cron_job"))
        .map_err(WarmError::DatabaseUnavailable)
}

/// `POST /api/cron/execute` (make dev): the runbook's manual warm, answered as an HTTP response.
async fn cron_execute(state: &WarmState, event: &LambdaEvent<Value>) -> Value {
    use serde_json::json;
    match cron_route::parse(&event.payload) {
        cron_route::Request::Refused(response) => response,
        cron_route::Request::Warm => {
            let deadline = Deadline::from_epoch_ms(event.context.deadline, state.warm.deadline_margin);
            let input = input::Input::Schedule {
                execution_id: None,
                by_hand: true,
            };
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
pub async fn compact(state: &WarmState, deadline: Deadline) -> Result<Value, WarmError> {
    let started = Instant::now();
    let folded = upkeep::compact(&state.db, deadline)
        .await
        .inspect_err(|e| tracing::error!(error = %chain(e), "compaction failed"))
        .map_err(WarmError::DatabaseUnavailable)?;
    let duration_ms = millis(started.elapsed());
    tracing::info!(deltas_compacted = folded, duration_ms, "compaction finished");
    Ok(serde_json::json!({"deltas_compacted": folded, "duration_ms": duration_ms}))
}
