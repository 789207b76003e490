//! The table of figures: each one's number, the `BENCH_FIGURES` names that select it, its title and how
//! it runs (and so what it needs set up first), in the order a run measures them; choosing them from
//! `BENCH_FIGURES` and running them. Each figure is a module of its own; `context` is what they share.

mod artefacts;
mod bytes;
mod changes;
mod cold_start;
mod context;
mod faults;
mod hit;
mod local_level;
mod miss;
mod scoped;
mod stampede;
mod warm;
mod warm_modes;
mod warm_replay;
mod wire;
mod write_cost;

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;

use anyhow::{bail, Result};
use sqlx::PgPool;

pub use context::Context;

use crate::report::{Numbered, Row};

/// One figure of the report.
pub struct Figure {
    /// Its number in the report: its place in [`FIGURES`].
    pub number: u8,
    /// The names `BENCH_FIGURES` selects it by (`changes` selects both change-tracking figures).
    pub names: &'static [&'static str],
    pub title: &'static str,
    pub run: Run,
}

/// A figure's rows, being measured.
pub type Rows<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>>> + 'a>>;

/// How a figure runs, which says what it needs set up first.
pub enum Run {
    /// Self-contained: no database.
    Alone(fn() -> Vec<Row>),
    /// The bench database, migrated; not its dataset.
    Schema(for<'a> fn(&'a PgPool, &'a str) -> Rows<'a>),
    /// The dataset and the measuring context.
    Dataset(for<'a> fn(&'a Context) -> Rows<'a>),
}

/// What a run sets up before its figures, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Needs {
    Nothing,
    Schema,
    Dataset,
}

/// What `main` has set up.
pub enum Setup<'a> {
    Nothing,
    Schema { pool: &'a PgPool, database_url: &'a str },
    Dataset(&'a Context),
}

/// Every figure, in the order a run measures them.
pub static FIGURES: [Figure; 15] = [
    Figure {
        number: 1,
        names: &["hit"],
        title: "Cache hit through the handler, beside a Redis GET",
        run: Run::Dataset(|ctx| Box::pin(hit::run(ctx))),
    },
    Figure {
        number: 2,
        names: &["miss"],
        title: "Miss on the large tenant, beside the same SQL by pgbench",
        run: Run::Dataset(|ctx| Box::pin(miss::run(ctx))),
    },
    Figure {
        number: 3,
        names: &["bytes"],
        title: "Bytes stored per hit, beside the raw JSON",
        run: Run::Dataset(|ctx| Box::pin(bytes::run(ctx))),
    },
    Figure {
        number: 4,
        names: &["stampede"],
        title: "Stampede: 200 concurrent requests on one key",
        run: Run::Dataset(|ctx| Box::pin(stampede::run(ctx))),
    },
    Figure {
        number: 5,
        names: &["warm"],
        title: "Warming every active tenant, beside pgbench",
        run: Run::Dataset(|ctx| Box::pin(warm::run(ctx))),
    },
    Figure {
        number: 6,
        names: &["faults"],
        title: "Redis going silent: a dropped flow, a wedged server",
        run: Run::Dataset(|ctx| Box::pin(faults::run(ctx))),
    },
    Figure {
        number: 7,
        names: &["local"],
        title: "The in-memory level: hit latency, Redis reads saved, memory",
        run: Run::Dataset(|ctx| Box::pin(local_level::run(ctx))),
    },
    Figure {
        number: 8,
        names: &["warm-modes"],
        title: "Warm policies over a simulated month",
        run: Run::Alone(warm_modes::run),
    },
    Figure {
        number: 9,
        names: &["warm-replay"],
        title: "The headline warm policy through the real functions",
        run: Run::Dataset(|ctx| Box::pin(warm_replay::run(ctx))),
    },
    Figure {
        number: 10,
        names: &["changes", "changes-writes"],
        title: "Write cost of the change-tracking triggers",
        run: Run::Schema(|pool, database_url| Box::pin(write_cost::run(pool, database_url))),
    },
    Figure {
        number: 11,
        names: &["changes"],
        title: "Miss at growing sizes with change tracking, and compaction",
        run: Run::Dataset(|ctx| Box::pin(changes::run(ctx))),
    },
    Figure {
        number: 12,
        names: &["artefacts"],
        title: "Release artefacts: size and time to ready",
        run: Run::Dataset(|ctx| Box::pin(artefacts::run(ctx))),
    },
    Figure {
        number: 13,
        names: &["wire"],
        title: "Round trips and latency where a round trip costs 1 or 2 ms",
        run: Run::Dataset(|ctx| Box::pin(wire::run(ctx))),
    },
    Figure {
        number: 14,
        names: &["cold-start"],
        title: "Cold start to the first HIT, beside a hello-world lambda_http function",
        run: Run::Dataset(|ctx| Box::pin(cold_start::run(ctx))),
    },
    Figure {
        number: 15,
        names: &["scoped"],
        title: "Scoped dashboards: an employee's and a 50-member team's miss at 10^6 rows",
        run: Run::Dataset(|ctx| Box::pin(scoped::run(ctx))),
    },
];

impl Figure {
    pub fn needs(&self) -> Needs {
        match self.run {
            Run::Alone(_) => Needs::Nothing,
            Run::Schema(_) => Needs::Schema,
            Run::Dataset(_) => Needs::Dataset,
        }
    }
}

/// The figures `bench_figures` (the value of `BENCH_FIGURES`, a comma-separated list of names) selects,
/// in table order; every figure when it is unset. A name no figure has is an error that lists them.
pub fn select(bench_figures: Option<&str>) -> Result<Vec<&'static Figure>> {
    let Some(list) = bench_figures else {
        return Ok(FIGURES.iter().collect());
    };
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    if let Some(unknown) = names
        .iter()
        .find(|name| !FIGURES.iter().any(|f| f.names.contains(name)))
    {
        bail!(
            "BENCH_FIGURES: no figure is called {unknown:?}; the figures and their names:\n{}",
            listing().trim_end()
        );
    }
    Ok(FIGURES
        .iter()
        .filter(|f| f.names.iter().any(|name| names.contains(name)))
        .collect())
}

fn listing() -> String {
    let mut out = String::new();
    for f in &FIGURES {
        let _ = writeln!(out, "  {:>2}. {}: {}", f.number, f.title, f.names.join(", "));
    }
    out
}

/// Runs `figures` in turn on what `setup` provides; each row goes under its figure's number.
pub async fn run(figures: &[&Figure], setup: &Setup<'_>) -> Result<Vec<Numbered>> {
    let mut rows = Vec::new();
    for figure in figures {
        eprintln!("bench: figure {}, {}", figure.number, figure.title);
        let measured = match (&figure.run, setup) {
            (Run::Alone(run), _) => run(),
            (Run::Schema(run), Setup::Schema { pool, database_url }) => run(pool, database_url).await?,
            (Run::Schema(run), Setup::Dataset(ctx)) => run(&ctx.pool, &ctx.database_url).await?,
            (Run::Dataset(run), Setup::Dataset(ctx)) => run(ctx).await?,
            _ => bail!(
                "figure {} needs {:?} set up, which this run has not",
                figure.number,
                figure.needs()
            ),
        };
        rows.extend(measured.into_iter().map(|row| Numbered {
            number: figure.number,
            row,
        }));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_numbered_once_in_table_order() {
        for (i, figure) in FIGURES.iter().enumerate() {
            assert_eq!(usize::from(figure.number), i + 1, "{}", figure.title);
        }
    }

    #[test]
    fn each_name_selects_what_it_did_before_the_table() {
        let numbers = |list| -> Vec<u8> { select(Some(list)).unwrap().iter().map(|f| f.number).collect() };
        assert_eq!(numbers("changes"), [10, 11]);
        assert_eq!(numbers("changes-writes"), [10]);
        assert_eq!(numbers("warm-modes"), [8]);
        assert_eq!(numbers("miss,hit"), [1, 2]);
        assert_eq!(select(None).unwrap().len(), FIGURES.len());
    }

    #[test]
    fn an_unknown_name_is_an_error_that_lists_the_names() {
        let error = select(Some("hit,bogus")).err().unwrap().to_string();
        assert!(error.contains("\"bogus\""), "{error}");
        assert!(
            error.contains("warm-modes") && error.contains("changes-writes"),
            "{error}"
        );
    }
}
