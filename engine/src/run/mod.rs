//! Export runs: the state machine, the persisted run records and checkpoints, and the
//! [`Ledger`] that the flow runtime drives them through.
//!
//! A run is one tick of a query flow ([`RunId`] = flow + scheduled time). Its state moves
//! forward one stage at a time (`scheduled` → `job_created` → `completed_event` →
//! `results_fetched` → `published` → `written`), may fail and be retried from where it failed,
//! or be cancelled; see [`Transition`]. Every change is durable when the ledger call returns.

mod checkpoint;
mod error;
mod id;
mod ledger;
pub(crate) mod marks;
mod record;
mod recreate;
mod state;
mod transition;

pub use checkpoint::{
    Checkpoint, INTENT_STAGE, PageMark, RECREATE_STAGE, RESULTS_STAGE, SWEEP_STAGE, StageProgress, StoredBatch,
};
pub use error::LedgerError;
pub use id::{InvalidRunId, RunId};
pub use ledger::{
    Consumer, Ledger, NO_WRITER, OpenedRun, RunFilter, SkippedTicks, Update, WAITING_STAGE, waiting_reason_in,
};
pub use marks::{Lease, watermark_after};
pub use record::{HistoryEntry, RunRecord};
pub use recreate::{Recreated, recreate_job};
pub use state::{RunState, UnknownRunState};
pub use transition::{IllegalTransition, Transition};
