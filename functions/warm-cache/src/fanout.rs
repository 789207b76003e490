//! Splitting a large scheduled run into chunk events on an EventBridge bus; a rule on that bus routes
//! each chunk back to warm-cache.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use serde_json::json;
use uuid::Uuid;

use crate::input::{CHUNK_DETAIL_TYPE, CHUNK_SOURCE};

/// PutEvents takes at most 10 entries per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// Attempts per entry before it is reported as not published.
const ATTEMPTS: u32 = 4;

pub struct Fanout {
    client: Client,
    bus_name: String,
}

/// The result of publishing a batch of chunks.
#[derive(Debug, Default)]
pub struct Published {
    pub chunks: u64,
    /// Chunks still refused after every retry, with the tenants they held and the reason.
    pub failed: Vec<(Vec<Uuid>, String)>,
}

impl Fanout {
    pub fn new(client: Client, bus_name: String) -> Self {
        Self { client, bus_name }
    }

    /// Publishes up to [`MAX_ENTRIES_PER_CALL`] chunks in one call, resending only the entries that
    /// failed, with backoff.
    pub async fn publish(&self, run_id: Uuid, chunks: Vec<Vec<Uuid>>) -> Published {
        debug_assert!(chunks.len() <= MAX_ENTRIES_PER_CALL);
        let mut pending: Vec<(Vec<Uuid>, String)> = chunks.into_iter().map(|c| (c, String::new())).collect();
        let mut published = Published::default();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << (2 * attempt))).await;
            }
            let entries: Vec<PutEventsRequestEntry> =
                pending.iter().map(|(ids, _)| self.entry(run_id, ids)).collect();
            match self.client.put_events().set_entries(Some(entries)).send().await {
                Ok(output) => {
                    let results = output.entries();
                    let mut still = Vec::new();
                    for (i, (ids, _)) in pending.into_iter().enumerate() {
                        match results.get(i).and_then(|r| r.error_code()) {
                            None if i < results.len() => published.chunks += 1,
                            code => {
                                let message =
                                    results.get(i).and_then(|r| r.error_message()).unwrap_or_default();
                                still.push((ids, format!("{}: {message}", code.unwrap_or("no result"))));
                            }
                        }
                    }
                    pending = still;
                }
                Err(e) => {
                    let reason = format!(
                        "PutEvents failed: {}",
                        aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                    );
                    tracing::warn!(attempt, %reason, "fan-out publish failed");
                    pending = pending
                        .into_iter()
                        .map(|(ids, _)| (ids, reason.clone()))
                        .collect();
                }
            }
            if pending.is_empty() {
                break;
            }
        }
        published.failed = pending;
        published
    }

    fn entry(&self, run_id: Uuid, tenant_ids: &[Uuid]) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(CHUNK_SOURCE)
            .detail_type(CHUNK_DETAIL_TYPE)
            .detail(json!({ "run_id": run_id, "tenant_ids": tenant_ids }).to_string())
            .build()
    }
}
