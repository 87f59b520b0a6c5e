//! The `generate` task.

pub mod config;
