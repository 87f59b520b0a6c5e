//! The `script` task.

pub mod config;
