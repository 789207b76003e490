//! `BENCH_FIGURES=scoped`: the miss of an employee's and of a 50-member team's bundle in a tenant of
//! 10^6 rows, beside the tenant-wide miss of the same tenant and the same scopes in tenants of 10^5
//! and 10^3 rows (issue 26: per-assignee counters, so a scope's cost does not grow with the data),
//! each beside the scope's full-scan SQL by pgbench. At 10^3 rows each employee has about five
//! records, so fewer day buckets and list rows to read: the cost grows until every member's 30-day
//! window and lists are full (10^5 rows), and no further.

use anyhow::Result;
use shared::bundle::assignee_sql::with_assignee;
use shared::bundle::identity::{Assignees, BundleId, Scope};
use shared::bundle::query::{recent_window_start, with_values, Sql};
use uuid::Uuid;

use super::changes::{compute_p50, tenant_of};
use super::context::{ratio, spread, Context};
use crate::floors;
use crate::report::{Check, Goal, Row};

/// The employees of a scoped tenant: rows go round them, every tenth row unassigned.
const EMPLOYEES: i64 = 200;
const TEAM_MEMBERS: i64 = 50;
const TEAM: Uuid = Uuid::from_u128(0x7ea0_0000_0000_4000_8000_0000_0000_0050);

fn employee(k: i64) -> Uuid {
    Uuid::from_u128(0xe000_0000_0000_4000_8000_0000_0000_0000 + k as u128)
}

/// A tenant of `rows` rows assigned round [`EMPLOYEES`] employees (every tenth row to no one), with a
/// team of the first [`TEAM_MEMBERS`].
async fn scoped_tenant(ctx: &Context, rows: i64) -> Result<Uuid> {
    let assigned = format!(
        "CASE WHEN g % 10 = 0 THEN NULL
              ELSE ('e0000000-0000-4000-8000-' || lpad(to_hex(g % {EMPLOYEES}), 12, '0'))::uuid END"
    );
    let tenant = tenant_of(ctx, &format!("bench-scoped-{rows}"), rows, &assigned).await?;
    sqlx::query(
        "INSERT INTO team_members (tenant_id, team_id, employee_id)
         SELECT $1, $2, ('e0000000-0000-4000-8000-' || lpad(to_hex(k), 12, '0'))::uuid
           FROM generate_series(0, $3 - 1) k
          WHERE NOT EXISTS (SELECT FROM team_members WHERE tenant_id = $1 AND team_id = $2)",
    )
    .bind(tenant)
    .bind(TEAM)
    .bind(TEAM_MEMBERS)
    .execute(&ctx.pool)
    .await?;
    Ok(tenant)
}

/// The scope's full-scan statements by pgbench: average ms.
fn full_scan_ms(ctx: &Context, tenant: Uuid, assignees: Assignees, runs: u32) -> Result<f64> {
    let sql = Sql::for_assignees_by_scan(assignees).ok_or_else(|| anyhow::anyhow!("not a scope"))?;
    let since = recent_window_start(chrono::Utc::now(), shared::bundle::tenant_time::Zone::Utc);
    let lines: Vec<String> = [
        &sql.stats,
        &sql.recent_activities,
        &sql.recent_leads,
        &sql.recent_opportunities,
    ]
    .iter()
    .map(|s| {
        format!(
            "{};",
            with_assignee(&with_values(s, Some(tenant), true, Some(since)), assignees, since)
        )
    })
    .collect();
    let path = ctx.script(&format!("scoped-{tenant}-{}.sql", assignees.name()), &lines)?;
    Ok(floors::pgbench(&ctx.database_url, &path, 1, runs)?.0)
}

/// Rounds of a figure's alternating measurements: each round measures every size once, so that a
/// slow spell of the machine does not land on one size only.
const ROUNDS: usize = 5;
/// Misses per round and bundle.
const RUNS: usize = 25;

/// The p50 of each of `ids`' miss, measured in [`ROUNDS`] alternating rounds: per bundle, the
/// median of the rounds and their spread (min, max).
async fn alternating_p50s(ctx: &Context, ids: &[BundleId]) -> Result<Vec<(f64, f64, f64)>> {
    let mut rounds = vec![Vec::new(); ids.len()];
    for _ in 0..ROUNDS {
        for (id, samples) in ids.iter().zip(&mut rounds) {
            samples.push(compute_p50(ctx, *id, RUNS).await?);
        }
    }
    Ok(rounds.iter().map(|samples| spread(samples)).collect())
}

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let small = scoped_tenant(ctx, 1_000).await?;
    let mid = scoped_tenant(ctx, 100_000).await?;
    let large = scoped_tenant(ctx, 1_000_000).await?;
    ctx.compact_all().await?;
    let id = |tenant: Uuid, assignees| BundleId {
        assignees,
        ..BundleId::new(Scope::Tenant(tenant), true)
    };
    let whole = compute_p50(ctx, id(large, Assignees::All), 15).await?;
    let mut rows = vec![Row {
        part: "",
        label: "Miss: the whole tenant of 10^6 rows (200 employees)".into(),
        ours: format!("p50 {whole:.2} ms"),
        floor: "(the reference for a and b)".into(),
        ratio: String::new(),
        goal: "≤ 5 ms".into(),
        checks: vec![Check::new(Goal::AtMost(5.0), whole, format!("p50 {whole:.2} ms"))],
        how: "bundle::compute + serialise after compaction, 15 runs".into(),
    }];
    for (part, name, assignees) in [
        (
            "a",
            "an employee's bundle (own and unassigned records)",
            Assignees::Employee(employee(1)),
        ),
        ("b", "a 50-member team's bundle", Assignees::Team(TEAM)),
    ] {
        let ids = [
            id(large, assignees),
            id(mid, assignees),
            id(small, assignees),
            id(large, Assignees::All),
        ];
        let p50s = alternating_p50s(ctx, &ids).await?;
        let [(ours, ours_min, ours_max), (at_mid, mid_min, mid_max), (at_small, small_min, small_max), (whole, ..)] =
            p50s[..]
        else {
            anyhow::bail!("one measurement per size");
        };
        let full = full_scan_ms(ctx, large, assignees, 3)?;
        // An employee reads two assignees' counters and lists, like the tenant's one set: the same
        // bound. A team reads each member's: a sum over 50 members, bounded by the tenant's miss.
        let size = match assignees {
            Assignees::Team(_) => Check::new(
                Goal::AtMost(2.0),
                ours / whole,
                format!("{:.2}× the whole tenant's miss", ours / whole),
            ),
            _ => Check::new(Goal::AtMost(5.0), ours, format!("p50 {ours:.2} ms")),
        };
        let size_goal = match assignees {
            Assignees::Team(_) => "≤ 2× the whole tenant's miss",
            _ => "≤ 5 ms",
        };
        rows.push(Row {
            part,
            label: format!("Miss: {name}, 10^6-row tenant"),
            ours: format!(
                "p50 {ours:.2} ms ({ours_min:.2}–{ours_max:.2}); at 10^5 rows {at_mid:.2} ms \
                 ({mid_min:.2}–{mid_max:.2}); at 10^3 rows {at_small:.2} ms ({small_min:.2}–{small_max:.2}); \
                 whole tenant in the same rounds {whole:.2} ms"
            ),
            floor: format!("the scope's full-scan SQL by pgbench: {full:.1} ms"),
            ratio: ratio(ours, full),
            goal: format!("{size_goal}; ≤ 1.2× its miss at 10^5 rows, ≤ 2× at 10^3 rows"),
            checks: vec![
                size,
                Check::new(Goal::AtMost(1.2), ours / at_mid, format!("{:.2}× the 10^5-row miss", ours / at_mid)),
                Check::new(Goal::AtMost(2.0), ours / at_small, format!("{:.2}× the 10^3-row miss", ours / at_small)),
            ],
            how: format!(
                "bundle::compute of the scoped bundle + serialise after compaction: {ROUNDS} alternating rounds \
                 over the three sizes and the whole tenant, {RUNS} runs each, median (min–max) of the rounds' p50s; pgbench -t 3 \
                 of its full-scan statements"
            ),
        });
    }
    Ok(rows)
}
