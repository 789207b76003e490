//! The dashboard bundle: its exact definition as SQL, and its JSON shape.
//!
//! All queries of one bundle run in one read-only repeatable-read transaction, so the counts, sums and
//! lists describe the same snapshot. Sums are computed by Postgres over every row and carried to JSON
//! as exact decimal text, never through a float.
//!
//! The eleven stats are read from the counters the change-tracking triggers maintain (base rows and
//! unfolded deltas, see `migrations/20261202000001_change_deltas.sql`), at a cost that does not grow
//! with the data. [`Sql::stats`] is the same definition as a full scan of the tables: the reference
//! the exactness check and the tests compare the maintained figures with.
//!
//! Values Postgres accepts but JSON or the bundle cannot carry are defined here, in SQL, so that no
//! row can fail or crash a computation:
//! - a `NaN` or infinite `amount` counts in no sum and shows as `null` in the list;
//! - a timestamp that is `±infinity` or outside years 1–9999 shows as `null`; for the 30-day counts
//!   `+infinity` is in the future (counted, like any future date) and `-infinity` is not;
//! - list text fields are cut to [`MAX_TEXT_CHARS`] characters, so no row can push a response past
//!   Lambda's 6 MB; control characters are kept and JSON-escaped.

use std::sync::LazyLock;

use chrono::{DateTime, Days, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::db::Database;
use crate::error::BundleError;
use crate::keys::{BundleId, Scope};
use crate::tenant_time::Zone;
use crate::version;

pub const RECENT_ACTIVITIES: i64 = 10;
pub const RECENT_LEADS: i64 = 5;
pub const RECENT_OPPORTUNITIES: i64 = 5;
/// `newLeadsLast30Days` and `activitiesLast30Days` count from the start of the tenant's local day this
/// many days ago (the UTC day for the global view and tenants without a zone).
pub const RECENT_DAYS: u64 = 30;
/// Text fields of the recent lists are cut to this many characters.
pub const MAX_TEXT_CHARS: i32 = 500;

#[derive(Debug, Serialize)]
pub struct Bundle {
    pub stats: Stats,
    pub lists: Lists,
    pub meta: Meta,
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
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lists {
    pub recent_activities: Vec<RecentActivity>,
    pub recent_leads: Vec<RecentLead>,
    pub recent_opportunities: Vec<RecentOpportunity>,
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

/// Computes bundle `id` as of `now`.
pub async fn compute(
    db: &Database,
    id: BundleId,
    now: DateTime<Utc>,
    ttl_seconds: u64,
) -> Result<Computed, BundleError> {
    let begin = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; {}",
        db.statement_timeout_sql()
    );
    let mut tx = db.begin_with(begin).await?;
    let persistent = db.persistent();
    let (data_version, zone) = match id.scope {
        Scope::Tenant(tenant) => {
            let (version, zone) = version::of_existing_tenant_with_zone(&mut *tx, tenant, persistent)
                .await?
                .ok_or(BundleError::TenantNotFound(tenant))?;
            let zone = Zone::parse(zone.as_deref());
            if zone.is_invalid() {
                tracing::warn!(%tenant, "tenant.timezone is not a known IANA zone; counting days in UTC");
            }
            (version, zone)
        }
        // The superadmin's global view keeps its own (UTC) day.
        Scope::Global => (version::current(&mut *tx, id.scope, persistent).await?, Zone::Utc),
    };
    let bundle = query_bundle(&mut tx, id, now, zone, ttl_seconds, persistent).await?;
    tx.commit().await?;
    Ok(Computed {
        bundle,
        data_version,
        zone,
    })
}

async fn query_bundle(
    conn: &mut PgConnection,
    id: BundleId,
    now: DateTime<Utc>,
    zone: Zone,
    ttl_seconds: u64,
    persistent: bool,
) -> Result<Bundle, sqlx::Error> {
    let sql = Sql::for_scope(id.scope);
    let tenant = id.scope.tenant_id();
    let include_test_data = id.include_test_data;
    let since = recent_window_start(now, zone);

    // The maintained 30-day counts are per 15-minute bucket: exact for a window starting on a bucket
    // boundary (any midnight of any time zone); another start is counted the slow way.
    let stats_sql = if maintained_window(since) {
        &sql.maintained_stats
    } else {
        &sql.stats
    };
    let stats: Stats = sqlx::query_as(stats_sql.as_str())
        .persistent(persistent)
        .bind(tenant)
        .bind(include_test_data)
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
    let recent_activities = sqlx::query_as(sql.recent_activities.as_str())
        .persistent(persistent)
        .bind(tenant)
        .bind(include_test_data)
        .fetch_all(&mut *conn)
        .await?;
    let recent_leads = sqlx::query_as(sql.recent_leads.as_str())
        .persistent(persistent)
        .bind(tenant)
        .bind(include_test_data)
        .fetch_all(&mut *conn)
        .await?;
    let recent_opportunities = sqlx::query_as(sql.recent_opportunities.as_str())
        .persistent(persistent)
        .bind(tenant)
        .bind(include_test_data)
        .fetch_all(&mut *conn)
        .await?;

    Ok(Bundle {
        stats,
        lists: Lists {
            recent_activities,
            recent_leads,
            recent_opportunities,
        },
        meta: Meta {
            tenant_id: tenant,
            include_test_data,
            generated_at: now,
            ttl_seconds,
        },
    })
}

/// The bundle's SQL for one kind of scope. A tenant scope and the global scope get separate statement
/// texts (rather than `$1 IS NULL OR tenant_id = $1`) so that Postgres's cached generic plan for a
/// tenant stays an index scan on `tenant_id`.
pub struct Sql {
    /// The eleven stats by a full scan of the tables: the reference definition.
    pub stats: String,
    /// The same figures from the maintained counters (same parameters).
    pub maintained_stats: String,
    pub recent_activities: String,
    pub recent_leads: String,
    pub recent_opportunities: String,
}

static TENANT_SQL: LazyLock<Sql> = LazyLock::new(|| {
    Sql::build(
        "tenant_id = $1::uuid AND ($2::bool OR is_test_data IS NOT TRUE)",
        "kind = 0 AND tenant_id = $1::uuid",
        "tenant_id = $1::uuid",
    )
});
/// `$1` is bound but unused: every statement takes the same parameters whatever the scope. The global
/// counters are base rows of their own (kind 2) plus every unfolded delta.
static GLOBAL_SQL: LazyLock<Sql> = LazyLock::new(|| {
    Sql::build(
        "($2::bool OR is_test_data IS NOT TRUE)",
        "kind = 2 AND tenant_id IS NULL",
        "NOT epoch",
    )
});

impl Sql {
    /// Parameters of every statement: `$1` tenant id (unused for the global scope), `$2` include test
    /// data; `$3`, the 30-day window start, for `stats` only. The lists' limits are constants in the
    /// text: a generic plan with a parameter as limit assumes a tenth of the rows and sorts them all.
    pub fn for_scope(scope: Scope) -> &'static Self {
        match scope {
            Scope::Tenant(_) => &TENANT_SQL,
            Scope::Global => &GLOBAL_SQL,
        }
    }

    /// `rows`: the scope's CRM rows; `base` and `deltas`: its maintained counters.
    fn build(rows: &str, base: &str, deltas: &str) -> Self {
        let finite_amount = FINITE_AMOUNT;
        let test = "($2::bool OR NOT is_test)";
        let totals = "contacts, accounts, leads, open_leads, opportunities, won_opportunities, \
                      open_opportunities, pipeline, won_value";
        Self {
            maintained_stats: format!(
                "WITH totals AS (
                   SELECT {totals} FROM dashboard_cache.bundle_stats_base WHERE {base} AND bucket IS NULL AND {test}
                   UNION ALL
                   SELECT {totals} FROM dashboard_cache.bundle_stats_delta WHERE {deltas} AND bucket IS NULL AND {test}
                 ), recent AS (
                   SELECT leads, activities FROM dashboard_cache.bundle_stats_base
                    WHERE {base} AND bucket >= $3::timestamptz AND {test}
                   UNION ALL
                   SELECT leads, activities FROM dashboard_cache.bundle_stats_delta
                    WHERE {deltas} AND bucket >= $3::timestamptz AND {test}
                 ), kept AS (
                   -- Buckets before the horizon were folded by compaction: an earlier window start
                   -- (a clock far behind the database's) is counted from the tables instead.
                   SELECT $3::timestamptz >= folded_before AS window_kept
                     FROM dashboard_cache.bundle_stats_horizon
                 )
                 SELECT coalesce(sum(contacts), 0)::int8 AS total_contacts,
                        coalesce(sum(accounts), 0)::int8 AS total_accounts,
                        coalesce(sum(leads), 0)::int8 AS total_leads,
                        coalesce(sum(opportunities), 0)::int8 AS total_opportunities,
                        coalesce(sum(open_leads), 0)::int8 AS open_leads,
                        coalesce(sum(won_opportunities), 0)::int8 AS won_opportunities,
                        coalesce(sum(open_opportunities), 0)::int8 AS open_opportunities,
                        CASE WHEN (SELECT window_kept FROM kept)
                             THEN (SELECT coalesce(sum(leads), 0)::int8 FROM recent)
                             ELSE (SELECT count(*) FROM leads
                                    WHERE {rows} AND coalesce(created_date, created_at) >= $3::timestamptz)
                        END AS new_leads_last30_days,
                        CASE WHEN (SELECT window_kept FROM kept)
                             THEN (SELECT coalesce(sum(activities), 0)::int8 FROM recent)
                             ELSE (SELECT count(*) FROM activities
                                    WHERE {rows} AND coalesce(created_date, created_at) >= $3::timestamptz)
                        END AS activities_last30_days,
                        round(coalesce(sum(pipeline), 0), 2)::text AS pipeline_value,
                        round(coalesce(sum(won_value), 0), 2)::text AS won_value
                   FROM totals"
            ),
            stats: format!(
                "SELECT
                   (SELECT count(*) FROM contacts WHERE {rows}) AS total_contacts,
                   (SELECT count(*) FROM accounts WHERE {rows}) AS total_accounts,
                   l.total AS total_leads,
                   o.total AS total_opportunities,
                   l.open AS open_leads,
                   o.won AS won_opportunities,
                   o.open AS open_opportunities,
                   l.recent AS new_leads_last30_days,
                   (SELECT count(*) FROM activities
                     WHERE {rows} AND coalesce(created_date, created_at) >= $3::timestamptz)
                     AS activities_last30_days,
                   o.pipeline::text AS pipeline_value,
                   o.won_value::text AS won_value
                 FROM
                   (SELECT count(*) AS total,
                           count(*) FILTER (WHERE status IS NULL OR status NOT IN ('converted', 'lost')) AS open,
                           count(*) FILTER (WHERE coalesce(created_date, created_at) >= $3::timestamptz) AS recent
                      FROM leads WHERE {rows}) AS l,
                   (SELECT count(*) AS total,
                           count(*) FILTER (WHERE stage IN ('won', 'closed_won')) AS won,
                           count(*) FILTER (WHERE {open_stage}) AS open,
                           round(coalesce(sum(amount) FILTER (WHERE ({open_stage}) AND {finite_amount}), 0), 2)
                             AS pipeline,
                           round(coalesce(sum(amount)
                             FILTER (WHERE stage IN ('won', 'closed_won') AND {finite_amount}), 0), 2)
                             AS won_value
                      FROM opportunities WHERE {rows}) AS o",
                open_stage = "stage IS NULL OR stage NOT IN ('won', 'closed_won', 'lost', 'closed_lost')",
            ),
            recent_activities: format!(
                "SELECT id, {kind} AS kind, {subject} AS subject, {status} AS status,
                        {created_at} AS created_at, {created_date} AS created_date, assigned_to
                   FROM activities WHERE {rows}
                  ORDER BY created_at DESC NULLS LAST, id ASC
                  LIMIT {RECENT_ACTIVITIES}",
                kind = text("type"),
                subject = text("subject"),
                status = text("status"),
                created_at = timestamp("created_at"),
                created_date = timestamp("created_date"),
            ),
            recent_leads: format!(
                "SELECT id, {first_name} AS first_name, {last_name} AS last_name, {company} AS company,
                        {created_date} AS created_date, {status} AS status
                   FROM leads WHERE {rows}
                  ORDER BY coalesce(created_date, created_at) DESC NULLS LAST, id ASC
                  LIMIT {RECENT_LEADS}",
                first_name = text("first_name"),
                last_name = text("last_name"),
                company = text("company"),
                created_date = timestamp("created_date"),
                status = text("status"),
            ),
            recent_opportunities: format!(
                "SELECT id, {name} AS name, CASE WHEN {finite_amount} THEN amount::text END AS amount,
                        {stage} AS stage, {updated_at} AS updated_at
                   FROM opportunities WHERE {rows}
                  ORDER BY updated_at DESC NULLS LAST, id ASC
                  LIMIT {RECENT_OPPORTUNITIES}",
                name = text("name"),
                stage = text("stage"),
                updated_at = timestamp("updated_at"),
            ),
        }
    }
}

/// `amount` is a number JSON can carry (numeric also holds `NaN` and `±Infinity`).
const FINITE_AMOUNT: &str =
    "(amount <> 'NaN'::numeric AND amount > '-Infinity'::numeric AND amount < 'Infinity'::numeric)";

/// A list text column, cut to [`MAX_TEXT_CHARS`].
fn text(column: &str) -> String {
    format!("left({column}, {MAX_TEXT_CHARS})")
}

/// A timestamp column, `NULL` when infinite or outside what the JSON's RFC 3339 (and chrono) can hold.
fn timestamp(column: &str) -> String {
    format!(
        "CASE WHEN {column} >= '0001-01-01T00:00:00Z'::timestamptz
               AND {column} < '10000-01-01T00:00:00Z'::timestamptz THEN {column} END"
    )
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
