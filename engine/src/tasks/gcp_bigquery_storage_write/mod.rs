//! The `gcp_bigquery_storage_write` task.

pub mod config;
pub mod processor;
