//! The dashboard bundle: computing it (its JSON shape is in [`crate::bundle::shape`]).
//!
//! All queries of one bundle run in one read-only repeatable-read transaction, so the counts, sums and
//! lists describe the same snapshot, sent as two batches ([`crate::platform::snapshot`]). Sums are computed by Postgres over every row and carried to JSON
//! as exact decimal text, never through a float.
//!
//! The eleven stats are read from the counters the change-tracking triggers maintain (base rows and
//! unfolded deltas, see `migrations/20261205000002_dashboard_cache_tables.sql`), at a cost that does
//! not grow with the data. The statements themselves are in [`crate::bundle::sql`]; [`Sql::stats`] is
//! the same definition as a full scan of the tables: the reference the exactness check and the tests
//! compare the maintained figures with.
//!
//! Values Postgres accepts but JSON or the bundle cannot carry are defined here, in SQL, so that no
//! row can fail or crash a computation:
//! - a `NaN` or infinite `amount` counts in no sum and shows as `null` in the list;
//! - a timestamp that is `±infinity` or outside years 1–9999 shows as `null`; for the 30-day counts
//!   `+infinity` is in the future (counted, like any future date) and `-infinity` is not;
//! - list text fields are cut to [`sql::MAX_TEXT_CHARS`](super::sql::MAX_TEXT_CHARS) characters, so no row can push a response past
//!   Lambda's 6 MB; control characters are kept and JSON-escaped.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, Utc};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};

use super::assignee_sql::{with_assignee, Breakdowns};
use super::identity::{BundleId, Scope, Widgets};
use crate::bundle::tenant_time::Zone;
use crate::bundle::version;
use crate::bundle::BundleError;
use crate::platform::db::{is_lost_connection, Database, TRANSIENT_ATTEMPTS};

pub use crate::bundle::shape::{
    Bundle, FunnelStage, Lists, Meta, RecentActivity, RecentLead, RecentOpportunity, Stats,
};
pub use crate::bundle::sql::{with_values, Sql};

/// `newLeadsLast30Days` and `activitiesLast30Days` count from the start of the tenant's local day this
/// many days ago (the UTC day for the global view and tenants without a zone).
pub const RECENT_DAYS: u64 = 30;

/// The first instant counted as "in the last 30 days" at `now`: local midnight in `zone`, 30 local days
/// before today. An instant, so the statements take it as a plain `timestamptz` parameter.
pub fn recent_window_start(now: DateTime<Utc>, zone: Zone) -> DateTime<Utc> {
    let today = zone.date_at(now);
    let start = today.checked_sub_days(Days::new(RECENT_DAYS)).unwrap_or(today);
    zone.day_start(start)
}

/// Whether the maintained 30-day counts are exact for a window starting at `since`: on a 15-minute
/// boundary, inside the years where buckets are finite (see `bundle_bucket` in the migrations).
pub fn maintained_window(since: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    since.timestamp().rem_euclid(900) == 0
        && since.timestamp_subsec_nanos() == 0
        && (1000..9000).contains(&since.year())
}

/// A bundle, the data version of the snapshot it was computed from, and the zone its day counts in.
#[derive(Debug)]
pub struct Computed {
    pub bundle: Bundle,
    pub data_version: i64,
    pub zone: Zone,
}

/// Computes bundle `id` as of `now`, in one snapshot and two round trips: the data version and the
/// tenant's zone first (the 30-day window starts at the zone's midnight), then the stats and the three
/// lists, with the commit. Tried again on a new connection when the connection was lost.
pub async fn compute(
    db: &Database,
    id: BundleId,
    now: DateTime<Utc>,
    ttl_seconds: u64,
) -> Result<Computed, BundleError> {
    let [computed] = compute_of_one_scope(db, [id], now, ttl_seconds).await?;
    Ok(computed)
}

/// Both whole bundles of `scope` ([`BundleId::both`]), as [`compute`] computes one, in one snapshot
/// and the same two round trips: one data version and zone for the two, and one transaction's
/// overhead where two bundles computed apart cost two (what the warmer does for every tenant).
pub async fn compute_both(
    db: &Database,
    scope: Scope,
    now: DateTime<Utc>,
    ttl_seconds: u64,
) -> Result<[Computed; 2], BundleError> {
    compute_of_one_scope(db, BundleId::both(scope), now, ttl_seconds).await
}

/// Bundles `ids`, all of one scope, in one snapshot; tried again on a new connection when the
/// connection was lost.
async fn compute_of_one_scope<const N: usize>(
    db: &Database,
    ids: [BundleId; N],
    now: DateTime<Utc>,
    ttl_seconds: u64,
) -> Result<[Computed; N], BundleError> {
    let mut attempt = 1;
    loop {
        match compute_once(db, &ids, now, ttl_seconds).await {
            Err(BundleError::Database(e)) if attempt < TRANSIENT_ATTEMPTS && is_lost_connection(&e) => {
                tracing::debug!(error = %crate::env::chain(&e), "bundle read lost its connection; trying again");
                attempt += 1;
            }
            Err(e) => return Err(e),
            Ok(computed) => {
                return computed.try_into().map_err(|_| {
                    sqlx::Error::Protocol("a snapshot computed another number of bundles".into()).into()
                })
            }
        }
    }
}

/// `ids` (of one scope: the first one's version and zone are read) in one snapshot: the version and
/// zone, then every bundle's statements in one batch with the commit.
async fn compute_once(
    db: &Database,
    ids: &[BundleId],
    now: DateTime<Utc>,
    ttl_seconds: u64,
) -> Result<Vec<Computed>, BundleError> {
    let Some(scope) = ids.first().map(|id| id.scope) else {
        return Ok(Vec::new());
    };
    let tenant = scope.tenant_id();
    let version_sql = match scope {
        Scope::Tenant(_) => version::TENANT_VERSION_AND_ZONE_CALL,
        Scope::Global => version::GLOBAL_VERSION_SQL.as_str(),
    };
    // The version statement does not read the variant ($2): any value does.
    let (snapshot, first) = db
        .snapshot(&[with_values(version_sql, tenant, false, None)])
        .await?;
    let row = first.first().and_then(|rows| rows.first());
    let (data_version, zone) = match (scope, row) {
        (Scope::Tenant(tenant), None) => {
            snapshot.rollback().await?;
            return Err(BundleError::TenantNotFound(tenant));
        }
        (Scope::Tenant(tenant), Some(row)) => {
            let zone = Zone::parse(row.try_get::<Option<String>, _>(1)?.as_deref());
            if zone.is_invalid() {
                tracing::warn!(%tenant, "tenant.timezone is not a known IANA zone; counting days in UTC");
            }
            (row.try_get(0)?, zone)
        }
        // The superadmin's global view keeps its own (UTC) day.
        (Scope::Global, row) => (row.ok_or(sqlx::Error::RowNotFound)?.try_get(0)?, Zone::Utc),
    };
    let since = recent_window_start(now, zone);
    let batches: Vec<(Vec<Part>, Vec<String>)> = ids.iter().map(|id| statements(*id, since)).collect();
    let all: Vec<String> = batches.iter().flat_map(|(_, s)| s.iter().cloned()).collect();
    let mut results = snapshot.finish(&all).await?.into_iter();
    if results.len() != all.len() {
        return Err(sqlx::Error::Protocol(
            "a bundle batch answered with another number of statements".into(),
        )
        .into());
    }
    let basis = Basis {
        data_version,
        zone,
        now,
        ttl_seconds,
    };
    ids.iter()
        .zip(batches)
        .map(|(id, (parts, _))| {
            let rows: Vec<Vec<PgRow>> = results.by_ref().take(parts.len()).collect();
            assemble(*id, parts, rows, &basis)
        })
        .collect()
}

/// What the bundles of one snapshot share.
struct Basis {
    data_version: i64,
    zone: Zone,
    now: DateTime<Utc>,
    ttl_seconds: u64,
}

/// The statements of bundle `id` for a 30-day window starting at `since`, and what each reads.
fn statements(id: BundleId, since: DateTime<Utc>) -> (Vec<Part>, Vec<String>) {
    let tenant = id.scope.tenant_id();
    let assignees = id.assignees;
    let sql = Sql::for_assignees(assignees).unwrap_or_else(|| Sql::for_scope(id.scope));
    // The maintained 30-day counts are per 15-minute bucket: exact for a window starting on a bucket
    // boundary (any midnight of any time zone); another start is counted the slow way.
    let stats_sql = if maintained_window(since) {
        &sql.maintained_stats
    } else {
        &sql.stats
    };
    // The stats always; each list and breakdown only when its widget is asked for. The breakdowns
    // are a tenant's (the global view has none).
    let breakdowns = id.scope.tenant_id().map(|_| Breakdowns::for_assignees(assignees));
    let parts = [
        (Part::Stats, Some(stats_sql)),
        (
            Part::Activities,
            id.shows(Widgets::RECENT_ACTIVITIES)
                .then_some(&sql.recent_activities),
        ),
        (
            Part::Leads,
            id.shows(Widgets::RECENT_LEADS).then_some(&sql.recent_leads),
        ),
        (
            Part::Opportunities,
            id.shows(Widgets::SALES_PIPELINE)
                .then_some(&sql.recent_opportunities),
        ),
        (
            Part::Sources,
            breakdowns
                .filter(|_| id.shows(Widgets::LEAD_SOURCE_CHART))
                .map(|b| &b.leads_by_source),
        ),
        (
            Part::Funnel,
            breakdowns
                .filter(|_| id.shows(Widgets::SALES_PIPELINE))
                .map(|b| &b.funnel),
        ),
    ];
    parts
        .into_iter()
        .filter_map(|(part, statement)| {
            let text = with_values(statement?, tenant, id.include_test_data, Some(since));
            Some((part, with_assignee(&text, assignees, since)))
        })
        .unzip()
}

/// Bundle `id` from the rows of its statements (`parts`, in order).
fn assemble(
    id: BundleId,
    parts: Vec<Part>,
    results: Vec<Vec<PgRow>>,
    basis: &Basis,
) -> Result<Computed, BundleError> {
    let tenant = id.scope.tenant_id();
    let assignees = id.assignees;
    let mut stats = None;
    let mut lists = Lists {
        recent_activities: None,
        recent_leads: None,
        recent_opportunities: None,
    };
    let mut funnel = None;
    let mut sources = None;
    for (part, rows) in parts.into_iter().zip(results) {
        match part {
            Part::Stats => stats = Some(Stats::from_row(rows.first().ok_or(sqlx::Error::RowNotFound)?)?),
            Part::Activities => lists.recent_activities = Some(rows_as(&rows)?),
            Part::Leads => lists.recent_leads = Some(rows_as(&rows)?),
            Part::Opportunities => lists.recent_opportunities = Some(rows_as(&rows)?),
            Part::Sources => {
                let mut counts = BTreeMap::new();
                for row in &rows {
                    counts.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
                }
                sources = Some(counts);
            }
            Part::Funnel => funnel = Some(rows_as(&rows)?),
        }
    }
    let mut stats = stats.ok_or(sqlx::Error::RowNotFound)?;
    stats.leads_by_source = sources;
    Ok(Computed {
        bundle: Bundle {
            stats,
            funnel,
            lists,
            meta: Meta {
                tenant_id: tenant,
                scope: tenant.map(|_| assignees.name()),
                scope_id: assignees.id(),
                widgets: id.widgets.map(|w| w.to_string()),
                include_test_data: id.include_test_data,
                generated_at: basis.now,
                ttl_seconds: basis.ttl_seconds,
            },
        },
        data_version: basis.data_version,
        zone: basis.zone,
    })
}

/// The statements of one bundle batch, in order.
#[derive(Debug, Clone, Copy)]
enum Part {
    Stats,
    Activities,
    Leads,
    Opportunities,
    Sources,
    Funnel,
}

fn rows_as<T: for<'r> FromRow<'r, PgRow>>(rows: &[PgRow]) -> Result<Vec<T>, sqlx::Error> {
    rows.iter().map(T::from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn window_starts_at_midnight_utc_thirty_days_back() {
        let now = Utc.with_ymd_and_hms(2026, 3, 31, 23, 59, 59).unwrap();
        assert_eq!(
            recent_window_start(now, Zone::Utc),
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn window_starts_at_the_tenants_local_midnight_thirty_local_days_back() {
        // 23:30 UTC on 31 March is already 1 April in Tokyo: the window starts 2 March 00:00 JST.
        let now = Utc.with_ymd_and_hms(2026, 3, 31, 23, 30, 0).unwrap();
        let tokyo = Zone::parse(Some("Asia/Tokyo"));
        assert_eq!(
            recent_window_start(now, tokyo),
            Utc.with_ymd_and_hms(2026, 3, 1, 15, 0, 0).unwrap()
        );
        // Across the spring-forward change in New York: midnight EST, 30 days back, is 05:00 UTC.
        let ny = Zone::parse(Some("America/New_York"));
        let now = Utc.with_ymd_and_hms(2026, 3, 20, 16, 0, 0).unwrap();
        assert_eq!(
            recent_window_start(now, ny),
            Utc.with_ymd_and_hms(2026, 2, 18, 5, 0, 0).unwrap()
        );
        assert_eq!(
            recent_window_start(now, Zone::Invalid),
            recent_window_start(now, Zone::Utc)
        );
    }

    #[test]
    fn maintained_counts_serve_windows_on_quarter_hours_only() {
        let midnight = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        assert!(maintained_window(midnight));
        // Kathmandu's midnight (UTC+05:45) is on a quarter hour.
        assert!(maintained_window(
            Utc.with_ymd_and_hms(2026, 2, 28, 18, 15, 0).unwrap()
        ));
        assert!(!maintained_window(midnight + chrono::TimeDelta::minutes(7)));
        assert!(!maintained_window(midnight + chrono::TimeDelta::milliseconds(1)));
    }
}
