//! `BENCH_FIGURES=changes`, or `changes-writes` alone: what the change-tracking triggers cost the CRM's
//! writes (rows a-e, one kind of write each), and how much of it an empty trigger already costs (f),
//! measured so that the figure survives a rerun.
//!
//! Each kind of write runs on three copies of `leads` (same columns, defaults, indexes and tenant
//! foreign key): without triggers, with the installed ones, and with empty ones (`copies`), sampled in
//! rotating rounds and reported as the median ratio with its spread (`rounds`).

mod copies;
mod rounds;

use anyhow::Result;
use sqlx::PgPool;

use crate::figures::context::spread;
use crate::report::{Check, Goal, Row};
use copies::Copies;
use rounds::{median_of, Rounds};

/// One kind of write: its pgbench script (`{t}` the table, `{next}` the next preloaded row's id,
/// `{tenant}` the tenant), rows to preload per statement, clients.
struct Case {
    /// Its row of the figure.
    part: &'static str,
    what: &'static str,
    script: &'static [&'static str],
    preload: bool,
    clients: u32,
    /// Statements in the calibration run.
    probe: u32,
    goal: &'static str,
    /// The goal as a bound on the ratio shown; none for a figure given for context.
    check: Option<Goal>,
}

const CASES: [Case; 5] = [
    Case {
        part: "a",
        what: "single-row INSERT",
        script: &["INSERT INTO {t} (tenant_id, status, created_date) VALUES ('{tenant}', 'new', now());"],
        preload: false,
        clients: 1,
        probe: 1000,
        goal: "≤ 1.3×",
        check: Some(Goal::AtMost(1.3)),
    },
    Case {
        part: "b",
        what: "single-row UPDATE (status)",
        script: &["UPDATE {t} SET status = 'contacted', updated_at = now() WHERE id = {next};"],
        preload: true,
        clients: 1,
        probe: 1000,
        goal: "≤ 1.3×",
        check: Some(Goal::AtMost(1.3)),
    },
    Case {
        part: "c",
        what: "single-row DELETE",
        script: &["DELETE FROM {t} WHERE id = {next};"],
        preload: true,
        clients: 1,
        probe: 1000,
        goal: "≤ 1.3×",
        check: Some(Goal::AtMost(1.3)),
    },
    Case {
        part: "d",
        what: "one 1,000-row INSERT statement",
        script: &["INSERT INTO {t} (tenant_id, status, created_date)
                     SELECT '{tenant}', 'new', now() - g * interval '1 minute' FROM generate_series(1, 1000) g;"],
        preload: false,
        clients: 1,
        probe: 5,
        goal: "(context)",
        check: None,
    },
    // Two transactions of one tenant, each open 2 ms between its writes: if the triggers shared a row
    // (a version counter), the second writer would wait for the first to commit.
    Case {
        part: "e",
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
        check: Some(Goal::AtLeast(0.9)),
    },
];

/// Each case with and without the triggers (rows a-e), then the empty trigger beside each (f).
pub async fn run(pool: &PgPool, database_url: &str) -> Result<Vec<Row>> {
    let copies = Copies::new(pool.clone(), database_url.to_owned()).await?;
    let result = measure(&copies, &Rounds::from_env()).await;
    copies.cleanup().await?;
    result
}

async fn measure(copies: &Copies, rounds: &Rounds) -> Result<Vec<Row>> {
    let started = std::time::Instant::now();
    let (mut rows, mut breakdown) = (Vec::new(), Vec::new());
    let triggers = copies.names.join(", ");
    for case in &CASES {
        let n = rounds.calibrate(copies, case).await?;
        let m = rounds.measure(copies, case, n).await?;
        let (t, t_min, t_max) = spread(&m.tracked);
        let (e, e_min, e_max) = spread(&m.empty);
        let rounds = m.tracked.len();
        let sync = copies.sync_commit();
        let (ours, floor, ratio, how, shown) = if case.clients > 1 {
            let ratio = 1.0 / t;
            (
                format!("{:.0} tx/s with the triggers", median_of(&m.with, |s| s.tps)),
                format!("{:.0} tx/s without", median_of(&m.plain, |s| s.tps)),
                format!("{ratio:.2}× ({:.2}–{:.2}, {rounds} rounds)", 1.0 / t_max, 1.0 / t_min),
                format!(
                    "pgbench -M prepared -c {} -t {n} per sample: BEGIN; insert; 2 ms; insert; COMMIT, both clients on one tenant; {sync}",
                    case.clients
                ),
                ratio,
            )
        } else {
            (
                format!("{:.3} ms with the triggers", median_of(&m.with, |s| s.latency_ms)),
                format!("{:.3} ms without", median_of(&m.plain, |s| s.latency_ms)),
                format!("{t:.2}× ({t_min:.2}–{t_max:.2}, {rounds} rounds)"),
                format!("pgbench -M prepared, {n} statements per sample; {sync}"),
                t,
            )
        };
        let checks = case
            .check
            .map(|goal| Check::new(goal, shown, ratio.clone()))
            .into_iter()
            .collect();
        rows.push(Row {
            part: case.part,
            label: format!("Write overhead: {}", case.what),
            ours,
            floor,
            ratio,
            goal: case.goal.into(),
            checks,
            how: format!(
                "{how}; median (min–max) of the per-round ratios; each round: a fresh copy of leads without triggers, with the installed triggers ({triggers}), and with empty ones, in rotating order"
            ),
        });
        // The share of the overhead the empty trigger already costs (in cost terms: latency, or
        // time per transaction with two writers).
        let share = if t > 1.0 { (e - 1.0) / (t - 1.0) } else { f64::NAN };
        breakdown.push(Row {
            part: "f",
            label: format!("Breakdown, {}: an empty statement trigger", case.what),
            ours: format!("{e:.2}× ({e_min:.2}–{e_max:.2}) with empty triggers"),
            floor: format!("{t:.2}× with ours"),
            ratio: if share.is_finite() {
                format!("{:.0} % of the overhead", share * 100.0)
            } else {
                "no overhead to share".into()
            },
            goal: "(context)".into(),
            checks: Vec::new(),
            how: "the same triggers (events, transition tables) calling a plpgsql function that only returns NULL, in the same rounds; the rest of the overhead is our functions' work".into(),
        });
    }
    eprintln!("bench: write-cost figures took {:.0?}", started.elapsed());
    rows.extend(breakdown);
    Ok(rows)
}
