use std::num::NonZeroU32;

use serde::Deserialize;

/// Subscribes to a Pub/Sub API topic, e.g. `/event/BulkApi2JobEvent`.
///
/// ```yaml
/// - salesforce_pubsubapi_subscriber:
///     name: listen_job_events
///     credentials_path: /etc/sfdc/credentials.json
///     topic:
///       name: /event/BulkApi2JobEvent
///       durable_consumer_options:
///         enabled: true
///         managed_subscription: false
///         name: salesforce_bulkapi_job_listener
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PubSubSubscriberConfig {
    pub credentials_path: String,
    pub topic: TopicConfig,
    /// `host:port` of the Pub/Sub API; defaults to the credentials' `pubsub_url`, then Salesforce's.
    pub endpoint: Option<String>,
    /// Events requested per FetchRequest (Salesforce caps outstanding credit at 100).
    pub num_requested: Option<NonZeroU32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    pub name: String,
    #[serde(default)]
    pub durable_consumer_options: Option<DurableConsumerOptions>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurableConsumerOptions {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub managed_subscription: bool,
    pub name: String,
    #[serde(default)]
    pub replay_preset: ReplayPreset,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayPreset {
    #[default]
    Latest,
    Earliest,
}
