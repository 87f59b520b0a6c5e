//! Records that are not about one run: Pub/Sub replay ids and leases.

use std::time::Duration;

use super::Ledger;
use crate::run::LedgerError;
use crate::run::marks::{Lease, ReplayId};
use crate::store::{Tree, record};

impl Ledger {
    /// The last replay id committed by Pub/Sub consumer `consumer`.
    pub fn replay_id(&self, consumer: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(record::get::<ReplayId>(self.store(), consumer.as_bytes())?.map(|r| r.0))
    }

    /// Durably records `replay_id` for `consumer`. Call it only once the events up to it reached
    /// every leaf of their flow: a replay id committed early loses the events after a crash.
    pub fn set_replay_id(&self, consumer: &str, replay_id: &[u8]) -> Result<(), LedgerError> {
        let key = consumer.as_bytes();
        let mut batch = crate::store::Batch::new();
        batch.put(Tree::ReplayIds, key, record::encode(key, &ReplayId(replay_id.to_vec()))?);
        // An unconditional batch cannot conflict.
        let _ = self.commit(batch)?;
        Ok(())
    }

    pub fn lease(&self, name: &str) -> Result<Option<Lease>, LedgerError> {
        Ok(record::get(self.store(), name.as_bytes())?)
    }

    /// Takes or renews lease `name` for `holder` until now + `ttl`. Returns false, changing
    /// nothing, while another holder's lease is unexpired.
    pub fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, LedgerError> {
        let key = name.as_bytes();
        self.commit_with_retry(
            || format!("acquiring lease {name}"),
            |batch| {
                let now = self.clock.now();
                let stored = record::load::<Lease>(self.store(), key)?;
                let held_by_another =
                    stored.as_ref().is_some_and(|s| s.value.holder != holder && s.value.expires_at > now);
                if held_by_another {
                    return Ok(false);
                }
                let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
                let lease = Lease {
                    holder: holder.to_owned(),
                    expires_at: now.checked_add_signed(ttl).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
                };
                batch.expect(Tree::Leases, key, stored.map(|s| s.raw));
                batch.put(Tree::Leases, key, record::encode(key, &lease)?);
                Ok(true)
            },
        )
    }

    /// Gives up lease `name` if `holder` holds it; returns whether it did.
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<bool, LedgerError> {
        let key = name.as_bytes();
        self.commit_with_retry(
            || format!("releasing lease {name}"),
            |batch| {
                let Some(stored) = record::load::<Lease>(self.store(), key)? else {
                    return Ok(false);
                };
                if stored.value.holder != holder {
                    return Ok(false);
                }
                batch.expect(Tree::Leases, key, Some(stored.raw));
                batch.delete(Tree::Leases, key);
                Ok(true)
            },
        )
    }
}
