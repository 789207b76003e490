//! The domain of the dashboard bundle cache, shared by the dashboard-bundle, clear-cache and warm-cache
//! functions: the bundle's SQL (`bundle_query`), serving it through Redis (`bundle_cache`), Redis
//! access and the stored format (`cache`), the key scheme (`keys`), data versions (`version`), auth,
//! configuration pieces, errors and JSON responses.

pub mod auth;
pub mod bundle_cache;
pub mod bundle_query;
pub mod cache;
pub mod clock;
pub mod config;
pub mod cors;
pub mod db;
pub mod error;
pub mod http;
pub mod keys;
pub mod version;

/// Process-wide setup every function's `main` runs first: logging (JSON when Lambda asks for it through
/// `AWS_LAMBDA_LOG_FORMAT`) and the one TLS crypto provider that Postgres, Redis and AWS clients share.
pub fn init_process() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    lambda_http::tracing::init_default_subscriber();
}
