//! The bundle's SQL text, one set of statements per kind of scope (a tenant, or every tenant for the
//! superadmin's global view): the full-scan reference, the same stats from the maintained counters in
//! schema `dashboard_cache`, and the three recent lists in their indexes' order.

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use super::identity::Scope;
use super::StatsKind;

/// The recent lists' lengths.
pub const RECENT_ACTIVITIES: i64 = 10;
pub const RECENT_LEADS: i64 = 5;
pub const RECENT_OPPORTUNITIES: i64 = 5;
/// Text fields of the recent lists are cut to this many characters.
pub const MAX_TEXT_CHARS: i32 = 500;

/// The bundle's SQL for one kind of scope. A tenant scope and the global scope get separate statement
/// texts (rather than `$1 IS NULL OR tenant_id = $1`) so that Postgres's cached generic plan for a
/// tenant stays an index scan on `tenant_id`.
#[derive(Clone)]
pub struct Sql {
    /// The eleven stats by a full scan of the tables: the reference definition.
    pub stats: String,
    /// The same figures from the maintained counters (same parameters).
    pub maintained_stats: String,
    pub recent_activities: String,
    pub recent_leads: String,
    pub recent_opportunities: String,
}

/// A tenant's statements as text: the definitions the functions of
/// `migrations/20261207000001_dashboard_cache_tenant_reads.sql` run, which the exactness check
/// compares them with.
static TENANT_DEFINITION_SQL: LazyLock<Sql> = LazyLock::new(|| {
    Sql::build(
        "tenant_id = $1::uuid AND ($2::bool OR is_test_data IS NOT TRUE)",
        &format!("kind = {} AND tenant_id = $1::uuid", StatsKind::Tenant.sql()),
        "tenant_id = $1::uuid",
    )
});
/// What a tenant's bundle runs: the maintained stats through their function, whose plan each server
/// connection keeps (a statement sent as text is planned on every read); the full scan and the lists
/// as text (see the migration for why the lists are planned for each tenant).
static TENANT_SQL: LazyLock<Sql> = LazyLock::new(|| Sql {
    maintained_stats: "SELECT * FROM dashboard_cache.tenant_stats($1::uuid, $2::bool, $3::timestamptz)"
        .into(),
    ..TENANT_DEFINITION_SQL.clone()
});
/// `$1` is bound but unused: every statement takes the same parameters whatever the scope. The global
/// counters are base rows of their own (kind `global`) plus every unfolded delta.
static GLOBAL_SQL: LazyLock<Sql> = LazyLock::new(|| {
    Sql::build(
        "($2::bool OR is_test_data IS NOT TRUE)",
        &format!("kind = {} AND tenant_id IS NULL", StatsKind::Global.sql()),
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

    /// [`Sql::for_scope`] with every statement as its text: what a tenant's functions run.
    pub fn definition(scope: Scope) -> &'static Self {
        match scope {
            Scope::Tenant(_) => &TENANT_DEFINITION_SQL,
            Scope::Global => &GLOBAL_SQL,
        }
    }

    /// `rows`: the scope's CRM rows; `base` and `deltas`: its maintained counters.
    pub(super) fn build(rows: &str, base: &str, deltas: &str) -> Self {
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
                        {created_date} AS created_date, {status} AS status,
                        coalesce(created_date, created_at) AS listed_at
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

/// The three lists' orders by their output columns: what a scoped list merges its parts by (the leads'
/// `listed_at` is their sort key, not shown in the bundle).
pub(super) const ACTIVITIES_ORDER: &str = "created_at DESC NULLS LAST, id ASC";
pub(super) const LEADS_ORDER: &str = "listed_at DESC NULLS LAST, id ASC";
pub(super) const OPPORTUNITIES_ORDER: &str = "updated_at DESC NULLS LAST, id ASC";

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

/// `statement` with its parameters written in as typed literals, for the simple query protocol (see
/// [`crate::platform::snapshot`]): `$1::uuid` the tenant (NULL for the global view), `$2::bool`
/// whether test data counts, `$3::timestamptz` the 30-day window's start. Only values of these types
/// are written, never text from a request.
pub fn with_values(
    statement: &str,
    tenant: Option<Uuid>,
    include_test_data: bool,
    since: Option<DateTime<Utc>>,
) -> String {
    statement
        .replace("$1::uuid", &uuid_literal(tenant))
        .replace("$2::bool", if include_test_data { "true" } else { "false" })
        .replace("$3::timestamptz", &timestamp_literal(since))
}

/// A UUID (NULL for none) as a typed SQL literal.
pub(super) fn uuid_literal(id: Option<Uuid>) -> String {
    match id {
        Some(id) => format!("'{}'::uuid", id.hyphenated()),
        None => "NULL::uuid".to_owned(),
    }
}

/// An instant (NULL for none) as a typed SQL literal.
pub(super) fn timestamp_literal(at: Option<DateTime<Utc>>) -> String {
    match at {
        Some(at) => format!(
            "'{}'::timestamptz",
            at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        ),
        None => "NULL::timestamptz".to_owned(),
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    /// No placeholder is left for the simple query protocol to reject (or to read as text).
    #[test]
    fn every_statement_takes_its_values_as_literals() {
        let tenant = Some(Uuid::nil());
        for scope in [Scope::Tenant(Uuid::nil()), Scope::Global] {
            let sql = Sql::for_scope(scope);
            for statement in [
                &sql.stats,
                &sql.maintained_stats,
                &sql.recent_activities,
                &sql.recent_leads,
                &sql.recent_opportunities,
                &*crate::bundle::version::TENANT_VERSION_AND_ZONE_SQL,
                &crate::bundle::version::current_sql(scope),
            ] {
                let text = with_values(statement, tenant, true, Some(Utc::now()));
                let placeholder = text
                    .as_bytes()
                    .windows(2)
                    .any(|w| w[0] == b'$' && w[1].is_ascii_digit());
                assert!(!placeholder, "{text}");
            }
        }
    }
}
