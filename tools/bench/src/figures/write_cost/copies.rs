//! The copies of `leads` the write-cost samples run on, one per side, each named `leads` in a schema of
//! its own so that a trigger function sees the table name it expects:
//! - `bench_w_plain.leads`: no triggers;
//! - `bench_w_tracked.leads`: the insert, update and delete triggers that the migrations installed on
//!   `public.leads`, recreated from `pg_get_triggerdef` (so the figure follows whatever the migrations
//!   install). The truncate trigger is left out: its body cancels the whole table's stats;
//! - `bench_w_empty.leads`: the same triggers (events, transition tables) calling a function that only
//!   returns: what the statement-trigger mechanism costs before any work of ours.
//!
//! A copy with its triggers disabled would not do for the plain side: PostgreSQL still fills the
//! transition tables of a disabled trigger. Each sample gets a fresh table. Sessions run with
//! `synchronous_commit = off` unless `BENCH_SYNC_COMMIT=on`: a commit's WAL flush costs both sides the
//! same, is the noisiest part of a small write on a shared disk, and would only dilute the ratio.

use std::path::PathBuf;

use anyhow::{bail, Result};
use sqlx::PgPool;
use uuid::Uuid;

use super::Case;
use crate::figures::context::one_line;
use crate::floors;

/// A table of one sample: which triggers it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Plain,
    Tracked,
    Empty,
}

impl Side {
    fn schema(self) -> &'static str {
        match self {
            Side::Plain => "bench_w_plain",
            Side::Tracked => "bench_w_tracked",
            Side::Empty => "bench_w_empty",
        }
    }
}

pub(super) const SIDES: [Side; 3] = [Side::Plain, Side::Tracked, Side::Empty];

/// `CREATE TRIGGER` statements for `schema.leads` from the definitions of the triggers on `public.leads`
/// (`pg_get_triggerdef`, which qualifies the table); with `function`, each calls that function instead.
pub(super) fn retarget(definitions: &[String], schema: &str, function: Option<&str>) -> Result<Vec<String>> {
    definitions
        .iter()
        .map(|def| {
            let Some((head, tail)) = def.split_once(" ON public.leads ") else {
                bail!("no \" ON public.leads \" in {def}");
            };
            let mut out = format!("{head} ON {schema}.leads {tail}");
            if let Some(function) = function {
                let Some(at) = out.find(" EXECUTE FUNCTION ") else {
                    bail!("no EXECUTE FUNCTION in {def}");
                };
                out.truncate(at);
                out.push_str(&format!(" EXECUTE FUNCTION {function}()"));
            }
            Ok(out)
        })
        .collect()
}

/// The id of preloaded row `n`, as SQL: a uuid of `n`'s hex digits, so a statement finds its row by
/// primary key. The sequence is read in an uncorrelated subquery, evaluated once, as an index key.
const NEXT: &str = "(SELECT lpad(to_hex(nextval('{s}.n')), 32, '0')::uuid)";

/// What one pgbench sample gave.
#[derive(Clone, Copy)]
pub(super) struct Sample {
    pub(super) latency_ms: f64,
    pub(super) tps: f64,
}

/// The three sides' schemas, the `bench-writes` tenant their rows belong to, and the directory of the
/// pgbench scripts.
pub(super) struct Copies {
    pool: PgPool,
    database_url: String,
    dir: PathBuf,
    tenant: Uuid,
    /// The installed insert, update and delete triggers of `public.leads`.
    definitions: Vec<String>,
    /// Their names, for the figure's description.
    pub(super) names: Vec<String>,
    options: String,
}

impl Copies {
    pub(super) async fn new(pool: PgPool, database_url: String) -> Result<Self> {
        // 32: TRIGGER_TYPE_TRUNCATE.
        let installed: Vec<(String, String)> = sqlx::query_as(
            "SELECT tgname::text, pg_get_triggerdef(oid) FROM pg_trigger
              WHERE tgrelid = 'public.leads'::regclass AND NOT tgisinternal AND tgenabled <> 'D'
                AND tgtype & 32 = 0
              ORDER BY tgname",
        )
        .fetch_all(&pool)
        .await?;
        if installed.is_empty() {
            bail!("no insert, update or delete trigger on public.leads: are the migrations applied?");
        }
        let (names, definitions) = installed.into_iter().unzip();
        let mut setup = String::from(
            "INSERT INTO tenant (slug, name) VALUES ('bench-writes', 'Bench writes') ON CONFLICT (slug) DO NOTHING;
             DROP SCHEMA IF EXISTS bench_w_plain, bench_w_tracked, bench_w_empty CASCADE;
             CREATE SCHEMA bench_w_plain; CREATE SCHEMA bench_w_tracked; CREATE SCHEMA bench_w_empty;
             CREATE FUNCTION bench_w_empty.nothing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;",
        );
        setup.push('\n');
        sqlx::raw_sql(sqlx::AssertSqlSafe(setup)).execute(&pool).await?;
        let tenant = sqlx::query_scalar("SELECT id FROM tenant WHERE slug = 'bench-writes'")
            .fetch_one(&pool)
            .await?;
        let dir = std::env::temp_dir().join(format!("dashboard-bench-writes-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let sync = std::env::var("BENCH_SYNC_COMMIT").unwrap_or_else(|_| "off".into());
        Ok(Self {
            pool,
            database_url,
            dir,
            tenant,
            definitions,
            names,
            options: format!("-c synchronous_commit={sync}"),
        })
    }

    /// A fresh `schema.leads` of `side` with `preload` rows (ids 1..=preload, through its triggers) and a
    /// sequence that hands them out.
    async fn prepare(&self, side: Side, preload: u32) -> Result<()> {
        let s = side.schema();
        let mut sql = format!(
            "DROP TABLE IF EXISTS {s}.leads; DROP SEQUENCE IF EXISTS {s}.n;
             CREATE TABLE {s}.leads (LIKE public.leads INCLUDING ALL, FOREIGN KEY (tenant_id) REFERENCES public.tenant (id))
               WITH (autovacuum_enabled = false);
             CREATE SEQUENCE {s}.n;\n"
        );
        let triggers = match side {
            Side::Plain => Vec::new(),
            Side::Tracked => retarget(&self.definitions, s, None)?,
            Side::Empty => retarget(&self.definitions, s, Some("bench_w_empty.nothing"))?,
        };
        for t in triggers {
            sql.push_str(&t);
            sql.push_str(";\n");
        }
        if preload > 0 {
            sql.push_str(&format!(
                "INSERT INTO {s}.leads (id, tenant_id, status, created_date)
                   SELECT lpad(to_hex(g), 32, '0')::uuid, '{}', 'new', now() - g * interval '1 minute'
                     FROM generate_series(1, {preload}) g;\n",
                self.tenant
            ));
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.pool)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {s}.leads")))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops the sample's table; the tracked copy's rows are deleted first, through its triggers, so that
    /// the counters of `bench-writes` return to what the tables hold (nothing).
    async fn discard(&self, side: Side) -> Result<()> {
        let s = side.schema();
        let sql = match side {
            Side::Tracked => format!("DELETE FROM {s}.leads; DROP TABLE {s}.leads"),
            _ => format!("DROP TABLE {s}.leads"),
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn script(&self, case: &Case, side: Side) -> Result<PathBuf> {
        let s = side.schema();
        let lines: Vec<String> = case
            .script
            .iter()
            .map(|l| {
                one_line(
                    &l.replace("{next}", NEXT)
                        .replace("{t}", &format!("{s}.leads"))
                        .replace("{s}", s)
                        .replace("{tenant}", &self.tenant.to_string()),
                )
            })
            .collect();
        let path = self.dir.join(format!("{}-{s}.sql", case.part));
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok(path)
    }

    /// The sessions' `synchronous_commit` setting, as the figure describes it.
    pub(super) fn sync_commit(&self) -> &str {
        &self.options["-c ".len()..]
    }

    /// One sample: a fresh table, `transactions` per client, the table dropped.
    pub(super) async fn sample(&self, case: &Case, side: Side, transactions: u32) -> Result<Sample> {
        let preload = if case.preload { transactions } else { 0 };
        self.prepare(side, preload).await?;
        let path = self.script(case, side)?;
        let url = self.database_url.clone();
        let (clients, options) = (case.clients, self.options.clone());
        let (latency_ms, tps) = tokio::task::spawn_blocking(move || {
            floors::pgbench_with_options(&url, &path, clients, transactions, &options)
        })
        .await??;
        self.discard(side).await?;
        Ok(Sample { latency_ms, tps })
    }

    pub(super) async fn cleanup(&self) -> Result<()> {
        sqlx::raw_sql("DROP SCHEMA IF EXISTS bench_w_plain, bench_w_tracked, bench_w_empty CASCADE")
            .execute(&self.pool)
            .await?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_triggers_move_to_the_copy_and_keep_their_transition_tables() {
        let installed = vec![
            "CREATE TRIGGER leads_bundle_update AFTER UPDATE ON public.leads REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.bundle_track_leads_update()".to_owned(),
        ];
        let tracked = retarget(&installed, "bench_w_tracked", None).unwrap();
        assert_eq!(
            tracked[0],
            "CREATE TRIGGER leads_bundle_update AFTER UPDATE ON bench_w_tracked.leads REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dashboard_cache.bundle_track_leads_update()"
        );
        let empty = retarget(&installed, "bench_w_empty", Some("bench_w_empty.nothing")).unwrap();
        assert_eq!(
            empty[0],
            "CREATE TRIGGER leads_bundle_update AFTER UPDATE ON bench_w_empty.leads REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bench_w_empty.nothing()"
        );
        assert!(retarget(
            &["CREATE TRIGGER x AFTER INSERT ON public.contacts".into()],
            "s",
            None
        )
        .is_err());
    }
}
