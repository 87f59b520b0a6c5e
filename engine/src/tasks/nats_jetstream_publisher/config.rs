use serde::Deserialize;

use crate::flow::duration::HumanDuration;
use crate::flow::template::Template;

/// Publishes each event to a JetStream subject (the embedded bus when `url` renders empty).
///
/// ```yaml
/// - nats_jetstream_publisher:
///     name: publish_to_nats
///     credentials_path: /etc/nats/credentials.json
///     url: "{{env.NATS_URL}}"
///     subject: salesforce_bulkapi.query_jobs.{{event.meta.object_name}}
///     ack_timeout: 120s
///     stream: { create_or_update: true, name: salesforce_bulkapi, subjects: ["salesforce_bulkapi.>"] }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsPublisherConfig {
    pub credentials_path: Option<String>,
    pub url: Option<Template>,
    pub subject: Template,
    pub ack_timeout: Option<HumanDuration>,
    pub stream: Option<StreamConfig>,
    /// Batches in flight awaiting the server's ack.
    pub max_in_flight: Option<std::num::NonZeroUsize>,
}

/// A JetStream stream, created or updated when `create_or_update` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    #[serde(default)]
    pub create_or_update: bool,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    pub max_age: Option<HumanDuration>,
    pub max_bytes: Option<i64>,
    pub max_messages: Option<i64>,
    pub retention: Option<Retention>,
    pub discard: Option<Discard>,
    pub duplicate_window: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    Limits,
    Interest,
    Workqueue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discard {
    Old,
    New,
}
