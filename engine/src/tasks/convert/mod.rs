//! The `convert` task: casts the text columns of Bulk API batches to a schema's types.

pub mod config;
mod load;
pub mod processor;
pub mod rejects;

#[cfg(test)]
mod tests;

/// The `convert` task type.
pub const TYPE: crate::flow::TaskType = crate::flow::TaskType { name: "convert", source: false, load: load::load };
