//! One folder per task type, named as flow files name it. Each holds its config (the YAML shape)
//! and, as the runtime grows, its behaviour.

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
