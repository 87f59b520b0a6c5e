//! The seed's listener flow, unchanged, against the simulator's Pub/Sub API: a job created by the
//! seed's query flow yields exactly one results stream of Arrow batches on the (embedded) bus, with
//! `meta.object_name`, `meta.job_id` and `meta.job_state` set; JOB_STATE and PARTIAL events are
//! filtered by the seed's script, and a job bulkflow did not create is skipped unless
//! `foreign_jobs: include`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkflow_engine::bus::registry::BusRegistry;
use bulkflow_engine::bus::wire::{self, Part};
use bulkflow_engine::bus::{ConsumerSpec, SharedBus};
use bulkflow_engine::config::{EngineConfig, ForeignJobs};
use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::event::EventData;
use bulkflow_engine::flow::{LoadContext, load_dir};
use bulkflow_engine::run::{Ledger, RunFilter};
use bulkflow_engine::runtime::build::{BuildContext, build_flow};
use bulkflow_engine::runtime::engine::Engine;
use bulkflow_engine::salesforce::ClientSettings;
use bulkflow_engine::salesforce::Clients;
use bulkflow_engine::salesforce::bulk::CreateJob;
use bulkflow_engine::salesforce::job_create;
use bulkflow_engine::schedule::ManualClock;
use bulkflow_engine::store::MemoryStore;
use bulkflow_engine::tasks::salesforce_bulkapi_query_job::config::{ColumnDelimiter, LineEnding, QueryOperation};
use bulkflow_sim::{SimConfig, Simulator};
use chrono::{DurationRound, Utc};

const ACCOUNTS: usize = 250;
/// Small pages, so the job has several and PARTIAL events are published before the FINAL one.
const PAGE: usize = 100;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

struct Setup {
    sim: Simulator,
    _root: tempfile::TempDir,
    _state: tempfile::TempDir,
    buses: Arc<BusRegistry>,
    engine: Engine,
    clients: Arc<Clients>,
    ledger: Arc<Ledger>,
}

async fn start(foreign_jobs: ForeignJobs) -> Setup {
    let sim = SimConfig::new()
        .records([("Account", ACCOUNTS)])
        .job_latency(Duration::from_millis(600))
        .max_page_records(PAGE)
        .partial_result_events(true)
        .start()
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    sim.credentials().write_to(&root.path().join("etc/sfdc/credentials.json")).unwrap();
    let credentials = CredentialsRoot::new(Some(root.path().to_path_buf()));
    let resources = repo().join("resources");
    let env = |_: &str| None;
    let ctx = LoadContext { resources_dir: &resources, credentials: &credentials, env: &env };
    let mut flows = Vec::new();
    for file in ["salesforce_bulkapi_query_account.yaml", "salesforce_bulkapi_job_listener.yaml"] {
        let loaded = load_dir(&repo().join("workflows/seed").join(file), &ctx).unwrap();
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        flows.extend(loaded.flows);
    }
    let start = Utc::now().duration_trunc(chrono::Duration::minutes(5)).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let buses = Arc::new(BusRegistry::new(Some(state.path().to_path_buf()), credentials.clone()));
    let clients = Arc::new(Clients::new(credentials.clone(), "63.0", ClientSettings::default()));
    let ledger = Arc::new(Ledger::new(Arc::new(MemoryStore::new()), clock.clone()));
    let build = BuildContext {
        ledger: ledger.clone(),
        clock,
        config: EngineConfig { resources_dir: resources.clone(), foreign_jobs, ..EngineConfig::default() },
        credentials,
        env: Arc::new(|_: &str| None),
        buses: buses.clone(),
        salesforce: clients.clone(),
        injector: Arc::default(),
    };
    let parts = flows.iter().map(|f| build_flow(f, &build).unwrap()).collect();
    let engine = Engine::start(parts, Default::default()).await;
    Setup { sim, _root: root, _state: state, buses, engine, clients, ledger }
}

/// A fresh durable name: each read starts a consumer of its own at the stream's start.
fn reader_name() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("reader{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Every batch on the bus: event id → (meta, rows).
async fn batches(bus: &SharedBus, reader: &str) -> Vec<(String, serde_json::Map<String, serde_json::Value>, usize)> {
    let spec = ConsumerSpec {
        stream: "salesforce_bulkapi".into(),
        durable_name: reader.into(),
        filter_subject: "salesforce_bulkapi.>".into(),
        ack_wait: Duration::from_secs(60),
        max_deliver: None,
        max_ack_pending: 10_000,
    };
    let mut consumer = bus.consumer(&spec).await.unwrap();
    let mut out = Vec::new();
    loop {
        let messages = consumer.fetch(100, Duration::from_millis(300)).await.unwrap();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            let part = Part::from_message(&m.headers, m.payload.clone(), "x").unwrap();
            let event = wire::assemble(&[part], &m.subject).unwrap();
            let EventData::Arrow(batch) = &event.data else { panic!("not an Arrow batch: {:?}", event.data) };
            out.push((event.id.clone(), event.meta.clone(), batch.num_rows()));
        }
    }
}

impl Setup {
    /// A job made straight through the API, as another team's tool would: the ledger never sees it.
    async fn foreign_job(&self) -> String {
        let client = self.clients.get(Path::new("/etc/sfdc/credentials.json")).unwrap();
        let job = CreateJob {
            soql: "SELECT Id FROM Account",
            operation: QueryOperation::Query,
            column_delimiter: ColumnDelimiter::Comma,
            line_ending: LineEnding::Lf,
        };
        job_create::create_job_unrecorded(&client, &job).await.unwrap().id
    }

    /// Waits until the bus holds `rows` rows per job in `jobs`, then a little longer for strays.
    async fn wait_for_rows(
        &self,
        jobs: &BTreeSet<String>,
    ) -> Vec<(String, serde_json::Map<String, serde_json::Value>, usize)> {
        let bus = self.buses.bus("", None).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = if bus.stream_exists("salesforce_bulkapi").await.unwrap() {
                batches(&bus, &reader_name()).await
            } else {
                Vec::new()
            };
            let mut rows: BTreeMap<String, usize> = BTreeMap::new();
            for (_, meta, n) in &got {
                *rows.entry(meta["job_id"].as_str().unwrap().to_string()).or_default() += n;
            }
            if jobs.iter().all(|j| rows.get(j).copied().unwrap_or(0) >= ACCOUNTS) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                return batches(&bus, &reader_name()).await;
            }
            assert!(Instant::now() < deadline, "the results did not all arrive: {rows:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The job the seed's query flow created, once it has.
    async fn our_job(&self) -> String {
        for _ in 0..500 {
            let runs = self.ledger.list_runs(&RunFilter::default()).unwrap();
            if let Some(job) = runs.iter().find_map(|r| r.job_id()) {
                return job.to_string();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the query flow created no job");
    }
}

async fn wait_for_subscription(sim: &Simulator) {
    for _ in 0..500 {
        if sim.pubsub_stats().subscribes >= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the listener never subscribed");
}

fn assert_one_stream(got: &[(String, serde_json::Map<String, serde_json::Value>, usize)], job: &str) {
    let mine: Vec<_> = got.iter().filter(|(_, meta, _)| meta["job_id"] == job).collect();
    let ids: BTreeSet<&str> = mine.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), mine.len(), "no batch twice: {ids:?}");
    assert_eq!(mine.iter().map(|(_, _, n)| n).sum::<usize>(), ACCOUNTS, "every record once");
    for (id, meta, _) in &mine {
        assert_eq!(meta["object_name"], "account", "{id}");
        assert_eq!(meta["job_state"], "JobComplete", "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_job_yields_exactly_one_results_stream_and_a_foreign_job_is_skipped() {
    let s = start(ForeignJobs::Skip).await;
    wait_for_subscription(&s.sim).await;
    let foreign = s.foreign_job().await;
    let ours = s.our_job().await;
    s.wait_for_rows(&BTreeSet::from([ours.clone()])).await;
    // Both jobs' events were delivered (JOB_STATE x3, PARTIAL x2 and FINAL each), and the
    // foreign job's FINAL had time to go anywhere it would go.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.sim.pubsub_stats().events_delivered < 12 {
        assert!(Instant::now() < deadline, "{:?}", s.sim.pubsub_stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = s.wait_for_rows(&BTreeSet::from([ours.clone()])).await;
    assert_one_stream(&got, &ours);
    assert!(got.iter().all(|(_, meta, _)| meta["job_id"] == ours.as_str()), "only our job's batches");
    assert!(!s.sim.stats().pages_served.contains_key(&foreign), "the foreign job's results were never fetched");
    s.engine.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_jobs_include_processes_them_as_the_seed_flow_alone_would() {
    let s = start(ForeignJobs::Include).await;
    wait_for_subscription(&s.sim).await;
    let foreign = s.foreign_job().await;
    let ours = s.our_job().await;
    let got = s.wait_for_rows(&BTreeSet::from([ours.clone(), foreign.clone()])).await;
    assert_one_stream(&got, &ours);
    assert_one_stream(&got, &foreign);
    s.engine.stop(Duration::from_secs(5)).await;
}
