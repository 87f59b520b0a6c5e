//! The `postgres_write` task.

pub mod config;
