//! Redis as the bundle store: [`connection`] reaches the server (standalone or cluster, bounded,
//! self-healing), [`entry`] is the byte format of what is stored under a bundle key.

pub mod connection;
pub mod entry;

pub use connection::{Recording, RedisCache, SCAN_BATCH};
pub use entry::Entry;
