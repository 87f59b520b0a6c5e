//! The `nats_jetstream_subscriber` task.

mod assemble;
pub mod config;
mod settle;
pub mod source;

#[cfg(test)]
mod tests;
