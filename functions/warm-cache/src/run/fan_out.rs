//! The run's fan-out: the tenants a scheduled run picked, published in chunks for other invocations
//! to warm (`WARM_FANOUT_THRESHOLD`), instead of warmed by this one.

use std::time::Instant;

use futures::stream::{Stream, StreamExt};
use uuid::Uuid;

use crate::fanout::{Fanout, MAX_ENTRIES_PER_CALL};
use crate::plan::Decision;
use crate::report::Summary;

use super::tenants::{Pick, Warmer};

impl Warmer<'_> {
    /// Publishes the tenants this run picked in chunks of `WARM_CHUNK_SIZE`, up to ten chunks per
    /// PutEvents; the others are counted as skipped here.
    pub(super) async fn fan_out(
        &self,
        fanout: &Fanout,
        picks: impl Stream<Item = Result<Pick, String>>,
        summary: &mut Summary,
    ) {
        let started = Instant::now();
        futures::pin_mut!(picks);
        let mut chunk: Vec<Uuid> = Vec::with_capacity(self.config.chunk_size);
        let mut batch: Vec<Vec<Uuid>> = Vec::with_capacity(MAX_ENTRIES_PER_CALL);
        loop {
            let next = picks.next().await;
            let done = next.is_none();
            match next {
                Some(Err(e)) => {
                    summary.failures += 1;
                    summary.record_error(format!("listing tenants failed: {e}"));
                }
                Some(Ok(pick)) => match pick.decision {
                    Decision::Skip(reason) => summary.skip(reason),
                    Decision::Warm => chunk.push(pick.id),
                },
                None => {}
            }
            if chunk.len() == self.config.chunk_size || (done && !chunk.is_empty()) {
                batch.push(std::mem::take(&mut chunk));
            }
            if batch.len() == MAX_ENTRIES_PER_CALL || (done && !batch.is_empty()) {
                let published = fanout.publish(summary.run_id, std::mem::take(&mut batch)).await;
                summary.chunks_published += published.chunks;
                for (ids, reason) in published.failed {
                    summary.failures += ids.len() as u64;
                    summary.record_error(format!("chunk of {} tenants not published: {reason}", ids.len()));
                }
            }
            if done {
                break;
            }
        }
        tracing::info!(
            chunks = summary.chunks_published,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "fan-out published"
        );
    }
}
