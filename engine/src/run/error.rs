//! Ledger errors name the run (and job or stage) they concern.

use super::{IllegalTransition, RunId};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error("no run {0}")]
    UnknownRun(RunId),

    #[error("run {run}: {illegal}")]
    IllegalTransition { run: RunId, illegal: IllegalTransition },

    #[error("run {run} already has job {existing}; refusing to record job {new}")]
    JobMismatch { run: RunId, existing: String, new: String },

    #[error("job {job} belongs to run {owner}; refusing to record it on run {run}")]
    JobTaken { job: String, owner: RunId, run: RunId },

    #[error("run {run} has no checkpoint for stage {stage:?}")]
    NoCheckpoint { run: RunId, stage: String },

    #[error("a flow name must not be empty")]
    EmptyFlowName,

    #[error("{what}: still conflicting with concurrent writers after {attempts} attempts")]
    Contention { what: String, attempts: usize },
}
