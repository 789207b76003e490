//! Release artefacts: arm64 bootstrap sizes, and time from process start to ready (the process's first
//! call to the Lambda runtime API) of host builds of the same code.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use test_support as testing;

use super::context::Context;
use crate::report::{Check, Goal, Row};

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let target = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned()));
    let mut rows = Vec::new();
    for function in ["dashboard-bundle", "clear-cache", "warm-cache"] {
        let bootstrap = target.join("lambda").join(function).join("bootstrap");
        let size = std::fs::metadata(&bootstrap)
            .map(|m| m.len() as f64 / 1_048_576.0)
            .ok();
        let host = target.join("release").join(function);
        let mut ready = Vec::new();
        for _ in 0..5 {
            ready.push(time_to_ready(&host, ctx).await?);
        }
        ready.sort();
        rows.push(Row {
            part: "",
            label: format!("Artefact: {function}"),
            ours: format!(
                "{}; ready in {:.1} ms (median of 5)",
                size.map(|mb| format!("{mb:.2} MB")).unwrap_or_else(|| "not built".into()),
                ready[2].as_secs_f64() * 1000.0
            ),
            floor: "-".into(),
            ratio: "-".into(),
            goal: match size {
                Some(mb) if mb > 8.0 => format!(
                    "≤ 8 MB: missed by {:.2} MB (the AWS SDK for EventBridge with its own HTTP and TLS stack)",
                    mb - 8.0
                ),
                _ => "≤ 8 MB".into(),
            },
            checks: size
                .map(|mb| Check::new(Goal::AtMost(8.0), mb, format!("{mb:.2} MB")))
                .into_iter()
                .collect(),
            how: "size of target/lambda/<function>/bootstrap (cargo lambda build --release --arm64); ready = host release binary's first request to a local runtime API".into(),
        });
    }
    Ok(rows)
}

async fn time_to_ready(binary: &std::path::Path, ctx: &Context) -> Result<Duration> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    let env = ctx.env();
    let vars: Vec<(String, String)> = [
        ("DATABASE_URL", env.get("DATABASE_URL").unwrap_or_default()),
        ("REDIS_URL", env.get("REDIS_URL").unwrap_or_default()),
        ("JWT_SECRET", testing::TEST_JWT_SECRET.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let started = Instant::now();
    let mut child = super::cold_start::spawn(binary, &api, &vars)?;
    let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
    let ready = started.elapsed();
    let _ = child.kill().await;
    accepted.context("no call to the runtime API within 10 s")??;
    Ok(ready)
}
