//! The `script` task.

pub mod config;
pub mod processor;
