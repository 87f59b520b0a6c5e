//! The embedded bus against the conformance suite; a restart closes and reopens its sled store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::EmbeddedBus;
use crate::bus::Bus;
use crate::bus::conformance::{Fixture, conformance_tests};
use crate::runtime::processor::BoxFuture;

pub(crate) struct EmbeddedFixture {
    dir: TempDir,
    bus: Option<EmbeddedBus>,
}

impl EmbeddedFixture {
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bus = EmbeddedBus::open(dir.path()).unwrap();
        Self { dir, bus: Some(bus) }
    }
}

impl Fixture for EmbeddedFixture {
    fn bus(&self) -> Arc<dyn Bus> {
        Arc::new(self.bus.clone().expect("open"))
    }

    fn restart(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.bus = None;
            // sled releases its files from a background thread after the last handle drops.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match EmbeddedBus::open(self.dir.path()) {
                    Ok(bus) => break self.bus = Some(bus),
                    Err(e) if Instant::now() < deadline => {
                        tracing::debug!(error = %e, "reopening");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("cannot reopen the embedded bus: {e}"),
                }
            }
        })
    }
}

conformance_tests!(EmbeddedFixture::new());

#[tokio::test]
async fn max_ack_pending_bounds_what_is_in_flight() {
    crate::bus::conformance::max_ack_pending_bounds_what_is_in_flight(&mut EmbeddedFixture::new().await).await;
}
