//! The `object_store` task.

pub mod config;
