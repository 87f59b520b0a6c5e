//! Compaction of finished runs, so the store does not grow without bound.

use std::time::Duration;

use super::Ledger;
use crate::run::marks::JobRun;
use crate::run::{LedgerError, RunRecord, checkpoint};
use crate::store::{Batch, Commit, Tree, record};

impl Ledger {
    /// Removes every terminal run (`written`, `completed`, `cancelled`) that finished more than
    /// `max_age` ago, with its checkpoints and job index entry; returns how many were removed.
    ///
    /// Failed runs are kept whatever their age: they still await a retry or a cancel. Flow marks
    /// are kept too, so compaction never moves a watermark or the scheduler's last tick.
    pub fn compact(&self, max_age: Duration) -> Result<usize, LedgerError> {
        let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        let cutoff = self.clock.now().checked_sub_signed(max_age).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let mut removed = 0;
        for stored in record::scan::<RunRecord>(self.store(), b"")? {
            let run = &stored.value;
            if !run.state().is_terminal() || run.updated_at() >= cutoff {
                continue;
            }
            // One batch per run, expecting the bytes scanned. A terminal run does not change, so
            // a conflict means something unexpected touched it: leave it for the next pass.
            let mut batch = Batch::new();
            batch.expect(Tree::Runs, stored.key.clone(), Some(stored.raw.clone()));
            batch.delete(Tree::Runs, stored.key.clone());
            for (key, _) in self.store().scan_prefix(Tree::Checkpoints, &checkpoint::key_prefix(run.id()))? {
                batch.delete(Tree::Checkpoints, key);
            }
            let sweep_job = self.sweep_job(run.id())?;
            for job in run.job_id().into_iter().chain(sweep_job.as_deref()) {
                let index = record::load::<JobRun>(self.store(), job.as_bytes())?;
                if let Some(index) = index.filter(|i| &i.value.run == run.id()) {
                    batch.expect(Tree::JobRuns, job.as_bytes(), Some(index.raw));
                    batch.delete(Tree::JobRuns, job.as_bytes());
                }
            }
            if let Commit::Conflict { .. } = self.commit(batch)? {
                tracing::warn!(run = %run.id(), "finished run changed during compaction; kept");
                continue;
            }
            removed += 1;
            crate::fault::point("retention.mid_compaction");
        }
        Ok(removed)
    }
}
