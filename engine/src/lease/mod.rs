//! Leader election for flows marked `require_leader_election: true`: of all nodes running the same
//! flows, exactly one runs those flows at a time.
//!
//! With the engine's `nats_url` set, leadership is a lease in NATS KV ([`NatsLease`]): a key
//! created atomically (only one node can create it), renewed by revision (only the holder can
//! renew it), and expiring with the bucket's `max_age` when its holder stops renewing (a crashed
//! node). A node that cannot renew in time, or finds the key taken, stops its leader-elected flows
//! at once. Without `nats_url` a node is alone (its state directory is locked to one process) and
//! always leads.

mod nats_lease;

pub use nats_lease::{LEASE_BUCKET, LEASE_KEY, NatsLease};

use std::time::Duration;

/// How long a lease lives without renewal: the longest a crashed leader's flows stay unrun.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("leader election: cannot connect to NATS at {url}: {source}")]
    Connect { url: String, source: crate::bus::BusError },
    #[error("leader election: cannot open the KV bucket `{bucket}`: {source}")]
    Bucket { bucket: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("leader election: the lease TTL must be at least 1s, got {0:?}")]
    Ttl(Duration),
}
