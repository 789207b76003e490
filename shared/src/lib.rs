//! The domain of the dashboard bundle cache, shared by the dashboard-bundle, clear-cache and warm-cache
//! functions, in layers that only point down:
//!
//! - [`env`]: reading settings, their errors, error chains for logs (the leaf);
//! - [`platform`]: the clock, Postgres, Secrets Manager;
//! - [`bundle`]: what a bundle is and how it is computed, without Redis;
//! - [`store`]: where bundles are kept: Redis, the in-memory level, the key scheme, read histories;
//! - [`serving`]: freshness, revalidation, the recompute lease and the request deadline;
//! - [`auth`] (bearer tokens; uses env, platform and bundle) and [`http`] (JSON responses; uses auth).

pub mod auth;
pub mod bundle;
pub mod env;
pub mod http;
pub mod platform;
#[cfg(feature = "postgres")]
pub mod serving;
pub mod store;

/// Process-wide setup every function's `main` runs first: logging (when Lambda asks for JSON through
/// `AWS_LAMBDA_LOG_FORMAT`, [`platform::log`]'s lines for `service`; otherwise text, as under `make dev`),
/// at `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (metrics lines whatever the level), and the one TLS crypto
/// provider that Postgres, Redis and AWS clients share.
///
/// At TRACE, lambda_runtime logs every raw event, bearer tokens included: its targets are held at
/// DEBUG whatever the level, so no token reaches a log.
pub fn init_process(service: &str) {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let mut filter = EnvFilter::default().add_directive(level.into());
    let mut targets = vec![format!("{}=info", platform::log::METRICS_TARGET)];
    if level == LevelFilter::TRACE {
        targets.extend(
            ["lambda_runtime", "lambda_http", "lambda_runtime_api_client"].map(|t| format!("{t}=debug")),
        );
    }
    for target in targets {
        if let Ok(directive) = target.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(platform::log::LambdaJson::new(service, std::io::stdout))
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_target(false).without_time())
            .try_init()
    };
}
