//! Changes to one run, each committed atomically with everything that depends on it.

use super::Ledger;
use crate::run::marks::{JobRun, watermark_after};
use crate::run::{Checkpoint, LedgerError, RESULTS_STAGE, RunId, RunRecord, RunState, Transition, checkpoint};
use crate::store::{Batch, Tree, record};

/// What to change on a run in one atomic, durable commit: e.g. advance to `results_fetched`,
/// set the batch total and write the next stage's checkpoint, so a crash leaves all or none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    transition: Option<Transition>,
    total_batches: Option<u64>,
    checkpoints: Vec<Checkpoint>,
    dropped: Vec<String>,
}

impl Update {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn transition(mut self, transition: Transition) -> Self {
        self.transition = Some(transition);
        self
    }

    pub fn total_batches(mut self, total: u64) -> Self {
        self.total_batches = Some(total);
        self
    }

    /// Writes (replaces) the checkpoint of `checkpoint.stage`.
    pub fn checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.checkpoints.push(checkpoint);
        self
    }

    /// Removes the checkpoint of `stage`, if there is one.
    pub fn drop_checkpoint(mut self, stage: &str) -> Self {
        self.dropped.push(stage.to_owned());
        self
    }
}

impl Ledger {
    /// Applies `update` to run `id` and returns the run as stored. A refused transition writes
    /// nothing at all. Reaching `written` or `completed` raises the flow's watermark in the same
    /// commit.
    pub fn update(&self, id: &RunId, update: &Update) -> Result<RunRecord, LedgerError> {
        let key = id.as_str().as_bytes();
        self.commit_with_retry(
            || format!("updating run {id}"),
            |batch| {
                let now = self.clock.now();
                let mut run = self.load_run_expecting(batch, id)?;
                if let Some(transition) = &update.transition {
                    run.apply(transition, now)
                        .map_err(|illegal| LedgerError::IllegalTransition { run: id.clone(), illegal })?;
                    // Whatever held the run up, it moved.
                    batch.delete(Tree::Checkpoints, checkpoint::key(id, super::WAITING_STAGE));
                    if run.state().is_success() {
                        self.update_marks(batch, run.flow(), |marks| {
                            marks.watermark = watermark_after(marks.watermark, &run);
                        })?;
                    }
                }
                if let Some(total) = update.total_batches {
                    run.set_total_batches(total);
                }
                run.touch(now);
                for stage in &update.dropped {
                    batch.delete(Tree::Checkpoints, checkpoint::key(id, stage));
                }
                for cp in &update.checkpoints {
                    let cp_key = checkpoint::key(id, &cp.stage);
                    let cp = Checkpoint { updated_at: now, ..cp.clone() };
                    batch.put(Tree::Checkpoints, cp_key.clone(), record::encode(&cp_key, &cp)?);
                }
                batch.put(Tree::Runs, key, record::encode(key, &run)?);
                Ok(run)
            },
        )
    }

    pub fn transition(&self, id: &RunId, transition: Transition) -> Result<RunRecord, LedgerError> {
        self.update(id, &Update::new().transition(transition))
    }

    /// Records that run `id` created (or adopted) Bulk job `job_id`: moves it from `scheduled`
    /// to `job_created` and indexes the job, atomically. Recording the same job again is a no-op,
    /// so a redelivered event is harmless; a different job is refused (never two jobs per run).
    pub fn record_job(&self, id: &RunId, job_id: &str) -> Result<RunRecord, LedgerError> {
        self.commit_with_retry(
            || format!("recording job {job_id} on run {id}"),
            |batch| {
                let mut run = self.load_run_expecting(batch, id)?;
                match run.job_id() {
                    Some(existing) if existing == job_id => return Ok(run),
                    Some(existing) => {
                        return Err(LedgerError::JobMismatch {
                            run: id.clone(),
                            existing: existing.to_owned(),
                            new: job_id.to_owned(),
                        });
                    }
                    None => {}
                }
                let index = record::load::<JobRun>(self.store(), job_id.as_bytes())?;
                let other_owner = index.as_ref().map(|i| &i.value.run).filter(|o| *o != id);
                if let Some(owner) = other_owner {
                    return Err(LedgerError::JobTaken {
                        job: job_id.to_owned(),
                        owner: owner.clone(),
                        run: id.clone(),
                    });
                }
                batch.expect(Tree::JobRuns, job_id.as_bytes(), index.map(|i| i.raw));
                run.apply(&Transition::Advance(RunState::JobCreated), self.clock.now())
                    .map_err(|illegal| LedgerError::IllegalTransition { run: id.clone(), illegal })?;
                run.set_job_id(job_id);
                let entry = JobRun { run: id.clone() };
                batch.put(Tree::JobRuns, job_id.as_bytes(), record::encode(job_id.as_bytes(), &entry)?);
                let key = id.as_str().as_bytes();
                batch.put(Tree::Runs, key, record::encode(key, &run)?);
                Ok(run)
            },
        )
    }

    /// Replaces run `id`'s vanished job `old_job` with `new_job`, created for the same window:
    /// back to `job_created`, the job index moved (a late event of the old job is then foreign),
    /// and the old job's results progress dropped (the new job has its own pages), atomically.
    /// Refused when the run no longer has `old_job` (someone replaced it first).
    pub fn replace_job(&self, id: &RunId, old_job: &str, new_job: &str, why: &str) -> Result<RunRecord, LedgerError> {
        self.commit_with_retry(
            || format!("replacing job {old_job} of run {id} with {new_job}"),
            |batch| {
                let mut run = self.load_run_expecting(batch, id)?;
                if run.job_id() != Some(old_job) {
                    return Err(LedgerError::JobMismatch {
                        run: id.clone(),
                        existing: run.job_id().unwrap_or_default().to_owned(),
                        new: new_job.to_owned(),
                    });
                }
                run.apply(&Transition::Recreate(why.to_owned()), self.clock.now())
                    .map_err(|illegal| LedgerError::IllegalTransition { run: id.clone(), illegal })?;
                run.set_job_id(new_job);
                let old = record::load::<JobRun>(self.store(), old_job.as_bytes())?;
                if let Some(old) = old.filter(|o| &o.value.run == id) {
                    batch.expect(Tree::JobRuns, old_job.as_bytes(), Some(old.raw));
                    batch.delete(Tree::JobRuns, old_job.as_bytes());
                }
                let index = record::load::<JobRun>(self.store(), new_job.as_bytes())?;
                if let Some(owner) = index.as_ref().map(|i| &i.value.run).filter(|o| *o != id) {
                    return Err(LedgerError::JobTaken {
                        job: new_job.to_owned(),
                        owner: owner.clone(),
                        run: id.clone(),
                    });
                }
                batch.expect(Tree::JobRuns, new_job.as_bytes(), index.map(|i| i.raw));
                let entry = JobRun { run: id.clone() };
                batch.put(Tree::JobRuns, new_job.as_bytes(), record::encode(new_job.as_bytes(), &entry)?);
                batch.delete(Tree::Checkpoints, checkpoint::key(id, RESULTS_STAGE));
                let key = id.as_str().as_bytes();
                batch.put(Tree::Runs, key, record::encode(key, &run)?);
                Ok(run)
            },
        )
    }

    /// Loads run `id` and makes `batch` expect it unchanged.
    pub(super) fn load_run_expecting(&self, batch: &mut Batch, id: &RunId) -> Result<RunRecord, LedgerError> {
        let key = id.as_str().as_bytes();
        let stored =
            record::load::<RunRecord>(self.store(), key)?.ok_or_else(|| LedgerError::UnknownRun(id.clone()))?;
        batch.expect(Tree::Runs, key, Some(stored.raw));
        Ok(stored.value)
    }
}
