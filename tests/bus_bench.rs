//! Throughput of the bus for seed-sized batches (10,000 Account rows, 7 text columns, about
//! 2 MB of Arrow IPC each, so split in parts under nats-server's 1 MB `max_payload`): publishing in
//! the wire format with the server's ack per message, then fetching, reassembling and acking, on a
//! real nats-server and on the embedded bus. Not part of the suite; run it and record the numbers
//! in BENCHMARKS.md:
//!
//! ```sh
//! cargo test --release --test bus_bench -- --ignored --nocapture
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bulkflow_engine::bus::embedded::EmbeddedBus;
use bulkflow_engine::bus::nats::{Auth, NatsBus};
use bulkflow_engine::bus::wire::{self, Part};
use bulkflow_engine::bus::{Bus, ConsumerSpec, StreamSpec};
use bulkflow_engine::event::{Event, EventData};
use bulkflow_testkit::nats::NatsServer;

#[path = "support/text_page.rs"]
mod text_page;

use text_page::account_page;

const BATCHES: usize = 40;
const ROWS: usize = 10_000;
const SUBJECT: &str = "salesforce_bulkapi.query_jobs.account";

fn events() -> Vec<Event> {
    (0..BATCHES)
        .map(|b| {
            let mut event = Event::json(format!("750R0000001AbC-p{b:05}-b0000"), serde_json::Value::Null);
            event.data = EventData::Arrow(account_page(b, ROWS));
            event.meta.insert("run_id".into(), "salesforce_bulkapi_query_account@2026-11-25T09:05:00Z".into());
            event.meta.insert("batch_seq".into(), b.into());
            event
        })
        .collect()
}

async fn measure(name: &str, bus: &dyn Bus) {
    bus.ensure_stream(&StreamSpec::new("salesforce_bulkapi", vec!["salesforce_bulkapi.>".into()])).await.unwrap();
    let events = events();
    let started = Instant::now();
    let (mut parts, mut bytes) = (0, 0);
    for event in &events {
        for message in wire::encode(event, SUBJECT, bus.max_payload()).unwrap() {
            bytes += message.payload.len();
            parts += 1;
            bus.publish(message, Duration::from_secs(30)).await.unwrap();
        }
    }
    let published = started.elapsed();

    let spec = ConsumerSpec {
        stream: "salesforce_bulkapi".into(),
        durable_name: "bench".into(),
        filter_subject: SUBJECT.into(),
        ack_wait: Duration::from_secs(60),
        max_deliver: None,
        max_ack_pending: 1000,
    };
    let mut consumer = bus.consumer(&spec).await.unwrap();
    let started = Instant::now();
    let mut pending: HashMap<String, Vec<Part>> = HashMap::new();
    let mut assembled = 0;
    let mut rows = 0;
    while assembled < BATCHES {
        for message in consumer.fetch(16, Duration::from_secs(5)).await.unwrap() {
            let part = Part::from_message(&message.headers, message.payload.clone(), "?").unwrap();
            let (id, count) = (part.event_id.clone(), part.count);
            message.ack.ack().await.unwrap();
            let held = pending.entry(id.clone()).or_default();
            held.push(part);
            if held.len() == count {
                let mut held = pending.remove(&id).unwrap();
                held.sort_by_key(|p| p.index);
                let event = wire::assemble(&held, SUBJECT).unwrap();
                let EventData::Arrow(batch) = &event.data else { panic!("not a batch") };
                rows += batch.num_rows();
                assembled += 1;
            }
        }
    }
    let consumed = started.elapsed();
    assert_eq!(rows, BATCHES * ROWS);
    let mb = bytes as f64 / 1e6;
    println!(
        "{name:<9} {BATCHES} batches ({parts} messages, {mb:.1} MB): publish {:.2} s = {:.0} batches/s, {:.1} MB/s; \
         fetch+assemble+ack {:.2} s = {:.0} batches/s, {:.1} MB/s",
        published.as_secs_f64(),
        BATCHES as f64 / published.as_secs_f64(),
        mb / published.as_secs_f64(),
        consumed.as_secs_f64(),
        BATCHES as f64 / consumed.as_secs_f64(),
        mb / consumed.as_secs_f64(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with --ignored --nocapture, preferably --release"]
async fn bus_throughput() {
    let server = tokio::task::spawn_blocking(NatsServer::start).await.unwrap();
    let nats = NatsBus::connect(&server.url(), &Auth::None).await.unwrap();
    measure("nats", &nats).await;
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedBus::open(dir.path()).unwrap();
    measure("embedded", &embedded).await;
}
