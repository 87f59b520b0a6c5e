//! Putting split events back together: the parts of one event (`Bulkflow-Part` i of n) arrive as
//! separate messages, possibly interleaved with other events' and redelivered; the event is
//! emitted once every part is held, and all its parts are settled together.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use crate::bus::Delivered;
use crate::bus::wire::Part;

/// A received message with its decoded part and the in-flight permit it holds.
pub struct Held {
    pub part: Part,
    pub message: Delivered,
    pub permit: OwnedSemaphorePermit,
}

struct Partial {
    count: usize,
    parts: BTreeMap<usize, Held>,
    since: Instant,
}

#[derive(Default)]
pub struct Assembler {
    partial: HashMap<String, Partial>,
}

impl Assembler {
    /// Adds a message; returns the event's parts, in order, when it completes it.
    pub fn add(&mut self, held: Held) -> Option<Vec<Held>> {
        let count = held.part.count;
        if count == 1 {
            return Some(vec![held]);
        }
        let id = held.part.event_id.clone();
        let entry = self.partial.entry(id.clone()).or_insert_with(|| Partial {
            count,
            parts: BTreeMap::new(),
            since: Instant::now(),
        });
        if entry.count != count {
            // A republish after a max_payload change splits differently; start over with it.
            *entry = Partial { count, parts: BTreeMap::new(), since: Instant::now() };
        }
        // A redelivered part replaces the copy held (whose ack would be stale anyway).
        entry.parts.insert(held.part.index, held);
        if entry.parts.len() < count {
            return None;
        }
        self.partial.remove(&id).map(|p| p.parts.into_values().collect())
    }

    /// Drops events that stayed incomplete longer than `older_than` (a part lost to the stream's
    /// limits), unsettled: the bus redelivers what it still has after the ack wait. Returns their
    /// ids for the log.
    pub fn expire(&mut self, older_than: Duration) -> Vec<String> {
        let now = Instant::now();
        let stale: Vec<String> = self
            .partial
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) > older_than)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stale {
            self.partial.remove(id);
        }
        stale
    }

    pub fn incomplete(&self) -> usize {
        self.partial.len()
    }
}
