//! The states of an export run. Each names a stage complete for the whole run (see DESIGN.md,
//! "The export run").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a run stands. The order of variants is part of the stored format (bincode writes the
/// variant index): add new states at the end and bump the record versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// The tick fired; the intent to create a Bulk job is recorded.
    Scheduled,
    JobCreated,
    /// Salesforce reported the job complete.
    CompletedEvent,
    /// The last results page is fetched; the total batch count is known.
    ResultsFetched,
    /// The bus acknowledged every batch.
    Published,
    /// Every sink wrote every batch: the export succeeded.
    Written,
    /// Success for a run of a flow that starts no export.
    Completed,
    /// Stopped by an error; can be retried from the state it failed in.
    Failed,
    Cancelled,
}

impl RunState {
    pub const ALL: [RunState; 9] = [
        RunState::Scheduled,
        RunState::JobCreated,
        RunState::CompletedEvent,
        RunState::ResultsFetched,
        RunState::Published,
        RunState::Written,
        RunState::Completed,
        RunState::Failed,
        RunState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Scheduled => "scheduled",
            RunState::JobCreated => "job_created",
            RunState::CompletedEvent => "completed_event",
            RunState::ResultsFetched => "results_fetched",
            RunState::Published => "published",
            RunState::Written => "written",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    /// A terminal run never changes again, so it is safe to compact.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunState::Written | RunState::Completed | RunState::Cancelled)
    }

    /// Only a successful run may move the flow's watermark.
    pub fn is_success(self) -> bool {
        matches!(self, RunState::Written | RunState::Completed)
    }

    /// The next stage of an export, if this state is one of its stages before the last.
    pub fn next_stage(self) -> Option<RunState> {
        match self {
            RunState::Scheduled => Some(RunState::JobCreated),
            RunState::JobCreated => Some(RunState::CompletedEvent),
            RunState::CompletedEvent => Some(RunState::ResultsFetched),
            RunState::ResultsFetched => Some(RunState::Published),
            RunState::Published => Some(RunState::Written),
            RunState::Written | RunState::Completed | RunState::Failed | RunState::Cancelled => None,
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown run state {0:?}; expected one of scheduled, job_created, completed_event, results_fetched, published, written, completed, failed, cancelled"
)]
pub struct UnknownRunState(pub String);

impl FromStr for RunState {
    type Err = UnknownRunState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunState::ALL.into_iter().find(|state| state.as_str() == s).ok_or_else(|| UnknownRunState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_agree_across_display_serde_and_parse() {
        for state in RunState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(state.as_str().parse::<RunState>().unwrap(), state);
        }
        assert_eq!(RunState::JobCreated.to_string(), "job_created");
        assert!("Written".parse::<RunState>().is_err());
    }
}
