//! The control API's RPCs, over the running engine's ledger. Every change goes through the same
//! functions `bulkflow runs` uses on a stopped store, so the two paths cannot drift.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bulkflow_control_proto as pb;
use bulkflow_engine::config::EngineConfig;
use bulkflow_engine::flow::{Flow, TaskKind};
use bulkflow_engine::run::{
    Checkpoint, Ledger, LedgerError, RESULTS_STAGE, RunFilter, RunId, RunRecord, RunState, Transition,
};
use bulkflow_engine::tasks::generate;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::logs::LogRing;
use bulkflow_engine::node::operator::{self, OperatorError, StartRefused};

/// How often `WatchRuns` compares the ledger with what it last sent.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// Streams (`WatchRuns`, `TailLogs`) served at once: each costs a task and, for `WatchRuns`, a
/// ledger scan four times a second, so an unbounded number of clients would be an engine's worth
/// of work. A TUI holds two.
pub const MAX_WATCHERS: usize = 32;

#[derive(Clone)]
pub struct ControlService {
    pub config: EngineConfig,
    pub ledger: Arc<Ledger>,
    pub flows: Arc<Vec<Flow>>,
    /// Whether this node leads its leader-elected flows (`None`: it has none to elect for).
    pub leading: Option<watch::Receiver<bool>>,
    pub logs: LogRing,
    /// Ends the streams when the engine stops.
    pub stop: CancellationToken,
    /// One permit per open stream, [`MAX_WATCHERS`] in all.
    pub watchers: Arc<tokio::sync::Semaphore>,
    /// What each source that cannot listen or take work waits for.
    pub waits: bulkflow_engine::runtime::source::Waits,
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

/// Illegal transitions are the caller's to fix (retrying a completed run...), not ours.
fn ledger_status(e: LedgerError) -> Status {
    match e {
        LedgerError::UnknownRun(_) => Status::not_found(e.to_string()),
        LedgerError::IllegalTransition { .. } => Status::failed_precondition(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

impl ControlService {
    /// A permit for one more stream, or `RESOURCE_EXHAUSTED` when [`MAX_WATCHERS`] are open.
    fn watcher(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Status> {
        self.watchers.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{MAX_WATCHERS} streams (bulkflow tui, watchers of runs or logs) are open on this engine already; \
                 close one first"
            ))
        })
    }
}

fn parse_id(text: &str) -> Result<RunId, Status> {
    text.parse().map_err(|_| {
        Status::invalid_argument(format!("`{text}` is not a run id (FLOW@TIME, as `bulkflow runs list` shows)"))
    })
}

/// A run as the API sends it: the record plus the progress of its results checkpoint.
pub fn run_message(ledger: &Ledger, run: &RunRecord) -> Result<pb::Run, Status> {
    let results = ledger.checkpoint(run.id(), RESULTS_STAGE).map_err(ledger_status)?;
    let scheduled = ledger.checkpoint(run.id(), generate::source::STAGE).map_err(ledger_status)?;
    let window_start =
        scheduled.as_ref().and_then(|c| c.input.pointer("/data/system_info/last_run_time")).and_then(|v| v.as_i64());
    Ok(pb::Run {
        record_json: serde_json::to_string(run).map_err(internal)?,
        progress: results.as_ref().map(progress),
        window_start,
        object: results.as_ref().and_then(|c| find_object(&c.input, 0)),
        waiting: ledger.waiting_reason(run).map_err(ledger_status)?,
        id: run.id().as_str().to_owned(),
        flow: run.flow().to_owned(),
        state: run.state().as_str().to_owned(),
        failed_in: run.failed_in().map(|s| s.as_str().to_owned()),
        scheduled_at: run.scheduled_at().timestamp(),
        job_id: run.job_id().map(str::to_owned),
        attempts: run.attempts(),
        last_error: run.last_error().map(str::to_owned),
        total_batches: run.total_batches(),
        created_at_ms: run.created_at().timestamp_millis(),
        updated_at_ms: run.updated_at().timestamp_millis(),
        history: run
            .history()
            .iter()
            .map(|h| pb::StateChange {
                from: h.from.as_str().to_owned(),
                to: h.to.as_str().to_owned(),
                at_ms: h.at.timestamp_millis(),
                error: h.error.clone(),
            })
            .collect(),
    })
}

fn checkpoint_message(c: &Checkpoint) -> pb::Checkpoint {
    pb::Checkpoint {
        stage: c.stage.clone(),
        updated_at_ms: c.updated_at.timestamp_millis(),
        pages_fetched: c.progress.pages_fetched,
        records_fetched: c.progress.records_fetched,
    }
}

/// The `object` a Bulk API job reports (`"object": "Account"`), wherever the event carries it.
fn find_object(value: &serde_json::Value, depth: usize) -> Option<String> {
    const MAX_DEPTH: usize = 4;
    let map = value.as_object()?;
    if let Some(serde_json::Value::String(o)) = map.get("object") {
        return Some(o.clone());
    }
    if depth == MAX_DEPTH {
        return None;
    }
    map.values().find_map(|v| find_object(v, depth + 1))
}

fn progress(c: &Checkpoint) -> pb::Progress {
    let p = &c.progress;
    pb::Progress {
        pages_fetched: p.pages_fetched,
        records: p.records_fetched,
        batches_published: p.batches_published.len() as u64,
        batches_written: p.batches_written.iter().map(|(sink, b)| (sink.clone(), b.len() as u64)).collect(),
    }
}

impl ControlService {
    fn leads(&self, flow: &Flow) -> bool {
        !(flow.require_leader_election && self.config.nats_url.is_some())
            || self.leading.as_ref().is_some_and(|l| *l.borrow())
    }

    fn flow_message(&self, flow: &Flow, runs: &[RunRecord]) -> Result<pb::Flow, Status> {
        let now = chrono::Utc::now();
        let next_tick = flow.tasks.first().and_then(|t| match &t.kind {
            TaskKind::Generate { trigger, .. } => trigger.next_after(now).map(|t| t.timestamp()),
            _ => None,
        });
        let mine: Vec<&RunRecord> = runs.iter().filter(|r| r.flow() == flow.name).collect();
        let last_success = mine.iter().filter(|r| r.state().is_success()).map(|r| r.updated_at().timestamp()).max();
        let catch_up_runs = mine.iter().filter(|r| r.state() == RunState::Scheduled).count() as u32;
        let leader = self.leads(flow);
        let skipped = self.ledger.skipped_ticks().remove(&flow.name);
        // The object of the flow's latest run that reported one.
        let mut latest: Vec<&&RunRecord> = mine.iter().filter(|r| r.state() != RunState::Scheduled).collect();
        latest.sort_by_key(|r| std::cmp::Reverse(r.scheduled_at()));
        let mut object = None;
        for run in latest.into_iter().take(3) {
            let results = self.ledger.checkpoint(run.id(), RESULTS_STAGE).map_err(ledger_status)?;
            object = results.and_then(|c| find_object(&c.input, 0));
            if object.is_some() {
                break;
            }
        }
        Ok(pb::Flow {
            name: flow.name.clone(),
            state: if leader { "active" } else { "standby" }.into(),
            leader,
            next_tick,
            watermark: self.ledger.watermark(&flow.name).map_err(ledger_status)?,
            last_success,
            catch_up_runs,
            object,
            ticks_skipped: skipped.as_ref().map_or(0, |s| s.count),
            skip_reason: skipped.map(|s| s.last_reason),
            waiting: self.waits.get(&flow.name),
        })
    }
}

#[tonic::async_trait]
impl pb::control_server::Control for ControlService {
    async fn list_runs(&self, request: Request<pb::ListRunsRequest>) -> Result<Response<pb::ListRunsResponse>, Status> {
        let request = request.into_inner();
        let state = match request.state {
            Some(s) => Some(s.parse::<RunState>().map_err(|e| Status::invalid_argument(e.to_string()))?),
            None => None,
        };
        let runs = self.ledger.list_runs(&RunFilter { flow: request.flow, state }).map_err(ledger_status)?;
        let runs = runs.iter().map(|r| run_message(&self.ledger, r)).collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListRunsResponse { runs }))
    }

    async fn get_run(&self, request: Request<pb::RunRef>) -> Result<Response<pb::RunDetail>, Status> {
        let id = parse_id(&request.into_inner().id)?;
        let Some(run) = self.ledger.get_run(&id).map_err(ledger_status)? else {
            return Err(Status::not_found(format!("no run {id}")));
        };
        let checkpoints = self.ledger.checkpoints(&id).map_err(ledger_status)?;
        Ok(Response::new(pb::RunDetail {
            run: Some(run_message(&self.ledger, &run)?),
            checkpoints_json: checkpoints
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<_, _>>()
                .map_err(internal)?,
            checkpoints: checkpoints.iter().map(checkpoint_message).collect(),
        }))
    }

    async fn start_run(&self, request: Request<pb::StartRunRequest>) -> Result<Response<pb::StartRunResponse>, Status> {
        let request = request.into_inner();
        let flows = operator::load_flows(&self.config).map_err(internal)?.flows;
        let started =
            operator::start_run(&flows, &self.config.workflows_dir, &self.ledger, &request.flow, request.since);
        match started.map_err(internal)? {
            Ok(id) => Ok(Response::new(pb::StartRunResponse { id: id.as_str().to_owned() })),
            Err(e @ StartRefused::NoFlow { .. }) => Err(Status::not_found(e.to_string())),
            Err(e @ StartRefused::NotTriggered(_)) => Err(Status::failed_precondition(e.to_string())),
        }
    }

    async fn retry_run(&self, request: Request<pb::RunRef>) -> Result<Response<pb::Run>, Status> {
        let id = parse_id(&request.into_inner().id)?;
        let run = self.ledger.transition(&id, Transition::Retry).map_err(ledger_status)?;
        tracing::info!(run = %id, attempt = run.attempts(), "run retried through the control API");
        // Back at `scheduled`: its trigger fires it now. (From a later state the completion
        // poller picks it up once it has been quiet for `job_poll_after`.)
        if run.state() == RunState::Scheduled {
            self.ledger.announce_scheduled(run.flow());
        }
        Ok(Response::new(run_message(&self.ledger, &run)?))
    }

    async fn cancel_run(
        &self,
        request: Request<pb::CancelRunRequest>,
    ) -> Result<Response<pb::CancelRunResponse>, Status> {
        let request = request.into_inner();
        let id = parse_id(&request.id)?;
        let reason = if request.reason.is_empty() { "cancelled through the control API" } else { &request.reason };
        let flows = operator::load_flows(&self.config).map_err(internal)?.flows;
        let cancelled =
            operator::cancel_run(&self.config, &flows, &self.ledger, &id, reason).await.map_err(|e| match e {
                OperatorError::Ledger(e) => ledger_status(e),
                e => internal(e),
            })?;
        tracing::info!(run = %id, "run cancelled through the control API");
        let (job_id, job_state, abort_error) = match cancelled.abort {
            None => (None, None, None),
            Some((job, Ok(state))) => (Some(job), Some(state), None),
            Some((job, Err(e))) => (Some(job), None, Some(e)),
        };
        Ok(Response::new(pb::CancelRunResponse {
            run: Some(run_message(&self.ledger, &cancelled.run)?),
            job_id,
            job_state,
            abort_error,
        }))
    }

    async fn list_flows(&self, _: Request<pb::ListFlowsRequest>) -> Result<Response<pb::ListFlowsResponse>, Status> {
        let runs = self.ledger.list_runs(&RunFilter::default()).map_err(ledger_status)?;
        let flows = self.flows.iter().map(|f| self.flow_message(f, &runs)).collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListFlowsResponse { flows, store_error: self.ledger.store_health().failing() }))
    }

    type WatchRunsStream = Stream_<pb::RunChanges>;

    async fn watch_runs(&self, _: Request<pb::WatchRunsRequest>) -> Result<Response<Self::WatchRunsStream>, Status> {
        let permit = self.watcher()?;
        let (tx, rx) = mpsc::channel(4);
        let ledger = self.ledger.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut sent: HashMap<String, pb::Run> = HashMap::new();
            let mut snapshot = true;
            let mut every = tokio::time::interval(WATCH_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = stop.cancelled() => return,
                    // The client left: its permit goes back now, not at the next change.
                    () = tx.closed() => return,
                }
                let changes = match diff(&ledger, &mut sent, snapshot) {
                    Ok(c) => c,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                if snapshot || !changes.upserts.is_empty() || !changes.removed.is_empty() {
                    snapshot = false;
                    // The client left: stop polling for it.
                    if tx.send(Ok(changes)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type TailLogsStream = Stream_<pb::LogLine>;

    async fn tail_logs(&self, _: Request<pb::TailLogsRequest>) -> Result<Response<Self::TailLogsStream>, Status> {
        let permit = self.watcher()?;
        let (kept, mut live) = self.logs.subscribe();
        let (tx, rx) = mpsc::channel(64);
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            for line in kept {
                if tx.send(Ok(line)).await.is_err() {
                    return;
                }
            }
            loop {
                let received = tokio::select! {
                    r = live.recv() => r,
                    () = stop.cancelled() => return,
                    () = tx.closed() => return,
                };
                match received {
                    Ok(line) => {
                        if tx.send(Ok(line)).await.is_err() {
                            return;
                        }
                    }
                    // A slow client misses lines rather than holding the engine's memory.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// The runs that changed since `sent` (all of them on a snapshot), and `sent` brought up to date.
fn diff(ledger: &Ledger, sent: &mut HashMap<String, pb::Run>, snapshot: bool) -> Result<pb::RunChanges, Status> {
    let runs = ledger.list_runs(&RunFilter::default()).map_err(ledger_status)?;
    let mut upserts = Vec::new();
    let mut seen = std::collections::HashSet::with_capacity(runs.len());
    for run in &runs {
        let id = run.id().as_str();
        seen.insert(id.to_owned());
        let message = run_message(ledger, run)?;
        if snapshot || sent.get(id) != Some(&message) {
            sent.insert(id.to_owned(), message.clone());
            upserts.push(message);
        }
    }
    let removed: Vec<String> = sent.keys().filter(|id| !seen.contains(*id)).cloned().collect();
    for id in &removed {
        sent.remove(id);
    }
    Ok(pb::RunChanges { snapshot, upserts, removed })
}
