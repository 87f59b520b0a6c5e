//! A stream as a flow's YAML spells it (the publisher's and the subscriber's `stream:`), which
//! [`super::spec::StreamSpec`] turns into the request both buses get.

use serde::Deserialize;

use crate::flow::duration::HumanDuration;

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
