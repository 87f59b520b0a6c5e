//! The `salesforce_bulkapi_query_job` task.

pub mod config;
pub mod processor;
mod results;
