//! Durable pull consumers of the embedded bus: what is due for delivery, and settling it.
//!
//! A consumer's state is its position (`next_seq`, the next message never delivered) and one
//! pending record per delivered, unsettled message with the time it becomes due again. A fetch
//! hands out due redeliveries first, then new messages in stream order, within `max_ack_pending`.

use std::sync::Arc;
use std::time::Duration;

use super::records::{
    ConsumerRecord, MessageRecord, PendingRecord, StreamRecord, consumer_key, decode, encode, message_key, pending_key,
    pending_prefix, seq_of, stream_key,
};
use super::{Inner, millis, now_ms};
use crate::bus::subject::matches;
use crate::bus::{Acker, BusError, Consumer, ConsumerSpec, Delivered};
use crate::runtime::processor::BoxFuture;

/// Messages examined per fetch while looking for ones that match the filter, so one fetch cannot
/// hold the bus's lock for a long scan of other subjects' traffic.
const SCAN_LIMIT: usize = 4096;

pub(super) struct EmbeddedConsumer {
    inner: Arc<Inner>,
    spec: ConsumerSpec,
}

impl EmbeddedConsumer {
    pub(super) fn new(inner: Arc<Inner>, spec: ConsumerSpec) -> Self {
        Self { inner, spec }
    }
}

/// What one pass found: messages to hand out, and when to look again if there were none.
struct Collected {
    messages: Vec<Delivered>,
    next_due_ms: Option<i64>,
}

impl Consumer for EmbeddedConsumer {
    fn fetch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<Delivered>, BusError>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                // Register for wake-ups before looking, so a publish between the look and the wait
                // is not missed.
                let notified = self.inner.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let collected = self.inner.collect(&self.spec, max.max(1))?;
                if !collected.messages.is_empty() {
                    return Ok(collected.messages);
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Ok(Vec::new());
                }
                let mut until = deadline;
                if let Some(due) = collected.next_due_ms {
                    let in_ms = u64::try_from(due - now_ms()).unwrap_or(0);
                    until = until.min(now + Duration::from_millis(in_ms));
                }
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep_until(until) => {}
                }
            }
        })
    }
}

impl Inner {
    fn collect(self: &Arc<Self>, spec: &ConsumerSpec, max: usize) -> Result<Collected, BusError> {
        let _guard = self.lock();
        let ckey = consumer_key(&spec.stream, &spec.durable_name);
        let mut consumer: ConsumerRecord = self.get(&ckey)?.ok_or_else(|| {
            BusError::Unsupported(format!("consumer `{}` on stream `{}` was deleted", spec.durable_name, spec.stream))
        })?;
        let skey = stream_key(&spec.stream);
        let mut stream: StreamRecord =
            self.stream(&spec.stream)?.ok_or_else(|| BusError::NoStream(spec.stream.clone()))?;
        let now = now_ms();
        let mut batch = sled::Batch::default();
        let (first, messages_before) = (stream.first_seq, stream.messages);
        let mut removed = Vec::new();
        self.enforce_limits(&mut stream, &mut batch, &mut removed, now)?;
        if stream.first_seq != first || stream.messages != messages_before {
            batch.insert(skey.clone(), encode(&skey, &stream)?);
        }
        let ack_wait = millis(spec.ack_wait);
        let mut out = Vec::new();
        let mut next_due_ms: Option<i64> = None;
        let mut pending = 0usize;

        for entry in self.tree.scan_prefix(pending_prefix(&spec.stream, &spec.durable_name)) {
            let (key, value) = entry.map_err(|source| BusError::Store { op: "scan", source })?;
            let mut p: PendingRecord = decode(&key, &value)?;
            let seq = seq_of(&key).unwrap_or(0);
            if p.due_ms > now || out.len() >= max {
                pending += 1;
                next_due_ms = Some(next_due_ms.map_or(p.due_ms, |d| d.min(p.due_ms)));
                continue;
            }
            let gone = seq < stream.first_seq;
            let exhausted = spec.max_deliver.is_some_and(|m| p.deliveries >= m);
            if gone || exhausted {
                // Discarded by the stream's limits, or delivered as often as allowed: JetStream
                // stops redelivering it, and so do we.
                batch.remove(key);
                continue;
            }
            let Some(message) = self.message(&message_key(&spec.stream, seq))? else {
                batch.remove(key);
                continue;
            };
            p.deliveries += 1;
            p.due_ms = now + ack_wait;
            batch.insert(key.clone(), encode(&key, &p)?);
            pending += 1;
            out.push(self.delivered(spec, seq, p.deliveries, message)?);
        }

        let mut seq = consumer.next_seq.max(stream.first_seq);
        let mut scanned = 0;
        while out.len() < max && pending < spec.max_ack_pending && seq <= stream.last_seq && scanned < SCAN_LIMIT {
            scanned += 1;
            let message = self.message(&message_key(&spec.stream, seq))?;
            if let Some(message) = message.filter(|m| matches(&spec.filter_subject, &m.subject)) {
                let key = pending_key(&spec.stream, &spec.durable_name, seq);
                batch.insert(key.clone(), encode(&key, &PendingRecord { deliveries: 1, due_ms: now + ack_wait })?);
                pending += 1;
                out.push(self.delivered(spec, seq, 1, message)?);
            }
            seq += 1;
        }
        if scanned == SCAN_LIMIT {
            next_due_ms = Some(now);
        }
        if seq != consumer.next_seq {
            consumer.next_seq = seq;
            batch.insert(ckey.clone(), encode(&ckey, &consumer)?);
        }
        self.tree.apply_batch(batch).map_err(|source| BusError::Store { op: "write", source })?;
        if !removed.is_empty() {
            // Messages aged out: their files go once that is durable, not at some later publish.
            self.payloads.discard_later(removed);
            self.flush()?;
        }
        Ok(Collected { messages: out, next_due_ms })
    }

    fn delivered(
        self: &Arc<Self>,
        spec: &ConsumerSpec,
        seq: u64,
        deliveries: u32,
        m: MessageRecord,
    ) -> Result<Delivered, BusError> {
        let payload = self.payloads.read(&message_key(&spec.stream, seq), m.payload)?;
        Ok(Delivered {
            subject: m.subject,
            headers: m.headers,
            payload,
            stream_sequence: seq,
            delivered: deliveries,
            ack: Box::new(EmbeddedAcker {
                inner: self.clone(),
                key: pending_key(&spec.stream, &spec.durable_name, seq),
            }),
        })
    }

    /// Settles a pending message: `Some(delay)` makes it due again after `delay`, `None` forgets
    /// it (ack or term). A message already settled (a late ack after a redelivery) is left alone.
    fn settle(&self, key: &[u8], redeliver_after: Option<Duration>) -> Result<(), BusError> {
        let store = |source| BusError::Store { op: "settle", source };
        {
            let _guard = self.lock();
            match redeliver_after {
                None => {
                    self.tree.remove(key).map_err(store)?;
                }
                Some(delay) => {
                    let Some(mut p) = self.get::<PendingRecord>(key)? else { return Ok(()) };
                    p.due_ms = now_ms() + millis(delay);
                    self.tree.insert(key, encode(key, &p)?).map_err(store)?;
                }
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }
}

struct EmbeddedAcker {
    inner: Arc<Inner>,
    key: Vec<u8>,
}

impl Acker for EmbeddedAcker {
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move { self.inner.settle(&self.key, None) })
    }

    fn nak(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move { self.inner.settle(&self.key, Some(delay)) })
    }

    fn term(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>> {
        Box::pin(async move { self.inner.settle(&self.key, None) })
    }
}
