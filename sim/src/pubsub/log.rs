//! The replay log: every published event with its replay id, kept for the retention window.
//!
//! Replay ids are one sequence for the whole bus (all topics), as on Salesforce, where the bus is
//! shared: a keepalive's `latest_replay_id` can therefore move past a topic's last event. On the
//! wire a replay id is the sequence as 8 big-endian bytes; clients must treat it as opaque.
//!
//! With a state directory the log is kept in `replay/events.log` (append-only records: sequence,
//! time, topic, protobuf event), so a restarted simulator resumes the subscriptions that stored
//! its replay ids, as Salesforce would. A torn last record (a kill mid-write) is dropped on open,
//! and opening rewrites the file with the events still inside the retention window.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bulkflow_pubsub_proto::ProducerEvent;
use prost::Message;
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
    /// Where appended events are written, when the org is persisted.
    file: Option<File>,
}

/// The log file inside the replay directory.
fn log_path(dir: &Path) -> PathBuf {
    dir.join("events.log")
}

fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One record: sequence, unix milliseconds, topic length and topic, event length and event.
fn write_record(out: &mut impl Write, seq: u64, at_ms: u64, topic: &str, event: &ProducerEvent) -> std::io::Result<()> {
    let body = event.encode_to_vec();
    out.write_all(&seq.to_be_bytes())?;
    out.write_all(&at_ms.to_be_bytes())?;
    out.write_all(&u32::try_from(topic.len()).unwrap_or(u32::MAX).to_be_bytes())?;
    out.write_all(topic.as_bytes())?;
    out.write_all(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes())?;
    out.write_all(&body)
}

/// The records of a log file, up to the first incomplete or unreadable one.
fn read_records(bytes: &[u8]) -> Vec<(u64, u64, String, ProducerEvent)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let take = |n: usize, rest: &mut &[u8]| -> Option<Vec<u8>> {
        if rest.len() < n {
            return None;
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Some(head.to_vec())
    };
    loop {
        let record = (|| {
            let seq = u64::from_be_bytes(take(8, &mut rest)?.try_into().ok()?);
            let at = u64::from_be_bytes(take(8, &mut rest)?.try_into().ok()?);
            let topic_len = u32::from_be_bytes(take(4, &mut rest)?.try_into().ok()?) as usize;
            let topic = String::from_utf8(take(topic_len, &mut rest)?).ok()?;
            let body_len = u32::from_be_bytes(take(4, &mut rest)?.try_into().ok()?) as usize;
            let event = ProducerEvent::decode(take(body_len, &mut rest)?.as_slice()).ok()?;
            Some((seq, at, topic, event))
        })();
        match record {
            Some(r) => out.push(r),
            None => return out,
        }
    }
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
            inner: Mutex::new(Inner { topics: HashMap::new(), latest: 0, pruned_through: 0, file: None }),
            retention,
            appended,
        }
    }

    /// The log kept in `dir`: the events a previous run of the simulator appended that are still
    /// inside the retention window, and every event appended from now on.
    pub fn open(retention: Duration, dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = log_path(dir);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let records = read_records(&bytes);
        let (now, now_ms) = (Instant::now(), unix_millis(SystemTime::now()));
        let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        let mut inner = Inner { topics: HashMap::new(), latest: 0, pruned_through: 0, file: None };
        // Rewritten with what is kept, then renamed over the old file: a kill leaves one or the other.
        let tmp = path.with_extension("tmp");
        let mut out = BufWriter::new(File::create(&tmp)?);
        for (seq, at_ms, topic, event) in records {
            inner.latest = inner.latest.max(seq);
            let age = now_ms.saturating_sub(at_ms);
            if age > retention_ms {
                inner.pruned_through = inner.pruned_through.max(seq);
                continue;
            }
            write_record(&mut out, seq, at_ms, &topic, &event)?;
            let at = now.checked_sub(Duration::from_millis(age)).unwrap_or(now);
            inner.topics.entry(topic).or_default().push_back(Stored { seq, at, event });
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp, &path)?;
        inner.file = Some(OpenOptions::new().append(true).open(&path)?);
        let latest = inner.latest;
        let (appended, _) = watch::channel(latest);
        Ok(ReplayLog { inner: Mutex::new(inner), retention, appended })
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
            if let Some(file) = &mut inner.file {
                let mut record = Vec::new();
                let written = write_record(&mut record, seq, unix_millis(SystemTime::now()), topic, &event)
                    .and_then(|()| file.write_all(&record));
                if let Err(e) = written {
                    tracing::warn!(error = %e, "could not persist a Pub/Sub event; it is served from memory only");
                }
            }
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

    /// A restarted simulator serves the events it had, numbered as before, and numbers new ones
    /// after them; a record torn by a kill is dropped, not misread.
    #[test]
    fn a_persisted_log_resumes_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = ReplayLog::open(Duration::from_secs(60), dir.path()).unwrap();
            log.append("/event/A", event("a1"));
            log.append("/event/B", event("b1"));
            log.append("/event/A", event("a2"));
        }
        let mut file = OpenOptions::new().append(true).open(log_path(dir.path())).unwrap();
        file.write_all(&[0, 0, 0, 0, 0, 0, 0, 4, 1, 2]).unwrap();
        drop(file);
        let log = ReplayLog::open(Duration::from_secs(60), dir.path()).unwrap();
        assert_eq!(log.latest(), 3);
        assert_eq!(log.resume_after(&encode(1)), Ok(1));
        let (events, _) = log.read_after("/event/A", 1, 10);
        assert_eq!(events.iter().map(|(s, e)| (*s, e.id.as_str())).collect::<Vec<_>>(), [(3, "a2")]);
        assert_eq!(log.append("/event/A", event("a3")), 4);
        drop(log);
        let log = ReplayLog::open(Duration::from_millis(1), dir.path()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(log.latest(), 4, "sequences never go back, even with nothing retained");
        assert_eq!(log.resume_after(&encode(2)), Err(Corrupted), "outside the window");
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
