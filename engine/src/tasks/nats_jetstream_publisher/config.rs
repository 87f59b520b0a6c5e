use serde::Deserialize;

use crate::bus::stream_config::StreamConfig;
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
