use std::num::{NonZeroU32, NonZeroUsize};

use serde::Deserialize;

use crate::bus::stream_config::StreamConfig;
use crate::flow::duration::HumanDuration;
use crate::flow::template::Template;

/// A durable pull consumer on a JetStream subject; a message is acked once its event completes.
///
/// ```yaml
/// - nats_jetstream_subscriber:
///     name: start_subscription
///     url: "{{env.NATS_URL}}"
///     subject: salesforce_bulkapi.query_jobs.account
///     durable_name: salesforce_bulkapi_account_writer
///     ack_timeout: "120s"
///     max_deliver: 5
///     backoff: ["5s", "30s", "1m", "5m"]
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSubscriberConfig {
    pub credentials_path: Option<String>,
    pub url: Option<Template>,
    pub subject: String,
    pub stream: Option<StreamConfig>,
    pub durable_name: String,
    pub ack_timeout: Option<HumanDuration>,
    pub max_deliver: Option<NonZeroU32>,
    #[serde(default)]
    pub backoff: Vec<HumanDuration>,
    pub max_ack_pending: Option<NonZeroUsize>,
    pub fetch_batch: Option<NonZeroUsize>,
}
