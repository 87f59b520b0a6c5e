//! The subscriber against the simulator's Pub/Sub API: credit bounded by completion, idle close
//! and resubscribe, keepalives, auth expiry mid-stream, dropped streams, a refused replay id, and
//! managed subscriptions whose position the server keeps.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulkflow_sim::{FaultConfig, SimConfig, Simulator};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::config::PubSubSubscriberConfig;
use super::source::PubSubSource;
use crate::config::ForeignJobs;
use crate::credentials::CredentialsRoot;
use crate::event::{Event, EventData};
use crate::flow::model::RetryConfig;
use crate::run::Ledger;
use crate::runtime::graph::{Graph, NodeSpec};
use crate::runtime::processor::{BoxFuture, Emitter, Processor, TaskError};
use crate::runtime::source::{Source, SourceContext};
use crate::salesforce::ClientSettings;
use crate::salesforce::Clients;
use crate::salesforce::bulk::CreateJob;
use crate::salesforce::job_create;
use crate::salesforce::options::{ColumnDelimiter, LineEnding, QueryOperation};
use crate::schedule::SystemClock;
use crate::store::MemoryStore;

const CONSUMER: &str = "listener";

/// Records each event as `JOB:TYPE:STATE[:RESULT]`, after taking a permit from `gate`.
struct Record {
    seen: Arc<Mutex<Vec<String>>>,
    gate: Arc<Semaphore>,
}

impl Processor for Record {
    fn process<'a>(&'a self, event: Event, _out: &'a mut Emitter) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            self.gate.acquire().await.map_err(|e| TaskError::Fatal(e.to_string()))?.forget();
            let EventData::Json(d) = &event.data else { return Err(TaskError::Fatal("not JSON".into())) };
            let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
            self.seen.lock().unwrap().push(format!(
                "{}:{}:{}:{}",
                text("JobIdentifier"),
                text("Type"),
                text("JobState"),
                text("ResultType")
            ));
            Ok(())
        })
    }
}

struct Harness {
    sim: Simulator,
    _root: tempfile::TempDir,
    clients: Arc<Clients>,
    ledger: Arc<Ledger>,
    seen: Arc<Mutex<Vec<String>>>,
    gate: Arc<Semaphore>,
    stop: CancellationToken,
    /// Subscribe through the managed subscription named like the consumer.
    managed: bool,
    _workers: Option<tokio::task::JoinSet<()>>,
}

async fn harness(sim: SimConfig) -> Harness {
    let sim = sim.records([("Account", 5)]).job_latency(Duration::from_millis(60)).start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    sim.credentials().write_to(&root.path().join("etc/sfdc/credentials.json")).unwrap();
    let credentials = CredentialsRoot::new(Some(root.path().to_path_buf()));
    Harness {
        sim,
        _root: root,
        clients: Arc::new(Clients::new(credentials, "63.0", ClientSettings::default())),
        ledger: Arc::new(Ledger::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock))),
        seen: Arc::default(),
        gate: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        stop: CancellationToken::new(),
        managed: false,
        _workers: None,
    }
}

impl Harness {
    /// Starts the subscriber; returns once it subscribed.
    async fn subscribe(&mut self, num_requested: Option<u32>) {
        let mut config = json!({
            "credentials_path": "/etc/sfdc/credentials.json",
            "topic": {"name": "/event/BulkApi2JobEvent",
                      "durable_consumer_options": {"enabled": true, "name": CONSUMER, "managed_subscription": self.managed}},
        });
        if let Some(n) = num_requested {
            config["num_requested"] = json!(n);
        }
        let config: PubSubSubscriberConfig = serde_json::from_value(config).unwrap();
        let leaf = NodeSpec {
            name: "record".into(),
            processor: Arc::new(Record { seen: self.seen.clone(), gate: self.gate.clone() }),
            retry: RetryConfig::default(),
            children: vec![],
        };
        let running = Graph { flow: "listener".into(), nodes: vec![leaf], roots: vec![0] }.spawn();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let ctx = SourceContext {
            flow: "listener".into(),
            task: "listen_job_events".into(),
            shutdown: self.stop.clone(),
            outputs: running.inputs,
            ready: Some(ready_tx),
            waits: Default::default(),
            health: Default::default(),
        };
        let source = Box::new(PubSubSource {
            flow: "listener".into(),
            task: "listen_job_events".into(),
            config,
            clients: self.clients.clone(),
            ledger: self.ledger.clone(),
            foreign_jobs: ForeignJobs::Include,
            injector: None,
        });
        let before = self.sim.pubsub_stats().subscribes;
        tokio::spawn(source.run(ctx));
        self._workers = Some(running.workers);
        ready_rx.await.unwrap();
        self.until("the first Subscribe", || self.sim.pubsub_stats().subscribes > before).await;
    }

    /// Creates the managed subscription `name` through the Tooling API, as an admin would.
    async fn create_managed(&self, name: &str) -> reqwest::StatusCode {
        let client = self.clients.get(std::path::Path::new("/etc/sfdc/credentials.json")).unwrap();
        let session = client.session().await.unwrap();
        let body = json!({
            "FullName": name,
            "Metadata": {"label": name, "topicName": "/event/BulkApi2JobEvent", "defaultReplay": "LATEST",
                         "errorRecoveryReplay": "LATEST", "state": "RUN"},
        });
        reqwest::Client::new()
            .post(format!("{}/services/data/v63.0/tooling/sobjects/ManagedEventSubscription", session.instance_url))
            .bearer_auth(session.access_token.expose())
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn job(&self) -> String {
        let client = self.clients.get(std::path::Path::new("/etc/sfdc/credentials.json")).unwrap();
        let job = CreateJob {
            soql: "SELECT Id FROM Account",
            operation: QueryOperation::Query,
            column_delimiter: ColumnDelimiter::Comma,
            line_ending: LineEnding::Lf,
        };
        job_create::create_job_unrecorded(&client, &job).await.unwrap().id
    }

    async fn until(&self, what: &str, ok: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ok() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: seen {:?}, stats {:?}",
                self.seen.lock().unwrap(),
                self.sim.pubsub_stats()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn seen_of(&self, job: &str) -> Vec<String> {
        self.seen.lock().unwrap().iter().filter(|s| s.starts_with(job)).cloned().collect()
    }

    /// A job's four events, each once, in order.
    async fn expect_job(&self, job: &str) {
        self.until("the job's four events", || self.seen_of(job).len() >= 4).await;
        let tail: Vec<String> = self.seen_of(job).iter().map(|s| s.split_once(':').unwrap().1.to_string()).collect();
        assert_eq!(
            tail,
            [
                "JOB_STATE:UploadComplete:-",
                "JOB_STATE:InProgress:-",
                "JOB_STATE:JobComplete:-",
                "RESULT:JobComplete:FINAL"
            ]
        );
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_100_outstanding_and_credit_follows_completion() {
    let mut h = harness(SimConfig::new()).await;
    let held = Arc::new(Semaphore::new(0));
    h.gate = held.clone();
    h.subscribe(None).await;
    let mut jobs = Vec::new();
    for _ in 0..40 {
        jobs.push(h.job().await);
    }
    // 160 events; none completes while the gate is shut, so the server may send only 100.
    h.until("100 delivered", || h.sim.pubsub_stats().events_delivered >= 100).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.sim.pubsub_stats().events_delivered, 100);
    assert!(h.ledger.replay_id(CONSUMER).unwrap().is_none(), "nothing completed, nothing stored");
    held.add_permits(1_000);
    h.until("all 160", || h.seen.lock().unwrap().len() >= 160).await;
    for job in &jobs {
        h.expect_job(job).await;
    }
    let stats = h.sim.pubsub_stats();
    assert_eq!(stats.events_delivered, 160);
    assert!(stats.max_requested_credit <= 100, "{stats:?}");
    h.until("the last replay id stored", || h.ledger.replay_id(CONSUMER).unwrap() == Some(h.sim.latest_replay_id()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_is_resubscribed_after_the_last_event_and_keepalives_store_the_latest_id() {
    let mut h = harness(
        SimConfig::new().pubsub_keepalive(Duration::from_millis(200)).pubsub_idle_close(Duration::from_millis(300)),
    )
    .await;
    let held = Arc::new(Semaphore::new(0));
    h.gate = held.clone();
    h.subscribe(Some(1)).await;
    let job = h.job().await;
    h.until("the first event", || h.sim.pubsub_stats().events_delivered >= 1).await;
    // One event in flight, no credit: the server closes the stream as idle.
    h.until("an idle close", || h.sim.pubsub_stats().idle_closes >= 1).await;
    held.add_permits(1_000);
    h.expect_job(&job).await;
    let stats = h.sim.pubsub_stats();
    assert!(stats.subscribes >= 2, "resubscribed: {stats:?}");
    assert_eq!(stats.events_delivered, 4, "nothing twice");
    // Credit outstanding and nothing to send: keepalives, whose latest replay id is stored.
    h.until("a keepalive", || h.sim.pubsub_stats().keepalives >= 1).await;
    h.until("the keepalive's id stored", || h.ledger.replay_id(CONSUMER).unwrap() == Some(h.sim.latest_replay_id()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_expiry_and_dropped_streams_mid_stream_lose_nothing() {
    let mut h = harness(SimConfig::new()).await;
    h.subscribe(None).await;
    let first = h.job().await;
    h.expect_job(&first).await;

    h.sim.set_faults(FaultConfig { revoke_tokens: true, ..FaultConfig::default() });
    h.until("the auth error", || h.sim.pubsub_stats().auth_errors >= 1).await;
    h.until("a new subscription", || h.sim.pubsub_stats().subscribes >= 2).await;
    let second = h.job().await;
    h.expect_job(&second).await;

    h.sim.set_faults(FaultConfig { pubsub_drop_streams: true, ..FaultConfig::default() });
    h.until("the dropped stream", || h.sim.pubsub_stats().streams_dropped >= 1).await;
    let third = h.job().await;
    h.expect_job(&third).await;
    assert_eq!(h.seen.lock().unwrap().len(), 12, "each event once: {:?}", h.seen.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_replay_id_falls_back_to_the_preset() {
    let mut h = harness(SimConfig::new()).await;
    h.ledger.set_replay_id(CONSUMER, b"not-a-replay-id").unwrap();
    h.subscribe(None).await;
    h.until("the refusal", || h.sim.pubsub_stats().replay_corrupted >= 1).await;
    h.until("a subscription from the preset", || h.sim.pubsub_stats().subscribes >= 2).await;
    let job = h.job().await;
    h.expect_job(&job).await;
    h.until("a good replay id stored", || h.ledger.replay_id(CONSUMER).unwrap() == Some(h.sim.latest_replay_id()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_subscription_commits_and_resumes_where_its_commits_left_off() {
    let mut h = harness(SimConfig::new()).await;
    assert_eq!(h.create_managed(CONSUMER).await, reqwest::StatusCode::CREATED);
    assert_eq!(h.create_managed(CONSUMER).await, reqwest::StatusCode::BAD_REQUEST, "one per developer name");
    h.managed = true;
    h.subscribe(None).await;
    let first = h.job().await;
    h.expect_job(&first).await;
    let committed = || h.sim.managed_subscription(CONSUMER).unwrap().committed;
    h.until("the last event committed", || {
        committed() == Some(u64::from_be_bytes(h.sim.latest_replay_id().try_into().unwrap()))
    })
    .await;

    // Down while a job runs: the server kept the position, so its events come on the next stream.
    h.stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = h.job().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.stop = CancellationToken::new();
    h.subscribe(None).await;
    h.expect_job(&second).await;
    assert_eq!(h.seen_of(&first).len(), 4, "the first job's events were committed: not delivered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_subscription_that_does_not_exist_stops_the_flow_naming_it() {
    let h = harness(SimConfig::new()).await;
    let config: PubSubSubscriberConfig = serde_json::from_value(json!({
        "credentials_path": "/etc/sfdc/credentials.json",
        "topic": {"name": "/event/BulkApi2JobEvent",
                  "durable_consumer_options": {"enabled": true, "name": "NoSuchSubscription", "managed_subscription": true}},
    }))
    .unwrap();
    let running = Graph { flow: "listener".into(), nodes: vec![], roots: vec![] }.spawn();
    let ctx = SourceContext {
        flow: "listener".into(),
        task: "listen_job_events".into(),
        shutdown: h.stop.clone(),
        outputs: running.inputs,
        ready: None,
        waits: Default::default(),
        health: Default::default(),
    };
    let source = Box::new(PubSubSource {
        flow: "listener".into(),
        task: "listen_job_events".into(),
        config,
        clients: h.clients.clone(),
        ledger: h.ledger.clone(),
        foreign_jobs: ForeignJobs::Include,
        injector: None,
    });
    let err = tokio::time::timeout(Duration::from_secs(20), source.run(ctx)).await.unwrap().unwrap_err().to_string();
    assert!(err.contains("NoSuchSubscription") && err.contains("managed.subscription.not.found"), "{err}");
}

/// The job's events seen, without the job id.
fn kinds(seen: Vec<String>) -> Vec<String> {
    seen.iter().map(|s| s.split_once(':').unwrap().1.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_avro_does_not_match_its_schema_is_skipped_and_the_stream_goes_on() {
    let mut h = harness(SimConfig::new()).await;
    h.subscribe(None).await;
    let before = crate::metrics::global().events_skipped("listener", "undecodable event");
    h.sim.set_faults(FaultConfig { pubsub_bad_payloads: 2, ..FaultConfig::default() });
    let first = h.job().await;
    h.until("the first job's readable events", || h.seen_of(&first).len() >= 2).await;
    let second = h.job().await;
    h.expect_job(&second).await;
    assert_eq!(kinds(h.seen_of(&first)), ["JOB_STATE:JobComplete:-", "RESULT:JobComplete:FINAL"]);
    assert_eq!(
        crate::metrics::global().events_skipped("listener", "undecodable event") - before,
        2,
        "{:?}",
        h.seen.lock().unwrap()
    );
    assert_eq!(h.sim.pubsub_stats().subscribes, 1, "skipped in the stream, not resubscribed");
    h.until("the replay id past every event", || {
        h.ledger.replay_id(CONSUMER).unwrap() == Some(h.sim.latest_replay_id())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_naming_a_schema_the_server_cannot_resolve_is_skipped_not_retried_for_ever() {
    let mut h = harness(SimConfig::new()).await;
    h.subscribe(None).await;
    let before = crate::metrics::global().events_skipped("listener", "unresolvable schema");
    h.sim.set_faults(FaultConfig { pubsub_unknown_schemas: 1, ..FaultConfig::default() });
    let first = h.job().await;
    h.until("the first job's readable events", || h.seen_of(&first).len() >= 3).await;
    let second = h.job().await;
    h.expect_job(&second).await;
    assert_eq!(
        kinds(h.seen_of(&first)),
        ["JOB_STATE:InProgress:-", "JOB_STATE:JobComplete:-", "RESULT:JobComplete:FINAL"]
    );
    assert_eq!(crate::metrics::global().events_skipped("listener", "unresolvable schema") - before, 1);
    assert_eq!(h.sim.pubsub_stats().subscribes, 1, "skipped in the stream, not resubscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_goes_silent_is_subscribed_again_and_loses_nothing() {
    let mut h = harness(SimConfig::new().pubsub_keepalive(Duration::from_millis(200))).await;
    let root = h._root.path().to_path_buf();
    let limits = crate::salesforce::Limits { stream_silence_timeout: Duration::from_secs(1), ..Default::default() };
    h.clients = Arc::new(Clients::new(
        CredentialsRoot::new(Some(root)),
        "63.0",
        ClientSettings { limits, ..ClientSettings::default() },
    ));
    h.subscribe(None).await;
    // A position to resume from (a fresh consumer with none starts at the latest event again).
    h.until("a keepalive's replay id stored", || h.ledger.replay_id(CONSUMER).unwrap().is_some()).await;
    h.sim.set_faults(FaultConfig { pubsub_freeze_streams: true, ..FaultConfig::default() });
    let job = h.job().await;
    h.expect_job(&job).await;
    let stats = h.sim.pubsub_stats();
    assert_eq!(stats.streams_frozen, 1, "{stats:?}");
    assert_eq!(stats.subscribes, 2, "subscribed again once: {stats:?}");
    assert_eq!(h.seen_of(&job).len(), 4, "each event once");
}
