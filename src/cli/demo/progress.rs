//! What the demo shows while it runs: per exported object, its latest run's state and how far its
//! batches got; and when it is idle (every object exported once, nothing in flight).

use bulkflow_engine::run::{Ledger, RESULTS_STAGE, RunFilter, RunRecord, RunState};

/// One object's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectProgress {
    pub flow: String,
    pub latest: Option<RunRecord>,
    pub records: u64,
    pub published: usize,
    /// Batches written, per writer flow.
    pub written: Vec<(String, usize)>,
    pub exported_once: bool,
    pub in_flight: usize,
    pub failed: Vec<RunRecord>,
}

impl ObjectProgress {
    pub fn read(ledger: &Ledger, flow: &str) -> anyhow::Result<Self> {
        let runs = ledger.list_runs(&RunFilter { flow: Some(flow.to_owned()), state: None })?;
        let latest = runs.iter().max_by_key(|r| r.scheduled_at()).cloned();
        let (mut records, mut published, mut written) = (0, 0, Vec::new());
        if let Some(run) = &latest
            && let Some(cp) = ledger.checkpoint(run.id(), RESULTS_STAGE)?
        {
            records = cp.progress.records_fetched;
            published = cp.progress.batches_published.len();
            written = cp.progress.batches_written.iter().map(|(sink, b)| (sink.clone(), b.len())).collect();
        }
        Ok(Self {
            flow: flow.to_owned(),
            exported_once: runs.iter().any(|r| r.state() == RunState::Written),
            in_flight: runs.iter().filter(|r| !r.state().is_terminal() && r.state() != RunState::Failed).count(),
            failed: runs.iter().filter(|r| r.state() == RunState::Failed).cloned().collect(),
            latest,
            records,
            published,
            written,
        })
    }

    /// `account  written  12000 records  batches 2/2 published, 2/2 written (parquet), ...`
    pub fn line(&self) -> String {
        let object = self.flow.rsplit('_').next().unwrap_or(&self.flow);
        let Some(run) = &self.latest else { return format!("{object:<12} waiting for its first run") };
        let total = run.total_batches().map_or("?".to_string(), |t| t.to_string());
        let mut line = format!(
            "{object:<12} {:<16} {:>9} records  batches: {}/{total} published",
            run.state().as_str(),
            self.records,
            self.published
        );
        for (sink, n) in &self.written {
            line.push_str(&format!(", {n}/{total} written by {sink}"));
        }
        line
    }
}

/// Every object exported at least once and no run in flight.
pub fn idle(objects: &[ObjectProgress]) -> bool {
    objects.iter().all(|o| o.exported_once && o.in_flight == 0)
}
