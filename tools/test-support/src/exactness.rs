//! The exactness check of the maintained bundle stats: the reference (full scan) and the maintained
//! figures of a scope, compared in one snapshot; for every tenant also each employee's and each team's
//! scope, and the breakdowns.

use chrono::{DateTime, Utc};
use shared::bundle::assignee_sql::{with_assignee, Breakdowns};
use shared::bundle::identity::{Assignees, Scope};
use shared::bundle::query::{with_values, Sql, Stats};
use sqlx::{FromRow, PgConnection, PgPool, Row};
use uuid::Uuid;

/// The employees test workloads assign records to (besides NULL, the unassigned ones).
pub const EMPLOYEES: [Uuid; 3] = [
    Uuid::from_u128(0xe1),
    Uuid::from_u128(0xe2),
    Uuid::from_u128(0xe3),
];

/// The reference (full scan) and the maintained stats of `scope`, in one snapshot.
pub async fn both(
    conn: &mut PgConnection,
    scope: Scope,
    include: bool,
    since: DateTime<Utc>,
) -> (Stats, Stats) {
    let sql = Sql::for_scope(scope);
    let mut out = Vec::new();
    for text in [&sql.stats, &sql.maintained_stats] {
        let stats: Stats = sqlx::query_as(text.as_str())
            .bind(scope.tenant_id())
            .bind(include)
            .bind(since)
            .fetch_one(&mut *conn)
            .await
            .expect("stats query");
        out.push(stats);
    }
    let maintained = out.pop().expect("maintained stats");
    (out.pop().expect("reference stats"), maintained)
}

/// Runs compaction until it has folded every delta (and, on a new day, aged the buckets before the
/// horizon).
pub async fn compact_all(pool: &PgPool) {
    loop {
        let folded: Option<i64> = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact(100000)")
            .fetch_one(pool)
            .await
            .expect("compaction");
        if folded.is_none_or(|n| n < 100_000) {
            return;
        }
    }
}

/// Asserts the maintained stats equal the reference for every scope, with and without test data, and
/// returns how many scopes were compared.
pub async fn assert_exact(pool: &PgPool, tenants: &[Uuid], since: DateTime<Utc>, when: &str) -> usize {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .expect("begin");
    let mut compared = 0;
    let scopes = tenants.iter().map(|t| Scope::Tenant(*t)).chain([Scope::Global]);
    for scope in scopes {
        for include in [true, false] {
            let (reference, maintained) = both(&mut tx, scope, include, since).await;
            assert_eq!(
                maintained, reference,
                "{when}: {scope:?}, include_test_data {include}"
            );
            compared += 1;
        }
    }
    for tenant in tenants {
        // The version a bundle reads through its function, against the statement it runs.
        let mut versions = Vec::new();
        for text in [
            shared::bundle::version::TENANT_VERSION_AND_ZONE_SQL.as_str(),
            shared::bundle::version::TENANT_VERSION_AND_ZONE_CALL,
        ] {
            let version: Option<(i64, Option<String>)> = sqlx::query_as(text)
                .bind(tenant)
                .fetch_optional(&mut *tx)
                .await
                .expect("version and zone");
            versions.push(version);
        }
        assert_eq!(
            versions[1], versions[0],
            "{when}: version and zone of tenant {tenant}"
        );
        compared += assert_scopes_exact(&mut tx, *tenant, since, when).await;
    }
    tx.commit().await.expect("commit");
    compared
}

/// One statement's rows, its values written in (the scoped statements take five).
async fn run(
    conn: &mut PgConnection,
    statement: &str,
    tenant: Uuid,
    include: bool,
    since: DateTime<Utc>,
    assignees: Assignees,
) -> Vec<sqlx::postgres::PgRow> {
    let text = with_assignee(
        &with_values(statement, Some(tenant), include, Some(since)),
        assignees,
        since,
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(text.clone()))
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Every employee's and team's scope of `tenant` (the test employees, anyone records are assigned
/// to, every team in `team_members`), and the tenant's own breakdowns: maintained equal to a full scan.
async fn assert_scopes_exact(
    conn: &mut PgConnection,
    tenant: Uuid,
    since: DateTime<Utc>,
    when: &str,
) -> usize {
    let mut scopes = vec![Assignees::All];
    let assigned: Vec<Uuid> = sqlx::query_scalar(
        "SELECT assigned_to FROM leads WHERE tenant_id = $1 AND assigned_to IS NOT NULL
         UNION SELECT assigned_to FROM opportunities WHERE tenant_id = $1 AND assigned_to IS NOT NULL
         UNION SELECT assigned_to FROM activities WHERE tenant_id = $1 AND assigned_to IS NOT NULL",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await
    .expect("assignees");
    let mut employees = EMPLOYEES.to_vec();
    employees.extend(assigned.into_iter().filter(|e| !EMPLOYEES.contains(e)));
    scopes.extend(employees.into_iter().map(Assignees::Employee));
    let teams: Vec<Uuid> =
        sqlx::query_scalar("SELECT DISTINCT team_id FROM team_members WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_all(&mut *conn)
            .await
            .expect("teams");
    scopes.extend(teams.into_iter().map(Assignees::Team));
    let mut compared = 0;
    for assignees in scopes {
        for include in [true, false] {
            let context = format!("{when}: tenant {tenant}, {assignees:?}, include_test_data {include}");
            if let Some(sql) = Sql::for_assignees(assignees) {
                let mut stats = Vec::new();
                for statement in [&sql.stats, &sql.maintained_stats] {
                    let rows = run(conn, statement, tenant, include, since, assignees).await;
                    stats.push(Stats::from_row(&rows[0]).expect("stats row"));
                }
                assert_eq!(stats[1], stats[0], "{context}");
                let scan = Sql::for_assignees_by_scan(assignees).expect("a scoped definition");
                for (merged, definition) in [
                    (&sql.recent_activities, &scan.recent_activities),
                    (&sql.recent_leads, &scan.recent_leads),
                    (&sql.recent_opportunities, &scan.recent_opportunities),
                ] {
                    let ids = |rows: Vec<sqlx::postgres::PgRow>| -> Vec<Uuid> {
                        rows.iter().map(|r| r.get("id")).collect()
                    };
                    let listed = ids(run(conn, merged, tenant, include, since, assignees).await);
                    let expected = ids(run(conn, definition, tenant, include, since, assignees).await);
                    assert_eq!(listed, expected, "list, {context}:\n{merged}");
                }
            }
            let breakdowns = Breakdowns::for_assignees(assignees);
            let rows = run(
                conn,
                &breakdowns.leads_by_source,
                tenant,
                include,
                since,
                assignees,
            )
            .await;
            let sources: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let rows = run(
                conn,
                &reference(assignees, SOURCES),
                tenant,
                include,
                since,
                assignees,
            )
            .await;
            let expected: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            assert_eq!(sources, expected, "leads by source, {context}");
            let rows = run(conn, &breakdowns.funnel, tenant, include, since, assignees).await;
            let funnel: Vec<(Option<String>, i64, String)> =
                rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
            let rows = run(
                conn,
                &reference(assignees, FUNNEL),
                tenant,
                include,
                since,
                assignees,
            )
            .await;
            let expected: Vec<(Option<String>, i64, String)> =
                rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
            assert_eq!(funnel, expected, "funnel, {context}");
            compared += 1;
        }
    }
    compared
}

/// The breakdowns' definition, by a full scan (`{rows}`: the scope's records). The tests' data has fewer
/// labels than a breakdown shows (`MAX_BREAKDOWN_LABELS`), so the reference needs no limit.
const SOURCES: &str =
    "SELECT CASE WHEN source IS NULL OR source = '' THEN 'other' ELSE left(source, 200) END,
                              count(*)::int8
                         FROM leads WHERE {rows} GROUP BY 1 ORDER BY 1";
const FUNNEL: &str = "SELECT left(stage, 200), count(*)::int8,
                             round(coalesce(sum(amount) FILTER (WHERE amount <> 'NaN' AND amount > '-Infinity'
                                                                  AND amount < 'Infinity'), 0), 2)::text
                        FROM opportunities WHERE {rows} GROUP BY 1 ORDER BY 1 NULLS LAST";

fn reference(assignees: Assignees, query: &str) -> String {
    let who = match assignees {
        Assignees::All => "true",
        Assignees::Employee(_) => "(assigned_to = $4::uuid OR assigned_to IS NULL)",
        Assignees::Team(_) => {
            "assigned_to IN (SELECT employee_id FROM team_members WHERE tenant_id = $1::uuid AND team_id = $4::uuid)"
        }
    };
    query.replace(
        "{rows}",
        &format!("tenant_id = $1::uuid AND {who} AND ($2::bool OR is_test_data IS NOT TRUE)"),
    )
}
