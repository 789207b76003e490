//! Cold start: from spawning the dashboard function to its first response, a HIT, with DATABASE_URL and
//! JWT_SECRET read from Secrets Manager (moto, on `TEST_AWS_ENDPOINT_URL`), beside a hello-world
//! `lambda_http` function (`examples/hello_lambda.rs`) in the same harness: a runtime API of ours that
//! hands each process one invocation and notes when its response arrives. Host release builds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use shared::auth::Role;
use shared::bundle::identity::{BundleId, Scope};
use shared::platform::clock::Clock;
use shared::serving::Read;
use test_support::{self as testing, event, secrets_manager, with_token};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::context::{far_deadline, Context};
use crate::report::{Check, Goal, Row};

const RUNS: usize = 7;

/// What Lambda sets for every function process, besides `AWS_LAMBDA_RUNTIME_API`.
const LAMBDA_VARS: [(&str, &str); 5] = [
    ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
    ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "bench"),
];

pub async fn run(ctx: &Context) -> Result<Vec<Row>> {
    let target = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned()));
    let function = target.join("release").join("dashboard-bundle");
    let hello = target.join("release").join("examples").join("hello_lambda");
    // The bundle the first request reads, stored under the run's prefix.
    let id = BundleId::new(Scope::Tenant(ctx.typical), true);
    ctx.state(&Clock::default())
        .bundles
        .get_bundle(id, Read::Bust, far_deadline())
        .await?;
    let request = with_token(
        event("dashboard-bundle.json"),
        Some(&testing::token(Role::Admin, Some(ctx.typical))),
    )
    .to_string();
    let endpoint = std::env::var("TEST_AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5001".into());
    let client = secrets_manager::client().await;
    let env = ctx.env();
    let database_arn = secrets_manager::create(&client, &env.get("DATABASE_URL").unwrap_or_default()).await;
    let jwt_arn = secrets_manager::create(&client, testing::TEST_JWT_SECRET).await;
    let mut plain: Vec<(String, String)> = env.vars().into_iter().collect();
    plain.extend([
        ("JWT_SECRET".into(), testing::TEST_JWT_SECRET.into()),
        ("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()),
    ]);
    let mut vars: Vec<(String, String)> = env
        .vars()
        .into_iter()
        .filter(|(name, _)| name != "DATABASE_URL")
        .collect();
    vars.extend([
        ("DATABASE_URL_SECRET_ARN".into(), database_arn),
        ("JWT_SECRET_ARN".into(), jwt_arn.clone()),
        ("AWS_ENDPOINT_URL".into(), endpoint),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID".into(), "test".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
        ("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()),
    ]);

    // What moto alone takes to answer one GetSecretValue, on this process's open connection.
    let mut fetch = Vec::new();
    for _ in 0..=RUNS {
        let started = Instant::now();
        client.get_secret_value().secret_id(&jwt_arn).send().await?;
        fetch.push(started.elapsed());
    }
    fetch.remove(0);
    fetch.sort();

    // Alternate the two, so that the machine's noise falls on both alike.
    let (mut ours, mut without_secrets, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        for (vars, times) in [(&vars, &mut ours), (&plain, &mut without_secrets)] {
            let (took, body) = first_response(&function, vars, &request).await?;
            if !body.contains("\"x-cache\":\"HIT\"") {
                bail!("the first response was not a HIT: {body}");
            }
            times.push(took);
        }
        floor.push(first_response(&hello, &[], &request).await?.0);
    }
    ours.sort();
    without_secrets.sort();
    floor.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p50_floor) = (ms(ours[RUNS / 2]), ms(floor[RUNS / 2]));
    let spread = |v: &[Duration]| format!("{:.1}–{:.1}", ms(v[0]), ms(v[RUNS - 1]));
    let p50_plain = ms(without_secrets[RUNS / 2]);
    let context = Row {
        part: "b",
        label: "Cold start: the same without Secrets Manager (values in the environment)".into(),
        ours: format!("median {p50_plain:.1} ms ({} ms)", spread(&without_secrets)),
        floor: format!("hello-world lambda_http: median {p50_floor:.1} ms"),
        ratio: format!("{:.2}×", p50_plain / p50_floor),
        goal: "(context)".into(),
        checks: vec![],
        how: format!(
            "the same runs, alternated; the secrets' share of the cold start is {:.1} ms",
            p50 - p50_plain
        ),
    };
    let p50_fetch = ms(fetch[RUNS / 2]);
    let allowance = 0.5 * p50_floor;
    let secrets_manager = Row {
        part: "c",
        label: "Cold start: one GetSecretValue from moto, alone".into(),
        ours: format!("median {p50_fetch:.1} ms ({} ms)", spread(&fetch)),
        floor: format!("what the goal allows beyond the hello-world's cold start: {allowance:.1} ms"),
        ratio: format!("{:.2}×", p50_fetch / allowance),
        goal: "(context)".into(),
        checks: vec![],
        how: "the bench's own client, its connection to moto open (the first call not counted): \
              a first HIT needs JWT_SECRET, so a cold start that reads it from moto takes at least the hello-world's time plus this"
            .into(),
    };
    Ok(vec![Row {
        part: "",
        label: "Cold start: spawn to the first response (a HIT, secrets from Secrets Manager)".into(),
        ours: format!("median {p50:.1} ms ({} ms, {RUNS} runs)", spread(&ours)),
        floor: format!(
            "hello-world lambda_http: median {p50_floor:.1} ms ({} ms)",
            spread(&floor)
        ),
        ratio: format!("{:.2}×", p50 / p50_floor),
        goal: "≤ 1.5×".into(),
        checks: vec![Check::new(
            Goal::AtMost(1.5),
            p50 / p50_floor,
            format!("{:.2}×", p50 / p50_floor),
        )],
        how: "host release builds spawned against a runtime API of the bench's, one invocation each, runs alternated; \
              ours reads DATABASE_URL and JWT_SECRET from moto's Secrets Manager (two GetSecretValue calls), connects to Redis and answers from it; \
              the floor (tools/bench/examples/hello_lambda.rs) answers a fixed body"
            .into(),
    }, context, secrets_manager])
}

/// Spawns `binary` against a runtime API that hands it `event` once; the time until its response
/// arrived, and the response.
async fn first_response(binary: &Path, vars: &[(String, String)], event: &str) -> Result<(Duration, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    let (responses, mut response) = mpsc::channel::<String>(1);
    let event = event.to_owned();
    let server = tokio::spawn(async move {
        let mut handed_out = false;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let hand_out = !handed_out;
            handed_out = true;
            tokio::spawn(runtime_api(stream, event.clone(), hand_out, responses.clone()));
        }
    });
    let started = Instant::now();
    let mut child = spawn(binary, &api, vars)?;
    let body = tokio::time::timeout(Duration::from_secs(20), response.recv()).await;
    let took = started.elapsed();
    let _ = child.kill().await;
    server.abort();
    let body = body
        .context("no response within 20 s")?
        .context("the runtime API stopped")?;
    Ok((took, body))
}

/// Starts `binary` as Lambda would, against the runtime API at `api`, with only `vars` (and `PATH`) of
/// this process's environment: the bench's own `DATABASE_URL` would otherwise stand in for a secret.
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` pass through when set, so that a run can show what reading the
/// machine's certificate directory costs (BENCHMARKS.md, figure 14).
pub(super) fn spawn(binary: &Path, api: &str, vars: &[(String, String)]) -> Result<tokio::process::Child> {
    tokio::process::Command::new(binary)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(
            ["SSL_CERT_FILE", "SSL_CERT_DIR"]
                .into_iter()
                .filter_map(|v| Some((v, std::env::var(v).ok()?))),
        )
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .envs(LAMBDA_VARS)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} (run make bench, which builds it)", binary.display()))
}

/// One connection of the runtime API: `GET .../invocation/next` answers `event` once (`hand_out`) and
/// never again; a `POST .../response` or `.../error` is passed on.
async fn runtime_api(stream: TcpStream, event: String, mut hand_out: bool, responses: mpsc::Sender<String>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let Ok(Some((request_line, body))) = next_request(&mut read).await else {
            return;
        };
        if request_line.starts_with("GET ") && request_line.contains("/invocation/next") {
            if !hand_out {
                // The process waits for its next invocation: it is killed meanwhile.
                std::future::pending::<()>().await;
            }
            hand_out = false;
            let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: bench-1\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:000000000000:function:bench\r\n\
                 content-length: {}\r\n\r\n",
                event.len()
            );
            if write.write_all(head.as_bytes()).await.is_err()
                || write.write_all(event.as_bytes()).await.is_err()
            {
                return;
            }
        } else {
            let _ = write
                .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")
                .await;
            if request_line.starts_with("POST ") {
                let _ = responses.send(format!("{request_line}\n{body}")).await;
            }
        }
    }
}

/// The next request on a connection: its request line and body (by content-length or chunked).
async fn next_request(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Result<Option<(String, String)>> {
    let mut request_line = String::new();
    if read.read_line(&mut request_line).await? == 0 {
        return Ok(None);
    }
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut line = String::new();
        read.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse()?;
        } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            read.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim(), 16)?;
            let mut chunk = vec![0; size + 2];
            read.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        read.read_exact(&mut body).await?;
    }
    Ok(Some((
        request_line.trim_end().to_owned(),
        String::from_utf8_lossy(&body).into_owned(),
    )))
}
