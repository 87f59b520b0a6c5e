//! The state store: the durable home of runs, checkpoints and the other small records the engine
//! must not lose across a crash.
//!
//! The trait is deliberately a tiny byte-level core (read, scan, atomic conditional batch) so a
//! backend is a few dozen lines and every backend passes the same conformance suite
//! (`conformance.rs`, run by each backend's tests). Typed, versioned records live one layer up
//! in [`record`], shared by all backends.
//!
//! # Known issues
//!
//! - sled 0.34 is the last stable sled and is unmaintained; its on-disk format is not
//!   compatible with sled 1.0. The format marker makes such a change fail loudly at open.
//! - Every commit flushes (an fsync). That is the price of "durable when it returns"; with a
//!   handful of commits per batch it is far below the cost of fetching and writing the batch.
//! - Scans return a `Vec`: fine for the bounded number of runs retention keeps, not for
//!   unbounded keyspaces.

mod batch;
#[cfg(test)]
mod conformance;
mod error;
pub(crate) mod group_flush;
mod health;
mod memory;
pub mod record;
mod sled_store;
#[cfg(test)]
mod temp_sled;

use std::fmt;

pub use batch::{Batch, Commit};
pub use error::StoreError;
pub use health::StoreHealth;
pub use memory::MemoryStore;
pub use record::Record;
pub use sled_store::SledStore;
#[cfg(test)]
pub(crate) use temp_sled::TempSled;

/// The kinds of record the engine keeps; each is its own keyspace (a sled tree).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tree {
    /// Run records, keyed by run id.
    Runs,
    /// Stage checkpoints, keyed by run id and stage.
    Checkpoints,
    /// Bulk job id → run id, so events about a job find their run.
    JobRuns,
    /// Per-flow marks (watermark, last scheduled tick), keyed by flow name.
    Flows,
    /// Pub/Sub replay ids, keyed by consumer name.
    ReplayIds,
    /// Named leases with a holder and an expiry.
    Leases,
}

impl Tree {
    pub const ALL: [Tree; 6] =
        [Tree::Runs, Tree::Checkpoints, Tree::JobRuns, Tree::Flows, Tree::ReplayIds, Tree::Leases];

    /// The on-disk name; changing one orphans existing data, so these are part of the format.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Runs => "runs",
            Tree::Checkpoints => "checkpoints",
            Tree::JobRuns => "job_runs",
            Tree::Flows => "flows",
            Tree::ReplayIds => "replay_ids",
            Tree::Leases => "leases",
        }
    }
}

impl fmt::Display for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key and its raw value, as returned by a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A durable, transactional key-value store with one keyspace per [`Tree`].
///
/// Writes go only through [`StateStore::commit`], which is atomic across trees and durable when
/// it returns: the engine acknowledges work to Salesforce or the bus only after the record that
/// depends on it is on disk, so there is no separate "maybe durable" write path to misuse.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// The raw value stored under `key`, if any.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Every entry whose key starts with `prefix`, in ascending key order.
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, StoreError>;

    /// Applies `batch` atomically if all its expectations hold, and returns only once the result
    /// is durable. A failed expectation is not an error: it returns [`Commit::Conflict`] and
    /// writes nothing, so callers can re-read and retry (optimistic concurrency).
    fn commit(&self, batch: Batch) -> Result<Commit, StoreError>;
}
