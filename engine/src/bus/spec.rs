//! What a flow asks of the bus: a stream and a durable consumer, with bus-neutral types and the
//! defaults JetStream uses, so both buses get exactly the same request.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::BusError;
use super::stream_config::{Discard, Retention, StreamConfig};
use super::subject::validate_filter;

/// JetStream's default duplicate window.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSpec {
    pub name: String,
    pub description: Option<String>,
    pub subjects: Vec<String>,
    /// Messages older than this are removed. `None`: kept forever.
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
    pub max_messages: Option<u64>,
    pub retention: RetentionPolicy,
    pub discard: DiscardPolicy,
    pub duplicate_window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionPolicy {
    Limits,
    Interest,
    WorkQueue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiscardPolicy {
    /// Full: remove the oldest messages to make room.
    Old,
    /// Full: refuse new messages.
    New,
}

impl StreamSpec {
    /// A stream with JetStream's defaults for everything but its name and subjects.
    pub fn new(name: impl Into<String>, subjects: Vec<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            subjects,
            max_age: None,
            max_bytes: None,
            max_messages: None,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
        }
    }

    /// The stream a flow file describes. Negative limits mean "unlimited", as in JetStream.
    pub fn from_config(c: &StreamConfig) -> Result<Self, BusError> {
        let limit = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
        let spec = Self {
            name: c.name.clone(),
            description: c.description.clone(),
            subjects: if c.subjects.is_empty() { vec![c.name.clone()] } else { c.subjects.clone() },
            max_age: c.max_age.map(|d| d.0).filter(|d| !d.is_zero()),
            max_bytes: limit(c.max_bytes),
            max_messages: limit(c.max_messages),
            retention: match c.retention.unwrap_or(Retention::Limits) {
                Retention::Limits => RetentionPolicy::Limits,
                Retention::Interest => RetentionPolicy::Interest,
                Retention::Workqueue => RetentionPolicy::WorkQueue,
            },
            discard: match c.discard.unwrap_or(Discard::Old) {
                Discard::Old => DiscardPolicy::Old,
                Discard::New => DiscardPolicy::New,
            },
            duplicate_window: c.duplicate_window.map_or(DEFAULT_DUPLICATE_WINDOW, |d| d.0),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The duplicate window in force: never longer than `max_age`, as JetStream requires (a
    /// message id cannot be remembered longer than the message).
    pub fn effective_duplicate_window(&self) -> Duration {
        self.max_age.map_or(self.duplicate_window, |age| self.duplicate_window.min(age))
    }

    pub fn validate(&self) -> Result<(), BusError> {
        validate_name("stream name", &self.name)?;
        self.subjects.iter().try_for_each(|s| validate_filter(s))
    }
}

/// A durable pull consumer with explicit acks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerSpec {
    pub stream: String,
    pub durable_name: String,
    /// Only messages on matching subjects are delivered.
    pub filter_subject: String,
    /// A delivered message not acked within this is delivered again.
    pub ack_wait: Duration,
    /// Deliveries after which a message is not delivered again. `None`: unlimited.
    pub max_deliver: Option<u32>,
    /// Delivered-but-unacked messages beyond which no new ones are delivered.
    pub max_ack_pending: usize,
}

impl ConsumerSpec {
    pub fn validate(&self) -> Result<(), BusError> {
        validate_name("stream name", &self.stream)?;
        validate_name("durable name", &self.durable_name)?;
        validate_filter(&self.filter_subject)
    }
}

/// Stream and consumer names as JetStream allows them: they become subject tokens and file names.
fn validate_name(what: &'static str, name: &str) -> Result<(), BusError> {
    let bad = |why| Err(BusError::Invalid { what, value: name.to_string(), why });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\')) {
        return bad("names cannot contain whitespace, `.`, `*`, `>`, `/` or `\\`");
    }
    Ok(())
}
