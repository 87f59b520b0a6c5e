//! Bulk API 2.0 query jobs as a task: create one (recorded on the event's run), read its info or
//! its results (streamed page by page into Arrow batches), abort or delete it.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::config::{BulkQueryJobConfig, ColumnDelimiter, LineEnding, Operation, QueryOperation};
use super::results::ResultsTask;
use crate::env::EnvLookup;
use crate::event::{Event, EventData};
use crate::flow::template::Template;
use crate::run::{Checkpoint, Ledger, Update};
use crate::runtime::processor::{BoxFuture, Emitter, Processor, TaskError};
use crate::salesforce::bulk::{self, CreateJob, JobInfo};
use crate::salesforce::job_create::{self, CreateGuard};
use crate::salesforce::{Clients, SalesforceClient, SalesforceError};

/// Rows per Arrow batch when the flow does not say.
pub const DEFAULT_BATCH_SIZE: usize = 10_000;
pub use crate::run::INTENT_STAGE;

pub struct BulkQueryJobProcessor {
    pub task: String,
    pub config: BulkQueryJobConfig,
    pub query: Option<Template>,
    pub clients: Arc<Clients>,
    pub ledger: Arc<Ledger>,
    pub env: EnvLookup,
}

impl Processor for BulkQueryJobProcessor {
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let client = self.clients.get(Path::new(&self.config.credentials_path))?;
            match self.config.operation {
                Operation::Create => self.create(&client, event, out).await,
                Operation::Get => {
                    let job = bulk::get_job(&client, &self.job_id(&event)?).await?;
                    out.emit(with_job(event, &job)).await
                }
                Operation::Abort => {
                    let job = bulk::abort_job(&client, &self.job_id(&event)?).await?;
                    out.emit(with_job(event, &job)).await
                }
                Operation::Delete => {
                    bulk::delete_job(&client, &self.job_id(&event)?).await?;
                    out.emit(event).await
                }
                Operation::GetResults => {
                    let reading = ResultsTask {
                        task: &self.task,
                        batch_size: self.config.batch_size.map_or(DEFAULT_BATCH_SIZE, |n| n.get()),
                        max_records: self.config.max_records.map(|n| n.get()),
                        ledger: &self.ledger,
                        deleted_records: self.config.deleted_records,
                        // The run's job-creating task may ask for them (see `deleted_records`).
                    };
                    let job_id = self.job_id(&event)?;
                    reading.run(client, &job_id, event, out).await
                }
            }
        })
    }
}

/// The job's info becomes the event's data, and its id goes into `meta.job_id`.
fn with_job(mut event: Event, job: &JobInfo) -> Event {
    event.data = EventData::Json(job.raw.clone());
    event.meta.insert(crate::event::meta::JOB_ID.into(), json!(job.id));
    event
}

impl BulkQueryJobProcessor {
    fn render(&self, template: &Template, event: &Event) -> Result<String, TaskError> {
        event.render(template, &self.env).map_err(|e| TaskError::Fatal(format!("task `{}`: {e}", self.task)))
    }

    fn job_id(&self, event: &Event) -> Result<String, TaskError> {
        let t = self.config.job_id.as_ref().ok_or_else(|| TaskError::Fatal("no job_id configured".into()))?;
        let id = self.render(t, event)?;
        if id.is_empty() {
            return Err(TaskError::Fatal(format!("task `{}`: job_id `{}` rendered empty", self.task, t.source())));
        }
        Ok(id)
    }

    async fn create(&self, client: &SalesforceClient, event: Event, out: &mut Emitter) -> Result<(), TaskError> {
        let template = self.query.as_ref().ok_or_else(|| TaskError::Fatal("no query configured".into()))?;
        let soql = self.render(template, &event)?;
        let request = CreateJob {
            soql: &soql,
            operation: self.config.query_operation.unwrap_or(QueryOperation::Query),
            column_delimiter: self.config.column_delimiter.unwrap_or(ColumnDelimiter::Comma),
            line_ending: self.config.line_ending.unwrap_or(LineEnding::Lf),
        };
        let Some(run) = crate::event::RunTag::of(&event.meta).run else {
            let job = job_create::create_job_unrecorded(client, &request).await?;
            tracing::info!(task = self.task, job = job.id, object = job.object, "created Bulk API query job");
            return out.emit(with_job(event, &job)).await;
        };
        // A redelivered event for a run that already has its job: never a second job.
        if let Some(existing) = self.ledger.get_run(&run)?.and_then(|r| r.job_id().map(str::to_string)) {
            let job = bulk::get_job(client, &existing).await?;
            return out.emit(with_job(event, &job)).await;
        }
        let taken = |job: &str| self.ledger.run_for_job(job).ok().flatten().is_some();
        // A POST made before a crash or a failed attempt may have created the job.
        if let Some(intent) = self.ledger.checkpoint(&run, INTENT_STAGE)?
            && let Some(job) = job_create::find_own_job(client, intent.updated_at, &request, &taken).await?
        {
            self.ledger.record_job(&run, &job.id)?;
            tracing::info!(run = %run, job = job.id, "adopted the job a create made before a restart");
            return out.emit(with_job(event, &job)).await;
        }
        let operation = request.operation;
        let deleted_records = self.config.deleted_records;
        let mut record_intent = || {
            let intent = Checkpoint::new(
                INTENT_STAGE,
                json!({"soql": soql, "operation": format!("{operation:?}"), "deleted_records": deleted_records}),
            );
            self.ledger
                .update(&run, &Update::new().checkpoint(intent))
                .map(|r| r.updated_at())
                .map_err(|e| SalesforceError::State(e.to_string()))
        };
        let guard = CreateGuard { taken: &taken, before_post: &mut record_intent };
        let job = job_create::create_job(client, &request, guard).await?;
        crate::fault::point("query.job_created");
        self.ledger.record_job(&run, &job.id)?;
        tracing::info!(task = self.task, job = job.id, object = job.object, run = %run, "created Bulk API query job");
        out.emit(with_job(event, &job)).await
    }
}
