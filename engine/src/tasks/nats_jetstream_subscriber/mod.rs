//! The `nats_jetstream_subscriber` task.

mod assemble;
pub mod config;
mod load;
mod settle;
pub mod source;

#[cfg(test)]
mod tests;

/// The `nats_jetstream_subscriber` task type.
pub const TYPE: crate::flow::TaskType =
    crate::flow::TaskType { name: "nats_jetstream_subscriber", source: true, load: load::load };
