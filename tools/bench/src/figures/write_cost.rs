//! Figures 9a-9g (`BENCH_FIGURES=changes`, or `changes-writes` alone): what the change-tracking triggers
//! cost the CRM's writes, measured so that the figure survives a rerun.
//!
//! One pgbench run against another moved by 2× on this kind of machine, so no figure is one run against
//! one run. Each comparison is several rounds; a round measures every side once, each on a table made
//! for that sample, in an order that rotates from round to round (every side takes every position
//! equally often, so a slow drift of the machine does not favour one side). A round gives a ratio per
//! side; a figure is the median ratio with the min-max over the rounds.
//!
//! The sides are copies of `leads` (same columns, defaults, indexes and tenant foreign key), each named
//! `leads` in a schema of its own so that a trigger function sees the table name it expects:
//! - `bench_w_plain.leads`: no triggers;
//! - `bench_w_tracked.leads`: the insert, update and delete triggers that the migrations installed on
//!   `public.leads`, recreated from `pg_get_triggerdef` (so the figure follows whatever the migrations
//!   install). The truncate trigger is left out: its body cancels the whole table's stats;
//! - `bench_w_empty.leads`: the same triggers (events, transition tables) calling a function that only
//!   returns: what the statement-trigger mechanism costs before any work of ours.
//!
//! A copy with its triggers disabled would not do for the plain side: PostgreSQL still fills the
//! transition tables of a disabled trigger. Sessions run with `synchronous_commit = off` unless
//! `BENCH_SYNC_COMMIT=on`: a commit's WAL flush costs both sides the same, is the noisiest part of a
//! small write on a shared disk, and would only dilute the ratio.

use std::path::PathBuf;

use anyhow::{bail, Result};
use sqlx::PgPool;
use uuid::Uuid;

use super::context::one_line;
use crate::{floors, Row};

/// A table of one sample: which triggers it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
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

const SIDES: [Side; 3] = [Side::Plain, Side::Tracked, Side::Empty];

/// The order of round `round`: the six orders of three sides in turn, so that over six rounds each
/// side runs first, second and last twice.
pub fn order(round: usize) -> [Side; 3] {
    use Side::{Empty as E, Plain as P, Tracked as T};
    const ORDERS: [[Side; 3]; 6] = [[P, T, E], [E, T, P], [T, E, P], [P, E, T], [E, P, T], [T, P, E]];
    ORDERS[round % ORDERS.len()]
}

/// Median, min and max of `values` (not empty).
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
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

/// `CREATE TRIGGER` statements for `schema.leads` from the definitions of the triggers on `public.leads`
/// (`pg_get_triggerdef`, which qualifies the table); with `function`, each calls that function instead.
pub fn retarget(definitions: &[String], schema: &str, function: Option<&str>) -> Result<Vec<String>> {
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

/// One kind of write: its pgbench script (`{t}` the table, `{next}` the next preloaded row's id,
/// `{tenant}` the tenant), rows to preload per statement, clients.
struct Case {
    id: &'static str,
    what: &'static str,
    script: &'static [&'static str],
    preload: bool,
    clients: u32,
    /// Statements in the calibration run.
    probe: u32,
    goal: &'static str,
}

/// The id of preloaded row `n`, as SQL: a uuid of `n`'s hex digits, so a statement finds its row by
/// primary key. The sequence is read in an uncorrelated subquery, evaluated once, as an index key.
const NEXT: &str = "(SELECT lpad(to_hex(nextval('{s}.n')), 32, '0')::uuid)";

const CASES: [Case; 5] = [
    Case {
        id: "9a",
        what: "single-row INSERT",
        script: &["INSERT INTO {t} (tenant_id, status, created_date) VALUES ('{tenant}', 'new', now());"],
        preload: false,
        clients: 1,
        probe: 1000,
        goal: "≤ 1.3×",
    },
    Case {
        id: "9b",
        what: "single-row UPDATE (status)",
        script: &["UPDATE {t} SET status = 'contacted', updated_at = now() WHERE id = {next};"],
        preload: true,
        clients: 1,
        probe: 1000,
        goal: "≤ 1.3×",
    },
    Case {
        id: "9c",
        what: "single-row DELETE",
        script: &["DELETE FROM {t} WHERE id = {next};"],
        preload: true,
        clients: 1,
        probe: 1000,
        goal: "≤ 1.3×",
    },
    Case {
        id: "9d",
        what: "one 1,000-row INSERT statement",
        script: &["INSERT INTO {t} (tenant_id, status, created_date)
                     SELECT '{tenant}', 'new', now() - g * interval '1 minute' FROM generate_series(1, 1000) g;"],
        preload: false,
        clients: 1,
        probe: 5,
        goal: "(context)",
    },
    // Two transactions of one tenant, each open 2 ms between its writes: if the triggers shared a row
    // (a version counter), the second writer would wait for the first to commit.
    Case {
        id: "9e",
        what: "two writers on one tenant",
        script: &[
            "BEGIN;",
            "INSERT INTO {t} (tenant_id, status) VALUES ('{tenant}', 'new');",
            "SELECT pg_sleep(0.002);",
            "INSERT INTO {t} (tenant_id, status) VALUES ('{tenant}', 'lost');",
            "COMMIT;",
        ],
        preload: false,
        clients: 2,
        probe: 50,
        goal: "≥ 0.9× throughput",
    },
];

/// What one pgbench sample gave.
#[derive(Clone, Copy)]
struct Sample {
    latency_ms: f64,
    tps: f64,
}

pub struct Bench {
    pool: PgPool,
    database_url: String,
    dir: PathBuf,
    tenant: Uuid,
    /// The installed insert, update and delete triggers of `public.leads`.
    definitions: Vec<String>,
    names: Vec<String>,
    options: String,
    rounds: usize,
    sample_ms: f64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Bench {
    pub async fn new(pool: PgPool, database_url: String) -> Result<Self> {
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
            rounds: env_or("BENCH_WRITE_ROUNDS", 6usize).max(5),
            sample_ms: env_or("BENCH_WRITE_SAMPLE_MS", 1000.0),
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
        let path = self.dir.join(format!("{}-{s}.sql", case.id));
        std::fs::write(&path, lines.join("\n") + "\n")?;
        Ok(path)
    }

    /// One sample: a fresh table, `transactions` per client, the table dropped.
    async fn sample(&self, case: &Case, side: Side, transactions: u32) -> Result<Sample> {
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

    /// Every round of `case`: (tracked, empty) ratios to plain per round, and the plain and tracked
    /// samples. Ratios are of latency, or of throughput with several clients.
    async fn rounds(&self, case: &Case, transactions: u32) -> Result<Measured> {
        let mut m = Measured::default();
        for round in 0..self.rounds {
            let mut got = [None; 3];
            for side in order(round) {
                let i = SIDES.iter().position(|s| *s == side).unwrap_or(0);
                got[i] = Some(self.sample(case, side, transactions).await?);
            }
            let [Some(p), Some(t), Some(e)] = got else {
                unreachable!("every side runs once a round")
            };
            let cost = |s: Sample| {
                if case.clients > 1 {
                    1.0 / s.tps
                } else {
                    s.latency_ms
                }
            };
            m.tracked.push(cost(t) / cost(p));
            m.empty.push(cost(e) / cost(p));
            m.plain.push(p);
            m.with.push(t);
        }
        Ok(m)
    }

    /// Statements per sample so that the plain side lasts about `BENCH_WRITE_SAMPLE_MS`; the probe
    /// also warms every side once.
    async fn calibrate(&self, case: &Case) -> Result<u32> {
        let mut plain = None;
        for side in SIDES {
            let s = self.sample(case, side, case.probe).await?;
            if side == Side::Plain {
                plain = Some(s);
            }
        }
        let per_statement_ms = plain.map(|s| s.latency_ms).unwrap_or(1.0).max(0.001);
        Ok(((self.sample_ms / per_statement_ms) as u32).clamp(case.probe, 20_000))
    }

    async fn cleanup(&self) -> Result<()> {
        sqlx::raw_sql("DROP SCHEMA IF EXISTS bench_w_plain, bench_w_tracked, bench_w_empty CASCADE")
            .execute(&self.pool)
            .await?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

#[derive(Default)]
struct Measured {
    tracked: Vec<f64>,
    empty: Vec<f64>,
    plain: Vec<Sample>,
    with: Vec<Sample>,
}

fn median_of(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    spread(&samples.iter().map(f).collect::<Vec<_>>()).0
}

/// Figures 9a-9e (each case with and without the triggers) and 9f (the empty trigger beside each).
pub async fn figures(pool: &PgPool, database_url: &str) -> Result<Vec<Row>> {
    let bench = Bench::new(pool.clone(), database_url.to_owned()).await?;
    let result = measure(&bench).await;
    bench.cleanup().await?;
    result
}

async fn measure(bench: &Bench) -> Result<Vec<Row>> {
    let started = std::time::Instant::now();
    let (mut rows, mut breakdown) = (Vec::new(), Vec::new());
    let triggers = bench.names.join(", ");
    for case in &CASES {
        let n = bench.calibrate(case).await?;
        let m = bench.rounds(case, n).await?;
        let (t, t_min, t_max) = spread(&m.tracked);
        let (e, e_min, e_max) = spread(&m.empty);
        let rounds = m.tracked.len();
        let sync = &bench.options["-c ".len()..];
        let (ours, floor, ratio, how) = if case.clients > 1 {
            let ratio = 1.0 / t;
            (
                format!("{:.0} tx/s with the triggers", median_of(&m.with, |s| s.tps)),
                format!("{:.0} tx/s without", median_of(&m.plain, |s| s.tps)),
                format!("{ratio:.2}× ({:.2}–{:.2}, {rounds} rounds)", 1.0 / t_max, 1.0 / t_min),
                format!(
                    "pgbench -M prepared -c {} -t {n} per sample: BEGIN; insert; 2 ms; insert; COMMIT, both clients on one tenant; {sync}",
                    case.clients
                ),
            )
        } else {
            (
                format!("{:.3} ms with the triggers", median_of(&m.with, |s| s.latency_ms)),
                format!("{:.3} ms without", median_of(&m.plain, |s| s.latency_ms)),
                format!("{t:.2}× ({t_min:.2}–{t_max:.2}, {rounds} rounds)"),
                format!("pgbench -M prepared, {n} statements per sample; {sync}"),
            )
        };
        rows.push(Row {
            figure: format!("{}. Write overhead: {}", case.id, case.what),
            ours,
            floor,
            ratio,
            goal: case.goal.into(),
            how: format!(
                "{how}; median (min–max) of the per-round ratios; each round: a fresh copy of leads without triggers, with the installed triggers ({triggers}), and with empty ones, in rotating order"
            ),
        });
        // The share of the overhead the empty trigger already costs (in cost terms: latency, or
        // time per transaction with two writers).
        let share = if t > 1.0 { (e - 1.0) / (t - 1.0) } else { f64::NAN };
        breakdown.push(Row {
            figure: format!("9f. Breakdown, {}: an empty statement trigger", case.what),
            ours: format!("{e:.2}× ({e_min:.2}–{e_max:.2}) with empty triggers"),
            floor: format!("{t:.2}× with ours"),
            ratio: if share.is_finite() {
                format!("{:.0} % of the overhead", share * 100.0)
            } else {
                "no overhead to share".into()
            },
            goal: "(context)".into(),
            how: "the same triggers (events, transition tables) calling a plpgsql function that only returns NULL, in the same rounds; the rest of the overhead is our functions' work".into(),
        });
    }
    eprintln!("bench: write-cost figures took {:.0?}", started.elapsed());
    rows.extend(breakdown);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_side_takes_every_position_equally_often_over_six_rounds() {
        for position in 0..3 {
            for side in SIDES {
                let times = (0..6).filter(|r| order(*r)[position] == side).count();
                assert_eq!(times, 2, "{side:?} at {position}");
            }
        }
        for round in 0..6 {
            let o = order(round);
            assert!(SIDES.iter().all(|s| o.contains(s)), "round {round}: {o:?}");
        }
    }

    #[test]
    fn spread_is_the_median_and_the_extremes() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }

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
