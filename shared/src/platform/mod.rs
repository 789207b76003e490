//! What the functions run on, apart from Redis: the clock ([`clock`]), Postgres ([`db`]), secrets
//! read from Secrets Manager ([`secrets`]), reads in one round trip per batch ([`snapshot`]) and the
//! log and metrics lines ([`log`]). Uses only the environment leaf.

pub mod clock;
#[cfg(feature = "postgres")]
pub mod db;
pub mod log;
pub mod secrets;
#[cfg(feature = "postgres")]
pub mod snapshot;
