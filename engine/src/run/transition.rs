//! The legal moves between [`RunState`]s, as one pure function so the table can be tested whole.

use std::fmt;

use super::RunState;

/// A requested change of a run's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// One stage forward, or `scheduled` → `completed` for a flow that starts no export. The
    /// target is named so a duplicate or out-of-order step (a redelivered event) is refused
    /// rather than silently skipping a stage.
    Advance(RunState),
    /// Any non-terminal state → `failed`, remembering the state it failed in.
    Fail(String),
    /// Any non-terminal state → `cancelled`, with the reason.
    Cancel(String),
    /// `failed` → the state it failed in, as a new attempt.
    Retry,
    /// The run's job vanished in Salesforce (404): a new job for the same window replaces it,
    /// from any state that had a job and had not finished, back to `job_created`.
    Recreate(String),
}

impl Transition {
    /// The state this transition leads to from `from` (with `failed_in`, the state a failed run
    /// failed in), or why it is not allowed.
    pub fn target(&self, from: RunState, failed_in: Option<RunState>) -> Result<RunState, IllegalTransition> {
        let legal = match self {
            Transition::Advance(to) => (from.next_stage() == Some(*to)
                || (from == RunState::Scheduled && *to == RunState::Completed))
                .then_some(*to),
            Transition::Fail(_) => (!from.is_terminal() && from != RunState::Failed).then_some(RunState::Failed),
            Transition::Cancel(_) => (!from.is_terminal()).then_some(RunState::Cancelled),
            Transition::Retry => failed_in.filter(|_| from == RunState::Failed),
            Transition::Recreate(_) => matches!(
                from,
                RunState::JobCreated | RunState::CompletedEvent | RunState::ResultsFetched | RunState::Published
            )
            .then_some(RunState::JobCreated),
        };
        legal.ok_or_else(|| IllegalTransition { from, attempted: self.to_string() })
    }

    /// The error or reason this transition records in the run's history.
    pub fn message(&self) -> Option<&str> {
        match self {
            Transition::Fail(message) | Transition::Cancel(message) | Transition::Recreate(message) => Some(message),
            Transition::Advance(_) | Transition::Retry => None,
        }
    }
}

/// Describes the move without its message, for errors and logs.
impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transition::Advance(to) => write!(f, "advance to {to}"),
            Transition::Fail(_) => f.write_str("fail"),
            Transition::Cancel(_) => f.write_str("cancel"),
            Transition::Retry => f.write_str("retry"),
            Transition::Recreate(_) => f.write_str("recreate the job"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {attempted} from {from}")]
pub struct IllegalTransition {
    pub from: RunState,
    pub attempted: String,
}

#[cfg(test)]
mod tests {
    use super::RunState::*;
    use super::*;

    /// The legal moves, written out from the design's diagram independently of the code.
    const LEGAL: &[(RunState, RunState)] = &[
        (Scheduled, JobCreated),
        (JobCreated, CompletedEvent),
        (CompletedEvent, ResultsFetched),
        (ResultsFetched, Published),
        (Published, Written),
        (Scheduled, Completed),
        (Scheduled, Failed),
        (JobCreated, Failed),
        (CompletedEvent, Failed),
        (ResultsFetched, Failed),
        (Published, Failed),
        (Scheduled, Cancelled),
        (JobCreated, Cancelled),
        (CompletedEvent, Cancelled),
        (ResultsFetched, Cancelled),
        (Published, Cancelled),
        (Failed, Cancelled),
        (JobCreated, JobCreated),
        (CompletedEvent, JobCreated),
        (ResultsFetched, JobCreated),
        (Published, JobCreated),
    ];

    /// The states a run can fail in; retry leads back to exactly that one.
    const FAILABLE: [RunState; 5] = [Scheduled, JobCreated, CompletedEvent, ResultsFetched, Published];

    fn every_transition() -> Vec<Transition> {
        let mut all: Vec<Transition> = RunState::ALL.into_iter().map(Transition::Advance).collect();
        all.extend([
            Transition::Fail("boom".into()),
            Transition::Cancel("operator".into()),
            Transition::Retry,
            Transition::Recreate("404".into()),
        ]);
        all
    }

    fn is_legal(from: RunState, failed_in: Option<RunState>, to: RunState) -> bool {
        LEGAL.contains(&(from, to)) || (from == Failed && failed_in == Some(to))
    }

    #[test]
    fn every_state_pair_is_allowed_exactly_when_the_table_says() {
        for from in RunState::ALL {
            let failed_ins: Vec<Option<RunState>> =
                if from == Failed { FAILABLE.into_iter().map(Some).collect() } else { vec![None] };
            for failed_in in failed_ins {
                for to in RunState::ALL {
                    let reachable = every_transition().iter().any(|t| t.target(from, failed_in) == Ok(to));
                    assert_eq!(reachable, is_legal(from, failed_in, to), "{from} -> {to} (failed in {failed_in:?})");
                }
            }
        }
    }

    #[test]
    fn illegal_requests_are_errors_naming_the_move() {
        let err = Transition::Advance(Published).target(JobCreated, None).unwrap_err();
        assert_eq!(err.to_string(), "cannot advance to published from job_created");
        assert_eq!(Transition::Retry.target(Scheduled, None).unwrap_err().to_string(), "cannot retry from scheduled");
        // A failed run moves on only by an explicit retry, which counts the attempt.
        assert!(Transition::Advance(JobCreated).target(Failed, Some(Scheduled)).is_err());
        for terminal in [Written, Completed, Cancelled] {
            for t in every_transition() {
                assert!(t.target(terminal, None).is_err(), "{t} from {terminal}");
            }
        }
    }

    #[test]
    fn fail_and_retry_round_trip_to_the_failed_state() {
        for state in FAILABLE {
            assert_eq!(Transition::Fail("x".into()).target(state, None), Ok(Failed));
            assert_eq!(Transition::Retry.target(Failed, Some(state)), Ok(state));
        }
    }
}
