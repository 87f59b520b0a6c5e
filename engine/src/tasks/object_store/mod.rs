//! The `object_store` task: writes batches as Parquet, CSV or Arrow files, in Hive partitions,
//! under deterministic names, to local disk, S3, GCS or Azure.

pub mod config;
pub mod encode;
mod load;
pub mod local;
pub mod partition;
pub mod processor;
pub mod store;
pub mod upload;

#[cfg(test)]
mod tests;

/// The `object_store` task type.
pub const TYPE: crate::flow::TaskType = crate::flow::TaskType { name: "object_store", source: false, load: load::load };
