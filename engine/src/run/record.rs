//! The persisted record of one run: its state, what happened to it, and when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{IllegalTransition, RunId, RunState, Transition};
use crate::store::{Record, Tree};

/// One state change, kept so an operator can see how a run got where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub from: RunState,
    pub to: RunState,
    pub at: DateTime<Utc>,
    /// The error of a failure, the reason of a cancellation or of a job created again.
    pub error: Option<String>,
}

/// A run as the ledger stores it. Fields are read-only outside this module: a record changes
/// only through [`RunRecord::apply`], which admits legal transitions alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    id: RunId,
    flow: String,
    state: RunState,
    /// The state a failed run failed in (and returns to on retry); `None` unless `failed`.
    failed_in: Option<RunState>,
    scheduled_at: DateTime<Utc>,
    job_id: Option<String>,
    attempts: u32,
    last_error: Option<String>,
    total_batches: Option<u64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    history: Vec<HistoryEntry>,
}

impl Record for RunRecord {
    const TREE: Tree = Tree::Runs;
    const VERSION: u16 = 1;
}

impl RunRecord {
    pub(crate) fn new(flow: &str, scheduled_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let id = RunId::new(flow, scheduled_at);
        Self {
            scheduled_at: id.scheduled_at(),
            id,
            flow: flow.to_owned(),
            state: RunState::Scheduled,
            failed_in: None,
            job_id: None,
            attempts: 1,
            last_error: None,
            total_batches: None,
            created_at: now,
            updated_at: now,
            history: Vec::new(),
        }
    }

    /// Applies `transition` at `now`, or refuses it and leaves the record unchanged.
    pub fn apply(&mut self, transition: &Transition, now: DateTime<Utc>) -> Result<(), IllegalTransition> {
        let to = transition.target(self.state, self.failed_in)?;
        match transition {
            Transition::Fail(error) => {
                self.failed_in = Some(self.state);
                self.last_error = Some(error.clone());
            }
            Transition::Retry => {
                self.failed_in = None;
                self.attempts += 1;
            }
            Transition::Recreate(_) => self.total_batches = None,
            Transition::Advance(_) | Transition::Cancel(_) => {}
        }
        self.history.push(HistoryEntry {
            from: self.state,
            to,
            at: now,
            error: transition.message().map(str::to_owned),
        });
        self.state = to;
        self.updated_at = now;
        Ok(())
    }

    pub(crate) fn set_job_id(&mut self, job_id: &str) {
        self.job_id = Some(job_id.to_owned());
    }

    pub(crate) fn set_total_batches(&mut self, total: u64) {
        self.total_batches = Some(total);
    }

    pub(crate) fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
    }

    pub fn id(&self) -> &RunId {
        &self.id
    }

    pub fn flow(&self) -> &str {
        &self.flow
    }

    pub fn state(&self) -> RunState {
        self.state
    }

    pub fn failed_in(&self) -> Option<RunState> {
        self.failed_in
    }

    pub fn scheduled_at(&self) -> DateTime<Utc> {
        self.scheduled_at
    }

    pub fn job_id(&self) -> Option<&str> {
        self.job_id.as_deref()
    }

    /// 1 for the first attempt, plus one per retry.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The most recent failure, kept after a retry so it stays visible.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Known once the last results page is fetched.
    pub fn total_batches(&self) -> Option<u64> {
        self.total_batches
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{decode, encode};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn fail_and_retry_are_recorded() {
        let mut run = RunRecord::new("f", at("2026-11-25T09:05:00Z"), at("2026-11-25T09:05:01Z"));
        run.apply(&Transition::Advance(RunState::JobCreated), at("2026-11-25T09:05:02Z")).unwrap();
        run.apply(&Transition::Fail("HTTP 503".into()), at("2026-11-25T09:06:00Z")).unwrap();
        assert_eq!(run.state(), RunState::Failed);
        assert_eq!(run.failed_in(), Some(RunState::JobCreated));
        assert_eq!(run.last_error(), Some("HTTP 503"));

        run.apply(&Transition::Retry, at("2026-11-25T09:07:00Z")).unwrap();
        assert_eq!(run.state(), RunState::JobCreated);
        assert_eq!(run.failed_in(), None);
        assert_eq!(run.attempts(), 2);
        assert_eq!(run.updated_at(), at("2026-11-25T09:07:00Z"));
        let moves: Vec<_> = run.history().iter().map(|h| (h.from, h.to, h.error.as_deref())).collect();
        assert_eq!(
            moves,
            [
                (RunState::Scheduled, RunState::JobCreated, None),
                (RunState::JobCreated, RunState::Failed, Some("HTTP 503")),
                (RunState::Failed, RunState::JobCreated, None),
            ]
        );
    }

    #[test]
    fn refused_transition_changes_nothing() {
        let mut run = RunRecord::new("f", at("2026-11-25T09:05:00Z"), at("2026-11-25T09:05:01Z"));
        let before = run.clone();
        assert!(run.apply(&Transition::Advance(RunState::Written), at("2026-11-25T09:09:00Z")).is_err());
        assert_eq!(run, before);
    }

    #[test]
    fn record_round_trips_through_the_store_encoding() {
        let mut run = RunRecord::new("f@x", at("2026-11-25T09:05:00Z"), at("2026-11-25T09:05:01Z"));
        run.set_job_id("750xx0000000001");
        run.set_total_batches(12);
        run.apply(&Transition::Cancel("operator".into()), at("2026-11-25T09:06:00Z")).unwrap();
        let key = run.id().as_str().as_bytes().to_vec();
        assert_eq!(decode::<RunRecord>(&key, &encode(&key, &run).unwrap()).unwrap(), run);
    }
}
