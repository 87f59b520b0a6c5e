//! A writer process SIGKILLed mid-stream loses nothing: `bulkflow run` with a writer-style flow
//! (`nats_jetstream_subscriber → object_store` to a local directory) consumes 100 batches, is
//! killed with some written and some not, and started again. Afterwards every batch has exactly
//! one complete file (named by its deterministic id), every row is there once, and the bus has
//! nothing left to deliver: the unacked batches were delivered again to the second process. Run
//! against a real nats-server and against the embedded bus.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use bulkflow_engine::bus::embedded::EmbeddedBus;
use bulkflow_engine::bus::nats::{Auth, NatsBus};
use bulkflow_engine::bus::{Bus, ConsumerSpec, StreamSpec, wire};
use bulkflow_engine::event::{Event, EventData};
use bulkflow_testkit::nats::NatsServer;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const BATCHES: usize = 100;
const ROWS: usize = 3_000;
const SUBJECT: &str = "salesforce_bulkapi.query_jobs.account";
const STREAM: &str = "salesforce_bulkapi";
const DURABLE: &str = "salesforce_bulkapi_account_writer";
const RUN: &str = "salesforce_bulkapi_query_account@2026-11-25T09:05:00Z";
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The seed's writer flow with the object store on local disk and no cast (the batches are
/// already typed), a short ack timeout so the test does not wait long for redeliveries, and a
/// small in-flight bound so the kill finds batches fetched but not yet written.
const FLOW: &str = r#"flow:
  name: salesforce_bulkapi_writer_account
  tasks:
    - nats_jetstream_subscriber:
        name: start_subscription
        url: "{{env.NATS_URL}}"
        subject: salesforce_bulkapi.query_jobs.account
        durable_name: salesforce_bulkapi_account_writer
        ack_timeout: 2s
        max_ack_pending: 8
        fetch_batch: 4
        stream:
          create_or_update: true
          name: salesforce_bulkapi
          subjects: ["salesforce_bulkapi.>"]
          max_age: 1h
          discard: old
    - object_store:
        name: write_to_object_store
        operation: write
        path: out
        format: parquet
        hive_partition_options:
          enabled: true
          partition_keys: [EventDate]
"#;

fn batch_id(i: usize) -> String {
    format!("750R0000001AbC-p{i:05}-b0000")
}

/// A batch whose rows name their batch, so a row written twice or lost is visible.
fn batch(i: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("Id", DataType::Utf8, false),
        Field::new("Name", DataType::Utf8, true),
        Field::new("NumberOfEmployees", DataType::Int64, true),
    ]));
    let ids: Vec<String> = (0..ROWS).map(|r| format!("001{i:05}{r:010}")).collect();
    let names: Vec<String> = (0..ROWS).map(|r| format!("Account {r} of batch {i}")).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from_iter_values((0..ROWS).map(|r| r as i64))),
        ],
    )
    .unwrap()
}

fn stream_spec() -> StreamSpec {
    StreamSpec {
        max_age: Some(Duration::from_secs(3600)),
        ..StreamSpec::new(STREAM, vec!["salesforce_bulkapi.>".into()])
    }
}

/// Publishes every batch as the listener flow's publisher would: the wire format, the
/// deterministic ids, the run in meta.
async fn publish_all(bus: &dyn Bus) {
    bus.ensure_stream(&stream_spec()).await.unwrap();
    for i in 0..BATCHES {
        let mut event = Event::json(batch_id(i), serde_json::Value::Null);
        event.data = EventData::Arrow(batch(i));
        event.meta.insert("run_id".into(), RUN.into());
        event.meta.insert("job_id".into(), "750R0000001AbC".into());
        event.meta.insert("batch_seq".into(), i.into());
        for m in wire::encode(&event, SUBJECT, bus.max_payload()).unwrap() {
            bus.publish(m, Duration::from_secs(10)).await.unwrap();
        }
    }
}

fn start(dir: &Path, nats_url: Option<&str>, log: &str) -> Child {
    let log = std::fs::File::create(dir.join(log)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkflow"));
    cmd.current_dir(dir)
        .args(["run", "--workflows", "wf", "--resources", "res", "--state", "state"])
        .env("RUST_LOG", "info")
        .env_remove("BULKFLOW_CONFIG")
        .env_remove("BULKFLOW_NATS_URL")
        .stdout(Stdio::null())
        .stderr(log);
    match nats_url {
        Some(url) => cmd.env("NATS_URL", url),
        None => cmd.env_remove("NATS_URL"),
    };
    cmd.spawn().unwrap()
}

/// The data files written so far: complete ones, as the local store renames a file into place.
/// (A write the kill interrupted can leave its staging file, `<name>.parquet#N`, behind; it is
/// not data and is left out.)
fn written(dir: &Path) -> Vec<PathBuf> {
    let day = dir.join("out/EventDate=2026-11-25");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&day).map(|entries| entries.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "parquet"));
    files.sort();
    files
}

fn wait_for_files(dir: &Path, n: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let count = written(dir).len();
        if count >= n || Instant::now() >= deadline {
            return count;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stop(child: &mut Child) {
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success(), "bulkflow run exits cleanly on SIGINT");
}

/// Starts the writer, SIGKILLs it once a fifth of the batches are written, starts it again and
/// checks the result. `nats_url`: the NATS server, or `None` for the embedded bus.
fn kill_the_writer_mid_stream(dir: &Path, nats_url: Option<&str>) {
    std::fs::create_dir_all(dir.join("wf")).unwrap();
    std::fs::create_dir_all(dir.join("res")).unwrap();
    std::fs::write(dir.join("wf/writer.yaml"), FLOW).unwrap();

    let mut first = start(dir, nats_url, "run1.log");
    let at_kill = wait_for_files(dir, BATCHES / 5, Duration::from_secs(60));
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let log1 = std::fs::read_to_string(dir.join("run1.log")).unwrap();
    assert!(at_kill >= BATCHES / 5, "the first process wrote {at_kill} files in 60 s; its log:\n{log1}");
    assert!(at_kill < BATCHES, "the kill came mid-stream ({at_kill} of {BATCHES} written)");

    let started = Instant::now();
    let mut second = start(dir, nats_url, "run2.log");
    let total = wait_for_files(dir, BATCHES, Duration::from_secs(90));
    let log2 = std::fs::read_to_string(dir.join("run2.log")).unwrap();
    assert_eq!(total, BATCHES, "every batch is written after the restart; second log:\n{log2}");
    let resumed_in = started.elapsed();
    // Let anything still unacked come round again (it would overwrite its own file, not add one).
    std::thread::sleep(ACK_TIMEOUT * 2);
    stop(&mut second);

    let files = written(dir);
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let expected: Vec<String> = (0..BATCHES).map(|i| format!("{}.parquet", batch_id(i))).collect();
    assert_eq!(names, expected, "one file per batch, named by its id");
    let mut rows = BTreeSet::new();
    for (i, file) in files.iter().enumerate() {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap().build().unwrap();
        let mut in_file = 0;
        for b in reader {
            let b = b.unwrap();
            let ids = b.column_by_name("Id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            for id in ids.iter().flatten() {
                assert!(id.starts_with(&format!("001{i:05}")), "{id} in {}", file.display());
                assert!(rows.insert(id.to_string()), "row {id} written twice");
            }
            in_file += ids.len() - ids.null_count();
        }
        assert_eq!(in_file, ROWS, "{} is complete", file.display());
    }
    assert_eq!(rows.len(), BATCHES * ROWS, "every row once");
    eprintln!(
        "{}: killed after {at_kill} of {BATCHES} batches; the restarted writer finished the rest in {resumed_in:?}",
        if nats_url.is_some() { "nats" } else { "embedded" }
    );
}

/// After the writer stopped: the durable consumer has nothing pending, i.e. every batch was
/// acked by one of the two processes and none is waiting for another delivery.
async fn nothing_left_to_deliver(bus: &dyn Bus) {
    let spec = ConsumerSpec {
        stream: STREAM.into(),
        durable_name: DURABLE.into(),
        filter_subject: SUBJECT.into(),
        ack_wait: ACK_TIMEOUT,
        max_deliver: None,
        max_ack_pending: 256,
    };
    let mut consumer = bus.consumer(&spec).await.unwrap();
    // Longer than the ack wait: an unacked message would be due again by then.
    let left = consumer.fetch(BATCHES, ACK_TIMEOUT + Duration::from_secs(1)).await.unwrap();
    let ids: Vec<_> = left.iter().map(|m| m.header("Nats-Msg-Id").unwrap_or_default().to_string()).collect();
    assert!(left.is_empty(), "messages still to deliver after the writer finished: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_writer_on_nats_resumes_and_writes_every_batch_once() {
    let server = tokio::task::spawn_blocking(NatsServer::start).await.unwrap();
    let url = server.url();
    let bus = NatsBus::connect(&url, &Auth::None).await.unwrap();
    publish_all(&bus).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let process_url = url.clone();
    tokio::task::spawn_blocking(move || kill_the_writer_mid_stream(&dir, Some(&process_url))).await.unwrap();
    nothing_left_to_deliver(&bus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_writer_on_the_embedded_bus_resumes_and_writes_every_batch_once() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    {
        // The embedded bus lives in the writer's state directory; fill it before the writer
        // starts (it is locked to one process while the writer runs).
        let bus = EmbeddedBus::open(&state).unwrap();
        publish_all(&bus).await;
    }
    let dir = tmp.path().to_path_buf();
    tokio::task::spawn_blocking(move || kill_the_writer_mid_stream(&dir, None)).await.unwrap();
    let bus = EmbeddedBus::open(&state).unwrap();
    nothing_left_to_deliver(&bus).await;
}
