//! A run as the UI shows it: the control API's typed run fields and its progress. Only the typed
//! fields are read (not `record_json`, the ledger's own serde shape), so the UI does not build
//! the engine and keeps working when the ledger's shape changes.

use bulkflow_control_proto as pb;
use chrono::{DateTime, Datelike, Utc};

/// Every run state, in the order a run goes through them (`failed` and `cancelled` last): the
/// state column sorts by it.
pub const STATES: [&str; 9] = [
    "scheduled",
    "job_created",
    "completed_event",
    "results_fetched",
    "published",
    "written",
    "completed",
    "failed",
    "cancelled",
];

/// Where `state` falls in [`STATES`]; an unknown one (a newer engine's) after them all.
pub fn state_rank(state: &str) -> usize {
    STATES.iter().position(|s| *s == state).unwrap_or(STATES.len())
}

#[derive(Clone, Debug)]
pub struct StateChange {
    pub from: String,
    pub to: String,
    pub at: DateTime<Utc>,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RunView {
    pub id: String,
    pub flow: String,
    pub state: String,
    pub scheduled_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub job_id: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub history: Vec<StateChange>,
    pub progress: pb::Progress,
    pub window_start: Option<DateTime<Utc>>,
    pub object: Option<String>,
    /// Why the run cannot move on, when the engine knows.
    pub waiting: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the engine sent a run without its id or state (an engine older than this client?)")]
    Untyped,
    #[error("the engine sent run {id} with an impossible time: {what} {value}")]
    Time { id: String, what: &'static str, value: i64 },
}

impl RunView {
    pub fn decode(run: pb::Run) -> Result<RunView, DecodeError> {
        if run.id.is_empty() || run.state.is_empty() {
            return Err(DecodeError::Untyped);
        }
        let id = run.id;
        let time = |what: &'static str, value: i64, ms: bool| {
            let t = if ms { DateTime::from_timestamp_millis(value) } else { DateTime::from_timestamp(value, 0) };
            t.ok_or_else(|| DecodeError::Time { id: id.clone(), what, value })
        };
        let scheduled_at = time("scheduled_at", run.scheduled_at, false)?;
        let created_at = time("created_at_ms", run.created_at_ms, true)?;
        let history = run
            .history
            .into_iter()
            .map(|h| {
                Ok(StateChange { from: h.from, to: h.to, at: time("history.at_ms", h.at_ms, true)?, error: h.error })
            })
            .collect::<Result<_, DecodeError>>()?;
        Ok(RunView {
            flow: run.flow,
            state: run.state,
            scheduled_at,
            created_at,
            job_id: run.job_id,
            attempts: run.attempts,
            last_error: run.last_error,
            history,
            progress: run.progress.unwrap_or_default(),
            window_start: run.window_start.and_then(|t| DateTime::from_timestamp(t, 0)),
            object: run.object,
            waiting: run.waiting,
            id,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn state(&self) -> &str {
        &self.state
    }

    /// The fewest batches any sink wrote: the run is written when every sink wrote them all.
    pub fn batches_written(&self) -> Option<u64> {
        self.progress.batches_written.values().copied().min()
    }

    /// `pg3 p12 w12 41.2k`: pages fetched, batches published, batches written by the slowest sink,
    /// records.
    pub fn progress_text(&self) -> String {
        let p = &self.progress;
        if p.pages_fetched == 0 && p.batches_published == 0 && p.batches_written.is_empty() {
            return "-".into();
        }
        let written = self.batches_written().map(|w| format!(" w{w}")).unwrap_or_default();
        format!("pg{} p{}{written} {}", p.pages_fetched, p.batches_published, short_count(p.records))
    }

    /// `11-24 09:05 → 11-25 09:05` (the start with its year when it is another year's, as a
    /// backfill's), or `… → 11-25 09:05` when the flow's script picks the window.
    pub fn window_text(&self) -> String {
        let end_at = self.scheduled_at;
        let end = end_at.format("%m-%d %H:%M");
        match self.window_start {
            Some(start) if start.year() != end_at.year() => format!("{} → {end}", start.format("%Y-%m-%d %H:%M")),
            Some(start) => format!("{} → {end}", start.format("%m-%d %H:%M")),
            None => format!("… → {end}"),
        }
    }
}

/// A decoded `GetRun` answer.
#[derive(Clone, Debug)]
pub struct DetailView {
    pub run: RunView,
    pub checkpoints: Vec<pb::Checkpoint>,
}

impl DetailView {
    pub fn decode(detail: pb::RunDetail) -> Result<DetailView, DecodeError> {
        let run = RunView::decode(detail.run.unwrap_or_default())?;
        Ok(DetailView { run, checkpoints: detail.checkpoints })
    }
}

/// 1234 → `1.2k`, 5_600_000 → `5.6M`.
pub fn short_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// How long ago, in the largest unit: `42s`, `5m`, `3h`, `2d`.
pub fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - since).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ages_are_short() {
        assert_eq!(short_count(999), "999");
        assert_eq!(short_count(41_234), "41.2k");
        assert_eq!(short_count(5_600_000), "5.6M");
        let now = Utc::now();
        assert_eq!(age(now - chrono::Duration::seconds(42), now), "42s");
        assert_eq!(age(now - chrono::Duration::hours(3), now), "3h");
        assert_eq!(age(now + chrono::Duration::hours(3), now), "0s");
    }

    #[test]
    fn a_run_without_typed_fields_or_with_a_bad_time_is_refused() {
        assert_eq!(RunView::decode(pb::Run::default()).unwrap_err(), DecodeError::Untyped);
        let run = pb::Run { id: "f@x".into(), state: "scheduled".into(), scheduled_at: i64::MAX, ..Default::default() };
        let e = RunView::decode(run).unwrap_err();
        assert!(e.to_string().contains("run f@x with an impossible time: scheduled_at"), "{e}");
        assert!(state_rank("scheduled") < state_rank("written") && state_rank("cancelled") < state_rank("new"));
    }
}
