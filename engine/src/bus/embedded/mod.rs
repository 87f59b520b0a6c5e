//! The embedded bus: JetStream's semantics on sled, in-process, for a single-node appliance that
//! runs no NATS server. Flows select it when their NATS url renders empty or `embedded`.
//!
//! One instance per state directory, shared by every flow of the process (the state directory is
//! locked to one process, so nothing else writes it). Its own sled database lives in
//! `<state_dir>/bus`, apart from the run ledger: bus traffic is bulky (Arrow batches) and must not
//! slow or bloat the ledger's small, frequent commits. Payloads over 16 KiB are files beside it
//! (`payloads.rs`): sled would keep every one of them in memory.
//!
//! Durability: a publish is acknowledged only after sled flushed it (publishes in flight at once
//! share one flush) and its payload file is synced. Acks, naks and delivery
//! positions are not flushed one by one (sled flushes them within 500 ms): a crash can forget a
//! recent ack, and the message is then delivered again, which at-least-once delivery allows and
//! message ids and idempotent sinks absorb.
//!
//! Supported: limits retention (max_age, max_bytes, max_messages, discard old/new), subjects with
//! `*`/`>`, durable pull consumers with a subject filter, ack wait, max_deliver, nak with delay,
//! term, max_ack_pending, dedupe by message id within the duplicate window. Not supported:
//! interest and work-queue retention (refused with an error, not ignored).

mod consumer;
mod payloads;
mod records;
mod stream;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Bus, BusError, Consumer, ConsumerSpec, Outgoing, PubAck, StreamSpec};
use crate::runtime::processor::BoxFuture;
use crate::store::group_flush::GroupFlush;

/// The largest message accepted: NATS's default `max_payload`, so a flow splits batches the same
/// way on either bus.
pub const EMBEDDED_MAX_PAYLOAD: usize = 1024 * 1024;

/// sled's page cache for the bus (its default is 1 GiB). It holds only small records: payloads
/// over 16 KiB are files, since sled never evicted them whatever this said.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// The folder under the state directory holding the bus's sled database.
pub const BUS_DIR: &str = "bus";

#[derive(Clone)]
pub struct EmbeddedBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBus").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    /// Serialises every read-modify-write: one process, one writer at a time, so sled batches
    /// need no compare-and-swap.
    lock: Mutex<()>,
    /// Durable consumers bound since this process opened the bus. The first bind of each makes
    /// its unsettled deliveries due at once: the state directory is locked to one process, so
    /// whatever holds them is a process that is gone, and waiting out its ack wait (the seed's is
    /// two minutes) would only delay a restart.
    bound: Mutex<std::collections::HashSet<Vec<u8>>>,
    /// Wakes waiting fetches when a message arrives or a nak makes one due.
    notify: Notify,
    /// Flushes at once (a publisher keeps several publishes in flight) share their fsyncs.
    flushes: GroupFlush,
    payloads: payloads::PayloadFiles,
    path: PathBuf,
}

impl EmbeddedBus {
    /// Opens (creating) the bus under `state_dir`. The caller holds the state directory's lock.
    pub fn open(state_dir: &Path) -> Result<Self, BusError> {
        let path = state_dir.join(BUS_DIR);
        let open = |source| BusError::Open { path: path.clone(), source };
        let db = sled::Config::new().path(&path).cache_capacity(CACHE_BYTES).open().map_err(open)?;
        let tree = db.open_tree("bus").map_err(open)?;
        let payloads = payloads::PayloadFiles::open(&path)?;
        let inner = Inner {
            db,
            tree,
            lock: Mutex::new(()),
            bound: Mutex::default(),
            notify: Notify::new(),
            flushes: GroupFlush::default(),
            payloads,
            path,
        };
        let orphans = inner.remove_orphan_payloads()?;
        if orphans > 0 {
            tracing::info!(files = orphans, "removed payload files no message names (left by a crash)");
        }
        Ok(Self { inner: Arc::new(inner) })
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded data is (); a panic while holding it leaves nothing half-written in memory.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes every change applied so far durable (sharing the fsync with callers flushing at the
    /// same moment), then deletes the payload files of messages whose removal it made durable.
    fn flush(&self) -> Result<(), BusError> {
        let ticket = self.flushes.applied();
        self.flushes.durable(ticket, || {
            self.payloads
                .flushed(|| self.db.flush().map(drop).map_err(|source| BusError::Store { op: "flush", source }))
        })
    }

    fn remove_orphan_payloads(&self) -> Result<usize, BusError> {
        let mut named = std::collections::HashSet::new();
        for entry in self.tree.scan_prefix(records::messages_prefix()) {
            let (key, value) = entry.map_err(|source| BusError::Store { op: "scan", source })?;
            if let records::Payload::File { name, .. } = records::decode_message(&key, &value)?.payload {
                named.insert(name);
            }
        }
        self.payloads.remove_unreferenced(&named)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Bus for EmbeddedBus {
    fn ensure_stream(&self, spec: &StreamSpec) -> BoxFuture<'_, Result<(), BusError>> {
        let spec = spec.clone();
        Box::pin(async move { self.inner.ensure_stream(spec) })
    }

    fn stream_exists(&self, name: &str) -> BoxFuture<'_, Result<bool, BusError>> {
        let name = name.to_string();
        Box::pin(async move { Ok(self.inner.stream(&name)?.is_some()) })
    }

    fn stream_for_subject(&self, subject: &str) -> BoxFuture<'_, Result<Option<String>, BusError>> {
        let subject = subject.to_string();
        Box::pin(async move { self.inner.stream_for_subject(&subject).map(|s| s.map(|s| s.spec.name)) })
    }

    fn publish(&self, msg: Outgoing, timeout: Duration) -> BoxFuture<'_, Result<PubAck, BusError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let size = msg.payload.len() + msg.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>();
            if size > EMBEDDED_MAX_PAYLOAD {
                return Err(BusError::TooLarge { size, max: EMBEDDED_MAX_PAYLOAD });
            }
            // The flush is an fsync: keep it off the async workers.
            let work = tokio::task::spawn_blocking(move || {
                let ack = inner.publish(msg)?;
                inner.flush()?;
                Ok(ack)
            });
            match tokio::time::timeout(timeout, work).await {
                Ok(Ok(result)) => result,
                Ok(Err(join)) => Err(BusError::Unsupported(format!("embedded publish panicked: {join}"))),
                Err(_) => Err(BusError::Timeout(timeout)),
            }
        })
    }

    fn consumer(&self, spec: &ConsumerSpec) -> BoxFuture<'_, Result<Box<dyn Consumer>, BusError>> {
        let spec = spec.clone();
        Box::pin(async move {
            self.inner.ensure_consumer(&spec)?;
            Ok(Box::new(consumer::EmbeddedConsumer::new(self.inner.clone(), spec)) as Box<dyn Consumer>)
        })
    }

    fn missing<'a>(&'a self, stream: &'a str, sequences: &'a [u64]) -> BoxFuture<'a, Result<Vec<u64>, BusError>> {
        Box::pin(async move { self.inner.missing(stream, sequences) })
    }

    fn max_payload(&self) -> usize {
        EMBEDDED_MAX_PAYLOAD
    }
}
