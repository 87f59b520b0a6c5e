//! The `generate` task.

pub mod config;
mod load;
pub mod source;

/// The `generate` task type.
pub const TYPE: crate::flow::TaskType = crate::flow::TaskType { name: "generate", source: true, load: load::load };
