//! The `nats_jetstream_publisher` task.

pub mod config;
mod load;
pub mod processor;

/// The `nats_jetstream_publisher` task type.
pub const TYPE: crate::flow::TaskType =
    crate::flow::TaskType { name: "nats_jetstream_publisher", source: false, load: load::load };
