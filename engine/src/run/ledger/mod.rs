//! The run ledger: the engine's authority on what each run has done, over any [`StateStore`].
//!
//! Every mutating call commits one atomic batch and returns only once it is durable, so a caller
//! may acknowledge the effect elsewhere (to the bus, to Salesforce) as soon as the call returns.
//! Read-modify-write races (a publisher and several sinks updating one run) are settled by
//! optimistic concurrency: each batch expects the bytes it read and is recomputed on conflict.

mod checkpoints;
mod export;
mod keyed;
mod retention;
#[cfg(test)]
mod tests;
mod update;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use export::{Consumer, NO_WRITER, WAITING_STAGE, waiting_reason_in};
pub use update::Update;

use super::marks::{FlowMarks, JobRun};
use super::{LedgerError, RunId, RunRecord, RunState};
use crate::schedule::Clock;
use crate::store::{Batch, Commit, StateStore, StoreError, StoreHealth, Tree, record};

/// Conflicts come only from concurrent writers in this process, each a short critical section;
/// this many in a row means something is spinning, and it is better reported than looped on.
const MAX_ATTEMPTS: usize = 64;

/// The lease-tree key [`Ledger::probe_store`] writes: an expired lease held by no one.
const PROBE_KEY: &str = "bulkflow.store-probe";

#[derive(Clone, Debug)]
pub struct Ledger {
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    /// The writer flows of this engine, by subject filter: who must write a run's batches.
    consumers: Arc<std::sync::RwLock<Vec<export::Consumer>>>,
    /// Names of flows with a run newly at `scheduled` outside their trigger (started on demand
    /// or retried while the engine runs), so the flow's trigger fires it now, not on the next
    /// start.
    scheduled: tokio::sync::broadcast::Sender<String>,
    /// Ticks each flow skipped since this process started, for `/metrics` and the TUI.
    skipped: Arc<std::sync::Mutex<std::collections::BTreeMap<String, SkippedTicks>>>,
    /// Runs whose results a task of this process is reading now. Not persisted: a read ends with
    /// its process. The completion poller leaves these alone: a page arriving slowly makes a run
    /// look quiet, and standing in for its event would only start a second read of the same run.
    reading: Arc<std::sync::Mutex<std::collections::HashSet<RunId>>>,
    /// Whether the store takes writes, from every commit's outcome.
    health: StoreHealth,
}

/// A read of a run's results in progress ([`Ledger::start_reading`]); the read ends when this
/// drops, however the reading task ends.
#[must_use = "the read ends when this is dropped"]
#[derive(Debug)]
pub struct Reading {
    reading: Arc<std::sync::Mutex<std::collections::HashSet<RunId>>>,
    run: RunId,
}

impl Drop for Reading {
    fn drop(&mut self) {
        self.reading.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.run);
    }
}

/// A flow's ticks skipped because its previous run was unfinished.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkippedTicks {
    pub count: u64,
    /// Why the last one was skipped: the run that blocked it and its state.
    pub last_reason: String,
}

/// The result of [`Ledger::open_run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedRun {
    pub run: RunRecord,
    /// False when the tick had already opened this run (a restart re-firing it).
    pub created: bool,
}

/// Which runs [`Ledger::list_runs`] returns; `None` fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub flow: Option<String>,
    pub state: Option<RunState>,
}

impl Ledger {
    /// `clock` stamps every record, so tests get exact, repeatable times.
    pub fn new(store: Arc<dyn StateStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            consumers: Arc::default(),
            scheduled: tokio::sync::broadcast::channel(64).0,
            skipped: Arc::default(),
            reading: Arc::default(),
            health: StoreHealth::default(),
        }
    }

    /// Whether the store takes writes: what sources wait on before taking new work.
    pub fn store_health(&self) -> StoreHealth {
        self.health.clone()
    }

    /// Commits `batch`, noting whether the store took it.
    fn commit(&self, batch: Batch) -> Result<Commit, StoreError> {
        let started = std::time::Instant::now();
        let outcome = self.store.commit(batch);
        crate::metrics::global().ledger_commit(started.elapsed());
        self.health.observe(&outcome);
        outcome
    }

    /// Tries a write that changes nothing anyone reads (a record of when the store was last
    /// probed), so that a store which stopped taking writes is noticed taking them again even
    /// while no work runs.
    pub fn probe_store(&self) -> Result<(), LedgerError> {
        let mut batch = Batch::new();
        let key = PROBE_KEY.as_bytes();
        let probe = super::marks::Lease { holder: String::new(), expires_at: self.clock.now() };
        batch.put(Tree::Leases, key, record::encode(key, &probe)?);
        // An unconditional batch cannot conflict.
        let _ = self.commit(batch)?;
        Ok(())
    }

    /// Marks `run`'s results as being read by the caller until the returned guard drops; `None`
    /// when another task of this process reads them already.
    pub fn start_reading(&self, run: &RunId) -> Option<Reading> {
        let mut reading = self.reading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        reading.insert(run.clone()).then(|| Reading { reading: self.reading.clone(), run: run.clone() })
    }

    /// Whether a task of this process is reading `run`'s results now.
    pub fn is_reading(&self, run: &RunId) -> bool {
        self.reading.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(run)
    }

    /// The flow's run that is not finished yet (anything but `written`, `completed`, `cancelled`
    /// or `failed`), other than `except`: while there is one, a tick opens no run, so the
    /// windows of one flow's runs never overlap.
    pub fn unfinished_run(&self, flow: &str, except: &RunId) -> Result<Option<RunRecord>, LedgerError> {
        Ok(self
            .list_runs(&RunFilter { flow: Some(flow.to_owned()), state: None })?
            .into_iter()
            .filter(|r| r.id() != except)
            .filter(|r| !r.state().is_terminal() && r.state() != RunState::Failed)
            .min_by_key(|r| r.scheduled_at()))
    }

    /// Why `run` holds its flow's next tick back: its state, and what it waits for when known.
    pub fn blocking_reason(&self, run: &RunRecord) -> Result<String, LedgerError> {
        Ok(match self.waiting_reason(run)? {
            Some(why) => format!("run {} is `{}`: {why}", run.id(), run.state()),
            None => format!("run {} is `{}`", run.id(), run.state()),
        })
    }

    /// Counts a tick of `flow` skipped for `reason`.
    pub fn tick_skipped(&self, flow: &str, reason: String) {
        let mut skipped = self.skipped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = skipped.entry(flow.to_owned()).or_default();
        entry.count += 1;
        entry.last_reason = reason;
    }

    /// Ticks skipped per flow since this process started.
    pub fn skipped_ticks(&self) -> std::collections::BTreeMap<String, SkippedTicks> {
        self.skipped.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Tells `flow`'s trigger, if it runs in this process, that a run of the flow waits at
    /// `scheduled`. Without a trigger listening this does nothing: the run starts on the next start.
    pub fn announce_scheduled(&self, flow: &str) {
        let _ = self.scheduled.send(flow.to_owned());
    }

    /// The flows [`Ledger::announce_scheduled`] names from now on.
    pub fn scheduled_announcements(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.scheduled.subscribe()
    }

    fn store(&self) -> &dyn StateStore {
        &*self.store
    }

    /// Builds a batch with `plan` and commits it, rebuilding on conflict.
    fn commit_with_retry<T>(
        &self,
        what: impl Fn() -> String,
        mut plan: impl FnMut(&mut Batch) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        for _ in 0..MAX_ATTEMPTS {
            let mut batch = Batch::new();
            let outcome = plan(&mut batch)?;
            match self.commit(batch)? {
                Commit::Applied => return Ok(outcome),
                Commit::Conflict { tree, key } => {
                    tracing::debug!(%tree, key = %String::from_utf8_lossy(&key), "ledger write conflicted; retrying");
                }
            }
        }
        Err(LedgerError::Contention { what: what(), attempts: MAX_ATTEMPTS })
    }

    /// Opens the run for `flow`'s tick at `scheduled_at`, or returns the one that tick already
    /// opened. Also records the tick as the flow's last, for the scheduler.
    pub fn open_run(&self, flow: &str, scheduled_at: DateTime<Utc>) -> Result<OpenedRun, LedgerError> {
        if flow.is_empty() {
            return Err(LedgerError::EmptyFlowName);
        }
        let id = RunId::new(flow, scheduled_at);
        let key = id.as_str().as_bytes();
        self.commit_with_retry(
            || format!("opening run {id}"),
            |batch| {
                if let Some(run) = record::get::<RunRecord>(self.store(), key)? {
                    return Ok(OpenedRun { run, created: false });
                }
                let run = RunRecord::new(flow, scheduled_at, self.clock.now());
                batch.expect(Tree::Runs, key, None);
                batch.put(Tree::Runs, key, record::encode(key, &run)?);
                let tick = run.scheduled_at().timestamp();
                self.update_marks(batch, flow, |marks| {
                    marks.last_tick = Some(marks.last_tick.map_or(tick, |t| t.max(tick)));
                })?;
                Ok(OpenedRun { run, created: true })
            },
        )
    }

    /// Adds to `batch` the change `f` makes to `flow`'s marks, expecting the marks it read.
    fn update_marks(&self, batch: &mut Batch, flow: &str, f: impl FnOnce(&mut FlowMarks)) -> Result<(), LedgerError> {
        let key = flow.as_bytes();
        let stored = record::load::<FlowMarks>(self.store(), key)?;
        let (mut marks, raw) = match stored {
            Some(s) => (s.value, Some(s.raw)),
            None => (FlowMarks::default(), None),
        };
        f(&mut marks);
        batch.expect(Tree::Flows, key, raw);
        batch.put(Tree::Flows, key, record::encode(key, &marks)?);
        Ok(())
    }

    pub fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>, LedgerError> {
        Ok(record::get(self.store(), id.as_str().as_bytes())?)
    }

    /// Matching runs, ordered by flow name, then by scheduled time.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, LedgerError> {
        // Flow names may contain '@', so the prefix narrows the scan and the field decides.
        let prefix = filter.flow.as_ref().map(|f| format!("{f}@")).unwrap_or_default();
        Ok(record::scan::<RunRecord>(self.store(), prefix.as_bytes())?
            .into_iter()
            .map(|stored| stored.value)
            .filter(|run| filter.flow.as_deref().is_none_or(|f| run.flow() == f))
            .filter(|run| filter.state.is_none_or(|s| run.state() == s))
            .collect())
    }

    /// Every run that is not terminal (including failed ones): what the engine drives on at start.
    pub fn resumable_runs(&self) -> Result<Vec<RunRecord>, LedgerError> {
        Ok(self.list_runs(&RunFilter::default())?.into_iter().filter(|run| !run.state().is_terminal()).collect())
    }

    pub fn run_for_job(&self, job_id: &str) -> Result<Option<RunId>, LedgerError> {
        Ok(record::get::<JobRun>(self.store(), job_id.as_bytes())?.map(|j| j.run))
    }

    /// The scheduled time (unix seconds) of `flow`'s latest successful run: the script value
    /// `event.data.system_info.last_run_time`.
    pub fn watermark(&self, flow: &str) -> Result<Option<i64>, LedgerError> {
        Ok(record::get::<FlowMarks>(self.store(), flow.as_bytes())?.and_then(|m| m.watermark))
    }

    /// Raises `flow`'s watermark to `unix_seconds` (never lowers it) and returns the result.
    ///
    /// Runs move the watermark themselves on reaching `written` or `completed`; this is for
    /// success that is not (yet) a run transition, such as "the query flow completed".
    pub fn raise_watermark(&self, flow: &str, unix_seconds: i64) -> Result<i64, LedgerError> {
        self.commit_with_retry(
            || format!("raising the watermark of flow {flow}"),
            |batch| {
                let mut result = unix_seconds;
                self.update_marks(batch, flow, |marks| {
                    result = marks.watermark.map_or(unix_seconds, |w| w.max(unix_seconds));
                    marks.watermark = Some(result);
                })?;
                Ok(result)
            },
        )
    }

    /// The latest tick that opened a run of `flow`: the scheduler's starting point after a
    /// restart (`None` on a fresh store).
    pub fn last_tick(&self, flow: &str) -> Result<Option<DateTime<Utc>>, LedgerError> {
        Ok(record::get::<FlowMarks>(self.store(), flow.as_bytes())?
            .and_then(|m| m.last_tick)
            .and_then(|t| DateTime::from_timestamp(t, 0)))
    }
}
