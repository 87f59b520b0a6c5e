//! An export run's stages after its job: results pages, bus acknowledgements, sink writes.
//!
//! Batches stream through the stages concurrently and finish in any order, so no single task
//! knows when a stage is complete for the whole run. Each call here records one piece of
//! progress durably and then [`Ledger::settle`]s the run: moves it on as far as its recorded
//! progress allows. Whichever task records the last piece of a stage advances the run.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::Ledger;
use crate::bus::subject;
use crate::event::RunTag;
use crate::run::marks::JobRun;
use crate::run::{
    Checkpoint, LedgerError, PageMark, RESULTS_STAGE, RunId, RunRecord, RunState, SWEEP_STAGE, StoredBatch, Transition,
    Update, checkpoint,
};
use crate::store::{Tree, record};

/// A writer flow of this engine and the subjects it subscribes to: every run whose batches were
/// published on a matching subject is `written` only once this flow has written all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    pub flow: String,
    pub filter: String,
}

/// More state changes than a run has stages means something keeps undoing them.
const MAX_SETTLE_STEPS: usize = 8;

/// The checkpoint that says why an unfinished run is not moving (its `input.reason`): a
/// `published` run no writer flow subscribes to, a run whose results cannot be read while
/// Salesforce refuses (an exhausted API limit, an outage). `runs show`, the TUI and `/metrics` say
/// it, with the engine running or not; the run's next state change removes it.
pub const WAITING_STAGE: &str = "waiting";

/// How the reason of a `published` run no writer flow subscribes to begins.
pub const NO_WRITER: &str = "no writer flow subscribes to";

impl Ledger {
    /// Declares that writer flow `flow` consumes the batches published on subjects matching
    /// `filter`. Called when the engine builds its flows; repeating it is harmless.
    pub fn register_consumer(&self, flow: &str, filter: &str) {
        let mut consumers = self.consumers.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let consumer = Consumer { flow: flow.to_owned(), filter: filter.to_owned() };
        if !consumers.contains(&consumer) {
            consumers.push(consumer);
        }
    }

    /// The writer flows that must write batches published on any of `subjects`.
    pub fn consumers_of<'a>(&self, subjects: impl IntoIterator<Item = &'a String> + Clone) -> Vec<String> {
        let consumers = self.consumers.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut flows: Vec<String> = consumers
            .iter()
            .filter(|c| subjects.clone().into_iter().any(|s| subject::matches(&c.filter, s)))
            .map(|c| c.flow.clone())
            .collect();
        flows.sort();
        flows.dedup();
        flows
    }

    /// The run's job is complete and its results are being read: `job_created` →
    /// `completed_event`, and the results checkpoint (holding `input`, the event that started the
    /// reading) exists. Returns the checkpoint, which on a resumed run says how far reading got.
    pub fn results_started(&self, run: &RunId, input: Value) -> Result<Checkpoint, LedgerError> {
        for _ in 0..MAX_SETTLE_STEPS {
            let record = self.get_run(run)?.ok_or_else(|| LedgerError::UnknownRun(run.clone()))?;
            let existing = self.checkpoint(run, RESULTS_STAGE)?;
            let mut update = Update::new();
            if record.state() == RunState::JobCreated {
                update = update.transition(Transition::Advance(RunState::CompletedEvent));
            } else if let Some(cp) = existing {
                return Ok(cp);
            }
            let cp = existing.unwrap_or_else(|| Checkpoint::new(RESULTS_STAGE, input.clone()));
            match self.update(run, &update.checkpoint(cp.clone())) {
                Ok(_) => return Ok(cp),
                // Another reader of the same job moved it first: read again.
                Err(LedgerError::IllegalTransition { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(LedgerError::Contention { what: format!("starting the results of run {run}"), attempts: MAX_SETTLE_STEPS })
    }

    /// Records that run `id` made Bulk job `job_id` to read every live `Id` for its sweep: the
    /// job is indexed to the run (so its completion event is known as the run's, and left to it)
    /// and named in the run's sweep checkpoint, atomically.
    pub fn record_sweep_job(&self, id: &RunId, job_id: &str) -> Result<(), LedgerError> {
        self.commit_with_retry(
            || format!("recording sweep job {job_id} on run {id}"),
            |batch| {
                let index = record::load::<JobRun>(self.store(), job_id.as_bytes())?;
                batch.expect(Tree::JobRuns, job_id.as_bytes(), index.map(|i| i.raw));
                let entry = JobRun { run: id.clone() };
                batch.put(Tree::JobRuns, job_id.as_bytes(), record::encode(job_id.as_bytes(), &entry)?);
                let key = checkpoint::key(id, SWEEP_STAGE);
                let existing = record::load::<Checkpoint>(self.store(), &key)?;
                batch.expect(Tree::Checkpoints, key.clone(), existing.map(|e| e.raw));
                let mut cp = Checkpoint::new(SWEEP_STAGE, serde_json::json!({ "job": job_id }));
                cp.updated_at = self.clock.now();
                batch.put(Tree::Checkpoints, key.clone(), record::encode(&key, &cp)?);
                Ok(())
            },
        )
    }

    /// The Bulk job run `id` made for its sweep, if it made one.
    pub fn sweep_job(&self, id: &RunId) -> Result<Option<String>, LedgerError> {
        Ok(self.checkpoint(id, SWEEP_STAGE)?.and_then(|cp| cp.input.get("job")?.as_str().map(str::to_owned)))
    }

    /// Records results page number `page`; after the last page (`next` is `None`) the run knows
    /// its batch total and moves to `results_fetched`.
    pub fn page_fetched(
        &self,
        run: &RunId,
        page: u64,
        mark: PageMark,
        next: Option<String>,
    ) -> Result<RunRecord, LedgerError> {
        self.update_progress(run, RESULTS_STAGE, |p| p.page_fetched(page, mark.clone(), next.clone()))?;
        crate::fault::point("results.last_page_recorded");
        self.settle(run)
    }

    fn results_fetched(&self, run: &RunId, total: u64) -> Result<(), LedgerError> {
        let record = self.get_run(run)?.ok_or_else(|| LedgerError::UnknownRun(run.clone()))?;
        let mut update = Update::new().total_batches(total);
        if record.state() == RunState::CompletedEvent {
            update = update.transition(Transition::Advance(RunState::ResultsFetched));
        }
        match self.update(run, &update) {
            Ok(r) if r.state() == RunState::ResultsFetched && record.state() == RunState::CompletedEvent => {
                tracing::info!(run = %run, batches = total, "results fetched");
                Ok(())
            }
            Ok(_) | Err(LedgerError::IllegalTransition { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Records that the bus acknowledged batch `seq` of the run, published on `subject`.
    pub fn batch_published(&self, run: &RunId, seq: u64, subject: &str) -> Result<RunRecord, LedgerError> {
        self.batch_stored(run, seq, subject, None)
    }

    /// Records that the bus acknowledged batch `seq` of the run, published on `subject` and
    /// stored where `stored` says (which later shows whether the bus still holds it).
    pub fn batch_stored(
        &self,
        run: &RunId,
        seq: u64,
        subject: &str,
        stored: Option<StoredBatch>,
    ) -> Result<RunRecord, LedgerError> {
        self.update_progress(run, RESULTS_STAGE, |p| {
            p.mark_published(seq);
            if !p.subjects.contains(subject) {
                p.subjects.insert(subject.to_owned());
            }
            if let Some(stored) = &stored {
                p.stored.insert(seq, stored.clone());
            }
        })?;
        self.settle(run)
    }

    /// Records that writer flow `sink` wrote batch `seq` of the run with every one of its sinks.
    pub fn batch_written(&self, run: &RunId, sink: &str, seq: u64) -> Result<RunRecord, LedgerError> {
        self.batches_written(run, sink, &[seq])
    }

    /// [`Ledger::batch_written`] for several batches of the run, in one commit.
    pub fn batches_written(&self, run: &RunId, sink: &str, seqs: &[u64]) -> Result<RunRecord, LedgerError> {
        self.update_progress(run, RESULTS_STAGE, |p| {
            for &seq in seqs {
                p.mark_written(sink, seq);
            }
        })?;
        self.settle(run)
    }

    /// The run and sequence number of the export batch an event's `meta` describes
    /// (`meta.run_id`, else the run of `meta.job_id`; `meta.batch_seq`), if the run is known here:
    /// `None` for events that are not a run's batches, such as a foreign job's.
    pub fn batch_of(&self, meta: &Map<String, Value>) -> Result<Option<(RunId, u64)>, LedgerError> {
        let tag = RunTag::of(meta);
        let Some(seq) = tag.batch_seq else { return Ok(None) };
        let Some(run) = self.run_of_tag(&tag)? else { return Ok(None) };
        Ok(self.checkpoint(&run, RESULTS_STAGE)?.map(|_| (run, seq)))
    }

    /// The run an event belongs to: its tag's run, else the run that owns its tag's job.
    pub fn run_of_tag(&self, tag: &RunTag) -> Result<Option<RunId>, LedgerError> {
        match (&tag.run, &tag.job) {
            (Some(run), _) => Ok(Some(run.clone())),
            (None, Some(job)) => self.run_for_job(job),
            (None, None) => Ok(None),
        }
    }

    /// The batches of a `published` run that some writer flow subscribed to its subjects has not
    /// written, each with where the bus stored it (`None` for batches published before the
    /// ledger kept that).
    pub fn unwritten_batches(&self, run: &RunId) -> Result<BTreeMap<u64, Option<StoredBatch>>, LedgerError> {
        let Some(total) = self.get_run(run)?.and_then(|r| r.total_batches()) else { return Ok(BTreeMap::new()) };
        let Some(cp) = self.checkpoint(run, RESULTS_STAGE)? else { return Ok(BTreeMap::new()) };
        let sinks = self.consumers_of(&cp.progress.subjects);
        Ok(sinks
            .iter()
            .flat_map(|s| cp.progress.unwritten(s, total).collect::<Vec<_>>())
            .filter(|b| cp.progress.batches_published.contains(b))
            .map(|b| (b, cp.progress.stored.get(&b).cloned()))
            .collect())
    }

    /// Forgets the bus's acknowledgement of batches the bus lost (its limits discarded them, or
    /// it was purged), so they are fetched and published again, under new message ids.
    pub fn unpublish(&self, run: &RunId, lost: &BTreeSet<u64>) -> Result<usize, LedgerError> {
        if lost.is_empty() {
            return Ok(0);
        }
        self.checkpoint(run, RESULTS_STAGE)?
            .ok_or_else(|| LedgerError::NoCheckpoint { run: run.clone(), stage: RESULTS_STAGE.to_owned() })?;
        self.update_progress(run, RESULTS_STAGE, |p| {
            p.batches_published.retain(|b| !lost.contains(b));
            p.stored.retain(|b, _| !lost.contains(b));
            p.bus_generation += 1;
        })?;
        Ok(lost.len())
    }

    /// Whether writer flow `sink` already wrote batch `seq`: a redelivery of it can be dropped.
    pub fn is_written(&self, run: &RunId, sink: &str, seq: u64) -> Result<bool, LedgerError> {
        Ok(self
            .checkpoint(run, RESULTS_STAGE)?
            .is_some_and(|cp| cp.progress.batches_written.get(sink).is_some_and(|w| w.contains(&seq))))
    }

    /// Moves the run on as far as its recorded progress allows: `results_fetched` → `published`
    /// once the bus acknowledged every batch, `published` → `written` once every writer flow
    /// subscribed to the run's subjects wrote every batch (which raises the watermark). A run
    /// with batches and no writer flow subscribed stays `published`, with the reason recorded: a
    /// bus keeps batches only so long, so calling it written would lose them silently.
    pub fn settle(&self, run: &RunId) -> Result<RunRecord, LedgerError> {
        for _ in 0..MAX_SETTLE_STEPS {
            let record = self.get_run(run)?.ok_or_else(|| LedgerError::UnknownRun(run.clone()))?;
            let Some(cp) = self.checkpoint(run, RESULTS_STAGE)? else { return Ok(record) };
            let progress = &cp.progress;
            let Some(total) = record.total_batches() else {
                // The last page is recorded in the checkpoint and the total in the run, two
                // writes: whoever settles the run next (a restart included) finishes the second.
                if record.state() == RunState::CompletedEvent && progress.all_pages_fetched() {
                    self.results_fetched(run, progress.batches_fetched)?;
                    continue;
                }
                return Ok(record);
            };
            let next = match record.state() {
                RunState::ResultsFetched if progress.unpublished(total).next().is_none() => RunState::Published,
                RunState::Published => {
                    let sinks = self.consumers_of(&progress.subjects);
                    let waiting = self.waiting_reason(&record)?;
                    if sinks.is_empty() && total > 0 {
                        let subjects = progress.subjects.iter().cloned().collect::<Vec<_>>().join(", ");
                        let reason = format!("{NO_WRITER} {subjects}");
                        if waiting.as_deref() != Some(reason.as_str()) {
                            tracing::warn!(run = %run, subjects, "run stays published: {reason}; the bus holds its batches until a writer flow for them starts (or `bulkflow runs cancel`)");
                            let note = Checkpoint::new(WAITING_STAGE, serde_json::json!({ "reason": reason }));
                            return self.update(run, &Update::new().checkpoint(note));
                        }
                        return Ok(record);
                    }
                    if waiting.is_some() {
                        self.update(run, &Update::new().drop_checkpoint(WAITING_STAGE))?;
                    }
                    if !sinks.iter().all(|sink| progress.unwritten(sink, total).next().is_none()) {
                        return Ok(record);
                    }
                    RunState::Written
                }
                _ => return Ok(record),
            };
            match self.transition(run, Transition::Advance(next)) {
                Ok(r) if r.state() == RunState::Written => {
                    crate::fault::point("ledger.written");
                    tracing::info!(run = %run, batches = total, "run written");
                }
                Ok(r) if r.state() == RunState::Published => {
                    tracing::info!(run = %run, batches = total, "run published");
                }
                Ok(_) | Err(LedgerError::IllegalTransition { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(LedgerError::Contention { what: format!("settling run {run}"), attempts: MAX_SETTLE_STEPS })
    }

    /// Why an unfinished run is not moving (see [`WAITING_STAGE`]), if recorded.
    pub fn waiting_reason(&self, run: &RunRecord) -> Result<Option<String>, LedgerError> {
        if !is_unfinished(run) {
            return Ok(None);
        }
        Ok(self.checkpoint(run.id(), WAITING_STAGE)?.as_ref().and_then(reason_of).map(str::to_owned))
    }

    /// Records why `run` is not moving, unless that is already recorded (so asking again and
    /// failing the same way writes nothing).
    pub fn note_waiting(&self, run: &RunId, reason: &str) -> Result<(), LedgerError> {
        let Some(record) = self.get_run(run)? else { return Ok(()) };
        if !is_unfinished(&record) || self.waiting_reason(&record)?.as_deref() == Some(reason) {
            return Ok(());
        }
        let note = Checkpoint::new(WAITING_STAGE, serde_json::json!({ "reason": reason }));
        self.update(run, &Update::new().checkpoint(note)).map(drop)
    }

    /// Removes `run`'s reason to wait, if it has one: what held it up is over.
    pub fn clear_waiting(&self, run: &RunId) -> Result<(), LedgerError> {
        self.clear_waiting_if(run, |_| true)
    }

    /// Removes `run`'s reason to wait if `is_over` says what it names is over (a writer flow
    /// clears its own reason, not another's).
    pub fn clear_waiting_if(&self, run: &RunId, is_over: impl Fn(&str) -> bool) -> Result<(), LedgerError> {
        if self.checkpoint(run, WAITING_STAGE)?.as_ref().and_then(reason_of).is_some_and(is_over) {
            self.update(run, &Update::new().drop_checkpoint(WAITING_STAGE))?;
        }
        Ok(())
    }

    /// Settles every `published` run: after a start, a writer flow now present may let one move
    /// on, or a run's reason to wait may have changed.
    pub fn settle_published(&self) -> Result<(), LedgerError> {
        for run in self.list_runs(&crate::run::RunFilter { flow: None, state: Some(RunState::Published) })? {
            self.settle(run.id())?;
        }
        Ok(())
    }
}

/// [`Ledger::waiting_reason`] from a run's checkpoints already read (`runs show`).
pub fn waiting_reason_in<'a>(run: &RunRecord, checkpoints: &'a [Checkpoint]) -> Option<&'a str> {
    if !is_unfinished(run) {
        return None;
    }
    checkpoints.iter().find(|c| c.stage == WAITING_STAGE).and_then(reason_of)
}

/// Runs a reason to wait can hold up: neither finished nor failed (a failed run says why in
/// `last_error`).
fn is_unfinished(run: &RunRecord) -> bool {
    !run.state().is_terminal() && run.state() != RunState::Failed
}

fn reason_of(waiting: &Checkpoint) -> Option<&str> {
    waiting.input.get("reason").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;
    use crate::schedule::ManualClock;
    use crate::store::MemoryStore;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// A run of flow `q` with job `750A` whose results are being read.
    fn reading() -> (Ledger, RunId) {
        let ledger = Ledger::new(Arc::new(MemoryStore::new()), Arc::new(ManualClock::new(at("2026-11-25T09:05:01Z"))));
        let id = ledger.open_run("q", at("2026-11-25T09:05:00Z")).unwrap().run.id().clone();
        ledger.record_job(&id, "750A").unwrap();
        ledger.results_started(&id, json!({"data": {"id": "750A"}})).unwrap();
        (ledger, id)
    }

    fn page(locator: Option<&str>, batches: u64) -> PageMark {
        PageMark { locator: locator.map(str::to_string), rows: batches * 10, batches }
    }

    fn state(ledger: &Ledger, id: &RunId) -> RunState {
        ledger.get_run(id).unwrap().unwrap().state()
    }

    #[test]
    fn a_run_is_written_only_when_every_subscribed_writer_flow_wrote_every_batch() {
        let (ledger, id) = reading();
        ledger.register_consumer("writer_account", "salesforce_bulkapi.query_jobs.account");
        ledger.register_consumer("audit", "salesforce_bulkapi.>");
        ledger.register_consumer("writer_contact", "salesforce_bulkapi.query_jobs.contact");
        assert_eq!(state(&ledger, &id), RunState::CompletedEvent);
        let subject = "salesforce_bulkapi.query_jobs.account";
        // Acks and writes arrive before the last page: the run cannot move past its results.
        ledger.page_fetched(&id, 0, page(None, 2), Some("L1".into())).unwrap();
        ledger.batch_published(&id, 1, subject).unwrap();
        ledger.batch_written(&id, "writer_account", 1).unwrap();
        assert_eq!(state(&ledger, &id), RunState::CompletedEvent);
        ledger.page_fetched(&id, 1, page(Some("L1"), 1), None).unwrap();
        assert_eq!(state(&ledger, &id), RunState::ResultsFetched);
        assert_eq!(ledger.get_run(&id).unwrap().unwrap().total_batches(), Some(3));
        ledger.batch_published(&id, 0, subject).unwrap();
        ledger.batch_published(&id, 2, subject).unwrap();
        assert_eq!(state(&ledger, &id), RunState::Published);
        for seq in 0..3 {
            ledger.batch_written(&id, "writer_account", seq).unwrap();
        }
        // `audit` also subscribes to the subject; `writer_contact` does not.
        assert_eq!(state(&ledger, &id), RunState::Published);
        assert_eq!(ledger.watermark("q").unwrap(), None);
        for seq in [2, 0, 1] {
            ledger.batch_written(&id, "audit", seq).unwrap();
        }
        assert_eq!(state(&ledger, &id), RunState::Written);
        assert_eq!(ledger.watermark("q").unwrap(), Some(at("2026-11-25T09:05:00Z").timestamp()));
        assert!(ledger.is_written(&id, "audit", 2).unwrap());
        assert!(!ledger.is_written(&id, "writer_contact", 2).unwrap());
    }

    #[test]
    fn a_run_with_batches_and_no_writer_stays_published_and_says_why_until_a_writer_wrote_them() {
        let (ledger, id) = reading();
        ledger.register_consumer("writer_contact", "salesforce_bulkapi.query_jobs.contact");
        let subject = "salesforce_bulkapi.query_jobs.account";
        ledger.page_fetched(&id, 0, page(None, 2), None).unwrap();
        ledger.batch_published(&id, 0, subject).unwrap();
        ledger.batch_published(&id, 1, subject).unwrap();
        assert_eq!(state(&ledger, &id), RunState::Published);
        let run = |l: &Ledger| l.get_run(&id).unwrap().unwrap();
        assert_eq!(
            ledger.waiting_reason(&run(&ledger)).unwrap().as_deref(),
            Some("no writer flow subscribes to salesforce_bulkapi.query_jobs.account")
        );
        ledger.settle_published().unwrap();
        assert_eq!(state(&ledger, &id), RunState::Published);
        assert_eq!(ledger.watermark("q").unwrap(), None, "the watermark does not move");
        // A restart with the writer flow: the run waits for it, no longer for a writer to appear.
        ledger.register_consumer("writer_account", subject);
        ledger.settle_published().unwrap();
        assert_eq!(ledger.waiting_reason(&run(&ledger)).unwrap(), None);
        assert_eq!(state(&ledger, &id), RunState::Published);
        ledger.batch_written(&id, "writer_account", 0).unwrap();
        ledger.batch_written(&id, "writer_account", 1).unwrap();
        assert_eq!(state(&ledger, &id), RunState::Written);
        assert_eq!(ledger.watermark("q").unwrap(), Some(at("2026-11-25T09:05:00Z").timestamp()));

        // No records, no batches: nothing to write, written at once even without a writer.
        let (ledger, id) = reading();
        ledger.page_fetched(&id, 0, page(None, 0), None).unwrap();
        assert_eq!(state(&ledger, &id), RunState::Written);
    }

    /// A run held up (Salesforce refusing its calls) says why once, however often it is asked
    /// again; the reason goes when the run moves on or when what held it up is over, and a
    /// finished run has none.
    #[test]
    fn a_run_held_up_says_why_until_it_moves() {
        let clock = Arc::new(ManualClock::new(at("2026-11-25T09:05:01Z")));
        let ledger = Ledger::new(Arc::new(MemoryStore::new()), clock.clone());
        let id = ledger.open_run("q", at("2026-11-25T09:05:00Z")).unwrap().run.id().clone();
        ledger.record_job(&id, "750A").unwrap();
        ledger.results_started(&id, json!({"data": {"id": "750A"}})).unwrap();
        let run = |l: &Ledger| l.get_run(&id).unwrap().unwrap();
        let why = "reading its results failed: the API limit is exhausted";
        ledger.note_waiting(&id, why).unwrap();
        let noted = run(&ledger).updated_at();
        clock.advance(std::time::Duration::from_secs(60));
        ledger.note_waiting(&id, why).unwrap();
        assert_eq!(run(&ledger).updated_at(), noted, "the same reason again writes nothing");
        assert_eq!(ledger.waiting_reason(&run(&ledger)).unwrap().as_deref(), Some(why));
        ledger.clear_waiting(&id).unwrap();
        assert_eq!(ledger.waiting_reason(&run(&ledger)).unwrap(), None);
        ledger.note_waiting(&id, why).unwrap();
        ledger.page_fetched(&id, 0, page(None, 1), None).unwrap();
        assert_eq!(state(&ledger, &id), RunState::ResultsFetched);
        assert_eq!(ledger.waiting_reason(&run(&ledger)).unwrap(), None, "moving on clears it");
        assert_eq!(ledger.checkpoint(&id, WAITING_STAGE).unwrap(), None);
        ledger.transition(&id, Transition::Fail("gave up".into())).unwrap();
        ledger.note_waiting(&id, why).unwrap();
        assert_eq!(ledger.checkpoint(&id, WAITING_STAGE).unwrap(), None, "a failed run says why in last_error");
    }

    /// A process killed between checkpointing the last page and recording the run's total: the
    /// next settle (a restart re-reading the results, or any batch acknowledged) finishes it,
    /// where the run used to stay `completed_event` with its total unknown for ever.
    #[test]
    fn a_settle_after_a_crash_past_the_last_page_learns_the_total() {
        let (ledger, id) = reading();
        ledger.register_consumer("w", "s.>");
        ledger.update_progress(&id, RESULTS_STAGE, |p| p.page_fetched(0, page(None, 2), None)).unwrap();
        assert_eq!(state(&ledger, &id), RunState::CompletedEvent);
        assert_eq!(ledger.get_run(&id).unwrap().unwrap().total_batches(), None);
        ledger.settle(&id).unwrap();
        assert_eq!(state(&ledger, &id), RunState::ResultsFetched);
        assert_eq!(ledger.get_run(&id).unwrap().unwrap().total_batches(), Some(2));
        ledger.batch_published(&id, 0, "s.a").unwrap();
        ledger.batch_published(&id, 1, "s.a").unwrap();
        ledger.batch_written(&id, "w", 0).unwrap();
        ledger.batch_written(&id, "w", 1).unwrap();
        assert_eq!(state(&ledger, &id), RunState::Written);
    }

    #[test]
    fn redelivered_progress_changes_nothing_and_an_empty_result_is_written_at_once() {
        let (ledger, id) = reading();
        ledger.register_consumer("w", "s.>");
        ledger.page_fetched(&id, 0, page(None, 1), None).unwrap();
        ledger.page_fetched(&id, 0, page(None, 1), None).unwrap();
        ledger.batch_published(&id, 0, "s.a").unwrap();
        ledger.batch_published(&id, 0, "s.a").unwrap();
        let cp = ledger.checkpoint(&id, RESULTS_STAGE).unwrap().unwrap();
        assert_eq!((cp.progress.pages_fetched, cp.progress.batches_fetched), (1, 1));
        assert_eq!(state(&ledger, &id), RunState::Published);
        ledger.batch_written(&id, "w", 0).unwrap();
        ledger.batch_written(&id, "w", 0).unwrap();
        assert_eq!(state(&ledger, &id), RunState::Written);

        let (ledger, id) = reading();
        ledger.register_consumer("w", "s.>");
        ledger.page_fetched(&id, 0, page(None, 0), None).unwrap();
        assert_eq!(state(&ledger, &id), RunState::Written);
    }

    #[test]
    fn batches_lost_by_the_bus_are_unpublished_so_they_are_fetched_again() {
        let (ledger, id) = reading();
        ledger.register_consumer("w", "s");
        ledger.page_fetched(&id, 0, page(None, 3), None).unwrap();
        for seq in 0..3 {
            let stored = StoredBatch { stream: "st".into(), sequences: vec![seq * 2 + 1, seq * 2 + 2] };
            ledger.batch_stored(&id, seq, "s", Some(stored)).unwrap();
        }
        let cp = ledger.checkpoint(&id, RESULTS_STAGE).unwrap().unwrap();
        assert_eq!(cp.progress.stored[&2].sequences, [5, 6], "where the bus keeps each batch");
        ledger.batch_written(&id, "w", 1).unwrap();
        let unwritten = ledger.unwritten_batches(&id).unwrap();
        assert_eq!(unwritten.keys().copied().collect::<Vec<_>>(), [0, 2]);
        assert_eq!(ledger.unpublish(&id, &unwritten.keys().copied().collect()).unwrap(), 2);
        let cp = ledger.checkpoint(&id, RESULTS_STAGE).unwrap().unwrap();
        assert_eq!(cp.progress.unpublished(3).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(cp.progress.bus_generation, 1, "republished batches get new message ids");
        assert_eq!(state(&ledger, &id), RunState::Published);
        for seq in [0, 2] {
            ledger.batch_published(&id, seq, "s").unwrap();
            ledger.batch_written(&id, "w", seq).unwrap();
        }
        assert_eq!(state(&ledger, &id), RunState::Written);
    }

    #[test]
    fn results_started_again_keeps_the_progress_of_the_first_reading() {
        let (ledger, id) = reading();
        ledger.page_fetched(&id, 0, page(None, 2), Some("L1".into())).unwrap();
        let again = ledger.results_started(&id, json!({"data": {"id": "other"}})).unwrap();
        assert_eq!(again.progress.next_locator.as_deref(), Some("L1"));
        assert_eq!(again.input, json!({"data": {"id": "750A"}}));
    }

    #[test]
    fn a_failed_run_records_progress_but_does_not_advance_until_retried() {
        let (ledger, id) = reading();
        ledger.register_consumer("w", "s");
        ledger.page_fetched(&id, 0, page(None, 1), None).unwrap();
        ledger.batch_published(&id, 0, "s").unwrap();
        ledger.transition(&id, Transition::Fail("sink down".into())).unwrap();
        ledger.batch_written(&id, "w", 0).unwrap();
        assert_eq!(state(&ledger, &id), RunState::Failed);
        ledger.transition(&id, Transition::Retry).unwrap();
        assert_eq!(ledger.settle(&id).unwrap().state(), RunState::Written);
    }
}
