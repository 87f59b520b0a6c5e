//! The `gcp_bigquery_storage_write` task.

pub mod config;
mod load;
pub mod processor;

/// The `gcp_bigquery_storage_write` task type.
pub const TYPE: crate::flow::TaskType =
    crate::flow::TaskType { name: "gcp_bigquery_storage_write", source: false, load: load::load };
