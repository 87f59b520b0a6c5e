//! The bus: a durable, subject-addressed message log with durable consumers, as JetStream defines
//! it. Flows publish batches to it and subscribe to them through one small trait, [`Bus`], with two
//! implementations: [`nats::NatsBus`] (a real NATS JetStream server, for several nodes) and
//! [`embedded::EmbeddedBus`] (sled under the state directory, for a single-node appliance that
//! needs no server). `conformance.rs` holds the behaviour both must show and runs against each.
//!
//! What the trait keeps deliberately out: JetStream's server-side `BackOff`. On a real server a
//! `BackOff` list replaces `AckWait` for the first delivery, which would turn the seed's
//! `ack_timeout: 120s` into 5 s. The subscriber applies its backoff itself, as the delay of a nak,
//! so "ack timeout" and "backoff after failure" mean the same thing on both buses.

pub mod embedded;
pub mod nats;
pub mod registry;
pub mod spec;
pub mod stream_config;
pub mod subject;
pub mod wire;

#[cfg(test)]
mod conformance;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use spec::{ConsumerSpec, StreamSpec};

use crate::runtime::processor::BoxFuture;

/// Headers as an ordered list of name/value pairs (names are case-sensitive, as in NATS).
pub type Headers = Vec<(String, String)>;

/// The header JetStream deduplicates on.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// One message to publish. `msg_id` is deterministic so a republish is dropped as a duplicate.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub msg_id: String,
    pub headers: Headers,
    pub payload: Bytes,
}

/// The stream's acknowledgement of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubAck {
    pub stream: String,
    pub sequence: u64,
    /// True when the message id was seen within the duplicate window: nothing new was stored.
    pub duplicate: bool,
}

/// A message handed to a consumer, with the means to settle it.
pub struct Delivered {
    pub subject: String,
    pub headers: Headers,
    pub payload: Bytes,
    /// The message's sequence in its stream.
    pub stream_sequence: u64,
    /// How many times it has been delivered, this time included (1 on the first delivery).
    pub delivered: u32,
    pub ack: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivered")
            .field("subject", &self.subject)
            .field("stream_sequence", &self.stream_sequence)
            .field("delivered", &self.delivered)
            .field("bytes", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl Delivered {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Settles one delivered message. Each method consumes the right to settle it.
pub trait Acker: Send + Sync {
    /// Done: never deliver it again.
    fn ack(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>>;
    /// Failed: deliver it again after `delay`.
    fn nak(self: Box<Self>, delay: Duration) -> BoxFuture<'static, Result<(), BusError>>;
    /// Failed for good: never deliver it again.
    fn term(self: Box<Self>) -> BoxFuture<'static, Result<(), BusError>>;
}

/// A durable pull consumer.
pub trait Consumer: Send {
    /// Up to `max` messages: redeliveries that are due first, then new ones in stream order. Waits
    /// up to `wait` for at least one; returns an empty list when none came.
    fn fetch(&mut self, max: usize, wait: Duration) -> BoxFuture<'_, Result<Vec<Delivered>, BusError>>;
}

/// A JetStream-like bus.
pub trait Bus: Send + Sync {
    /// Creates the stream, or updates it to `spec` when it exists.
    fn ensure_stream(&self, spec: &StreamSpec) -> BoxFuture<'_, Result<(), BusError>>;
    /// Whether stream `name` exists (for flows that use a stream without managing it).
    fn stream_exists(&self, name: &str) -> BoxFuture<'_, Result<bool, BusError>>;
    /// The name of the stream that takes `subject`, if any.
    fn stream_for_subject(&self, subject: &str) -> BoxFuture<'_, Result<Option<String>, BusError>>;
    /// Publishes and waits (up to `timeout`) for the stream's ack: when this returns `Ok`, the
    /// message is stored durably.
    fn publish(&self, msg: Outgoing, timeout: Duration) -> BoxFuture<'_, Result<PubAck, BusError>>;
    /// Creates (or binds to) the durable consumer `spec.durable_name` on `spec.stream`.
    fn consumer(&self, spec: &ConsumerSpec) -> BoxFuture<'_, Result<Box<dyn Consumer>, BusError>>;
    /// The largest message (payload plus headers) the bus accepts.
    fn max_payload(&self) -> usize;
    /// Which of `sequences` stream `stream` no longer holds: discarded by its limits, purged,
    /// deleted, or the stream itself gone. Proof that those messages are lost, as opposed to
    /// not yet consumed. Errors only when the bus cannot be asked.
    fn missing<'a>(&'a self, stream: &'a str, sequences: &'a [u64]) -> BoxFuture<'a, Result<Vec<u64>, BusError>>;
}

pub type SharedBus = Arc<dyn Bus>;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("no stream `{0}` on the bus (set `stream.create_or_update: true` to create it)")]
    NoStream(String),
    #[error("no stream on the bus takes subject `{0}`")]
    NoStreamForSubject(String),
    #[error("stream `{stream}` is full (discard: new) and refused the message")]
    StreamFull { stream: String },
    #[error("message of {size} bytes is larger than the bus's max_payload of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("invalid {what} `{value}`: {why}")]
    Invalid { what: &'static str, value: String, why: &'static str },
    #[error("the bus did not acknowledge within {0:?}")]
    Timeout(Duration),
    #[error("{op}: {source}")]
    Nats { op: &'static str, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("embedded bus {op}: {source}")]
    Store { op: &'static str, source: sled::Error },
    #[error("embedded bus record `{key}`: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("embedded bus payload file {path}: {op}: {source}")]
    Payload { path: std::path::PathBuf, op: &'static str, source: std::io::Error },
    #[error("cannot open the embedded bus at {path}: {source}")]
    Open { path: std::path::PathBuf, source: sled::Error },
    #[error("{0}")]
    Unsupported(String),
}

impl BusError {
    /// Whether trying again later may succeed (a timeout, a lost connection, a full stream).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_) | Self::Nats { .. } | Self::StreamFull { .. } | Self::Store { .. } | Self::Payload { .. }
        )
    }

    pub(crate) fn nats(op: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Nats { op, source: Box::new(e) }
    }
}
