//! The benchmark dataset, generated in SQL from a fixed seed: 10,000 tenants of skewed sizes (most
//! small, about 1% large) and tenant no. 1 with 115,000 rows across the five tables, with realistic
//! stages, statuses, NULLs and test data. Every value derives from md5 of a row key, so two runs
//! generate identical data.

use anyhow::Result;
use sqlx::PgPool;

pub const TENANTS: i32 = 10_000;
pub const SEED: &str = "dashboard-bench-v1";

/// Rows per table of each tenant: `size` scaled by these factors; tenant 1 has the fixed counts below.
const HUGE: [(&str, i32); 5] = [
    ("contacts", 20_000),
    ("accounts", 10_000),
    ("leads", 30_000),
    ("opportunities", 25_000),
    ("activities", 30_000),
];

pub async fn generated(pool: &PgPool) -> Result<bool> {
    let seed: Option<String> = sqlx::query_scalar(
        "SELECT seed FROM bench_meta WHERE EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'bench_meta')",
    )
    .fetch_optional(pool)
    .await
    .unwrap_or(None);
    Ok(seed.as_deref() == Some(SEED))
}

pub async fn generate(pool: &PgPool) -> Result<()> {
    let statements = [
        // r(key) in [0, 1): deterministic pseudo-random number of a text key.
        "CREATE OR REPLACE FUNCTION bench_r(k text) RETURNS float8 LANGUAGE sql IMMUTABLE AS
           $$ SELECT ('x' || substr(md5('dashboard-bench-v1:' || k), 1, 8))::bit(32)::bigint / 4294967296.0 $$",
        "CREATE TABLE bench_tenant (n int PRIMARY KEY, id uuid NOT NULL, size int NOT NULL)",
        // Most tenants have 2-42 rows per table, skewed towards 2; 1% have 500-3,000; tenant 1 is huge.
        "INSERT INTO bench_tenant (n, id, size)
           SELECT n, md5('dashboard-bench-v1:tenant:' || n)::uuid,
                  CASE WHEN n = 1 THEN 0
                       WHEN bench_r('large:' || n) < 0.01 THEN 500 + floor(2500 * bench_r('lsize:' || n))::int
                       ELSE 2 + floor(40 * power(bench_r('size:' || n), 4))::int END
             FROM generate_series(1, 10000) AS n",
        "INSERT INTO tenant (id, slug, name, status, created_at)
           SELECT id, 'bench-' || n, 'Bench tenant ' || n,
                  CASE WHEN bench_r('status:' || n) < 0.03 THEN 'inactive' ELSE 'active' END,
                  now() - interval '2 years'
             FROM bench_tenant",
    ];
    for sql in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    }
    for (table, factor, huge) in [
        ("contacts", "1.5", HUGE[0].1),
        ("accounts", "0.5", HUGE[1].1),
        ("leads", "1", HUGE[2].1),
        ("opportunities", "0.6", HUGE[3].1),
        ("activities", "2", HUGE[4].1),
    ] {
        let rows = format!(
            "FROM bench_tenant t,
                  LATERAL generate_series(1, CASE WHEN t.n = 1 THEN {huge} ELSE ceil(t.size * {factor})::int END) AS g,
                  LATERAL (SELECT bench_r(t.n || ':{table}:' || g) AS r, bench_r(t.n || ':{table}:' || g || ':b') AS s) AS x"
        );
        let common = "t.id, x.s < 0.08 OR (x.s > 0.9 AND x.s < 0.91 AND NULL),
                      now() - make_interval(secs => x.r * 400 * 86400),
                      CASE WHEN x.s > 0.7 THEN NULL ELSE now() - make_interval(secs => x.r * 400 * 86400 + 3600) END,
                      now() - make_interval(secs => x.s * 90 * 86400),
                      CASE WHEN x.r < 0.2 THEN NULL ELSE md5(t.n || ':owner:' || floor(x.s * 7))::uuid END";
        let columns = "tenant_id, is_test_data, created_at, created_date, updated_at, assigned_to";
        let sql = match table {
            "contacts" => format!(
                "INSERT INTO contacts ({columns}, first_name, last_name, email)
                   SELECT {common}, 'First' || g, 'Last' || g, 'c' || g || '@example.com' {rows}"
            ),
            "accounts" => format!("INSERT INTO accounts ({columns}, name) SELECT {common}, 'Account ' || g {rows}"),
            "leads" => format!(
                "INSERT INTO leads ({columns}, first_name, last_name, company, email, source, status)
                   SELECT {common}, 'Lead', 'No. ' || g, 'Company ' || floor(x.s * 300), 'l' || g || '@example.com',
                          (ARRAY['web', 'referral', 'event', 'ads', NULL])[1 + floor(x.s * 5)::int],
                          (ARRAY['new', 'new', 'contacted', 'qualified', 'converted', 'lost', NULL])[1 + floor(x.r * 7)::int]
                   {rows}"
            ),
            "opportunities" => format!(
                "INSERT INTO opportunities ({columns}, name, stage, amount)
                   SELECT {common}, 'Deal ' || g,
                          (ARRAY['qualification', 'proposal', 'negotiation', 'won', 'closed_won', 'lost',
                                 'closed_lost', NULL])[1 + floor(x.s * 8)::int],
                          CASE WHEN x.r < 0.1 THEN NULL ELSE round((500 + x.r * 250000)::numeric, 2) END
                   {rows}"
            ),
            _ => format!(
                "INSERT INTO activities ({columns}, type, subject, status)
                   SELECT {common}, (ARRAY['call', 'email', 'meeting', 'task'])[1 + floor(x.s * 4)::int],
                          'Follow-up ' || g, (ARRAY['pending', 'completed', NULL])[1 + floor(x.r * 3)::int]
                   {rows}"
            ),
        };
        let started = std::time::Instant::now();
        let done = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
        eprintln!(
            "bench: generated {} {table} in {:.1?}",
            done.rows_affected(),
            started.elapsed()
        );
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ANALYZE; CREATE TABLE bench_meta (seed text NOT NULL); INSERT INTO bench_meta VALUES ('{SEED}')"
    )))
    .execute(pool)
    .await?;
    Ok(())
}
