//! `get_results`: a completed job's results as Arrow batches, resumable from the run's checkpoint.
//!
//! Batch identity is deterministic (`<job>-p<page>-b<index>`, sequence numbers counted across
//! pages), so a page read twice yields the same batches and the bus and sinks drop the repeats. On
//! a run that was read before (a restart, a redelivered completion event, a retry), pages whose
//! batches the bus never acknowledged are fetched again by their stored locators and only those
//! batches are emitted; reading then continues from the stored next locator.

use std::sync::Arc;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::processor::{ledger_error, run_of, to_task_error};
use crate::event::{Event, EventData};
use crate::run::{Ledger, PageMark, RunId, RunState, StageProgress};
use crate::runtime::processor::{Emitter, TaskError};
use crate::salesforce::SalesforceClient;
use crate::salesforce::bulk::{self, JobInfo};
use crate::salesforce::results::{Page, ResultsReader};

pub(super) struct ResultsTask<'a> {
    pub task: &'a str,
    pub batch_size: usize,
    pub max_records: Option<usize>,
    pub ledger: &'a Ledger,
}

impl ResultsTask<'_> {
    pub async fn run(
        &self,
        client: Arc<SalesforceClient>,
        job_id: &str,
        event: Event,
        out: &mut Emitter,
    ) -> Result<(), TaskError> {
        let run = match run_of(&event) {
            Some(r) => Some(r),
            None => self.ledger.run_for_job(job_id).map_err(ledger_error)?,
        };
        let job = bulk::get_job(&client, job_id).await.map_err(to_task_error)?;
        match job.check_finished() {
            Ok(true) => {}
            Ok(false) => {
                return Err(TaskError::Retryable(format!("job {job_id} is {} and has no results yet", job.state)));
            }
            // A job that failed in Salesforce fails its run, with Salesforce's message.
            Err(e) => {
                if let Some(run) = &run {
                    self.fail_run(run, &e.to_string())?;
                }
                return Err(TaskError::Fatal(e.to_string()));
            }
        }
        let progress = match &run {
            Some(run) => {
                let state = self.ledger.get_run(run).map_err(ledger_error)?.map(|r| r.state());
                if state.is_some_and(|s| s.is_terminal()) {
                    tracing::info!(task = self.task, run = %run, job = job_id, "the run is finished; its results are not read again");
                    return Ok(());
                }
                crate::fault::point("listener.event_received");
                self.ledger.results_started(run, event.template_view()).map_err(ledger_error)?.progress
            }
            None => StageProgress::default(),
        };
        let generation = progress.bus_generation;
        let stream = Stream { task: self, job: &job, run: run.as_ref(), event: &event, generation };
        stream.refetch_unpublished(&client, &progress, out).await?;
        if progress.all_pages_fetched() {
            if let Some(run) = &run {
                self.ledger.settle(run).map_err(ledger_error)?;
            }
            return Ok(());
        }
        stream.read_on(client, &progress, out).await
    }

    fn fail_run(&self, run: &RunId, message: &str) -> Result<(), TaskError> {
        if let Some(r) = self.ledger.get_run(run).map_err(ledger_error)?
            && !r.state().is_terminal()
            && r.state() != RunState::Failed
        {
            self.ledger.transition(run, crate::run::Transition::Fail(message.to_owned())).map_err(ledger_error)?;
        }
        Ok(())
    }
}

/// One reading of one job's results.
struct Stream<'a> {
    task: &'a ResultsTask<'a>,
    job: &'a JobInfo,
    run: Option<&'a RunId>,
    event: &'a Event,
    /// The run's bus generation, which the batches carry to the bus (see `wire::BUS_GENERATION`).
    generation: u32,
}

impl Stream<'_> {
    fn reader(&self, client: Arc<SalesforceClient>, resume: Option<(u64, String, u64)>) -> ResultsReader {
        ResultsReader::new(client, self.job.clone(), self.task.batch_size, self.task.max_records, resume)
    }

    /// Pages read before whose batches the bus has not all acknowledged: read each again by its
    /// locator and emit only the missing batches.
    async fn refetch_unpublished(
        &self,
        client: &Arc<SalesforceClient>,
        progress: &StageProgress,
        out: &mut Emitter,
    ) -> Result<(), TaskError> {
        let total = progress.all_pages_fetched().then_some(progress.batches_fetched);
        for number in 0..progress.pages.len() {
            let Some((first, rows_before, mark)) = progress.page_start(number) else { break };
            let missing: Vec<u64> =
                (first..first + mark.batches).filter(|b| !progress.batches_published.contains(b)).collect();
            if missing.is_empty() {
                continue;
            }
            let resume = mark.locator.clone().map(|l| (number as u64, l, rows_before));
            let page = self
                .reader(client.clone(), resume)
                .one_page()
                .next_page()
                .await
                .map_err(to_task_error)?
                .ok_or_else(|| TaskError::Fatal(format!("job {}: page {number} is gone", self.job.id)))?;
            if page.batches.len() as u64 != mark.batches {
                return Err(TaskError::Fatal(format!(
                    "job {}: page {number} now holds {} batches, {} when first read (was batch_size changed?)",
                    self.job.id,
                    page.batches.len(),
                    mark.batches
                )));
            }
            tracing::info!(
                task = self.task.task,
                job = self.job.id,
                page = number,
                batches = missing.len(),
                "emitting again the batches the bus did not acknowledge"
            );
            self.emit_page(page, first, total, |seq| missing.contains(&seq), out).await?;
        }
        Ok(())
    }

    /// Reads the pages not read yet, from the stored next locator, checkpointing each.
    async fn read_on(
        &self,
        client: Arc<SalesforceClient>,
        progress: &StageProgress,
        out: &mut Emitter,
    ) -> Result<(), TaskError> {
        let resume = progress.next_locator.clone().map(|l| (progress.pages_fetched, l, progress.records_fetched));
        let mut reader = self.reader(client, resume);
        let mut seq = progress.batches_fetched;
        while let Some(page) = reader.next_page().await.map_err(to_task_error)? {
            let (number, next) = (page.number, page.next.clone());
            let mark = PageMark { locator: page.locator.clone(), rows: page.rows, batches: page.batches.len() as u64 };
            let total = next.is_none().then_some(seq + mark.batches);
            self.emit_page(page, seq, total, |_| true, out).await?;
            seq += mark.batches;
            crate::fault::point("results.page_parsed");
            if let Some(run) = self.run {
                self.task.ledger.page_fetched(run, number, mark, next).map_err(ledger_error)?;
            }
        }
        tracing::info!(
            task = self.task.task,
            job = self.job.id,
            records = reader.rows(),
            batches = seq,
            "fetched all results"
        );
        Ok(())
    }

    /// Emits the batches of `page` (the first numbered `first`) that `wanted` selects.
    async fn emit_page(
        &self,
        page: Page,
        first: u64,
        total: Option<u64>,
        wanted: impl Fn(u64) -> bool,
        out: &mut Emitter,
    ) -> Result<(), TaskError> {
        for (i, batch) in page.batches.into_iter().enumerate() {
            let seq = first + i as u64;
            if !wanted(seq) {
                continue;
            }
            let mut meta: Map<String, Value> = self.event.meta.clone();
            meta.insert("job_id".into(), json!(self.job.id));
            if let Some(run) = self.run {
                meta.insert("run_id".into(), json!(run.as_str()));
            }
            meta.insert("page".into(), json!(page.number));
            meta.insert("batch_seq".into(), json!(seq));
            if self.generation > 0 {
                meta.insert(crate::bus::wire::BUS_GENERATION.into(), json!(self.generation));
            }
            if let Some(total) = total.filter(|t| seq + 1 == *t) {
                meta.insert("total_batches".into(), json!(total));
            }
            let id = format!("{}-p{:05}-b{:04}", self.job.id, page.number, i);
            out.emit(Event { id, subject: None, data: EventData::Arrow(batch), meta, created_at: Utc::now() }).await?;
        }
        Ok(())
    }
}
