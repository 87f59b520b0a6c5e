//! A run as the UI shows it: the ledger's record (decoded from the API's JSON) and its progress.

use bulkflow_control_proto as pb;
use bulkflow_engine::run::{Checkpoint, RunRecord, RunState};
use chrono::{DateTime, Datelike, Utc};

#[derive(Clone, Debug)]
pub struct RunView {
    pub record: RunRecord,
    pub progress: pb::Progress,
    pub window_start: Option<DateTime<Utc>>,
    pub object: Option<String>,
    /// Why the run cannot move on, when the engine knows.
    pub waiting: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the engine sent a run this client cannot read: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

impl RunView {
    pub fn decode(run: pb::Run) -> Result<RunView, DecodeError> {
        Ok(RunView {
            record: serde_json::from_str(&run.record_json)?,
            progress: run.progress.unwrap_or_default(),
            window_start: run.window_start.and_then(|t| DateTime::from_timestamp(t, 0)),
            object: run.object,
            waiting: run.waiting,
        })
    }

    pub fn id(&self) -> &str {
        self.record.id().as_str()
    }

    pub fn state(&self) -> RunState {
        self.record.state()
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
        let end_at = self.record.scheduled_at();
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
    pub checkpoints: Vec<Checkpoint>,
}

impl DetailView {
    pub fn decode(detail: pb::RunDetail) -> Result<DetailView, DecodeError> {
        let run = RunView::decode(detail.run.unwrap_or_default())?;
        let checkpoints = detail.checkpoints_json.iter().map(|c| serde_json::from_str(c)).collect::<Result<_, _>>()?;
        Ok(DetailView { run, checkpoints })
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
}
