//! One warm run: list the tenants, warm each tenant's two bundles with bounded concurrency through the
//! same code path as the dashboard function, stop starting tenants near the deadline, and count
//! everything.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::stream::{self, Stream, StreamExt};
use futures::FutureExt;
use shared::bundle_cache::BundleCache;
use shared::db::{retry_transient, Database};
use shared::error::chain;
use shared::keys::{BundleId, Scope};
use uuid::Uuid;

use crate::config::WarmConfig;
use crate::deadline::Deadline;
use crate::fanout::{Fanout, MAX_ENTRIES_PER_CALL};
use crate::input::Input;
use crate::report::Summary;

/// Active tenants are read this many at a time, so memory does not grow with the number of tenants.
const TENANT_PAGE: i64 = 500;

pub struct Warmer<'a> {
    pub bundles: &'a BundleCache,
    pub db: &'a Database,
    pub config: &'a WarmConfig,
    pub fanout: Option<&'a Fanout>,
    /// A retry of an execution whose earlier attempt started at this time (unix ms): tenants whose
    /// bundles were computed since are left as they are.
    pub warmed_since_ms: Option<i64>,
}

enum Outcome {
    Warmed { bundles: u64 },
    Failed { bundles: u64, error: String },
    Skipped,
    AlreadyWarm,
    ListingFailed(String),
}

impl Warmer<'_> {
    /// Runs `input` to the end (or the deadline) and fills `summary`. An `Err` means the run could not
    /// even start listing its tenants.
    pub async fn run(
        &self,
        input: &Input,
        deadline: Deadline,
        summary: &mut Summary,
    ) -> Result<(), sqlx::Error> {
        match input {
            Input::Schedule { .. } => {
                summary.tenants_total = count_active(self.db).await?;
                match self.fanout {
                    Some(fanout) if summary.tenants_total > self.config.fanout_threshold => {
                        self.fan_out(fanout, summary).await
                    }
                    _ => {
                        if summary.tenants_total > self.config.fanout_threshold {
                            tracing::warn!(
                                "more tenants than WARM_FANOUT_THRESHOLD but no WARM_EVENT_BUS_NAME"
                            );
                        }
                        self.warm_tenants(active_tenants(self.db.clone()), deadline, summary)
                            .await;
                    }
                }
                self.warm_global(deadline, summary).await;
            }
            Input::Manual { tenant_ids } | Input::Chunk { tenant_ids, .. } => {
                summary.tenants_total = tenant_ids.len() as u64;
                let ids = stream::iter(tenant_ids.clone().into_iter().map(Ok));
                self.warm_tenants(ids, deadline, summary).await;
            }
            // Handled before a run starts (see `crate::compact`): nothing to warm.
            Input::Compact => {}
        }
        Ok(())
    }

    async fn warm_tenants(
        &self,
        ids: impl Stream<Item = Result<Uuid, String>>,
        deadline: Deadline,
        summary: &mut Summary,
    ) {
        let outcomes = ids
            .map(|id| async move {
                match id {
                    Err(e) => Outcome::ListingFailed(e),
                    Ok(_) if deadline.passed() => Outcome::Skipped,
                    Ok(id) => self.warm_tenant(id).await,
                }
            })
            .buffer_unordered(self.config.concurrency);
        futures::pin_mut!(outcomes);
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Warmed { bundles } => {
                    summary.tenants_warmed += 1;
                    summary.bundles_warmed += bundles;
                }
                Outcome::Failed { bundles, error } => {
                    summary.bundles_warmed += bundles;
                    summary.failures += 1;
                    summary.record_error(error);
                }
                Outcome::AlreadyWarm => summary.skipped_fresh += 1,
                Outcome::Skipped => {
                    summary.skipped_deadline += 1;
                    summary.stopped_early = true;
                }
                Outcome::ListingFailed(error) => {
                    summary.failures += 1;
                    summary.stopped_early = true;
                    summary.record_error(format!("listing tenants failed: {error}"));
                }
            }
        }
    }

    /// Both bundles of one tenant, together bounded by `WARM_TENANT_TIMEOUT_MS`. A panic (a bug, never
    /// expected) fails this tenant only.
    async fn warm_tenant(&self, id: Uuid) -> Outcome {
        if self.warmed_since(Scope::Tenant(id)).await {
            return Outcome::AlreadyWarm;
        }
        let warmed = AssertUnwindSafe(self.warm_scope(Scope::Tenant(id)))
            .catch_unwind()
            .await;
        let (bundles, errors) = warmed.unwrap_or_else(|_| (0, Some("the computation panicked".to_owned())));
        match errors {
            None => Outcome::Warmed { bundles },
            Some(error) => Outcome::Failed {
                bundles,
                error: format!("tenant {id}: {error}"),
            },
        }
    }

    /// Whether both bundles of `scope` were computed since the earlier attempt of this execution began.
    async fn warmed_since(&self, scope: Scope) -> bool {
        let Some(since) = self.warmed_since_ms else {
            return false;
        };
        for id in BundleId::both(scope) {
            let key = self.bundles.keys().bundle(id);
            let entry = self.bundles.redis().get(&key).await.ok().flatten();
            let fresh = entry
                .and_then(|bytes| shared::cache::Entry::decode(&bytes))
                .is_some_and(|e| e.generated_at_ms >= since);
            if !fresh {
                return false;
            }
        }
        true
    }

    async fn warm_global(&self, deadline: Deadline, summary: &mut Summary) {
        if deadline.passed() {
            summary.global_warmed = Some(false);
            summary.stopped_early = true;
            return;
        }
        if self.warmed_since(Scope::Global).await {
            summary.global_warmed = Some(true);
            return;
        }
        let (bundles, error) = self.warm_scope(Scope::Global).await;
        summary.bundles_warmed += bundles;
        summary.global_warmed = Some(error.is_none());
        if let Some(error) = error {
            summary.failures += 1;
            summary.record_error(format!("global view: {error}"));
        }
    }

    /// Warms both variants of `scope` within one `WARM_TENANT_TIMEOUT_MS`; returns how many were
    /// stored and the first error.
    async fn warm_scope(&self, scope: Scope) -> (u64, Option<String>) {
        let stop_at = tokio::time::Instant::now() + self.config.tenant_timeout;
        let mut warmed = 0;
        let mut first_error = None;
        for id in BundleId::both(scope) {
            let refresh = self.bundles.refresh(id, self.config.expire_after);
            let error = match tokio::time::timeout_at(stop_at, refresh).await {
                Ok(Ok(true)) => {
                    warmed += 1;
                    continue;
                }
                Ok(Ok(false)) => "cache write failed".to_owned(),
                Ok(Err(e)) => chain(&e),
                Err(_) => format!("timed out after {:?}", self.config.tenant_timeout),
            };
            first_error.get_or_insert(error);
        }
        (warmed, first_error)
    }

    /// Publishes every active tenant in chunks of `WARM_CHUNK_SIZE`, up to ten chunks per PutEvents:
    /// each page of the tenant listing is one chunk.
    async fn fan_out(&self, fanout: &Fanout, summary: &mut Summary) {
        let started = Instant::now();
        let batches =
            tenant_pages(self.db.clone(), self.config.chunk_size as i64).chunks(MAX_ENTRIES_PER_CALL);
        futures::pin_mut!(batches);
        while let Some(batch) = batches.next().await {
            let mut chunks = Vec::with_capacity(batch.len());
            for page in batch {
                match page {
                    Ok(ids) => chunks.push(ids),
                    Err(e) => {
                        summary.failures += 1;
                        summary.record_error(format!("listing tenants failed: {e}"));
                    }
                }
            }
            if chunks.is_empty() {
                continue;
            }
            let published = fanout.publish(summary.run_id, chunks).await;
            summary.chunks_published += published.chunks;
            for (ids, reason) in published.failed {
                summary.failures += ids.len() as u64;
                summary.record_error(format!("chunk of {} tenants not published: {reason}", ids.len()));
            }
        }
        tracing::info!(
            chunks = summary.chunks_published,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "fan-out published"
        );
    }
}

async fn count_active(db: &Database) -> Result<u64, sqlx::Error> {
    let count = || async {
        // In a transaction for its statement timeout; no parameters, so the simple query protocol.
        let mut tx = db.begin().await?;
        let row = sqlx::raw_sql("SELECT count(*)::text FROM tenant WHERE status = 'active'")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        let text: String = sqlx::Row::try_get(&row, 0)?;
        text.parse::<u64>().map_err(|e| sqlx::Error::Decode(e.into()))
    };
    retry_transient(count).await
}

/// Up to `limit` active tenant ids after `after`, in id order (keyset paging); retried on a lost
/// connection. In a transaction of its own (see `Database::persistent`).
async fn tenant_page(db: &Database, after: Option<Uuid>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    retry_transient(|| async {
        let mut tx = db.begin().await?;
        let page = sqlx::query_scalar(
            "SELECT id FROM tenant
              WHERE status = 'active' AND ($1::uuid IS NULL OR id > $1)
              ORDER BY id LIMIT $2",
        )
        .persistent(db.persistent())
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(page)
    })
    .await
}

/// Active tenant ids in id order, `size` at a time (keyset paging), one page in memory at a time.
/// A failed page ends the stream after one error.
fn tenant_pages(db: Database, size: i64) -> impl Stream<Item = Result<Vec<Uuid>, String>> {
    // State: `None` when done, otherwise the cursor (the last id of the previous page, if any).
    stream::unfold(Some(None), move |cursor: Option<Option<Uuid>>| {
        let db = db.clone();
        async move {
            let after = cursor?;
            match tenant_page(&db, after, size).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = (page.len() as i64 == size).then(|| page.last().copied());
                    Some((Ok(page), next))
                }
                Err(e) => Some((Err(chain(&e)), None)),
            }
        }
    })
}

/// Every active tenant id, one page in memory at a time. A failed page ends the stream after one error.
fn active_tenants(db: Database) -> impl Stream<Item = Result<Uuid, String>> {
    tenant_pages(db, TENANT_PAGE).flat_map(|page| {
        let items: Vec<Result<Uuid, String>> = match page {
            Ok(ids) => ids.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(items)
    })
}

/// Elapsed time as whole milliseconds.
pub fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}
