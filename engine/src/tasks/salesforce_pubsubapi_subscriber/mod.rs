//! The `salesforce_pubsubapi_subscriber` task.

pub mod config;
mod load;
pub mod source;
#[cfg(test)]
mod tests;
mod window;

/// The `salesforce_pubsubapi_subscriber` task type.
pub const TYPE: crate::flow::TaskType =
    crate::flow::TaskType { name: "salesforce_pubsubapi_subscriber", source: true, load: load::load };
