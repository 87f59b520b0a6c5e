//! The lease in NATS KV. The bucket keeps one revision per key and expires entries a fixed time
//! after their last write, so a holder that stops renewing (crashed, partitioned) loses the key to
//! the next node that tries to create it.
//!
//! Timing, for a lease TTL `ttl` (the longest a crashed leader's flows may stay unrun): the bucket
//! expires a key `expiry = ttl * 3/4` after its last write. The holder renews every `expiry / 3`
//! and counts itself deposed once `expiry * 2/3` passed since it sent its last successful renewal,
//! so it stops before the key can expire and be taken (two leaders at once would need a clock
//! running 50% slow). Followers try to take the key every `expiry / 15`, so a crashed leader is
//! replaced about `0.8 * ttl` after its death at the latest, within the TTL.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::LeaseError;
use crate::bus::nats::{Auth, ClientTls, connect_client};
use crate::tls::Trust;

pub const LEASE_BUCKET: &str = "bulkflow_leases";
/// One lease for all leader-elected flows: the leader runs all of them, as the seed's query and
/// listener flows belong together.
pub const LEASE_KEY: &str = "leader";

/// How long the key lives unrenewed, so that a follower takes over within `ttl` of a crash.
fn expiry(ttl: Duration) -> Duration {
    ttl * 3 / 4
}

/// The stream behind the lease bucket, in the layout of any KV bucket (`KV_<bucket>`, subjects
/// `$KV.<bucket>.>`, rollups allowed, deletes denied), keeping one revision per key for `ttl`.
fn lease_stream(expiry: Duration) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: format!("KV_{LEASE_BUCKET}"),
        description: Some("bulkflow leader leases".into()),
        subjects: vec![format!("$KV.{LEASE_BUCKET}.>")],
        max_messages_per_subject: 1,
        max_age: expiry,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

pub struct NatsLease {
    kv: kv::Store,
    holder: String,
    /// How long the key lives after its last write (the bucket's `max_age`).
    expiry: Duration,
}

impl NatsLease {
    /// Connects and opens (creating) the lease bucket. `holder` names this node in the lease.
    pub async fn connect(url: &str, holder: String, ttl: Duration, trust: &Trust) -> Result<Self, LeaseError> {
        if ttl < Duration::from_secs(1) {
            return Err(LeaseError::Ttl(ttl));
        }
        let client = connect_client(url, &Auth::None, &ClientTls::default(), trust)
            .await
            .map_err(|source| LeaseError::Connect { url: url.into(), source })?;
        let js = jetstream::new(client);
        let bucket =
            |e: Box<dyn std::error::Error + Send + Sync>| LeaseError::Bucket { bucket: LEASE_BUCKET.into(), source: e };
        let kv = match js.get_key_value(LEASE_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => {
                // async-nats's `create_key_value` first reads the account's info, which it cannot
                // parse from nats-server 2.9 (Debian's); so the bucket's stream is created here
                // with the layout every KV bucket has, then opened as a bucket.
                let created = js.create_stream(lease_stream(expiry(ttl))).await;
                match js.get_key_value(LEASE_BUCKET).await {
                    Ok(kv) => kv,
                    // Not created by another node in between either: the creation's error explains.
                    Err(e) => {
                        return Err(match created {
                            Err(c) => bucket(Box::new(c)),
                            Ok(_) => bucket(Box::new(e)),
                        });
                    }
                }
            }
        };
        // The bucket's own expiry is what deposes a crashed holder. A bucket made by nodes with
        // another TTL keeps theirs, and timing renewals by ours could let the key expire while
        // this node still believes it leads: so the bucket's expiry rules.
        let wanted = expiry(ttl);
        let found = kv.status().await.map_err(|e| bucket(Box::new(e)))?.max_age();
        let expiry = if found.is_zero() || found == wanted {
            wanted
        } else {
            tracing::warn!(
                configured = ?wanted,
                bucket = ?found,
                "the lease bucket exists with another expiry; using the bucket's (all nodes should set the same --leader-lease-ttl)"
            );
            found
        };
        Ok(Self { kv, holder, expiry })
    }

    /// Campaigns until `shutdown`, publishing whether this node leads on `leading`. Releases the
    /// lease on shutdown so another node can take over at once.
    pub async fn run(self, leading: watch::Sender<bool>, shutdown: CancellationToken) {
        let renew_every = self.expiry / 3;
        let deposed_after = self.expiry * 2 / 3;
        let campaign_every = (self.expiry / 15).max(Duration::from_millis(50));
        // The revision this node wrote last, and when it sent that write (the key expires
        // counting from the server's write, which came after).
        let mut held: Option<(u64, Instant)> = None;
        tracing::info!(holder = self.holder, expiry = ?self.expiry, "campaigning for the leader lease");
        loop {
            let wait = match held {
                None => {
                    let sent = Instant::now();
                    match tokio::time::timeout(deposed_after, self.kv.create(LEASE_KEY, self.value())).await {
                        Ok(Ok(revision)) => {
                            tracing::info!(holder = self.holder, "became the leader");
                            held = Some((revision, sent));
                            let _ = leading.send(true);
                            renew_every
                        }
                        Ok(Err(e)) if e.kind() == kv::CreateErrorKind::AlreadyExists => campaign_every,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "leader election: cannot reach the lease");
                            campaign_every
                        }
                        Err(_) => {
                            tracing::warn!("leader election: the lease did not answer in time");
                            campaign_every
                        }
                    }
                }
                Some((revision, renewed_at)) => {
                    let sent = Instant::now();
                    // Past this, the key may have expired and been taken: stop waiting for the
                    // renewal and step down.
                    let left = deposed_after.saturating_sub(renewed_at.elapsed());
                    let renewal = tokio::time::timeout(left, self.kv.update(LEASE_KEY, self.value(), revision)).await;
                    match renewal {
                        Ok(Ok(next)) => {
                            held = Some((next, sent));
                            renew_every
                        }
                        Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                            tracing::error!(
                                holder = self.holder,
                                "lost the leader lease to another node; stopping leader-elected flows"
                            );
                            held = None;
                            let _ = leading.send(false);
                            campaign_every
                        }
                        Ok(Err(e)) if renewed_at.elapsed() < deposed_after => {
                            tracing::warn!(error = %e, "leader lease renewal failed; retrying");
                            campaign_every
                        }
                        failed => {
                            let error = match failed {
                                Ok(Err(e)) => e.to_string(),
                                _ => "no answer in time".to_string(),
                            };
                            tracing::error!(
                                holder = self.holder,
                                error,
                                "cannot renew the leader lease in time; stopping leader-elected flows"
                            );
                            held = None;
                            let _ = leading.send(false);
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

    fn value(&self) -> Bytes {
        Bytes::from(self.holder.clone())
    }
}
