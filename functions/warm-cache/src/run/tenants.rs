//! The run's "warm the tenants" stage: list them (or take the event's), decide each, warm each
//! tenant's two bundles (and its most-read scoped ones) with bounded concurrency through the same code path as the dashboard function,
//! or publish them in chunks for the fan-out; stop starting tenants near the deadline; count everything.

use chrono::{DateTime, Utc};
use futures::stream::{self, Stream, StreamExt};
use futures::FutureExt;
use shared::bundle::identity::BundleId;
use shared::bundle::identity::Scope;
use shared::bundle::tenant_time::Zone;
use shared::bundle::BundleError;
use shared::env::chain;
use shared::platform::db::Database;
use shared::serving::BundleCache;
use shared::store::read_history::ReadHistory;
use std::panic::AssertUnwindSafe;
use uuid::Uuid;

use crate::config::WarmConfig;
use crate::deadline::Deadline;
use crate::fanout::Fanout;
use crate::input::Input;
use crate::plan::{self, Decision, Mode, Reads, Skip};
use crate::report::Summary;

use super::scopes::most_read;
use super::tenant_sql::{count_active, tenant_rows, TenantRow, WarmTimes};

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
    /// The run's time (the function's clock), which every decision and record uses.
    pub now: DateTime<Utc>,
    /// Tenants seen with a `timezone` that is not a known zone.
    pub invalid_zones: std::sync::atomic::AtomicU64,
}

enum Outcome {
    Warmed {
        tenant: Uuid,
        bundles: u64,
    },
    Failed {
        bundles: u64,
        error: String,
    },
    /// Not started: the invocation's deadline was near.
    DeadlineReached,
    AlreadyWarm,
    NotSelected(Skip),
    ListingFailed(String),
}

/// One tenant of a run, and whether the run warms it.
#[derive(Debug, Clone)]
pub struct Pick {
    pub id: Uuid,
    pub decision: Decision,
    /// `tenant.timezone` is not a known zone (counted in UTC).
    pub invalid_zone: bool,
    /// Fields of its read history past the window, deleted when it is warmed.
    pub expired_reads: Vec<String>,
    /// Its most-read scoped bundles, warmed with it; `None`: read its history when it is warmed.
    pub scoped: Option<Vec<BundleId>>,
}

impl Pick {
    fn warm(id: Uuid) -> Self {
        Self {
            id,
            decision: Decision::Warm,
            invalid_zone: false,
            expired_reads: Vec::new(),
            scoped: None,
        }
    }
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
                let recorded_since = self.reads_recorded_since().await;
                let picks = self.picks(recorded_since);
                match self.fanout {
                    Some(fanout) if summary.tenants_total > self.config.fanout_threshold => {
                        self.fan_out(fanout, picks, summary).await
                    }
                    _ => {
                        if summary.tenants_total > self.config.fanout_threshold {
                            tracing::warn!(
                                "more tenants than WARM_FANOUT_THRESHOLD but no WARM_EVENT_BUS_NAME"
                            );
                        }
                        self.warm_tenants(picks, deadline, summary).await;
                    }
                }
                self.warm_global(deadline, summary).await;
            }
            Input::Manual { tenant_ids } | Input::Chunk { tenant_ids, .. } => {
                summary.tenants_total = tenant_ids.len() as u64;
                let ids = stream::iter(tenant_ids.clone().into_iter().map(|id| Ok(Pick::warm(id))));
                self.warm_tenants(ids, deadline, summary).await;
            }
            // Handled before a run starts (`crate::warm_event`): a due heartbeat becomes a
            // `Schedule`, compaction warms nothing.
            Input::Compact | Input::Heartbeat { .. } => {}
        }
        Ok(())
    }

    async fn warm_tenants(
        &self,
        picks: impl Stream<Item = Result<Pick, String>>,
        deadline: Deadline,
        summary: &mut Summary,
    ) {
        let outcomes = picks
            .map(|pick| async move {
                match pick {
                    Err(e) => Outcome::ListingFailed(e),
                    Ok(pick) => {
                        if pick.invalid_zone {
                            tracing::warn!(tenant = %pick.id, "tenant.timezone is not a known IANA zone; warming in UTC");
                        }
                        match pick.decision {
                            Decision::Skip(reason) => Outcome::NotSelected(reason),
                            Decision::Warm if deadline.passed() => Outcome::DeadlineReached,
                            Decision::Warm => self.warm_pick(pick).await,
                        }
                    }
                }
            })
            .buffer_unordered(self.config.concurrency);
        futures::pin_mut!(outcomes);
        let mut warm_times = WarmTimes::new(self.db, self.now);
        // The warm times' writes, polled beside the warms (see WarmTimes).
        let mut writes = stream::FuturesUnordered::new();
        loop {
            let outcome = tokio::select! {
                Some(()) = writes.next() => continue,
                outcome = outcomes.next() => outcome,
            };
            let Some(outcome) = outcome else { break };
            match outcome {
                Outcome::Warmed { tenant, bundles } => {
                    summary.tenants_warmed += 1;
                    summary.bundles_warmed += bundles;
                    if warm_times.add(tenant) {
                        writes.push(warm_times.write());
                    }
                }
                Outcome::Failed { bundles, error } => {
                    summary.bundles_warmed += bundles;
                    summary.failures += 1;
                    summary.record_error(error);
                }
                Outcome::AlreadyWarm => summary.skipped_fresh += 1,
                Outcome::NotSelected(reason) => summary.skip(reason),
                Outcome::DeadlineReached => {
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
        writes.push(warm_times.write());
        writes.collect::<()>().await;
    }

    /// Warms a picked tenant and, when its bundles are stored, drops its expired read history.
    async fn warm_pick(&self, pick: Pick) -> Outcome {
        let scoped = match pick.scoped {
            Some(scoped) => scoped,
            None => self.scopes_of(pick.id).await,
        };
        let outcome = self.warm_tenant(pick.id, &scoped).await;
        if matches!(outcome, Outcome::Warmed { .. }) && !pick.expired_reads.is_empty() {
            if let Err(e) = self.bundles.drop_reads(pick.id, &pick.expired_reads).await {
                tracing::debug!(error = %chain(&e), "expired reads not dropped");
            }
        }
        outcome
    }

    /// Since when reads have been recorded (the first run that asks sets it to its own time); `None`
    /// when Redis cannot say, which no rule takes as a long silence.
    async fn reads_recorded_since(&self) -> Option<DateTime<Utc>> {
        match self.bundles.reads_recorded_since(self.now).await {
            Ok(since) => since,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "read history unavailable; no tenant skipped as idle");
                None
            }
        }
    }

    /// Every active tenant with the run's decision about it, one page in memory at a time. A failed
    /// page ends the stream after one error.
    fn picks(&self, recorded_since: Option<DateTime<Utc>>) -> impl Stream<Item = Result<Pick, String>> + '_ {
        stream::unfold(Some(None), move |cursor: Option<Option<Uuid>>| async move {
            let after = cursor?;
            match tenant_rows(self.db, after, TENANT_PAGE).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = (rows.len() as i64 == TENANT_PAGE).then(|| rows.last().map(|r| r.id));
                    Some((self.decide_page(rows, recorded_since).await, next))
                }
                Err(e) => Some((vec![Err(chain(&e))], None)),
            }
        })
        .flat_map(stream::iter)
    }

    /// The decisions for one page: its tenants' read histories in one pipelined Redis call.
    async fn decide_page(
        &self,
        rows: Vec<TenantRow>,
        recorded_since: Option<DateTime<Utc>>,
    ) -> Vec<Result<Pick, String>> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let fields = match self.bundles.read_histories(&ids).await {
            Ok(fields) if fields.len() == rows.len() => Some(fields),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "read histories unavailable for a page");
                None
            }
        };
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| {
                let own = fields.as_ref().and_then(|f| f.get(i));
                let history = own.map(|f| ReadHistory::from_fields(f));
                let tenant = row.plan_tenant();
                if tenant.zone.is_invalid() {
                    self.invalid_zones
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let reads = Reads {
                    history: history.as_ref(),
                    recorded_since,
                };
                Ok(Pick {
                    id: row.id,
                    decision: plan::decide(&self.config.policy, self.now, &tenant, reads),
                    invalid_zone: tenant.zone.is_invalid(),
                    expired_reads: own
                        .map(|f| ReadHistory::expired_fields(f, self.now))
                        .unwrap_or_default(),
                    scoped: Some(
                        own.map(|f| most_read(row.id, f, self.now, self.config.scopes_per_tenant))
                            .unwrap_or_default(),
                    ),
                })
            })
            .collect()
    }

    /// Both whole bundles of one tenant and its `scoped` ones, together bounded by
    /// `WARM_TENANT_TIMEOUT_MS`. A panic (a bug, never expected) fails this tenant only.
    async fn warm_tenant(&self, id: Uuid, scoped: &[BundleId]) -> Outcome {
        if self.warmed_since(Scope::Tenant(id)).await {
            return Outcome::AlreadyWarm;
        }
        let warmed = AssertUnwindSafe(self.warm_scope(Scope::Tenant(id), scoped))
            .catch_unwind()
            .await;
        let (bundles, errors) = warmed.unwrap_or_else(|_| (0, Some("the computation panicked".to_owned())));
        match errors {
            None => Outcome::Warmed { tenant: id, bundles },
            Some(error) => Outcome::Failed {
                bundles,
                error: format!("tenant {id}: {error}"),
            },
        }
    }

    /// Whether both bundles of `scope` were computed since the earlier attempt of this execution began.
    async fn warmed_since(&self, scope: Scope) -> bool {
        match self.warmed_since_ms {
            Some(since) => self.bundles.computed_since(scope, since).await,
            None => false,
        }
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
        // The global view keeps its own (UTC) day: an hourly run warms it once a UTC day.
        if self.config.policy.mode == Mode::Local && self.global_current_today().await {
            return;
        }
        let (bundles, error) = self.warm_scope(Scope::Global, &[]).await;
        summary.bundles_warmed += bundles;
        summary.global_warmed = Some(error.is_none());
        if let Some(error) = error {
            summary.failures += 1;
            summary.record_error(format!("global view: {error}"));
        }
    }

    /// Whether both global bundles in Redis were computed on the run's UTC day.
    async fn global_current_today(&self) -> bool {
        let day_start = Zone::Utc.day_start(Zone::Utc.date_at(self.now));
        self.bundles
            .computed_since(Scope::Global, day_start.timestamp_millis())
            .await
    }

    /// Warms both variants of `scope` (in one snapshot) and then `scoped` within one
    /// `WARM_TENANT_TIMEOUT_MS`; returns how many were stored and the first error.
    async fn warm_scope(&self, scope: Scope, scoped: &[BundleId]) -> (u64, Option<String>) {
        let timeout = self.config.tenant_timeout;
        let stop_at = tokio::time::Instant::now() + timeout;
        let both = self.bundles.refresh_both(scope, self.config.expire_after);
        let mut outcomes: Vec<Result<bool, String>> = match within(stop_at, timeout, both).await {
            Ok(stored) => stored.into_iter().map(Ok).collect(),
            Err(error) => vec![Err(error)],
        };
        for id in scoped {
            let refresh = self.bundles.refresh(*id, self.config.expire_after);
            outcomes.push(within(stop_at, timeout, refresh).await);
        }
        let mut warmed = 0;
        let mut first_error = None;
        for outcome in outcomes {
            match outcome {
                Ok(true) => warmed += 1,
                Ok(false) => _ = first_error.get_or_insert("cache write failed".to_owned()),
                Err(error) => _ = first_error.get_or_insert(error),
            }
        }
        (warmed, first_error)
    }
}

/// `work`'s result, or why there is none: its error, or the tenant's time (`timeout`, ending at
/// `stop_at`) ran out.
async fn within<T>(
    stop_at: tokio::time::Instant,
    timeout: std::time::Duration,
    work: impl std::future::Future<Output = Result<T, BundleError>>,
) -> Result<T, String> {
    match tokio::time::timeout_at(stop_at, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(chain(&e)),
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}
