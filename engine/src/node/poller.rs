//! The completion poller: what moves a run on when Salesforce's completion event never arrives,
//! and what notices batches the bus lost.
//!
//! Events are missed while the process is down, a replay id can expire, and `BulkApi2JobEvent`
//! is a beta an org may not have enabled. So a run that has been quiet for `job_poll_after`
//! (no state change, no progress, its results not being read) has its job polled; a finished job
//! is handed to the listening flow as the completion event Salesforce would have sent, and that
//! flow reads the results from the run's checkpoint on. A run stuck at `published` whose
//! unwritten batches the bus no longer holds (the stream's limits discarded them, or it was
//! purged) has those batches marked unpublished and is handed over the same way, so they are
//! fetched again by their locators and republished; batches still in the stream are left to their
//! writer, however slow. A run whose job vanished in Salesforce (404: deleted, expired after 7
//! days, a refreshed org) gets a new job for the same query, recorded in its place, and goes on
//! from `job_created`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::bus::registry::BusRegistry;
use crate::event::Event;
use crate::flow::{Flow, TaskKind};
use crate::run::{Ledger, RESULTS_STAGE, RunRecord, RunState, Transition};
use crate::run::{Recreated, recreate_job};
use crate::runtime::inject::Injector;
use crate::salesforce::{Clients, SalesforceError, bulk};
use crate::tasks::salesforce_bulkapi_query_job::config::{BulkQueryJobConfig, Operation};

/// The topic whose events the poller stands in for.
pub const JOB_EVENT_TOPIC: &str = "/event/BulkApi2JobEvent";

pub struct Poller {
    pub ledger: Arc<Ledger>,
    pub clients: Arc<Clients>,
    pub injector: Arc<Injector>,
    /// The buses, asked whether a batch stuck at `published` is still in its stream.
    pub buses: Arc<BusRegistry>,
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
        buses: Arc<BusRegistry>,
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
        Self { ledger, clients, injector, buses, quiet_after, creators, listener }
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
                // Being read: quiet only because a page is arriving slowly.
                if self.ledger.is_reading(run.id()) {
                    continue;
                }
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

    /// The unwritten batches of a `published` run that the bus no longer holds. A batch still in
    /// its stream is only waiting for a writer (slow, or backing off) and is left to it; one
    /// published before the ledger kept batch locations counts as lost after `quiet_after`, as
    /// before.
    async fn lost_batches(&self, run: &RunRecord) -> Result<BTreeSet<u64>, String> {
        let unwritten = self.ledger.unwritten_batches(run.id()).map_err(|e| e.to_string())?;
        let mut lost = BTreeSet::new();
        let mut by_stream: BTreeMap<String, Vec<(u64, Vec<u64>)>> = BTreeMap::new();
        for (batch, stored) in unwritten {
            match stored {
                None => {
                    lost.insert(batch);
                }
                Some(s) => by_stream.entry(s.stream).or_default().push((batch, s.sequences)),
            }
        }
        if by_stream.is_empty() {
            return Ok(lost);
        }
        let buses = self.buses.open_buses().await;
        if buses.is_empty() {
            return Err("no bus is open in this process".into());
        }
        for (stream, batches) in by_stream {
            let sequences: Vec<u64> = batches.iter().flat_map(|(_, s)| s.iter().copied()).collect();
            // No open bus with the stream: it was deleted, and everything in it with it.
            let mut missing: BTreeSet<u64> = sequences.iter().copied().collect();
            for bus in &buses {
                if bus.stream_exists(&stream).await.map_err(|e| e.to_string())? {
                    missing = bus.missing(&stream, &sequences).await.map_err(|e| e.to_string())?.into_iter().collect();
                    break;
                }
            }
            lost.extend(batches.into_iter().filter(|(_, s)| s.iter().any(|q| missing.contains(q))).map(|(b, _)| b));
        }
        Ok(lost)
    }

    /// The run's last state change or recorded progress.
    fn last_activity(&self, run: &RunRecord) -> DateTime<Utc> {
        let progress = self.ledger.checkpoint(run.id(), RESULTS_STAGE).ok().flatten().map(|cp| cp.updated_at);
        progress.map_or(run.updated_at(), |p| p.max(run.updated_at()))
    }

    /// Polls one quiet run; true if it was handed to the listening flow, or Salesforce refused to
    /// answer (either way, the run is left alone for `quiet_after`).
    async fn poll(&self, run: &RunRecord) -> bool {
        let (Some(job), Some(creator)) = (run.job_id(), self.creators.get(run.flow())) else { return false };
        match run.state() {
            RunState::JobCreated | RunState::CompletedEvent | RunState::ResultsFetched => {}
            RunState::Published => {
                let lost = match self.lost_batches(run).await {
                    Ok(lost) if lost.is_empty() => return false,
                    Ok(lost) => lost,
                    Err(e) => {
                        tracing::warn!(run = %run.id(), error = %e, "cannot ask the bus whether it still holds the run's unwritten batches");
                        return false;
                    }
                };
                match self.ledger.unpublish(run.id(), &lost) {
                    Ok(n) => {
                        tracing::warn!(run = %run.id(), batches = n, "batches published but never written: the bus lost them; fetching them again")
                    }
                    Err(e) => {
                        tracing::warn!(run = %run.id(), error = %e, "cannot mark lost batches");
                        return false;
                    }
                }
            }
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
            Ok(info) => match info.check_finished() {
                Ok(false) => false,
                Ok(true) => {
                    tracing::info!(run = %run.id(), job, state = info.state, quiet = ?self.quiet_after, "no completion event for the run's job; standing in for it");
                    self.injector.send(completion_event(job, &info.state));
                    true
                }
                // Failed or aborted in Salesforce: the run ends here, with Salesforce's message.
                // Not handed to the listening flow, whose script may drop events of jobs without
                // results (the seed's does), which would leave the run at `job_created` for ever.
                Err(e) => {
                    self.fail(run, format!("{e}; the next run covers its window"));
                    false
                }
            },
            Err(SalesforceError::Api { status: 404, .. }) => {
                let csv = (creator.column_delimiter, creator.line_ending);
                if let Recreated::NoQuery { why } = recreate_job(&self.ledger, run, job, csv, &client).await {
                    self.fail(run, why);
                }
                false
            }
            // Asked and refused (a limit, an outage): asked again once the run has been quiet
            // for as long again, and the run says why meanwhile.
            Err(e) => {
                tracing::warn!(run = %run.id(), job, error = %e, "cannot poll the job");
                let why = format!("cannot ask Salesforce about job {job}: {e}");
                if let Err(e) = self.ledger.note_waiting(run.id(), &why) {
                    tracing::warn!(run = %run.id(), error = %e, "cannot record why the run waits");
                }
                true
            }
        }
    }
}

impl Poller {
    fn fail(&self, run: &RunRecord, why: String) {
        tracing::error!(run = %run.id(), "{why}");
        if let Err(e) = self.ledger.transition(run.id(), Transition::Fail(why)) {
            tracing::warn!(run = %run.id(), error = %e, "cannot mark the run failed");
        }
    }
}

pub use crate::run::RECREATE_STAGE;

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
