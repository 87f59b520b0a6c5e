use std::collections::BTreeMap;

use serde::Deserialize;

use crate::flow::template::Template;

/// Writes batches as files to local disk, S3, GCS or Azure.
///
/// ```yaml
/// - object_store:
///     name: write_to_object_store
///     operation: write
///     credentials_path: /etc/gcp/credentials.json
///     path: "{{env.GCS_BUCKET_PATH}}/salesforce/account"
///     hive_partition_options:
///       enabled: true
///       partition_keys: [EventDate]
/// ```
///
/// An S3-compatible server (MinIO, moto) with an AWS access key JSON:
///
/// ```yaml
/// - object_store:
///     name: write_to_s3
///     operation: write
///     credentials_path: /etc/aws/credentials.json
///     path: s3://lake/salesforce/account
///     format: parquet
///     hive_partition_options: {enabled: true, partition_keys: [EventDate, EventHour]}
///     client_options: {aws_region: us-east-1, endpoint: "http://127.0.0.1:9000"}
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreConfig {
    pub operation: ObjectStoreOperation,
    pub credentials_path: Option<String>,
    pub path: Template,
    #[serde(default)]
    pub format: FileFormat,
    pub hive_partition_options: Option<HivePartitionOptions>,
    /// Options of the `object_store` client for the path's cloud, by its key names
    /// (`aws_region`, `endpoint`, `allow_http`, `timeout`, ...); an unknown key is an error.
    /// Values may read the environment (`endpoint: "{{env.S3_ENDPOINT}}"`); one that renders
    /// empty is left unset, so the same flow runs against a local server and the real cloud.
    #[serde(default)]
    pub client_options: BTreeMap<String, Template>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectStoreOperation {
    Write,
}

pub use crate::file_format::FileFormat;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HivePartitionOptions {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub partition_keys: Vec<PartitionKey>,
    /// A record field (a datetime) to partition rows by, instead of the run's scheduled time.
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PartitionKey {
    EventDate,
    EventHour,
}
