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

/// The embedded bus belongs to one process: after a restart, what the dead process was handed
/// and never settled is delivered again at once, not after its (long) ack wait.
#[tokio::test]
async fn a_restart_redelivers_what_the_dead_process_held_at_once() {
    use crate::bus::{ConsumerSpec, Outgoing, StreamSpec};
    let mut fixture = EmbeddedFixture::new().await;
    let bus = fixture.bus();
    bus.ensure_stream(&StreamSpec::new("HELD", vec!["held".into()])).await.unwrap();
    let msg = Outgoing { subject: "held".into(), msg_id: "h1".into(), headers: vec![], payload: "x".into() };
    bus.publish(msg, Duration::from_secs(5)).await.unwrap();
    let spec = ConsumerSpec {
        stream: "HELD".into(),
        durable_name: "held".into(),
        filter_subject: "held".into(),
        ack_wait: Duration::from_secs(120),
        max_deliver: None,
        max_ack_pending: 10,
    };
    let mut c = bus.consumer(&spec).await.unwrap();
    assert_eq!(c.fetch(1, Duration::from_secs(2)).await.unwrap().len(), 1);
    // Bound again in the same process: still held (a second flow must not steal it).
    let mut again = bus.consumer(&spec).await.unwrap();
    assert!(again.fetch(1, Duration::from_millis(300)).await.unwrap().is_empty());
    drop((c, again, bus));
    fixture.restart().await;
    let mut c = fixture.bus().consumer(&spec).await.unwrap();
    let got = c.fetch(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(got.len(), 1, "delivered again at once, not after the 120 s ack wait");
    assert_eq!(got[0].delivered, 2);
}

/// Payloads over the inline limit live in files: delivered intact (after a restart too), their
/// files deleted with the messages the stream's limits discard, and a duplicate leaves none.
#[tokio::test]
async fn large_payloads_live_in_files_that_leave_with_their_messages() {
    use crate::bus::{ConsumerSpec, Outgoing, StreamSpec};
    let mut fixture = EmbeddedFixture::new().await;
    let folder = fixture.dir.path().join(super::BUS_DIR).join("payloads");
    let files = || std::fs::read_dir(&folder).unwrap().count();
    let bus = fixture.bus();
    let mut spec = StreamSpec::new("BIG", vec!["big".into()]);
    spec.max_messages = Some(2);
    bus.ensure_stream(&spec).await.unwrap();
    let payload = |i: u8| bytes::Bytes::from(vec![i; super::payloads::INLINE_MAX + 1000]);
    let msg = |i: u8| Outgoing { subject: "big".into(), msg_id: format!("b{i}"), headers: vec![], payload: payload(i) };
    for i in 0..4 {
        bus.publish(msg(i), Duration::from_secs(5)).await.unwrap();
    }
    assert!(bus.publish(msg(3), Duration::from_secs(5)).await.unwrap().duplicate);
    // Each publish's flush made the removal it applied durable and deleted that file; the
    // duplicate's file went at once.
    assert_eq!(files(), 2, "the files of b2 and b3");
    // What a crash between writing a payload and storing its record leaves behind:
    std::fs::write(folder.join("orphan"), b"x").unwrap();
    drop(bus);
    fixture.restart().await;
    assert_eq!(files(), 2, "reopening removes files no message names");
    let consumer = ConsumerSpec {
        stream: "BIG".into(),
        durable_name: "big".into(),
        filter_subject: "big".into(),
        ack_wait: Duration::from_secs(30),
        max_deliver: None,
        max_ack_pending: 10,
    };
    let mut c = fixture.bus().consumer(&consumer).await.unwrap();
    let got = c.fetch(10, Duration::from_secs(2)).await.unwrap();
    let payloads: Vec<_> = got.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(payloads, vec![payload(2), payload(3)]);
}
