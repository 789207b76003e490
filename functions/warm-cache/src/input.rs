//! What a warm-cache invocation is asked to do, read from its event.
//!
//! - The template's heartbeat (`"detail-type": "Warm Heartbeat"`, every minute, with the Scheduler's
//!   `execution_id`): a firing of the warm schedule when `cron_job` says one is due.
//! - The EventBridge schedule's envelope (`"detail-type": "Scheduled Event"`, also `make warm`), or the
//!   Scheduler's document of the same `detail-type`: a firing of the warm schedule now (every active
//!   tenant), unless `cron_job.is_active` is false.
//! - A bare `{"tenant_ids": [...]}` (a rule's constant input, or a manual invoke): warm those tenants.
//! - A fan-out chunk envelope (`"detail-type": "Dashboard Warm Chunk"`): warm the chunk's tenants.
//! - `{"action": "compact"}` (its own frequent schedule): fold the change deltas, warm nothing.

use serde_json::Value;
use shared::bundle::identity::parse_tenant_id;
use uuid::Uuid;

pub const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";
pub const HEARTBEAT_DETAIL_TYPE: &str = "Warm Heartbeat";
pub const CHUNK_DETAIL_TYPE: &str = "Dashboard Warm Chunk";
pub const CHUNK_SOURCE: &str = "dashboard-cache.warm-cache";
/// A list longer than this cannot come from this system (chunks are at most 500) and is refused.
const MAX_TENANT_IDS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A firing of the warm schedule. `execution_id`: the Scheduler's, the same on every retry of one
    /// scheduled execution. `by_hand`: the runbook's `/api/cron/execute`, which runs even while
    /// `cron_job.is_active` is false.
    Schedule {
        execution_id: Option<String>,
        by_hand: bool,
    },
    /// The minute heartbeat: a [`Input::Schedule`] firing when `cron_job`'s schedule has one due.
    Heartbeat {
        execution_id: Option<String>,
    },
    Manual {
        tenant_ids: Vec<Uuid>,
    },
    Chunk {
        tenant_ids: Vec<Uuid>,
        parent_run_id: Option<Uuid>,
    },
    /// Compaction only: no run row, no warming.
    Compact,
}

impl Input {
    /// The value of `cache_warm_run.trigger`.
    pub fn trigger(&self) -> &'static str {
        match self {
            Input::Schedule { .. } | Input::Heartbeat { .. } => "schedule",
            Input::Manual { .. } => "manual",
            Input::Chunk { .. } => "chunk",
            Input::Compact => "compact",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error(
        "unrecognised event: expected an EventBridge \"Scheduled Event\", a \"Dashboard Warm Chunk\", \
         {{\"tenant_ids\": [\"<uuid>\", ...]}} or {{\"action\": \"compact\"}}"
    )]
    UnknownShape,
    #[error("unsupported detail-type {0:?}")]
    UnknownDetailType(String),
    #[error("tenant_ids must be a non-empty array of at most {MAX_TENANT_IDS} UUID strings")]
    BadTenantIds,
}

pub fn parse(event: &Value) -> Result<Input, InputError> {
    let object = event.as_object().ok_or(InputError::UnknownShape)?;
    if let Some(detail_type) = object.get("detail-type") {
        return match detail_type.as_str() {
            Some(SCHEDULED_DETAIL_TYPE) => Ok(Input::Schedule {
                execution_id: execution_id(object),
                by_hand: false,
            }),
            Some(HEARTBEAT_DETAIL_TYPE) => Ok(Input::Heartbeat {
                execution_id: execution_id(object),
            }),
            Some(CHUNK_DETAIL_TYPE) => {
                let detail = object
                    .get("detail")
                    .and_then(Value::as_object)
                    .ok_or(InputError::UnknownShape)?;
                let tenant_ids = tenant_ids(detail.get("tenant_ids"))?;
                let parent_run_id = detail
                    .get("run_id")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok());
                Ok(Input::Chunk {
                    tenant_ids,
                    parent_run_id,
                })
            }
            other => Err(InputError::UnknownDetailType(
                other.unwrap_or_default().chars().take(100).collect(),
            )),
        };
    }
    if object.len() == 1 && object.get("action").and_then(Value::as_str) == Some("compact") {
        return Ok(Input::Compact);
    }
    if object.len() == 1 && object.contains_key("tenant_ids") {
        return Ok(Input::Manual {
            tenant_ids: tenant_ids(object.get("tenant_ids"))?,
        });
    }
    Err(InputError::UnknownShape)
}

/// The Scheduler's execution id, when the event carries a plausible one.
fn execution_id(event: &serde_json::Map<String, Value>) -> Option<String> {
    event
        .get("execution_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .map(str::to_owned)
}

/// A non-empty list of hyphenated UUIDs, duplicates dropped (order kept).
fn tenant_ids(value: Option<&Value>) -> Result<Vec<Uuid>, InputError> {
    let list = value.and_then(Value::as_array).ok_or(InputError::BadTenantIds)?;
    if list.is_empty() || list.len() > MAX_TENANT_IDS {
        return Err(InputError::BadTenantIds);
    }
    let mut ids: Vec<Uuid> = Vec::with_capacity(list.len());
    for item in list {
        let id = item
            .as_str()
            .and_then(parse_tenant_id)
            .ok_or(InputError::BadTenantIds)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheduled_envelope_is_a_schedule_run() {
        let ev =
            json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert_eq!(
            parse(&ev),
            Ok(Input::Schedule {
                execution_id: None,
                by_hand: false
            })
        );
    }

    #[test]
    fn scheduler_input_is_a_schedule_run_with_its_execution() {
        let ev = json!({"source": "aws.scheduler", "detail-type": "Scheduled Event",
                        "scheduled_time": "2026-12-01T00:00:00Z", "execution_id": "e-1"});
        assert_eq!(
            parse(&ev),
            Ok(Input::Schedule {
                execution_id: Some("e-1".into()),
                by_hand: false
            })
        );
    }

    #[test]
    fn heartbeat_is_a_heartbeat_with_its_execution() {
        let ev = json!({"source": "aws.scheduler", "detail-type": "Warm Heartbeat",
                        "scheduled_time": "2026-12-01T00:01:00Z", "execution_id": "e-2"});
        assert_eq!(
            parse(&ev),
            Ok(Input::Heartbeat {
                execution_id: Some("e-2".into())
            })
        );
    }

    #[test]
    fn bare_tenant_ids_is_a_manual_run_without_duplicates() {
        let id = "a11dfb63-4b18-4eb8-872e-747af2e37c46";
        let ev = json!({"tenant_ids": [id, id.to_uppercase()]});
        assert_eq!(
            parse(&ev),
            Ok(Input::Manual {
                tenant_ids: vec![id.parse().unwrap()]
            })
        );
    }

    #[test]
    fn chunk_envelope_carries_its_tenants_and_parent() {
        let run = Uuid::new_v4();
        let id = Uuid::new_v4();
        let ev = json!({"detail-type": CHUNK_DETAIL_TYPE, "detail": {"tenant_ids": [id], "run_id": run}});
        assert_eq!(
            parse(&ev),
            Ok(Input::Chunk {
                tenant_ids: vec![id],
                parent_run_id: Some(run)
            })
        );
    }

    #[test]
    fn compact_action_is_a_compaction() {
        assert_eq!(parse(&json!({"action": "compact"})), Ok(Input::Compact));
        assert!(parse(&json!({"action": "warm"})).is_err());
    }

    #[test]
    fn unknown_shapes_are_refused() {
        for ev in [
            json!([]),
            json!({}),
            json!({"tenant_ids": []}),
            json!({"tenant_ids": ["*"]}),
            json!({"tenant_ids": "a11dfb63-4b18-4eb8-872e-747af2e37c46"}),
            json!({"tenant_ids": ["a11dfb63-4b18-4eb8-872e-747af2e37c46"], "extra": 1}),
            json!({"detail-type": "Object Created", "detail": {}}),
        ] {
            assert!(parse(&ev).is_err(), "{ev}");
        }
    }
}
