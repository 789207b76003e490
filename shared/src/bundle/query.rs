//! The dashboard bundle: its exact definition as SQL, and its JSON shape.
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

use chrono::{DateTime, Days, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};
use uuid::Uuid;

use std::collections::BTreeMap;

use super::assignee_sql::{with_assignee, Breakdowns};
use super::identity::{BundleId, Scope, Widgets};
use crate::bundle::tenant_time::Zone;
use crate::bundle::version;
use crate::bundle::BundleError;
use crate::platform::db::{is_lost_connection, Database, TRANSIENT_ATTEMPTS};

pub use crate::bundle::sql::{with_values, Sql};

/// `newLeadsLast30Days` and `activitiesLast30Days` count from the start of the tenant's local day this
/// many days ago (the UTC day for the global view and tenants without a zone).
pub const RECENT_DAYS: u64 = 30;

#[derive(Debug, Serialize)]
pub struct Bundle {
    pub stats: Stats,
    /// Per opportunity stage (the `salesPipeline` widget of a tenant's scopes; not in the global view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funnel: Option<Vec<FunnelStage>>,
    pub lists: Lists,
    pub meta: Meta,
}

/// One stage of the funnel: its opportunities and the sum of their finite amounts.
#[derive(Debug, Serialize, FromRow)]
pub struct FunnelStage {
    pub stage: Option<String>,
    pub count: i64,
    #[serde(serialize_with = "decimal")]
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub total_contacts: i64,
    pub total_accounts: i64,
    pub total_leads: i64,
    pub total_opportunities: i64,
    pub open_leads: i64,
    pub won_opportunities: i64,
    pub open_opportunities: i64,
    pub new_leads_last30_days: i64,
    pub activities_last30_days: i64,
    #[serde(serialize_with = "decimal")]
    pub pipeline_value: String,
    #[serde(serialize_with = "decimal")]
    pub won_value: String,
    /// Source (`"other"` for none) to number of leads: the `leadSourceChart` widget of a tenant's
    /// scopes; not in the global view.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leads_by_source: Option<BTreeMap<String, i64>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lists {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_activities: Option<Vec<RecentActivity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_leads: Option<Vec<RecentLead>>,
    /// Part of the `salesPipeline` widget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_opportunities: Option<Vec<RecentOpportunity>>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct RecentActivity {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: Option<String>,
    pub status: Option<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub created_date: Option<DateTime<Utc>>,
    pub assigned_to: Option<Uuid>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct RecentLead {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub created_date: Option<DateTime<Utc>>,
    pub status: Option<String>,
}

#[derive(Debug, Serialize, FromRow)]
pub struct RecentOpportunity {
    pub id: Uuid,
    pub name: Option<String>,
    #[serde(serialize_with = "decimal_opt")]
    pub amount: Option<String>,
    pub stage: Option<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct Meta {
    pub tenant_id: Option<Uuid>,
    /// `tenant`, `employee` or `team` (absent in the global view), and the employee's or team's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<Uuid>,
    /// The widgets asked for, when not all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub widgets: Option<String>,
    pub include_test_data: bool,
    #[serde(serialize_with = "rfc3339")]
    pub generated_at: DateTime<Utc>,
    pub ttl_seconds: u64,
}

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
    let mut attempt = 1;
    loop {
        match compute_once(db, id, now, ttl_seconds).await {
            Err(BundleError::Database(e)) if attempt < TRANSIENT_ATTEMPTS && is_lost_connection(&e) => {
                tracing::debug!(error = %crate::env::chain(&e), "bundle read lost its connection; trying again");
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn compute_once(
    db: &Database,
    id: BundleId,
    now: DateTime<Utc>,
    ttl_seconds: u64,
) -> Result<Computed, BundleError> {
    let tenant = id.scope.tenant_id();
    let include_test_data = id.include_test_data;
    let version_sql = match id.scope {
        Scope::Tenant(_) => version::TENANT_VERSION_AND_ZONE_SQL.as_str(),
        Scope::Global => version::GLOBAL_VERSION_SQL.as_str(),
    };
    let (snapshot, first) = db
        .snapshot(&[with_values(version_sql, tenant, include_test_data, None)])
        .await?;
    let row = first.first().and_then(|rows| rows.first());
    let (data_version, zone) = match (id.scope, row) {
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

    let assignees = id.assignees;
    let sql = Sql::for_assignees(assignees).unwrap_or_else(|| Sql::for_scope(id.scope));
    let since = recent_window_start(now, zone);
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
    let (parts, statements): (Vec<Part>, Vec<String>) = parts
        .into_iter()
        .filter_map(|(part, statement)| {
            let text = with_values(statement?, tenant, include_test_data, Some(since));
            Some((part, with_assignee(&text, assignees, since)))
        })
        .unzip();
    let results = snapshot.finish(&statements).await?;
    if results.len() != parts.len() {
        return Err(sqlx::Error::Protocol(
            "a bundle batch answered with another number of statements".into(),
        )
        .into());
    }
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
                include_test_data,
                generated_at: now,
                ttl_seconds,
            },
        },
        data_version,
        zone,
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

fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn rfc3339_opt<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, s),
        None => s.serialize_none(),
    }
}

/// Writes Postgres's decimal text as a JSON number, digit for digit.
fn decimal<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let raw = RawValue::from_string(text.to_owned()).map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

fn decimal_opt<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(text) => decimal(text, s),
        None => s.serialize_none(),
    }
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

    #[test]
    fn decimals_serialize_as_exact_json_numbers() {
        #[derive(Serialize)]
        struct T {
            #[serde(serialize_with = "decimal")]
            v: String,
        }
        let json = serde_json::to_string(&T {
            v: "12345678901234567.89".into(),
        })
        .unwrap();
        assert_eq!(json, r#"{"v":12345678901234567.89}"#);
    }
}
