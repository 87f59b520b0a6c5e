//! What the embedded bus keeps in sled, and under which keys. Every value is a format version
//! (u16, big endian) and its bincode encoding, as in the state store: a future shape change then
//! fails loudly instead of decoding into garbage.
//!
//! All records share one sled tree so a publish (message, stream counters, dedupe entry) or a
//! delivery (consumer position, pending entry) is one atomic `apply_batch`. Keys start with a kind
//! byte and separate names with `\0`, which names cannot contain; sequences are big-endian so key
//! order is sequence order.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bus::{BusError, ConsumerSpec, StreamSpec};

pub trait Versioned: Serialize + DeserializeOwned {
    /// Bump on any change to the serialized shape.
    const VERSION: u16;
}

/// A stream's configuration and counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamRecord {
    pub spec: StreamSpec,
    /// The oldest stored message's sequence; `last_seq + 1` when the stream is empty. Messages are
    /// removed only from the head (limits retention), so `first_seq..=last_seq` are all present.
    pub first_seq: u64,
    pub last_seq: u64,
    pub messages: u64,
    pub bytes: u64,
}

impl Versioned for StreamRecord {
    const VERSION: u16 = 1;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRecord {
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub payload: Payload,
    pub msg_id: String,
    /// Unix milliseconds: what `max_age` and the duplicate window measure from.
    pub stored_at_ms: i64,
}

/// Where a message's payload is (see `payloads.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// As bytes, not a sequence of u8: read and written in one copy instead of a call per byte.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A file of its own, of `len` bytes, in the bus's payload folder.
    File { name: String, len: u64 },
}

impl Payload {
    pub fn len(&self) -> u64 {
        match self {
            Payload::Inline(bytes) => bytes.len() as u64,
            Payload::File { len, .. } => *len,
        }
    }
}

impl MessageRecord {
    /// The size limits count: payload, subject and headers, as JetStream does (approximately).
    pub fn size(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        self.payload.len() + (self.subject.len() + headers) as u64
    }
}

impl Versioned for MessageRecord {
    const VERSION: u16 = 2;
}

/// A message as version 1 stored it, its payload always inline; still read, never written.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageRecordV1 {
    pub subject: String,
    pub headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    pub msg_id: String,
    pub stored_at_ms: i64,
}

impl Versioned for MessageRecordV1 {
    const VERSION: u16 = 1;
}

/// A stored message of either version.
pub fn decode_message(key: &[u8], bytes: &[u8]) -> Result<MessageRecord, BusError> {
    if bytes.starts_with(&MessageRecordV1::VERSION.to_be_bytes()) {
        let v1: MessageRecordV1 = decode(key, bytes)?;
        return Ok(MessageRecord {
            subject: v1.subject,
            headers: v1.headers,
            payload: Payload::Inline(v1.payload),
            msg_id: v1.msg_id,
            stored_at_ms: v1.stored_at_ms,
        });
    }
    decode(key, bytes)
}

/// A message id seen within the duplicate window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DedupeRecord {
    pub seq: u64,
    pub at_ms: i64,
}

impl Versioned for DedupeRecord {
    const VERSION: u16 = 1;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsumerRecord {
    pub spec: ConsumerSpec,
    /// The next sequence to consider for a first delivery.
    pub next_seq: u64,
}

impl Versioned for ConsumerRecord {
    const VERSION: u16 = 1;
}

/// A message delivered to a consumer and not yet acked or terminated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRecord {
    pub deliveries: u32,
    /// Unix milliseconds at which it is delivered again unless settled.
    pub due_ms: i64,
}

impl Versioned for PendingRecord {
    const VERSION: u16 = 1;
}

/// Records larger than this fail to decode instead of allocating: a corrupt length must not OOM.
const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

pub fn encode<R: Versioned>(key: &[u8], record: &R) -> Result<Vec<u8>, BusError> {
    let mut bytes = R::VERSION.to_be_bytes().to_vec();
    let body = bincode::serde::encode_to_vec(record, config())
        .map_err(|e| BusError::Corrupt { key: show(key), reason: format!("cannot encode: {e}") })?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

pub fn decode<R: Versioned>(key: &[u8], bytes: &[u8]) -> Result<R, BusError> {
    let corrupt = |reason: String| BusError::Corrupt { key: show(key), reason };
    let (version, body) = bytes.split_first_chunk::<2>().ok_or_else(|| corrupt("too short for a record".into()))?;
    let version = u16::from_be_bytes(*version);
    if version != R::VERSION {
        return Err(corrupt(format!(
            "format version {version}, this bulkflow reads version {} (written by a different release?)",
            R::VERSION
        )));
    }
    let (record, read) =
        bincode::serde::decode_from_slice::<R, _>(body, config()).map_err(|e| corrupt(e.to_string()))?;
    if read != body.len() {
        return Err(corrupt(format!("{} trailing bytes", body.len() - read)));
    }
    Ok(record)
}

/// A key as text for error messages.
pub fn show(key: &[u8]) -> String {
    key.iter().map(|&b| if b == 0 { '/' } else { char::from(b) }).collect::<String>().escape_debug().to_string()
}

fn key(kind: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![kind];
    for p in parts {
        k.push(0);
        k.extend_from_slice(p);
    }
    k
}

pub fn stream_key(stream: &str) -> Vec<u8> {
    key(b's', &[stream.as_bytes()])
}

pub fn streams_prefix() -> Vec<u8> {
    vec![b's', 0]
}

/// Every stored message's key starts so.
pub fn messages_prefix() -> Vec<u8> {
    vec![b'm', 0]
}

pub fn message_key(stream: &str, seq: u64) -> Vec<u8> {
    key(b'm', &[stream.as_bytes(), &seq.to_be_bytes()])
}

pub fn dedupe_prefix(stream: &str) -> Vec<u8> {
    let mut k = key(b'd', &[stream.as_bytes()]);
    k.push(0);
    k
}

pub fn dedupe_key(stream: &str, msg_id: &str) -> Vec<u8> {
    key(b'd', &[stream.as_bytes(), msg_id.as_bytes()])
}

pub fn consumer_key(stream: &str, durable: &str) -> Vec<u8> {
    key(b'c', &[stream.as_bytes(), durable.as_bytes()])
}

pub fn pending_prefix(stream: &str, durable: &str) -> Vec<u8> {
    let mut k = key(b'p', &[stream.as_bytes(), durable.as_bytes()]);
    k.push(0);
    k
}

pub fn pending_key(stream: &str, durable: &str, seq: u64) -> Vec<u8> {
    key(b'p', &[stream.as_bytes(), durable.as_bytes(), &seq.to_be_bytes()])
}

/// The sequence at the end of a message or pending key.
pub fn seq_of(key: &[u8]) -> Option<u64> {
    key.split_last_chunk::<8>().map(|(_, seq)| u64::from_be_bytes(*seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_stored_by_an_earlier_release_reads_back_byte_for_byte() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        // Version 1 as it was written: the payload a sequence of u8, which bincode encodes as
        // serde_bytes does (a length, then the bytes).
        #[derive(Serialize, Deserialize)]
        struct Before {
            subject: String,
            headers: Vec<(String, String)>,
            payload: Vec<u8>,
            msg_id: String,
            stored_at_ms: i64,
        }
        impl Versioned for Before {
            const VERSION: u16 = 1;
        }
        let before = Before {
            subject: "salesforce_bulkapi.query_jobs.account".into(),
            headers: vec![("Nats-Msg-Id".into(), "run-1/0".into())],
            payload: payload.clone(),
            msg_id: "run-1/0".into(),
            stored_at_ms: 1_765_000_000_000,
        };
        let key = message_key("salesforce_bulkapi", 1);
        let read = decode_message(&key, &encode(&key, &before).unwrap()).unwrap();
        assert_eq!(read.payload, Payload::Inline(payload));
        assert_eq!(
            (read.subject.as_str(), read.msg_id.as_str(), read.stored_at_ms),
            ("salesforce_bulkapi.query_jobs.account", "run-1/0", 1_765_000_000_000)
        );
        assert_eq!(read.headers, before.headers);

        let now = MessageRecord { payload: Payload::File { name: "f".into(), len: 70_000 }, ..read };
        let again = decode_message(&key, &encode(&key, &now).unwrap()).unwrap();
        assert_eq!(again.payload, now.payload);
        assert_eq!(again.size(), now.size());
    }
}
