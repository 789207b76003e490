//! The figures, one module each, and the measuring context they share.

pub mod artefacts;
pub mod bytes;
pub mod changes;
mod context;
pub mod faults;
pub mod hit;
pub mod local_level;
pub mod miss;
pub mod stampede;
pub mod warm;
pub mod warm_modes;
pub mod warm_replay;
pub mod write_cost;

pub use context::Context;
