//! The Salesforce Pub/Sub API (`eventbus.v1.PubSub`): messages, client and server, generated at
//! build time from `proto/pubsub_api.proto`. This is the only protocol code the simulator and the
//! engine share: each implements its side of the semantics on its own.

pub mod eventbus {
    pub mod v1 {
        tonic::include_proto!("eventbus.v1");
    }
}

pub use eventbus::v1::*;

/// The trailing-metadata key carrying Salesforce's own error code on a failed RPC.
pub const ERROR_CODE_KEY: &str = "error-code";
