//! The completion poller: what moves a run on when Salesforce's completion event never arrives,
//! and what notices batches the bus lost.
//!
//! Events are missed while the process is down, a replay id can expire, and `BulkApi2JobEvent`
//! is a beta an org may not have enabled. So a run that has been quiet for `job_poll_after`
//! (no state change, no progress) has its job polled; a finished job is handed to the listening
//! flow as the completion event Salesforce would have sent, and that flow reads the results from
//! the run's checkpoint on. A run stuck at `published` (a writer flow never got some batches: the
//! stream's limits discarded them, or it was purged) has those batches marked unpublished and is
//! handed over the same way, so they are fetched again by their locators and republished. A
//! run whose job vanished in Salesforce (404: deleted, expired after 7 days, a refreshed org) gets
//! a new job for the same query, recorded in its place, and goes on from `job_created`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::event::Event;
use crate::flow::{Flow, TaskKind};
use crate::run::{Checkpoint, Update};
use crate::run::{Ledger, RESULTS_STAGE, RunRecord, RunState, Transition};
use crate::runtime::inject::Injector;
use crate::salesforce::bulk::CreateJob;
use crate::salesforce::{Clients, SalesforceError, bulk};
use crate::tasks::salesforce_bulkapi_query_job::config::{
    BulkQueryJobConfig, ColumnDelimiter, LineEnding, Operation, QueryOperation,
};
use crate::tasks::salesforce_bulkapi_query_job::processor::{INTENT_STAGE, adopt_job};

/// The topic whose events the poller stands in for.
pub const JOB_EVENT_TOPIC: &str = "/event/BulkApi2JobEvent";

pub struct Poller {
    pub ledger: Arc<Ledger>,
    pub clients: Arc<Clients>,
    pub injector: Arc<Injector>,
    pub quiet_after: Duration,
    /// Each query flow's job-creating task: its credentials file and job options.
    pub creators: HashMap<String, BulkQueryJobConfig>,
    /// Whether some flow of this node listens for job events (else nothing can take the kick).
    pub listener: bool,
}

impl Poller {
    pub fn new(
        flows: &[Flow],
        ledger: Arc<Ledger>,
        clients: Arc<Clients>,
        injector: Arc<Injector>,
        quiet_after: Duration,
    ) -> Self {
        let creators = flows
            .iter()
            .filter_map(|f| {
                f.tasks.iter().find_map(|t| match &t.kind {
                    TaskKind::BulkQueryJob { config, .. } if config.operation == Operation::Create => {
                        Some((f.name.clone(), config.clone()))
                    }
                    _ => None,
                })
            })
            .collect();
        let listener = flows.iter().any(|f| {
            matches!(f.tasks.first().map(|t| &t.kind), Some(TaskKind::PubSubSubscriber(c)) if c.topic.name == JOB_EVENT_TOPIC)
        });
        Self { ledger, clients, injector, quiet_after, creators, listener }
    }

    pub async fn run(self) {
        let every = (self.quiet_after / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
        if !self.listener && !self.creators.is_empty() {
            tracing::warn!(
                topic = JOB_EVENT_TOPIC,
                "no flow of this node listens for job events: runs stop at job_created"
            );
        }
        let mut kicked: HashMap<String, DateTime<Utc>> = HashMap::new();
        loop {
            tokio::time::sleep(every).await;
            if !self.listener {
                continue;
            }
            let runs = match self.ledger.resumable_runs() {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "completion poller cannot read the ledger");
                    continue;
                }
            };
            for run in runs {
                let quiet_since =
                    self.last_activity(&run).max(kicked.get(run.id().as_str()).copied().unwrap_or_default());
                let quiet = (Utc::now() - quiet_since).to_std().unwrap_or_default();
                if quiet < self.quiet_after {
                    continue;
                }
                if self.poll(&run).await {
                    kicked.insert(run.id().as_str().to_owned(), Utc::now());
                }
            }
            kicked.retain(|_, at| (Utc::now() - *at).to_std().unwrap_or_default() < self.quiet_after * 4);
        }
    }

    /// The run's last state change or recorded progress.
    fn last_activity(&self, run: &RunRecord) -> DateTime<Utc> {
        let progress = self.ledger.checkpoint(run.id(), RESULTS_STAGE).ok().flatten().map(|cp| cp.updated_at);
        progress.map_or(run.updated_at(), |p| p.max(run.updated_at()))
    }

    /// Polls one quiet run; true if it was handed to the listening flow.
    async fn poll(&self, run: &RunRecord) -> bool {
        let (Some(job), Some(creator)) = (run.job_id(), self.creators.get(run.flow())) else { return false };
        match run.state() {
            RunState::JobCreated | RunState::CompletedEvent | RunState::ResultsFetched => {}
            RunState::Published => match self.ledger.unpublish_unwritten(run.id()) {
                Ok(0) => return false,
                Ok(n) => {
                    tracing::warn!(run = %run.id(), batches = n, "batches published but never written: the bus lost them; fetching them again")
                }
                Err(e) => {
                    tracing::warn!(run = %run.id(), error = %e, "cannot mark lost batches");
                    return false;
                }
            },
            _ => return false,
        }
        let client = match self.clients.get(Path::new(&creator.credentials_path)) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(run = %run.id(), error = %e, "completion poller cannot reach Salesforce");
                return false;
            }
        };
        match bulk::get_job(&client, job).await {
            Ok(info) if info.check_finished().is_ok_and(|done| !done) => false,
            Ok(info) => {
                tracing::info!(run = %run.id(), job, state = info.state, quiet = ?self.quiet_after, "no completion event for the run's job; standing in for it");
                self.injector.send(completion_event(job, &info.state));
                true
            }
            Err(SalesforceError::Api { status: 404, .. }) => {
                self.recreate(run, job, creator, &client).await;
                false
            }
            Err(e) => {
                tracing::warn!(run = %run.id(), job, error = %e, "cannot poll the job");
                false
            }
        }
    }
}

impl Poller {
    /// Replaces the run's vanished job with a new one for the query its intent recorded; fails
    /// the run (visibly; the next run covers its window) only if that cannot be done.
    async fn recreate(
        &self,
        run: &RunRecord,
        job: &str,
        creator: &BulkQueryJobConfig,
        client: &crate::salesforce::SalesforceClient,
    ) {
        let why = format!("job {job} no longer exists in Salesforce (deleted or expired)");
        let intent = self.ledger.checkpoint(run.id(), INTENT_STAGE).ok().flatten();
        let soql = intent.as_ref().and_then(|i| i.input.get("soql")).and_then(|s| s.as_str());
        let operation = match intent.as_ref().and_then(|i| i.input.get("operation")).and_then(|s| s.as_str()) {
            Some("QueryAll") => QueryOperation::QueryAll,
            _ => QueryOperation::Query,
        };
        let Some(soql) = soql else {
            self.fail(
                run,
                format!("{why}, and the run kept no query to create it again; the next run covers its window"),
            );
            return;
        };
        // The new job's intent is recorded before its POST, so a crash between the two is followed
        // by adopting the job the POST made, not by a second one (as the job-creating task does).
        let recreating = self.ledger.checkpoint(run.id(), RECREATE_STAGE).ok().flatten();
        let adopted = match recreating.filter(|cp| cp.input.get("old_job").and_then(|j| j.as_str()) == Some(job)) {
            Some(cp) => {
                let taken = |id: &str| id == job || self.ledger.run_for_job(id).ok().flatten().is_some();
                match adopt_job(client, cp.updated_at, soql, operation, &taken).await {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(run = %run.id(), error = %e, "cannot list jobs to adopt the re-created one; trying again later");
                        return;
                    }
                }
            }
            None => {
                let intent = Checkpoint::new(RECREATE_STAGE, json!({ "old_job": job }));
                if let Err(e) = self.ledger.update(run.id(), &Update::new().checkpoint(intent)) {
                    tracing::warn!(run = %run.id(), error = %e, "cannot record the intent to re-create the job");
                    return;
                }
                None
            }
        };
        let request = CreateJob {
            soql,
            operation,
            column_delimiter: creator.column_delimiter.unwrap_or(ColumnDelimiter::Comma),
            line_ending: creator.line_ending.unwrap_or(LineEnding::Lf),
        };
        let created = match adopted {
            Some(found) => {
                tracing::info!(run = %run.id(), job = found.id, "adopted the job re-created before a restart");
                Ok(found)
            }
            None => bulk::create_job(client, &request).await,
        };
        match created {
            Ok(new) => match self.ledger.replace_job(
                run.id(),
                job,
                &new.id,
                &format!("{why}; created job {} in its place", new.id),
            ) {
                Ok(_) => {
                    tracing::warn!(run = %run.id(), old = job, new = new.id, "{why}; created a new job for the run's window")
                }
                Err(e) => {
                    tracing::warn!(run = %run.id(), job = new.id, error = %e, "cannot record the new job; aborting it");
                    let _ = bulk::abort_job(client, &new.id).await;
                }
            },
            Err(e) => {
                tracing::warn!(run = %run.id(), error = %e, "{why}; creating a new job failed, trying again later")
            }
        }
    }

    fn fail(&self, run: &RunRecord, why: String) {
        tracing::error!(run = %run.id(), "{why}");
        if let Err(e) = self.ledger.transition(run.id(), Transition::Fail(why)) {
            tracing::warn!(run = %run.id(), error = %e, "cannot mark the run failed");
        }
    }
}

/// Where the intent to replace a vanished job is recorded before the new job's POST.
pub const RECREATE_STAGE: &str = "job_recreate";

/// A `BulkApi2JobEvent` as Salesforce sends it at a job's end, for the listening flow's script.
pub fn completion_event(job: &str, state: &str) -> Event {
    let mut event = Event::json(
        format!("poll-{job}-{}", Utc::now().timestamp_millis()),
        json!({
            "Type": "RESULT",
            "ResultType": "FINAL",
            "JobIdentifier": job,
            "JobState": state,
            "CreatedDate": Utc::now().to_rfc3339(),
        }),
    );
    event.meta.insert("source".into(), json!("completion_poller"));
    event
}
