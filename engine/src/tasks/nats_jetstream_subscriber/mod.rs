//! The `nats_jetstream_subscriber` task.

pub mod config;
