//! Redis as the bundle store: [`connection`] reaches the server (standalone or cluster, bounded,
//! self-healing), [`entry`] is the byte format of what is stored under a bundle key, [`local`] the
//! in-memory level in front of it.

pub mod connection;
pub mod entry;
pub mod local;

pub use connection::{Recording, RedisCache, SCAN_BATCH};
pub use entry::Entry;
pub use local::{Found, LocalConfig, LocalLevel};
