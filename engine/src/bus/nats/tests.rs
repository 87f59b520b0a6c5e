//! The NATS bus against the conformance suite, on a real `nats-server` per test; a restart stops
//! the server (SIGTERM) and starts it again on the same port and store.

use std::sync::Arc;

use bulkflow_testkit::nats::NatsServer;

use super::{Auth, NatsBus};
use crate::bus::Bus;
use crate::bus::conformance::{Fixture, conformance_tests};
use crate::runtime::processor::BoxFuture;

pub(crate) struct NatsFixture {
    server: NatsServer,
    bus: NatsBus,
}

impl NatsFixture {
    pub(crate) async fn new() -> Self {
        let server = tokio::task::spawn_blocking(NatsServer::start).await.unwrap();
        let bus = NatsBus::connect(&server.url(), &Auth::None).await.unwrap();
        Self { server, bus }
    }
}

impl Fixture for NatsFixture {
    fn bus(&self) -> Arc<dyn Bus> {
        Arc::new(self.bus.clone())
    }

    fn restart(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Graceful: a SIGKILLed nats-server may lose recent acks (it writes consumer state
            // lazily), which at-least-once allows but would make this test about timing.
            tokio::task::block_in_place(|| self.server.restart_graceful());
            // The client reconnects by itself; a fresh one makes the test independent of when.
            self.bus = NatsBus::connect(&self.server.url(), &Auth::None).await.unwrap();
        })
    }
}

conformance_tests!(NatsFixture::new());

/// A pull request the server never answers (it froze, then was killed) must not hold the
/// consumer forever: the fetch comes back, and fetches after the restart receive again. async-nats
/// gives a no-wait fetch no timer of its own, so before the bound this hung for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_the_server_never_answers_returns_and_fetching_resumes() {
    use std::time::{Duration, Instant};

    use crate::bus::{ConsumerSpec, Outgoing, StreamSpec};

    let mut f = NatsFixture::new().await;
    let bus = f.bus();
    bus.ensure_stream(&StreamSpec::new("s", vec!["s.>".into()])).await.unwrap();
    let spec = ConsumerSpec {
        stream: "s".into(),
        durable_name: "d".into(),
        filter_subject: "s.>".into(),
        ack_wait: Duration::from_secs(30),
        max_deliver: None,
        max_ack_pending: 100,
    };
    let mut consumer = bus.consumer(&spec).await.unwrap();
    f.server.freeze();
    let started = Instant::now();
    let wait = Duration::from_millis(200);
    let lost = tokio::spawn(async move {
        let r = consumer.fetch(1, wait).await;
        (consumer, r.map(|m| m.len()))
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| f.server.restart());
    let (mut consumer, result) =
        tokio::time::timeout(Duration::from_secs(30), lost).await.expect("the fetch came back").unwrap();
    let took = started.elapsed();
    assert!(took < wait + super::FETCH_ANSWER_GRACE + Duration::from_secs(3), "took {took:?}: {result:?}");
    assert!(matches!(result, Ok(0) | Err(_)), "{result:?}");

    let message = Outgoing { subject: "s.a".into(), msg_id: "m1".into(), headers: vec![], payload: "x".into() };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut published = false;
    while !published && Instant::now() < deadline {
        published = bus.publish(message.clone(), Duration::from_secs(2)).await.is_ok();
    }
    assert!(published, "publishing after the restart");
    let mut received = Vec::new();
    while received.is_empty() && Instant::now() < deadline {
        if let Ok(m) = consumer.fetch(1, Duration::from_millis(500)).await {
            received = m;
        }
    }
    assert_eq!(received.len(), 1, "a fetch after the restart receives");
}
