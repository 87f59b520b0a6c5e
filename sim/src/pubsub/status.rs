//! Errors as Salesforce sends them: a gRPC status whose description carries the rpc id and whose
//! trailing metadata carries the `error-code` (and `rpc-id`).

use bulkflow_pubsub_proto::ERROR_CODE_KEY;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

pub const PREFIX: &str = "sfdc.platform.eventbus.grpc.";
pub const AUTH_ERROR: &str = "service.auth.error";
pub const AUTH_HEADERS_INVALID: &str = "service.auth.headers.invalid";
pub const REPLAY_CORRUPTED: &str = "subscription.fetch.replayid.corrupted";
pub const REPLAY_VALIDATION_FAILED: &str = "subscription.fetch.replayid.validation.failed";
pub const REQUESTED_EVENTS_INVALID: &str = "subscription.fetch.requested.events.invalid";
pub const TOPIC_MISMATCH: &str = "subscription.fetch.topic.mismatch";
pub const TOPIC_NOT_FOUND: &str = "topic.not.found";
pub const SCHEMA_NOT_FOUND: &str = "schema.not.found";
pub const UNAVAILABLE: &str = "service.unavailable";

pub fn error(code: Code, error_code: &str, message: &str) -> Status {
    let rpc_id = crate::ids::new_uuid();
    let mut metadata = MetadataMap::new();
    if let Ok(v) = MetadataValue::try_from(format!("{PREFIX}{error_code}")) {
        metadata.insert(ERROR_CODE_KEY, v);
    }
    if let Ok(v) = MetadataValue::try_from(rpc_id.as_str()) {
        metadata.insert("rpc-id", v);
    }
    Status::with_metadata(code, format!("{message} rpcId: {rpc_id}"), metadata)
}
