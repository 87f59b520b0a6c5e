//! The `generate` task.

pub mod config;
pub mod source;
