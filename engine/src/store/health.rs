//! Whether the state store takes writes. A disk full or turned read-only under the state
//! directory makes every commit fail; each piece of work started then would fail half-way (a job
//! created but not recorded, a batch read but not checkpointed), so the engine stops taking new
//! work while commits fail, says why, and takes it again once a commit succeeds. Failing flows
//! for it instead would need a restart to recover from a disk that an operator has cleaned up.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::StoreError;

/// Shared by the ledger (which reports each commit's outcome) and whatever must wait for writes.
#[derive(Clone, Debug)]
pub struct StoreHealth(Arc<watch::Sender<Option<Failing>>>);

#[derive(Clone, Debug)]
pub struct Failing {
    pub why: String,
    pub since: Instant,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self(Arc::new(watch::channel(None).0))
    }
}

impl StoreHealth {
    /// Records a commit's outcome: a write error (not a conflict, not a bad record) starts a
    /// failure, a success ends one. Each start and end is logged once.
    pub fn observe<T>(&self, outcome: &Result<T, StoreError>) {
        match outcome {
            Ok(_) => {
                self.0.send_if_modified(|failing| match failing.take() {
                    Some(f) => {
                        tracing::info!(failed_for = ?f.since.elapsed(), "the state store writes again; taking new work");
                        true
                    }
                    None => false,
                });
            }
            Err(e @ (StoreError::Commit { .. } | StoreError::Flush { .. })) => {
                self.0.send_if_modified(|failing| {
                    if failing.is_some() {
                        return false;
                    }
                    tracing::error!(error = %e, "the state store cannot write; taking no new work until it can (work under way goes on once it writes again)");
                    *failing = Some(Failing { why: format!("the state store cannot write: {e}"), since: Instant::now() });
                    true
                });
            }
            Err(_) => {}
        }
    }

    /// Why the store cannot write now, if it cannot.
    pub fn failing(&self) -> Option<String> {
        self.0.borrow().as_ref().map(|f| f.why.clone())
    }

    /// Waits until the store writes (at once when it does); false if `shutdown` fires first.
    pub async fn writable(&self, shutdown: &CancellationToken) -> bool {
        let mut rx = self.0.subscribe();
        tokio::select! {
            r = rx.wait_for(Option::is_none) => r.is_ok(),
            () = shutdown.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_error() -> StoreError {
        StoreError::Commit { source: sled::Error::Io(std::io::Error::from_raw_os_error(28)) }
    }

    #[tokio::test]
    async fn a_write_error_holds_work_until_a_commit_succeeds() {
        let health = StoreHealth::default();
        let shutdown = CancellationToken::new();
        assert!(health.writable(&shutdown).await, "a new store writes");
        health.observe::<()>(&Err(write_error()));
        let why = health.failing().unwrap();
        assert!(why.contains("cannot write") && why.contains("No space left on device"), "{why}");
        // Other errors are about one record, not the disk.
        health.observe::<()>(&Err(StoreError::Corrupt {
            tree: super::super::Tree::Runs,
            key: "k".into(),
            reason: "x".into(),
        }));
        assert!(health.failing().is_some());
        let waiter = {
            let (health, shutdown) = (health.clone(), shutdown.clone());
            tokio::spawn(async move { health.writable(&shutdown).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "waits while the store cannot write");
        health.observe(&Ok(()));
        assert!(waiter.await.unwrap());
        assert_eq!(health.failing(), None);
        health.observe::<()>(&Err(write_error()));
        shutdown.cancel();
        assert!(!health.writable(&shutdown).await, "a shutdown ends the wait");
    }
}
