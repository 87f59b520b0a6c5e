//! The `salesforce_pubsubapi_subscriber` task.

pub mod config;
