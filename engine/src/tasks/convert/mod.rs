//! The `convert` task.

pub mod config;
