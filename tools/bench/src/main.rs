//! `make bench`: the cache's figures, each beside its physical floor measured in the same run, printed
//! as a table of goals and one of every row, and written to BENCHMARKS.md with the machine, the date
//! and the command.
//!
//! `bench train-dictionary` (re)trains the zstd dictionary of cached bundles,
//! `shared/src/bundle.dict`, on bundles of the benchmark dataset.

mod data;
mod dictionary;
mod figures;
mod floors;
mod report;
mod rng;

use anyhow::{Context, Result};
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};

use figures::{Needs, Setup};

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // The functions' log format in Lambda (JSON lines) and level, written nowhere: the figures include
    // formatting each line, not the cost of whatever this machine's stdout is attached to.
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        // BENCH_LOG=stderr: the lines on stderr instead, to see why a figure fails.
        let stderr = std::env::var("BENCH_LOG").is_ok_and(|v| v == "stderr");
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(shared::platform::log::LambdaJson::new(
                "bench",
                move || -> Box<dyn std::io::Write> {
                    if stderr {
                        Box::new(std::io::stderr())
                    } else {
                        Box::new(std::io::sink())
                    }
                },
            ))
            .try_init();
    }
    // BENCH_FIGURES=hit,miss runs only those (for iterating; `changes`: the two change-tracking
    // figures); the default runs all and writes the report.
    let only = std::env::var("BENCH_FIGURES").ok();
    let selected = figures::select(only.as_deref())?;
    let needs = selected.iter().map(|f| f.needs()).max().unwrap_or(Needs::Nothing);
    // The warm-mode simulation is self-contained: BENCH_FIGURES=warm-modes alone needs no database.
    if needs == Needs::Nothing {
        println!(
            "{}",
            report::tables(&figures::run(&selected, &Setup::Nothing).await?)
        );
        return Ok(());
    }
    let database_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/dashboard_bench".to_owned());
    let redis_port: u16 = std::env::var("BENCH_REDIS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(6379);
    let pool = migrated(&database_url).await?;
    // BENCH_FIGURES=changes-writes: the write cost of change tracking alone needs the schema, not the
    // dataset (about 3 minutes on 2 cores).
    if needs == Needs::Schema {
        let setup = Setup::Schema {
            pool: &pool,
            database_url: &database_url,
        };
        println!("{}", report::tables(&figures::run(&selected, &setup).await?));
        return Ok(());
    }
    if !data::generated(&pool).await? {
        eprintln!("bench: generating the dataset (seed {}), once", data::SEED);
        data::generate(&pool).await?;
    }
    if std::env::args().nth(1).as_deref() == Some("train-dictionary") {
        return dictionary::train(&pool).await;
    }
    let ctx = figures::Context::new(pool, database_url, redis_port).await?;
    let rows = figures::run(&selected, &Setup::Dataset(&ctx)).await?;
    ctx.cleanup().await;

    println!("{}", report::tables(&rows));
    if only.is_none() {
        std::fs::write("BENCHMARKS.md", report::document(&rows))?;
        eprintln!("bench: wrote BENCHMARKS.md");
    }
    Ok(())
}

/// The bench database, created when missing, with every migration applied: always, so a dataset
/// generated before a new migration gets it (its backfill included).
async fn migrated(database_url: &str) -> Result<PgPool> {
    if !Postgres::database_exists(database_url).await? {
        Postgres::create_database(database_url).await?;
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(database_url)
        .await?;
    match shared::platform::db::MIGRATOR.run(&pool).await {
        Err(sqlx::migrate::MigrateError::VersionMissing(version)) => anyhow::bail!(
            "the bench database was migrated by migration {version}, which no longer exists (the migrations \
             were squashed before the first release): drop it (`dropdb dashboard_bench`) and run again"
        ),
        other => other.context("migrating the bench database")?,
    }
    Ok(pool)
}
