//! The `salesforce_bulkapi_query_job` task.

pub mod config;
mod load;
pub mod processor;
mod results;

/// The `salesforce_bulkapi_query_job` task type.
pub const TYPE: crate::flow::TaskType =
    crate::flow::TaskType { name: "salesforce_bulkapi_query_job", source: false, load: load::load };
