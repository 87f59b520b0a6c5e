//! A loaded, validated flow: tasks in file order with their dependencies resolved, and everything a
//! task reads at start (scripts compiled, resources read and parsed) already checked.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::diagnostic::Mark;
use super::duration::HumanDuration;
use super::script::Script;
use super::template::Template;
use crate::schema::TableSchema;
use crate::tasks;

#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub file: PathBuf,
    pub require_leader_election: bool,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub mark: Mark,
    /// Explicit `depends_on`, or the task before it: a flow without `depends_on` is a chain.
    pub depends_on: Vec<String>,
    pub retry: RetryConfig,
    pub kind: TaskKind,
}

#[derive(Debug, Clone)]
pub enum TaskKind {
    Generate {
        config: tasks::generate::config::GenerateConfig,
        trigger: crate::schedule::Trigger,
    },
    Script {
        config: tasks::script::config::ScriptConfig,
        script: Script,
    },
    BulkQueryJob {
        config: tasks::salesforce_bulkapi_query_job::config::BulkQueryJobConfig,
        /// The SOQL, read from its resource when it names one.
        query: Option<Template>,
    },
    PubSubSubscriber(tasks::salesforce_pubsubapi_subscriber::config::PubSubSubscriberConfig),
    NatsPublisher(tasks::nats_jetstream_publisher::config::NatsPublisherConfig),
    NatsSubscriber(tasks::nats_jetstream_subscriber::config::NatsSubscriberConfig),
    Convert {
        config: tasks::convert::config::ConvertConfig,
        schema: TableSchema,
    },
    ObjectStore(tasks::object_store::config::ObjectStoreConfig),
    BigQueryWrite(tasks::gcp_bigquery_storage_write::config::BigQueryWriteConfig),
    PostgresWrite {
        config: tasks::postgres_write::config::PostgresWriteConfig,
        schema: Option<TableSchema>,
    },
}

impl TaskKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Generate { .. } => "generate",
            Self::Script { .. } => "script",
            Self::BulkQueryJob { .. } => "salesforce_bulkapi_query_job",
            Self::PubSubSubscriber(_) => "salesforce_pubsubapi_subscriber",
            Self::NatsPublisher(_) => "nats_jetstream_publisher",
            Self::NatsSubscriber(_) => "nats_jetstream_subscriber",
            Self::Convert { .. } => "convert",
            Self::ObjectStore(_) => "object_store",
            Self::BigQueryWrite(_) => "gcp_bigquery_storage_write",
            Self::PostgresWrite { .. } => "postgres_write",
        }
    }
}

/// Per-task retries: exponential backoff from `initial_backoff`, doubling up to `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "RetryConfig::default_max_attempts")]
    pub max_attempts: NonZeroU32,
    #[serde(default = "RetryConfig::default_initial_backoff")]
    pub initial_backoff: HumanDuration,
    #[serde(default = "RetryConfig::default_max_backoff")]
    pub max_backoff: HumanDuration,
}

impl RetryConfig {
    fn default_max_attempts() -> NonZeroU32 {
        NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN)
    }
    fn default_initial_backoff() -> HumanDuration {
        HumanDuration(Duration::from_secs(1))
    }
    fn default_max_backoff() -> HumanDuration {
        HumanDuration(Duration::from_secs(60))
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff.0.saturating_mul(factor).min(self.max_backoff.0)
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: Self::default_max_attempts(),
            initial_backoff: Self::default_initial_backoff(),
            max_backoff: Self::default_max_backoff(),
        }
    }
}

impl Flow {
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// Tasks that consume `name`'s output.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks.iter().filter(move |t| t.depends_on.iter().any(|d| d == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = RetryConfig {
            max_attempts: NonZeroU32::new(5).unwrap(),
            initial_backoff: HumanDuration(Duration::from_millis(100)),
            max_backoff: HumanDuration(Duration::from_millis(350)),
        };
        assert_eq!(r.backoff(1), Duration::from_millis(100));
        assert_eq!(r.backoff(2), Duration::from_millis(200));
        assert_eq!(r.backoff(3), Duration::from_millis(350));
        assert_eq!(r.backoff(40), Duration::from_millis(350));
    }
}
