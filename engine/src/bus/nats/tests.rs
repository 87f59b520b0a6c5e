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
