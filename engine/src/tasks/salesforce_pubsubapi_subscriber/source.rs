//! The subscription that starts a listener flow: a Pub/Sub API `Subscribe` stream whose events
//! (Avro, decoded by their schema) become flow events.
//!
//! Credit is replenished as events complete their flow, never on a timer, so delivered-but-unfinished
//! events plus outstanding credit never exceed `num_requested` (at most 100). With a durable consumer,
//! the replay id is stored only once its event and every earlier one completed (see [`window`]), so a
//! crash redelivers exactly the unfinished events. Streams that end (idle close, server reset) are
//! resumed after the last event received; auth errors log in again; a replay id the server refuses
//! falls back to the preset with a loud warning.
//!
//! With `managed_subscription: true` the stream is a `ManagedSubscribe` of the managed
//! subscription named like the durable consumer: the server keeps the position, so each replay id
//! the window releases is also committed on the stream (and kept in the state store, for status).
//!
//! [`window`]: super::window

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bulkflow_pubsub_proto::pub_sub_client::PubSubClient;
use bulkflow_pubsub_proto::{
    CommitReplayRequest, CommitReplayResponse, ConsumerEvent, FetchRequest, ManagedFetchRequest, ReplayPreset,
};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, stream};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::transport::Channel;

use super::config::{self, PubSubSubscriberConfig};
use super::window::CompletionWindow;
use crate::config::ForeignJobs;
use crate::event::Event;
use crate::run::Ledger;
use crate::runtime::inject::Injector;
use crate::runtime::processor::{BoxFuture, TaskError};
use crate::runtime::source::{Source, SourceContext};
use crate::runtime::token::{Outcome, Token};
use crate::salesforce::auth::Session;
use crate::salesforce::pubsub::SchemaError;
use crate::salesforce::pubsub::decode::Schemas;
use crate::salesforce::pubsub::{self, authed, describe, endpoint, error_code};
use crate::salesforce::{Clients, SalesforceClient};

/// The Pub/Sub API's cap on outstanding credit, and our default request.
pub const MAX_CREDIT: u32 = 100;
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);
const ERROR_PREFIX: &str = "sfdc.platform.eventbus.grpc.";

pub struct PubSubSource {
    pub flow: String,
    pub task: String,
    pub config: PubSubSubscriberConfig,
    pub clients: Arc<Clients>,
    pub ledger: Arc<Ledger>,
    pub foreign_jobs: ForeignJobs,
    /// The completion poller's stand-ins for missed job events (for the job event topic only).
    pub injector: Option<Arc<Injector>>,
}

/// The next injected event, or never when this source takes none.
async fn recv(injector: Option<&Injector>) -> Option<Event> {
    match injector {
        Some(i) => i.recv().await,
        None => std::future::pending().await,
    }
}

/// Why a stream ended, and so how to go on.
enum Ended {
    Stopping,
    /// The server closed it (idle close) or the connection broke: resume where we were.
    Closed(Option<Status>),
    AuthExpired,
    ReplayRefused(Status),
    Fatal(String),
}

/// What the loop sends on a stream after its first request, whichever kind the stream is.
enum Ask {
    Credit(u32),
    /// A replay id whose event and every earlier one completed (managed streams only).
    Commit(Vec<u8>),
}

/// What a stream's responses carry, whichever kind the stream is.
struct Answer {
    events: Vec<ConsumerEvent>,
    latest_replay_id: Vec<u8>,
    commit: Option<CommitReplayResponse>,
}

/// What the durable part of the subscription keeps between streams.
struct Progress {
    window: CompletionWindow,
    /// The last replay id received: where the next stream of this process resumes.
    received: Option<Vec<u8>>,
    /// Credit asked for on this stream and not yet used.
    pending: u32,
    /// Whether the current stream got any response: a stream that fails at once backs off.
    answered: bool,
    /// How long a stream with credit pending may send nothing before it is taken for dead.
    silence_limit: std::time::Duration,
}

impl PubSubSource {
    fn topic(&self) -> &str {
        &self.config.topic.name
    }

    /// The consumer name under which the replay id is stored, when durable.
    fn durable_name(&self) -> Option<&str> {
        self.config.topic.durable_consumer_options.as_ref().filter(|d| d.enabled).map(|d| d.name.as_str())
    }

    /// The managed subscription (its developer name) the server keeps the position of, if any.
    fn managed(&self) -> Option<&str> {
        self.config.topic.durable_consumer_options.as_ref().filter(|d| d.managed_subscription).map(|d| d.name.as_str())
    }

    /// Opens a stream of the configured kind whose first request asks for `credit` events, and
    /// later requests come from `asks`.
    async fn open(
        &self,
        api: &mut PubSubClient<Channel>,
        session: &Session,
        progress: &Progress,
        credit: u32,
        asks: mpsc::Receiver<Ask>,
    ) -> Result<BoxStream<'static, Result<Answer, Status>>, Ended> {
        let asks = ReceiverStream::new(asks);
        if let Some(name) = self.managed() {
            let first = ManagedFetchRequest {
                developer_name: name.to_string(),
                num_requested: credit as i32,
                ..ManagedFetchRequest::default()
            };
            let mut commits = 0u64;
            let requests = stream::once(async move { first }).chain(asks.map(move |ask| match ask {
                Ask::Credit(n) => ManagedFetchRequest { num_requested: n as i32, ..ManagedFetchRequest::default() },
                Ask::Commit(replay_id) => {
                    commits += 1;
                    ManagedFetchRequest {
                        commit_replay_id_request: Some(CommitReplayRequest {
                            commit_request_id: format!("commit-{commits}"),
                            replay_id,
                        }),
                        ..ManagedFetchRequest::default()
                    }
                }
            }));
            let request = authed(session, requests).map_err(Ended::Fatal)?;
            let responses = api.managed_subscribe(request).await.map_err(|s| self.classify(s))?.into_inner();
            return Ok(responses
                .map(|r| {
                    r.map(|r| Answer {
                        events: r.events,
                        latest_replay_id: r.latest_replay_id,
                        commit: r.commit_response,
                    })
                })
                .boxed());
        }
        let (preset, replay_id) = match &progress.received {
            Some(id) => (ReplayPreset::Custom, id.clone()),
            None => (self.preset(), Vec::new()),
        };
        let first = FetchRequest {
            topic_name: self.topic().to_string(),
            replay_preset: preset as i32,
            replay_id,
            num_requested: credit as i32,
            ..FetchRequest::default()
        };
        // Subscribe has no commits: the window's replay ids live in the state store alone.
        let requests = stream::once(async move { first }).chain(asks.filter_map(|ask| async move {
            match ask {
                Ask::Credit(n) => Some(FetchRequest { num_requested: n as i32, ..FetchRequest::default() }),
                Ask::Commit(_) => None,
            }
        }));
        let request = authed(session, requests).map_err(Ended::Fatal)?;
        let responses = api.subscribe(request).await.map_err(|s| self.classify(s))?.into_inner();
        Ok(responses
            .map(|r| r.map(|r| Answer { events: r.events, latest_replay_id: r.latest_replay_id, commit: None }))
            .boxed())
    }

    fn preset(&self) -> ReplayPreset {
        match self.config.topic.durable_consumer_options.as_ref().map(|d| d.replay_preset) {
            Some(config::ReplayPreset::Earliest) => ReplayPreset::Earliest,
            _ => ReplayPreset::Latest,
        }
    }

    fn credit(&self) -> u32 {
        self.config.num_requested.map_or(MAX_CREDIT, |n| n.get().min(MAX_CREDIT))
    }

    async fn wait(&self, ctx: &SourceContext, wait: Duration) -> bool {
        tokio::select! {
            () = ctx.shutdown.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// Logs in and checks the topic, retrying with backoff until it works or the flow stops.
    async fn prepare(
        &self,
        ctx: &SourceContext,
        client: &SalesforceClient,
        api: &mut PubSubClient<Channel>,
        schemas: &mut Schemas,
    ) -> Option<Arc<Session>> {
        let mut wait = RETRY_FIRST;
        loop {
            let attempt = pubsub::check_topic(client, api, self.topic(), schemas);
            match attempt.await {
                Ok(session) => return Some(session),
                Err(e) => {
                    tracing::warn!(flow = self.flow, task = self.task, error = e, retry_in = ?wait, "cannot subscribe yet")
                }
            }
            if !self.wait(ctx, wait).await {
                return None;
            }
            wait = (wait * 2).min(RETRY_MAX);
        }
    }

    async fn run_inner(self: Box<Self>, mut ctx: SourceContext) -> Result<(), TaskError> {
        let fatal = |e: String| TaskError::Fatal(format!("flow `{}`, task `{}`: {e}", self.flow, self.task));
        let client = self.clients.get(Path::new(&self.config.credentials_path)).map_err(|e| fatal(e.to_string()))?;
        let uri = endpoint::uri(self.config.endpoint.as_deref(), client.credentials().pubsub_url.as_deref());
        let mut api = PubSubClient::new(endpoint::channel(&uri, client.trust()).map_err(|e| fatal(e.to_string()))?);
        let mut schemas = Schemas::default();
        let Some(mut session) = self.prepare(&ctx, &client, &mut api, &mut schemas).await else { return Ok(()) };

        let stored = match self.durable_name() {
            Some(name) => self.ledger.replay_id(name).map_err(|e| fatal(e.to_string()))?,
            None => None,
        };
        let mut progress = Progress {
            window: CompletionWindow::default(),
            received: stored,
            pending: 0,
            answered: false,
            silence_limit: client.limits().stream_silence_timeout,
        };
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, Outcome)>();
        tracing::info!(
            flow = self.flow,
            task = self.task,
            topic = self.topic(),
            endpoint = uri,
            resume = progress.received.is_some(),
            "subscribing"
        );

        let mut wait = RETRY_FIRST;
        loop {
            let ended =
                self.stream(&mut ctx, &mut api, &session, &mut schemas, &mut progress, &done_tx, &mut done_rx).await;
            progress.pending = 0;
            let answered = std::mem::take(&mut progress.answered);
            if answered {
                wait = RETRY_FIRST;
            }
            match ended {
                Ended::Stopping => break,
                Ended::Closed(status) => {
                    match &status {
                        None => tracing::info!(flow = self.flow, "the Pub/Sub stream was closed; resubscribing"),
                        Some(s) => {
                            tracing::warn!(flow = self.flow, error = describe(s), retry_in = ?wait, "the Pub/Sub stream failed; resubscribing")
                        }
                    }
                    // A stream that ended before answering anything backs off, so a server that
                    // keeps closing at once is not hammered.
                    if status.is_some() || !answered {
                        if !self.wait(&ctx, wait).await {
                            break;
                        }
                        wait = (wait * 2).min(RETRY_MAX);
                    }
                }
                Ended::AuthExpired => {
                    tracing::info!(flow = self.flow, "Pub/Sub session expired; logging in again");
                    match client.refresh(&session).await {
                        Ok(s) => session = s,
                        Err(e) => tracing::warn!(flow = self.flow, error = %e, retry_in = ?wait, "login failed"),
                    }
                    // A fresh token refused again at once: back off rather than spin.
                    if wait > RETRY_FIRST && !self.wait(&ctx, wait).await {
                        break;
                    }
                    wait = (wait * 2).min(RETRY_MAX);
                }
                Ended::ReplayRefused(status) => {
                    // Events between the stored replay id and now may be lost to this subscription;
                    // the runs waiting for them are caught up by polling their jobs.
                    tracing::error!(
                        flow = self.flow,
                        task = self.task,
                        consumer = self.durable_name(),
                        preset = ?self.preset(),
                        replay_fallback = true,
                        error = describe(&status),
                        "THE STORED REPLAY ID WAS REFUSED (corrupted or outside the retention window): resubscribing from the preset; events in between may be missed"
                    );
                    progress.received = None;
                }
                Ended::Fatal(e) => return Err(fatal(e)),
            }
        }
        tracing::info!(flow = self.flow, in_flight = progress.window.in_flight(), "subscription stopped");
        Ok(())
    }

    /// One `Subscribe` stream, from its first request to its end.
    #[expect(clippy::too_many_arguments, reason = "the loop's state, borrowed for one stream")]
    async fn stream(
        &self,
        ctx: &mut SourceContext,
        api: &mut PubSubClient<Channel>,
        session: &Session,
        schemas: &mut Schemas,
        progress: &mut Progress,
        done_tx: &mpsc::UnboundedSender<(u64, Outcome)>,
        done_rx: &mut mpsc::UnboundedReceiver<(u64, Outcome)>,
    ) -> Ended {
        let limit = self.credit();
        // Wait for room: a stream opened with no credit would only be closed as idle.
        while progress.window.in_flight() as u32 >= limit {
            tokio::select! {
                () = ctx.shutdown.cancelled() => return Ended::Stopping,
                done = done_rx.recv() => if let Some((seq, outcome)) = done { self.finish(progress, seq, outcome); },
            }
        }
        let (tx, rx) = mpsc::channel::<Ask>(8);
        let first_credit = limit - progress.window.in_flight() as u32;
        progress.pending = first_credit;
        let mut responses = match self.open(api, session, progress, first_credit, rx).await {
            Ok(r) => r,
            Err(ended) => return ended,
        };
        // The server fixed our replay position before answering: from here on no event is
        // missed, so triggers that create jobs may fire (the first time; later calls do nothing).
        ctx.ready();
        tracing::info!(flow = self.flow, task = self.task, topic = self.topic(), credit = first_credit, "subscribed");
        // Since the server last said anything, or since credit was asked for after a quiet time.
        let mut heard = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = ctx.shutdown.cancelled() => return Ended::Stopping,
                () = tokio::time::sleep_until(heard + progress.silence_limit), if progress.pending > 0 => {
                    tracing::warn!(
                        flow = self.flow,
                        task = self.task,
                        silent_for = ?progress.silence_limit,
                        "the Pub/Sub stream sent nothing, not even a keepalive, while events were asked for; subscribing again (salesforce_stream_silence_timeout)"
                    );
                    return Ended::Closed(None);
                }
                done = done_rx.recv() => {
                    let Some((seq, outcome)) = done else { return Ended::Stopping };
                    if let Some(replay_id) = self.finish(progress, seq, outcome)
                        && self.managed().is_some()
                        && tx.send(Ask::Commit(replay_id)).await.is_err()
                    {
                        return Ended::Closed(None);
                    }
                    // Replenish as events complete: ask for the room they left.
                    let room = limit.saturating_sub(progress.window.in_flight() as u32 + progress.pending);
                    if room > 0 && (progress.pending == 0 || room >= limit / 4) {
                        if tx.send(Ask::Credit(room)).await.is_err() {
                            return Ended::Closed(None);
                        }
                        if progress.pending == 0 {
                            heard = tokio::time::Instant::now();
                        }
                        progress.pending += room;
                    }
                }
                injected = recv(self.injector.as_deref()) => {
                    let Some(event) = injected else { continue };
                    let (flow, id) = (self.flow.clone(), event.id.clone());
                    tracing::info!(flow, event = id, "handing the completion poller's stand-in event to the flow");
                    // Not part of the replay window: a stand-in has no replay id to store.
                    let token = Token::new(move |outcome| match outcome {
                        Outcome::Completed => tracing::debug!(flow, event = id, "stand-in completion event done"),
                        other => tracing::warn!(flow, event = id, outcome = ?other, "stand-in completion event did not complete; the poller tries again"),
                    });
                    if ctx.emit(event, token).await.is_err() {
                        return Ended::Stopping;
                    }
                }
                message = responses.next() => match message.transpose() {
                    Ok(Some(response)) => {
                        heard = tokio::time::Instant::now();
                        progress.answered = true;
                        if let Some(commit) = &response.commit
                            && let Some(error) = &commit.error
                        {
                            tracing::warn!(flow = self.flow, request = commit.commit_request_id, error = error.msg, "the server refused a commit; the next one covers it");
                        }
                        if response.commit.is_some() && response.events.is_empty() && response.latest_replay_id.is_empty() {
                            continue;
                        }
                        // Counted here, not taken from `pending_num_requested`: a response sent
                        // before the server read our latest request reports too little, and
                        // trusting it would ask for more than the cap.
                        progress.pending = progress.pending.saturating_sub(response.events.len() as u32);
                        if response.events.is_empty() {
                            // A keepalive: its latest replay id is where to resume (the bus moved
                            // on), but only once nothing before it is unfinished.
                            if progress.window.in_flight() == 0 && !response.latest_replay_id.is_empty() {
                                if let Some(name) = self.durable_name()
                                    && let Err(e) = self.ledger.set_replay_id(name, &response.latest_replay_id)
                                {
                                    tracing::warn!(flow = self.flow, consumer = name, error = %e, "cannot store the keepalive's replay id");
                                }
                                progress.received = Some(response.latest_replay_id);
                            }
                            continue;
                        }
                        for event in response.events {
                            crate::fault::point("pubsub.event_received");
                            if let Err(e) = self.deliver(ctx, api, session, schemas, progress, done_tx, event).await {
                                return e;
                            }
                        }
                    }
                    Ok(None) => return Ended::Closed(None),
                    Err(s) => return self.classify(s),
                },
            }
        }
    }

    fn classify(&self, status: Status) -> Ended {
        let code = error_code(&status).strip_prefix(ERROR_PREFIX).unwrap_or(error_code(&status)).to_string();
        if code.starts_with("subscription.fetch.replayid") {
            Ended::ReplayRefused(status)
        } else if code == "service.auth.error" || status.code() == tonic::Code::Unauthenticated {
            Ended::AuthExpired
        } else if matches!(code.as_str(), "subscription.limit.exceeded" | "subscription.topic.cannot.subscribe")
            || code.contains("topic.not")
            || code.starts_with("managed.subscription")
        {
            let rpc = if self.managed().is_some() { "ManagedSubscribe" } else { "Subscribe" };
            Ended::Fatal(format!("{rpc} `{}`: {}", self.topic(), describe(&status)))
        } else {
            Ended::Closed(Some(status))
        }
    }

    /// An event's journey ended: move the window and, when durable, store the replay id.
    /// Returns the replay id the window released, to commit on a managed stream.
    fn finish(&self, progress: &mut Progress, seq: u64, outcome: Outcome) -> Option<Vec<u8>> {
        match &outcome {
            Outcome::Completed => {}
            // Not stored: the event is delivered again after a restart.
            Outcome::Abandoned => return None,
            Outcome::Failed { task, error } => {
                tracing::error!(
                    flow = self.flow,
                    task,
                    error,
                    "a Pub/Sub event failed its flow; moving past it (its run shows the failure)"
                );
            }
        }
        let replay_id = progress.window.complete(seq)?;
        if let Some(name) = self.durable_name()
            && let Err(e) = self.ledger.set_replay_id(name, &replay_id)
        {
            tracing::error!(flow = self.flow, consumer = name, error = %e, "cannot store the replay id; events may be delivered again after a restart");
        }
        Some(replay_id)
    }

    #[expect(clippy::too_many_arguments, reason = "the loop's state, borrowed for one event")]
    async fn deliver(
        &self,
        ctx: &SourceContext,
        api: &mut PubSubClient<Channel>,
        session: &Session,
        schemas: &mut Schemas,
        progress: &mut Progress,
        done_tx: &mpsc::UnboundedSender<(u64, Outcome)>,
        consumer_event: bulkflow_pubsub_proto::ConsumerEvent,
    ) -> Result<(), Ended> {
        let replay_id = consumer_event.replay_id;
        progress.received = Some(replay_id.clone());
        let seq = progress.window.push(replay_id.clone());
        let Some(producer) = consumer_event.event else {
            self.finish(progress, seq, Outcome::Completed);
            return Ok(());
        };
        let replay_hex: String = replay_id.iter().map(|b| format!("{b:02x}")).collect();
        let id = if producer.id.is_empty() { replay_hex.clone() } else { producer.id.clone() };
        // An event that cannot be read is skipped, never retried: the same bytes come back on every
        // resubscription, so retrying would stall the stream for good. The job it was about is not
        // lost: the completion poller asks Salesforce for every quiet run's job.
        let skip = |reason: &'static str, error: String| {
            tracing::error!(
                flow = self.flow,
                task = self.task,
                event = id,
                error,
                "{reason}; skipping the event (runs waiting on it are polled)"
            );
            crate::metrics::global().event_skipped(&self.flow, reason);
        };
        match pubsub::load_schema(api, session, schemas, &producer.schema_id).await {
            Ok(()) => {}
            Err(SchemaError::Unresolvable(e)) => {
                skip("unresolvable schema", e);
                self.finish(progress, seq, Outcome::Completed);
                return Ok(());
            }
            Err(SchemaError::Unavailable(e)) => return Err(Ended::Closed(Some(Status::unavailable(e)))),
        }
        let data = match schemas.decode(&id, &producer.schema_id, &producer.payload) {
            Ok(d) => d,
            Err(e) => {
                skip("undecodable event", e.to_string());
                self.finish(progress, seq, Outcome::Completed);
                return Ok(());
            }
        };
        if self.is_foreign(&data) {
            self.finish(progress, seq, Outcome::Completed);
            return Ok(());
        }
        let mut meta = Map::new();
        meta.insert("replay_id".into(), Value::String(replay_hex));
        meta.insert("topic".into(), Value::String(self.topic().to_string()));
        let mut event = Event::json(id, data);
        event.meta = meta;
        let tx = done_tx.clone();
        let token = Token::new(move |outcome| {
            // The loop outlives every token unless the process is exiting; then the event is
            // simply delivered again after the restart.
            let _ = tx.send((seq, outcome));
        });
        ctx.emit(event, token).await.map_err(|_| Ended::Stopping)
    }

    /// A `BulkApi2JobEvent` FINAL result for a job bulkflow did not create, when those are skipped.
    fn is_foreign(&self, data: &Value) -> bool {
        if self.foreign_jobs == ForeignJobs::Include
            || data.get("Type").and_then(Value::as_str) != Some("RESULT")
            || data.get("ResultType").and_then(Value::as_str) != Some("FINAL")
        {
            return false;
        }
        let Some(job) = data.get("JobIdentifier").and_then(Value::as_str) else { return false };
        match self.ledger.run_for_job(job) {
            Ok(Some(_)) => false,
            Ok(None) => {
                tracing::info!(
                    flow = self.flow,
                    job,
                    "skipping the results of a job bulkflow did not create (foreign_jobs: skip)"
                );
                true
            }
            Err(e) => {
                tracing::warn!(flow = self.flow, job, error = %e, "cannot look the job up in the ledger; processing it");
                false
            }
        }
    }
}

impl Source for PubSubSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> BoxFuture<'static, Result<(), TaskError>> {
        Box::pin(self.run_inner(ctx))
    }
}
