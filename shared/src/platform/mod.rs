//! What the functions run on, apart from Redis: the clock ([`clock`]), Postgres ([`db`]) and secrets
//! read from Secrets Manager ([`secrets`]). Uses only the environment leaf.

pub mod clock;
pub mod db;
pub mod secrets;
