//! Events the engine itself hands to the flow that listens for job completion events: the
//! completion poller's stand-ins for events Salesforce never delivered (missed while the process
//! was down, or `BulkApi2JobEvent` not enabled in the org).
//!
//! One queue per process. The listening source drains it beside its subscription; when that
//! source is restarted (a leader change) the next instance drains the same queue.

use tokio::sync::{Mutex, mpsc};

use crate::event::Event;

#[derive(Debug)]
pub struct Injector {
    tx: mpsc::UnboundedSender<Event>,
    rx: Mutex<mpsc::UnboundedReceiver<Event>>,
}

impl Default for Injector {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { tx, rx: Mutex::new(rx) }
    }
}

impl Injector {
    pub fn send(&self, event: Event) {
        // The receiver lives as long as `self`, so this cannot fail.
        let _ = self.tx.send(event);
    }

    /// The next injected event. Cancel-safe: an event is never lost to a cancelled wait.
    pub async fn recv(&self) -> Option<Event> {
        self.rx.lock().await.recv().await
    }
}
