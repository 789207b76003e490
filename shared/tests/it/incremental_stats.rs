//! The maintained stats are exact: after any mix of writes (concurrent, hostile values, tenant moves,
//! truncates, compaction running meanwhile) they equal the full-scan SQL of the bundle definition, for
//! every tenant, with and without test data, and for the global view.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use shared::bundle::identity::Scope;
use shared::bundle::query::recent_window_start;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use test_support::exactness::{assert_exact, both, EMPLOYEES};
use uuid::Uuid;

async fn tenants(pool: &PgPool, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = sqlx::query_scalar("INSERT INTO tenant (slug, name) VALUES ($1, $1) RETURNING id")
            .bind(format!("t{i}"))
            .fetch_one(pool)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

/// A small deterministic generator (xorshift), so that a failing workload can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A SQL literal for one of the values the bundle treats specially, around the 30-day window start.
fn timestamp(rng: &mut Rng, since: DateTime<Utc>) -> String {
    match rng.below(8) {
        0 => "NULL".to_owned(),
        1 => "'infinity'".to_owned(),
        2 => "'-infinity'".to_owned(),
        3 => format!("'{}'", since.to_rfc3339()),
        4 => format!("'{}'", (since - TimeDelta::microseconds(1)).to_rfc3339()),
        _ => {
            let minutes = rng.below(60 * 24 * 8) as i64 - 60 * 24 * 4;
            format!("'{}'", (since + TimeDelta::minutes(minutes)).to_rfc3339())
        }
    }
}

/// One of the test employees, or NULL (unassigned).
fn assignee_literal(rng: &mut Rng) -> String {
    match rng.below(EMPLOYEES.len() as u64 + 1) as usize {
        i if i == EMPLOYEES.len() => "NULL".to_owned(),
        i => format!("'{}'::uuid", EMPLOYEES[i]),
    }
}

fn tenant_literal(rng: &mut Rng, tenants: &[Uuid]) -> String {
    match rng.below(tenants.len() as u64 + 1) as usize {
        i if i == tenants.len() => "NULL".to_owned(),
        i => format!("'{}'::uuid", tenants[i]),
    }
}

/// One random write statement of writer `w` of `writers`: inserts of several rows, updates of every
/// column the bundle reads (reassignments included), tenant moves, deletes, team membership changes,
/// and now and then a TRUNCATE. Updates and deletes
/// touch only this writer's share of the rows, so writers do not deadlock on the CRM's own rows.
fn statement(rng: &mut Rng, w: u64, writers: u64, tenants: &[Uuid], since: DateTime<Utc>) -> String {
    // Now and then a team gains or loses a member (its scope sums other assignees from then on).
    if rng.below(40) == 0 {
        let tenant = tenants[rng.below(tenants.len() as u64) as usize];
        let team = Uuid::from_u128(0x7ea1 + u128::from(rng.below(2) as u8));
        let employee = EMPLOYEES[rng.below(EMPLOYEES.len() as u64) as usize];
        return match rng.below(2) {
            0 => format!("INSERT INTO team_members VALUES ('{tenant}', '{team}', '{employee}')"),
            _ => format!(
                "DELETE FROM team_members WHERE ctid IN (SELECT ctid FROM team_members
                  WHERE tenant_id = '{tenant}' AND team_id = '{team}' AND employee_id = '{employee}' LIMIT 1)"
            ),
        };
    }
    let table = rng.pick(&["contacts", "accounts", "leads", "opportunities", "activities"]);
    let mine = format!("abs(hashtext(id::text)) % {writers} = {w}");
    let some = format!(
        "id IN (SELECT id FROM {table} WHERE {mine} ORDER BY random() LIMIT {})",
        1 + rng.below(6)
    );
    match rng.below(100) {
        0..=44 => {
            let rows: Vec<String> = (0..1 + rng.below(5))
                .map(|_| {
                    let tenant = tenant_literal(rng, tenants);
                    let test = rng.pick(&["true", "false", "NULL"]);
                    let created_date = timestamp(rng, since);
                    let created_at = match timestamp(rng, since).as_str() {
                        "NULL" => "now()".to_owned(),
                        other => other.to_owned(),
                    };
                    let assignee = assignee_literal(rng);
                    let extra = match table {
                        "accounts" => ", 'a'".to_owned(),
                        "leads" => format!(
                            ", {}, {}",
                            rng.pick(&["'new'", "'converted'", "'lost'", "NULL", "'contacted'"]),
                            rng.pick(&["'web'", "''", "NULL", "'other'", "'referral'"])
                        ),
                        "opportunities" => format!(
                            ", 'o', {}, {}",
                            rng.pick(&[
                                "'won'",
                                "'closed_won'",
                                "'lost'",
                                "'closed_lost'",
                                "NULL",
                                "'proposal'"
                            ]),
                            rng.pick(&["'NaN'", "NULL", "10.25", "1000000.01", "-3.5", "0"])
                        ),
                        "activities" => ", 'call'".to_owned(),
                        _ => String::new(),
                    };
                    format!("({tenant}, {test}, {created_date}, {created_at}, {assignee}{extra})")
                })
                .collect();
            let columns = match table {
                "accounts" => ", name",
                "leads" => ", status, source",
                "opportunities" => ", name, stage, amount",
                "activities" => ", type",
                _ => "",
            };
            format!(
                "INSERT INTO {table} (tenant_id, is_test_data, created_date, created_at, assigned_to{columns}) VALUES {}",
                rows.join(", ")
            )
        }
        45..=54 => format!(
            "UPDATE {table} SET tenant_id = {} WHERE {some}",
            tenant_literal(rng, tenants)
        ),
        55..=64 => format!(
            "UPDATE {table} SET is_test_data = {} WHERE {some}",
            rng.pick(&["true", "false", "NULL"])
        ),
        65..=74 => format!(
            "UPDATE {table} SET created_date = {} WHERE {some}",
            timestamp(rng, since)
        ),
        75..=79 => format!(
            "UPDATE {table} SET assigned_to = {} WHERE {some}",
            assignee_literal(rng)
        ),
        80..=84 if table == "leads" => format!(
            "UPDATE leads SET status = {}, source = {} WHERE {some}",
            rng.pick(&["'new'", "'converted'", "'lost'", "NULL"]),
            rng.pick(&["'web'", "NULL", "source", "'referral'"])
        ),
        80..=84 if table == "opportunities" => format!(
            "UPDATE opportunities SET stage = {}, amount = {} WHERE {some}",
            rng.pick(&["'won'", "'closed_won'", "'lost'", "NULL", "'negotiation'"]),
            rng.pick(&["'NaN'", "NULL", "99.99", "amount + 1", "amount"])
        ),
        80..=84 => format!("UPDATE {table} SET created_at = now() - interval '31 days' WHERE {some}"),
        85..=97 => format!("DELETE FROM {table} WHERE {some}"),
        _ => format!("TRUNCATE {table}"),
    }
}

async fn compact(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact(200)")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn maintained_stats_equal_a_full_recomputation_after_a_random_concurrent_workload(pool: PgPool) {
    let ids = tenants(&pool, 4).await;
    let since = recent_window_start(Utc::now(), shared::bundle::tenant_time::Zone::Utc);
    // Two teams per tenant (one member listed twice), and one without members in the workload.
    for tenant in &ids {
        sqlx::query(
            "INSERT INTO team_members (tenant_id, team_id, employee_id)
             VALUES ($1, $2, $4), ($1, $2, $5), ($1, $2, $4), ($1, $3, $6)",
        )
        .bind(tenant)
        .bind(Uuid::from_u128(0x7ea1))
        .bind(Uuid::from_u128(0x7ea2))
        .bind(EMPLOYEES[0])
        .bind(EMPLOYEES[1])
        .bind(EMPLOYEES[2])
        .execute(&pool)
        .await
        .unwrap();
    }
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with((*pool.connect_options()).clone());
    const WRITERS: u64 = 4;
    const STATEMENTS: usize = 600;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let compactor = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut folded = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                folded += compact(&pool).await.unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            folded
        })
    };
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (pool, ids) = (pool.clone(), ids.clone());
        writers.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
            for _ in 0..STATEMENTS {
                let sql = statement(&mut rng, w, WRITERS, &ids, since);
                // Now and then two statements in one transaction.
                if rng.below(10) == 0 {
                    let second = statement(&mut rng, w, WRITERS, &ids, since);
                    if !second.starts_with("TRUNCATE") && !sql.starts_with("TRUNCATE") {
                        let mut tx = pool.begin().await.unwrap();
                        for s in [&sql, &second] {
                            sqlx::raw_sql(sqlx::AssertSqlSafe(s.clone()))
                                .execute(&mut *tx)
                                .await
                                .unwrap_or_else(|e| panic!("{s}: {e}"));
                        }
                        tx.commit().await.unwrap();
                        continue;
                    }
                }
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let folded = compactor.await.unwrap();

    assert!(folded > 0, "compaction ran during the workload");
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM leads) + (SELECT count(*) FROM opportunities) + (SELECT count(*) FROM activities)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(rows > 50, "the workload left data to count: {rows}");
    assert_exact(&pool, &ids, since, "after the workload").await;
    while compact(&pool).await.unwrap_or(0) > 0 {}
    assert_exact(&pool, &ids, since, "after compaction").await;
    // A window starting at a midnight that is not UTC's (UTC+05:45): its first day part is read per
    // 15-minute bucket, the rest per day.
    let kathmandu = shared::bundle::tenant_time::Zone::parse(Some("Asia/Kathmandu"));
    let since_kathmandu = recent_window_start(Utc::now(), kathmandu);
    assert_exact(&pool, &ids, since_kathmandu, "a window starting at 18:15 UTC").await;
    let mut drifted = 0i64;
    for tenant in ids.iter().map(|t| Some(*t)).chain([None]) {
        drifted += sqlx::query_scalar::<_, i64>("SELECT dashboard_cache.bundle_stats_repair($1)")
            .bind(tenant)
            .fetch_one(&pool)
            .await
            .unwrap();
    }
    assert_eq!(
        drifted, 0,
        "the group-by-group check finds nothing to repair either"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn repair_restores_stats_after_writes_that_bypassed_the_triggers(pool: PgPool) {
    let ids = tenants(&pool, 2).await;
    let since = recent_window_start(Utc::now(), shared::bundle::tenant_time::Zone::Utc);
    sqlx::query("INSERT INTO leads (tenant_id, status) VALUES ($1, 'new'), ($2, NULL)")
        .bind(ids[0])
        .bind(ids[1])
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET session_replication_role = replica;
         INSERT INTO opportunities (tenant_id, name, stage, amount) VALUES ('{}', 'o', 'won', 12.5);
         DELETE FROM leads WHERE tenant_id = '{}';
         RESET session_replication_role",
        ids[0], ids[1]
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let (reference, maintained) = both(
        &mut pool.acquire().await.unwrap(),
        Scope::Tenant(ids[0]),
        true,
        since,
    )
    .await;
    assert_ne!(maintained, reference, "the bypass is invisible to the counters");
    let before: i64 = shared::bundle::version::current(&pool, Scope::Tenant(ids[0]), false)
        .await
        .unwrap();

    let drifted: i64 = sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_resync()")
        .fetch_one(&pool)
        .await
        .unwrap();

    assert!(drifted >= 2, "{drifted}");
    assert!(
        shared::bundle::version::current(&pool, Scope::Tenant(ids[0]), false)
            .await
            .unwrap()
            > before
    );
    assert_exact(&pool, &ids, since, "after resync").await;
}

#[sqlx::test(migrations = false)]
async fn installing_on_a_populated_crm_backfills_its_data_exactly(pool: PgPool) {
    let (before, after): (Vec<_>, Vec<_>) = test_support::migration_files()
        .into_iter()
        .partition(|(name, _)| name.as_str() < "20261124000002");
    for (_, sql) in before {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    let ids = tenants(&pool, 2).await;
    let since = recent_window_start(Utc::now(), shared::bundle::tenant_time::Zone::Utc);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO leads (tenant_id, is_test_data, status, created_date) VALUES
           ('{a}', false, 'new', now()), ('{a}', true, NULL, 'infinity'), ('{b}', NULL, 'lost', '-infinity'),
           (NULL, false, 'new', now());
         INSERT INTO opportunities (tenant_id, name, stage, amount) VALUES
           ('{a}', 'x', 'won', 10.10), ('{a}', 'y', NULL, 'NaN'), ('{b}', 'z', 'proposal', 5);
         INSERT INTO activities (tenant_id, type, created_date) VALUES ('{a}', 'call', '{since}'), ('{b}', 'call', NULL);
         INSERT INTO contacts (tenant_id) VALUES ('{a}'), (NULL);
         INSERT INTO accounts (tenant_id, name) VALUES ('{b}', 'acc');
         UPDATE leads SET status = 'converted' WHERE status = 'new' AND tenant_id = '{a}'",
        a = ids[0],
        b = ids[1],
        since = since.to_rfc3339()
    )))
    .execute(&pool)
    .await
    .unwrap();
    for (_, sql) in after {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }

    assert_exact(&pool, &ids, since, "after the backfill").await;
    for id in &ids {
        let version = shared::bundle::version::current(&pool, Scope::Tenant(*id), false)
            .await
            .unwrap();
        assert!(version > 0, "a tenant with data has a version: {version}");
    }
}
