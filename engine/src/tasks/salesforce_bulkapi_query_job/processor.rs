//! Bulk API 2.0 query jobs as a task: create one (recorded on the event's run), read its info or
//! its results (streamed page by page into Arrow batches), abort or delete it.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};

use super::config::{BulkQueryJobConfig, ColumnDelimiter, LineEnding, Operation, QueryOperation};
use super::results::ResultsTask;
use crate::event::{Event, EventData};
use crate::flow::template::{Context, Template};
use crate::run::{Checkpoint, Ledger, RunId, Update};
use crate::runtime::build::EnvLookup;
use crate::runtime::processor::{BoxFuture, Emitter, Processor, TaskError};
use crate::salesforce::bulk::{self, CreateJob, JobInfo};
use crate::salesforce::{Clients, SalesforceClient, SalesforceError};

/// Rows per Arrow batch when the flow does not say.
pub const DEFAULT_BATCH_SIZE: usize = 10_000;
/// Where the intent to create a job is recorded before the POST.
pub const INTENT_STAGE: &str = "job_intent";

pub struct BulkQueryJobProcessor {
    pub task: String,
    pub config: BulkQueryJobConfig,
    pub query: Option<Template>,
    pub clients: Arc<Clients>,
    pub ledger: Arc<Ledger>,
    pub env: EnvLookup,
}

pub(super) fn to_task_error(e: SalesforceError) -> TaskError {
    if e.is_retryable() { TaskError::Retryable(e.to_string()) } else { TaskError::Fatal(e.to_string()) }
}

pub(super) fn ledger_error(e: crate::run::LedgerError) -> TaskError {
    TaskError::Fatal(format!("state store: {e}"))
}

impl Processor for BulkQueryJobProcessor {
    fn process<'a>(&'a self, event: Event, out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let client = self.clients.get(Path::new(&self.config.credentials_path)).map_err(to_task_error)?;
            match self.config.operation {
                Operation::Create => self.create(&client, event, out).await,
                Operation::Get => {
                    let job = bulk::get_job(&client, &self.job_id(&event)?).await.map_err(to_task_error)?;
                    out.emit(with_job(event, &job)).await
                }
                Operation::Abort => {
                    let job = bulk::abort_job(&client, &self.job_id(&event)?).await.map_err(to_task_error)?;
                    out.emit(with_job(event, &job)).await
                }
                Operation::Delete => {
                    bulk::delete_job(&client, &self.job_id(&event)?).await.map_err(to_task_error)?;
                    out.emit(event).await
                }
                Operation::GetResults => {
                    let reading = ResultsTask {
                        task: &self.task,
                        batch_size: self.config.batch_size.map_or(DEFAULT_BATCH_SIZE, |n| n.get()),
                        max_records: self.config.max_records.map(|n| n.get()),
                        ledger: &self.ledger,
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
    event.meta.insert("job_id".into(), json!(job.id));
    event
}

pub(super) fn run_of(event: &Event) -> Option<RunId> {
    event.meta.get("run_id").and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// The sObject a query reads, from its FROM clause, to recognise its job in the org's list.
fn query_object(soql: &str) -> Option<String> {
    let words: Vec<&str> = soql.split_whitespace().collect();
    words.iter().position(|w| w.eq_ignore_ascii_case("from")).and_then(|i| words.get(i + 1)).map(|w| w.to_string())
}

impl BulkQueryJobProcessor {
    fn render(&self, template: &Template, event: &Event) -> Result<String, TaskError> {
        let view = event.template_view();
        let env = |n: &str| (self.env)(n);
        template
            .render_string(&Context { event: Some(&view), env: &env })
            .map_err(|e| TaskError::Fatal(format!("task `{}`: {e}", self.task)))
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
        let operation = self.config.query_operation.unwrap_or(QueryOperation::Query);
        let run = run_of(&event);
        if let Some(run) = &run {
            // A redelivered event for a run that already has its job: never a second job.
            if let Some(existing) =
                self.ledger.get_run(run).map_err(ledger_error)?.and_then(|r| r.job_id().map(str::to_string))
            {
                let job = bulk::get_job(client, &existing).await.map_err(to_task_error)?;
                return out.emit(with_job(event, &job)).await;
            }
            if let Some(intent) = self.ledger.checkpoint(run, INTENT_STAGE).map_err(ledger_error)?
                && let Some(job) = self.adopt(client, &intent, &soql, operation).await?
            {
                self.ledger.record_job(run, &job.id).map_err(ledger_error)?;
                tracing::info!(run = %run, job = job.id, "adopted the job created before a restart");
                return out.emit(with_job(event, &job)).await;
            }
            let intent = Checkpoint::new(INTENT_STAGE, json!({"soql": soql, "operation": format!("{operation:?}")}));
            self.ledger.update(run, &Update::new().checkpoint(intent)).map_err(ledger_error)?;
        }
        let job = bulk::create_job(
            client,
            &CreateJob {
                soql: &soql,
                operation,
                column_delimiter: self.config.column_delimiter.unwrap_or(ColumnDelimiter::Comma),
                line_ending: self.config.line_ending.unwrap_or(LineEnding::Lf),
            },
        )
        .await
        .map_err(to_task_error)?;
        if let Some(run) = &run {
            self.ledger.record_job(run, &job.id).map_err(ledger_error)?;
        }
        tracing::info!(task = self.task, job = job.id, object = job.object, run = ?run.as_ref().map(RunId::as_str), "created Bulk API query job");
        out.emit(with_job(event, &job)).await
    }

    /// After a crash between recording the intent and recording the job: the job the POST may
    /// have created (see [`adopt_job`]).
    async fn adopt(
        &self,
        client: &SalesforceClient,
        intent: &Checkpoint,
        soql: &str,
        operation: QueryOperation,
    ) -> Result<Option<JobInfo>, TaskError> {
        let owned = |job: &str| self.ledger.run_for_job(job).ok().flatten().is_some();
        adopt_job(client, intent.updated_at, soql, operation, &owned).await.map_err(to_task_error)
    }
}

/// The job a POST made after `intent_at` may have created, found among the org's jobs by object,
/// operation and time, leaving out the jobs `taken` says belong elsewhere (another run's, or the
/// job being replaced). One match is adopted; extra matches are aborted so a run never has two
/// live jobs.
pub async fn adopt_job(
    client: &SalesforceClient,
    intent_at: chrono::DateTime<Utc>,
    soql: &str,
    operation: QueryOperation,
    taken: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Option<JobInfo>, SalesforceError> {
    let object = query_object(soql).unwrap_or_default();
    let since = intent_at - chrono::Duration::seconds(5);
    let op = match operation {
        QueryOperation::Query => "query",
        QueryOperation::QueryAll => "queryAll",
    };
    let mut matches: Vec<JobInfo> = bulk::list_jobs(client)
        .await?
        .into_iter()
        .filter(|j| j.object.eq_ignore_ascii_case(&object))
        .filter(|j| j.raw.get("operation").and_then(Value::as_str) == Some(op))
        .filter(|j| created_at(j).is_some_and(|t| t >= since))
        .filter(|j| !taken(&j.id))
        .collect();
    matches.sort_by_key(created_at);
    let mut it = matches.into_iter();
    let adopted = it.next();
    for orphan in it {
        if orphan.check_finished().ok() == Some(false) {
            tracing::warn!(job = orphan.id, "aborting an orphan job created before a restart");
            let _ = bulk::abort_job(client, &orphan.id).await;
        }
    }
    Ok(adopted)
}

fn created_at(job: &JobInfo) -> Option<chrono::DateTime<Utc>> {
    let text = job.raw.get("createdDate")?.as_str()?;
    chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z").ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_of_a_query() {
        let soql = include_str!("../../../../resources/salesforce/query_account.soql");
        assert_eq!(query_object(soql).as_deref(), Some("Account"));
        assert_eq!(query_object("select Id from contact").as_deref(), Some("contact"));
        assert_eq!(query_object("SELECT Id"), None);
    }
}
