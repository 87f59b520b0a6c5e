//! The `script` task.

pub mod config;
mod load;
pub mod processor;

/// The `script` task type.
pub const TYPE: crate::flow::TaskType = crate::flow::TaskType { name: "script", source: false, load: load::load };
