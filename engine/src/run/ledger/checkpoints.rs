//! Reading checkpoints, and updating a stage's progress as its batches complete.

use super::Ledger;
use crate::run::{Checkpoint, LedgerError, RunId, StageProgress, checkpoint};
use crate::store::{Tree, record};

impl Ledger {
    pub fn checkpoint(&self, id: &RunId, stage: &str) -> Result<Option<Checkpoint>, LedgerError> {
        Ok(record::get(self.store(), &checkpoint::key(id, stage))?)
    }

    /// Every checkpoint of run `id`, ordered by stage name.
    pub fn checkpoints(&self, id: &RunId) -> Result<Vec<Checkpoint>, LedgerError> {
        Ok(record::scan(self.store(), &checkpoint::key_prefix(id))?.into_iter().map(|stored| stored.value).collect())
    }

    /// Changes the progress of an existing checkpoint and returns it as stored.
    ///
    /// Several tasks (the publisher, each sink) report progress on one checkpoint concurrently;
    /// `change` may run more than once if they collide, so it must only mark, never count.
    pub fn update_progress(
        &self,
        id: &RunId,
        stage: &str,
        mut change: impl FnMut(&mut StageProgress),
    ) -> Result<Checkpoint, LedgerError> {
        let key = checkpoint::key(id, stage);
        self.commit_with_retry(
            || format!("updating checkpoint {stage:?} of run {id}"),
            |batch| {
                let stored = record::load::<Checkpoint>(self.store(), &key)?
                    .ok_or_else(|| LedgerError::NoCheckpoint { run: id.clone(), stage: stage.to_owned() })?;
                let mut cp = stored.value;
                change(&mut cp.progress);
                cp.updated_at = self.clock.now();
                batch.expect(Tree::Checkpoints, key.clone(), Some(stored.raw));
                batch.put(Tree::Checkpoints, key.clone(), record::encode(&key, &cp)?);
                Ok(cp)
            },
        )
    }
}
