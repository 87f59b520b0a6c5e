//! The `postgres_write` task.

pub mod config;
mod load;
pub mod processor;

/// The `postgres_write` task type.
pub const TYPE: crate::flow::TaskType =
    crate::flow::TaskType { name: "postgres_write", source: false, load: load::load };
