//! The replay log: every published event with its replay id, kept for the retention window.
//!
//! Replay ids are one sequence for the whole bus (all topics), as on Salesforce, where the bus is
//! shared: a keepalive's `latest_replay_id` can therefore move past a topic's last event. On the
//! wire a replay id is the sequence as 8 big-endian bytes; clients must treat it as opaque.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bulkflow_pubsub_proto::ProducerEvent;
use tokio::sync::watch;

pub fn encode(seq: u64) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

/// The sequence a replay id stands for, if it is one of ours.
pub fn decode(replay_id: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(replay_id.try_into().ok()?))
}

struct Stored {
    seq: u64,
    at: Instant,
    event: ProducerEvent,
}

struct Inner {
    topics: HashMap<String, VecDeque<Stored>>,
    latest: u64,
    /// Highest sequence dropped by retention: a replay id below it resumes after a gap.
    pruned_through: u64,
}

pub struct ReplayLog {
    inner: Mutex<Inner>,
    retention: Duration,
    appended: watch::Sender<u64>,
}

/// A replay id the log cannot resume from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupted;

impl ReplayLog {
    pub fn new(retention: Duration) -> Self {
        let (appended, _) = watch::channel(0);
        ReplayLog {
            inner: Mutex::new(Inner { topics: HashMap::new(), latest: 0, pruned_through: 0 }),
            retention,
            appended,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends an event and returns its sequence.
    pub fn append(&self, topic: &str, event: ProducerEvent) -> u64 {
        let seq = {
            let mut inner = self.lock();
            inner.latest += 1;
            let seq = inner.latest;
            inner.topics.entry(topic.to_string()).or_default().push_back(Stored { seq, at: Instant::now(), event });
            self.prune(&mut inner);
            seq
        };
        self.appended.send_replace(seq);
        seq
    }

    fn prune(&self, inner: &mut Inner) {
        let now = Instant::now();
        let mut pruned = inner.pruned_through;
        for events in inner.topics.values_mut() {
            while events.front().is_some_and(|e| now.duration_since(e.at) > self.retention) {
                if let Some(e) = events.pop_front() {
                    pruned = pruned.max(e.seq);
                }
            }
        }
        inner.pruned_through = pruned;
    }

    /// Wakes whoever waits for new events.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub fn latest(&self) -> u64 {
        self.lock().latest
    }

    /// Where `EARLIEST` starts: just before the oldest retained event.
    pub fn earliest(&self) -> u64 {
        let mut inner = self.lock();
        self.prune(&mut inner);
        inner.pruned_through
    }

    /// Where a `CUSTOM` replay id resumes, or [`Corrupted`] when it is not ours, lies in the
    /// future, or fell out of the retention window.
    pub fn resume_after(&self, replay_id: &[u8]) -> Result<u64, Corrupted> {
        let seq = decode(replay_id).ok_or(Corrupted)?;
        let mut inner = self.lock();
        self.prune(&mut inner);
        if seq > inner.latest || seq < inner.pruned_through {
            return Err(Corrupted);
        }
        Ok(seq)
    }

    /// Up to `max` events of `topic` after `after`, and the bus's latest sequence at that moment
    /// (read under the same lock, so a keepalive never skips an event appended meanwhile).
    pub fn read_after(&self, topic: &str, after: u64, max: usize) -> (Vec<(u64, ProducerEvent)>, u64) {
        let inner = self.lock();
        let events = inner.topics.get(topic).map_or_else(Vec::new, |events| {
            let start = events.partition_point(|e| e.seq <= after);
            events.iter().skip(start).take(max).map(|e| (e.seq, e.event.clone())).collect()
        });
        (events, inner.latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> ProducerEvent {
        ProducerEvent { id: id.into(), ..ProducerEvent::default() }
    }

    #[test]
    fn reads_in_order_after_a_replay_id_and_per_topic() {
        let log = ReplayLog::new(Duration::from_secs(60));
        log.append("/event/A", event("a1"));
        log.append("/event/B", event("b1"));
        log.append("/event/A", event("a2"));
        let (events, latest) = log.read_after("/event/A", 0, 10);
        assert_eq!(events.iter().map(|(_, e)| e.id.as_str()).collect::<Vec<_>>(), ["a1", "a2"]);
        assert_eq!(latest, 3);
        let (events, _) = log.read_after("/event/A", 1, 10);
        assert_eq!(events.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [3]);
        assert_eq!(log.read_after("/event/A", 0, 1).0.len(), 1);
    }

    #[test]
    fn replay_ids_outside_the_log_or_the_window_are_corrupted() {
        let log = ReplayLog::new(Duration::from_millis(30));
        log.append("/event/A", event("a1"));
        assert_eq!(log.resume_after(&encode(1)), Ok(1));
        assert_eq!(log.resume_after(&encode(7)), Err(Corrupted));
        assert_eq!(log.resume_after(b"junk"), Err(Corrupted));
        std::thread::sleep(Duration::from_millis(50));
        log.append("/event/A", event("a2"));
        assert_eq!(log.resume_after(&encode(0)), Err(Corrupted), "a1 fell out of the window");
        assert_eq!(log.resume_after(&encode(1)), Ok(1));
        assert_eq!(log.earliest(), 1);
    }
}
