//! The physical floors each figure is compared with, measured by the servers' own benchmark tools.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// `redis-benchmark` GET of a `size`-byte value, one client, no pipelining: (p50, p99) in ms.
pub fn redis_get(port: u16, size: usize, requests: u32) -> Result<(f64, f64)> {
    let out = Command::new("redis-benchmark")
        .args(["-p", &port.to_string(), "-t", "set,get", "-d", &size.to_string()])
        .args(["-n", &requests.to_string(), "-c", "1", "--csv"])
        .output()
        .context("running redis-benchmark")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",...
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
        if fields.first() == Some(&"GET") && fields.len() >= 7 {
            return Ok((fields[4].parse()?, fields[6].parse()?));
        }
    }
    bail!("no GET line in redis-benchmark output: {text}")
}

/// `pgbench` running `script` (a file of SQL) `transactions` times per client with `clients` clients:
/// (average latency in ms, transactions per second).
pub fn pgbench(
    database_url: &str,
    script: &std::path::Path,
    clients: u32,
    transactions: u32,
) -> Result<(f64, f64)> {
    pgbench_with_options(database_url, script, clients, transactions, "")
}

/// [`pgbench`] with server settings for its sessions (`PGOPTIONS`, e.g. `-c synchronous_commit=off`).
pub fn pgbench_with_options(
    database_url: &str,
    script: &std::path::Path,
    clients: u32,
    transactions: u32,
    options: &str,
) -> Result<(f64, f64)> {
    pgbench_in_mode(database_url, script, clients, transactions, options, "prepared")
}

/// [`pgbench_with_options`] in a query mode of pgbench's: `prepared` (each statement parsed and
/// planned once per client) or `extended` (parsed and planned on every execution, as unnamed
/// statements and the simple protocol are).
pub fn pgbench_in_mode(
    database_url: &str,
    script: &std::path::Path,
    clients: u32,
    transactions: u32,
    options: &str,
    mode: &str,
) -> Result<(f64, f64)> {
    let out = Command::new("pgbench")
        .env("PGOPTIONS", options)
        .args(["-n", "-f"])
        .arg(script)
        .args(["-c", &clients.to_string(), "-j", &clients.min(2).to_string()])
        .args(["-t", &transactions.to_string(), "-M", mode])
        .arg(database_url)
        .output()
        .context("running pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("pgbench failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    let field = |prefix: &str| -> Result<f64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(prefix))
            .with_context(|| format!("{prefix} in {text}"))?;
        let value = line[prefix.len()..].split_whitespace().next().unwrap_or_default();
        Ok(value.parse()?)
    };
    Ok((field("latency average =")?, field("tps =")?))
}

/// CPU time (user + system, in seconds) that the Postgres server on this machine has used so far: every
/// process named `postgres`, with the time of the backends that have exited (the postmaster's
/// children's time). `None` where `/proc` cannot say. Ticks are taken as 100 a second (Linux's
/// `USER_HZ` on x86-64 and arm64).
pub fn postgres_cpu_seconds() -> Option<f64> {
    cpu_seconds("postgres")
}

/// The same for every process whose command is `comm` (`bench`: this process, with the children it
/// has waited for; `redis-server`: every Redis server here).
pub fn cpu_seconds(comm: &str) -> Option<f64> {
    let comm = format!("({comm}");
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: fields after the closing parenthesis, utime is the 12th.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head.ends_with(&comm) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields
            .get(11..15)
            .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum::<u64>())
            .unwrap_or(0);
    }
    (ticks > 0).then(|| ticks as f64 / 100.0)
}
