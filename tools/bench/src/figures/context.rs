//! The measuring context every figure but the self-contained ones shares: the bench database, the
//! functions' environment with this run's Redis key prefix, the two reference tenants, pgbench scripts;
//! and the small helpers of measuring (percentiles, ratios, a deadline no benchmark reaches, this
//! process's memory).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use shared::bundle::assignee_sql::Breakdowns;
use shared::bundle::identity::{Assignees, Scope};
use shared::bundle::query::{self as bundle, Sql};
use shared::platform::clock::Clock;
use shared::platform::db::Database;
use sqlx::PgPool;
use test_support::TestEnv;
use uuid::Uuid;

pub struct Context {
    pub(super) pool: PgPool,
    pub(super) database_url: String,
    pub(super) redis_port: u16,
    /// Tenant no. 1: 115,000 rows.
    pub(super) huge: Uuid,
    /// A tenant of median size.
    pub(super) typical: Uuid,
    prefix: String,
    dir: PathBuf,
}

impl Context {
    pub async fn new(pool: PgPool, database_url: String, redis_port: u16) -> Result<Self> {
        let huge = sqlx::query_scalar("SELECT id FROM bench_tenant WHERE n = 1")
            .fetch_one(&pool)
            .await?;
        let typical = sqlx::query_scalar(
            "SELECT id FROM bench_tenant WHERE n > 1 ORDER BY size, n OFFSET (SELECT count(*) / 2 FROM bench_tenant) LIMIT 1",
        )
        .fetch_one(&pool)
        .await?;
        let dir = std::env::temp_dir().join(format!("dashboard-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            pool,
            database_url,
            redis_port,
            huge,
            typical,
            prefix: format!("bench:{}:", Uuid::new_v4().simple()),
            dir,
        })
    }

    /// The functions' environment in the benchmark: long timeouts, a prefix of this run's own.
    pub(super) fn env(&self) -> TestEnv {
        TestEnv::new()
            .set("DATABASE_URL", self.database_url.clone())
            .set("REDIS_URL", format!("redis://127.0.0.1:{}", self.redis_port))
            .set("CACHE_KEY_PREFIX", self.prefix.clone())
            .set("DB_POOL_SIZE", "8")
            .set("DB_ACQUIRE_TIMEOUT_MS", "30000")
            .set("DB_STATEMENT_TIMEOUT_MS", "120000")
            .set("REQUEST_DEADLINE_MS", "120000")
            .set("REDIS_CONNECT_TIMEOUT_MS", "1000")
            .set("REDIS_RESPONSE_TIMEOUT_MS", "2000")
            .set("BUNDLE_MAX_AGE_SECONDS", "90000")
            .set("BUNDLE_LEASE_MS", "30000")
    }

    /// Where the bench database's server listens, for a proxy in front of it.
    pub(super) fn postgres_addr(&self) -> Result<std::net::SocketAddr> {
        let url = url::Url::parse(&self.database_url)?;
        let host = match url.host_str() {
            Some("localhost") | None => "127.0.0.1",
            Some(host) => host,
        };
        Ok(format!("{host}:{}", url.port().unwrap_or(5432)).parse()?)
    }

    /// Folds every change delta (as the compaction schedule would have by the time of a steady state).
    pub(super) async fn compact_all(&self) -> Result<()> {
        loop {
            let folded: Option<i64> =
                sqlx::query_scalar("SELECT dashboard_cache.bundle_stats_compact(100000)")
                    .fetch_one(&self.pool)
                    .await?;
            if folded.unwrap_or(0) < 100_000 {
                // What autovacuum does soon after (the migration tunes it for these tables): the figures
                // are of the steady state, not of a just-folded backlog of millions of deltas.
                sqlx::raw_sql(
                    "VACUUM ANALYZE dashboard_cache.bundle_stats_delta, dashboard_cache.bundle_stats_base,
                     dashboard_cache.scope_stats_delta, dashboard_cache.scope_stats_base",
                )
                .execute(&self.pool)
                .await?;
                return Ok(());
            }
        }
    }

    pub(super) fn db(&self) -> Database {
        self.env().database(&self.pool)
    }

    pub(super) fn dashboard_config(&self) -> dashboard_bundle::config::Config {
        dashboard_bundle::config::Config::from_env(&self.env().as_env()).expect("bench config")
    }

    pub(super) fn state(&self, clock: &Clock) -> dashboard_bundle::State {
        dashboard_bundle::State::with_database(self.dashboard_config(), self.db(), clock.clone())
            .expect("bench state")
    }

    pub async fn cleanup(&self) {
        let cache = shared::store::RedisCache::new(&self.env().redis()).expect("redis config");
        let _ = cache.unlink_matching(&format!("{}*", self.prefix)).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The bundle statements of `tenant` with literal values, for pgbench: the text of what
    /// `bundle::compute` runs (the stats from the maintained counters).
    pub(super) fn literal_sql(&self, tenant: &str, include: &str) -> Vec<String> {
        self.literal_sql_of(Some(tenant), include, Statements::Text)
    }

    /// The bundle statements of a tenant (`None`: the global view) with literal values, in `form`.
    pub(super) fn literal_sql_of(
        &self,
        tenant: Option<&str>,
        include: &str,
        form: Statements,
    ) -> Vec<String> {
        let since =
            bundle::recent_window_start(Utc::now(), shared::bundle::tenant_time::Zone::Utc).to_rfc3339();
        let scope = match tenant {
            Some(_) => Scope::Tenant(Uuid::nil()),
            None => Scope::Global,
        };
        let (sql, breakdowns) = match form {
            Statements::Calls => (Sql::for_scope(scope), Breakdowns::for_assignees(Assignees::All)),
            Statements::Text | Statements::FullScan => {
                (Sql::definition(scope), Breakdowns::definition(Assignees::All))
            }
        };
        let literal = tenant
            .map(|t| format!("{t}::uuid"))
            .unwrap_or_else(|| "NULL::uuid".to_owned());
        let fill = |s: &str| {
            s.replace("$1::uuid", &literal)
                .replace("$2::bool", include)
                .replace("$3::timestamptz", &format!("'{since}'::timestamptz"))
        };
        let version = match tenant {
            Some(_) => match form {
                Statements::Calls => {
                    shared::bundle::version::TENANT_VERSION_AND_ZONE_CALL.replace("$1::uuid", &literal)
                }
                Statements::Text | Statements::FullScan => {
                    shared::bundle::version::TENANT_VERSION_AND_ZONE_SQL.replace("$1::uuid", &literal)
                }
            },
            None => shared::bundle::version::GLOBAL_VERSION_SQL.to_string(),
        };
        let stats = match form {
            Statements::FullScan => &sql.stats,
            Statements::Text | Statements::Calls => &sql.maintained_stats,
        };
        let mut lines = vec![
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;".to_owned(),
            format!("{};", one_line(&version)),
            format!("{};", one_line(&fill(stats))),
            format!("{};", one_line(&fill(&sql.recent_activities))),
            format!("{};", one_line(&fill(&sql.recent_leads))),
            format!("{};", one_line(&fill(&sql.recent_opportunities))),
        ];
        // A tenant's bundle also reads its two breakdowns (leads by source, the funnel).
        if tenant.is_some() {
            lines.push(format!("{};", one_line(&fill(&breakdowns.leads_by_source))));
            lines.push(format!("{};", one_line(&fill(&breakdowns.funnel))));
        }
        lines.push("COMMIT;".to_owned());
        lines
    }

    pub(super) fn script(&self, name: &str, lines: &[String]) -> Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok(path)
    }
}

/// A request deadline no benchmark reaches.
pub(super) fn far_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(600)
}

/// pgbench reads one statement per line.
/// `sql` on one line, as a pgbench script needs it: each line's `--` comment dropped first (the bundle's
/// statements carry some; joined, one would swallow the rest of the statement). No statement has `--`
/// inside a string literal.
pub(super) fn one_line(sql: &str) -> String {
    sql.lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _comment)| code))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Median, min and max of `values` (not empty): a figure measured in rounds.
pub(super) fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (median, sorted[0], sorted[n - 1])
}

pub(super) fn ratio(ours: f64, floor: f64) -> String {
    format!("{:.2}×", ours / floor)
}

/// A field of this process's `/proc/self/status`, in KiB ("VmRSS", "VmHWM").
pub(super) fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Which statements [`Context::literal_sql_of`] writes.
#[derive(Clone, Copy)]
pub(super) enum Statements {
    /// Each statement's text, the stats from the maintained counters.
    Text,
    /// The same with the stats by the reference full scan of the tables.
    FullScan,
    /// What `bundle::compute` sends: a tenant's statements as calls of their functions.
    Calls,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_the_median_and_the_extremes() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }

    #[test]
    fn every_bundle_statement_fits_one_pgbench_line_with_its_comments_dropped() {
        for scope in [Scope::Tenant(Uuid::nil()), Scope::Global] {
            let sql = Sql::definition(scope);
            for statement in [&sql.stats, &sql.maintained_stats, &sql.recent_activities] {
                let line = one_line(statement);
                assert!(!line.contains("--"), "{line}");
                assert_eq!(line.matches('\'').count() % 2, 0, "unbalanced quote: {line}");
            }
        }
    }
}
