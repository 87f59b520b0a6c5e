//! Streams of the embedded bus: creating and updating them, storing published messages, dedupe
//! and the limits that discard old messages (or refuse new ones).

use super::records::{
    ConsumerRecord, DedupeRecord, MessageRecord, Payload, PendingRecord, StreamRecord, consumer_key, decode,
    decode_message, dedupe_key, dedupe_prefix, encode, message_key, pending_prefix, stream_key, streams_prefix,
};
use super::{Inner, millis, now_ms};
use crate::bus::spec::RetentionPolicy;
use crate::bus::subject::{matches, overlaps, validate_subject};
use crate::bus::{BusError, ConsumerSpec, MSG_ID_HEADER, Outgoing, PubAck, StreamSpec};

/// Expired dedupe entries are swept every this many publishes, not on each one.
const DEDUPE_SWEEP_EVERY: u64 = 256;

fn store_err(op: &'static str) -> impl FnOnce(sled::Error) -> BusError {
    move |source| BusError::Store { op, source }
}

impl Inner {
    pub(super) fn get<R: super::records::Versioned>(&self, key: &[u8]) -> Result<Option<R>, BusError> {
        self.tree.get(key).map_err(store_err("read"))?.map(|v| decode(key, &v)).transpose()
    }

    pub(super) fn message(&self, key: &[u8]) -> Result<Option<MessageRecord>, BusError> {
        self.tree.get(key).map_err(store_err("read"))?.map(|v| decode_message(key, &v)).transpose()
    }

    pub(super) fn stream(&self, name: &str) -> Result<Option<StreamRecord>, BusError> {
        self.get(&stream_key(name))
    }

    fn streams(&self) -> Result<Vec<StreamRecord>, BusError> {
        self.tree
            .scan_prefix(streams_prefix())
            .map(|entry| {
                let (k, v) = entry.map_err(store_err("scan"))?;
                decode(&k, &v)
            })
            .collect()
    }

    pub(super) fn stream_for_subject(&self, subject: &str) -> Result<Option<StreamRecord>, BusError> {
        Ok(self.streams()?.into_iter().find(|s| s.spec.subjects.iter().any(|f| matches(f, subject))))
    }

    pub(super) fn ensure_stream(&self, spec: StreamSpec) -> Result<(), BusError> {
        spec.validate()?;
        if spec.retention != RetentionPolicy::Limits {
            return Err(BusError::Unsupported(format!(
                "stream `{}`: the embedded bus supports only `retention: limits`; use a NATS server for {:?}",
                spec.name, spec.retention
            )));
        }
        let _guard = self.lock();
        for other in self.streams()?.iter().filter(|s| s.spec.name != spec.name) {
            let clash = spec.subjects.iter().find(|a| other.spec.subjects.iter().any(|b| overlaps(a, b)));
            if let Some(subject) = clash {
                return Err(BusError::Invalid {
                    what: "stream subjects",
                    value: subject.clone(),
                    why: "another stream already takes subjects that overlap these",
                });
            }
        }
        let mut record = self.stream(&spec.name)?.unwrap_or(StreamRecord {
            spec: spec.clone(),
            first_seq: 1,
            last_seq: 0,
            messages: 0,
            bytes: 0,
        });
        record.spec = spec;
        let mut batch = sled::Batch::default();
        let mut removed = Vec::new();
        self.enforce_limits(&mut record, &mut batch, &mut removed, now_ms())?;
        let key = stream_key(&record.spec.name);
        batch.insert(key.clone(), encode(&key, &record)?);
        self.tree.apply_batch(batch).map_err(store_err("write"))?;
        self.payloads.discard_later(removed);
        Ok(())
    }

    /// Stores `msg`: its payload first (durable before any record names it), then its record.
    pub(super) fn publish(&self, msg: Outgoing) -> Result<PubAck, BusError> {
        validate_subject(&msg.subject)?;
        let payload = self.payloads.write(&msg.payload)?;
        let stored = self.publish_record(msg, payload.clone());
        if !matches!(stored, Ok(PubAck { duplicate: false, .. })) {
            self.payloads.discard_now(&payload);
        }
        stored
    }

    fn publish_record(&self, msg: Outgoing, payload: Payload) -> Result<PubAck, BusError> {
        let guard = self.lock();
        let now = now_ms();
        let mut stream =
            self.stream_for_subject(&msg.subject)?.ok_or_else(|| BusError::NoStreamForSubject(msg.subject.clone()))?;
        let name = stream.spec.name.clone();
        let mut batch = sled::Batch::default();
        let mut removed = Vec::new();
        self.enforce_limits(&mut stream, &mut batch, &mut removed, now)?;

        let window = millis(stream.spec.effective_duplicate_window());
        if !msg.msg_id.is_empty() {
            let seen: Option<DedupeRecord> = self.get(&dedupe_key(&name, &msg.msg_id))?;
            if let Some(seen) = seen.filter(|d| now.saturating_sub(d.at_ms) < window) {
                return Ok(PubAck { stream: name, sequence: seen.seq, duplicate: true });
            }
        }
        let mut headers = msg.headers;
        if !msg.msg_id.is_empty() && !headers.iter().any(|(n, _)| n == MSG_ID_HEADER) {
            headers.push((MSG_ID_HEADER.to_string(), msg.msg_id.clone()));
        }
        let record = MessageRecord { subject: msg.subject, headers, payload, msg_id: msg.msg_id, stored_at_ms: now };
        let size = record.size();
        let spec = &stream.spec;
        let over_count = spec.max_messages.is_some_and(|max| stream.messages + 1 > max);
        let over_bytes = spec.max_bytes.is_some_and(|max| stream.bytes + size > max);
        if spec.discard == crate::bus::spec::DiscardPolicy::New && (over_count || over_bytes) {
            return Err(BusError::StreamFull { stream: name });
        }
        let seq = stream.last_seq + 1;
        let key = message_key(&name, seq);
        batch.insert(key.clone(), encode(&key, &record)?);
        if !record.msg_id.is_empty() {
            let key = dedupe_key(&name, &record.msg_id);
            batch.insert(key.clone(), encode(&key, &DedupeRecord { seq, at_ms: now })?);
        }
        stream.last_seq = seq;
        stream.messages += 1;
        stream.bytes += size;
        // The message just added is the newest; limits discard from the oldest, never it.
        self.discard_over_limits(&mut stream, &mut batch, &mut removed, seq)?;
        if seq.is_multiple_of(DEDUPE_SWEEP_EVERY) {
            self.sweep_dedupe(&name, now - window, &mut batch)?;
        }
        let key = stream_key(&name);
        batch.insert(key.clone(), encode(&key, &stream)?);
        self.tree.apply_batch(batch).map_err(store_err("write"))?;
        self.payloads.discard_later(removed);
        drop(guard);
        self.notify.notify_waiters();
        Ok(PubAck { stream: name, sequence: seq, duplicate: false })
    }

    /// The sequences of `sequences` that `name` does not hold (messages leave only from the head,
    /// but each is looked up: what matters is whether it is there).
    pub(super) fn missing(&self, name: &str, sequences: &[u64]) -> Result<Vec<u64>, BusError> {
        let Some(stream) = self.stream(name)? else { return Ok(sequences.to_vec()) };
        let mut missing = Vec::new();
        for &seq in sequences {
            let held = (stream.first_seq..=stream.last_seq).contains(&seq)
                && self.tree.contains_key(message_key(name, seq)).map_err(store_err("read"))?;
            if !held {
                missing.push(seq);
            }
        }
        Ok(missing)
    }

    /// Applies `max_age` and, after a config change, the size limits; adds removals to `batch`
    /// and the removed messages' payloads to `removed` (for deletion once the batch is durable).
    pub(super) fn enforce_limits(
        &self,
        stream: &mut StreamRecord,
        batch: &mut sled::Batch,
        removed: &mut Vec<Payload>,
        now: i64,
    ) -> Result<(), BusError> {
        if let Some(max_age) = stream.spec.max_age {
            let oldest_kept = now - millis(max_age);
            while stream.first_seq <= stream.last_seq {
                let head: MessageRecord = self.head(stream)?;
                if head.stored_at_ms > oldest_kept {
                    break;
                }
                self.remove_head(stream, batch, removed, head);
            }
        }
        self.discard_over_limits(stream, batch, removed, stream.last_seq + 1)
    }

    /// Removes the oldest messages (never `keep_from` or later) while the stream is over a limit.
    fn discard_over_limits(
        &self,
        s: &mut StreamRecord,
        batch: &mut sled::Batch,
        removed: &mut Vec<Payload>,
        keep_from: u64,
    ) -> Result<(), BusError> {
        loop {
            let over =
                s.spec.max_messages.is_some_and(|m| s.messages > m) || s.spec.max_bytes.is_some_and(|m| s.bytes > m);
            if !over || s.first_seq >= keep_from {
                return Ok(());
            }
            let head = self.head(s)?;
            self.remove_head(s, batch, removed, head);
        }
    }

    fn head(&self, s: &StreamRecord) -> Result<MessageRecord, BusError> {
        let key = message_key(&s.spec.name, s.first_seq);
        self.message(&key)?.ok_or_else(|| BusError::Corrupt {
            key: super::records::show(&key),
            reason: "the stream's oldest message is missing".into(),
        })
    }

    fn remove_head(
        &self,
        s: &mut StreamRecord,
        batch: &mut sled::Batch,
        removed: &mut Vec<Payload>,
        head: MessageRecord,
    ) {
        batch.remove(message_key(&s.spec.name, s.first_seq));
        s.first_seq += 1;
        s.messages -= 1;
        s.bytes = s.bytes.saturating_sub(head.size());
        removed.push(head.payload);
    }

    fn sweep_dedupe(&self, stream: &str, older_than: i64, batch: &mut sled::Batch) -> Result<(), BusError> {
        for entry in self.tree.scan_prefix(dedupe_prefix(stream)) {
            let (k, v) = entry.map_err(store_err("scan"))?;
            let d: DedupeRecord = decode(&k, &v)?;
            if d.at_ms <= older_than {
                batch.remove(k);
            }
        }
        Ok(())
    }

    /// Creates the durable consumer, or updates its settings keeping its position.
    pub(super) fn ensure_consumer(&self, spec: &ConsumerSpec) -> Result<(), BusError> {
        spec.validate()?;
        let _guard = self.lock();
        if self.stream(&spec.stream)?.is_none() {
            return Err(BusError::NoStream(spec.stream.clone()));
        }
        let key = consumer_key(&spec.stream, &spec.durable_name);
        let record = match self.get::<ConsumerRecord>(&key)? {
            Some(existing) => ConsumerRecord { spec: spec.clone(), ..existing },
            None => ConsumerRecord { spec: spec.clone(), next_seq: 1 },
        };
        self.tree.insert(key.clone(), encode(&key, &record)?).map_err(store_err("write"))?;
        let first_bind = self.bound.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
        if first_bind {
            let now = now_ms();
            let mut released = 0;
            for entry in self.tree.scan_prefix(pending_prefix(&spec.stream, &spec.durable_name)) {
                let (k, v) = entry.map_err(store_err("scan"))?;
                let mut pending: PendingRecord = decode(&k, &v)?;
                if pending.due_ms > now {
                    pending.due_ms = now;
                    self.tree.insert(k.clone(), encode(&k, &pending)?).map_err(store_err("write"))?;
                    released += 1;
                }
            }
            if released > 0 {
                tracing::info!(
                    consumer = spec.durable_name,
                    messages = released,
                    "deliveries a previous process left unsettled are due again now"
                );
            }
        }
        Ok(())
    }
}
