//! Redis as the bundle store: [`connection`] reaches the server (standalone or cluster, bounded,
//! self-healing), [`commands`] is what the product asks of it, [`entry`] is the byte format of what is
//! stored under a bundle key (with the scripts that read it in place), [`local`] the in-memory level in
//! front of it.

pub mod commands;
pub mod connection;
pub mod entry;
pub mod local;

pub use commands::Recording;
pub use connection::{RedisCache, SCAN_BATCH};
pub use entry::Entry;
pub use local::{Found, LocalConfig, LocalLevel};
