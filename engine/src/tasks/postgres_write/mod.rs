//! The `postgres_write` task.

pub mod config;
pub mod processor;
