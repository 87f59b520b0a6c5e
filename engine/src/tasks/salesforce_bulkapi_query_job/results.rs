//! `get_results`: a completed job's results as Arrow batches, resumable from the run's checkpoint.
//!
//! Batch identity is deterministic (`<job>-p<page>-b<index>`, sequence numbers counted across
//! pages), so a page read twice yields the same batches and the bus and sinks drop the repeats. On
//! a run that was read before (a restart, a redelivered completion event, a retry), pages whose
//! batches the bus never acknowledged are fetched again by their stored locators and only those
//! batches are emitted; reading then continues from the stored next locator.
//!
//! With `deleted_records`, the run's results end with one more page that Salesforce never
//! serves: the records its `deleted` resource reports gone since the flow's last written run, as
//! tombstones. It is checkpointed like any page (its locator is [`DELETED_PAGE`], its window
//! fixed by the watermark and the job's creation), so it is read again, not lost, after a crash.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::event::{Event, EventData, RunTag};
use crate::run::{INTENT_STAGE, Ledger, PageMark, RunId, RunState, StageProgress};
use crate::runtime::processor::{Emitter, TaskError};
use crate::salesforce::bulk::{self, JobInfo};
use crate::salesforce::error::SalesforceError;
use crate::salesforce::options::{ColumnDelimiter, LineEnding, QueryOperation};
use crate::salesforce::results::{Page, ResultsReader};
use crate::salesforce::{SalesforceClient, deleted};
use crate::warehouse::sweep::SweepPart;

pub(super) struct ResultsTask<'a> {
    pub task: &'a str,
    pub batch_size: usize,
    pub max_records: Option<usize>,
    pub ledger: &'a Ledger,
    pub deleted_records: bool,
}

/// A run's sweep: its name and when its live `Id`s were read.
struct Sweep {
    name: String,
    before: DateTime<Utc>,
}

/// The locator of the page of deleted records that ends a run's results (not Salesforce's).
pub const DELETED_PAGE: &str = "bulkflow:deleted";
/// How far before the last written run's scheduled time deletes are asked for, as the seed's
/// query flow looks back an hour for changes.
const DELETED_OVERLAP: chrono::Duration = chrono::Duration::hours(1);

impl ResultsTask<'_> {
    pub async fn run(
        &self,
        client: Arc<SalesforceClient>,
        job_id: &str,
        event: Event,
        out: &mut Emitter,
    ) -> Result<(), TaskError> {
        let run = match crate::event::RunTag::of(&event.meta).run {
            Some(r) => Some(r),
            None => self.ledger.run_for_job(job_id)?,
        };
        let read = self.read(client, job_id, run.clone(), event, out).await;
        // A read that failed leaves the run where it was until the event comes again or the
        // completion poller stands in for it: the run says why meanwhile.
        if let Some(run) = &run {
            match &read {
                Ok(()) => self.ledger.clear_waiting(run)?,
                Err(e) => {
                    let why = format!(
                        "reading its results failed: {e}; they are read again once the run has been quiet for job_poll_after"
                    );
                    self.ledger.note_waiting(run, &why)?;
                }
            }
        }
        read
    }

    async fn read(
        &self,
        client: Arc<SalesforceClient>,
        job_id: &str,
        run: Option<RunId>,
        event: Event,
        out: &mut Emitter,
    ) -> Result<(), TaskError> {
        if let Some(run) = &run
            && let Some(record) = self.ledger.get_run(run)?
            && record.job_id().is_some_and(|own| own != job_id)
        {
            // The job a run made to read every live Id for its sweep: the run reads it itself.
            tracing::info!(task = self.task, run = %run, job = job_id, "not the run's export job; its results are not read here");
            return Ok(());
        }
        // One read per run at a time: a second event for it (the poller's stand-in, Salesforce
        // sending it again) while the first is read would only fetch the same pages twice.
        let _reading = match &run {
            Some(run) => match self.ledger.start_reading(run) {
                Some(reading) => Some(reading),
                None => {
                    tracing::info!(task = self.task, run = %run, job = job_id, "the run's results are being read already");
                    return Ok(());
                }
            },
            None => None,
        };
        let job = bulk::get_job(&client, job_id).await?;
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
                let state = self.ledger.get_run(run)?.map(|r| r.state());
                if state.is_some_and(|s| s.is_terminal()) {
                    tracing::info!(task = self.task, run = %run, job = job_id, "the run is finished; its results are not read again");
                    return Ok(());
                }
                crate::fault::point("listener.event_received");
                self.ledger.results_started(run, event.template_view())?.progress
            }
            None => StageProgress::default(),
        };
        let progress = match &run {
            Some(run) => self.publishes_landed(run, progress).await?,
            None => progress,
        };
        let generation = progress.bus_generation;
        let stream = Stream { task: self, job: &job, run: run.as_ref(), event: &event, generation };
        stream.refetch_unpublished(&client, &progress, out).await?;
        if progress.all_pages_fetched() {
            if let Some(run) = &run {
                self.ledger.settle(run)?;
            }
            return Ok(());
        }
        stream.read_on(client, &progress, out).await
    }

    /// The run's progress once batches still on their way to the bus have landed. A second event
    /// for the run (the poller's stand-in) can arrive just as a reading ends, while its last
    /// batches are being published: read again at once, their pages would be fetched a second
    /// time for nothing. So while batches are unpublished, wait until that number stops falling
    /// for [`PUBLISHES_QUIET`]; after a crash it never falls, and costs that much once.
    async fn publishes_landed(&self, run: &RunId, mut progress: StageProgress) -> Result<StageProgress, TaskError> {
        let unpublished = |p: &StageProgress| p.batches_fetched.saturating_sub(p.batches_published.len() as u64);
        let mut quiet_since = std::time::Instant::now();
        while unpublished(&progress) > 0 && quiet_since.elapsed() < PUBLISHES_QUIET {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let Some(cp) = self.ledger.checkpoint(run, crate::run::RESULTS_STAGE)? else { break };
            if unpublished(&cp.progress) < unpublished(&progress) {
                quiet_since = std::time::Instant::now();
            }
            progress = cp.progress;
        }
        Ok(progress)
    }

    fn fail_run(&self, run: &RunId, message: &str) -> Result<(), TaskError> {
        if let Some(r) = self.ledger.get_run(run)?
            && !r.state().is_terminal()
            && r.state() != RunState::Failed
        {
            self.ledger.transition(run, crate::run::Transition::Fail(message.to_owned()))?;
        }
        Ok(())
    }
}

/// How long the number of unpublished batches must stay put before their pages are read again.
const PUBLISHES_QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// One reading of one job's results.
struct Stream<'a> {
    task: &'a ResultsTask<'a>,
    job: &'a JobInfo,
    run: Option<&'a RunId>,
    event: &'a Event,
    /// The run's bus generation, which the batches carry to the bus (see `event::meta::BUS_GENERATION`).
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
            if mark.locator.as_deref() == Some(DELETED_PAGE) {
                tracing::info!(
                    task = self.task.task,
                    job = self.job.id,
                    page = number,
                    "emitting again the deleted records"
                );
                let (page, sweep) = self.deleted_page(client, number as u64).await?;
                if page.batches.len() as u64 != mark.batches {
                    return Err(TaskError::Fatal(format!(
                        "job {}: the deleted records now make {} batches, {} when first read",
                        self.job.id,
                        page.batches.len(),
                        mark.batches
                    )));
                }
                self.emit_page(page, first, total, sweep.as_ref(), |seq| missing.contains(&seq), out).await?;
                continue;
            }
            let resume = mark.locator.clone().map(|l| (number as u64, l, rows_before));
            let page = self
                .reader(client.clone(), resume)
                .one_page()
                .next_page()
                .await?
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
            self.emit_page(page, first, total, None, |seq| missing.contains(&seq), out).await?;
        }
        Ok(())
    }

    /// Reads the pages not read yet, from the stored next locator, checkpointing each; then, with
    /// `deleted_records`, the page of deleted records.
    async fn read_on(
        &self,
        client: Arc<SalesforceClient>,
        progress: &StageProgress,
        out: &mut Emitter,
    ) -> Result<(), TaskError> {
        let deleted_page = match self.run {
            Some(_) if self.task.deleted_records => true,
            Some(run) => self
                .task
                .ledger
                .checkpoint(run, INTENT_STAGE)?
                .is_some_and(|i| i.input.get("deleted_records").and_then(serde_json::Value::as_bool) == Some(true)),
            None => false,
        };
        let mut seq = progress.batches_fetched;
        let mut number = progress.pages_fetched;
        let mut rows = progress.records_fetched;
        if progress.next_locator.as_deref() != Some(DELETED_PAGE) {
            let resume = progress.next_locator.clone().map(|l| (progress.pages_fetched, l, progress.records_fetched));
            let mut reader = self.reader(client.clone(), resume);
            while let Some(page) = reader.next_page().await? {
                let mark =
                    PageMark { locator: page.locator.clone(), rows: page.rows, batches: page.batches.len() as u64 };
                let next = match page.next.clone() {
                    None if deleted_page => Some(DELETED_PAGE.to_string()),
                    next => next,
                };
                let total = next.is_none().then_some(seq + mark.batches);
                number = page.number + 1;
                self.emit_page(page, seq, total, None, |_| true, out).await?;
                seq += mark.batches;
                crate::fault::point("results.page_parsed");
                if let Some(run) = self.run {
                    self.task.ledger.page_fetched(run, number - 1, mark, next)?;
                }
            }
            rows = reader.rows();
        }
        if deleted_page {
            let (page, sweep) = self.deleted_page(&client, number).await?;
            let mark =
                PageMark { locator: Some(DELETED_PAGE.into()), rows: page.rows, batches: page.batches.len() as u64 };
            rows += page.rows;
            self.emit_page(page, seq, Some(seq + mark.batches), sweep.as_ref(), |_| true, out).await?;
            seq += mark.batches;
            if let Some(run) = self.run {
                self.task.ledger.page_fetched(run, number, mark, None)?;
            }
        }
        tracing::info!(task = self.task.task, job = self.job.id, records = rows, batches = seq, "fetched all results");
        Ok(())
    }

    /// The page of records deleted since the flow's last written run, up to the job's creation
    /// (later deletes are the next run's: this run's results may still hold those records live).
    /// Empty on a flow's first run, whose results are the whole live set. When Salesforce no
    /// longer reports deletes that far back, the page is instead every live `Id`, as the parts of
    /// a sweep (returned beside the page) that removes the warehouse's other rows.
    async fn deleted_page(
        &self,
        client: &Arc<SalesforceClient>,
        number: u64,
    ) -> Result<(Page, Option<Sweep>), TaskError> {
        let empty = Page { number, locator: Some(DELETED_PAGE.into()), next: None, rows: 0, batches: Vec::new() };
        let Some(run) = self.run else { return Ok((empty, None)) };
        if let Some(job) = self.task.ledger.sweep_job(run)? {
            // A sweep was begun before a restart: read the same job, so the parts are the same.
            return self.live_ids_page(client, number, run, Some(job)).await.map(|(p, s)| (p, Some(s)));
        }
        let flow = self.task.ledger.get_run(run)?.map(|r| r.flow().to_string());
        let watermark = match flow {
            Some(flow) => self.task.ledger.watermark(&flow)?,
            None => None,
        };
        let Some(since) = watermark.and_then(|w| DateTime::from_timestamp(w, 0)) else { return Ok((empty, None)) };
        let until = self.job.created_date().unwrap_or_else(Utc::now);
        let Some((start, end, clamped)) = deleted::askable(since - DELETED_OVERLAP, until, Utc::now()) else {
            return Ok((empty, None));
        };
        let found = if clamped {
            None
        } else {
            match deleted::get_deleted(client, &self.job.object, start, end).await {
                Ok(found) if found.earliest_available <= start => Some(found),
                Ok(_) => None,
                Err(SalesforceError::Api { code, .. }) if code == "INVALID_REPLICATION_DATE" => None,
                Err(e) => return Err(e.into()),
            }
        };
        let Some(found) = found else {
            tracing::warn!(
                task = self.task.task,
                run = %run,
                object = self.job.object,
                since = %since,
                "Salesforce no longer reports deletes since {since}: reconciling by Id (reading every live Id)"
            );
            return self.live_ids_page(client, number, run, None).await.map(|(p, s)| (p, Some(s)));
        };
        let records: Vec<(String, DateTime<Utc>)> = found.records.into_iter().filter(|(_, at)| *at < until).collect();
        tracing::info!(task = self.task.task, run = %run, object = self.job.object, deleted = records.len(), from = %start, to = %until, "read the deleted records");
        let rows = records.len() as u64;
        if records.is_empty() {
            return Ok((empty, None));
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("Id", DataType::Utf8, false),
            Field::new("IsDeleted", DataType::Utf8, false),
            Field::new("SystemModstamp", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(records.iter().map(|(id, _)| id.as_str()))),
            Arc::new(StringArray::from_iter_values(records.iter().map(|_| "true"))),
            Arc::new(StringArray::from_iter_values(
                records.iter().map(|(_, at)| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            )),
        ];
        let batch = RecordBatch::try_new(schema, columns)
            .map_err(|e| TaskError::Fatal(format!("job {}: the deleted records' batch: {e}", self.job.id)))?;
        Ok((Page { number, locator: Some(DELETED_PAGE.into()), next: None, rows, batches: vec![batch] }, None))
    }

    /// Every live `Id` of the object, read by a Bulk job of its own (`SELECT Id`, a `query`: the
    /// Recycle Bin is not live), made once per run and named in the ledger so a resumed run reads
    /// the same job (`recorded`, the ledger's). One batch per results batch, at least one (an
    /// object with no live record still sweeps).
    async fn live_ids_page(
        &self,
        client: &Arc<SalesforceClient>,
        number: u64,
        run: &RunId,
        recorded: Option<String>,
    ) -> Result<(Page, Sweep), TaskError> {
        let known = match recorded {
            Some(id) => match bulk::get_job(client, &id).await {
                Ok(job) => Some(job),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let mut job = match known {
            Some(job) => job,
            None => {
                let soql = format!("SELECT Id FROM {}", self.job.object);
                let create = bulk::CreateJob {
                    soql: &soql,
                    operation: QueryOperation::Query,
                    column_delimiter: ColumnDelimiter::Comma,
                    line_ending: LineEnding::Lf,
                };
                let job = bulk::post_job(client, &create).await?;
                self.task.ledger.record_sweep_job(run, &job.id)?;
                tracing::info!(task = self.task.task, run = %run, job = job.id, object = self.job.object, "created the job that reads every live Id");
                job
            }
        };
        let mut wait = std::time::Duration::from_millis(250);
        while !job.check_finished()? {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(10));
            job = bulk::get_job(client, &job.id).await?;
        }
        let before = job.created_date().unwrap_or_else(Utc::now);
        let job_id = job.id.clone();
        let mut reader = ResultsReader::new(client.clone(), job, self.task.batch_size, None, None);
        let mut batches = Vec::new();
        while let Some(page) = reader.next_page().await? {
            batches.extend(page.batches);
        }
        let rows = reader.rows();
        if batches.is_empty() {
            let schema = Arc::new(Schema::new(vec![Field::new("Id", DataType::Utf8, false)]));
            batches.push(RecordBatch::new_empty(schema));
        }
        tracing::info!(task = self.task.task, run = %run, job = job_id, live = rows, parts = batches.len(), "read every live Id");
        let page = Page { number, locator: Some(DELETED_PAGE.into()), next: None, rows: 0, batches };
        Ok((page, Sweep { name: run.to_string(), before }))
    }

    /// Emits the batches of `page` (the first numbered `first`) that `wanted` selects.
    async fn emit_page(
        &self,
        page: Page,
        first: u64,
        total: Option<u64>,
        sweep: Option<&Sweep>,
        wanted: impl Fn(u64) -> bool,
        out: &mut Emitter,
    ) -> Result<(), TaskError> {
        let parts = page.batches.len() as u64;
        for (i, batch) in page.batches.into_iter().enumerate() {
            let seq = first + i as u64;
            if !wanted(seq) {
                continue;
            }
            let mut meta: Map<String, Value> = self.event.meta.clone();
            RunTag {
                run: self.run.cloned(),
                job: Some(self.job.id.clone()),
                page: Some(page.number),
                batch_seq: Some(seq),
                total_batches: total.filter(|t| seq + 1 == *t),
                bus_generation: (self.generation > 0).then_some(u64::from(self.generation)),
            }
            .write_to(&mut meta);
            if let Some(sweep) = sweep {
                let part = SweepPart { sweep: sweep.name.clone(), part: i as u64, parts, before: sweep.before };
                part.write_to(&mut meta);
            }
            let id = format!("{}-p{:05}-b{:04}", self.job.id, page.number, i);
            out.emit(Event { id, subject: None, data: EventData::Arrow(batch), meta, created_at: Utc::now() }).await?;
        }
        Ok(())
    }
}
