//! Small per-key records beside the runs: per-flow marks, the job index, replay ids, leases.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RunId, RunRecord};
use crate::store::{Record, Tree};

/// What the scheduler and the query scripts need to know about a flow, in unix seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FlowMarks {
    /// The scheduled time of the latest tick that opened a run.
    pub last_tick: Option<i64>,
    /// The scheduled time of the latest run that succeeded: the start of the next query window.
    pub watermark: Option<i64>,
}

impl Record for FlowMarks {
    const TREE: Tree = Tree::Flows;
    const VERSION: u16 = 1;
}

/// The watermark after `run` reached its current state: raised to the run's scheduled time if
/// the run succeeded, never lowered (an older run finishing late must not reopen a covered
/// window), and untouched by a failure so the next run queries the failed window again.
pub fn watermark_after(current: Option<i64>, run: &RunRecord) -> Option<i64> {
    if !run.state().is_success() {
        return current;
    }
    let candidate = run.scheduled_at().timestamp();
    Some(current.map_or(candidate, |c| c.max(candidate)))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobRun {
    pub run: RunId,
}

impl Record for JobRun {
    const TREE: Tree = Tree::JobRuns;
    const VERSION: u16 = 1;
}

/// A Pub/Sub replay id: opaque bytes from Salesforce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplayId(pub Vec<u8>);

impl Record for ReplayId {
    const TREE: Tree = Tree::ReplayIds;
    const VERSION: u16 = 1;
}

/// A named lease, held by `holder` until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

impl Record for Lease {
    const TREE: Tree = Tree::Leases;
    const VERSION: u16 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{RunState, Transition};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn watermark_helper_ignores_unsuccessful_runs() {
        let mut run = RunRecord::new("f", at("2026-11-25T09:05:00Z"), at("2026-11-25T09:05:01Z"));
        assert_eq!(watermark_after(Some(5), &run), Some(5));
        run.apply(&Transition::Fail("x".into()), at("2026-11-25T09:06:00Z")).unwrap();
        assert_eq!(watermark_after(None, &run), None);
        run.apply(&Transition::Retry, at("2026-11-25T09:07:00Z")).unwrap();
        run.apply(&Transition::Advance(RunState::Completed), at("2026-11-25T09:08:00Z")).unwrap();
        let t = at("2026-11-25T09:05:00Z").timestamp();
        assert_eq!(watermark_after(None, &run), Some(t));
        assert_eq!(watermark_after(Some(t + 1), &run), Some(t + 1));
    }
}
