//! Acceptance for issue #8: the account writer flow (`convert → object_store`, as in the seed's
//! writer flow) fed Bulk-shaped batches — every column text, ids `<job>-p<page>-b<index>`, meta
//! with `run_id` — writes Parquet that the parquet crate's own reader reads back with the schema's
//! types and the right row counts, under `EventDate=YYYY-MM-DD/<batch id>.parquet`, on local disk
//! and on a real S3-compatible server (moto). A redelivered batch leaves one file; a bad value fails
//! its batch only, naming column, `Id` and value.
//!
//! Most cases build the flow's graph with `runtime::build::build_graph` and feed it as the source
//! would, to see each event's outcome; the bus-fed cases run the whole flow in a node, its
//! `nats_jetstream_subscriber` reading batches published in the wire format to the embedded bus
//! and to a real nats-server, and writing to the S3 server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bulkflow_engine::bus::embedded::EmbeddedBus;
use bulkflow_engine::bus::nats::{Auth, NatsBus};
use bulkflow_engine::bus::registry::BusRegistry;
use bulkflow_engine::bus::{Bus, StreamSpec, wire};
use bulkflow_engine::config::EngineConfig;
use bulkflow_engine::credentials::CredentialsRoot;
use bulkflow_engine::event::{Event, EventData};
use bulkflow_engine::flow::model::RetryConfig;
use bulkflow_engine::flow::{Flow, TaskKind};
use bulkflow_engine::node::Node;
use bulkflow_engine::runtime::build::{BuildContext, EnvLookup};
use bulkflow_engine::runtime::graph::{Graph, NodeSpec};
use bulkflow_engine::runtime::token::Outcome;
use bulkflow_engine::schema::TableSchema;
use bulkflow_engine::tasks::convert::processor::ConvertProcessor;
use bulkflow_engine::tasks::object_store::processor::ObjectStoreProcessor;
use bulkflow_testkit::moto::Moto;
use bulkflow_testkit::nats::NatsServer;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::json;

#[path = "support/flow_feed.rs"]
mod flow_feed;

use flow_feed::repo;
const JOB: &str = "750R0000001AbC";
const RUN: &str = "salesforce_bulkapi_query_account@2026-11-25T09:05:00Z";
const DAY_DIR: &str = "EventDate=2026-11-25";

/// The seed's writer flow with the warehouse branch left out (issue #9) and the object store
/// pointed at `path`.
fn writer_flow(path: &str, credentials_path: &str, client_options: &str) -> String {
    format!(
        r#"flow:
  name: salesforce_bulkapi_writer_account
  tasks:
    - nats_jetstream_subscriber:
        name: start_subscription
        url: "{{{{env.NATS_URL}}}}"
        subject: salesforce_bulkapi.query_jobs.account
        durable_name: salesforce_bulkapi_account_writer
    - convert:
        name: cast_schema
        target_format: arrow
        schema:
          resource: salesforce/schema_account.json
    - object_store:
        name: write_to_object_store
        operation: write
        credentials_path: {credentials_path}
        path: "{path}"
        hive_partition_options:
          enabled: true
          partition_keys:
            - EventDate
        client_options: {client_options}
        depends_on: [cast_schema]
"#
    )
}

/// A page of Bulk API results as the reader hands it on: text columns in the query's order plus a
/// relationship column the schema does not name (dropped by `convert`).
fn bulk_batch(page: usize, index: usize, rows: usize, bad_revenue_at: Option<usize>) -> Event {
    let col = |f: &dyn Fn(usize) -> String| -> ArrayRef { Arc::new(StringArray::from_iter_values((0..rows).map(f))) };
    let names = ["Id", "Name", "Type", "Industry", "AnnualRevenue", "CreatedDate", "LastModifiedDate", "Owner.Name"];
    let columns = vec![
        col(&|i| format!("001R{page}{index}{i:08}")),
        col(&|i| format!("Account {i}, Inc.")),
        col(&|i| if i % 3 == 0 { String::new() } else { "Customer".into() }),
        col(&|_| "Energy".into()),
        col(&|i| {
            if Some(i) == bad_revenue_at {
                "lots".into()
            } else if i % 5 == 0 {
                String::new()
            } else {
                format!("{i}.25")
            }
        }),
        col(&|_| "2024-01-01T00:00:00.000Z".into()),
        col(&|i| format!("2026-11-25T08:{:02}:00.000+0000", i % 60)),
        col(&|_| "Owner".into()),
    ];
    let schema = Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect::<Vec<_>>());
    let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
    let mut event = Event::json(format!("{JOB}-p{page}-b{index}"), json!(null));
    event.data = EventData::Arrow(batch);
    event.subject = Some("salesforce_bulkapi.query_jobs.account".into());
    event.meta.insert("run_id".into(), json!(RUN));
    event.meta.insert("job_id".into(), json!(JOB));
    event.meta.insert("object_name".into(), json!("Account"));
    event
}

/// Loads a writer flow given as YAML.
fn load_flow(flow_yaml: &str, credentials: &CredentialsRoot, env: &EnvLookup) -> Flow {
    flow_feed::load_flow("writer.yaml", flow_yaml, credentials, env)
}

/// Outcomes by event id, so the checks do not depend on completion order.
fn sorted(mut outcomes: Vec<(String, Outcome)>) -> Vec<(String, Outcome)> {
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    outcomes
}

/// Builds the flow's graph and feeds it `events` as its source would; every event's outcome.
async fn run_flow(
    flow_yaml: &str,
    credentials_root: &Path,
    env: EnvLookup,
    events: Vec<Event>,
) -> Vec<(String, Outcome)> {
    sorted(flow_feed::run_flow("writer.yaml", flow_yaml, credentials_root, env, events).await)
}

/// Two pages, the first batch delivered twice, and one batch with a value that cannot be cast.
fn deliveries() -> Vec<Event> {
    vec![
        bulk_batch(0, 0, 1000, None),
        bulk_batch(0, 1, 1000, None),
        bulk_batch(0, 0, 1000, None), // redelivered
        bulk_batch(1, 0, 500, None),
        bulk_batch(2, 0, 10, Some(7)),
    ]
}

fn check_outcomes(outcomes: &[(String, Outcome)]) {
    let ok: Vec<&str> = outcomes.iter().filter(|(_, o)| *o == Outcome::Completed).map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ok,
        vec![format!("{JOB}-p0-b0"), format!("{JOB}-p0-b0"), format!("{JOB}-p0-b1"), format!("{JOB}-p1-b0")]
    );
    let failed: Vec<_> = outcomes
        .iter()
        .filter_map(|(id, o)| match o {
            Outcome::Failed { task, error } => Some((id.as_str(), task.as_str(), error.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{outcomes:?}");
    let (id, task, error) = failed[0];
    assert_eq!((id, task), (format!("{JOB}-p2-b0").as_str(), "cast_schema"));
    assert!(
        error.contains("column `AnnualRevenue`, record Id `001R2000000007`: cannot cast `lots` to float64"),
        "{error}"
    );
}

/// Every Parquet file's name and rows, read with the parquet crate's reader, checking each file's
/// Arrow schema is the account schema's.
fn check_files(files: Vec<(String, bytes::Bytes)>, base: &str) {
    let expected_schema = TableSchema::from_json(
        &std::fs::read_to_string(repo().join("resources/salesforce/schema_account.json")).unwrap(),
    )
    .unwrap()
    .arrow_schema();
    let mut seen = Vec::new();
    for (name, bytes) in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let types: Vec<(String, DataType)> =
            reader.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
        let want: Vec<(String, DataType)> =
            expected_schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
        assert_eq!(types, want, "{name}");
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        seen.push((name, rows));
    }
    seen.sort();
    let at = |page: usize, index: usize| format!("{base}/{DAY_DIR}/{JOB}-p{page}-b{index}.parquet");
    assert_eq!(seen, vec![(at(0, 0), 1000), (at(0, 1), 1000), (at(1, 0), 500)]);
}

#[tokio::test]
async fn the_writer_flow_writes_partitioned_parquet_to_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake");
    let flow = writer_flow(&format!("{}/salesforce/account", out.display()), "/etc/none.json", "{}");
    let outcomes = run_flow(&flow, dir.path(), Arc::new(|_| None), deliveries()).await;
    check_outcomes(&outcomes);
    let mut files = Vec::new();
    for entry in walk(&out) {
        let name = entry.strip_prefix(&out).unwrap().display().to_string();
        files.push((name, bytes::Bytes::from(std::fs::read(&entry).unwrap())));
    }
    check_files(files, "salesforce/account");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// A moto server with the bucket `lake` and a credentials root naming its keys.
struct S3Lake {
    moto: Moto,
    root: tempfile::TempDir,
}

impl S3Lake {
    fn start() -> Self {
        let moto = Moto::start();
        moto.create_bucket("lake");
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/aws")).unwrap();
        std::fs::write(
            root.path().join("etc/aws/credentials.json"),
            r#"{"access_key_id": "AKIDACCEPTANCE", "secret_access_key": "acceptance-secret"}"#,
        )
        .unwrap();
        Self { moto, root }
    }

    /// The writer flow pointed at the bucket through the environment, as a deployment would.
    fn flow(&self) -> String {
        let options = r#"{endpoint: "{{env.S3_ENDPOINT}}", aws_region: us-east-1}"#;
        writer_flow("{{env.BUCKET_PATH}}/salesforce/account", "/etc/aws/credentials.json", options)
    }

    fn env(&self, nats_url: Option<String>) -> EnvLookup {
        let endpoint = self.moto.endpoint();
        Arc::new(move |name| match name {
            "S3_ENDPOINT" => Some(endpoint.clone()),
            "BUCKET_PATH" => Some("s3://lake".into()),
            "NATS_URL" => nats_url.clone(),
            _ => None,
        })
    }

    /// Every object under the day's partition, read by a client of our own.
    async fn files(&self) -> Vec<(String, bytes::Bytes)> {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name("lake")
            .with_endpoint(self.moto.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("AKIDACCEPTANCE")
            .with_secret_access_key("acceptance-secret")
            .build()
            .unwrap();
        let prefix = ObjectPath::from(format!("salesforce/account/{DAY_DIR}"));
        let listed = store.list_with_delimiter(Some(&prefix)).await.unwrap();
        let mut files = Vec::new();
        for meta in listed.objects {
            let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
            files.push((meta.location.to_string(), bytes));
        }
        files
    }
}

#[tokio::test]
async fn the_writer_flow_writes_partitioned_parquet_to_s3() {
    let lake = S3Lake::start();
    let outcomes = run_flow(&lake.flow(), lake.root.path(), lake.env(None), deliveries()).await;
    check_outcomes(&outcomes);
    check_files(lake.files().await, "salesforce/account");
}

/// The good batches of [`deliveries`], published as the listener flow's publisher does (wire
/// format, deterministic ids; the redelivered one again, which the bus drops as a duplicate).
async fn publish(bus: &dyn Bus) {
    let stream = StreamSpec::new("salesforce_bulkapi", vec!["salesforce_bulkapi.>".into()]);
    bus.ensure_stream(&stream).await.unwrap();
    for event in deliveries().into_iter().filter(|e| !e.id.ends_with("p2-b0")) {
        for message in wire::encode(&event, "salesforce_bulkapi.query_jobs.account", bus.max_payload()).unwrap() {
            bus.publish(message, Duration::from_secs(10)).await.unwrap();
        }
    }
}

/// Runs the writer flow in a node (its subscriber reading `buses`) until three Parquet files are
/// in the bucket, then checks them.
async fn the_bus_fed_flow_writes_to_s3(lake: &S3Lake, buses: BusRegistry, nats_url: Option<String>) {
    let credentials = CredentialsRoot::new(Some(lake.root.path().to_path_buf()));
    let env = lake.env(nats_url);
    let flow = load_flow(&lake.flow(), &credentials, &env);
    let state = tempfile::tempdir().unwrap();
    let config = EngineConfig { state_dir: state.path().to_path_buf(), ..EngineConfig::default() };
    let build = BuildContext { buses: Arc::new(buses), ..flow_feed::build_context(credentials, env, config) };
    let node = Node::start(&[flow], build, Duration::from_secs(5), Duration::from_secs(5)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut files = lake.files().await;
    while files.len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        files = lake.files().await;
    }
    node.stop(Duration::from_secs(5)).await;
    check_files(files, "salesforce/account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_flow_fed_by_the_embedded_bus_writes_parquet_to_s3() {
    let lake = S3Lake::start();
    let dir = tempfile::tempdir().unwrap();
    let bus = EmbeddedBus::open(dir.path()).unwrap();
    publish(&bus).await;
    let credentials = CredentialsRoot::new(Some(lake.root.path().to_path_buf()));
    the_bus_fed_flow_writes_to_s3(&lake, BusRegistry::with_embedded(bus, credentials), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_flow_fed_by_nats_writes_parquet_to_s3() {
    let lake = S3Lake::start();
    let server = tokio::task::spawn_blocking(NatsServer::start).await.unwrap();
    let bus = NatsBus::connect(&server.url(), &Auth::None).await.unwrap();
    publish(&bus).await;
    let credentials = CredentialsRoot::new(Some(lake.root.path().to_path_buf()));
    the_bus_fed_flow_writes_to_s3(&lake, BusRegistry::new(None, credentials), Some(server.url())).await;
}

/// The seed's writer flow file, byte for byte: its `cast_schema` and `write_to_object_store` tasks run
/// as written, with `GCS_BUCKET_PATH` pointing at a local folder. (Its source and its BigQuery branch
/// are other issues' tasks, so the two are wired here as the flow wires them.)
#[tokio::test]
async fn the_seed_writer_flow_s_convert_and_object_store_tasks_run_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket").display().to_string();
    let env: EnvLookup = Arc::new(move |name| (name == "GCS_BUCKET_PATH").then(|| bucket.clone()));
    let yaml = std::fs::read_to_string(repo().join("workflows/seed/salesforce_bulkapi_writer_account.yaml")).unwrap();
    let credentials = CredentialsRoot::new(Some(dir.path().to_path_buf()));
    let flow = load_flow(&yaml, &credentials, &env);
    let task = |name: &str| flow.tasks.iter().find(|t| t.name == name).unwrap();
    let TaskKind::Convert { config, schema } = &task("cast_schema").kind else { panic!("cast_schema is a convert") };
    let convert = ConvertProcessor::new(&flow.name, "cast_schema", config, schema.clone());
    let TaskKind::ObjectStore(config) = &task("write_to_object_store").kind else { panic!("an object_store") };
    let credentials_path = config.credentials_path.as_deref().map(|p| credentials.resolve(Path::new(p)));
    let write = ObjectStoreProcessor::new(
        &flow.name,
        "write_to_object_store",
        config,
        credentials_path,
        env,
        bulkflow_engine::tls::Trust::default(),
    );
    let node = |name: &str, processor: Arc<dyn bulkflow_engine::runtime::processor::Processor>, children| NodeSpec {
        name: name.into(),
        processor,
        retry: RetryConfig::default(),
        children,
    };
    let graph = Graph {
        flow: flow.name.clone(),
        nodes: vec![
            node("cast_schema", Arc::new(convert), vec![1]),
            node("write_to_object_store", Arc::new(write), vec![]),
        ],
        roots: vec![0],
    };
    let outcomes = sorted(flow_feed::feed(graph, deliveries()).await);
    check_outcomes(&outcomes);
    let out = dir.path().join("bucket");
    let files = walk(&out)
        .into_iter()
        .map(|f| (f.strip_prefix(&out).unwrap().display().to_string(), bytes::Bytes::from(std::fs::read(&f).unwrap())))
        .collect();
    check_files(files, "salesforce/account");
}
