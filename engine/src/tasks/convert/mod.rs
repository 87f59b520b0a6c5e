//! The `convert` task: casts the text columns of Bulk API batches to a schema's types.

pub mod config;
pub mod processor;
pub mod rejects;

#[cfg(test)]
mod tests;
