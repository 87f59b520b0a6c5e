//! A batch published by bulkflow is readable without bulkflow: read back with a plain NATS client
//! (async-nats) and decoded with a plain Arrow IPC reader to the same rows. Only the publishing
//! side uses the project's code.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;
use bulkflow_engine::bus::nats::{Auth, NatsBus};
use bulkflow_engine::bus::{Bus, StreamSpec, wire};
use bulkflow_engine::event::{Event, EventData};
use bulkflow_testkit::nats::NatsServer;
use futures_util::StreamExt;

fn seed_sized_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("Id", DataType::Utf8, false),
        Field::new("Name", DataType::Utf8, true),
        Field::new("NumberOfEmployees", DataType::Int64, true),
    ]));
    let n = 10_000;
    let ids: Vec<String> = (0..n).map(|i| format!("001{i:015}")).collect();
    let names: Vec<String> =
        (0..n).map(|i| format!("Account number {i} with a reasonably long name {}", "x".repeat(i % 64))).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_batch_is_read_back_by_a_plain_nats_client_and_arrow_reader() {
    let server = tokio::task::spawn_blocking(NatsServer::start).await.unwrap();
    let batch = seed_sized_batch();

    // bulkflow's side: the wire format and the NATS bus, as the publisher task uses them.
    let bus = NatsBus::connect(&server.url(), &Auth::None).await.unwrap();
    bus.ensure_stream(&StreamSpec::new("salesforce_bulkapi", vec!["salesforce_bulkapi.>".into()])).await.unwrap();
    let mut event = Event::json("750xx-p0-b0", serde_json::Value::Null);
    event.data = EventData::Arrow(batch.clone());
    event.meta.insert("job_id".into(), "750xx".into());
    let messages = wire::encode(&event, "salesforce_bulkapi.query_jobs.account", bus.max_payload()).unwrap();
    assert!(messages.len() > 1, "a seed-sized batch exceeds 1 MB and is split");
    for m in messages.clone() {
        bus.publish(m, Duration::from_secs(10)).await.unwrap();
    }

    // Anyone's side: async-nats and arrow-ipc only.
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream("salesforce_bulkapi").await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("reader".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut fetched = consumer.fetch().max_messages(100).messages().await.unwrap();
    let mut rows: Vec<RecordBatch> = Vec::new();
    let mut ids = Vec::new();
    while let Some(message) = fetched.next().await {
        let message = message.unwrap();
        let headers = message.headers.clone().unwrap();
        assert_eq!(headers.get("Content-Type").unwrap().as_str(), "application/vnd.apache.arrow.stream");
        assert_eq!(headers.get("Bulkflow-Job-Id").unwrap().as_str(), "750xx");
        ids.push(headers.get("Nats-Msg-Id").unwrap().as_str().to_string());
        let reader = StreamReader::try_new(std::io::Cursor::new(message.payload.to_vec()), None).unwrap();
        for b in reader {
            rows.push(b.unwrap());
        }
        message.ack().await.unwrap();
    }
    assert_eq!(ids, messages.iter().map(|m| m.msg_id.clone()).collect::<Vec<_>>());
    let read = arrow::compute::concat_batches(&batch.schema(), &rows).unwrap();
    assert_eq!(read, batch, "the same rows, in order");
}
