//! The `nats_jetstream_publisher` task.

pub mod config;
pub mod processor;
