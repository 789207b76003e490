//! The SQL of a tenant's scoped bundles (an employee's, a team's) and of the two breakdowns every
//! tenant scope shows (leads by source, the funnel by stage), read from the per-assignee counters in
//! `dashboard_cache.scope_stats_base` and `scope_stats_delta`
//! (`migrations/20261205000012_dashboard_cache_scopes.sql`).
//!
//! Values beyond [`super::sql::with_values`]'s: `$4::uuid` the employee or team, `$5::timestamptz` the
//! first UTC midnight at or after the window start `$3` (the days before it are subtracted from the
//! total, the part of a day between the two is read per 15-minute bucket). See [`with_assignee`].

use std::sync::LazyLock;

use super::identity::Assignees;
use super::sql::{
    timestamp_literal, uuid_literal, Sql, ACTIVITIES_ORDER, LEADS_ORDER, OPPORTUNITIES_ORDER,
    RECENT_ACTIVITIES, RECENT_LEADS, RECENT_OPPORTUNITIES,
};
use chrono::{DateTime, NaiveTime, TimeDelta, Utc};

/// The team's members, as a subquery.
macro_rules! team_members {
    () => {
        "(SELECT m.employee_id FROM team_members m WHERE m.tenant_id = $1::uuid AND m.team_id = $4::uuid)"
    };
}
const TEAM_MEMBERS: &str = team_members!();

/// A scope's rows of the counters, as alternatives each read by its own index range: an employee's
/// and the unassigned ones; a team's members' (their ids an array read once, so that each part is
/// one index scan over the members rather than a join Postgres plans for each); every assignee of
/// the tenant.
const EMPLOYEE_COUNTERS: &[&str] = &[
    "tenant_id = $1::uuid AND assignee = $4::uuid",
    "tenant_id = $1::uuid AND assignee IS NULL",
];
const TEAM_COUNTERS: &str = concat!(
    "tenant_id = $1::uuid AND assignee = ANY (ARRAY",
    team_members!(),
    ")"
);
const TENANT_COUNTERS: &str = "tenant_id = $1::uuid";

/// The rows of the counters a bundle's stats read, each one range of the base rows' key (the facets
/// are ordered so, see the migration):
/// - the totals;
/// - the days before the window's first UTC midnight `$5`: a window counts its facet's total minus
///   these, which are the few days between the fold horizon and the window plus each day facet's
///   `-infinity` fold (`scope_stats_age`), rather than the window's 31 days;
/// - the quarter hours of the window's first part day (`$3` to `$5`): constant false, so planned as
///   nothing, when the window starts at a UTC midnight.
///
/// Few parts keep the planning short: the simple protocol plans every statement on every read.
const TOTALS: &str = "facet <= 'activities'";
const DAYS_BEFORE: &str =
    "facet IN ('leads_day', 'activities_day') AND label IS NULL AND bucket < $5::timestamptz";
const QUARTERS: &str = "$3::timestamptz < $5::timestamptz \
    AND facet IN ('leads_quarter', 'activities_quarter') AND label IS NULL \
    AND bucket >= $3::timestamptz AND bucket < $5::timestamptz";

/// A scoped bundle's statements: the stats (full scan and maintained) and lists of [`Sql`], restricted
/// to the scope's records. Each list is merged from one list per assignee (an employee and no one, or
/// each member), every part read in its `(tenant_id, assigned_to, ...)` index's order: the work is
/// the list's length per assignee, whatever the data.
static EMPLOYEE_SQL: LazyLock<Sql> = LazyLock::new(|| {
    let mut sql = EMPLOYEE_SCAN_SQL.clone();
    let own = lists_of("assigned_to = $4::uuid");
    let unassigned = lists_of("assigned_to IS NULL");
    let merge = |own: &str, unassigned: &str, order: &str, limit: i64| {
        format!("SELECT * FROM (({own}) UNION ALL ({unassigned})) AS merged ORDER BY {order} LIMIT {limit}")
    };
    sql.recent_activities = merge(
        &own.recent_activities,
        &unassigned.recent_activities,
        ACTIVITIES_ORDER,
        RECENT_ACTIVITIES,
    );
    sql.recent_leads = merge(
        &own.recent_leads,
        &unassigned.recent_leads,
        LEADS_ORDER,
        RECENT_LEADS,
    );
    sql.recent_opportunities = merge(
        &own.recent_opportunities,
        &unassigned.recent_opportunities,
        OPPORTUNITIES_ORDER,
        RECENT_OPPORTUNITIES,
    );
    sql
});
static TEAM_SQL: LazyLock<Sql> = LazyLock::new(|| {
    let mut sql = TEAM_SCAN_SQL.clone();
    let each = lists_of("assigned_to = member.employee_id");
    let merge = |list: &str, order: &str, limit: i64| {
        format!(
            "SELECT listed.* FROM (SELECT DISTINCT m.employee_id FROM team_members m
                                    WHERE m.tenant_id = $1::uuid AND m.team_id = $4::uuid) AS member
               CROSS JOIN LATERAL ({list}) AS listed
              ORDER BY {order} LIMIT {limit}"
        )
    };
    sql.recent_activities = merge(&each.recent_activities, ACTIVITIES_ORDER, RECENT_ACTIVITIES);
    sql.recent_leads = merge(&each.recent_leads, LEADS_ORDER, RECENT_LEADS);
    sql.recent_opportunities = merge(
        &each.recent_opportunities,
        OPPORTUNITIES_ORDER,
        RECENT_OPPORTUNITIES,
    );
    sql
});

/// A scope's statements with each list as one filtered scan: the definition the merged lists above
/// are built from (the stats are the same) and checked against.
static EMPLOYEE_SCAN_SQL: LazyLock<Sql> = LazyLock::new(|| {
    scoped(
        "(assigned_to = $4::uuid OR assigned_to IS NULL)",
        EMPLOYEE_COUNTERS,
    )
});
static TEAM_SCAN_SQL: LazyLock<Sql> =
    LazyLock::new(|| scoped(&format!("assigned_to IN {TEAM_MEMBERS}"), &[TEAM_COUNTERS]));

/// The three lists of one assignee's (or no one's) records of tenant `$1`.
fn lists_of(assignee: &str) -> Sql {
    Sql::build(
        &format!("tenant_id = $1::uuid AND {assignee} AND ($2::bool OR is_test_data IS NOT TRUE)"),
        "false",
        "false",
    )
}

/// A breakdown shows at most this many labels, the largest: sources and stages are CRM text, and no
/// tenant's data may push a response towards Lambda's 6 MB.
pub const MAX_BREAKDOWN_LABELS: usize = 100;

/// The breakdowns of each kind of scope: leads by source, and opportunities by stage.
pub struct Breakdowns {
    /// `source`, `leads`: the [`MAX_BREAKDOWN_LABELS`] sources with the most leads, by name.
    pub leads_by_source: String,
    /// `stage` (NULL for opportunities without one), `count`, `amount` (exact decimal text): the
    /// [`MAX_BREAKDOWN_LABELS`] stages with the most opportunities, by name, the stageless last.
    pub funnel: String,
}

/// A tenant's breakdowns through their functions (see [`Sql::definition`]); the text they run.
static TENANT_BREAKDOWNS: LazyLock<Breakdowns> = LazyLock::new(|| Breakdowns {
    leads_by_source: "SELECT * FROM dashboard_cache.tenant_leads_by_source($1::uuid, $2::bool)".into(),
    funnel: "SELECT * FROM dashboard_cache.tenant_funnel($1::uuid, $2::bool)".into(),
});
static TENANT_BREAKDOWNS_DEFINITION: LazyLock<Breakdowns> = LazyLock::new(|| breakdowns(&[TENANT_COUNTERS]));
static EMPLOYEE_BREAKDOWNS: LazyLock<Breakdowns> = LazyLock::new(|| breakdowns(EMPLOYEE_COUNTERS));
static TEAM_BREAKDOWNS: LazyLock<Breakdowns> = LazyLock::new(|| breakdowns(&[TEAM_COUNTERS]));

impl Sql {
    /// The statements of a scoped bundle; `None` for [`Assignees::All`] (see [`Sql::for_scope`]).
    pub fn for_assignees(assignees: Assignees) -> Option<&'static Self> {
        match assignees {
            Assignees::All => None,
            Assignees::Employee(_) => Some(&EMPLOYEE_SQL),
            Assignees::Team(_) => Some(&TEAM_SQL),
        }
    }

    /// [`Sql::for_assignees`] with each list as one filtered scan: the definition of the lists.
    pub fn for_assignees_by_scan(assignees: Assignees) -> Option<&'static Self> {
        match assignees {
            Assignees::All => None,
            Assignees::Employee(_) => Some(&EMPLOYEE_SCAN_SQL),
            Assignees::Team(_) => Some(&TEAM_SCAN_SQL),
        }
    }
}

impl Breakdowns {
    pub fn for_assignees(assignees: Assignees) -> &'static Self {
        match assignees {
            Assignees::All => &TENANT_BREAKDOWNS,
            Assignees::Employee(_) => &EMPLOYEE_BREAKDOWNS,
            Assignees::Team(_) => &TEAM_BREAKDOWNS,
        }
    }

    /// [`Breakdowns::for_assignees`] as text: what a tenant's functions run.
    pub fn definition(assignees: Assignees) -> &'static Self {
        match assignees {
            Assignees::All => &TENANT_BREAKDOWNS_DEFINITION,
            _ => Self::for_assignees(assignees),
        }
    }
}

/// `rows`: the scope's CRM rows of tenant `$1`; `counters`: its rows of the per-assignee counters.
fn scoped(rows: &str, counters: &[&str]) -> Sql {
    let rows = format!("tenant_id = $1::uuid AND {rows} AND ($2::bool OR is_test_data IS NOT TRUE)");
    let mut sql = Sql::build(&rows, "false", "false");
    let kept = kept(counters, &[TOTALS, DAYS_BEFORE, QUARTERS]);
    let open_lead = "(label IS NULL OR label NOT IN ('converted', 'lost'))";
    let won = "label IN ('won', 'closed_won')";
    let open = "(label IS NULL OR label NOT IN ('won', 'closed_won', 'lost', 'closed_lost'))";
    // Every record is in one day bucket: its total minus its days before the window, plus its quarter
    // hours in the window's first part day.
    let recent = |total: &str, facet: &str| {
        format!(
            "(coalesce(sum(n) FILTER (WHERE facet = '{total}'), 0)
              - coalesce(sum(n) FILTER (WHERE facet = '{facet}_day'), 0)
              + coalesce(sum(n) FILTER (WHERE facet = '{facet}_quarter'), 0))::int8"
        )
    };
    sql.maintained_stats = format!(
        "WITH kept AS ({kept}), horizon AS (
           -- Compaction folds the days before the horizon and drops the quarter hours before it: an
           -- earlier window start is counted from the tables instead.
           SELECT $3::timestamptz >= folded_before AS window_kept FROM dashboard_cache.bundle_stats_horizon
         )
         SELECT coalesce(sum(n) FILTER (WHERE facet = 'contacts'), 0)::int8 AS total_contacts,
                coalesce(sum(n) FILTER (WHERE facet = 'accounts'), 0)::int8 AS total_accounts,
                coalesce(sum(n) FILTER (WHERE facet = 'lead_status'), 0)::int8 AS total_leads,
                coalesce(sum(n) FILTER (WHERE facet = 'opportunity_stage'), 0)::int8 AS total_opportunities,
                coalesce(sum(n) FILTER (WHERE facet = 'lead_status' AND {open_lead}), 0)::int8 AS open_leads,
                coalesce(sum(n) FILTER (WHERE facet = 'opportunity_stage' AND {won}), 0)::int8 AS won_opportunities,
                coalesce(sum(n) FILTER (WHERE facet = 'opportunity_stage' AND {open}), 0)::int8 AS open_opportunities,
                CASE WHEN (SELECT window_kept FROM horizon) THEN {recent_leads}
                     ELSE (SELECT count(*) FROM leads
                            WHERE {rows} AND coalesce(created_date, created_at) >= $3::timestamptz)
                END AS new_leads_last30_days,
                CASE WHEN (SELECT window_kept FROM horizon) THEN {recent_activities}
                     ELSE (SELECT count(*) FROM activities
                            WHERE {rows} AND coalesce(created_date, created_at) >= $3::timestamptz)
                END AS activities_last30_days,
                round(coalesce(sum(amount) FILTER (WHERE facet = 'opportunity_stage' AND {open}), 0), 2)::text
                  AS pipeline_value,
                round(coalesce(sum(amount) FILTER (WHERE facet = 'opportunity_stage' AND {won}), 0), 2)::text
                  AS won_value
           FROM kept",
        recent_leads = recent("lead_status", "leads"),
        recent_activities = recent("activities", "activities"),
    );
    sql
}

/// The rows of the counters matching one of `counters` and one of `parts`: base rows and unfolded
/// deltas, test data as `$2` says, one `SELECT` per combination, so that each is one index range.
fn kept(counters: &[&str], parts: &[&str]) -> String {
    let mut selects = Vec::new();
    for table in ["scope_stats_base", "scope_stats_delta"] {
        for counters in counters {
            for part in parts {
                selects.push(format!(
                    "SELECT facet, label, bucket, n, amount FROM dashboard_cache.{table}
                      WHERE {counters} AND {part} AND ($2::bool OR NOT is_test)"
                ));
            }
        }
    }
    selects.join("\n UNION ALL\n")
}

fn breakdowns(counters: &[&str]) -> Breakdowns {
    let sources = kept(counters, &["facet = 'lead_source'"]);
    let stages = kept(counters, &["facet = 'opportunity_stage'"]);
    Breakdowns {
        leads_by_source: format!(
            "SELECT source, leads FROM (
               SELECT label AS source, sum(n)::int8 AS leads FROM ({sources}) AS kept
                GROUP BY label HAVING sum(n) <> 0
                ORDER BY sum(n) DESC, label LIMIT {MAX_BREAKDOWN_LABELS}) AS top
              ORDER BY source"
        ),
        funnel: format!(
            "SELECT stage, count, amount FROM (
               SELECT label AS stage, sum(n)::int8 AS count, round(sum(amount), 2)::text AS amount
                 FROM ({stages}) AS kept
                GROUP BY label HAVING sum(n) <> 0
                ORDER BY sum(n) DESC, label NULLS LAST LIMIT {MAX_BREAKDOWN_LABELS}) AS top
              ORDER BY stage NULLS LAST"
        ),
    }
}

/// `statement` (already through [`super::sql::with_values`]) with `$4::uuid`, the employee or team
/// (NULL for the whole tenant), and `$5::timestamptz`, the first UTC midnight at or after `since`,
/// written in as typed literals.
pub fn with_assignee(statement: &str, assignees: Assignees, since: DateTime<Utc>) -> String {
    statement
        .replace("$4::uuid", &uuid_literal(assignees.id()))
        .replace("$5::timestamptz", &timestamp_literal(Some(day_ceiling(since))))
}

/// The first UTC midnight at or after `at`.
fn day_ceiling(at: DateTime<Utc>) -> DateTime<Utc> {
    let midnight = at.date_naive().and_time(NaiveTime::MIN).and_utc();
    if midnight == at {
        return at;
    }
    midnight.checked_add_signed(TimeDelta::days(1)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    #[test]
    fn whole_days_start_at_the_first_utc_midnight_of_the_window() {
        let midnight = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        assert_eq!(day_ceiling(midnight), midnight);
        let kathmandu = Utc.with_ymd_and_hms(2026, 2, 28, 18, 15, 0).unwrap();
        assert_eq!(day_ceiling(kathmandu), midnight);
        // Beyond what a nanosecond count holds (chrono's duration rounding fails there).
        let far = Utc.with_ymd_and_hms(8999, 3, 1, 18, 15, 0).unwrap();
        assert_eq!(
            day_ceiling(far),
            Utc.with_ymd_and_hms(8999, 3, 2, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn every_scoped_statement_takes_its_values_as_literals() {
        for assignees in [Assignees::Employee(Uuid::nil()), Assignees::Team(Uuid::nil())] {
            let sql = Sql::for_assignees(assignees).unwrap();
            let breakdowns = Breakdowns::for_assignees(assignees);
            for statement in [
                &sql.stats,
                &sql.maintained_stats,
                &sql.recent_activities,
                &sql.recent_leads,
                &sql.recent_opportunities,
                &breakdowns.leads_by_source,
                &breakdowns.funnel,
            ] {
                let text =
                    super::super::sql::with_values(statement, Some(Uuid::nil()), true, Some(Utc::now()));
                let text = with_assignee(&text, assignees, Utc::now());
                assert!(!text.contains('$'), "{text}");
            }
        }
    }
}
