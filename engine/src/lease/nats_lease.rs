//! The lease in NATS KV. The bucket keeps one revision per key and expires entries `ttl` after
//! their last write, so a holder that stops renewing (crashed, partitioned) loses the key to the
//! next node that tries to create it.
//!
//! Timing: the holder renews every `ttl / 3`; it considers itself deposed once `ttl * 2 / 3` passed
//! since its last successful renewal, so it stops before the key can expire and be taken (two
//! leaders at once would need a clock running 50% slow). Followers try to take the key every
//! `ttl / 10`, so a crashed leader is replaced at most about `ttl` after its last renewal.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::LeaseError;
use crate::bus::nats::{Auth, connect_client};

pub const LEASE_BUCKET: &str = "bulkflow_leases";
/// One lease for all leader-elected flows: the leader runs all of them, as the seed's query and
/// listener flows belong together.
pub const LEASE_KEY: &str = "leader";

pub struct NatsLease {
    kv: kv::Store,
    holder: String,
    ttl: Duration,
}

impl NatsLease {
    /// Connects and opens (creating) the lease bucket. `holder` names this node in the lease.
    pub async fn connect(url: &str, holder: String, ttl: Duration) -> Result<Self, LeaseError> {
        if ttl < Duration::from_secs(1) {
            return Err(LeaseError::Ttl(ttl));
        }
        let client =
            connect_client(url, &Auth::None).await.map_err(|source| LeaseError::Connect { url: url.into(), source })?;
        let js = jetstream::new(client);
        let config = kv::Config {
            bucket: LEASE_BUCKET.into(),
            description: "bulkflow leader leases".into(),
            history: 1,
            max_age: ttl,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        let bucket =
            |e: Box<dyn std::error::Error + Send + Sync>| LeaseError::Bucket { bucket: LEASE_BUCKET.into(), source: e };
        let kv = match js.get_key_value(LEASE_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => match js.create_key_value(config).await {
                Ok(kv) => kv,
                // Another node created it in between.
                Err(_) => js.get_key_value(LEASE_BUCKET).await.map_err(|e| bucket(Box::new(e)))?,
            },
        };
        Ok(Self { kv, holder, ttl })
    }

    /// Campaigns until `shutdown`, publishing whether this node leads on `leading`. Releases the
    /// lease on shutdown so another node can take over at once.
    pub async fn run(self, leading: watch::Sender<bool>, shutdown: CancellationToken) {
        let renew_every = self.ttl / 3;
        let deposed_after = self.ttl * 2 / 3;
        let campaign_every = self.ttl / 10;
        let mut held: Option<(u64, Instant)> = None;
        loop {
            let wait = match held {
                None => match self.kv.create(LEASE_KEY, Bytes::from(self.holder.clone())).await {
                    Ok(revision) => {
                        tracing::info!(holder = self.holder, "became the leader");
                        held = Some((revision, Instant::now()));
                        let _ = leading.send(true);
                        renew_every
                    }
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => campaign_every,
                    Err(e) => {
                        tracing::warn!(error = %e, "leader election: cannot reach the lease");
                        campaign_every
                    }
                },
                Some((revision, renewed_at)) => {
                    match self.kv.update(LEASE_KEY, Bytes::from(self.holder.clone()), revision).await {
                        Ok(next) => {
                            held = Some((next, Instant::now()));
                            renew_every
                        }
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                            tracing::error!(
                                holder = self.holder,
                                "lost the leader lease to another node; stopping leader-elected flows"
                            );
                            held = None;
                            let _ = leading.send(false);
                            campaign_every
                        }
                        Err(e) if renewed_at.elapsed() >= deposed_after => {
                            tracing::error!(holder = self.holder, error = %e, "cannot renew the leader lease in time; stopping leader-elected flows");
                            held = None;
                            let _ = leading.send(false);
                            campaign_every
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "leader lease renewal failed; retrying");
                            campaign_every
                        }
                    }
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Some((revision, _)) = held {
            let _ = leading.send(false);
            match self.kv.delete_expect_revision(LEASE_KEY, Some(revision)).await {
                Ok(()) => tracing::info!(holder = self.holder, "released the leader lease"),
                Err(e) => tracing::warn!(error = %e, "cannot release the leader lease; it expires by itself"),
            }
        }
    }
}
