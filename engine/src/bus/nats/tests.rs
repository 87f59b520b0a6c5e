//! The NATS bus against the conformance suite, on a real `nats-server` per test; a restart kills
//! the server and starts it again on the same port and store.

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
            self.server.restart();
            // The client reconnects by itself; a fresh one makes the test independent of when.
            self.bus = NatsBus::connect(&self.server.url(), &Auth::None).await.unwrap();
        })
    }
}

conformance_tests!(NatsFixture::new());
