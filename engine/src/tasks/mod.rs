//! One folder per task type, named as flow files name it. Each holds its config (the YAML shape),
//! its loading and checks (`load.rs`), its behaviour, and its [`TaskType`](crate::flow::TaskType);
//! [`TYPES`] is the one table of them.

pub mod convert;
pub mod gcp_bigquery_storage_write;
pub mod generate;
pub mod nats_jetstream_publisher;
pub mod nats_jetstream_subscriber;
pub mod object_store;
pub mod postgres_write;
pub mod salesforce_bulkapi_query_job;
pub mod salesforce_pubsubapi_subscriber;
pub mod script;

/// Every task type. A type missing here cannot be loaded: its flow files are refused as naming
/// an unknown type (and `every_task_kind_is_registered` fails).
pub const TYPES: &[crate::flow::TaskType] = &[
    generate::TYPE,
    script::TYPE,
    salesforce_bulkapi_query_job::TYPE,
    salesforce_pubsubapi_subscriber::TYPE,
    nats_jetstream_publisher::TYPE,
    nats_jetstream_subscriber::TYPE,
    convert::TYPE,
    object_store::TYPE,
    gcp_bigquery_storage_write::TYPE,
    postgres_write::TYPE,
];

#[cfg(test)]
mod tests {
    /// Each folder here is a task type and each is in [`super::TYPES`] once, under its folder's name.
    #[test]
    fn every_task_folder_is_registered_once() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tasks");
        let mut folders: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        folders.sort();
        let mut registered: Vec<String> = super::TYPES.iter().map(|t| t.name.to_string()).collect();
        registered.sort();
        assert_eq!(registered, folders);
    }
}
